// evpn-ca revoke, nodes, token list/revoke and audit end to end: the real binaries against a real
// ejabberd on loopback. The proof that revocation works is a real SASL EXTERNAL login with the
// node's own files that ejabberd accepted before and refuses after.

#include "common/xmpp/login.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/handle.hpp"
#include "common/net/https_client.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/deployment.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <thread>

using Catch::Matchers::Contains;
using evpn::test::BackgroundProcess;
using evpn::test::Deployment;
using evpn::test::RunResult;
using evpn::test::TestNode;
using evpn::test::eventually;
using evpn::test::read_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Argv = std::vector<std::string>;

// One deployment for the whole binary: setting it up takes seconds.
struct World {
  Deployment deployment{"evpn-revoke"};
  World() { deployment.add_group("vnet", "101000F"); }
};

World& world() {
  static World w;
  return w;
}

RunResult evpn_ca(const Argv& args) {
  Argv argv{EVPN_CA_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return evpn::test::run(argv);
}

json listing(const Argv& command) { return world().deployment.listing(command); }

json node_entry(const std::string& username) {
  for (const auto& entry : listing({"nodes"}))
    if (entry["username"] == username) return entry;
  FAIL("evpn-ca nodes does not list " << username);
  return {};
}

// A node enrolled with the real evpn-agent; returns its serial.
std::string enroll(const TestNode& node) {
  const RunResult r = world().deployment.enroll(node, world().deployment.token("vnet"));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out)["serial"];
}

// A real SASL EXTERNAL login with exactly the key and certificate the node uses.
evpn::xmpp::LoginReport login(const TestNode& node) {
  auto& d = world().deployment;
  evpn::xmpp::LoginOptions o;
  o.host = "127.0.0.1";
  o.port = d.xmpp().c2s_port();
  o.jid = node.username + "@" + Deployment::domain;
  o.cert_file = node.current() / "node.crt";
  o.key_file = node.current() / "node.key";
  o.ca_file = d.ca_dir() / "ca.crt";
  return evpn::xmpp::verify_login(o);
}

RunResult revoke_command(const Argv& options) {
  Argv args{"revoke", "--dir", world().deployment.ca_dir().string()};
  args.insert(args.end(), options.begin(), options.end());
  return evpn_ca(args);
}

bool connected(const std::string& full_jid) {
  const auto answer = world().deployment.xmpp().api("connected_users");
  return answer.status == 200 && answer.body.find(full_jid) != std::string::npos;
}

// A live XMPP session of `node` with the resource "live", held open by openssl s_client until
// the server ends it. The pauses only order the steps (each waits for the server's answer).
BackgroundProcess live_session(const TestNode& node, const fs::path& log) {
  auto& d = world().deployment;
  const std::string header = "<?xml version='1.0'?><stream:stream to='" + std::string(Deployment::domain) +
                             "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
  const std::string script =
      "( printf '%s' \"$HEADER\"; sleep 2; "
      "printf \"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>\"; sleep 2; "
      "printf '%s' \"$HEADER\"; sleep 2; "
      "printf \"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>live</resource>"
      "</bind></iq>\"; "
      // Whitespace keep-alives; the first one after the server closed the stream ends the loop.
      "while sleep 1; do printf ' ' || exit 0; done ) | "
      "timeout 120 openssl s_client -quiet -starttls xmpp -xmpphost \"$DOMAIN\" -connect \"127.0.0.1:$PORT\" "
      "-cert \"$CERT\" -key \"$KEY\" -CAfile \"$CA\"";
  return BackgroundProcess({"sh", "-c", script}, log,
                           {{"HEADER", header},
                            {"DOMAIN", Deployment::domain},
                            {"PORT", std::to_string(d.xmpp().c2s_port())},
                            {"CERT", (node.current() / "node.crt").string()},
                            {"KEY", (node.current() / "node.key").string()},
                            {"CA", (d.ca_dir() / "ca.crt").string()}});
}

using Crl = evpn::crypto::Handle<X509_CRL, X509_CRL_free>;

Crl parse_crl(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  Crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(crl);
  auto root = evpn::crypto::Certificate::from_pem(read_file(world().deployment.ca_dir() / "ca.crt"));
  REQUIRE(root);
  CHECK(X509_CRL_verify(crl.get(), root->public_key()) == 1);
  return crl;
}

