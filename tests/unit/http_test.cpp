#include "ca-service/api/errors.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/handle.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/net/https_client.hpp"
#include "common/net/url.hpp"
#include "common/protocol/enrollment.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <csignal>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>

using evpn::test::ok;
using evpn::test::error_of;

namespace {

using namespace evpn;
using namespace std::chrono_literals;
namespace http = boost::beast::http;
using ca::api::Request;
using ca::api::RequestContext;
using ca::api::Response;
using test::TestPki;

net::Url url_of(const std::string& text) { return ok(net::parse_url(text)); }

net::HttpRequest get(net::Url url) {
  net::HttpRequest request;
  request.url = std::move(url);
  return request;
}

net::HttpRequest post(net::Url url, std::string body) {
  net::HttpRequest request;
  request.method = "POST";
  request.url = std::move(url);
  request.body = std::move(body);
  return request;
}

// Echoes what it got as JSON (with the CN of the TLS client certificate, "" for none); "/throw"
// throws and "/busy" answers the unavailable error.
Response echo(const Request& request, const RequestContext& context) {
  if (request.target() == "/throw") throw std::runtime_error("handler bug");
  if (request.target() == "/busy")
    return ca::api::error_response(fail(Errc::unavailable, "the directory is down"), request.version(),
                                   request.keep_alive());
  Response response{http::status::ok, request.version()};
  response.set(http::field::content_type, "application/json");
  response.body() = nlohmann::json{{"method", std::string(request.method_string())},
                                   {"target", std::string(request.target())},
                                   {"user_agent", std::string(request[http::field::user_agent])},
                                   {"body_size", request.body().size()},
                                   {"client", context.client_address},
                                   {"client_cn", context.client_certificate_der.empty()
                                                     ? std::string()
                                                     : ok(crypto::Certificate::from_der(context.client_certificate_der))
                                                           .common_name()}}
                        .dump();
  return response;
}

// `serve` on a free loopback port in a background thread, stopped with SIGTERM. `configure` may
// change the options before it starts.
class TestServer {
 public:
  TestServer(const TestPki& pki, const std::vector<std::string>& names, ca::api::Handler handler = echo,
             const std::function<void(ca::api::ServerOptions&)>& configure = {}) {
    auto pair = pki.server(names);
    options_.port = test::free_port();
    options_.cert_chain_pem = pair.cert.to_pem();
    options_.key_pem = pair.key.to_pem();
    if (configure) configure(options_);
    thread_ = std::thread([this, handler = std::move(handler)] {
      result_ = ca::api::serve(options_, handler);
      finished_ = true;
    });
    // serve installs its signal handler before it listens, so SIGTERM is safe from here on.
    if (!test::wait_for_port(options_.port, 10s)) {
      thread_.join();
      throw std::runtime_error("the test server did not start: " +
                               (result_ ? std::string("no error") : result_.error().detail));
    }
  }
  // A destructor has no one to tell: tests that care how serve ended call stop() themselves.
  ~TestServer() { (void)stop(); }

  Result<void> stop() {
    if (thread_.joinable()) {
      if (!finished_) std::raise(SIGTERM);
      thread_.join();
    }
    return result_;
  }

  std::uint16_t port() const { return options_.port; }
  net::Url url(const std::string& host, const std::string& target = "/") const {
    return url_of("https://" + host + ":" + std::to_string(options_.port) + target);
  }

 private:
  ca::api::ServerOptions options_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
  Result<void> result_;
};

net::HttpClient client_trusting(const std::string& root_pem, bool verify = true) {
  net::ClientTls tls;
  tls.ca_pem = root_pem;
  tls.verify = verify;
  return net::HttpClient(tls, 10s);
}

// One GET of `target` on an open TLS connection to the test server, and its answer.
http::response<http::string_body> get_on(boost::beast::ssl_stream<boost::beast::tcp_stream>& stream,
                                         const std::string& target) {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return response;
}

}  // namespace

