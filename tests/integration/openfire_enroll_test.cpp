// Enrollment through the Openfire backend: `evpn-ca init --directory openfire` pointed at the
// openfire-standin program (Openfire itself cannot run here), the real `evpn-ca serve`, a real
// ejabberd for the agent's login check (ejabberd's EXTERNAL login does not need the account, so
// the login works while the stand-in records the provisioning), and the real evpn-agent.

#include <openssl/pkcs12.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "common/crypto/certificate.hpp"
#include "common/crypto/handle.hpp"
#include "common/net/https_client.hpp"
#include "tests/support/ejabberd_server.hpp"
#include "tests/support/process.hpp"

using Catch::Matchers::Contains;
using evpn::test::BackgroundProcess;
using evpn::test::EjabberdServer;
using evpn::test::RunResult;
using evpn::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string domain = "evpn.test";
const std::string secret = "of-standin-4f1c9e";
using Argv = std::vector<std::string>;

std::string read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uint16_t port_other_than(std::initializer_list<std::uint16_t> taken) {
  for (;;)
    if (auto port = evpn::test::free_port(); std::find(taken.begin(), taken.end(), port) == taken.end()) return port;
}

void wait_until_listening(std::uint16_t port, BackgroundProcess& process, const fs::path& log,
                          const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!evpn::test::wait_for_port(port, std::chrono::milliseconds(100)))
    if (!process.alive() || std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error(what + " did not start listening on port " + std::to_string(port) + ":\n" + read(log));
}

// The CA (directory: openfire at the stand-in), the stand-in, ejabberd and `evpn-ca serve`.
struct World {
  TempDir dir{"evpn-openfire-enroll"};
  fs::path ca_dir = dir.path() / "ca";
  fs::path secret_file = dir.path() / "restapi.secret";
  EjabberdServer xmpp{{domain, dir.path() / "xmpp.pem", ca_dir / "ca.crt", dir.path() / "ejabberd"}};
  std::uint16_t openfire_port = port_other_than({xmpp.c2s_port()});
  std::uint16_t ca_port = port_other_than({xmpp.c2s_port(), openfire_port});
  std::string openfire_url = "http://127.0.0.1:" + std::to_string(openfire_port) + "/plugins/restapi/v1";
  std::string ca_url = "https://127.0.0.1:" + std::to_string(ca_port);
  std::string fingerprint;
  std::optional<BackgroundProcess> openfire;
  std::optional<BackgroundProcess> ca_service;
  int starts = 0;

  World() {
    std::ofstream(secret_file) << secret << "\n";
    start_openfire(false);
    fingerprint =
        evpn_ca({"init", "--dir", ca_dir.string(), "--xmpp-domain", domain, "--xmpp-host", "127.0.0.1", "--xmpp-port",
                 std::to_string(xmpp.c2s_port()), "--directory", "openfire", "--directory-url", openfire_url,
                 "--directory-secret-file", secret_file.string(), "--listen", "127.0.0.1:" + std::to_string(ca_port),
                 "--metrics-listen", ""})
            .out;
    fingerprint.erase(fingerprint.find_last_not_of('\n') + 1);
    evpn_ca({"server-cert", "--dir", ca_dir.string(), "--name", domain, "--name", "localhost", "--name", "127.0.0.1",
             "--out", (dir.path() / "xmpp").string()});
    xmpp.start();
    const fs::path log = dir.path() / "ca-serve.log";
    ca_service.emplace(Argv{EVPN_CA_BIN, "serve", "--dir", ca_dir.string()}, log);
    wait_until_listening(ca_port, *ca_service, log, "evpn-ca serve");
    evpn_ca({"group", "add", "--dir", ca_dir.string(), "--name", "vnet", "--overlay", "101000F"});
  }

  // (Re)starts openfire-standin on the same port; a new one starts with no users or groups.
  void start_openfire(bool disabled) {
    if (openfire) openfire->stop();
    const fs::path log = dir.path() / ("openfire-" + std::to_string(++starts) + ".log");
    Argv argv{OPENFIRE_STANDIN_BIN, "--port", std::to_string(openfire_port), "--secret", secret};
    if (disabled) argv.push_back("--disabled");
    openfire.emplace(argv, log);
    wait_until_listening(openfire_port, *openfire, log, "openfire-standin");
  }

  static RunResult evpn_ca(Argv args, int expected_exit = 0) {
    args.insert(args.begin(), EVPN_CA_BIN);
    RunResult r = evpn::test::run(args);
    if (r.exit_code != expected_exit)
      throw std::runtime_error("evpn-ca " + args[1] + " exited with " + std::to_string(r.exit_code) + ": " + r.out +
                               r.err);
    return r;
  }

