#include "ca-service/api/metrics_server.hpp"

#include "ca-service/metrics/registry.hpp"
#include "ca-service/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <thread>

namespace evpn::ca::api {

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);
}  // namespace

struct MetricsServer::State {
  MetricsServerOptions options;
  std::function<std::string()> render;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  int connections = 0;  // touched by the I/O thread only
  std::thread thread;

  asio::awaitable<void> answer(beast::tcp_stream stream) {
    // The deadline covers the whole exchange, not each step: a client that trickles bytes gets no more.
    stream.expires_after(options.deadline);
    beast::flat_buffer buffer(options.header_limit);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.body_limit(0);
    auto [read_error, read] = co_await http::async_read(stream, buffer, parser, as_result);
    if (read_error) co_return;
    const auto& request = parser.get();
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(false);
    const std::string_view target = request.target();
    if (request.method() == http::verb::get && target.substr(0, target.find('?')) == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, metrics::exposition_content_type);
      response.body() = render();
    } else {
      response.result(http::status::not_found);
      response.set(http::field::content_type, "text/plain; charset=utf-8");
      response.body() = "this listener answers GET /metrics only\n";
    }
    response.prepare_payload();
    co_await http::async_write(stream, response, as_result);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> accept() {
    for (;;) {
      auto [error, socket] = co_await acceptor.async_accept(as_result);
      if (error == asio::error::operation_aborted) co_return;
      if (error) continue;
      // A scraper needs one connection; more at once is someone else, and is not served.
      if (connections >= options.max_connections) continue;
      ++connections;
      asio::co_spawn(io, answer(beast::tcp_stream(std::move(socket))), [this](std::exception_ptr failed) {
        --connections;
        if (failed) {
          try {
            std::rethrow_exception(failed);
          } catch (const std::exception& e) {
            spdlog::error("metrics listener: a request failed: {}", e.what());
          }
        }
      });
    }
  }
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const MetricsServerOptions& options,
                                                            std::function<std::string()> render) {
  auto state = std::make_unique<State>();
  state->options = options;
  state->render = std::move(render);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  const std::string where = options.host + ":" + std::to_string(options.port);
  if (ec) return fail(Errc::invalid_request, "metrics_listen: '" + options.host + "' is not an IP address");
  const tcp::endpoint endpoint(address, options.port);
  if (state->acceptor.open(endpoint.protocol(), ec); !ec)
    if (state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec); !ec)
      if (state->acceptor.bind(endpoint, ec); !ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return fail(Errc::unavailable, "cannot listen for metrics on " + where + ": " + ec.message() +
                                       "; set metrics_listen in config.json to a free address, or \"\" to turn it off");
  State& s = *state;
  asio::co_spawn(s.io, s.accept(), asio::detached);
  s.thread = std::thread([&s] { s.io.run(); });
  spdlog::info("metrics on http://{}:{}/metrics", options.host, s.acceptor.local_endpoint().port());
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

MetricsServer::MetricsServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

MetricsServer::~MetricsServer() {
  state_->io.stop();
  state_->thread.join();
}

std::uint16_t MetricsServer::port() const noexcept { return state_->acceptor.local_endpoint().port(); }

}  // namespace evpn::ca::api
