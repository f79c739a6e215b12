#include "ca-service/api/errors.hpp"

#include "ca-service/log.hpp"
#include "common/protocol/enrollment.hpp"

namespace evpn::ca::api {

namespace http = boost::beast::http;

http::status status_for(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_request: return http::status::bad_request;
    case Errc::unauthorized: return http::status::unauthorized;
    case Errc::forbidden: return http::status::forbidden;
    case Errc::not_found: return http::status::not_found;
    case Errc::conflict:
    case Errc::account_exists: return http::status::conflict;
    case Errc::unavailable: return http::status::service_unavailable;
    case Errc::rate_limited: return http::status::too_many_requests;
    case Errc::io:
    case Errc::internal: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

Response error_response(const Error& error, unsigned http_version, bool keep_alive, std::chrono::seconds retry_after) {
  http::status status = status_for(error.code);
  protocol::ErrorBody body{to_string(error.code), error.detail};
  if (status == http::status::internal_server_error) {
    // Internal details (paths, library messages, the directory's answers) are for the operator,
    // not for whoever sent the request: they go to the log only.
    spdlog::error("answering 500 for: {}", error.detail);
    body = {"internal", "the CA service failed to handle the request; its log has the details"};
  }
  Response response{status, http_version};
  response.set(http::field::content_type, "application/json");
  if (status == http::status::service_unavailable || status == http::status::too_many_requests)
    response.set(http::field::retry_after, std::to_string(retry_after.count()));
  response.keep_alive(keep_alive);
  response.body() = protocol::to_json(body);
  response.prepare_payload();
  return response;
}

}  // namespace evpn::ca::api