  std::string token(int uses = 1) const {
    std::string t =
        evpn_ca({"token", "create", "--dir", ca_dir.string(), "--group", "vnet", "--uses", std::to_string(uses)}).out;
    return t.substr(0, t.find_last_not_of('\n') + 1);
  }

  RunResult enroll(const std::string& username, const std::string& token, Argv extra = {}) const {
    const fs::path node = dir.path() / "nodes" / username;
    fs::create_directories(node);
    Argv argv{EVPN_AGENT_BIN,  "enroll",
              "--ca-url",      ca_url,
              "--fingerprint", fingerprint,
              "--token",       token,
              "--username",    username,
              "--state-dir",   (node / "state").string(),
              "--evio-config", (node / "config.json").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return evpn::test::run(argv);
  }

  fs::path node_cert(const std::string& username) const {
    return dir.path() / "nodes" / username / "state" / "current" / "node.crt";
  }

  // A GET on the stand-in's REST API, as an operator would look at Openfire.
  std::pair<int, json> openfire_get(const std::string& path) const {
    evpn::net::HttpRequest request;
    request.url = *evpn::net::parse_url(openfire_url + path);
    request.headers = {{"Authorization", secret}, {"Accept", "application/json"}};
    auto response = evpn::net::HttpClient(evpn::net::ClientTls{}).send(request);
    REQUIRE(response.has_value());
    return {response->status, json::parse(response->body, nullptr, false)};
  }
};

World& world() {
  static World w;
  return w;
}

}  // namespace

