#include "common/protocol/enrollment.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using namespace evpn;
using namespace evpn::protocol;
using nlohmann::json;

namespace {

EnrollmentResult sample_result() {
  EnrollmentResult r;
  r.certificate = "-----BEGIN CERTIFICATE-----\nMIIleaf\n-----END CERTIFICATE-----\n";
  r.chain = {"-----BEGIN CERTIFICATE-----\nMIIintermediate\n-----END CERTIFICATE-----\n"};
  r.root = "-----BEGIN CERTIFICATE-----\nMIIroot\n-----END CERTIFICATE-----\n";
  r.serial = "7f3a09c2d1e4b5a6978812345678abcd";
  r.not_before = "2026-01-01T00:00:00Z";
  r.not_after = "2026-01-31T00:05:00Z";
  r.renew_after = "2026-01-21T00:03:20Z";
  r.server_time = "2026-01-01T00:05:00Z";
  r.node = {"node1", "node1@evpn.test", "lab", "overlay-1"};
  r.xmpp = {"xmpp.evpn.test", 5223, "evpn.test", "directtls"};
  return r;
}

// The sample result as JSON, with `path` (e.g. {"xmpp", "port"}) replaced by `value`.
std::string result_with(std::initializer_list<const char*> path, json value) {
  json doc = json::parse(to_json(sample_result()));
  json* at = &doc;
  for (const char* key : path) at = &(*at)[key];
  *at = std::move(value);
  return doc.dump();
}

// The sample result as JSON without `key` (in the top level when `object` is null).
std::string result_without(const char* object, const char* key) {
  json doc = json::parse(to_json(sample_result()));
  (object ? doc[object] : doc).erase(key);
  return doc.dump();
}

void check_refused(const Result<EnrollmentResult>& r, const std::string& field) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::invalid_request);
  INFO(r.error().detail);
  CHECK(r.error().detail.find(field) != std::string::npos);
}

}  // namespace

TEST_CASE("parse_enroll_request reads the token and the CSR") {
  auto r = parse_enroll_request(R"({"token":"evpn_abc.def","csr":"-----BEGIN CERTIFICATE REQUEST-----\n"})");
  REQUIRE(r.has_value());
  CHECK(r->token == "evpn_abc.def");
  CHECK(r->csr == "-----BEGIN CERTIFICATE REQUEST-----\n");
}

TEST_CASE("an enroll request survives to_json and parse_enroll_request") {
  const EnrollRequest in{"tok\"en\\with quotes", "line1\nline2\n"};
  auto out = parse_enroll_request(to_json(in));
  REQUIRE(out.has_value());
  CHECK(out->token == in.token);
  CHECK(out->csr == in.csr);
}

TEST_CASE("parse_enroll_request refuses bodies that are not a JSON object") {
  for (const char* body : {"", "{", "not json", R"({"token":"t","csr":"c")", "[]", R"(["t","c"])", "\"t\"",
                           "42", "null"}) {
    auto r = parse_enroll_request(body);
    INFO(body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Errc::invalid_request);
    CHECK(r.error().detail.find("request body") != std::string::npos);
  }
}

TEST_CASE("parse_enroll_request names a missing or mistyped field") {
  struct Case {
    const char* body;
    const char* field;
  };
  for (const auto& c : {Case{R"({"csr":"c"})", "token"}, Case{R"({"token":"t"})", "csr"},
                        Case{R"({"token":"t","csr":42})", "csr"}, Case{R"({"token":null,"csr":"c"})", "token"},
                        Case{R"({"token":["t"],"csr":"c"})", "token"}}) {
    auto r = parse_enroll_request(c.body);
    INFO(c.body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Errc::invalid_request);
    INFO(r.error().detail);
    CHECK(r.error().detail.find(c.field) != std::string::npos);
  }
}

