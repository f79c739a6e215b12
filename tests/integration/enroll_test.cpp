// evpn-agent enroll end to end: the real evpn-agent and `evpn-ca serve` binaries against a real
// ejabberd on loopback, checked by reading the files the agent wrote and by logging in again.

#include "common/xmpp/login.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/net/https_client.hpp"
#include "common/time.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/test_pki.hpp"

#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <stdexcept>

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using evpn::test::RunResult;
using evpn::test::TestNode;
using nlohmann::json;
namespace fs = std::filesystem;
namespace crypto = evpn::crypto;

using evpn::test::ok;

namespace {

const std::string domain = evpn::test::Deployment::domain;
const std::string overlay = "101000F";
using Argv = std::vector<std::string>;


void write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

// `argv` with `option` set to `value`: replaced when present, appended otherwise.
Argv with(Argv argv, const std::string& option, const std::string& value) {
  auto at = std::find(argv.begin(), argv.end(), option);
  if (at == argv.end()) {
    argv.insert(argv.end(), {option, value});
  } else {
    *std::next(at) = value;
  }
  return argv;
}

// `argv` without `option` and its value.
Argv without(Argv argv, const std::string& option) {
  auto at = std::find(argv.begin(), argv.end(), option);
  if (at != argv.end()) argv.erase(at, std::next(at, 2));
  return argv;
}

// One CA, one ejabberd and one `evpn-ca serve` for the whole binary: the set-up takes seconds.
struct World : evpn::test::Deployment {
  World() : Deployment("evpn-enroll") { add_group("vnet", overlay); }

  // A new enrollment token, with extra `token create` options such as --uses.
  std::string token(const std::vector<std::string>& options = {}, const std::string& group = "vnet") const {
    return Deployment::token(group, options);
  }

  // The members of a shared roster group, as ejabberd reports them.
  std::vector<std::string> members(const std::string& group) {
    const auto answer = xmpp().api("srg_get_members", {{"group", group}, {"host", domain}});
    INFO(answer.body);
    REQUIRE(answer.status == 200);
    return json::parse(answer.body).get<std::vector<std::string>>();
  }
};

World& world() {
  static World w;
  return w;
}

// The agent's --json output; fails the test when stdout is not a JSON object.
json output(const RunResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  json parsed = json::parse(r.out, nullptr, false);
  REQUIRE(parsed.is_object());
  return parsed;
}

json require_enrolled(const RunResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  json out = output(r);
  REQUIRE(out.value("enrolled", false));
  REQUIRE_FALSE(out.value("serial", "").empty());
  return out;
}

// Checks that a failed enrollment changed nothing on the node: no state, config bytes as before.
void require_untouched(const TestNode& node, const std::optional<std::string>& config_before) {
  std::error_code ec;
  CHECK((!fs::exists(node.state()) || fs::is_empty(node.state(), ec)));
  if (config_before) {
    CHECK(evpn::test::read_file(node.config()) == *config_before);
  } else {
    CHECK_FALSE(fs::exists(node.config()));
  }
  // Nothing else appeared beside the config either (no temporary files left behind).
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(node.dir)) ++entries;
  CHECK(entries == (config_before ? 1u : 0u) + (fs::exists(node.state()) ? 1u : 0u));
}

// An EdgeVPN 21 config whose exact bytes a refused enrollment must keep.
const std::string cfx_config = R"({ "CFx": { "Overlays": ["A0B1C2D"] }, "Logger": { "LogLevel": "INFO" } }
)";

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

