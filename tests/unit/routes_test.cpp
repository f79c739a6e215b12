#include "ca-service/api/routes.hpp"
#include "common/protocol/enrollment.hpp"
#include "tests/support/captured_log.hpp"
#include "tests/support/openfire_standin.hpp"
#include "tests/unit/ca_fixture.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <fstream>
#include <tuple>
#include <thread>

using namespace evpn;
using namespace evpn::test::ca_fixture;
using evpn::test::ok;

namespace {

namespace http = boost::beast::http;

ca::api::Request request(http::verb method, const std::string& target, std::string body = {}) {
  ca::api::Request r{method, target, 11};
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

// What the routes answer to `request` from a loopback client.
ca::api::Response answer(Ca& ca, const ca::api::Request& request) {
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  return ca::api::Routes(ca.authority).handle(request, context);
}

protocol::ErrorBody error_body(const ca::api::Response& response) {
  CHECK(response[http::field::content_type] == "application/json");
  return ok(protocol::parse_error_body(response.body()));
}

// How many of `n` requests `make(i)` sent to `routes` at once got each status.
std::map<unsigned, int> statuses_of_concurrent(ca::api::Routes& routes, int n,
                                               const std::function<ca::api::Request(int)>& make) {
  std::mutex mutex;
  std::map<unsigned, int> statuses;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ca::api::RequestContext context;
      context.client_address = "127.0.0.1";
      const unsigned status = routes.handle(make(i), context).result_int();
      std::lock_guard lock(mutex);
      ++statuses[status];
    });
  for (auto& t : threads) t.join();
  return statuses;
}

// The answer of a renewal of `current` with a new key through `routes`, and that key.
std::pair<ca::api::Response, crypto::Key> renew_through(ca::api::Routes& routes, const crypto::Certificate& current) {
  crypto::Key key = ec_key();
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  context.client_certificate_der = current.to_der();
  const auto body = protocol::to_json(protocol::RenewRequest{csr_for(key, current.common_name())});
  return {routes.handle(request(http::verb::post, "/v1/renew", body), context), std::move(key)};
}

// The revoked serials a DER CRL lists, in lower-case hex as the store keeps them.
std::vector<std::string> crl_serials(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  crypto::Handle<X509_CRL, X509_CRL_free> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(crl);
  std::vector<std::string> serials;
  const auto* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    crypto::BigNum bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), nullptr));
    const crypto::OpenSslMemory<char> hex(BN_bn2hex(bn.get()));
    std::string text(hex.get());
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    serials.push_back(text.substr(std::min(text.find_first_not_of('0'), text.size())));
  }
  return serials;
}

}  // namespace

TEST_CASE("GET /v1/roots answers 200 with the root certificate in PEM") {
  Ca ca;
  const auto response = answer(ca, request(http::verb::get, "/v1/roots"));
  CHECK(response.result() == http::status::ok);
  CHECK(response.body() == pki().root_pem());
}

TEST_CASE("POST /v1/enroll answers 201 with an enrollment result the agent can parse") {
  Ca ca;
  const crypto::Key key = ec_key();
  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(key, "node1")});

  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));

  CHECK(response.result() == http::status::created);
  CHECK(response[http::field::content_type] == "application/json");
  const auto result = ok(protocol::parse_enrollment_result(response.body()));
  CHECK(ok(crypto::Certificate::from_pem(result.certificate)).matches(key));
  CHECK(result.node.jid == "node1@example.test");
  CHECK(ca.current_serial("node1") == result.serial);
}

TEST_CASE("POST /v1/enroll answers 400 invalid_request to a body that is not JSON") {
  Ca ca;
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", "{\"token\": "));
  CHECK(response.result() == http::status::bad_request);
  const auto body = error_body(response);
  CHECK(body.error == "invalid_request");
  CHECK_FALSE(body.message.empty());
}

TEST_CASE("POST /v1/enroll answers 401 unauthorized to an unknown token") {
  Ca ca;
  const std::string unknown = "evpn1_0123456789abcdef_" + std::string(64, 'a');
  const auto body = protocol::to_json(protocol::EnrollRequest{unknown, csr_for(ec_key(), "node1")});
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));
  CHECK(response.result() == http::status::unauthorized);
  CHECK(error_body(response).error == "unauthorized");
}

TEST_CASE("POST /v1/enroll answers 503 with Retry-After while the directory is down") {
  Ca ca;
  ca.directory.fail_at = "ensure_group";
  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(ec_key(), "node1")});
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));
  CHECK(response.result() == http::status::service_unavailable);
  CHECK_FALSE(response[http::field::retry_after].empty());
  CHECK(error_body(response).error == "unavailable");
  CHECK_FALSE(ca.node("node1"));
}

