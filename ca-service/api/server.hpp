#pragma once
// The HTTPS server: the only code that touches sockets. One coroutine per connection on one
// I/O thread; handlers run on a worker pool so that signing, fsync and the directory never stall I/O.
// The TLS handshake has a short deadline (handshake_timeout); every request read, answer write
// and shutdown has one deadline (io_timeout) for the whole step; bodies over the limit get 413,
// headers over their limits 431, malformed HTTP 400. Connections are capped in total and per
// client address; refusals are logged at most once per address per minute.

#include "ca-service/api/errors.hpp"
#include "common/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace evpn::ca::api {

// What a handler may know of the connection, besides the request.
struct RequestContext {
  std::string client_address;
  // DER of the TLS client certificate, "" when the client sent none. The TLS layer only proves
  // that the client holds its key; whether the certificate may do anything is the handler's call.
  std::string client_certificate_der;
};

using Handler = std::function<Response(const Request&, const RequestContext&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8443;
  std::string cert_chain_pem;  // the service's certificate (then intermediates)
  std::string key_pem;
  std::string client_ca_pem;  // CAs named to clients when asking for an optional client certificate
  std::size_t body_limit = 64 * 1024;
  std::size_t header_limit = 8 * 1024;
  std::size_t max_header_fields = 64;
  // Short: a client that connects and sends nothing holds a connection only this long.
  std::chrono::seconds handshake_timeout{3};
  std::chrono::seconds io_timeout{10};
  int max_connections = 256;
  // Of max_connections, how many one client address may hold, so that one address cannot take
  // them all.
  int max_connections_per_address = 32;
  unsigned worker_threads = 2;
};

// Runs until SIGINT or SIGTERM, then stops accepting and lets open requests finish.
// Errc::unavailable when the address cannot be bound.
Result<void> serve(const ServerOptions& options, Handler handler);

}  // namespace evpn::ca::api
