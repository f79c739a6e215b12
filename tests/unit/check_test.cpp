// The parts of `evpn-agent check` that need no servers: the expiry and renewal window on crafted
// certificates, key modes and EdgeVPN configs on crafted files, status aggregation and output.

#include "agent/check.hpp"
#include "agent/check_report.hpp"
#include "agent/evio_config.hpp"
#include "agent/renewal.hpp"
#include "common/fs/atomic_file.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using evpn::TimePoint;
using evpn::agent::CheckResult;
using evpn::agent::CheckStatus;
using evpn::agent::HealthReport;
using nlohmann::json;
namespace stdfs = std::filesystem;
using stdfs::perms;
using namespace std::chrono_literals;

namespace {

constexpr auto days = std::chrono::days(1);
const TimePoint issued = evpn::from_unix(1'800'000'000);

// A production-profile certificate issued at `issued` for `lifetime`.
evpn::crypto::Certificate certificate(std::chrono::seconds lifetime) {
  static const evpn::test::TestPki pki;
  auto key = evpn::crypto::Key::generate(evpn::crypto::KeyType::ec_p256);
  auto node = pki.signer().issue_node(key->get(), {"node1", "evpn.test", lifetime}, issued);
  REQUIRE(node.has_value());
  auto cert = evpn::crypto::Certificate::from_pem(node->pem);
  REQUIRE(cert.has_value());
  return std::move(*cert);
}

std::vector<CheckResult> with(std::initializer_list<CheckStatus> statuses) {
  std::vector<CheckResult> out;
  for (auto s : statuses) out.push_back({"c" + std::to_string(out.size()), s, "m"});
  return out;
}

void write(const stdfs::path& file, const std::string& text, perms mode = perms::owner_read | perms::owner_write) {
  REQUIRE(evpn::fs::write_file_atomic(file, text, mode).has_value());
}

// A state directory with current -> certs-1/{node.crt,node.key} and an EdgeVPN config written
// by the real merge, as enrollment leaves them.
struct Node {
  evpn::test::TempDir dir{"evpn-check-unit"};
  stdfs::path state = dir.path() / "state";
  stdfs::path cert = state / "current/node.crt";
  stdfs::path key = state / "current/node.key";
  stdfs::path config = dir.path() / "config.json";

  explicit Node(const std::string& existing_config = "") {
    stdfs::create_directories(state / "certs-1");
    stdfs::create_directory_symlink("certs-1", state / "current");
    write(cert, "certificate");
    write(key, "key");
    write(config, existing_config, perms::owner_read | perms::owner_write);
    REQUIRE(evpn::agent::update_config_file(
                config, "101000F", {"127.0.0.1", "5222", (state / "current").string(), "node.crt", "node.key"})
                .has_value());
  }

  CheckResult check() const { return evpn::agent::check_evio_config(config, "101000F", cert, key); }

  // Rewrites the config with `edit` applied to its JSON.
  template <class Edit>
  void edit(Edit edit) {
    auto doc = json::parse(*evpn::fs::read_file(config));
    edit(doc);
    write(config, doc.dump());
  }
};

}  // namespace

TEST_CASE("the renewal window opens when a third of the lifetime is left, not counting the backdating") {
  const auto cert = certificate(30 * days);
  CHECK(cert.not_before() == issued - 5min);
  CHECK(evpn::agent::renew_after(cert) == issued + 20 * days);

  const auto at = [&](TimePoint now) { return evpn::agent::check_expiry(cert, now, 7 * days); };
  CHECK(at(issued).status == CheckStatus::ok);
  CHECK(at(issued + 20 * days - 1s).status == CheckStatus::ok);
  const auto due = at(issued + 20 * days);
  CHECK(due.status == CheckStatus::warning);
  CHECK_THAT(due.message, Contains("renewal due since 2027-02-04T08:00:00Z"));
  CHECK(due.data["days_left"] == 10);
  CHECK(due.data["expiry_timestamp"] == 1'800'000'000 + 30 * 86400);
}

TEST_CASE("a certificate expiring within the warning window warns even before renewal is due") {
  const auto cert = certificate(30 * days);
  const auto now = issued + 15 * days;  // 15 days left, renewal due at 10
  CHECK(evpn::agent::check_expiry(cert, now, 7 * days).status == CheckStatus::ok);
  const auto warned = evpn::agent::check_expiry(cert, now, 16 * days);
  CHECK(warned.status == CheckStatus::warning);
  CHECK_THAT(warned.message, StartsWith("15 days left"));
  CHECK_THAT(warned.message, Contains("within the warning window of 16 days"));
}

TEST_CASE("the default warning window is a sixth of a short lifetime and at most seven days") {
  using evpn::agent::warning_window;
  CHECK(warning_window(certificate(24h), std::nullopt) == 4h);
  CHECK(warning_window(certificate(1h), std::nullopt) == 10min);
  CHECK(warning_window(certificate(42 * days), std::nullopt) == 7 * days);
  CHECK(warning_window(certificate(30 * days), std::nullopt) == 5 * days);
  // A fresh 24-hour certificate is OK, not WARNING for its whole life.
  const auto daily = certificate(24h);
  CHECK(evpn::agent::check_expiry(daily, issued + 1h, warning_window(daily, std::nullopt)).status == CheckStatus::ok);
}

TEST_CASE("--warn-days overrides the default warning window, whatever the lifetime") {
  using evpn::agent::warning_window;
  CHECK(warning_window(certificate(24h), 7) == 7 * days);
  CHECK(warning_window(certificate(24h), 0) == 0s);
  CHECK(warning_window(certificate(365 * days), 30) == 30 * days);
}

TEST_CASE("an expired or not yet valid certificate is critical") {
  const auto cert = certificate(1h);
  const auto expired = evpn::agent::check_expiry(cert, issued + 1h, 0s);
  CHECK(expired.status == CheckStatus::critical);
  CHECK_THAT(expired.message, StartsWith("expired 0 s ago"));
  CHECK(expired.data["seconds_left"] == 0);
  CHECK(evpn::agent::check_expiry(cert, issued + 3 * days, 0s).data["days_left"] == -3);

  const auto early = evpn::agent::check_expiry(cert, issued - 6min, 0s);
  CHECK(early.status == CheckStatus::critical);
  CHECK_THAT(early.message, Contains("clock"));
}

TEST_CASE("key mode: 0600 is ok, any access for others is critical, other modes warn") {
  evpn::test::TempDir dir;
  const auto key = dir.path() / "node.key";
  write(key, "key");
  const auto mode_of = [&](perms p) {
    stdfs::permissions(key, p);
    return evpn::agent::check_key_mode(key);
  };
  const auto rw = perms::owner_read | perms::owner_write;
  CHECK(mode_of(rw).status == CheckStatus::ok);
  CHECK(mode_of(rw).message == "0600");
  CHECK(mode_of(rw | perms::group_read).status == CheckStatus::critical);
  CHECK(mode_of(rw | perms::others_write).status == CheckStatus::critical);
  const auto world_readable = mode_of(rw | perms::group_read | perms::others_read);
  CHECK(world_readable.data["mode"] == "0644");
  CHECK_THAT(world_readable.message, Contains("chmod 600 " + key.string()));
  CHECK(mode_of(perms::owner_read).status == CheckStatus::warning);
  CHECK(mode_of(perms::owner_all).status == CheckStatus::warning);
  CHECK(evpn::agent::check_key_mode(dir.path() / "missing.key").status == CheckStatus::unknown);
}

TEST_CASE("the EdgeVPN config written at enrollment passes, for both config generations") {
  const Node broker;
  const auto ok = broker.check();
  INFO(ok.message);
  CHECK(ok.status == CheckStatus::ok);
  CHECK_THAT(ok.message, Contains("listed in Broker.Overlays"));

  const Node cfx(R"({"CFx": {"Overlays": []}})");
  CHECK(cfx.check().status == CheckStatus::ok);
  CHECK_THAT(cfx.check().message, Contains("listed in CFx.Overlays"));
}

TEST_CASE("the EdgeVPN config may name the same files by an absolute path or through symlinks") {
  Node node;
  node.edit([&](json& doc) {
    doc["Signal"]["Overlays"]["101000F"]["CertDirectory"] = "/nonexistent";
    doc["Signal"]["Overlays"]["101000F"]["CertFile"] = node.cert.string();
    doc["Signal"]["Overlays"]["101000F"]["KeyFile"] = (node.state / "certs-1/node.key").string();
  });
  CHECK(node.check().status == CheckStatus::ok);
}

TEST_CASE("an EdgeVPN config that would not log in with this node's files is critical, saying why") {
  Node node;
  const auto entry = [](json& doc) -> json& { return doc["Signal"]["Overlays"]["101000F"]; };
  const std::vector<std::pair<std::function<void(json&)>, std::string>> breakages = {
      {[&](json& doc) { entry(doc)["AuthenticationMethod"] = "PASSWORD"; },
       "AuthenticationMethod is \"PASSWORD\", not \"x509\""},
      {[&](json& doc) { entry(doc)["AuthenticationMethod"] = "X509"; }, "not \"x509\""},
      {[&](json& doc) { entry(doc).erase("AuthenticationMethod"); }, "AuthenticationMethod is missing"},
      {[&](json& doc) { entry(doc)["CertDirectory"] = "/etc/ssl"; }, "CertDirectory/CertFile is /etc/ssl/node.crt"},
      {[&](json& doc) { entry(doc)["KeyFile"] = "old.key"; }, "CertDirectory/KeyFile is"},
      {[&](json& doc) { entry(doc).erase("CertFile"); }, "lacks CertDirectory, CertFile or KeyFile"},
      {[&](json& doc) { doc["Broker"]["Overlays"] = json::array(); }, "not listed in Broker.Overlays"},
      {[&](json& doc) { doc["Signal"]["Overlays"].erase("101000F"); }, "Signal.Overlays.101000F is missing"},
  };
  for (const auto& [breakage, reason] : breakages) {
    Node broken;
    broken.edit(breakage);
    const auto r = broken.check();
    INFO(reason);
    CHECK(r.status == CheckStatus::critical);
    CHECK_THAT(r.message, Contains(reason));
  }

  write(node.config, "{ not json");
  CHECK(node.check().status == CheckStatus::critical);
  stdfs::remove(node.config);
  CHECK_THAT(node.check().message, Contains("does not exist"));
}

TEST_CASE("the overall status is the worst check, and UNKNOWN only when nothing else went wrong") {
  using S = CheckStatus;
  const auto overall = [](std::initializer_list<S> s) { return HealthReport{"u", "u@d", with(s)}.status(); };
  CHECK(overall({S::ok, S::ok}) == S::ok);
  CHECK(overall({S::ok, S::unknown}) == S::unknown);
  CHECK(overall({S::unknown, S::warning, S::ok}) == S::warning);
  CHECK(overall({S::critical, S::unknown, S::warning}) == S::critical);
  CHECK(overall({}) == S::unknown);
}

TEST_CASE("the text report starts with a Nagios-style summary and has one line per check") {
  HealthReport r{"node1", "node1@evpn.test", {}};
  r.checks.push_back({"key-mode", CheckStatus::ok, "0600"});
  r.checks.push_back({"expiry", CheckStatus::warning, "5 days left", {{"seconds_left", 5 * 86400 + 10}}});
  r.checks.push_back({"xmpp-login", CheckStatus::ok, "bound"});
  r.expiry = {evpn::TimePoint{}, std::chrono::seconds(5 * 86400 + 10)};
  r.login = {true, std::chrono::milliseconds(120)};
  CHECK(evpn::agent::format_text(r) ==
        "EVPN WARNING - node1@evpn.test, 5 days left, login 120 ms; problems: expiry\n"
        "OK       key-mode     0600\n"
        "WARNING  expiry       5 days left\n"
        "OK       xmpp-login   bound\n");

  const auto doc = evpn::agent::to_json(r);
  CHECK(doc["status"] == "warning");
  CHECK(doc["checks"][1] == json{{"name", "expiry"}, {"status", "warning"}, {"message", "5 days left"},
                                 {"seconds_left", 5 * 86400 + 10}});
}

TEST_CASE("metrics are Prometheus gauges with HELP and TYPE, labelled with the escaped username") {
  HealthReport r{"we\"ird\\", "x@d", {}};
  r.checks.push_back({"expiry", CheckStatus::ok, ""});
  r.checks.push_back({"xmpp-login", CheckStatus::critical, "refused"});
  r.expiry = {evpn::TimePoint{std::chrono::seconds(1800000000)}, std::chrono::seconds(86400)};
  r.login = {false, std::chrono::milliseconds(250)};
  CHECK(evpn::agent::format_metrics(r) ==
        "# HELP evpn_agent_certificate_expiry_timestamp_seconds When the node certificate expires (notAfter), in "
        "seconds since the Unix epoch.\n"
        "# TYPE evpn_agent_certificate_expiry_timestamp_seconds gauge\n"
        "evpn_agent_certificate_expiry_timestamp_seconds{username=\"we\\\"ird\\\\\"} 1800000000\n"
        "# HELP evpn_agent_login_ok 1 when the last SASL EXTERNAL login check succeeded, else 0.\n"
        "# TYPE evpn_agent_login_ok gauge\n"
        "evpn_agent_login_ok{username=\"we\\\"ird\\\\\"} 0\n"
        "# HELP evpn_agent_login_seconds How long the last XMPP login check took, in seconds.\n"
        "# TYPE evpn_agent_login_seconds gauge\n"
        "evpn_agent_login_seconds{username=\"we\\\"ird\\\\\"} 0.250\n"
        "# HELP evpn_agent_check_status Result of evpn-agent check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
        "# TYPE evpn_agent_check_status gauge\n"
        "evpn_agent_check_status{username=\"we\\\"ird\\\\\"} 2\n");

  // A node that never enrolled has only the status to report.
  const HealthReport none{"", "", {{"state", CheckStatus::unknown, "not enrolled"}}};
  CHECK(evpn::agent::format_metrics(none) ==
        "# HELP evpn_agent_check_status Result of evpn-agent check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
        "# TYPE evpn_agent_check_status gauge\n"
        "evpn_agent_check_status{username=\"\"} 3\n");
}

TEST_CASE("ca-status is OK for a current certificate and CRITICAL, saying what to do, for one the CA replaced or revoked") {
  using evpn::protocol::CertificateState;
  using evpn::protocol::CertificateStatus;
  const std::string url = "https://ca.example.org:8443";
  const auto status = [&](CertificateState state) {
    return evpn::agent::check_ca_status(CertificateStatus{"abc1", state}, "abc1", url);
  };
  CHECK(status(CertificateState::current).status == CheckStatus::ok);
  const auto superseded = status(CertificateState::superseded);
  CHECK(superseded.status == CheckStatus::critical);
  CHECK_THAT(superseded.message, Contains("abc1") && Contains("evpn-agent renew") && Contains("enroll again"));
  CHECK(superseded.data["ca_status"] == "superseded");
  const auto revoked = status(CertificateState::revoked);
  CHECK(revoked.status == CheckStatus::critical);
  CHECK_THAT(revoked.message, Contains("operator revoked"));
  CHECK(status(CertificateState::expired).status == CheckStatus::critical);

  // A certificate the CA does not know is critical.
  const auto unknown = evpn::agent::check_ca_status(
      evpn::fail(evpn::Errc::unauthorized, "the CA refused: certificate abc1 was not issued by this CA"), "abc1", url);
  CHECK(unknown.status == CheckStatus::critical);
}

TEST_CASE("ca-status is a WARNING, not CRITICAL, when the CA cannot be reached") {
  for (auto code : {evpn::Errc::unavailable, evpn::Errc::internal, evpn::Errc::not_found}) {
    const auto r = evpn::agent::check_ca_status(evpn::fail(code, "cannot reach https://ca.example.org:8443"), "abc1",
                                                "https://ca.example.org:8443");
    CHECK(r.status == CheckStatus::warning);
    CHECK_THAT(r.message, Contains("not critical") && Contains("cannot reach"));
  }
}