TEST_CASE("a node enrolls and its written files log in again") {
  auto& w = world();
  const TestNode node = w.node("node1");
  const json before = json::parse(R"({
    "Broker": { "Overlays": ["1A2B3C4"] },
    "Signal": { "Overlays": { "1A2B3C4": { "HostAddress": "xmpp.example.org", "AuthenticationMethod": "PASSWORD",
                                          "Port": "5222", "Username": "n@example.org", "Password": "passwd" } } },
    "LinkManager": { "Stun": ["stun.l.google.com:19302"], "Overlays": { "1A2B3C4": { "Type": "TUNNEL" } } }
  })");
  write(node.config(), before.dump(2));

  json out = require_enrolled(w.enroll(node, w.token()));
  const std::string serial = out["serial"];
  CHECK(out["login"]["ok"] == true);
  CHECK_THAT(out["login"].value("bound_jid", ""), StartsWith("node1@evpn.test"));

  const fs::path key_file = node.current() / "node.key";
  CHECK((fs::status(key_file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  const auto key = ok(crypto::Key::from_pem(evpn::test::read_file(key_file)));
  const auto cert = ok(crypto::Certificate::from_pem(evpn::test::read_file(node.current() / "node.crt")));
  CHECK(cert.common_name() == "node1");
  CHECK(cert.xmpp_addrs() == std::vector<std::string>{"node1@evpn.test"});
  CHECK(cert.matches(key));
  CHECK(cert.serial_hex() == serial);
  std::vector<crypto::Certificate> roots;
  roots.push_back(ok(crypto::Certificate::from_pem(evpn::test::read_file(w.ca_dir() / "ca.crt"))));
  const auto chained = crypto::verify_chain(cert, roots, evpn::now_seconds(), X509_PURPOSE_SSL_CLIENT);
  INFO((chained ? std::string() : chained.error().detail));
  CHECK(chained.has_value());

  json state = json::parse(evpn::test::read_file(node.state() / "state.json"));
  CHECK(state["username"] == "node1");
  CHECK(state["overlay"] == overlay);

  json config = json::parse(evpn::test::read_file(node.config()));
  json entry = config["Signal"]["Overlays"][overlay];
  CHECK(entry["AuthenticationMethod"] == "x509");
  CHECK(entry["HostAddress"] == "127.0.0.1");
  CHECK(entry["Port"] == std::to_string(w.xmpp().c2s_port()));
  CHECK(entry["CertDirectory"] == node.current().string());
  CHECK(entry["CertFile"] == "node.crt");
  CHECK(entry["KeyFile"] == "node.key");
  CHECK_FALSE(entry.contains("Username"));
  CHECK_FALSE(entry.contains("Password"));
  CHECK(config["Broker"]["Overlays"] == json{"1A2B3C4", overlay});
  // Take out exactly what enrollment adds: the rest must be the file as it was.
  config["Signal"]["Overlays"].erase(overlay);
  config["Broker"]["Overlays"] = json{"1A2B3C4"};
  CHECK(config == before);

  // Log in again with exactly the files the EdgeVPN config points at.
  evpn::xmpp::LoginOptions login;
  login.host = entry["HostAddress"];
  login.port = w.xmpp().c2s_port();
  login.jid = "node1@" + domain;
  login.cert_file = fs::path(entry["CertDirectory"].get<std::string>()) / entry["CertFile"].get<std::string>();
  login.key_file = fs::path(entry["CertDirectory"].get<std::string>()) / entry["KeyFile"].get<std::string>();
  login.ca_file = w.ca_dir() / "ca.crt";
  const auto report = evpn::xmpp::verify_login(login);
  INFO((report.error ? report.error->detail : std::string()));
  REQUIRE(report.ok());
  CHECK(report.mechanism == "EXTERNAL");
  CHECK_THAT(report.bound_jid, StartsWith("node1@evpn.test/"));
  CHECK(w.xmpp().wait_for_log("Accepted c2s EXTERNAL authentication for node1@evpn.test"));
  CHECK(contains(w.members("vnet"), "node1@evpn.test"));
}

TEST_CASE("the same one-use token a second time is refused and changes nothing") {
  auto& w = world();
  const std::string token = w.token();
  require_enrolled(w.enroll(w.node("node2"), token));

  const TestNode second = w.node("node3");
  write(second.config(), cfx_config);
  const RunResult r = w.enroll(second, token);
  CHECK(r.exit_code == 3);
  const json out = output(r);
  CHECK(out["enrolled"] == false);
  CHECK(out["error"] == "unauthorized");
  require_untouched(second, cfx_config);
}

TEST_CASE("a wrong fingerprint is refused before anything is written") {
  auto& w = world();
  const std::string token = w.token();
  const TestNode node = w.node("node4");
  write(node.config(), cfx_config);
  const std::string other(64, 'a');

  const RunResult r = evpn::test::run(with(w.enroll_command(node, token), "--fingerprint", other));
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.err, Contains(other) && Contains(w.fingerprint()));
  CHECK(output(r)["enrolled"] == false);
  require_untouched(node, cfx_config);

  // The CA never saw the token, so it still works.
  require_enrolled(w.enroll(node, token));
}

TEST_CASE("a CN that the token does not allow is refused") {
  auto& w = world();
  const std::string token = w.token({"--username", "nodex"});
  const TestNode wrong = w.node("nodey");
  write(wrong.config(), cfx_config);

  const RunResult r = w.enroll(wrong, token);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.err, Contains("nodex") && Contains("nodey"));
  CHECK(output(r)["error"] == "forbidden");
  require_untouched(wrong, cfx_config);

  require_enrolled(w.enroll(w.node("nodex"), token));
}

