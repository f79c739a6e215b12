#include "ca-service/api/server.hpp"

#include "common/crypto/certificate.hpp"

#include "ca-service/log.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/time.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <array>
#include <csignal>
#include <iterator>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace evpn::ca::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

// How much of an oversized request is read and thrown away after the 413 answer.
constexpr std::size_t drain_limit = 1 << 20;

// Logs refused connections at most once per address per interval, with the number refused
// since the last line, so that a flood of connections cannot flood the log. Remembers at most
// max_addresses addresses; past that, the others share one line. Only the I/O thread uses it.
class RefusalLog {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto interval = std::chrono::seconds(60);
  static constexpr std::size_t max_addresses = 1024;

  void refused(const std::string& address, const std::string& why, Clock::time_point now) {
    if (!last_.contains(address) && last_.size() >= max_addresses)
      std::erase_if(last_, [&](const auto& entry) { return now - entry.second.logged_at >= interval; });
    const std::string& key = last_.contains(address) || last_.size() < max_addresses ? address : other_addresses;
    auto [entry, first] = last_.try_emplace(key, Entry{now, 0});
    if (!first && now - entry->second.logged_at < interval) {
      ++entry->second.suppressed;
      return;
    }
    const std::size_t unlogged = std::exchange(entry->second, Entry{now, 0}).suppressed;
    spdlog::warn("refusing a connection from {}: {}{}", key, why,
                 unlogged ? " (" + std::to_string(unlogged) + " more refused since the last such line)" : "");
  }

 private:
  static constexpr const char* other_addresses = "other addresses";
  struct Entry {
    Clock::time_point logged_at;
    std::size_t suppressed;
  };
  std::unordered_map<std::string, Entry> last_;
};

// State of one server; only the I/O thread touches it.
struct Shared {
  const ServerOptions& options;
  Handler handler;
  ssl::context& tls;
  asio::thread_pool& workers;
  int connections = 0;
  std::unordered_map<std::string, int> connections_per_address{};
  RefusalLog refusals{};
  bool stopping = false;
  // Connections waiting for their peer (handshake, next request, close). Stopping cancels them;
  // connections whose request is being handled or answered finish first.
  std::set<beast::tcp_stream*> waiting{};
};

// Registers a connection in Shared::waiting for the lifetime of the guard.
class Waiting {
 public:
  Waiting(Shared& shared, beast::tcp_stream& stream) : shared_(shared), stream_(stream) {
    shared_.waiting.insert(&stream_);
  }
  ~Waiting() { shared_.waiting.erase(&stream_); }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;

 private:
  Shared& shared_;
  beast::tcp_stream& stream_;
};

// A refusal of a request that no handler sees; the connection is closed after it.
Response refusal(http::status status, const char* code, std::string message, unsigned http_version) {
  Response response{status, http_version};
  response.set(http::field::content_type, "application/json");
  response.keep_alive(false);
  response.body() = protocol::to_json(protocol::ErrorBody{code, std::move(message)});
  response.prepare_payload();
  return response;
}

using RequestParser = http::request_parser<http::string_body>;

// The answer to a request that could not be read; none when the client went away or ran out of
// time, since then nobody is listening.
std::optional<Response> answer_unreadable(const error_code& ec, const RequestParser& parser,
                                          const ServerOptions& options) {
  // Beast reads only HTTP/1.0 and 1.1; before it reads the version, the request says 1.1.
  const unsigned version = parser.get().version();
  if (ec == http::error::body_limit)
    return refusal(http::status::payload_too_large, "payload_too_large",
                   "request body is larger than " + std::to_string(options.body_limit) + " bytes", version);
  if (ec == http::error::header_limit)
    return refusal(http::status::request_header_fields_too_large, "header_too_large",
                   "request header is larger than " + std::to_string(options.header_limit) + " bytes", version);
  if (ec.category() != http::make_error_code(http::error::bad_method).category() || ec == http::error::partial_message)
    return std::nullopt;
  return error_response(fail(Errc::invalid_request, "the request is not valid HTTP/1.1 (" + ec.message() + ")"),
                        version, false);
}

// The refusal of a request with more header fields than allowed, which no handler should see (the
// header's size is bounded already; the count bounds the work per request).
std::optional<Response> answer_too_many_fields(const RequestParser& parser, const ServerOptions& options) {
  const auto fields = static_cast<std::size_t>(std::distance(parser.get().begin(), parser.get().end()));
  if (fields <= options.max_header_fields) return std::nullopt;
  return refusal(http::status::request_header_fields_too_large, "header_too_large",
                 "the request has " + std::to_string(fields) + " header fields; at most " +
                     std::to_string(options.max_header_fields) + " are allowed",
                 parser.get().version());
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("connection task failed: {}", ex.what());
  }
}

