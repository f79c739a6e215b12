#pragma once
// Request -> response for every endpoint. Never sees a socket, so tests call it directly.

#include "ca-service/api/errors.hpp"
#include "ca-service/api/rate_limiter.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/config.hpp"

#include <optional>
#include <string>

namespace evpn::ca::api {

class Routes {
 public:
  explicit Routes(authority::Authority& authority, const RateLimitConfig& limits = {});

  // Answers the request and writes its one log line (method, path, status, ms, username, serial).
  // Enroll and renew answer 429 to a client address or token id with too many recent failures.
  Response handle(const Request& request, const RequestContext& context);

 private:
  // The 429 answer when `address` or `token_id` ("" for none) has failed too often, else nothing.
  std::optional<Response> limited(const Request& request, const std::string& address, const std::string& token_id);
  // Answers `error`, counting it against `address` and `token_id` when it was the client's fault.
  Response refuse(const Request& request, const Error& error, const std::string& address,
                  const std::string& token_id);

  authority::Authority& authority_;
  RateLimiter by_address_;
  RateLimiter by_token_;
};

}  // namespace evpn::ca::api