TEST_CASE("parse_url reads scheme, host, port and target") {
  auto plain = url_of("http://ejabberd.example:5280/api");
  CHECK(plain.scheme == "http");
  CHECK(plain.host == "ejabberd.example");
  CHECK(plain.port == 5280);
  CHECK(plain.target == "/api");

  auto https = url_of("HTTPS://ca.example");
  CHECK(https.scheme == "https");
  CHECK(https.port == 443);
  CHECK(https.target == "/");

  CHECK(url_of("http://10.0.0.1").port == 80);
  CHECK(url_of("https://ca.example?x=1").target == "/?x=1");

  auto v6 = url_of("https://[::1]:8443/v1/roots?a=b");
  CHECK(v6.host == "::1");
  CHECK(v6.port == 8443);
  CHECK(v6.target == "/v1/roots?a=b");
  CHECK(net::to_string(v6) == "https://[::1]:8443/v1/roots?a=b");
}

TEST_CASE("parse_url refuses URLs that are not plain http or https") {
  for (const char* text :
       {"ftp://ca.example/", "ca.example:8443", "https://user:pw@ca.example/", "https://ca.example/#frag",
        "https:///v1/roots", "https://:8443/", "https://ca.example:0/", "https://ca.example:65536/",
        "https://ca.example:84x3/", "https://ca.example:/", "https://[::1/", "https://[not-ipv6]/",
        "https://ca example/", "https://ca.example/a b", ""}) {
    INFO(text);
    auto error = error_of(net::parse_url(text));
    CHECK(error.code == Errc::invalid_request);
    CHECK_THAT(error.detail, Catch::Contains(std::string("'") + text + "'"));
  }
}

TEST_CASE("join appends a path to the base URL's target") {
  CHECK(net::join(url_of("http://h:1/api"), "/status").target == "/api/status");
  CHECK(net::join(url_of("http://h:1/api/"), "/status").target == "/api/status");
  CHECK(net::join(url_of("http://h:1/api"), "status").target == "/api/status");
  CHECK(net::join(url_of("https://h"), "/v1/roots").target == "/v1/roots");
}

TEST_CASE("each error code maps to its HTTP status and a JSON body") {
  CHECK(ca::api::status_for(Errc::invalid_request) == http::status::bad_request);
  CHECK(ca::api::status_for(Errc::unauthorized) == http::status::unauthorized);
  CHECK(ca::api::status_for(Errc::forbidden) == http::status::forbidden);
  CHECK(ca::api::status_for(Errc::not_found) == http::status::not_found);
  CHECK(ca::api::status_for(Errc::conflict) == http::status::conflict);
  CHECK(ca::api::status_for(Errc::unavailable) == http::status::service_unavailable);
  CHECK(ca::api::status_for(Errc::io) == http::status::internal_server_error);
  CHECK(ca::api::status_for(Errc::internal) == http::status::internal_server_error);

  auto conflict = ca::api::error_response(fail(Errc::conflict, "node1 belongs to another node"), 11, true);
  CHECK(conflict.result() == http::status::conflict);
  CHECK(conflict[http::field::content_type] == "application/json");
  CHECK(conflict.keep_alive());
  auto body = ok(protocol::parse_error_body(conflict.body()));
  CHECK(body.error == "conflict");
  CHECK(body.message == "node1 belongs to another node");

  auto busy = ca::api::error_response(fail(Errc::unavailable, "directory down"), 11, false);
  CHECK(busy[http::field::retry_after] == "5");
  CHECK_FALSE(busy.keep_alive());
}

TEST_CASE("internal error details stay out of the answer") {
  auto response = ca::api::error_response(fail(Errc::io, "cannot write /var/lib/evpn-ca/state.db"), 11, false);
  CHECK(response.result() == http::status::internal_server_error);
  auto body = ok(protocol::parse_error_body(response.body()));
  CHECK(body.error == "internal");
  CHECK(body.message.find("/var/lib") == std::string::npos);
}

