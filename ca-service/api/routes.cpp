#include "ca-service/api/routes.hpp"

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

}  // namespace

Routes::Routes(authority::Authority& authority) : authority_(authority) {}

Response Routes::handle(const Request& request, const RequestContext& context) {
  const auto started = std::chrono::steady_clock::now();
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const auto method = request.method();
  std::string username = "-", serial = "-";

  auto answer = [&]() -> Response {
    if (method == http::verb::get && path == "/v1/roots")
      return make_response(request, http::status::ok, "application/x-pem-file", authority_.roots_pem());
    if (method == http::verb::get && path == "/healthz") {
      if (auto r = authority_.health(); !r) return error_response(r.error(), request.version(), request.keep_alive());
      return make_response(request, http::status::ok, "application/json", R"({"status":"ok"})");
    }
    if (method == http::verb::post && path == "/v1/enroll") {
      auto parsed = protocol::parse_enroll_request(request.body());
      if (!parsed) return error_response(parsed.error(), request.version(), request.keep_alive());
      auto issued = authority_.enroll(*parsed, now_seconds());
      if (!issued) return error_response(issued.error(), request.version(), request.keep_alive());
      username = issued->result.node.username;
      serial = issued->result.serial;
      return make_response(request, http::status::created, "application/json", protocol::to_json(issued->result));
    }
    if (method == http::verb::post && path == "/v1/renew") {
      auto parsed = protocol::parse_renew_request(request.body());
      if (!parsed) return error_response(parsed.error(), request.version(), request.keep_alive());
      std::optional<crypto::Certificate> client;
      if (!context.client_certificate_der.empty()) {
        auto cert = crypto::Certificate::from_der(context.client_certificate_der);
        if (cert) client = std::move(*cert);
      }
      auto issued = authority_.renew(*parsed, client ? &*client : nullptr, now_seconds());
      if (!issued) return error_response(issued.error(), request.version(), request.keep_alive());
      username = issued->result.node.username;
      serial = issued->result.serial;
      return make_response(request, http::status::created, "application/json", protocol::to_json(issued->result));
    }
    return error_response(fail(Errc::not_found, "no endpoint " + std::string(request.method_string()) + " " +
                                                    std::string(path) + "; the API has GET /v1/roots, "
                                                    "POST /v1/enroll, POST /v1/renew and GET /healthz"),
                          request.version(), request.keep_alive());
  };
  Response response = answer();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  spdlog::info("{} {} {} {}ms user={} serial={} from={}", request.method_string(), path, response.result_int(),
               ms.count(), username, serial, context.client_address);
  return response;
}

}  // namespace evpn::ca::api