TEST_CASE("an unknown path answers 404 not_found, listing the API") {
  Ca ca;
  const auto response = answer(ca, request(http::verb::get, "/v1/nothing"));
  CHECK(response.result() == http::status::not_found);
  const auto body = error_body(response);
  CHECK(body.error == "not_found");
  CHECK(body.message == "no endpoint GET /v1/nothing; the API has GET /v1/roots, GET /v1/crl, POST /v1/enroll, "
                        "POST /v1/renew, GET /v1/status and GET /healthz");
  CHECK(response[http::field::allow].empty());
}

TEST_CASE("a known path asked with another method answers 405 with an Allow header, and changes nothing") {
  Ca ca;
  const std::string token = ca.token();
  const auto uses = ca.uses_left(token_id(token));
  const auto body = protocol::to_json(protocol::EnrollRequest{token, csr_for(ec_key(), "node1")});
  for (const auto& [method, path, allowed] : {std::tuple{http::verb::get, "/v1/enroll", "POST"},
                                              std::tuple{http::verb::put, "/v1/enroll", "POST"},
                                              std::tuple{http::verb::post, "/v1/roots", "GET"},
                                              std::tuple{http::verb::delete_, "/healthz", "GET"}}) {
    const auto response = answer(ca, request(method, path, body));
    INFO(http::to_string(method) << " " << path);
    CHECK(response.result() == http::status::method_not_allowed);
    CHECK(response[http::field::allow] == allowed);
    CHECK_THAT(error_body(response).message, Catch::Contains(std::string(path) + " answers " + allowed));
  }
  CHECK(ca.uses_left(token_id(token)) == uses);
  CHECK_FALSE(ca.node("node1"));
}

TEST_CASE("GET /healthz answers the last probe: 200 while the directory answered, 503 once it did not") {
  Ca ca;
  ca::api::Routes routes(ca.authority);
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  auto healthz = [&] { return routes.handle(request(http::verb::get, "/healthz"), context); };

  // Not probed yet.
  CHECK(healthz().result() == http::status::service_unavailable);

  routes.probe_health();
  CHECK(ca.directory.pings == 1);
  ca.directory.ping_fails = true;
  for (int i = 0; i < 3; ++i) CHECK(healthz().result() == http::status::ok);
  CHECK(ca.directory.pings == 1);

  routes.probe_health();
  const auto response = healthz();
  CHECK(response.result() == http::status::service_unavailable);
  CHECK_FALSE(response[http::field::retry_after].empty());
  const auto body = error_body(response);
  CHECK(body.error == "unavailable");
  CHECK(body.message == "the XMPP directory does not answer");
}

TEST_CASE("GET /healthz names the revocation canary's verdict, and an ineffective revocation does not make it 503") {
  Ca ca;
  ca::authority::RevocationCanary canary;
  ca::api::Routes routes(ca.authority, {}, nullptr, nullptr, &canary);
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  auto healthz = [&] {
    const auto response = routes.handle(request(http::verb::get, "/healthz"), context);
    CHECK(response.result() == http::status::ok);
    return nlohmann::json::parse(response.body());
  };
  routes.probe_health();
  CHECK(healthz() == nlohmann::json{{"status", "ok"},
                                    {"revocation", "unknown"},
                                    {"revocation_error", "the revocation canary has not run yet"}});

  ca::authority::CanaryReport report;
  report.revocation = ca::authority::Effectiveness::not_effective;
  report.summary = "revocation is NOT effective: the canary logged in again";
  canary.record(report, evpn::now_seconds());
  CHECK(healthz() == nlohmann::json{{"status", "ok"},
                                    {"revocation", "not effective"},
                                    {"revocation_error", "revocation is NOT effective: the canary logged in again"}});

  report.revocation = ca::authority::Effectiveness::effective;
  canary.record(report, evpn::now_seconds());
  CHECK(healthz() == nlohmann::json{{"status", "ok"}, {"revocation", "effective"}});
}

TEST_CASE("POST /v1/renew answers 201 to the current certificate over TLS and 401 without one") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  const crypto::Key new_key = ec_key();
  const auto body = protocol::to_json(protocol::RenewRequest{csr_for(new_key, "node1")});
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";

  const auto without = ca::api::Routes(ca.authority).handle(request(http::verb::post, "/v1/renew", body), context);
  CHECK(without.result() == http::status::unauthorized);
  CHECK(error_body(without).error == "unauthorized");
  CHECK(ca.current_serial("node1") == node.serial);

  context.client_certificate_der = node.cert.to_der();
  const auto with = ca::api::Routes(ca.authority).handle(request(http::verb::post, "/v1/renew", body), context);
  CHECK(with.result() == http::status::created);
  const auto result = ok(protocol::parse_enrollment_result(with.body()));
  CHECK(ok(crypto::Certificate::from_pem(result.certificate)).matches(new_key));
  CHECK(ca.current_serial("node1") == result.serial);
}

