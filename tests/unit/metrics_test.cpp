#include "ca-service/api/metrics_server.hpp"
#include "ca-service/metrics/metered_directory.hpp"
#include "ca-service/metrics/metrics.hpp"
#include "ca-service/metrics/registry.hpp"
#include "common/net/https_client.hpp"
#include "tests/support/exposition.hpp"
#include "tests/unit/ca_fixture.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using namespace evpn;
using namespace evpn::test::ca_fixture;
using evpn::test::ok;
using evpn::test::parse_exposition;

namespace {

// The bucket counts of a histogram series, in the order of `bounds` then +Inf.
std::vector<double> buckets(const test::Exposition& e, const std::string& name, const std::string& labels,
                            const std::vector<std::string>& bounds) {
  std::vector<double> out;
  for (const auto& le : bounds)
    out.push_back(e.at(name + "_bucket{" + labels + (labels.empty() ? "" : ",") + "le=\"" + le + "\"}"));
  return out;
}

net::HttpResponse get(std::uint16_t port, const std::string& method, const std::string& path) {
  net::HttpRequest request;
  request.method = method;
  request.url = ok(net::parse_url("http://127.0.0.1:" + std::to_string(port) + path));
  return ok(net::HttpClient(net::ClientTls{}).send(request));
}

}  // namespace

TEST_CASE("the exposition parses back with every family typed and every series as counted") {
  ca::metrics::Registry registry;
  auto& requests = registry.counter("test_requests_total", "Requests.", {"result"});
  auto& temperature = registry.gauge("test_temperature", "A \\ help\nline.");
  auto& latency = registry.histogram("test_seconds", "Latency.", {"backend"}, {0.1, 0.5, 1});
  requests.with({"ok"}).add(3);
  requests.with({"say \"no\"\\\n"}).add();
  temperature.with({}).set(-1.5);
  for (double v : {0.05, 0.1, 0.2, 0.7, 3.0}) latency.with({"ejabberd"}).observe(v);

  const auto e = parse_exposition(registry.expose());
  CHECK(e.types.at("test_requests_total") == "counter");
  CHECK(e.types.at("test_temperature") == "gauge");
  CHECK(e.types.at("test_seconds") == "histogram");
  CHECK(e.at(R"(test_requests_total{result="ok"})") == 3);
  CHECK(e.at(R"(test_requests_total{result="say \"no\"\\\n"})") == 1);
  CHECK(e.at("test_temperature") == -1.5);
  // A value equal to a bound counts in that bound's bucket ("le" is inclusive); buckets are
  // cumulative, and +Inf is the count.
  CHECK(buckets(e, "test_seconds", R"(backend="ejabberd")", {"0.1", "0.5", "1", "+Inf"}) ==
        std::vector<double>{2, 3, 4, 5});
  CHECK(e.at(R"(test_seconds_count{backend="ejabberd"})") == 5);
  CHECK(e.at(R"(test_seconds_sum{backend="ejabberd"})") == Approx(4.05));
}

TEST_CASE("counters from many threads lose no increment") {
  ca::metrics::Registry registry;
  auto& counter = registry.counter("test_total", "Test.", {"result"});
  auto& histogram = registry.histogram("test_seconds", "Test.", {}, {1}).with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counter.with({"ok"}).add();
        histogram.observe(0.5);
      }
    });
  for (auto& t : threads) t.join();
  const auto e = parse_exposition(registry.expose());
  CHECK(e.at(R"(test_total{result="ok"})") == 40000);
  CHECK(e.at("test_seconds_count") == 40000);
  CHECK(e.at("test_seconds_sum") == 20000);
}

TEST_CASE("a counter raised to a total kept elsewhere never goes down") {
  ca::metrics::Counter counter;
  counter.raise_to(5);
  counter.raise_to(3);
  CHECK(counter.value() == 5);
}

TEST_CASE("every result and refusal series exists before the first request") {
  ca::metrics::Metrics metrics;
  Ca ca;
  const auto e = parse_exposition(metrics.expose(ca.store, kNow));
  for (const char* family : {"evpn_ca_enrollments_total", "evpn_ca_renewals_total"}) {
    CHECK(e.at(std::string(family) + R"({result="ok"})") == 0);
    CHECK(e.at(std::string(family) + R"({result="unauthorized"})") == 0);
  }
  CHECK(e.at(R"(evpn_ca_refusals_total{code="rate_limited"})") == 0);
  CHECK(e.at("evpn_ca_revocations_total") == 0);
  CHECK(e.at("evpn_ca_revocation_effective") == -1);
  CHECK(e.at("evpn_ca_store_commit_seconds_count") == 0);
}