TEST_CASE("an enrollment result survives to_json and parse_enrollment_result field by field") {
  const EnrollmentResult in = sample_result();
  auto out = parse_enrollment_result(to_json(in));
  REQUIRE(out.has_value());
  CHECK(out->certificate == in.certificate);
  CHECK(out->chain == in.chain);
  CHECK(out->root == in.root);
  CHECK(out->serial == in.serial);
  CHECK(out->not_before == in.not_before);
  CHECK(out->not_after == in.not_after);
  CHECK(out->renew_after == in.renew_after);
  CHECK(out->server_time == in.server_time);
  CHECK(out->node.username == in.node.username);
  CHECK(out->node.jid == in.node.jid);
  CHECK(out->node.group == in.node.group);
  CHECK(out->node.overlay == in.node.overlay);
  CHECK(out->xmpp.host == in.xmpp.host);
  CHECK(out->xmpp.port == in.xmpp.port);
  CHECK(out->xmpp.domain == in.xmpp.domain);
  CHECK(out->xmpp.transport == in.xmpp.transport);
}

TEST_CASE("an enrollment result uses the member names as JSON keys") {
  const json doc = json::parse(to_json(sample_result()));
  for (const char* key : {"certificate", "chain", "root", "serial", "not_before", "not_after", "renew_after",
                          "server_time", "node", "xmpp"})
    CHECK(doc.contains(key));
  for (const char* key : {"username", "jid", "group", "overlay"}) CHECK(doc["node"].contains(key));
  for (const char* key : {"host", "port", "domain", "transport"}) CHECK(doc["xmpp"].contains(key));
  CHECK(doc["xmpp"]["port"] == 5223);
}

TEST_CASE("an enrollment result with an empty chain round-trips as an empty list") {
  EnrollmentResult in = sample_result();
  in.chain.clear();
  auto out = parse_enrollment_result(to_json(in));
  REQUIRE(out.has_value());
  CHECK(out->chain.empty());
}

TEST_CASE("parse_enrollment_result refuses a port that is not a number from 1 to 65535") {
  for (const json& port : {json(0), json(70000), json(65536), json("5222"), json(-1), json(5222.5), json(nullptr)}) {
    INFO(port.dump());
    check_refused(parse_enrollment_result(result_with({"xmpp", "port"}, port)), "xmpp.port");
  }
  auto edge = parse_enrollment_result(result_with({"xmpp", "port"}, 65535));
  REQUIRE(edge.has_value());
  CHECK(edge->xmpp.port == 65535);
}

TEST_CASE("parse_enrollment_result names a missing or mistyped field, also inside node and xmpp") {
  check_refused(parse_enrollment_result(result_without(nullptr, "certificate")), "certificate");
  check_refused(parse_enrollment_result(result_without(nullptr, "xmpp")), "xmpp");
  check_refused(parse_enrollment_result(result_without("node", "jid")), "node.jid");
  check_refused(parse_enrollment_result(result_without("xmpp", "domain")), "xmpp.domain");
  check_refused(parse_enrollment_result(result_with({"chain"}, "one pem")), "chain");
  check_refused(parse_enrollment_result(result_with({"chain"}, json::array({1}))), "chain");
  check_refused(parse_enrollment_result(result_with({"node"}, "node1")), "node");
  check_refused(parse_enrollment_result(result_with({"serial"}, 12)), "serial");
  check_refused(parse_enrollment_result("[]"), "enrollment result");
}

TEST_CASE("an error body survives to_json and parse_error_body") {
  const ErrorBody in{"invalid_request", "the CSR's CN \"a\" is not the username \"b\"\n"};
  auto out = parse_error_body(to_json(in));
  REQUIRE(out.has_value());
  CHECK(out->error == in.error);
  CHECK(out->message == in.message);
}

TEST_CASE("parse_error_body refuses bodies without an error code or message") {
  for (const char* body : {"<html>502 Bad Gateway</html>", R"({"error":"unauthorized"})",
                           R"({"message":"m"})", R"({"error":401,"message":"m"})"}) {
    auto r = parse_error_body(body);
    INFO(body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Errc::invalid_request);
  }
}