TEST_CASE("the client talks to the server over TLS verified against the pinned root") {
  TestPki pki;
  TestServer server(pki, {"127.0.0.1", "localhost"});
  auto client = client_trusting(pki.root_pem());

  for (const char* host : {"127.0.0.1", "localhost"}) {
    INFO(host);
    auto response = ok(client.send(post(server.url(host, "/v1/enroll"), "{\"a\":1}")));
    CHECK(response.status == 200);
    CHECK(response.content_type == "application/json");
    auto echoed = nlohmann::json::parse(response.body);
    CHECK(echoed["method"] == "POST");
    CHECK(echoed["target"] == "/v1/enroll");
    CHECK(echoed["user_agent"] == "evpn-enroll/0.1");
    CHECK(echoed["body_size"] == 7);
    CHECK(echoed["client"] == "127.0.0.1");
  }
  CHECK(server.stop().has_value());
}

TEST_CASE("the server answers several requests on one connection and stops while it is idle") {
  namespace asio = boost::asio;
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"});
  asio::io_context ioc;
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.add_certificate_authority(asio::buffer(pki.root_pem()));
  tls.set_verify_mode(asio::ssl::verify_peer);
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream(ioc, tls);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), server.port()});
  stream.handshake(asio::ssl::stream_base::client);

  for (const char* target : {"/first", "/second"}) {
    const auto response = get_on(stream, target);
    CHECK(response.result() == http::status::ok);
    CHECK(response.keep_alive());
    CHECK(nlohmann::json::parse(response.body())["target"] == target);
  }
  CHECK(server.stop().has_value());
}

namespace {

using Session = crypto::Handle<SSL_SESSION, SSL_SESSION_free>;

// What one GET over a new TLS connection got.
struct Fetched {
  bool resumed = false;  // the server took the offered session: no full handshake
  int status = 0;
  nlohmann::json body;
  Session session;  // the session to offer next time
};

// GET `target` over a new connection to the test server on `port`, offering `offer` for
// resumption (nullptr: a full handshake), with `client` as the TLS client certificate if given.
// The connection is shut down cleanly, since OpenSSL never resumes a session that ended without.
Fetched fetch_over_tls(std::uint16_t port, const TestPki& pki, const TestPki::Pair* client, SSL_SESSION* offer,
                       const std::string& target = "/") {
  namespace asio = boost::asio;
  asio::io_context ioc;
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.add_certificate_authority(asio::buffer(pki.root_pem()));
  tls.set_verify_mode(asio::ssl::verify_peer);
  if (client) {
    tls.use_certificate(asio::buffer(client->cert.to_pem()), asio::ssl::context::pem);
    tls.use_private_key(asio::buffer(client->key.to_pem()), asio::ssl::context::pem);
  }
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream(ioc, tls);
  if (offer) REQUIRE(SSL_set_session(stream.native_handle(), offer) == 1);
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  stream.handshake(asio::ssl::stream_base::client, ec);
  INFO("handshake: " << ec.message());
  REQUIRE_FALSE(ec);

  const auto response = get_on(stream, target);
  stream.shutdown(ec);
  // The TLS 1.3 tickets came before the answer, so the session now holds one.
  return {SSL_session_reused(stream.native_handle()) == 1, static_cast<int>(response.result_int()),
          nlohmann::json::parse(response.body()), Session(SSL_get1_session(stream.native_handle()))};
}

// Asks TLS clients for a certificate of `pki`, as `evpn-ca serve` does.
std::function<void(ca::api::ServerOptions&)> asking_client_certificates(const TestPki& pki) {
  return [root = pki.root_pem()](ca::api::ServerOptions& options) { options.client_ca_pem = root; };
}

}  // namespace

TEST_CASE("a client resumes its TLS session with a server that asks for client certificates") {
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"}, echo, asking_client_certificates(pki));

  Fetched first = fetch_over_tls(server.port(), pki, nullptr, nullptr);
  CHECK_FALSE(first.resumed);
  CHECK(first.status == 200);
  REQUIRE(first.session);
  for (int i = 0; i < 2; ++i) {
    const Fetched again = fetch_over_tls(server.port(), pki, nullptr, first.session.get());
    CHECK(again.resumed);
    CHECK(again.status == 200);
    CHECK(again.body["client_cn"] == "");
  }
}

