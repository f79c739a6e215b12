#include "ca-service/api/routes.hpp"

#include "ca-service/enrollment/tokens.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

#include <chrono>
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

Routes::Routes(authority::Authority& authority, const RateLimitConfig& limits)
    : authority_(authority),
      limits_(limits),
      by_address_(limits.address_failures, std::chrono::seconds(limits.address_window_seconds)),
      by_token_(limits.token_failures, std::chrono::seconds(limits.token_window_seconds)),
      renewals_(limits.renewals_per_username, std::chrono::seconds(limits.renewal_window_seconds)),
      health_(fail(Errc::unavailable, "the CA service has not checked its store and directory yet")) {}

void Routes::probe_health() {
  auto health = authority_.health();
  std::lock_guard lock(health_mutex_);
  health_ = std::move(health);
}

std::optional<Response> Routes::admit(const Request& request, Reservations& reserved, const std::string& address,
                                      const std::string& token_id) {
  const auto now = RateLimiter::Clock::now();
  auto refused = [&](const std::string& who, std::chrono::seconds wait) {
    reserved.failed(Errc::rate_limited);
    return error_response(fail(Errc::rate_limited, with_retry("too many failed attempts " + who, wait)),
                          request.version(), request.keep_alive(), wait);
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

Response Routes::refuse(const Request& request, const Error& error, Reservations& reserved) {
  reserved.failed(error.code);
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
      std::unique_lock lock(health_mutex_);
      if (!health_) return error_response(health_.error(), request.version(), request.keep_alive());
      lock.unlock();
      return make_response(request, http::status::ok, "application/json", R"({"status":"ok"})");
    }
    if (method == http::verb::post && path == "/v1/enroll") {
      auto parsed = protocol::parse_enroll_request(request.body());
      // Only the token's public id is kept for counting failures; the secret stays in the request.
      std::string token_id;
      if (parsed)
        if (auto token = enrollment::parse_token(parsed->token)) token_id = token->id;
      Reservations reserved;
      if (auto refused = admit(request, reserved, context.client_address, token_id)) return std::move(*refused);
      if (!parsed) return refuse(request, parsed.error(), reserved);
      auto issued = authority_.enroll(*parsed, now_seconds());
      if (!issued) return refuse(request, issued.error(), reserved);
      reserved.succeeded();
      username = issued->result.node.username;
      serial = issued->result.serial;
      return make_response(request, http::status::created, "application/json", protocol::to_json(issued->result));
    }
    if (method == http::verb::post && path == "/v1/renew") {
      Reservations reserved;
      if (auto refused = admit(request, reserved, context.client_address, "")) return std::move(*refused);
      auto parsed = protocol::parse_renew_request(request.body());
      if (!parsed) return refuse(request, parsed.error(), reserved);
      const auto client = client_certificate(context);
      if (client) {
        // A node that renews in a loop (a compromised one, or a broken agent) makes the CA sign
        // and the directory work each time: its successful renewals are limited too. Counted
        // before the renewal, so that renewals at the same time all count; released if it fails.
        const std::string name = client->common_name();
        auto renewal = renewals_.reserve(name, RateLimiter::Clock::now(), patience);
        if (auto* wait = std::get_if<std::chrono::seconds>(&renewal)) {
          reserved.failed(Errc::rate_limited);
          return error_response(
              fail(Errc::rate_limited,
                   with_retry("username '" + name + "' renewed its certificate " +
                                  std::to_string(limits_.renewals_per_username) + " times within " +
                                  std::to_string(limits_.renewal_window_seconds) + " s, the most allowed",
                              *wait)),
              request.version(), request.keep_alive(), *wait);
        }
        reserved.count_if_succeeded(renewals_, std::get<RateLimiter::Reservation>(std::move(renewal)));
      }
      auto issued = authority_.renew(*parsed, client ? &*client : nullptr, now_seconds());
      if (!issued) return refuse(request, issued.error(), reserved);
      reserved.succeeded();
      username = issued->result.node.username;
      serial = issued->result.serial;
      return make_response(request, http::status::created, "application/json", protocol::to_json(issued->result));
    }
    if (method == http::verb::get && path == "/v1/status") {
      Reservations reserved;
      if (auto refused = admit(request, reserved, context.client_address, "")) return std::move(*refused);
      const auto client = client_certificate(context);
      auto status = authority_.certificate_status(client ? &*client : nullptr, now_seconds());
      if (!status) return refuse(request, status.error(), reserved);
      reserved.succeeded();
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
