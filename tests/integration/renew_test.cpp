// evpn-agent renew end to end: the real evpn-agent and `evpn-ca serve` binaries against a real
// ejabberd on loopback, with 1-minute certificates so that the renewal window and expiry come
// within the test run. Checked by reading the node's files, the CA's store and by logging in.

#include "ca-service/store/store.hpp"
#include "tests/integration/renew_world.hpp"
#include "tests/support/test_pki.hpp"

#include <sstream>
#include <thread>

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using namespace evpn::test::renewal;
using evpn::test::read_file;
using evpn::test::RunResult;
namespace crypto = evpn::crypto;

namespace {

// The nodes with 1-minute certificates, enrolled together on first use so that the waits for
// their renewal window and for their expiry overlap.
struct BriefNodes {
  Node due = world().enrolled("due1", "brief");
  Node expiring = world().enrolled("expiring1", "brief");
};

BriefNodes& brief_nodes() {
  static BriefNodes nodes;
  return nodes;
}

// The CA's own record of certificates and nodes, read from its database while it serves.
evpn::ca::store::Store ca_store() {
  auto store = evpn::ca::store::Store::open(world().deployment.ca_dir() / "state.db");
  INFO((store ? std::string() : store.error().detail));
  REQUIRE(store.has_value());
  return std::move(*store);
}

std::string certificate_status(const std::string& serial) {
  auto record = ca_store().find_certificate(serial);
  REQUIRE(record.has_value());
  REQUIRE(record->has_value());
  return std::string(to_string((**record).status));
}

std::string ca_current_serial(const std::string& username) {
  auto node = ca_store().find_node(username);
  REQUIRE(node.has_value());
  REQUIRE(node->has_value());
  return (**node).current_serial;
}

std::string serial_of(const Node& node) {
  auto cert = current_certificate(node);
  REQUIRE(cert);
  return cert->serial_hex();
}

// A successful renewal: exit 0, "renewed": true, and the node's files hold the new pair.
json require_renewed(const RunResult& r, const Node& node) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  json out = output(r);
  REQUIRE(out.value("renewed", false));
  CHECK(out["login"]["ok"] == true);
  CHECK_THAT(out["login"].value("bound_jid", ""), StartsWith(node.username + "@" + domain + "/"));
  CHECK(serial_of(node) == out.value("serial", ""));
  CHECK(pair_matches(node));
  return out;
}

void require_login(const Node& node, const std::string& overlay) {
  const auto report = world().login(node, overlay);
  INFO((report.error ? report.error->detail : std::string()));
  CHECK(report.ok());
}

// Starts `evpn-ca serve` again when the scope ends, whatever the test's outcome.
struct StartCaAtExit {
  ~StartCaAtExit() { world().deployment.start_ca(); }
};

}  // namespace

TEST_CASE("renewal when due gives a new serial and a new key that logs in") {
  auto& w = world();
  const Node& node = brief_nodes().due;
  const std::string old_serial = serial_of(node);
  const std::string old_key = read_file(key_file(node));
  const std::string config = read_file(node.config());
  const auto before = snapshot(node.state());

  // Right after enrollment two thirds of the lifetime are left: nothing to do.
  const RunResult early = w.renew(node.state());
  INFO("stdout: " << early.out << "\nstderr: " << early.err);
  REQUIRE(early.exit_code == 0);
  const json not_due = output(early);
  CHECK(not_due["renewed"] == false);
  CHECK(not_due["reason"] == "not due");
  CHECK(not_due["serial"] == old_serial);
  CHECK(snapshot(node.state()) == before);
  CHECK(fs::read_symlink(node.current()) == "certs-" + old_serial);

  const auto renew_after = evpn::parse_rfc3339(not_due.value("renew_after", ""));
  REQUIRE(renew_after.has_value());
  const auto cert = current_certificate(node);
  REQUIRE(cert);
  CHECK(*renew_after - cert->not_before() == std::chrono::minutes(5) + std::chrono::seconds(40));
  std::this_thread::sleep_until(*renew_after + std::chrono::seconds(1));

  const json out = require_renewed(w.renew(node.state()), node);
  CHECK(out["reason"] == "due");
  CHECK(out["previous_serial"] == old_serial);
  const std::string new_serial = out["serial"];
  CHECK(new_serial != old_serial);
  CHECK(read_file(key_file(node)) != old_key);
  CHECK(fs::read_symlink(node.current()) == "certs-" + new_serial);
  CHECK(chains_to_root(node));
  // The previous pair is kept beside the new one, and EdgeVPN's config needed no change.
  CHECK(read_file(node.state() / ("certs-" + old_serial) / "node.key") == old_key);
  CHECK(read_file(node.config()) == config);
  require_login(node, brief_overlay);
  CHECK(w.deployment.xmpp().wait_for_log("Accepted c2s EXTERNAL authentication for due1@evpn.test"));

  CHECK(certificate_status(old_serial) == "superseded");
  CHECK(certificate_status(new_serial) == "active");
  CHECK(ca_current_serial("due1") == new_serial);
}