TEST_CASE("a directory failure answers 503 naming the failure, never the directory's address or words") {
  Ca ca;
  ca.directory.fail_at = "user_exists";
  test::CapturedLog log;

  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(ec_key(), "node1")});
  const auto response = answer(ca, request(http::verb::post, "/v1/enroll", body));

  CHECK(response.result() == http::status::service_unavailable);
  const auto error = error_body(response);
  CHECK_THAT(error.message, Catch::Contains("directory") && Catch::Contains("retry later"));
  for (const char* secret : {"10.9.8.7", "5280", "http", "connection refused", "ejabberd"})
    CHECK_THAT(error.message, !Catch::Contains(secret));
  CHECK_THAT(log.text.str(), Catch::Contains(kDirectoryDown));
}

TEST_CASE("an Openfire directory that refuses the CA is answered 503 without its address or its answer") {
  Ca ca;
  test::OpenfireStandin::Options disabled;
  disabled.disabled = true;
  test::OpenfireStandin openfire(disabled);
  test::TempDir dir{"evpn-authority-openfire"};
  ca::DirectoryConfig config;
  config.type = ca::DirectoryType::openfire;
  config.url = openfire.url();
  config.secret_file = (dir.path() / "secret").string();
  std::ofstream(config.secret_file) << disabled.secret << "\n";
  auto directory = ok(ca::xmpp::make_directory(config, kXmpp.domain));
  Authority authority(ca.store, pki().signer(), *directory, kXmpp);
  test::CapturedLog log;

  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  const auto body = protocol::to_json(protocol::EnrollRequest{ca.token(), csr_for(ec_key(), "node1")});
  const auto response = ca::api::Routes(authority).handle(request(http::verb::post, "/v1/enroll", body), context);

  CHECK(response.result() == http::status::service_unavailable);
  const auto error = error_body(response);
  for (const std::string& secret : {std::string("127.0.0.1"), std::to_string(openfire.port()), std::string("HTTP 403"),
                                   std::string("plugin"), std::string("restapi")})
    CHECK_THAT(error.message, !Catch::Contains(secret));
  CHECK_THAT(log.text.str(), Catch::Contains(openfire.url()) && Catch::Contains("HTTP 403"));
}

TEST_CASE("GET /v1/crl answers the same CRL until a revocation, also one by another process, changes it") {
  test::TempDir dir{"evpn-authority-test"};
  const auto db = dir.path() / "state.db";
  Ca ca(db);
  const Enrolled first = enroll_node(ca, "node1");
  const Enrolled second = enroll_node(ca, "node2");
  const auto crl = [&] {
    const auto response = answer(ca, request(http::verb::get, "/v1/crl"));
    REQUIRE(response.result() == http::status::ok);
    return response.body();
  };

  const std::string empty = crl();
  CHECK(crl() == empty);
  CHECK(crl_serials(empty).empty());

  ok(ca.authority.revoke({.username = "node1"}, now_seconds()));
  const std::string one = crl();
  CHECK(crl_serials(one) == std::vector<std::string>{first.serial});
  CHECK(crl() == one);

  // `evpn-ca revoke` writes the same store from another process.
  auto admin = open_store(db);
  ok(admin.revoke_node("node2", "keyCompromise", now_seconds()));
  const std::string two = crl();
  auto expected = std::vector<std::string>{first.serial, second.serial};
  std::sort(expected.begin(), expected.end());
  auto listed = crl_serials(two);
  std::sort(listed.begin(), listed.end());
  CHECK(listed == expected);
  CHECK(crl() == two);
}

TEST_CASE("failed attempts that run at the same time all count against the rate limit") {
  Ca ca;
  const std::string token = ca.token();
  ca::api::Routes routes(ca.authority, {.address_failures = 0, .token_failures = 3});
  // The requests that get past the limit wait at the directory until three have arrived there, so
  // none of them records its outcome before the others have asked the limiter.
  constexpr int n = 10;
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  ca.directory.on_call = [&](const std::string& step) {
    if (step != "add_member") return;
    std::unique_lock lock(mutex);
    ++arrived;
    changed.notify_all();
    changed.wait_for(lock, 10s, [&] { return arrived >= 3; });
  };

  const auto statuses = statuses_of_concurrent(routes, n, [&](int i) {
    const auto body = protocol::to_json(protocol::EnrollRequest{token, csr_for(ec_key(), "node" + std::to_string(i))});
    return request(http::verb::post, "/v1/enroll", body);
  });

  // Three were heard at once: one spent the token's only use, two found it spent. The success
  // freed its place for one more, which found the token spent too; then three failures filled
  // the window and the others were refused.
  CHECK(statuses.at(201) == 1);
  CHECK(statuses.count(401) == 1);
  CHECK(statuses.count(429) == 1);
  if (statuses.count(401) && statuses.count(429)) {
    CHECK(statuses.at(401) == 3);
    CHECK(statuses.at(429) == 6);
  }
}

