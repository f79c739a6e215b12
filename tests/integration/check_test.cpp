// `evpn-agent check` on nodes enrolled for real: evpn-ca serve, a real ejabberd on loopback and
// the evpn-agent binary, as in deploy/demo.sh.

#include "agent/ca_client.hpp"
#include "agent/renewal.hpp"
#include "common/crypto/csr.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/fs/atomic_file.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

using Catch::Matchers::Contains;
using Catch::Matchers::Matches;
using Catch::Matchers::StartsWith;
using evpn::test::Deployment;
using evpn::test::EjabberdServer;
using nlohmann::json;
namespace fs = std::filesystem;
using fs::perms;

namespace {

const std::string agent_bin = EVPN_AGENT_BIN;
const std::vector<std::string> all_checks = {"state",  "files",     "key-mode",    "key-match", "chain",
                                             "expiry", "ca-status", "evio-config", "xmpp-login"};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// A deployment (evpn-ca serve provisioning a real ejabberd) with three groups: "lab" (30-day
// certificates), "daily" (24-hour certificates) and "brief" (1-minute certificates, renewal due
// after 40 s).
struct World {
  Deployment deployment{"evpn-check"};
  std::map<std::string, std::string> tokens;  // group -> token

  World() {
    for (const auto& [group, overlay, lifetime] : {std::tuple{"lab", "101000F", "30d"}, {"daily", "103000F", "24h"},
                                                  {"brief", "102000F", "1m"}}) {
      deployment.add_group(group, overlay, lifetime);
      tokens[group] = deployment.token(group, {"--uses", "50"});
    }
  }

  EjabberdServer& xmpp() { return deployment.xmpp(); }

  // Enrolls <username> into `group` with a directory of its own; returns its state directory.
  fs::path enroll(const std::string& username, const std::string& group = "lab") {
    const auto node = deployment.node(username);
    const auto r = deployment.enroll(node, tokens.at(group));
    if (r.exit_code != 0) throw std::runtime_error("enrolling " + username + " failed: " + r.out + r.err);
    return node.state();
  }
};

World& world() {
  static World w;
  return w;
}

struct Checked {
  int exit_code;
  json doc;
  std::map<std::string, std::string> statuses;  // check name -> status
  std::string err;

  const json& check(const std::string& name) const {
    for (const auto& c : doc["checks"])
      if (c["name"] == name) return c;
    throw std::runtime_error("no check named " + name + " in " + doc.dump());
  }
};

Checked run_check(const fs::path& state, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {agent_bin, "check", "--state-dir", state, "--json", "--timeout", "10"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = evpn::test::run(argv);
  Checked out{r.exit_code, json::parse(r.out, nullptr, false), {}, r.err};
  if (out.doc.is_discarded() || !out.doc.contains("checks"))
    throw std::runtime_error("check printed no JSON report: " + r.out + r.err);
  for (const auto& c : out.doc["checks"]) out.statuses[c["name"].get<std::string>()] = c["status"].get<std::string>();
  return out;
}

// Every check "ok", except those named in `not_ok`.
std::map<std::string, std::string> expected(std::map<std::string, std::string> not_ok = {}) {
  std::map<std::string, std::string> all;
  for (const auto& name : all_checks) all[name] = "ok";
  for (auto& [name, status] : not_ok) all[name] = status;
  return all;
}

// Restarts the XMPP server when the scope ends, whatever the test's outcome.
struct RestartAtExit {
  EjabberdServer& server;
  ~RestartAtExit() { server.start(); }
};

// metric name -> (labels, value) from Prometheus text; HELP/TYPE lines are collected by name.
struct Metrics {
  std::map<std::string, std::pair<std::string, double>> samples;
  std::map<std::string, std::string> types;
  std::map<std::string, int> helps;
};

Metrics parse_metrics(const std::string& text) {
  Metrics m;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first, name, rest;
    words >> first;
    if (first == "#") {
      std::string kind;
      words >> kind >> name >> rest;
      if (kind == "TYPE") m.types[name] = rest;
      if (kind == "HELP") ++m.helps[name];
      continue;
    }
    const auto brace = first.find('{');
    double value = std::nan("");
    words >> value;
    m.samples[first.substr(0, brace)] = {first.substr(brace), value};
  }
  return m;
}

}  // namespace

