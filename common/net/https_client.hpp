#pragma once
// The one outbound HTTP(S) client (agent -> CA, CA -> Openfire/ejabberd): peer verification,
// SNI, host-name check and a deadline on the whole exchange.

#include "common/net/url.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evpn::net {

struct ClientTls {
  // Trust anchors in PEM. Empty means the system trust store.
  std::string ca_pem;
  // Verify the server's chain and host name. false is only for fetching the CA's roots before
  // they are pinned: the caller then checks what it got against the pinned fingerprint.
  bool verify = true;
  // Optional client certificate (PEM, may carry intermediates) and key for mutual TLS.
  std::string client_cert_pem;
  std::string client_key_pem;
};

struct HttpRequest {
  std::string method = "GET";
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
  std::optional<std::chrono::seconds> retry_after;
  std::optional<TimePoint> date;  // the server's clock, from the Date header
};

// The start of an answer's body on one line, for an error message: at most `limit` bytes, line
// breaks as spaces, "(empty body)" for none.
std::string body_excerpt(std::string_view body, std::size_t limit = 300);

class HttpClient {
 public:
  // `timeout` bounds each request as a whole: resolve, connect, handshake, write, read.
  explicit HttpClient(ClientTls tls, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                      std::size_t max_body = 1 << 20);

  // Sends one request on a new connection. Errc::unavailable when the server cannot be reached
  // or the deadline passes; Errc::unauthorized when TLS verification of the server fails;
  // any HTTP status is a successful Result.
  Result<HttpResponse> send(const HttpRequest& request) const;

 private:
  ClientTls tls_;
  std::chrono::milliseconds timeout_;
  std::size_t max_body_;
};

}  // namespace evpn::net
