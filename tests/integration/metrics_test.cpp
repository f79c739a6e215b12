// GET /metrics of a running `evpn-ca serve` against a real ejabberd on loopback: the counters move
// by exactly what the real evpn-agent and `evpn-ca revoke` did, and "metrics_listen": "" opens no port.

#include "common/net/https_client.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/exposition.hpp"
#include "tests/support/process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using evpn::test::Deployment;
using evpn::test::Exposition;
using evpn::test::RunResult;
using nlohmann::json;

namespace {

Exposition scrape(const Deployment& d) { return evpn::test::scrape(d.metrics_url()); }

// How much `series` moved from `before` to `after` (a series absent before counts from 0).
double moved(const Exposition& before, const Exposition& after, const std::string& series) {
  const auto it = before.samples.find(series);
  return after.at(series) - (it == before.samples.end() ? 0 : it->second);
}

}  // namespace

TEST_CASE("serve's metrics count an enrollment, a refused enrollment, a renewal and a revocation exactly") {
  Deployment d("evpn-metrics");
  d.add_group("vnet", "101000F");
  // serve's revocation canary makes directory calls of its own at start; its verdict (no longer
  // -1) says they are over, and the next run is 10 minutes away.
  REQUIRE(evpn::test::eventually([&] { return scrape(d).at("evpn_ca_revocation_effective") != -1; },
                                 std::chrono::seconds(30)));
  const Exposition before = scrape(d);

  const auto node = d.node("node1");
  const std::string token = d.token("vnet");
  const RunResult enrolled = d.enroll(node, token);
  INFO("enroll: " << enrolled.out << enrolled.err);
  REQUIRE(enrolled.exit_code == 0);
  // The same single-use token again, for another name: refused, 401.
  const RunResult refused = d.enroll(d.node("node2"), token);
  REQUIRE(refused.exit_code != 0);
  const RunResult renewed = evpn::test::run(
      {EVPN_AGENT_BIN, "renew", "--state-dir", node.state(), "--timeout", "10", "--json", "--force"},
      std::chrono::seconds(120));
  INFO("renew: " << renewed.out << renewed.err);
  REQUIRE(renewed.exit_code == 0);
  REQUIRE(json::parse(renewed.out).value("renewed", false));
  d.evpn_ca({"revoke", "--username", "node1", "--reason", "keyCompromise"});

  const Exposition after = scrape(d);
  CHECK(moved(before, after, R"(evpn_ca_enrollments_total{result="ok"})") == 1);
  CHECK(moved(before, after, R"(evpn_ca_enrollments_total{result="unauthorized"})") == 1);
  CHECK(moved(before, after, R"(evpn_ca_refusals_total{code="unauthorized"})") == 1);
  CHECK(moved(before, after, R"(evpn_ca_renewals_total{result="ok"})") == 1);
  // `evpn-ca revoke` is another process: serve reads the revocations from the store.
  CHECK(moved(before, after, "evpn_ca_revocations_total") == 1);
  CHECK(after.at(R"(evpn_ca_certificates{state="revoked"})") == 1);
  CHECK(after.at(R"(evpn_ca_certificates{state="active"})") == 0);
  CHECK(after.at("evpn_ca_tokens_active") == 0);
  // The enrollment asked whether the name was free and created the account; the renewal created
  // its own account again, which ejabberd answered "exists" (a conflict, not a failure).
  CHECK(moved(before, after, R"(evpn_ca_directory_request_seconds_count{backend="ejabberd",command="user_exists"})") ==
        1);
  CHECK(moved(before, after, R"(evpn_ca_directory_request_seconds_count{backend="ejabberd",command="create_user"})") ==
        2);
  CHECK(moved(before, after, R"(evpn_ca_directory_request_seconds_count{backend="ejabberd",command="add_member"})") ==
        2);
  CHECK(after.at(R"(evpn_ca_directory_failures_total{backend="ejabberd",command="create_user"})") == 0);
  // Each write alone in its batch here: the enrollment's account and certificate, the renewal's
  // certificate.
  CHECK(moved(before, after, "evpn_ca_store_commit_seconds_count") == 3);
  CHECK(moved(before, after, "evpn_ca_store_commit_batch_size_sum") == 3);
}

TEST_CASE("serve with an empty metrics_listen opens no metrics port") {
  Deployment d("evpn-metrics-off");
  REQUIRE(evpn::test::wait_for_port(d.metrics_port(), std::chrono::seconds(5)));
  d.stop_ca();
  const auto config_file = d.ca_dir() / "config.json";
  json config = json::parse(evpn::test::read_file(config_file));
  config["metrics_listen"] = "";
  std::ofstream(config_file) << config.dump(2);
  d.start_ca();
  CHECK_FALSE(evpn::test::wait_for_port(d.metrics_port(), std::chrono::milliseconds(0)));
  // The log holds both runs: only the first one listened for metrics.
  const std::string log = evpn::test::read_file(d.serve_log());
  const auto first = log.find("metrics on");
  REQUIRE(first != std::string::npos);
  CHECK(log.find("metrics on", first + 1) == std::string::npos);
}