TEST_CASE("a node that renews too often is answered 429 with Retry-After") {
  Ca ca;
  Enrolled node = enroll_node(ca, "node1");
  ca::api::Routes routes(ca.authority);
  crypto::Certificate current = std::move(node.cert);
  // The default allows ten renewals per username and hour.
  for (int i = 0; i < 10; ++i) {
    auto [response, key] = renew_through(routes, current);
    INFO(i << ": " << response.body());
    REQUIRE(response.result() == http::status::created);
    current = ok(crypto::Certificate::from_pem(ok(protocol::parse_enrollment_result(response.body())).certificate));
  }
  const auto serial = ca.current_serial("node1");
  auto [refused, key] = renew_through(routes, current);
  CHECK(refused.result() == http::status::too_many_requests);
  CHECK_FALSE(refused[http::field::retry_after].empty());
  CHECK_THAT(error_body(refused).message, Catch::Contains("node1"));
  CHECK(ca.current_serial("node1") == serial);
}

TEST_CASE("GET /v1/crl answers a DER CRL signed by the root that lists the revoked serials") {
  Ca ca;
  const Enrolled revoked = enroll_node(ca, "node1");
  const Enrolled kept = enroll_node(ca, "node2");
  ok(ca.authority.revoke({.username = "node1", .reason = "keyCompromise"}, kNow));

  const auto response = answer(ca, request(http::verb::get, "/v1/crl"));
  CHECK(response.result() == http::status::ok);
  CHECK(response[http::field::content_type] == "application/pkix-crl");
  const auto* p = reinterpret_cast<const unsigned char*>(response.body().data());
  crypto::Handle<X509_CRL, X509_CRL_free> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(response.body().size())));
  REQUIRE(crl);
  CHECK(X509_CRL_verify(crl.get(), pki().signer().root().public_key()) == 1);
  X509_REVOKED* entry = nullptr;
  CHECK(X509_CRL_get0_by_serial(crl.get(), &entry, X509_get_serialNumber(revoked.cert.get())) == 1);
  CHECK(X509_CRL_get0_by_serial(crl.get(), &entry, X509_get_serialNumber(kept.cert.get())) == 0);
}

TEST_CASE("GET /v1/status answers the status of the TLS client certificate, and 401 without one") {
  Ca ca;
  const Enrolled node = enroll_node(ca, "node1");
  ca::api::RequestContext context;
  context.client_address = "127.0.0.1";
  ca::api::Routes routes(ca.authority);

  const auto without = routes.handle(request(http::verb::get, "/v1/status"), context);
  CHECK(without.result() == http::status::unauthorized);
  CHECK(error_body(without).error == "unauthorized");

  context.client_certificate_der = node.cert.to_der();
  const auto current = routes.handle(request(http::verb::get, "/v1/status"), context);
  REQUIRE(current.result() == http::status::ok);
  const auto body = ok(protocol::parse_certificate_status(current.body()));
  CHECK(body.serial == node.serial);
  CHECK(body.status == protocol::CertificateState::current);
  CHECK(current.body() == R"({"serial":")" + node.serial + R"(","status":"current"})");
}

TEST_CASE("two replicas on one store share the failed-attempt limit of a token") {
  test::TempDir dir{"evpn-routes-test"};
  const auto db = dir.path() / "state.db";
  Ca first(db);
  Replica second(db);
  ca::api::Routes a(first.authority, {.address_failures = 0, .token_failures = 3}, &first.store);
  ca::api::Routes b(second.authority, {.address_failures = 0, .token_failures = 3}, &second.store);
  const std::string token = first.token();
  REQUIRE(first.authority.enroll({token, csr_for(ec_key(), "node0")}, kNow));
  auto attempt = [&](ca::api::Routes& routes, int i) {
    ca::api::RequestContext context;
    context.client_address = "127.0.0.1";
    const auto body = protocol::to_json(protocol::EnrollRequest{token, csr_for(ec_key(), "node" + std::to_string(i))});
    return routes.handle(request(http::verb::post, "/v1/enroll", body), context);
  };
  // The token is spent: two failures through one replica and one through the other fill the window.
  CHECK(attempt(a, 1).result() == http::status::unauthorized);
  CHECK(attempt(a, 2).result() == http::status::unauthorized);
  CHECK(attempt(b, 3).result() == http::status::unauthorized);
  const auto refused = attempt(b, 4);
  CHECK(refused.result() == http::status::too_many_requests);
  CHECK_FALSE(refused[http::field::retry_after].empty());
  CHECK(attempt(a, 5).result() == http::status::too_many_requests);
}