TEST_CASE("the store's gauges count tokens, certificates by state, revocations and pending lockouts") {
  ca::metrics::Metrics metrics;
  Ca ca;
  ca.token();  // unused: active
  enroll_node(ca, "node1");
  enroll_node(ca, "node2");
  enroll_node(ca, "node3");
  ca.directory.fail_at = "disable_user";  // the lockout stays queued
  ok(ca.authority.revoke({.username = "node3"}, kNow));
  auto e = parse_exposition(metrics.expose(ca.store, kNow));
  CHECK(e.at("evpn_ca_tokens_active") == 1);  // the others are used up
  CHECK(e.at(R"(evpn_ca_certificates{state="active"})") == 2);
  // Nodes are in their renewal window (the last third of their lifetime) a little after 20 days.
  e = parse_exposition(metrics.expose(ca.store, kNow + std::chrono::days(21)));
  CHECK(e.at(R"(evpn_ca_certificates{state="active"})") == 0);
  CHECK(e.at(R"(evpn_ca_certificates{state="expiring"})") == 2);
  CHECK(e.at(R"(evpn_ca_certificates{state="expired"})") == 0);
  CHECK(e.at(R"(evpn_ca_certificates{state="revoked"})") == 1);
  CHECK(e.at("evpn_ca_revocations_total") == 1);
  CHECK(e.at("evpn_ca_lockouts_pending") == 1);
  CHECK(e.at("evpn_ca_store_scrape_error") == 0);
  e = parse_exposition(metrics.expose(ca.store, kNow + std::chrono::days(31)));
  CHECK(e.at(R"(evpn_ca_certificates{state="expired"})") == 2);
  CHECK(e.at("evpn_ca_tokens_active") == 0);
}

TEST_CASE("the metered directory times every call by backend and command, and counts failures but not conflicts") {
  ca::metrics::Metrics metrics;
  auto fake = std::make_unique<FakeDirectory>();
  FakeDirectory& inner = *fake;
  ca::metrics::MeteredDirectory directory(std::move(fake), metrics, "ejabberd");
  CHECK(directory.create_user("a"));
  CHECK(directory.create_user("a").error().code == Errc::conflict);
  inner.fail_at = "add_member";
  CHECK(!directory.add_member("a", "g"));
  CHECK(ok(directory.user_exists("a")));
  Ca ca;
  const auto e = parse_exposition(metrics.expose(ca.store, kNow));
  CHECK(e.at(R"(evpn_ca_directory_request_seconds_count{backend="ejabberd",command="create_user"})") == 2);
  CHECK(e.at(R"(evpn_ca_directory_request_seconds_count{backend="ejabberd",command="add_member"})") == 1);
  CHECK(e.at(R"(evpn_ca_directory_request_seconds_count{backend="ejabberd",command="user_exists"})") == 1);
  CHECK(e.at(R"(evpn_ca_directory_failures_total{backend="ejabberd",command="create_user"})") == 0);
  CHECK(e.at(R"(evpn_ca_directory_failures_total{backend="ejabberd",command="add_member"})") == 1);
}

TEST_CASE("store commits are observed with their batch size") {
  ca::metrics::Metrics metrics;
  Ca ca;
  ca.store.observe_commits([&](auto took, std::size_t writes) { metrics.store_commit(took, writes); });
  enroll_node(ca, "node1");
  enroll_node(ca, "node2");
  // Each enrollment of a new name commits twice, one write each: the account it created, then
  // its certificate.
  const auto e = parse_exposition(metrics.expose(ca.store, kNow));
  CHECK(e.at("evpn_ca_store_commit_seconds_count") == 4);
  CHECK(e.at(R"(evpn_ca_store_commit_batch_size_bucket{le="1"})") == 4);
  CHECK(e.at("evpn_ca_store_commit_batch_size_sum") == 4);
}

TEST_CASE("the metrics listener answers GET /metrics and 404 to anything else") {
  ca::api::MetricsServerOptions options;
  options.port = 0;
  auto server = ok(ca::api::MetricsServer::start(options, [] { return std::string("test_up 1\n"); }));
  const auto metrics = get(server->port(), "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == ca::metrics::exposition_content_type);
  CHECK(metrics.body == "test_up 1\n");
  CHECK(get(server->port(), "GET", "/").status == 404);
  CHECK(get(server->port(), "GET", "/metricsx").status == 404);
  CHECK(get(server->port(), "POST", "/metrics").status == 404);
}

TEST_CASE("the metrics listener refuses an address it cannot bind, saying how to turn it off") {
  ca::api::MetricsServerOptions options;
  options.port = 0;
  auto first = ok(ca::api::MetricsServer::start(options, [] { return std::string(); }));
  options.port = first->port();
  auto second = ca::api::MetricsServer::start(options, [] { return std::string(); });
  REQUIRE(!second);
  CHECK(second.error().code == Errc::unavailable);
  CHECK_THAT(second.error().detail, Catch::Matchers::Contains("metrics_listen"));
}
