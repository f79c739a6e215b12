#include "ca-service/api/routes.hpp"

#include "ca-service/enrollment/tokens.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

#include <chrono>

namespace evpn::ca::api {

namespace http = boost::beast::http;

namespace {

Response make_response(const Request& request, http::status status, std::string content_type, std::string body) {
  Response res{status, request.version()};
  res.set(http::field::content_type, content_type);
  res.keep_alive(request.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// Failures that are the client's doing count against the rate limits. 503 (a dependency is down)
// and 500 (a bug here) do not: an outage must not lock nodes out once it is over.
bool client_fault(Errc code) {
  return code == Errc::invalid_request || code == Errc::unauthorized || code == Errc::forbidden ||
         code == Errc::conflict;
}

// The TLS client certificate, when the client sent one that parses.
std::optional<crypto::Certificate> client_certificate(const RequestContext& context) {
  if (context.client_certificate_der.empty()) return std::nullopt;
  auto cert = crypto::Certificate::from_der(context.client_certificate_der);
  if (!cert) return std::nullopt;
  return std::move(*cert);
}

}  // namespace

Routes::Routes(authority::Authority& authority, const RateLimitConfig& limits)
    : authority_(authority),
      by_address_(limits.address_failures, std::chrono::seconds(limits.address_window_seconds)),
      by_token_(limits.token_failures, std::chrono::seconds(limits.token_window_seconds)) {}

std::optional<Response> Routes::limited(const Request& request, const std::string& address,
                                        const std::string& token_id) {
  const auto now = RateLimiter::Clock::now();
  auto wait = by_address_.retry_after(address, now);
  std::string who = "from " + address;
  if (wait.count() == 0 && !token_id.empty()) {
    wait = by_token_.retry_after(token_id, now);
    who = "with token " + token_id;
  }
  if (wait.count() == 0) return std::nullopt;
  return error_response(fail(Errc::rate_limited, "too many failed attempts " + who + "; retry in " +
                                                     std::to_string(wait.count()) + " s"),
                        request.version(), request.keep_alive(), wait);
}

Response Routes::refuse(const Request& request, const Error& error, const std::string& address,
                        const std::string& token_id) {
  if (client_fault(error.code)) {
    const auto now = RateLimiter::Clock::now();
    by_address_.record_failure(address, now);
    if (!token_id.empty()) by_token_.record_failure(token_id, now);
  }
  return error_response(error, request.version(), request.keep_alive());
}

Response Routes::handle(const Request& request, const RequestContext& context) {
  const auto started = std::chrono::steady_clock::now();
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const auto method = request.method();
  std::string username = "-", serial = "-";

  auto answer = [&]() -> Response {
    if (method == http::verb::get && path == "/v1/roots")
      return make_response(request, http::status::ok, "application/x-pem-file", authority_.roots_pem());
    if (method == http::verb::get && path == "/v1/crl") {
      auto crl = authority_.crl(now_seconds());
      if (!crl) return error_response(crl.error(), request.version(), request.keep_alive());
      return make_response(request, http::status::ok, "application/pkix-crl", std::move(*crl));
    }
    if (method == http::verb::get && path == "/healthz") {
      if (auto r = authority_.health(); !r) return error_response(r.error(), request.version(), request.keep_alive());
      return make_response(request, http::status::ok, "application/json", R"({"status":"ok"})");
    }
    if (method == http::verb::post && path == "/v1/enroll") {
      auto parsed = protocol::parse_enroll_request(request.body());
      // Only the token's public id is kept for counting failures; the secret stays in the request.
      std::string token_id;
      if (parsed)
        if (auto token = enrollment::parse_token(parsed->token)) token_id = token->id;
      if (auto refused = limited(request, context.client_address, token_id)) return std::move(*refused);
      if (!parsed) return refuse(request, parsed.error(), context.client_address, "");
      auto issued = authority_.enroll(*parsed, now_seconds());
      if (!issued) return refuse(request, issued.error(), context.client_address, token_id);
      username = issued->result.node.username;
      serial = issued->result.serial;
      return make_response(request, http::status::created, "application/json", protocol::to_json(issued->result));
    }
    if (method == http::verb::post && path == "/v1/renew") {
      if (auto refused = limited(request, context.client_address, "")) return std::move(*refused);
      auto parsed = protocol::parse_renew_request(request.body());
      if (!parsed) return refuse(request, parsed.error(), context.client_address, "");
      const auto client = client_certificate(context);
      auto issued = authority_.renew(*parsed, client ? &*client : nullptr, now_seconds());
      if (!issued) return refuse(request, issued.error(), context.client_address, "");
      username = issued->result.node.username;
      serial = issued->result.serial;
      return make_response(request, http::status::created, "application/json", protocol::to_json(issued->result));
    }
    if (method == http::verb::get && path == "/v1/status") {
      if (auto refused = limited(request, context.client_address, "")) return std::move(*refused);
      const auto client = client_certificate(context);
      auto status = authority_.certificate_status(client ? &*client : nullptr, now_seconds());
      if (!status) return refuse(request, status.error(), context.client_address, "");
      serial = status->serial;
      return make_response(request, http::status::ok, "application/json", protocol::to_json(*status));
    }
    return error_response(fail(Errc::not_found, "no endpoint " + std::string(request.method_string()) + " " +
                                                    std::string(path) + "; the API has GET /v1/roots, "
                                                    "GET /v1/crl, POST /v1/enroll, POST /v1/renew, GET /v1/status and GET /healthz"),
                          request.version(), request.keep_alive());
  };
  Response response = answer();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  spdlog::info("{} {} {} {}ms user={} serial={} from={}", request.method_string(), path, response.result_int(),
               ms.count(), username, serial, context.client_address);
  return response;
}

}  // namespace evpn::ca::api