TEST_CASE("a resumed TLS session still carries the client certificate of its first handshake") {
  TestPki pki;
  const auto node = pki.node("node1", "evpn.test");
  TestServer server(pki, {"127.0.0.1"}, echo, asking_client_certificates(pki));

  Fetched first = fetch_over_tls(server.port(), pki, &node, nullptr, "/v1/renew");
  CHECK(first.body["client_cn"] == "node1");
  REQUIRE(first.session);
  const Fetched resumed = fetch_over_tls(server.port(), pki, &node, first.session.get(), "/v1/renew");
  CHECK(resumed.resumed);
  CHECK(resumed.status == 200);
  CHECK(resumed.body["client_cn"] == "node1");
}

TEST_CASE("a connection that never starts TLS is closed at the handshake deadline, not the read deadline") {
  namespace asio = boost::asio;
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"}, echo, [](ca::api::ServerOptions& options) {
    options.io_timeout = std::chrono::seconds(600);
  });
  asio::io_context ioc;
  asio::ip::tcp::socket idle(ioc);
  idle.connect({asio::ip::make_address("127.0.0.1"), server.port()});

  // A blocking read returns once the server closes the connection; SO_RCVTIMEO only keeps a bug
  // from hanging the test for the whole read deadline.
  const timeval bound{60, 0};
  REQUIRE(::setsockopt(idle.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound) == 0);
  char byte = 0;
  const ssize_t got = ::recv(idle.native_handle(), &byte, 1, 0);
  CHECK(got == 0);
}

TEST_CASE("the client refuses a server whose certificate chains to another root") {
  TestPki pki;
  TestPki other;
  TestServer server(pki, {"127.0.0.1"});

  auto error = error_of(client_trusting(other.root_pem()).send(get(server.url("127.0.0.1"))));
  CHECK(error.code == Errc::unauthorized);
  CHECK_THAT(error.detail, Catch::Contains("did not verify against the pinned root"));
}

TEST_CASE("the client refuses a certificate issued for another host name") {
  TestPki pki;
  TestServer server(pki, {"localhost"});

  auto error = error_of(client_trusting(pki.root_pem()).send(get(server.url("127.0.0.1"))));
  CHECK(error.code == Errc::unauthorized);
  CHECK_THAT(error.detail, Catch::Contains("mismatch"));
}

TEST_CASE("a client without verification accepts any server, for fetching roots before pinning") {
  TestPki pki;
  TestPki other;
  TestServer server(pki, {"localhost"});

  auto response = ok(client_trusting(other.root_pem(), false).send(get(server.url("127.0.0.1", "/v1/roots"))));
  CHECK(response.status == 200);
}

TEST_CASE("the server answers 413 with a JSON error to a body over 64 KiB") {
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"});

  auto response = ok(client_trusting(pki.root_pem())
                         .send(post(server.url("127.0.0.1", "/v1/enroll"), std::string(64 * 1024 + 1, 'x'))));
  CHECK(response.status == 413);
  CHECK(response.content_type == "application/json");
  auto body = ok(protocol::parse_error_body(response.body));
  CHECK(body.error == "payload_too_large");
  CHECK(body.message == "request body is larger than 65536 bytes");
}

TEST_CASE("a handler that throws gets a 500 JSON answer and the server keeps serving") {
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"});
  auto client = client_trusting(pki.root_pem());

  auto failed = ok(client.send(get(server.url("127.0.0.1", "/throw"))));
  CHECK(failed.status == 500);
  auto body = ok(protocol::parse_error_body(failed.body));
  CHECK(body.error == "internal");
  CHECK(body.message.find("handler bug") == std::string::npos);

  CHECK(ok(client.send(get(server.url("127.0.0.1", "/")))).status == 200);
}

TEST_CASE("the client reads Retry-After from a 503 answer") {
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"});

  auto response = ok(client_trusting(pki.root_pem()).send(get(server.url("127.0.0.1", "/busy"))));
  CHECK(response.status == 503);
  REQUIRE(response.retry_after.has_value());
  CHECK(*response.retry_after == 5s);
  auto body = ok(protocol::parse_error_body(response.body));
  CHECK(body.error == "unavailable");
  CHECK(body.message == "the directory is down");
}