// The reason code the CRL gives `serial`; -1 for none; fails when it does not list it.
int crl_reason(X509_CRL* crl, const std::string& serial) {
  for (int i = 0; i < sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)); ++i) {
    X509_REVOKED* entry = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), i);
    evpn::crypto::BigNum n(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(entry), nullptr));
    char* hex = BN_bn2hex(n.get());
    std::string text(hex);
    OPENSSL_free(hex);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    if (text != serial) continue;
    auto* reason = static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, nullptr, nullptr));
    const int code = reason ? static_cast<int>(ASN1_ENUMERATED_get(reason)) : -1;
    ASN1_ENUMERATED_free(reason);
    return code;
  }
  FAIL("the CRL does not list " << serial);
  return -2;
}

std::vector<json> audit_entries(const std::string& action, const std::string& username) {
  std::vector<json> found;
  for (const auto& entry : listing({"audit"}))
    if (entry["action"] == action && entry["username"] == username) found.push_back(entry);
  return found;
}

}  // namespace

TEST_CASE("a revoked node can no longer log in to ejabberd, loses its live session, cannot renew and is in the CRL") {
  auto& d = world().deployment;
  const TestNode node = d.node("node1");
  const std::string serial = enroll(node);
  const auto before = login(node);
  INFO((before.error ? before.error->detail : std::string()));
  REQUIRE(before.ok());

  const fs::path session_log = d.dir() / "live-session.log";
  BackgroundProcess session = live_session(node, session_log);
  const bool live = eventually([] { return connected("node1@evpn.test/live"); }, std::chrono::seconds(30));
  INFO("s_client: " << read_file(session_log));
  REQUIRE(live);

  const RunResult revoked = revoke_command({"--username", "node1", "--reason", "keyCompromise"});
  INFO("stdout: " << revoked.out << "\nstderr: " << revoked.err);
  REQUIRE(revoked.exit_code == 0);
  CHECK(revoked.out == serial + "\n");
  CHECK_THAT(revoked.err, Contains("can no longer log in"));

  // The live session was ended by the server...
  CHECK(eventually([] { return !connected("node1@evpn.test/live"); }, std::chrono::seconds(10)));
  CHECK(eventually([&] { return read_file(session_log).find("has been kicked") != std::string::npos; },
                   std::chrono::seconds(10)));
  // ...and a new login with the node's own key and certificate is refused.
  const auto after = login(node);
  CHECK_FALSE(after.ok());
  CHECK(after.bound_jid.empty());
  // A refused session is final, not "try again later": check reports CRITICAL, enroll exit 5.
  REQUIRE(after.error.has_value());
  CHECK(after.error->code == evpn::Errc::unauthorized);
  CHECK_THAT(after.error->detail, Contains("revoked"));
  CHECK(d.xmpp().wait_for_log("Forbidden c2s session for node1@evpn.test"));

  const RunResult renewal = evpn::test::run({EVPN_AGENT_BIN, "renew", "--force", "--state-dir", node.state().string(),
                                                "--json"});
  INFO("renew stdout: " << renewal.out << "\nstderr: " << renewal.err);
  CHECK(renewal.exit_code == 7);
  CHECK_THAT(renewal.out, Contains("revoked"));

  // GET /v1/crl over HTTPS, trusting only the CA's root, and the file in the CA directory.
  evpn::net::ClientTls tls;
  tls.ca_pem = read_file(d.ca_dir() / "ca.crt");
  evpn::net::HttpClient client(tls);
  auto url = evpn::net::parse_url(d.ca_url() + "/v1/crl");
  REQUIRE(url);
  auto response = client.send({"GET", *url, {}, ""});
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->content_type == "application/pkix-crl");
  CHECK(crl_reason(parse_crl(response->body).get(), serial) == 1);
  CHECK(crl_reason(parse_crl(read_file(d.ca_dir() / "crl.der")).get(), serial) == 1);

  const json entry = node_entry("node1");
  CHECK(entry["state"] == "revoked");
  CHECK(entry["serial"] == serial);
  CHECK(entry["revocation_reason"] == "keyCompromise");
  CHECK(entry["directory_step_pending"] == false);
  CHECK(audit_entries("enroll", "node1").size() == 1);
  const auto revocations = audit_entries("revoke", "node1");
  REQUIRE(revocations.size() == 1);
  CHECK(revocations[0]["serial"] == serial);
  CHECK(audit_entries("lockout", "node1").size() == 1);

  const RunResult again = revoke_command({"--username", "node1"});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Contains("already revoked"));
}