TEST_CASE("check passes every check and exits 0 on a freshly enrolled node") {
  auto& w = world();
  const auto state = w.enroll("healthy1");

  const auto c = run_check(state);
  INFO(c.doc.dump(2) << c.err);
  CHECK(c.exit_code == 0);
  CHECK(c.doc["status"] == "ok");
  CHECK(c.statuses == expected());
  const auto& login = c.check("xmpp-login");
  CHECK_THAT(login["bound_jid"].get<std::string>(), StartsWith("healthy1@evpn.test/"));
  CHECK(login["seconds"].get<double>() >= 0);
  CHECK(c.check("key-mode")["mode"] == "0600");
  CHECK(c.check("expiry")["days_left"].get<int>() >= 29);
  CHECK(w.xmpp().wait_for_log("Accepted c2s EXTERNAL authentication for healthy1@evpn.test"));

  const auto text = evpn::test::run({agent_bin, "check", "--state-dir", state});
  CHECK(text.exit_code == 0);
  CHECK_THAT(first_line(text.out), Matches("EVPN OK - healthy1@evpn\\.test, (29|30) days left, login [0-9]+ ms"));
  CHECK_THAT(text.out, Contains("\nOK       key-mode     0600\n"));
}

TEST_CASE("check warns with exit 1 when the certificate expires within --warn-days") {
  auto& w = world();
  const auto state = w.enroll("warned1");
  const auto c = run_check(state, {"--warn-days", "36500"});
  INFO(c.doc.dump(2) << c.err);
  CHECK(c.exit_code == 1);
  CHECK(c.doc["status"] == "warning");
  CHECK(c.statuses == expected({{"expiry", "warning"}}));
  CHECK_THAT(c.check("expiry")["message"].get<std::string>(), Contains("within the warning window"));
}

TEST_CASE("a fresh 24-hour certificate is OK: the default warning window is a sixth of a short lifetime") {
  auto& w = world();
  const auto state = w.enroll("daily1", "daily");
  const auto c = run_check(state);
  INFO(c.doc.dump(2) << c.err);
  CHECK(c.exit_code == 0);
  CHECK(c.statuses == expected());
  CHECK(c.check("expiry")["warning_window_seconds"] == 4 * 3600);

  // --warn-days still overrides it, for a monitoring policy of its own.
  const auto overridden = run_check(state, {"--warn-days", "2"});
  INFO(overridden.doc.dump(2) << overridden.err);
  CHECK(overridden.exit_code == 1);
  CHECK(overridden.statuses == expected({{"expiry", "warning"}}));
  CHECK_THAT(overridden.check("expiry")["message"].get<std::string>(), Contains("within the warning window of 2 days"));
}

TEST_CASE("check is critical with exit 2 while the XMPP server is down and names the xmpp-login check") {
  auto& w = world();
  const auto state = w.enroll("outage1");
  const fs::path metrics = state.parent_path() / "evpn_agent.prom";
  {
    w.xmpp().stop();
    RestartAtExit restart{w.xmpp()};
    const auto c = run_check(state, {"--metrics", metrics});
    INFO(c.doc.dump(2) << c.err);
    CHECK(c.exit_code == 2);
    CHECK(c.doc["status"] == "critical");
    CHECK(c.statuses == expected({{"xmpp-login", "critical"}}));
    CHECK_THAT(c.check("xmpp-login")["message"].get<std::string>(), Contains("cannot reach the XMPP server"));
  }
  const auto m = parse_metrics(*evpn::fs::read_file(metrics));
  CHECK(m.samples.at("evpn_agent_login_ok").second == 0);
  CHECK(m.samples.at("evpn_agent_check_status").second == 2);

  // Back up, the same node is healthy again.
  CHECK(run_check(state).exit_code == 0);
}

