#pragma once
// Request -> response for every endpoint. Never sees a socket, so tests call it directly.

#include "ca-service/api/errors.hpp"
#include "ca-service/api/rate_limiter.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/config.hpp"

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace evpn::ca::api {

class Reservations;

class Routes {
 public:
  // With `shared` (the store of replicas on PostgreSQL), the rate limits count in it as well, so
  // that every replica refuses the same clients.
  explicit Routes(authority::Authority& authority, const RateLimitConfig& limits = {},
                  store::Store* shared = nullptr);

  // Answers the request and writes its one log line (method, path, status, ms, username, serial).
  // A path the API does not have answers 404; a path it has, asked with another method, 405 with
  // an Allow header. Enroll and renew answer 429 to a client address or token id with too many
  // recent failures, and renew to a username with too many recent renewals. GET /healthz answers
  // the outcome of the last probe_health().
  Response handle(const Request& request, const RequestContext& context);

  // Checks the store and the directory, and keeps the outcome for GET /healthz: `serve` calls it
  // at start and then periodically, so that asking for the health costs the CA nothing.
  void probe_health();

 private:
  struct Exchange;
  struct Endpoint;
  // {verb, path} -> the member function that answers it.
  static const Endpoint endpoints[];

  // One per endpoint; each may note the username and serial for the log line.
  Response roots(Exchange& exchange);
  Response crl(Exchange& exchange);
  Response enroll(Exchange& exchange);
  Response renew(Exchange& exchange);
  Response status(Exchange& exchange);
  Response healthz(Exchange& exchange);
  // 404 for an unknown path, 405 for a known one asked with another method.
  static Response no_endpoint(const Request& request, std::string_view path);

  // The 429 answer when `address` or `token_id` ("" for none) has failed too often, else nothing;
  // in that case the attempt is reserved in `reserved` as a failure.
  std::optional<Response> admit(const Request& request, Reservations& reserved, const std::string& address,
                                const std::string& token_id);
  // 201 with the certificate that enroll or renew issued, or the refusal; settles `reserved`.
  Response created(Exchange& exchange, const Result<authority::Issued>& issued, Reservations& reserved);
  // Answers `error`; the reserved failures count only when it was the client's fault.
  Response refuse(const Request& request, const Error& error, Reservations& reserved);

  authority::Authority& authority_;
  RateLimitConfig limits_;
  RateLimiter by_address_;
  RateLimiter by_token_;
  RateLimiter renewals_;  // successful renewals, by username
  std::mutex health_mutex_;
  Result<void> health_;
};

}  // namespace evpn::ca::api