TEST_CASE("with ejabberd down the revocation is recorded, and serve locks the node out once ejabberd is back") {
  auto& d = world().deployment;
  const TestNode node = d.node("node2");
  const std::string serial = enroll(node);
  REQUIRE(login(node).ok());

  d.xmpp().stop();
  const RunResult revoked = revoke_command({"--username", "node2"});
  INFO("stdout: " << revoked.out << "\nstderr: " << revoked.err);
  CHECK(revoked.exit_code == 0);
  CHECK_THAT(revoked.err, Contains("stays queued"));
  const json pending = node_entry("node2");
  CHECK(pending["state"] == "revoked");
  CHECK(pending["directory_step_pending"] == true);
  CHECK_THAT(pending["directory_error"].get<std::string>(), Contains("unreachable"));
  const RunResult table = evpn_ca({"nodes", "--dir", d.ca_dir().string()});
  CHECK_THAT(table.out, Contains("directory step pending"));
  parse_crl(read_file(d.ca_dir() / "crl.der"));

  d.xmpp().start();
  // serve retries queued lockouts every 30 s.
  const bool done = eventually([] { return node_entry("node2")["directory_step_pending"] == false; },
                               std::chrono::seconds(90));
  INFO("serve log:\n" << read_file(d.serve_log()));
  REQUIRE(done);
  CHECK_FALSE(login(node).ok());
  CHECK(audit_entries("lockout", "node2").size() == 1);
  CHECK_THAT(read_file(d.serve_log()), Contains("locked out node2"));
}

TEST_CASE("tokens are listed without their secret, and a revoked token no longer enrolls") {
  auto& d = world().deployment;
  const std::string token = d.token("vnet", {"--username", "node3", "--uses", "2"});
  // evpn1_<16 hex id>_<64 hex secret>
  const std::string id = token.substr(6, 16);
  const std::string secret = token.substr(23);

  const RunResult table = evpn_ca({"token", "list", "--dir", d.ca_dir().string()});
  CHECK(table.exit_code == 0);
  CHECK_THAT(table.out, Contains(id) && Contains("node3"));
  const json tokens = listing({"token", "list"});
  const auto listed = std::find_if(tokens.begin(), tokens.end(), [&](const json& t) { return t["id"] == id; });
  REQUIRE(listed != tokens.end());
  CHECK((*listed)["group"] == "vnet");
  CHECK((*listed)["username"] == "node3");
  CHECK((*listed)["uses_left"] == 2);
  CHECK((*listed)["state"] == "active");
  // Neither the secret nor its hash (64 hex characters) is shown.
  for (const auto& output : {table.out, tokens.dump()}) {
    CHECK(output.find(secret) == std::string::npos);
    CHECK_FALSE(std::regex_search(output, std::regex("[0-9a-f]{64}")));
  }

  const RunResult revoked = evpn_ca({"token", "revoke", "--dir", d.ca_dir().string(), id});
  INFO("stderr: " << revoked.err);
  CHECK(revoked.exit_code == 0);
  const json after = listing({"token", "list"});
  const auto entry = std::find_if(after.begin(), after.end(), [&](const json& t) { return t["id"] == id; });
  REQUIRE(entry != after.end());
  CHECK((*entry)["uses_left"] == 0);
  CHECK((*entry)["state"] == "revoked");

  const TestNode node = d.node("node3");
  const RunResult refused = d.enroll(node, token);
  CHECK(refused.exit_code == 3);
  CHECK(json::parse(refused.out)["error"] == "unauthorized");
  CHECK_FALSE(fs::exists(node.current()));

  const RunResult twice = evpn_ca({"token", "revoke", "--dir", d.ca_dir().string(), id});
  CHECK(twice.exit_code == 1);
  CHECK_THAT(twice.err, Contains("already revoked"));

  const json log = listing({"audit"});
  CHECK(log.dump().find(secret) == std::string::npos);
  std::vector<std::string> token_actions;
  for (const auto& e : log)
    if (e["token_id"] == id) token_actions.push_back(e["action"]);
  CHECK(token_actions == std::vector<std::string>{"token-create", "token-revoke"});
}

TEST_CASE("revoke names what is wrong with its arguments") {
  auto& d = world().deployment;
  const RunResult unknown = revoke_command({"--username", "nobody"});
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Contains("no node is named 'nobody'"));
  CHECK(revoke_command({}).exit_code == 2);
  CHECK(revoke_command({"--username", "node1", "--serial", "01"}).exit_code == 2);
  const RunResult reason = revoke_command({"--username", "node1", "--reason", "certificateHold"});
  CHECK(reason.exit_code == 2);
  CHECK_THAT(reason.err, Contains("--reason"));
  CHECK(evpn_ca({"nodes", "--dir", (d.dir() / "missing").string()}).exit_code == 1);
}