// Runs on a worker thread, so the handler may block on SQLite, fsync or the directory.
asio::awaitable<Response> handle(const Handler& handler, const Request& request, const RequestContext& context) {
  std::string failure;
  try {
    co_return handler(request, context);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  co_return error_response(fail(Errc::internal, "the handler of " + std::string(request.method_string()) + " " +
                                                    std::string(request.target()) + " from " +
                                                    context.client_address + " threw: " + failure),
                           request.version(), request.keep_alive());
}

// Answers `response`, then reads and throws away what the client still sends: closing a socket
// with unread data resets the connection, and the client could lose the answer. The draining has
// one deadline and a byte limit, so a client cannot hold the connection by trickling data.
asio::awaitable<void> refuse(Shared& shared, TlsStream& stream, Response response) {
  auto& tcp_stream = beast::get_lowest_layer(stream);
  tcp_stream.expires_after(shared.options.io_timeout);
  auto [write_error, written] = co_await http::async_write(stream, response, as_result);
  if (write_error) co_return;
  std::array<char, 16 * 1024> scratch;
  Waiting waiting(shared, tcp_stream);
  tcp_stream.expires_after(shared.options.io_timeout);
  for (std::size_t drained = 0; drained < drain_limit && !shared.stopping;) {
    auto [read_error, read] = co_await stream.async_read_some(asio::buffer(scratch), as_result);
    if (read_error) co_return;
    drained += read;
  }
}

asio::awaitable<void> session(Shared& shared, tcp::socket socket, std::string address) {
  struct Release {
    Shared& shared;
    const std::string& address;
    ~Release() {
      --shared.connections;
      if (auto it = shared.connections_per_address.find(address); it != shared.connections_per_address.end() &&
                                                                  --it->second == 0)
        shared.connections_per_address.erase(it);
    }
  } release{shared, address};

  error_code ec;
  RequestContext context;
  context.client_address = address;
  TlsStream stream(std::move(socket), shared.tls);
  auto& tcp_stream = beast::get_lowest_layer(stream);
  const auto timeout = shared.options.io_timeout;

  if (shared.stopping) co_return;
  {
    Waiting waiting(shared, tcp_stream);
    tcp_stream.expires_after(shared.options.handshake_timeout);
    std::tie(ec) = co_await stream.async_handshake(ssl::stream_base::server, as_result);
  }
  if (ec) {
    spdlog::debug("TLS handshake with {} failed: {}", context.client_address, ec.message());
    co_return;
  }
  // On a resumed session this is the certificate of the session's first handshake, which
  // OpenSSL keeps in the session (and in its tickets).
  if (X509* peer = SSL_get0_peer_certificate(stream.native_handle()))
    if (auto der = crypto::to_der(i2d_X509, peer)) context.client_certificate_der = std::move(*der);

  // The parser bounds the header and the body, but not a chunk-size line that never ends: the
  // buffer's own limit does (Beast then reports buffer_overflow, answered 400).
  beast::flat_buffer buffer(shared.options.header_limit + shared.options.body_limit);
  for (bool keep_alive = true; keep_alive && !shared.stopping;) {
    RequestParser parser;
    parser.body_limit(shared.options.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(shared.options.header_limit));
    {
      Waiting waiting(shared, tcp_stream);
      // One deadline for the whole request, header and body: the stream's timer is not restarted
      // by each partial read, so a client sending a byte a second is dropped after io_timeout.
      tcp_stream.expires_after(timeout);
      std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, parser, as_result);
    }
    if (ec == http::error::end_of_stream) break;
    if (ec) {
      if (auto answer = answer_unreadable(ec, parser, shared.options)) {
        spdlog::warn("refused a request from {}: {}", context.client_address, ec.message());
        co_await refuse(shared, stream, std::move(*answer));
      } else {
        spdlog::debug("reading a request from {} failed: {}", context.client_address, ec.message());
      }
      co_return;
    }
    if (auto answer = answer_too_many_fields(parser, shared.options)) {
      spdlog::warn("refused a request from {}: {}", context.client_address, answer->body());
      co_await refuse(shared, stream, std::move(*answer));
      co_return;
    }

    Request request = parser.release();
    Response response = co_await asio::co_spawn(shared.workers, handle(shared.handler, request, context),
                                                asio::use_awaitable);
    keep_alive = request.keep_alive() && response.keep_alive() && !shared.stopping;
    response.version(request.version());
    response.keep_alive(keep_alive);
    // Nodes without a real-time clock learn the time from here (RFC 9110 asks for it anyway).
    response.set(http::field::date, to_http_date(now_seconds()));
    response.prepare_payload();
    tcp_stream.expires_after(timeout);
    std::tie(ec, std::ignore) = co_await http::async_write(stream, response, as_result);
    if (ec) {
      spdlog::debug("writing the answer to {} failed: {}", context.client_address, ec.message());
      co_return;
    }
  }

  // On shutdown the peer's close_notify is not awaited: the answers are complete without it.
  if (shared.stopping) co_return;
  Waiting waiting(shared, tcp_stream);
  tcp_stream.expires_after(timeout);
  co_await stream.async_shutdown(as_result);
}