TEST_CASE("an enrollment through evpn-ca serve provisions the user, the shared group and the membership in Openfire") {
  auto& w = world();
  const fs::path trust_dir = w.dir.path() / "trust";
  fs::create_directories(trust_dir);
  const RunResult r = w.enroll("node1", w.token(), {"--install-root", "--system-trust-dir", trust_dir.string()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("login       verified: SASL EXTERNAL bound node1@evpn.test"));
  CHECK(fs::exists(w.node_cert("node1")));

  auto [user_status, user] = w.openfire_get("/users/node1");
  CHECK(user_status == 200);
  CHECK(user["username"] == "node1");
  auto [group_status, group] = w.openfire_get("/groups/vnet");
  REQUIRE(group_status == 200);
  CHECK(group["shared"] == true);
  CHECK(group["members"] == json{"node1@evpn.test"});
  auto [groups_status, groups] = w.openfire_get("/users/node1/groups");
  CHECK(groups["groupnames"] == json{"vnet"});

  const std::string log = read(w.dir.path() / "openfire-1.log");
  CHECK_THAT(log, Contains("POST /plugins/restapi/v1/groups -> 201"));
  CHECK_THAT(log, Contains("POST /plugins/restapi/v1/users -> 201"));
  CHECK_THAT(log, Contains("POST /plugins/restapi/v1/users/node1/groups/vnet -> 201"));

  // --install-root put the pinned root where update-ca-certificates would pick it up.
  const fs::path trusted = trust_dir / ("evpn-enroll-" + w.fingerprint.substr(0, 16) + ".crt");
  CHECK(read(trusted) == read(w.ca_dir / "ca.crt"));
  CHECK_THAT(r.err, Contains("installed the CA root in the system trust store as " + trusted.string()));

  // The config names where the secret is, never the secret itself.
  const json config = json::parse(read(w.ca_dir / "config.json"));
  CHECK(config["directory"]["type"] == "openfire");
  CHECK(config["directory"]["auth"] == "secret");
  CHECK(config["directory"]["secret_file"] == w.secret_file.string());
  CHECK_THAT(read(w.ca_dir / "config.json"), !Contains(secret));
}

TEST_CASE("while the REST API plugin is disabled the CA answers 503, the agent exits 4 and keeps the token") {
  auto& w = world();
  const std::string token = w.token(1);
  w.start_openfire(true);
  const RunResult refused = w.enroll("node2", token);
  INFO("stdout: " << refused.out << "\nstderr: " << refused.err);
  CHECK(refused.exit_code == 4);
  CHECK_THAT(refused.err, Contains("no token was spent"));
  // The node learns the kind of failure; Openfire's answer and address are for the CA's log.
  CHECK_THAT(refused.err, Contains("refused the CA's request"));
  CHECK_THAT(refused.err, !Contains("HTTP 403") && !Contains("restapi"));
  CHECK_THAT(refused.err, !Contains(secret));
  CHECK_FALSE(fs::exists(w.node_cert("node2")));
  CHECK_THAT(read(w.dir.path() / "ca-serve.log"), Contains("HTTP 403") && !Contains(secret));

  // Once the plugin is back, the same single-use token still works.
  w.start_openfire(false);
  const RunResult enrolled = w.enroll("node2", token);
  INFO("stdout: " << enrolled.out << "\nstderr: " << enrolled.err);
  CHECK(enrolled.exit_code == 0);
  auto [status, group] = w.openfire_get("/groups/vnet");
  CHECK(status == 200);
  CHECK(group["members"] == json{"node2@evpn.test"});
}

TEST_CASE("a failed --install-root keeps the enrollment and exits 6") {
  auto& w = world();
  const RunResult r =
      w.enroll("node3", w.token(), {"--install-root", "--system-trust-dir", (w.dir.path() / "absent").string()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 6);
  CHECK_THAT(r.err, Contains("its enrollment is kept"));
  CHECK(fs::exists(w.node_cert("node3")));
}

TEST_CASE("evpn-ca openfire check reports WRONG settings, setup fixes them and prints the keytool import") {
  auto& w = world();
  const RunResult before = World::evpn_ca({"openfire", "check", "--dir", w.ca_dir.string()}, 1);
  INFO("check before:\n" << before.out << before.err);
  CHECK_THAT(before.out, Contains("OK     REST API plugin: enabled, and it accepts our credentials"));
  CHECK_THAT(before.out, Contains("WRONG  xmpp.client.cert.policy = (unset)"));

  const RunResult setup = World::evpn_ca({"openfire", "setup", "--dir", w.ca_dir.string()});
  INFO("setup:\n" << setup.out << setup.err);
  CHECK_THAT(setup.out, Contains("set    xmpp.client.cert.policy = needed (was unset)"));
  CHECK_THAT(setup.out, Contains("keytool -importcert -noprompt -trustcacerts -alias evpn-enroll-" +
                                 w.fingerprint.substr(0, 16) + " -file " + fs::absolute(w.ca_dir / "ca.crt").string() +
                                 " -keystore /usr/share/openfire/resources/security/client.truststore "
                                 "-storepass changeit"));
  CHECK_THAT(setup.out, Contains("systemctl restart openfire"));
  if (fs::exists("/usr/bin/keytool")) {
    const fs::path truststore = w.dir.path() / "client.truststore";
    const RunResult imported = evpn::test::run({"keytool", "-importcert", "-noprompt", "-trustcacerts", "-alias",
                                                "evpn-enroll-" + w.fingerprint.substr(0, 16), "-file",
                                                fs::absolute(w.ca_dir / "ca.crt").string(), "-keystore",
                                                truststore.string(), "-storepass", "changeit"});
    INFO(imported.out << imported.err);
    CHECK(imported.exit_code == 0);
  }

  const RunResult after = World::evpn_ca({"openfire", "check", "--dir", w.ca_dir.string()});
  CHECK_THAT(after.out, Contains("result: OK"));
}

TEST_CASE("evpn-ca server-cert --pkcs12 writes a keystore for Openfire and prints the keytool commands") {
  auto& w = world();
  const fs::path prefix = w.dir.path() / "openfire-tls";
  const RunResult r = World::evpn_ca({"server-cert", "--dir", w.ca_dir.string(), "--name", domain, "--out",
                                      prefix.string(), "--pkcs12", "--pkcs12-password", "s3cret"});
  CHECK_THAT(r.err, Contains("keytool -importkeystore -noprompt -srckeystore " + prefix.string() +
                             ".p12 -srcstoretype PKCS12 -srcstorepass s3cret -srcalias evpn.test"));
  const fs::path p12_file = prefix.string() + ".p12";
  CHECK((fs::status(p12_file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  const std::string der = read(p12_file);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  evpn::crypto::Handle<PKCS12, PKCS12_free> p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(p12);
  CHECK(PKCS12_verify_mac(p12.get(), "s3cret", -1) == 1);

  // Java's keytool (when installed) reads it with the printed arguments, as Openfire's host would.
  if (fs::exists("/usr/bin/keytool")) {
    const fs::path keystore = w.dir.path() / "openfire-keystore";
    const RunResult imported =
        evpn::test::run({"keytool", "-importkeystore", "-noprompt", "-srckeystore", p12_file.string(), "-srcstoretype",
                         "PKCS12", "-srcstorepass", "s3cret", "-srcalias", domain, "-destkeystore", keystore.string(),
                         "-deststorepass", "changeit", "-destalias", domain});
    INFO(imported.out << imported.err);
    CHECK(imported.exit_code == 0);
    const RunResult listed =
        evpn::test::run({"keytool", "-list", "-keystore", keystore.string(), "-storepass", "changeit"});
    CHECK_THAT(listed.out, Contains(domain + ", ") && Contains("PrivateKeyEntry"));
  }

  const RunResult refused = World::evpn_ca(
      {"init", "--dir", (w.dir.path() / "ca2").string(), "--xmpp-domain", domain, "--directory", "openfire"}, 1);
  CHECK_THAT(refused.err, Contains("--directory-secret-file"));
}
