#pragma once
// Request -> response for every endpoint. Never sees a socket, so tests call it directly.

#include "ca-service/api/errors.hpp"
#include "ca-service/api/rate_limiter.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/authority/authority.hpp"
#include "ca-service/authority/revocation_canary.hpp"
#include "ca-service/config.hpp"
#include "ca-service/metrics/metrics.hpp"

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace evpn::ca::api {

class Reservations;

class Routes {
 public:
  // With `shared` (the store of replicas on PostgreSQL), the rate limits count in it as well, so
  // that every replica refuses the same clients. With `metrics`, every enroll and renew result and
  // every refusal is counted in it. `canary`, when given, is the revocation canary whose verdict
  // GET /healthz reports; it must outlive the routes.
  explicit Routes(authority::Authority& authority, const RateLimitConfig& limits = {},
                  store::Store* shared = nullptr, metrics::Metrics* metrics = nullptr,
                  const authority::RevocationCanary* canary = nullptr);

  // Answers the request and writes its one log line (method, path, status, ms, username, serial).
  // A path the API does not have answers 404; a path it has, asked with another method, 405 with
  // an Allow header. Enroll and renew answer 429 to a client address or token id with too many
  // recent failures, and renew to a username with too many recent renewals. GET /healthz answers
  // the outcome of the last probe_health(), and the revocation canary's last verdict.
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
  // Counts the outcome of `exchange` at `endpoint` in metrics_: enroll and renew results, refusals.
  void count(const Endpoint& endpoint, const Exchange& exchange);
  // 404 for an unknown path, 405 for a known one asked with another method.
  static Response no_endpoint(const Request& request, std::string_view path);

  // The 429 answer when `address` or `token_id` ("" for none) has failed too often, else nothing;
  // in that case the attempt is reserved in `reserved` as a failure.
  std::optional<Response> admit(Exchange& exchange, Reservations& reserved, const std::string& address,
                                const std::string& token_id);
  // 201 with the certificate that enroll or renew issued, or the refusal; settles `reserved`.
  Response created(Exchange& exchange, const Result<authority::Issued>& issued, Reservations& reserved);
  // Answers `error` (429 and 503 with Retry-After: `retry_after`) and notes it in the exchange; the
  // reserved failures count only when it was the client's fault.
  Response refuse(Exchange& exchange, const Error& error, Reservations& reserved,
                  std::chrono::seconds retry_after = std::chrono::seconds(5));

  authority::Authority& authority_;
  RateLimitConfig limits_;
  metrics::Metrics* metrics_;
  RateLimiter by_address_;
  RateLimiter by_token_;
  RateLimiter renewals_;  // successful renewals, by username
  const authority::RevocationCanary* canary_;
  std::mutex health_mutex_;
  Result<void> health_;
};

}  // namespace evpn::ca::api
