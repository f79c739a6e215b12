#include "ca-service/api/routes.hpp"

#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/log.hpp"
#include "common/time.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <variant>
#include <vector>

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

// Failures that are the client's doing count against the rate limits. 503 (a dependency is down),
// 500 (a bug here) and 429 do not: an outage must not lock nodes out once it is over.
bool client_fault(Errc code) {
  return code == Errc::invalid_request || code == Errc::unauthorized || code == Errc::forbidden ||
         code == Errc::conflict || code == Errc::account_exists;
}

// How long a request waits for the requests ahead of it to settle when they fill a rate limit,
// so that a burst of nodes enrolling with one token is heard in turn, not refused: about as long
// as one request may take.
constexpr std::chrono::milliseconds patience{10000};

std::string with_retry(std::string what, std::chrono::seconds wait) {
  return what + "; retry in " + std::to_string(wait.count()) + " s";
}

// The TLS client certificate, when the client sent one that parses.
std::optional<crypto::Certificate> client_certificate(const RequestContext& context) {
  if (context.client_certificate_der.empty()) return std::nullopt;
  auto cert = crypto::Certificate::from_der(context.client_certificate_der);
  if (!cert) return std::nullopt;
  return std::move(*cert);
}

}  // namespace

// The rate-limiter reservations of one request, settled by its outcome: a reserved failure stays
// counted only when the request failed through the client's fault, a reserved success only when
// it succeeded. A request that ends otherwise (an exception) counts nothing.
class Reservations {
 public:
  Reservations() = default;
  Reservations(const Reservations&) = delete;
  Reservations& operator=(const Reservations&) = delete;
  ~Reservations() { settle(false, Errc::internal); }

  void count_if_failed(RateLimiter& limiter, RateLimiter::Reservation reservation) {
    failures_.push_back({&limiter, std::move(reservation)});
  }
  void count_if_succeeded(RateLimiter& limiter, RateLimiter::Reservation reservation) {
    successes_.push_back({&limiter, std::move(reservation)});
  }
  void succeeded() { settle(true, Errc::internal); }
  void failed(Errc code) { settle(false, code); }

 private:
  struct Held {
    RateLimiter* limiter;
    RateLimiter::Reservation reservation;
  };
  void settle(bool success, Errc code) {
    const bool count_failures = !success && client_fault(code);
    for (const auto& held : failures_)
      count_failures ? held.limiter->confirm(held.reservation) : held.limiter->release(held.reservation);
    for (const auto& held : successes_)
      success ? held.limiter->confirm(held.reservation) : held.limiter->release(held.reservation);
    failures_.clear();
    successes_.clear();
  }
  std::vector<Held> failures_;
  std::vector<Held> successes_;
};

Routes::Routes(authority::Authority& authority, const RateLimitConfig& limits, store::Store* shared,
               metrics::Metrics* metrics, const authority::RevocationCanary* canary)
    : authority_(authority),
      limits_(limits),
      metrics_(metrics),
      by_address_(limits.address_failures, std::chrono::seconds(limits.address_window_seconds), shared,
                  "address-failures"),
      by_token_(limits.token_failures, std::chrono::seconds(limits.token_window_seconds), shared, "token-failures"),
      renewals_(limits.renewals_per_username, std::chrono::seconds(limits.renewal_window_seconds), shared,
                "renewals"),
      canary_(canary),
      health_(fail(Errc::unavailable, "the CA service has not checked its store and directory yet")) {}

void Routes::probe_health() {
  auto health = authority_.health();
  std::lock_guard lock(health_mutex_);
  health_ = std::move(health);
}

// What one request carries through its endpoint: the request, where it came from, and what its
// log line names.
struct Routes::Exchange {
  const Request& request;
  const RequestContext& context;
  std::string username = "-";
  std::string serial = "-";
  std::optional<Errc> refused_with{};  // set by refuse(), for the metrics
};