TEST_CASE("check is critical with exit 2 when the key is replaced by another key and names key-match") {
  auto& w = world();
  const auto state = w.enroll("swapped1");
  const auto other = evpn::crypto::Key::generate(evpn::crypto::KeyType::ec_p256);
  REQUIRE(other.has_value());
  REQUIRE(evpn::fs::write_file_atomic(state / "current/node.key", other->to_pem(),
                                      perms::owner_read | perms::owner_write)
              .has_value());

  const auto c = run_check(state);
  INFO(c.doc.dump(2) << c.err);
  CHECK(c.exit_code == 2);
  CHECK(c.doc["status"] == "critical");
  // The server is fine, but a key that is not the certificate's cannot log in either.
  CHECK(c.statuses == expected({{"key-match", "critical"}, {"ca-status", "unknown"}, {"xmpp-login", "critical"}}));
  CHECK_THAT(c.check("key-match")["message"].get<std::string>(), Contains("is not the key of node.crt"));
}

TEST_CASE("a key readable by others is critical, a merely unusual key mode is a warning") {
  auto& w = world();
  const auto state = w.enroll("modes1");
  const fs::path key = state / "current/node.key";

  fs::permissions(key, perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
  const auto open = run_check(state);
  INFO(open.doc.dump(2) << open.err);
  CHECK(open.exit_code == 2);
  CHECK(open.statuses == expected({{"key-mode", "critical"}}));
  CHECK_THAT(open.check("key-mode")["message"].get<std::string>(), StartsWith("0644: the private key is open"));

  fs::permissions(key, perms::owner_read);
  const auto read_only = run_check(state);
  INFO(read_only.doc.dump(2));
  CHECK(read_only.exit_code == 1);
  CHECK(read_only.statuses == expected({{"key-mode", "warning"}}));
}

TEST_CASE("check on a node that never enrolled is UNKNOWN with exit 3") {
  auto& w = world();
  const fs::path state = w.deployment.dir() / "never-enrolled";
  const auto c = run_check(state);
  CHECK(c.exit_code == 3);
  CHECK(c.doc["status"] == "unknown");
  CHECK(c.statuses == std::map<std::string, std::string>{{"state", "unknown"}});
  CHECK_THAT(c.check("state")["message"].get<std::string>(), Contains("not enrolled"));
}

TEST_CASE("check --metrics writes the gauges for node_exporter's textfile collector") {
  auto& w = world();
  const auto state = w.enroll("metrics1");
  const fs::path file = state.parent_path() / "evpn_agent.prom";
  REQUIRE(run_check(state, {"--metrics", file}).exit_code == 0);

  CHECK((fs::status(file).permissions() & perms::mask) ==
        (perms::owner_read | perms::owner_write | perms::group_read | perms::others_read));
  const auto text = evpn::fs::read_file(file);
  REQUIRE(text.has_value());
  INFO(*text);
  const auto m = parse_metrics(*text);
  const auto cert = evpn::crypto::Certificate::from_pem(*evpn::fs::read_file(state / "current/node.crt"));
  REQUIRE(cert.has_value());
  for (const auto* name : {"evpn_agent_certificate_expiry_timestamp_seconds", "evpn_agent_login_ok",
                           "evpn_agent_login_seconds", "evpn_agent_check_status"}) {
    REQUIRE(m.samples.count(name) == 1);
    CHECK(m.samples.at(name).first == "{username=\"metrics1\"}");
    CHECK(m.types.at(name) == "gauge");
    CHECK(m.helps.at(name) == 1);
  }
  CHECK(m.samples.at("evpn_agent_certificate_expiry_timestamp_seconds").second ==
        static_cast<double>(evpn::to_unix(cert->not_after())));
  CHECK(m.samples.at("evpn_agent_login_ok").second == 1);
  CHECK(m.samples.at("evpn_agent_login_seconds").second >= 0);
  CHECK(m.samples.at("evpn_agent_check_status").second == 0);
  // Nothing but the metrics file is left in its directory (no temporary file ending in .prom).
  CHECK(std::distance(fs::directory_iterator(file.parent_path()), {}) == 3);  // config.json, state, .prom
}

// Last, because it waits: a 1-minute certificate is due for renewal 40 s after issuance.
TEST_CASE("check turns from OK to WARNING (exit 1) once the certificate is due for renewal") {
  auto& w = world();
  const auto state = w.enroll("brief1", "brief");
  const auto cert = evpn::crypto::Certificate::from_pem(*evpn::fs::read_file(state / "current/node.crt"));
  REQUIRE(cert.has_value());
  const auto due = evpn::agent::renew_after(*cert);

  const auto before = run_check(state, {"--warn-days", "0"});
  INFO(before.doc.dump(2) << before.err);
  CHECK(before.exit_code == 0);
  CHECK(before.statuses == expected());

  std::this_thread::sleep_until(due + std::chrono::seconds(1));
  const auto after = run_check(state, {"--warn-days", "0"});
  INFO(after.doc.dump(2) << after.err);
  CHECK(after.exit_code == 1);
  CHECK(after.statuses == expected({{"expiry", "warning"}}));
  CHECK_THAT(after.check("expiry")["message"].get<std::string>(), Contains("renewal due since"));
}

TEST_CASE("check is critical when the CA has renewed the node's certificate for another key") {
  auto& w = world();
  const auto state = w.enroll("replaced1");
  REQUIRE(run_check(state).statuses == expected());
  // Someone holding the node's pair (a copy of the node, or a renewal whose answer was lost)
  // renewed it with a key this node does not have.
  const auto read = [](const fs::path& file) { return *evpn::fs::read_file(file); };
  auto ca = evpn::agent::CaClient::with_root(w.deployment.ca_url(),
                                             *evpn::crypto::Certificate::from_pem(read(state / "root.crt")),
                                             read(state / "current/node.crt"), read(state / "current/node.key"),
                                             std::chrono::seconds(10));
  REQUIRE(ca.has_value());
  const auto other = *evpn::crypto::Key::generate(evpn::crypto::KeyType::ec_p256);
  const auto renewed = ca->renew({evpn::crypto::Csr::create(other, "replaced1")->to_pem()});
  REQUIRE(renewed.has_value());

  const auto c = run_check(state);
  INFO(c.doc.dump(2) << c.err);
  CHECK(c.exit_code == 2);
  CHECK(c.statuses == expected({{"ca-status", "critical"}}));
  CHECK(c.check("ca-status")["ca_status"] == "superseded");
  CHECK_THAT(c.check("ca-status")["message"].get<std::string>(), Contains("evpn-agent renew"));
}

TEST_CASE("check is critical when the operator revoked the node, and only warns about ca-status while the CA is down") {
  auto& w = world();
  const auto state = w.enroll("revoked1");
  {
    w.deployment.stop_ca();
    struct StartCa {
      Deployment& d;
      ~StartCa() { d.start_ca(); }
    } start{w.deployment};
    const auto down = run_check(state);
    INFO(down.doc.dump(2) << down.err);
    CHECK(down.exit_code == 1);
    CHECK(down.statuses == expected({{"ca-status", "warning"}}));
    CHECK_THAT(down.check("ca-status")["message"].get<std::string>(), Contains("not critical"));
  }
  w.deployment.evpn_ca({"revoke", "--username", "revoked1"});
  const auto c = run_check(state);
  INFO(c.doc.dump(2) << c.err);
  CHECK(c.exit_code == 2);
  CHECK(c.statuses.at("ca-status") == "critical");
  CHECK(c.check("ca-status")["ca_status"] == "revoked");
  CHECK_THAT(c.check("ca-status")["message"].get<std::string>(), Contains("operator revoked"));
}