TEST_CASE("with ejabberd stopped the enrollment fails transiently and succeeds once it is back") {
  auto& w = world();
  const std::string token = w.token();
  const TestNode node = w.node("node5");
  write(node.config(), cfx_config);

  w.xmpp().stop();
  const RunResult down = w.enroll(node, token);
  w.xmpp().restart();
  INFO("stdout: " << down.out << "\nstderr: " << down.err);
  CHECK(down.exit_code == 4);
  CHECK(output(down)["error"] == "unavailable");
  // Nothing of the node's identity was written; only the key waits (0600) for the retry, so that
  // a retry whose first answer was lost is recognised by the CA.
  const fs::path pending_key = node.state() / ".enroll-key";
  REQUIRE(fs::exists(pending_key));
  CHECK((fs::status(pending_key).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  const std::string key_pem = evpn::test::read_file(pending_key);
  fs::remove(pending_key);
  require_untouched(node, cfx_config);
  write(pending_key, key_pem);

  // The token (one use) was not spent by the failed attempt, and the retry used the same key.
  require_enrolled(w.enroll(node, token));
  CHECK(contains(w.members("vnet"), "node5@evpn.test"));
  CHECK_FALSE(fs::exists(pending_key));
  CHECK(ok(crypto::Certificate::from_pem(evpn::test::read_file(node.current() / "node.crt")))
            .matches(ok(crypto::Key::from_pem(key_pem))));
}

TEST_CASE("with a wrong ejabberd password the CA issues nothing, spends no token and says what to check") {
  auto& w = world();
  const std::string wrong = "wrong-" + crypto::to_hex(crypto::random_bytes(8));
  const fs::path wrong_file = w.dir() / "wrong-ejabberd.secret";
  write(wrong_file, wrong + "\n");
  const fs::path config = w.ca_dir() / "config.json";
  const std::string original = evpn::test::read_file(config);
  json edited = json::parse(original);
  edited["directory"]["secret_file"] = wrong_file.string();
  const std::string token = w.token();
  const TestNode node = w.node("node13");
  write(node.config(), cfx_config);
  {
    // The other tests share this CA: the right password goes back whatever happens here.
    struct Restore {
      World& w;
      const fs::path& config;
      const std::string& original;
      ~Restore() {
        w.stop_ca();
        write(config, original);
        w.start_ca();
      }
    } restore{w, config, original};
    w.stop_ca();
    write(config, edited.dump(2));
    w.start_ca();

    const RunResult refused = w.enroll(node, token);
    INFO("stdout: " << refused.out << "\nstderr: " << refused.err);
    CHECK(refused.exit_code != 0);
    CHECK_FALSE(fs::exists(node.current()));
    CHECK(evpn::test::read_file(node.config()) == cfx_config);

    evpn::net::ClientTls tls;
    tls.ca_pem = evpn::test::read_file(w.ca_dir() / "ca.crt");
    const auto health = ok(evpn::net::HttpClient(tls).send(
        {"GET", ok(evpn::net::parse_url(w.ca_url() + "/healthz")), {}, ""}));
    CHECK(health.status == 503);
    CHECK_THAT(health.body, Contains("the XMPP directory does not answer"));

    const std::string log = evpn::test::read_file(w.serve_log());
    CHECK_THAT(log, Contains("it did not accept evpn-ca@evpn.test and its password; check directory.username"));
    for (const std::string& text : {refused.out, refused.err, health.body, log}) CHECK_THAT(text, !Contains(wrong));
  }
  require_enrolled(w.enroll(node, token));
}

TEST_CASE("evpn-ca init --directory ejabberd needs the API account's JID and its password") {
  auto& w = world();
  const Argv init{EVPN_CA_BIN, "init", "--dir", (w.dir() / "ca-refused").string(), "--xmpp-domain", domain,
                  "--directory", "ejabberd", "--directory-secret-env", "EJABBERD_PASSWORD"};

  const RunResult no_user = evpn::test::run(init);
  CHECK(no_user.exit_code == 1);
  CHECK_THAT(no_user.err, Contains("--directory-user") && Contains("evpn-ca@evpn.test"));
  const RunResult bare_user = evpn::test::run(with(init, "--directory-user", "evpn-ca"));
  CHECK(bare_user.exit_code == 1);
  CHECK_THAT(bare_user.err, Contains("full JID"));
  const RunResult no_secret =
      evpn::test::run(without(with(init, "--directory-user", "evpn-ca@evpn.test"), "--directory-secret-env"));
  CHECK(no_secret.exit_code == 1);
  CHECK_THAT(no_secret.err, Contains("--directory-secret-file") && Contains("the password of --directory-user"));
  CHECK_FALSE(fs::exists(w.dir() / "ca-refused" / "ca.key"));
}

TEST_CASE("an enrollment whose answer was lost is answered again when the agent retries") {
  auto& w = world();
  const std::string token = w.token();  // one use
  const TestNode node = w.node("node11");
  // As if the first attempt's answer never arrived: the CA issued for this key, the node has
  // nothing but the pending key.
  const crypto::Key key = ok(crypto::Key::generate(crypto::KeyType::ec_p256));
  fs::create_directories(node.state());
  write(node.state() / ".enroll-key", key.to_pem());
  const json first = require_enrolled(w.enroll(node, token));
  const std::string serial = first["serial"];
  fs::remove_all(node.state());
  fs::create_directories(node.state());
  write(node.state() / ".enroll-key", key.to_pem());

  const json again = require_enrolled(w.enroll(node, token));
  CHECK(again["serial"] == serial);
  // Another key with the used-up token is refused.
  const TestNode other = w.node("node11");
  CHECK(w.enroll(other, token).exit_code == 3);
}

TEST_CASE("ten agents enrolling at once all succeed with distinct serials") {
  auto& w = world();
  w.add_group("swarm", "101000A");
  const std::string token = w.token({"--uses", "10"}, "swarm");

  std::vector<TestNode> nodes;
  std::vector<std::future<RunResult>> runs;
  for (int i = 0; i < 10; ++i) {
    nodes.push_back(w.node("swarm" + std::to_string(i)));
    runs.push_back(std::async(std::launch::async, [&w, &token, node = nodes.back()] { return w.enroll(node, token); }));
  }
  std::set<std::string> serials;
  for (auto& run : runs) serials.insert(require_enrolled(run.get())["serial"].get<std::string>());
  CHECK(serials.size() == 10);

  auto members = w.members("swarm");
  std::sort(members.begin(), members.end());
  std::vector<std::string> expected;
  for (const auto& node : nodes) expected.push_back(node.username + "@" + domain);
  std::sort(expected.begin(), expected.end());
  CHECK(members == expected);

  const TestNode eleventh = w.node("swarm10");
  const RunResult r = w.enroll(eleventh, token);
  CHECK(r.exit_code == 3);
  CHECK(output(r)["error"] == "unauthorized");
  require_untouched(eleventh, std::nullopt);
}

TEST_CASE("usage errors exit 2") {
  auto& w = world();
  const TestNode node = w.node("node7");
  const Argv command = w.enroll_command(node, "evpn1_0000000000000000_" + std::string(64, '0'));

  const RunResult no_token = evpn::test::run(without(command, "--token"));
  CHECK(no_token.exit_code == 2);
  CHECK_THAT(no_token.err, Contains("--token"));

  const RunResult dsa = evpn::test::run(with(command, "--key-type", "dsa"));
  CHECK(dsa.exit_code == 2);
  CHECK_THAT(dsa.err, Contains("dsa"));
  require_untouched(node, std::nullopt);
}

TEST_CASE("an RSA-2048 node enrolls") {
  auto& w = world();
  const TestNode node = w.node("node8");
  require_enrolled(evpn::test::run(with(w.enroll_command(node, w.token()), "--key-type", "rsa-2048")));

  const auto key = ok(crypto::Key::from_pem(evpn::test::read_file(node.current() / "node.key")));
  CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA);
  CHECK(EVP_PKEY_get_bits(key.get()) == 2048);
  CHECK(json::parse(evpn::test::read_file(node.state() / "state.json"))["key_type"] == "rsa-2048");
}

TEST_CASE("an EdgeVPN config that is not valid JSON stops enrollment before the token is spent") {
  auto& w = world();
  const std::string token = w.token();
  const TestNode node = w.node("node9");
  write(node.config(), "{ broken");

  const RunResult r = w.enroll(node, token);
  CHECK(r.exit_code == 6);
  CHECK_THAT(r.err, Contains(node.config().string()));
  require_untouched(node, "{ broken");

  write(node.config(), cfx_config);
  require_enrolled(w.enroll(node, token));
}

TEST_CASE("a username held by another node needs a token pinned to it") {
  auto& w = world();
  // Its own name, so that this case does not depend on the order the others run in.
  const std::string first_serial = require_enrolled(w.enroll(w.node("node10"), w.token()))["serial"];

  const TestNode other = w.node("node10");
  write(other.config(), cfx_config);
  const RunResult unpinned = w.enroll(other, w.token());
  CHECK(unpinned.exit_code == 3);
  CHECK(output(unpinned)["error"] == "conflict");
  CHECK_THAT(unpinned.err, Contains("held by another node") && Contains("--username node10"));
  require_untouched(other, cfx_config);

  const json out = require_enrolled(w.enroll(other, w.token({"--username", "node10"})));
  CHECK(out["serial"] != first_serial);
  CHECK(ok(crypto::Certificate::from_pem(evpn::test::read_file(other.current() / "node.crt"))).serial_hex() == out["serial"]);
}

TEST_CASE("an enrollment whose login fails keeps its key, and a retry with the same one-use token gets the same certificate") {
  auto& w = world();
  const std::string token = w.token();  // one use
  const TestNode node = w.node("node12");
  // Trusting another root for the XMPP server makes the login fail after the CA has issued the
  // certificate, spent the token's one use and given the name to this key.
  const fs::path wrong_ca = node.dir / "other-root.crt";
  write(wrong_ca, evpn::test::TestPki().root_pem());
  const RunResult failed = evpn::test::run(with(w.enroll_command(node, token), "--xmpp-ca", wrong_ca));
  INFO("stdout: " << failed.out << "\nstderr: " << failed.err);
  REQUIRE(failed.exit_code == 5);
  CHECK_FALSE(fs::exists(node.current()));
  const fs::path pending_key = node.state() / ".enroll-key";
  REQUIRE(fs::exists(pending_key));
  CHECK((fs::status(pending_key).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  const std::string key_pem = evpn::test::read_file(pending_key);
  const json nodes = json::parse(w.evpn_ca({"nodes", "--json"}));
  const auto issued = std::find_if(nodes.begin(), nodes.end(), [](const json& n) { return n["username"] == "node12"; });
  REQUIRE(issued != nodes.end());

  // The login is fixed (the default trust: the pinned root); the same token is answered again.
  const json again = require_enrolled(w.enroll(node, token));
  CHECK(again["serial"] == (*issued)["serial"]);
  CHECK(again["login"]["ok"] == true);
  CHECK(evpn::test::read_file(node.current() / "node.key") == key_pem);
  CHECK_FALSE(fs::exists(pending_key));
}
