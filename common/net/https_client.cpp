#include "common/net/https_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>

namespace evpn::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string host_header(const Url& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  bool default_port = url.port == (url.scheme == "https" ? 443 : 80);
  return default_port ? host : host + ":" + std::to_string(url.port);
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) {
  if (value.empty() || value.size() > 9 ||
      !std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;  // the HTTP-date form is not used by the services we talk to
  return std::chrono::seconds(std::stol(std::string(value)));
}

Result<void> configure(ssl::context& ctx, const ClientTls& tls) {
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  error_code ec;
  if (tls.verify) {
    ctx.set_verify_mode(ssl::verify_peer);
    if (tls.ca_pem.empty())
      ctx.set_default_verify_paths(ec);
    else
      ctx.add_certificate_authority(asio::buffer(tls.ca_pem), ec);
    if (ec) return fail(Errc::invalid_request, "the trust anchors are not usable PEM certificates: " + ec.message());
  } else {
    ctx.set_verify_mode(ssl::verify_none);
  }
  if (!tls.client_cert_pem.empty()) {
    ctx.use_certificate_chain(asio::buffer(tls.client_cert_pem), ec);
    if (ec) return fail(Errc::invalid_request, "the client certificate is not a usable PEM certificate: " + ec.message());
    ctx.use_private_key(asio::buffer(tls.client_key_pem), ssl::context::pem, ec);
    if (ec) return fail(Errc::invalid_request, "the client key is not a usable PEM private key: " + ec.message());
  }
  return {};
}

// One request/response exchange; every socket operation expires at the same deadline.
class Exchange {
 public:
  Exchange(const HttpRequest& request, http::request<http::string_body>& message, const ClientTls& tls,
           ssl::context* ctx, std::chrono::milliseconds timeout, std::size_t max_body)
      : url_(request.url), message_(message), tls_(tls), ctx_(ctx), timeout_(timeout),
        deadline_(Clock::now() + timeout), max_body_(max_body) {}

  Clock::time_point deadline() const { return deadline_; }

  Error unreachable(const std::string& why) const {
    return fail(Errc::unavailable, "cannot reach " + to_string(url_) + ": " + why);
  }

  Error timed_out() const { return unreachable("no answer within " + std::to_string(timeout_.count()) + " ms"); }

  asio::awaitable<Result<HttpResponse>> run() {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(url_.host, std::to_string(url_.port), tcp::resolver::numeric_service, as_result);
    if (rec) co_return unreachable("cannot resolve " + url_.host + ": " + rec.message());

    beast::tcp_stream tcp_stream(executor);
    tcp_stream.expires_at(deadline_);
    auto [cec, endpoint] = co_await tcp_stream.async_connect(endpoints, as_result);
    if (cec) co_return failure(cec);
    if (!ctx_) co_return co_await round_trip(tcp_stream);

    beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(tcp_stream), *ctx_);
    SSL* ssl = tls_stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (is_ip_literal(url_.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, url_.host.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size());
    }
    beast::get_lowest_layer(tls_stream).expires_at(deadline_);
    auto [hec] = co_await tls_stream.async_handshake(ssl::stream_base::client, as_result);
    if (hec) {
      long verdict = SSL_get_verify_result(ssl);
      if (tls_.verify && verdict != X509_V_OK)
        co_return fail(Errc::unauthorized,
                       "the server's certificate at " + to_string(url_) + " did not verify against " +
                           (tls_.ca_pem.empty() ? "the system trust store" : "the pinned root") + ": " +
                           X509_verify_cert_error_string(verdict));
      co_return failure(hec, "TLS handshake failed: ");
    }
    co_return co_await round_trip(tls_stream);
  }

 private:
  Error failure(const error_code& ec, const std::string& what = "") const {
    return ec == beast::error::timeout ? timed_out() : unreachable(what + ec.message());
  }

  // One connection per request (Connection: close), so the TLS close is not awaited.
  template <class Stream>
  asio::awaitable<Result<HttpResponse>> round_trip(Stream& stream) {
    beast::get_lowest_layer(stream).expires_at(deadline_);
    auto [wec, written] = co_await http::async_write(stream, message_, as_result);
    if (wec) co_return failure(wec, "sending the request failed: ");

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body_);
    beast::get_lowest_layer(stream).expires_at(deadline_);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, as_result);
    if (rec == http::error::body_limit)
      co_return fail(Errc::unavailable,
                     "the answer of " + to_string(url_) + " is larger than " + std::to_string(max_body_) + " bytes");
    if (rec) co_return failure(rec, "reading the answer failed: ");

    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.content_type = std::string(message[http::field::content_type]);
    response.retry_after = parse_retry_after(message[http::field::retry_after]);
    if (auto date = parse_http_date(message[http::field::date])) response.date = *date;
    response.body = std::move(message.body());
    co_return response;
  }

  const Url& url_;
  http::request<http::string_body>& message_;
  const ClientTls& tls_;
  ssl::context* ctx_;
  std::chrono::milliseconds timeout_;
  Clock::time_point deadline_;
  std::size_t max_body_;
};

}  // namespace

HttpClient::HttpClient(ClientTls tls, std::chrono::milliseconds timeout, std::size_t max_body)
    : tls_(std::move(tls)), timeout_(timeout), max_body_(max_body) {}

Result<HttpResponse> HttpClient::send(const HttpRequest& request) const {
  const Url& url = request.url;
  http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown)
    return fail(Errc::invalid_request, "'" + request.method + "' is not an HTTP method");
  if (url.scheme != "http" && url.scheme != "https")
    return fail(Errc::invalid_request, to_string(url) + " is neither an http nor an https URL");

  http::request<http::string_body> message{verb, url.target, 11};
  message.set(http::field::host, host_header(url));
  message.set(http::field::user_agent, "evpn-enroll/0.1");
  message.set(http::field::connection, "close");
  for (const auto& [name, value] : request.headers) message.set(name, value);
  message.body() = request.body;
  message.prepare_payload();

  std::optional<ssl::context> ctx;
  if (url.scheme == "https") {
    ctx.emplace(ssl::context::tls_client);
    if (auto configured = configure(*ctx, tls_); !configured) return configured.error();
  }

  // Declared after everything the coroutine refers to, so that a coroutine still pending at the
  // deadline is destroyed (with the io_context) before those objects.
  Exchange exchange(request, message, tls_, ctx ? &*ctx : nullptr, timeout_, max_body_);
  std::optional<Result<HttpResponse>> result;
  asio::io_context ioc;
  asio::co_spawn(ioc, exchange.run(), [&](std::exception_ptr e, Result<HttpResponse> r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        r = fail(Errc::internal, "HTTP exchange with " + to_string(url) + " failed: " + ex.what());
      }
    }
    result = std::move(r);
  });
  // The resolver has no deadline of its own; run_until bounds it.
  ioc.run_until(exchange.deadline());
  if (!result) return exchange.timed_out();
  return std::move(*result);
}

std::string body_excerpt(std::string_view body, std::size_t limit) {
  if (body.empty()) return "(empty body)";
  std::string line(body.substr(0, limit));
  if (body.size() > limit) line += "...";
  std::replace_if(line.begin(), line.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return line;
}

}  // namespace evpn::net