asio::awaitable<void> accept_loop(Shared& shared, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(as_result);
    if (shared.stopping) co_return;
    if (ec) {
      // Typically out of file descriptors: pause instead of spinning on the error.
      spdlog::warn("accepting a connection failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(as_result);
      continue;
    }
    error_code ignored;
    const auto peer = socket.remote_endpoint(ignored);
    if (ignored) continue;  // gone already
    std::string address = peer.address().to_string();
    std::string full;
    if (shared.connections >= shared.options.max_connections)
      full = std::to_string(shared.connections) + " connections are open (max_connections)";
    else if (const auto it = shared.connections_per_address.find(address);
             it != shared.connections_per_address.end() && it->second >= shared.options.max_connections_per_address)
      full = "it has " + std::to_string(it->second) + " connections open (max_connections_per_address)";
    if (!full.empty()) {
      shared.refusals.refused(address, full, RefusalLog::Clock::now());
      socket.close(ignored);
      continue;
    }
    ++shared.connections;
    ++shared.connections_per_address[address];
    asio::co_spawn(acceptor.get_executor(), session(shared, std::move(socket), std::move(address)), log_exception);
  }
}

}  // namespace

Result<void> serve(const ServerOptions& options, Handler handler) {
  ssl::context tls{ssl::context::tls_server};
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  // A server that asks for client certificates refuses to resume a session without a session id
  // context (the handshake fails with internal_error): clients such as curl reuse sessions.
  static constexpr unsigned char session_context[] = "evpn-ca";
  SSL_CTX_set_session_id_context(tls.native_handle(), session_context, sizeof session_context - 1);
  // Sessions resumed by id (TLS 1.2 clients without tickets) are kept in memory: bounded.
  SSL_CTX_sess_set_cache_size(tls.native_handle(), 4096);
  error_code ec;
  if (!options.client_ca_pem.empty()) {
    // A client certificate is asked for but never required, and any certificate completes the
    // handshake: the handler verifies it against the store and answers a clear 401, where a
    // failed handshake would tell the client nothing.
    tls.add_certificate_authority(asio::buffer(options.client_ca_pem), ec);
    if (ec) return fail(Errc::invalid_request, "the client CA is not a usable PEM certificate: " + ec.message());
    tls.set_verify_mode(ssl::verify_peer);
    tls.set_verify_callback([](bool, ssl::verify_context&) { return true; });
    auto client_cas = crypto::parse_pem_bundle(options.client_ca_pem);
    if (!client_cas) return client_cas.error();
    for (const auto& ca : *client_cas) SSL_CTX_add_client_CA(tls.native_handle(), ca.get());
  }
  tls.use_certificate_chain(asio::buffer(options.cert_chain_pem), ec);
  if (ec)
    return fail(Errc::invalid_request, "the service's TLS certificate is not a usable PEM chain: " + ec.message());
  tls.use_private_key(asio::buffer(options.key_pem), ssl::context::pem, ec);
  if (ec)
    return fail(Errc::invalid_request,
                "the service's TLS key is not a usable PEM key for its certificate: " + ec.message());

  asio::io_context ioc{1};
  // Installed before the port opens, so that whoever sees the port open can stop the server.
  asio::signal_set signals(ioc, SIGINT, SIGTERM);

  const std::string where = options.host + ":" + std::to_string(options.port);
  auto cannot_listen = [&](const error_code& e) {
    return fail(Errc::unavailable, "cannot listen on " + where + ": " + e.message());
  };
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return cannot_listen(ec);
  tcp::endpoint endpoint = *endpoints.begin();
  tcp::acceptor acceptor(ioc);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return cannot_listen(ec);

  asio::thread_pool workers(std::max(1u, options.worker_threads));
  Shared shared{options, std::move(handler), tls, workers};
  signals.async_wait([&](const error_code& e, int signal) {
    if (e) return;
    spdlog::info("signal {}: no longer accepting connections, finishing open requests", signal);
    shared.stopping = true;
    acceptor.close();
    for (beast::tcp_stream* stream : shared.waiting) stream->cancel();
  });
  asio::co_spawn(ioc, accept_loop(shared, acceptor), log_exception);
  spdlog::info("listening on https://{}:{}", options.host, acceptor.local_endpoint().port());
  ioc.run();
  workers.join();
  spdlog::info("stopped");
  return {};
}

}  // namespace evpn::ca::api
