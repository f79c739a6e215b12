#pragma once
// The plain-HTTP listener that Prometheus scrapes: GET /metrics answers 200 with the exposition,
// anything else 404. Its own thread and I/O context, so that a slow scraper never delays the API
// and a busy API never delays a scrape. One request per connection, headers bounded, one deadline
// for the whole exchange, a few connections at a time: nothing a client sends is kept.

#include "common/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace evpn::ca::api {

struct MetricsServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9464;  // 0: any free port (tests)
  std::size_t header_limit = 4 * 1024;
  std::chrono::seconds deadline{5};  // for reading the request and writing the answer, together
  int max_connections = 8;
};

class MetricsServer {
 public:
  // Binds and starts answering with what `render` returns (called on the listener's thread, one
  // scrape at a time). Errc::unavailable when the address cannot be bound.
  static Result<std::unique_ptr<MetricsServer>> start(const MetricsServerOptions& options,
                                                      std::function<std::string()> render);
  // Stops accepting, drops open connections and joins the thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port it listens on (the one bound when options.port was 0).
  std::uint16_t port() const noexcept;

 private:
  struct State;
  explicit MetricsServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace evpn::ca::api