std::optional<Response> Routes::admit(Exchange& x, Reservations& reserved, const std::string& address,
                                      const std::string& token_id) {
  const auto now = RateLimiter::Clock::now();
  auto refused = [&](const std::string& who, std::chrono::seconds wait) {
    return refuse(x, fail(Errc::rate_limited, with_retry("too many failed attempts " + who, wait)), reserved, wait);
  };
  auto by_address = by_address_.reserve(address, now, patience);
  if (auto* wait = std::get_if<std::chrono::seconds>(&by_address)) return refused("from " + address, *wait);
  reserved.count_if_failed(by_address_, std::get<RateLimiter::Reservation>(std::move(by_address)));
  if (token_id.empty()) return std::nullopt;
  auto by_token = by_token_.reserve(token_id, now, patience);
  if (auto* wait = std::get_if<std::chrono::seconds>(&by_token)) return refused("with token " + token_id, *wait);
  reserved.count_if_failed(by_token_, std::get<RateLimiter::Reservation>(std::move(by_token)));
  return std::nullopt;
}

Response Routes::refuse(Exchange& x, const Error& error, Reservations& reserved, std::chrono::seconds retry_after) {
  reserved.failed(error.code);
  x.refused_with = error.code;
  return error_response(error, x.request.version(), x.request.keep_alive(), retry_after);
}

struct Routes::Endpoint {
  http::verb method;
  std::string_view path;
  Response (Routes::*answer)(Exchange&);
};

// In the order the 404 answer lists them.
const Routes::Endpoint Routes::endpoints[] = {
    {http::verb::get, "/v1/roots", &Routes::roots},
    {http::verb::get, "/v1/crl", &Routes::crl},
    {http::verb::post, "/v1/enroll", &Routes::enroll},
    {http::verb::post, "/v1/renew", &Routes::renew},
    {http::verb::get, "/v1/status", &Routes::status},
    {http::verb::get, "/healthz", &Routes::healthz},
};

Response Routes::handle(const Request& request, const RequestContext& context) {
  const auto started = std::chrono::steady_clock::now();
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  Exchange exchange{request, context};
  const auto* endpoint = std::find_if(std::begin(endpoints), std::end(endpoints), [&](const Endpoint& e) {
    return e.method == request.method() && e.path == path;
  });
  Response response = endpoint != std::end(endpoints) ? (this->*endpoint->answer)(exchange) : no_endpoint(request, path);
  if (metrics_ && endpoint != std::end(endpoints)) count(*endpoint, exchange);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  spdlog::info("{} {} {} {}ms user={} serial={} from={}", request.method_string(), path, response.result_int(),
               ms.count(), exchange.username, exchange.serial, context.client_address);
  return response;
}

void Routes::count(const Endpoint& endpoint, const Exchange& x) {
  if (x.refused_with) metrics_->refusal(*x.refused_with);
  if (endpoint.answer == &Routes::enroll) metrics_->enrollment(x.refused_with);
  if (endpoint.answer == &Routes::renew) metrics_->renewal(x.refused_with);
}

Response Routes::no_endpoint(const Request& request, std::string_view path) {
  std::string listed, allowed;
  for (std::size_t i = 0; i < std::size(endpoints); ++i) {
    const Endpoint& e = endpoints[i];
    const std::string method(http::to_string(e.method));
    listed += (i == 0 ? "" : i + 1 == std::size(endpoints) ? " and " : ", ") + method + " " + std::string(e.path);
    if (e.path == path) allowed += (allowed.empty() ? "" : ", ") + method;
  }
  const std::string asked = "no endpoint " + std::string(request.method_string()) + " " + std::string(path);
  if (allowed.empty())
    return error_response(fail(Errc::not_found, asked + "; the API has " + listed), request.version(),
                          request.keep_alive());
  Response response = error_response(fail(Errc::invalid_request, asked + "; " + std::string(path) + " answers " + allowed),
                                     request.version(), request.keep_alive());
  response.result(http::status::method_not_allowed);
  response.set(http::field::allow, allowed);
  return response;
}