TEST_CASE("the client reports a port where nothing listens as unavailable") {
  TestPki pki;
  auto url = url_of("https://127.0.0.1:" + std::to_string(test::free_port()) + "/v1/roots");

  auto error = error_of(client_trusting(pki.root_pem()).send(get(url)));
  CHECK(error.code == Errc::unavailable);
  CHECK_THAT(error.detail, Catch::Contains("cannot reach " + net::to_string(url)));
}

TEST_CASE("the client gives up on a server that never answers") {
  // The kernel completes the connection, but nobody accepts it or speaks TLS.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  auto url = url_of("https://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/");

  auto error = error_of(net::HttpClient(net::ClientTls{}, 300ms).send(get(url)));
  CHECK(error.code == Errc::unavailable);
  CHECK_THAT(error.detail, Catch::Contains("no answer within 300 ms"));
}

TEST_CASE("serve reports an address it cannot bind as unavailable") {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor taken(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  TestPki pki;
  auto pair = pki.server({"127.0.0.1"});
  ca::api::ServerOptions options;
  options.port = taken.local_endpoint().port();
  options.cert_chain_pem = pair.cert.to_pem();
  options.key_pem = pair.key.to_pem();

  auto error = error_of(ca::api::serve(options, echo));
  CHECK(error.code == Errc::unavailable);
  CHECK_THAT(error.detail, Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(options.port)));
}

TEST_CASE("the ejabberd directory maps ejabberd's answers to error codes, over https with its CA file") {
  // A stand-in for mod_http_api that answers each command with the status under test, once the
  // request carries the account's basic credentials ("evpn-ca@evpn.test:s3cret").
  auto fake_ejabberd = [](const Request& request, const RequestContext&) {
    const std::map<std::string, http::status> answers = {{"/api/status", http::status::ok},
                                                         {"/api/register", http::status::conflict},
                                                         {"/api/srg_user_del", http::status::ok},
                                                         {"/api/srg_create", http::status::bad_gateway},
                                                         {"/api/srg_user_add", http::status::forbidden}};
    const bool authenticated = request[http::field::authorization] == "Basic ZXZwbi1jYUBldnBuLnRlc3Q6czNjcmV0";
    Response response{authenticated ? answers.at(std::string(request.target())) : http::status::unauthorized,
                      request.version()};
    response.body() = "\"answer\"";
    return response;
  };
  TestPki pki;
  TestServer server(pki, {"127.0.0.1"}, fake_ejabberd);
  test::TempDir dir;
  ca::DirectoryConfig config;
  config.url = net::to_string(server.url("127.0.0.1", "/api"));
  config.ca_file = (dir.path() / "root.crt").string();
  ok(fs::write_file_atomic(config.ca_file, pki.root_pem(), std::filesystem::perms::owner_read));
  config.username = "evpn-ca@evpn.test";
  config.secret_file = (dir.path() / "ejabberd.secret").string();
  ok(fs::write_file_atomic(config.secret_file, "s3cret\n", std::filesystem::perms::owner_read));
  auto directory = ok(ca::xmpp::make_directory(config, "evpn.test"));

  ok(directory->ping());
  CHECK(error_of(directory->create_user("node1")).code == Errc::conflict);  // 409: the user exists
  auto down = error_of(directory->ensure_group("overlay1"));
  CHECK(down.code == Errc::unavailable);
  CHECK_THAT(down.detail, Catch::Contains("HTTP 502"));
  auto refused = error_of(directory->add_member("node1", "overlay1"));
  CHECK(refused.code == Errc::internal);
  CHECK_THAT(refused.detail, Catch::Contains("ejabberd refused srg_user_add (HTTP 403)") &&
                                 Catch::Contains("evpn-ca@evpn.test may not call it; grant it in api_permissions"));

  ok(fs::write_file_atomic(config.secret_file, "wrong\n", std::filesystem::perms::owner_read));
  auto wrong = error_of(ok(ca::xmpp::make_directory(config, "evpn.test"))->ping());
  CHECK(wrong.code == Errc::internal);
  CHECK_THAT(wrong.detail, Catch::Contains("ejabberd refused status (HTTP 401)") &&
                               Catch::Contains("check directory.username"));
}