TEST_CASE("renewal is refused for a certificate that is no longer the current one") {
  auto& w = world();
  const Node node = w.enrolled("superseded1", "lab");
  const std::string old_serial = serial_of(node);
  const fs::path copy = node.dir / "state-copy";
  REQUIRE(evpn::test::run({"cp", "-a", node.state(), copy}).exit_code == 0);
  const auto copy_before = snapshot(copy);

  const json renewed = require_renewed(w.renew(node.state(), {"--force"}), node);
  CHECK(renewed["reason"] == "forced");

  const RunResult stale = w.renew(copy, {"--force"});
  INFO("stdout: " << stale.out << "\nstderr: " << stale.err);
  CHECK(stale.exit_code == 7);
  CHECK(output(stale)["error"] == "unauthorized");
  CHECK_THAT(stale.err, Contains(old_serial) && Contains("superseded"));
  CHECK(snapshot(copy) == copy_before);
  CHECK(ca_current_serial("superseded1") == renewed["serial"]);
}

TEST_CASE("renewal is refused for a certificate from a foreign CA") {
  auto& w = world();
  const Node node = w.enrolled("foreign1", "lab");
  const std::string our_serial = serial_of(node);
  // Same username, same state.json and root.crt, but a pair issued by another root.
  const evpn::test::TestPki foreign;
  const auto pair = foreign.node("foreign1", domain);
  write(cert_file(node), pair.cert.to_pem());
  write(key_file(node), pair.key.to_pem());
  const auto before = snapshot(node.state());

  const RunResult r = w.renew(node.state(), {"--force"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 7);
  CHECK(output(r)["error"] == "unauthorized");
  CHECK_THAT(r.err, Contains("cannot renew"));
  CHECK(snapshot(node.state()) == before);
  CHECK(ca_current_serial("foreign1") == our_serial);
}

TEST_CASE("--on-renew runs the hook with the new paths") {
  auto& w = world();
  const Node node = w.enrolled("hooked1", "lab");
  const fs::path env_file = node.dir / "hook.env";

  const json out = require_renewed(
      w.renew(node.state(), {"--force", "--on-renew", "env | grep '^EVPN_' > " + env_file.string()}), node);

  std::map<std::string, std::string> env;
  std::istringstream lines(read_file(env_file));
  for (std::string line; std::getline(lines, line);)
    env[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
  CHECK(env["EVPN_CERT_FILE"] == cert_file(node).string());
  CHECK(env["EVPN_KEY_FILE"] == key_file(node).string());
  CHECK(env["EVPN_ROOT_FILE"] == (node.state() / "root.crt").string());
  CHECK(env["EVPN_SERIAL"] == out["serial"]);
  CHECK(env["EVPN_USERNAME"] == "hooked1");
  CHECK(env["EVPN_NOT_AFTER"] == out["not_after"]);
  // The paths name the new pair: its certificate has the new serial and matches its key.
  auto cert = crypto::Certificate::from_pem(read_file(env["EVPN_CERT_FILE"]));
  auto key = crypto::Key::from_pem(read_file(env["EVPN_KEY_FILE"]));
  REQUIRE(cert);
  REQUIRE(key);
  CHECK(cert->serial_hex() == env["EVPN_SERIAL"]);
  CHECK(cert->matches(*key));

  // A failing hook is reported with exit 6, but the renewal it follows stays in place.
  const RunResult failed = w.renew(node.state(), {"--force", "--on-renew", "exit 3"});
  INFO("stdout: " << failed.out << "\nstderr: " << failed.err);
  CHECK(failed.exit_code == 6);
  const json failed_out = output(failed);
  CHECK(failed_out["renewed"] == true);
  CHECK_THAT(failed_out.value("hook_error", ""), Contains("exit 3"));
  CHECK(serial_of(node) == failed_out["serial"]);
  CHECK(pair_matches(node));
}

TEST_CASE("transient CA failure is retried within --retry-for, and the next run sends the same new key") {
  auto& w = world();
  const Node node = w.enrolled("transient1", "lab");
  const auto before = snapshot(node.state());
  const fs::path pending_key = node.state() / ".renew-key";
  std::string key_pem;
  {
    StartCaAtExit restart;
    w.deployment.stop_ca();
    const RunResult down = w.renew(node.state(), {"--force", "--retry-for", "5"});
    INFO("stdout: " << down.out << "\nstderr: " << down.err);
    CHECK(down.exit_code == 4);
    CHECK(output(down)["error"] == "unavailable");
    CHECK_THAT(down.err, Contains("renewal attempt 1 failed"));
    // Nothing in use changed; the new key was written (0600) before the request that carried it,
    // so that a retry after a lost answer is the same request to the CA.
    auto in_use = snapshot(node.state());
    in_use.erase(".renew-key");
    CHECK(in_use == before);
    REQUIRE(fs::exists(pending_key));
    CHECK((fs::status(pending_key).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
    key_pem = read_file(pending_key);
  }
  // Not due, but a renewal is pending: it is finished, with the same key.
  const RunResult next = w.renew(node.state());
  const json out = require_renewed(next, node);
  CHECK(out.value("reason", "") == "resumed");
  CHECK(read_file(key_file(node)) == key_pem);
  CHECK_FALSE(fs::exists(pending_key));
  require_login(node, lab_overlay);
}

TEST_CASE("a renewal whose new pair fails the XMPP login changes nothing in use and is finished by the next run") {
  auto& w = world();
  const Node node = w.enrolled("loginfail1", "lab");
  const auto before = snapshot(node.state());
  // Trusting another root for the XMPP server makes the login with the new pair fail after the
  // CA has issued it.
  const fs::path wrong_ca = node.dir / "other-root.crt";
  write(wrong_ca, evpn::test::TestPki().root_pem());

  const RunResult failed = w.renew(node.state(), {"--force", "--xmpp-ca", wrong_ca});
  INFO("stdout: " << failed.out << "\nstderr: " << failed.err);
  CHECK(failed.exit_code == 5);
  // What is in use is unchanged; the issued pair is kept aside in a staging directory, because
  // the CA has already made it the node's current certificate.
  auto in_use = snapshot(node.state());
  std::erase_if(in_use, [](const auto& entry) {
    return entry.first.starts_with(".staging-") || entry.first == ".renew-key";
  });
  CHECK(in_use == before);
  CHECK(evpn::agent::NodeFiles(node.state()).pending().size() == 1);
  require_login(node, lab_overlay);

  // The next run finishes the renewal with the kept pair instead of asking the CA again.
  const RunResult next = w.renew(node.state(), {"--force"});
  require_renewed(next, node);
  CHECK(output(next).value("reason", "") == "resumed");
}

TEST_CASE("an expired certificate needs re-enrollment, or enrolls again with a configured token") {
  auto& w = world();
  const Node& node = brief_nodes().expiring;
  const std::string old_serial = serial_of(node);
  const auto cert = current_certificate(node);
  REQUIRE(cert);
  std::this_thread::sleep_until(cert->not_after() + std::chrono::seconds(1));
  const auto before = snapshot(node.state());

  const RunResult expired = w.renew(node.state());
  INFO("stdout: " << expired.out << "\nstderr: " << expired.err);
  CHECK(expired.exit_code == 7);
  CHECK_THAT(output(expired).value("message", ""), Contains("expired"));
  CHECK_THAT(expired.err, Contains("expired"));
  CHECK(snapshot(node.state()) == before);

  const fs::path agent_config = node.dir / "agent.json";
  write(agent_config, json{{"token", w.deployment.token("brief", {"--username", "expiring1"})}}.dump());
  const RunResult again = w.renew(node.state(), {"--config", agent_config});
  INFO("stdout: " << again.out << "\nstderr: " << again.err);
  REQUIRE(again.exit_code == 0);
  const json out = output(again);
  CHECK(out["enrolled"] == true);
  const std::string new_serial = out.value("serial", "");
  CHECK(new_serial != old_serial);
  CHECK(serial_of(node) == new_serial);
  CHECK(pair_matches(node));
  CHECK(config_points_at_current(node, brief_overlay));
  require_login(node, brief_overlay);
  CHECK(ca_current_serial("expiring1") == new_serial);
}