Response Routes::roots(Exchange& x) {
  return make_response(x.request, http::status::ok, "application/x-pem-file", authority_.roots_pem());
}

Response Routes::crl(Exchange& x) {
  auto crl = authority_.crl(now_seconds());
  if (!crl) return error_response(crl.error(), x.request.version(), x.request.keep_alive());
  return make_response(x.request, http::status::ok, "application/pkix-crl", std::move(*crl));
}

Response Routes::healthz(Exchange& x) {
  std::unique_lock lock(health_mutex_);
  if (!health_) return error_response(health_.error(), x.request.version(), x.request.keep_alive());
  lock.unlock();
  nlohmann::json body{{"status", "ok"}};
  // Reported, not a 503: the CA still enrolls and renews, and a load balancer that took it out of
  // service would only stop those. The operator learns it from the log, /healthz and the metric.
  if (canary_) {
    body["revocation"] = authority::to_string(canary_->effective());
    if (auto error = canary_->last_error(); !error.empty()) body["revocation_error"] = std::move(error);
  }
  return make_response(x.request, http::status::ok, "application/json", body.dump());
}

Response Routes::enroll(Exchange& x) {
  const Request& request = x.request;
  auto parsed = protocol::parse_enroll_request(request.body());
  // Only the token's public id is kept for counting failures; the secret stays in the request.
  std::string token_id;
  if (parsed)
    if (auto token = enrollment::parse_token(parsed->token)) token_id = token->id;
  Reservations reserved;
  if (auto refused = admit(x, reserved, x.context.client_address, token_id)) return std::move(*refused);
  if (!parsed) return refuse(x, parsed.error(), reserved);
  return created(x, authority_.enroll(*parsed, now_seconds()), reserved);
}

Response Routes::renew(Exchange& x) {
  const Request& request = x.request;
  Reservations reserved;
  if (auto refused = admit(x, reserved, x.context.client_address, "")) return std::move(*refused);
  auto parsed = protocol::parse_renew_request(request.body());
  if (!parsed) return refuse(x, parsed.error(), reserved);
  const auto client = client_certificate(x.context);
  if (client) {
    // A node that renews in a loop (a compromised one, or a broken agent) makes the CA sign
    // and the directory work each time: its successful renewals are limited too. Counted
    // before the renewal, so that renewals at the same time all count; released if it fails.
    const std::string name = client->common_name();
    auto renewal = renewals_.reserve(name, RateLimiter::Clock::now(), patience);
    if (auto* wait = std::get_if<std::chrono::seconds>(&renewal))
      return refuse(x,
                    fail(Errc::rate_limited,
                         with_retry("username '" + name + "' renewed its certificate " +
                                        std::to_string(limits_.renewals_per_username) + " times within " +
                                        std::to_string(limits_.renewal_window_seconds) + " s, the most allowed",
                                    *wait)),
                    reserved, *wait);
    reserved.count_if_succeeded(renewals_, std::get<RateLimiter::Reservation>(std::move(renewal)));
  }
  return created(x, authority_.renew(*parsed, client ? &*client : nullptr, now_seconds()), reserved);
}

Response Routes::created(Exchange& x, const Result<authority::Issued>& issued, Reservations& reserved) {
  if (!issued) return refuse(x, issued.error(), reserved);
  reserved.succeeded();
  x.username = issued->result.node.username;
  x.serial = issued->result.serial;
  return make_response(x.request, http::status::created, "application/json", protocol::to_json(issued->result));
}

Response Routes::status(Exchange& x) {
  Reservations reserved;
  if (auto refused = admit(x, reserved, x.context.client_address, "")) return std::move(*refused);
  const auto client = client_certificate(x.context);
  auto status = authority_.certificate_status(client ? &*client : nullptr, now_seconds());
  if (!status) return refuse(x, status.error(), reserved);
  reserved.succeeded();
  x.serial = status->serial;
  return make_response(x.request, http::status::ok, "application/json", protocol::to_json(*status));
}

}  // namespace evpn::ca::api
