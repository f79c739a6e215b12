#pragma once
// The one place where an error code becomes an HTTP status and a JSON error body.

#include "common/result.hpp"

#include <boost/beast/http.hpp>

#include <chrono>

namespace evpn::ca::api {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

boost::beast::http::status status_for(Errc code) noexcept;

// {"error": "<code>", "message": "<detail>"} with the status for `error.code`; 503 and 429
// answers carry Retry-After: `retry_after`.
Response error_response(const Error& error, unsigned http_version, bool keep_alive,
                        std::chrono::seconds retry_after = std::chrono::seconds(5));

}  // namespace evpn::ca::api
