// Malformed and hostile requests against the real `evpn-ca serve` (with a real ejabberd): each
// gets its documented status and a message that says what was wrong, none of them writes to the
// store, and the service answers a valid request after every one. Prints a results table.

#include "ca-service/store/store.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/csr.hpp"
#include "common/crypto/key.hpp"
#include "common/protocol/enrollment.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/test_pki.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <array>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

using evpn::test::ok;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace crypto = evpn::crypto;
using namespace std::chrono_literals;
using boost::system::error_code;
using Catch::Matchers::Contains;
using evpn::test::TestPki;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

const std::string domain = evpn::test::Deployment::domain;

// What the server did with one request: its answer, or status 0 when it closed the connection.
struct Outcome {
  int status = 0;
  unsigned version = 0;
  std::string error;    // "error" of a JSON error body
  std::string message;  // "message" of a JSON error body
  std::string retry_after;
  std::string body;
};

using Session = crypto::Handle<SSL_SESSION, SSL_SESSION_free>;

// One TLS connection (or a plain TCP one) to the CA that sends arbitrary bytes and reads what
// comes back, every step under a deadline. It connects from the loopback address `source`
// ("": the kernel's choice, 127.0.0.1) and offers `session` for resumption when given.
class Connection {
 public:
  Connection(std::uint16_t port, const std::string& root_pem, const TestPki::Pair* client = nullptr,
             bool handshake = true, const std::string& source = "", SSL_SESSION* session = nullptr)
      : tls_started_(handshake) {
    tls_.add_certificate_authority(asio::buffer(root_pem));
    tls_.set_verify_mode(ssl::verify_peer);
    if (client) {
      tls_.use_certificate(asio::buffer(client->cert.to_pem()), ssl::context::pem);
      tls_.use_private_key(asio::buffer(client->key.to_pem()), ssl::context::pem);
    }
    stream_.emplace(ioc_, tls_);
    if (session) REQUIRE(SSL_set_session(stream_->native_handle(), session) == 1);
    if (!source.empty()) {
      tcp().socket().open(asio::ip::tcp::v4());
      tcp().socket().bind({asio::ip::make_address(source), 0});
    }
    tcp().connect({asio::ip::make_address("127.0.0.1"), port});
    if (handshake) {
      const auto ec = run(30s, [&](auto done) { stream_->async_handshake(ssl::stream_base::client, done); });
      INFO(ec.message());
      REQUIRE_FALSE(ec);
    }
  }

  // The server took the offered session instead of a full handshake.
  bool resumed() { return SSL_session_reused(stream_->native_handle()) == 1; }

  // Ends the connection with close_notify (OpenSSL resumes no session that ended without one)
  // and returns its session, to offer to the next connection.
  Session close_keeping_session() {
    run(30s, [&](auto done) { stream_->async_shutdown(done); });
    return Session(SSL_get1_session(stream_->native_handle()));
  }

  // Sends `bytes` over TLS; false when the server has closed the connection.
  bool send(std::string_view bytes) {
    return !run(30s, [&](auto done) { asio::async_write(*stream_, asio::buffer(bytes), done); });
  }
  // Sends `bytes` as they are, without TLS.
  void send_plain(std::string_view bytes) { asio::write(tcp().socket(), asio::buffer(bytes)); }

  Outcome read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    Outcome out;
    if (run(30s, [&](auto done) { http::async_read(*stream_, buffer_, parser, done); })) return out;
    const auto& response = parser.get();
    out.status = response.result_int();
    out.version = response.version();
    out.retry_after = std::string(response[http::field::retry_after]);
    out.body = response.body();
    if (auto body = evpn::protocol::parse_error_body(response.body())) {
      out.error = body->error;
      out.message = body->message;
    }
    return out;
  }

  // True when the server closes the connection (TLS: or sends close_notify) within `bound`;
  // what it still sends is dropped.
  bool closed_by_server(std::chrono::seconds bound) {
    const auto deadline = SteadyClock::now() + bound;
    std::array<char, 4096> scratch;
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::seconds>(deadline - SteadyClock::now());
      if (left <= 0s) return false;
      const auto ec = run(left, [&](auto done) {
        if (tls_started_)
          stream_->async_read_some(asio::buffer(scratch), done);
        else
          tcp().async_read_some(asio::buffer(scratch), done);
      });
      if (ec == beast::error::timeout) return false;
      if (ec) return true;
    }
  }

  // Sends `bytes` over TLS one per second until the server closes the connection or `bound`
  // passes; returns how many were sent.
  std::size_t drip(std::string_view bytes, std::chrono::seconds bound) {
    const auto deadline = SteadyClock::now() + bound;
    for (std::size_t sent = 0; sent < bytes.size(); ++sent) {
      if (SteadyClock::now() >= deadline || !send(bytes.substr(sent, 1))) return sent;
      // Waits a second, or less when the server closes the connection (POLLRDHUP only: TLS 1.3
      // session tickets make the socket readable long before that).
      pollfd ready{tcp().socket().native_handle(), POLLRDHUP, 0};
      if (::poll(&ready, 1, 1000) > 0) return sent + 1;
    }
    return bytes.size();
  }

 private:
  beast::tcp_stream& tcp() { return stream_->next_layer(); }

  // Runs one asynchronous operation to its end under a deadline.
  template <class Start>
  error_code run(std::chrono::seconds timeout, Start start) {
    error_code result = asio::error::would_block;
    tcp().expires_after(timeout);
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  bool tls_started_;
  asio::io_context ioc_;
  ssl::context tls_{ssl::context::tls_client};
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
};

// An HTTP request as bytes; Content-Length is added unless `headers` frame the body themselves.
std::string request(const std::string& method, const std::string& target, const std::string& body = "",
                    const std::string& headers = "", const std::string& version = "HTTP/1.1") {
  const bool framed = headers.find("Content-Length:") != std::string::npos ||
                      headers.find("Transfer-Encoding:") != std::string::npos;
  const bool length = !framed && (method != "GET" || !body.empty());
  return method + " " + target + " " + version + "\r\nHost: 127.0.0.1\r\n" + headers +
         (length ? "Content-Length: " + std::to_string(body.size()) + "\r\n" : "") + "\r\n" + body;
}

std::string enroll_body(const std::string& token, const std::string& csr) {
  return json{{"token", token}, {"csr", csr}}.dump();
}

std::string renew_body(const std::string& csr) { return json{{"csr", csr}}.dump(); }

crypto::PKey generate(const char* type, const char* curve = nullptr, std::size_t bits = 0) {
  crypto::PKey key(bits ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits)
                        : curve ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve)
                                : EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  REQUIRE(key);
  return key;
}

std::string pem(const std::string& label, const std::string& der) {
  std::string base64(4 * ((der.size() + 2) / 3) + 1, '\0');
  base64.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64.data()),
                                                         reinterpret_cast<const unsigned char*>(der.data()),
                                                         static_cast<int>(der.size()))));
  std::string out = "-----BEGIN " + label + "-----\n";
  for (std::size_t at = 0; at < base64.size(); at += 64) out += base64.substr(at, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

using Subject = std::vector<std::pair<std::string, std::string>>;  // field, value (any bytes)
using Extensions = std::vector<std::pair<int, std::string>>;       // NID, OpenSSL config value

// The DER of a CSR for `key` built exactly as asked, whatever the CA's policy; signed by `signer`
// (default: `key` itself).
std::string csr_der(EVP_PKEY* key, const Subject& subject, const Extensions& extensions = {},
                    EVP_PKEY* signer = nullptr) {
  crypto::X509Req req(X509_REQ_new());
  crypto::X509Name name(X509_NAME_new());
  for (const auto& [field, value] : subject)
    REQUIRE(X509_NAME_add_entry_by_txt(name.get(), field.c_str(), MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.data()),
                                       static_cast<int>(value.size()), -1, 0) == 1);
  REQUIRE(X509_REQ_set_subject_name(req.get(), name.get()) == 1);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key) == 1);
  if (!extensions.empty()) {
    STACK_OF(X509_EXTENSION)* stack = sk_X509_EXTENSION_new_null();
    for (const auto& [nid, value] : extensions) {
      X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, nullptr, nid, value.c_str());
      REQUIRE(extension);
      sk_X509_EXTENSION_push(stack, extension);
    }
    REQUIRE(X509_REQ_add_extensions(req.get(), stack) == 1);
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
  }
  if (!signer) signer = key;
  REQUIRE(X509_REQ_sign(req.get(), signer, EVP_PKEY_is_a(signer, "ED25519") ? nullptr : EVP_sha256()) > 0);
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req.get(), &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string csr(EVP_PKEY* key, const Subject& subject, const Extensions& extensions = {},
                EVP_PKEY* signer = nullptr) {
  return pem("CERTIFICATE REQUEST", csr_der(key, subject, extensions, signer));
}
std::string csr_for(EVP_PKEY* key, const std::string& cn) { return csr(key, {{"CN", cn}}); }

// Commits to the CA's store by anyone (the serve process included) since the last call.
class StoreWatch {
 public:
  explicit StoreWatch(const std::filesystem::path& file) : store_(ok(evpn::ca::store::Store::open(file))) {
    written();
  }
  bool written() {
    const long long now = ok(store_.data_version());
    return std::exchange(version_, now) != now;
  }

 private:
  evpn::ca::store::Store store_;
  long long version_ = 0;
};

struct World : evpn::test::Deployment {
  World() : Deployment("evpn-hostile") { add_group("vnet", "101000F"); }

  using Deployment::token;
  // A new token for the group "vnet".
  std::string token() const { return Deployment::token("vnet"); }

  std::uint16_t port() const {
    return static_cast<std::uint16_t>(std::stoi(ca_url().substr(ca_url().rfind(':') + 1)));
  }
  std::string root_pem() const { return evpn::test::read_file(ca_dir() / "ca.crt"); }

  // Restarts `evpn-ca serve` with these settings in its config.json.
  void reconfigure(const json& rate_limits, int max_connections) {
    stop_ca();
    const auto file = ca_dir() / "config.json";
    json config = json::parse(evpn::test::read_file(file));
    config["rate_limits"] = rate_limits;
    config["max_connections"] = max_connections;
    std::ofstream(file, std::ios::trunc) << config.dump(2);
    start_ca();
  }

  // One request on a new connection and its answer.
  Outcome exchange(const std::string& bytes, const TestPki::Pair* client = nullptr) {
    Connection connection(port(), root_pem(), client);
    REQUIRE(connection.send(bytes));
    return connection.read();
  }

  // Enrolls `username` with a new key; the key and the issued certificate.
  TestPki::Pair enroll(const std::string& username, const std::string& token) {
    auto key = ok(crypto::Key::generate(crypto::KeyType::ec_p256));
    const Outcome out =
        exchange(request("POST", "/v1/enroll", enroll_body(token, ok(crypto::Csr::create(key, username)).to_pem())));
    INFO(out.body);
    REQUIRE(out.status == 201);
    auto result = ok(evpn::protocol::parse_enrollment_result(out.body));
    return {std::move(key), ok(crypto::Certificate::from_pem(result.certificate))};
  }
};

World& world() {
  static World w;
  return w;
}

// One hostile request: what it is, what the server must answer (0: close the connection without
// an answer) with a message containing `phrase`, and how to send it.
struct Case {
  std::string name;
  int expected;
  std::string phrase;
  std::function<Outcome()> send;
  bool writes = false;  // a control case that must succeed and write
};

std::string excerpt(std::string text) {
  for (char& c : text)
    if (c == '|' || c == '\n') c = ' ';
  return text.size() > 90 ? text.substr(0, 87) + "..." : text;
}

std::string shown(int status) { return status == 0 ? "closed" : std::to_string(status); }

}  // namespace

TEST_CASE("every hostile request gets its documented answer, writes nothing, and the CA keeps serving") {
  auto& w = world();
  // The corpus fails on purpose from one address: the rate limits would answer 429 after the
  // tenth case. They have their own test below. A small connection limit makes the flood case cheap.
  constexpr int max_connections = 16;
  w.reconfigure({{"address_failures", 0}, {"token_failures", 0}}, max_connections);
  const std::uint16_t port = w.port();
  const std::string root = w.root_pem();

  // Set-up, all of it before the store is watched.
  const std::string spare = w.token();
  const std::string spare_id = spare.substr(6, 16);
  const std::string expired = w.token("vnet", {"--ttl", "1s"});
  const std::string pinned = w.token("vnet", {"--username", "someoneelse"});
  const std::string used = w.token();
  const auto holder = w.enroll("holder", used);
  const std::string renewer_token = w.token("vnet", {"--username", "renewer", "--uses", "2"});
  const auto superseded = w.enroll("renewer", renewer_token);
  const auto renewer = w.enroll("renewer", renewer_token);
  const std::string san_token = w.token();
  const std::string final_token = w.token();
  TestPki foreign_pki;
  const auto foreign = foreign_pki.node("foreign", domain);

  auto p256 = generate("EC", "P-256");
  const std::string good_csr = csr_for(p256.get(), "tokencase");
  const std::string good_der = csr_der(p256.get(), {{"CN", "tokencase"}});
  std::string tampered = good_der;
  tampered.back() = static_cast<char>(tampered.back() ^ 0x01);
  auto other = generate("EC", "P-256");
  auto rsa1024 = generate("RSA", nullptr, 1024);
  auto ed25519 = generate("ED25519");
  auto p521 = generate("EC", "P-521");
  auto secp224 = generate("EC", "P-224");
  const std::string renew_csr = csr_for(other.get(), "renewer");

  auto enroll_with = [&](const std::string& token, const std::string& csr_pem) {
    return [&w, body = enroll_body(token, csr_pem)] { return w.exchange(request("POST", "/v1/enroll", body)); };
  };
  auto enroll_csr = [&](const std::string& csr_pem) { return enroll_with(spare, csr_pem); };
  auto post_enroll = [&](const std::string& body) {
    return [&w, body] { return w.exchange(request("POST", "/v1/enroll", body)); };
  };
  auto raw = [&](const std::string& bytes) { return [&w, bytes] { return w.exchange(bytes); }; };
  auto renew_as = [&](const TestPki::Pair* client, const std::string& body) {
    return [&w, client, body] { return w.exchange(request("POST", "/v1/renew", body), client); };
  };
  auto token_case = [&](const std::string& name, const std::string& token, int status, const std::string& phrase) {
    return Case{name, status, phrase, enroll_with(token, good_csr)};
  };
  const std::string malformed_token = "the enrollment token is malformed";
  const std::string refused_token = "unknown, expired or used up";
  const std::string zeros = std::string(64, '0');
  std::string nul_token = spare;
  nul_token[30] = '\0';

  std::vector<Case> cases = {
      // The JSON body.
      {"enroll: empty body", 400, "not valid JSON", post_enroll("")},
      {"enroll: truncated JSON", 400, "not valid JSON", post_enroll(R"({"token": "evpn1_00)")},
      {"enroll: JSON array", 400, "must be a JSON object", post_enroll("[]")},
      {"enroll: JSON null", 400, "must be a JSON object", post_enroll("null")},
      {"enroll: invalid UTF-8 in a string", 400, "not valid JSON",
       post_enroll("{\"token\": \"\xff\xfe\", \"csr\": \"x\"}")},
      {"enroll: 30000 nested arrays", 400, "must be a JSON object",
       post_enroll(std::string(30000, '[') + std::string(30000, ']'))},
      {"enroll: token is a number", 400, "field 'body.token' must be a string",
       post_enroll(R"({"token": 12345, "csr": "x"})")},
      {"enroll: number out of range", 400, "not valid JSON", post_enroll(R"({"token": 1e999, "csr": "x"})")},
      {"enroll: csr is an object", 400, "field 'body.csr' must be a string",
       post_enroll(R"({"token": "t", "csr": {"pem": "x"}})")},
      {"enroll: csr missing", 400, "field 'body.csr' is missing", post_enroll(R"({"token": "t"})")},
      // The CSR (with a valid, unused token: nothing but the CSR is wrong, and the token stays unspent).
      {"CSR: not PEM", 400, "the CSR is not a PEM certificate request", enroll_csr("hello")},
      {"CSR: PEM armour around garbage", 400, "the CSR is not a PEM certificate request",
       enroll_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n")},
      {"CSR: a certificate instead", 400, "the CSR is not a PEM certificate request", enroll_csr(holder.cert.to_pem())},
      {"CSR: truncated PEM", 400, "the CSR is not a PEM certificate request",
       enroll_csr(good_csr.substr(0, good_csr.size() / 2))},
      {"CSR: signature bit flipped", 400, "signature does not verify",
       enroll_csr(pem("CERTIFICATE REQUEST", tampered))},
      {"CSR: signed by another key", 400, "signature does not verify",
       enroll_csr(csr(p256.get(), {{"CN", "tokencase"}}, {}, other.get()))},
      {"CSR: RSA-1024 key", 400, "RSA keys must have 2048 to 4096 bits", enroll_csr(csr_for(rsa1024.get(), "weak"))},
      {"CSR: Ed25519 key", 400, "unsupported key algorithm", enroll_csr(csr_for(ed25519.get(), "edwards"))},
      {"CSR: P-521 key", 400, "EC keys must be on P-256 or P-384", enroll_csr(csr_for(p521.get(), "bigcurve"))},
      {"CSR: P-224 key", 400, "EC keys must be on P-256 or P-384", enroll_csr(csr_for(secp224.get(), "smallcurve"))},
      {"CSR: no CN", 400, "has no CN", enroll_csr(csr(p256.get(), {{"O", "evpn"}}))},
      {"CSR: two CNs", 400, "more than one CN", enroll_csr(csr(p256.get(), {{"CN", "one"}, {"CN", "two"}}))},
      {"CSR: CN ../x", 400, "contains '/'", enroll_csr(csr_for(p256.get(), "../x"))},
      {"CSR: CN a/b", 400, "contains '/'", enroll_csr(csr_for(p256.get(), "a/b"))},
      {"CSR: CN with NUL", 400, "contains byte 0x00", enroll_csr(csr_for(p256.get(), std::string("ab\0c", 4)))},
      {"CSR: CN with a space", 400, "contains byte 0x20", enroll_csr(csr_for(p256.get(), "a b"))},
      {"CSR: CN upper case", 400, "usernames are lower case", enroll_csr(csr_for(p256.get(), "Node1"))},
      {"CSR: CN starting with -", 400, "must start with a letter or a digit", enroll_csr(csr_for(p256.get(), "-x"))},
      {"CSR: CN with ..", 400, "must not contain '..'", enroll_csr(csr_for(p256.get(), "a..b"))},
      // Tokens of every wrong shape (with a valid CSR).
      token_case("token: empty", "", 401, malformed_token),
      token_case("token: other prefix", "evpn2_" + spare.substr(6), 401, malformed_token),
      token_case("token: upper-case hex", "evpn1_" + std::string(16, 'A') + "_" + zeros, 401, malformed_token),
      token_case("token: one char short", spare.substr(0, spare.size() - 1), 401, malformed_token),
      token_case("token: one char long", spare + "0", 401, malformed_token),
      token_case("token: '-' for '_'", "evpn1_" + spare_id + "-" + spare.substr(23), 401, malformed_token),
      token_case("token: non-hex secret", "evpn1_" + spare_id + "_" + std::string(64, 'g'), 401, malformed_token),
      token_case("token: NUL inside", nul_token, 401, malformed_token),
      token_case("token: unknown id", "evpn1_" + std::string(16, '0') + "_" + zeros, 401, refused_token),
      token_case("token: known id, wrong secret", "evpn1_" + spare_id + "_" + zeros, 401, refused_token),
      token_case("token: expired", expired, 401, refused_token),
      token_case("token: used up", used, 401, refused_token),
      token_case("token: pinned to another username", pinned, 403, "this token is for username 'someoneelse'"),
      {"enroll: username held by another node", 409, "is held by another node",
       enroll_with(w.token(), csr_for(p256.get(), "holder"))},
      // Renewals.
      {"renew: no client certificate", 401, "needs the node's current certificate",
       renew_as(nullptr, renew_body(renew_csr))},
      {"renew: foreign certificate", 401, "the client certificate cannot renew",
       renew_as(&foreign, renew_body(renew_csr))},
      {"renew: superseded certificate", 401, "superseded", renew_as(&superseded, renew_body(renew_csr))},
      {"renew: CSR for another CN", 400, "must equal the certificate's CN",
       renew_as(&renewer, renew_body(csr_for(other.get(), "holder")))},
      {"renew: CSR with the current key", 400, "must carry a new key",
       renew_as(&renewer, renew_body(csr_for(renewer.key.get(), "renewer")))},
      {"renew: CSR garbage", 400, "the CSR is not a PEM certificate request", renew_as(&renewer, renew_body("x"))},
      {"renew: invalid JSON", 400, "not valid JSON", renew_as(&renewer, "{csr")},
      // HTTP framing and limits.
      {"body of 64 KiB + 1", 413, "larger than 65536 bytes", post_enroll(std::string(64 * 1024 + 1, ' '))},
      {"Content-Length: 100000000, no body", 413, "larger than 65536 bytes",
       raw(request("POST", "/v1/enroll", "", "Content-Length: 100000000\r\n"))},
      {"chunked body over 64 KiB", 413, "larger than 65536 bytes",
       raw(request("POST", "/v1/enroll",
                   "10000\r\n" + std::string(0x10000, ' ') + "\r\n10\r\n" + std::string(16, ' ') + "\r\n0\r\n\r\n",
                   "Transfer-Encoding: chunked\r\n"))},
      {"chunk-size line that never ends", 400, "not valid HTTP/1.1",
       raw(request("POST", "/v1/enroll", "1;" + std::string(100000, 'a'), "Transfer-Encoding: chunked\r\n"))},
      {"bad chunk size", 400, "not valid HTTP/1.1 (bad chunk)",
       raw(request("POST", "/v1/enroll", "zz\r\n", "Transfer-Encoding: chunked\r\n"))},
      {"Content-Length shorter than the body", 400, "not valid JSON",
       raw(request("POST", "/v1/enroll", enroll_body(spare, good_csr), "Content-Length: 5\r\n"))},
      {"two different Content-Lengths", 400, "not valid HTTP/1.1",
       raw(request("POST", "/v1/enroll", "{}", "Content-Length: 2\r\nContent-Length: 3\r\n"))},
      {"negative Content-Length", 400, "not valid HTTP/1.1",
       raw(request("POST", "/v1/enroll", "{}", "Content-Length: -1\r\n"))},
      {"Content-Length and chunked together", 400, "not valid HTTP/1.1",
       raw(request("POST", "/v1/enroll", "2\r\n{}\r\n0\r\n\r\n",
                   "Content-Length: 12\r\nTransfer-Encoding: chunked\r\n"))},
      {"one 10 KiB header", 431, "request header is larger than 8192 bytes",
       raw(request("GET", "/healthz", "", "X-Pad: " + std::string(10 * 1024, 'p') + "\r\n"))},
      {"100 header fields", 431, "at most 64 are allowed", raw([] {
         std::string headers;
         for (int i = 0; i < 100; ++i) headers += "X-Field-" + std::to_string(i) + ": v\r\n";
         return request("GET", "/healthz", "", headers);
       }())},
      {"garbage request line", 400, "not valid HTTP/1.1", raw("GARBAGE\r\n\r\n")},
      {"NUL in the target", 400, "not valid HTTP/1.1", raw(std::string("GET /healthz\0 HTTP/1.1\r\n\r\n", 26))},
      {"HTTP/2.0 in the request line", 400, "not valid HTTP/1.1 (bad version)",
       raw(request("GET", "/healthz", "", "", "HTTP/2.0"))},
      {"HTTP/1.2 in the request line", 400, "not valid HTTP/1.1 (bad version)",
       raw(request("GET", "/healthz", "", "", "HTTP/1.2"))},
      {"unknown path", 404, "no endpoint GET /v1/secrets", raw(request("GET", "/v1/secrets"))},
      {"unknown method", 405, "no endpoint DELETE /v1/enroll; /v1/enroll answers POST", raw(request("DELETE", "/v1/enroll"))},
      {"lower-case method", 405, "no endpoint get /healthz; /healthz answers GET", raw(request("get", "/healthz"))},
      {"GET on the enroll endpoint", 405, "no endpoint GET /v1/enroll; /v1/enroll answers POST", raw(request("GET", "/v1/enroll"))},
      {"path traversal", 404, "no endpoint GET /v1/../../etc/passwd", raw(request("GET", "/v1/../../etc/passwd"))},
      {"HTTP/1.0 health check", 200, "",
       [&] {
         Connection c(port, root);
         REQUIRE(c.send("GET /healthz HTTP/1.0\r\n\r\n"));
         Outcome out = c.read();
         CHECK(out.version == 10);
         CHECK(c.closed_by_server(30s));
         return out;
       }},
      {"HTTP/1.0 enroll with bad JSON", 400, "not valid JSON",
       [&] {
         Connection c(port, root);
         REQUIRE(c.send(request("POST", "/v1/enroll", "{", "", "HTTP/1.0")));
         Outcome out = c.read();
         CHECK(out.version == 10);
         CHECK(c.closed_by_server(30s));
         return out;
       }},
      {"pipelined: health, bad JSON, roots", 400, "not valid JSON",
       [&] {
         Connection c(port, root);
         REQUIRE(c.send(request("GET", "/healthz") + request("POST", "/v1/enroll", "{") + request("GET", "/v1/roots")));
         CHECK(c.read().status == 200);
         Outcome middle = c.read();
         const Outcome last = c.read();
         CHECK(last.status == 200);
         CHECK(last.body == root);
         return middle;
       }},
      {"pipelined after a malformed request", 400, "not valid HTTP/1.1",
       [&] {
         Connection c(port, root);
         REQUIRE(c.send(request("GET", "/healthz") + "BAD REQUEST\r\n\r\n" + request("GET", "/healthz")));
         CHECK(c.read().status == 200);
         Outcome out = c.read();
         CHECK(c.closed_by_server(30s));
         return out;
       }},
      {"plain HTTP on the TLS port", 0, "",
       [&] {
         Connection c(port, root, nullptr, false);
         c.send_plain(request("GET", "/healthz"));
         CHECK(c.closed_by_server(30s));
         return Outcome{};
       }},
      {"TCP connection that never starts TLS (handshake deadline)", 0, "",
       [&] {
         Connection c(port, root, nullptr, false);
         const auto started = SteadyClock::now();
         CHECK(c.closed_by_server(120s));
         CHECK(SteadyClock::now() - started < 120s);
         return Outcome{};
       }},
      {"Content-Length longer than the body (read deadline)", 0, "",
       [&] {
         Connection c(port, root);
         REQUIRE(c.send(request("POST", "/v1/enroll", "{}", "Content-Length: 100\r\n")));
         CHECK(c.closed_by_server(120s));
         return Outcome{};
       }},
      {"one byte a second (one deadline for the whole request)", 0, "",
       [&] {
         Connection c(port, root);
         // 200 s of bytes at one a second; the server must drop the client long before.
         const std::string slow = request("GET", "/healthz", "", "X-Pad: " + std::string(160, 'p') + "\r\n");
         const std::size_t sent = c.drip(slow, 120s);
         CHECK(sent < slow.size());
         CHECK(c.closed_by_server(10s));
         return Outcome{};
       }},
      {"connection flood over max_connections", 0, "",
       [&] {
         std::vector<std::unique_ptr<Connection>> idle;
         for (int i = 0; i < max_connections; ++i)
           idle.push_back(std::make_unique<Connection>(port, root, nullptr, false));
         // The server accepts the next one and closes it at once.
         Connection over(port, root, nullptr, false);
         CHECK(over.closed_by_server(5s));
         idle.clear();
         // Lets the server see those connections end before the health check connects.
         std::this_thread::sleep_for(500ms);
         return Outcome{};
       }},
      // Requested extensions are ignored: the certificate carries only the CA's profile.
      {"CSR asking for extra SANs, CA:TRUE and keyCertSign", 201, "",
       [&] {
         const Outcome out = w.exchange(request(
             "POST", "/v1/enroll",
             enroll_body(san_token,
                         csr(p256.get(), {{"CN", "sancheck"}},
                             {{NID_subject_alt_name,
                               "DNS:evil.example,IP:10.0.0.1,otherName:1.3.6.1.5.5.7.8.5;UTF8:admin@" + domain},
                              {NID_basic_constraints, "critical,CA:TRUE"},
                              {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"}}))));
         if (out.status != 201) return out;
         const auto result = ok(evpn::protocol::parse_enrollment_result(out.body));
         const auto cert = ok(crypto::Certificate::from_pem(result.certificate));
         CHECK(cert.common_name() == "sancheck");
         CHECK(cert.xmpp_addrs() == std::vector<std::string>{"sancheck@" + domain});
         crypto::GeneralNames names(
             static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
         REQUIRE(names);
         CHECK(sk_GENERAL_NAME_num(names.get()) == 1);
         CHECK(X509_check_ca(cert.get()) == 0);
         CHECK((X509_get_key_usage(cert.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) == 0);
         return out;
       },
       true},
      {"a valid enrollment at the end", 201, "",
       [&] {
         return w.exchange(request("POST", "/v1/enroll", enroll_body(final_token, csr_for(p256.get(), "lastnode"))));
       },
       true},
  };

  // The token made with --ttl 1s has expired by now.
  std::this_thread::sleep_for(2s);
  StoreWatch store(w.ca_dir() / "state.db");
  std::vector<std::array<std::string, 4>> rows;
  for (const Case& c : cases) {
    INFO(c.name);
    const Outcome out = c.send();
    INFO("answer: " << out.body);
    CHECK(out.status == c.expected);
    if (!c.phrase.empty()) CHECK_THAT(out.message, Contains(c.phrase));
    if (out.status == 429 || out.status == 503) CHECK_FALSE(out.retry_after.empty());
    CHECK(store.written() == c.writes);
    CHECK(w.exchange(request("GET", "/healthz")).status == 200);
    rows.push_back({c.name, shown(c.expected), shown(out.status), excerpt(out.message)});
  }
  CHECK(cases.size() >= 40);

  std::cout << "\n| # | request | expected | got | message |\n|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < rows.size(); ++i)
    std::cout << "| " << i + 1 << " | " << rows[i][0] << " | " << rows[i][1] << " | " << rows[i][2] << " | "
              << rows[i][3] << " |\n";
  std::cout << std::endl;
}

TEST_CASE("failed enrollments are answered 429 with Retry-After, per address and per token id") {
  auto& w = world();
  w.reconfigure({{"address_failures", 10}, {"address_window_seconds", 60}, {"token_failures", 5},
                 {"token_window_seconds", 600}},
                256);
  auto key = ok(crypto::Key::generate(crypto::KeyType::ec_p256));
  const std::string good_csr = ok(crypto::Csr::create(key, "limited")).to_pem();
  const std::string target = w.token();
  const std::string target_id = target.substr(6, 16);
  const std::string wrong_secret = "evpn1_" + target_id + "_" + std::string(64, '0');
  auto enroll = [&](const std::string& token, const std::string& csr_pem) {
    return w.exchange(request("POST", "/v1/enroll", enroll_body(token, csr_pem)));
  };

  // An outage is not the client's fault: twelve 503 answers do not count against the address.
  w.xmpp().stop();
  for (int i = 0; i < 12; ++i) {
    const Outcome down = enroll(target, good_csr);
    CHECK(down.status == 503);
    CHECK_FALSE(down.retry_after.empty());
  }
  w.xmpp().restart();

  // Guessing one token's secret: five wrong guesses, then even the right secret waits.
  for (int i = 0; i < 5; ++i) CHECK(enroll(wrong_secret, good_csr).status == 401);
  const Outcome token_limited = enroll(target, good_csr);
  CHECK(token_limited.status == 429);
  CHECK(token_limited.error == "rate_limited");
  CHECK_THAT(token_limited.message, Contains("too many failed attempts with token " + target_id));
  REQUIRE_FALSE(token_limited.retry_after.empty());
  CHECK(std::stoi(token_limited.retry_after) > 0);
  CHECK(std::stoi(token_limited.retry_after) <= 600);

  // Another token from the same address is not held back by that token's failures, and neither
  // are the endpoints that need no token.
  auto other_key = ok(crypto::Key::generate(crypto::KeyType::ec_p256));
  CHECK(enroll(w.token(), ok(crypto::Csr::create(other_key, "unaffected")).to_pem()).status == 201);
  CHECK(w.exchange(request("GET", "/healthz")).status == 200);

  // Five more failures of any kind make ten from this address: the eleventh attempt waits.
  for (int i = 0; i < 5; ++i) CHECK(enroll("not-a-token", good_csr).status == 401);
  const Outcome address_limited = enroll(w.token(), good_csr);
  CHECK(address_limited.status == 429);
  CHECK_THAT(address_limited.message, Contains("too many failed attempts from 127.0.0.1"));
  REQUIRE_FALSE(address_limited.retry_after.empty());
  CHECK(std::stoi(address_limited.retry_after) > 0);
  CHECK(std::stoi(address_limited.retry_after) <= 60);
  // Renewals from the address wait too; requests that need no credentials do not.
  CHECK(w.exchange(request("POST", "/v1/renew", renew_body(good_csr))).status == 429);
  CHECK(w.exchange(request("GET", "/v1/roots")).status == 200);
  CHECK(w.exchange(request("GET", "/healthz")).status == 200);
}

namespace {

// How many lines of `text` contain `phrase`.
std::size_t lines_with(const std::string& text, const std::string& phrase) {
  std::size_t n = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) n += line.find(phrase) != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("one address holding idle connections neither locks out other addresses nor floods the log") {
  auto& w = world();
  w.reconfigure(json::object(), 256);
  const auto log_start = evpn::test::read_file(w.serve_log()).size();

  // Connections that never start TLS, from 127.0.0.1: more than max_connections.
  std::vector<std::unique_ptr<Connection>> idle;
  for (int i = 0; i < 300; ++i)
    idle.push_back(std::make_unique<Connection>(w.port(), w.root_pem(), nullptr, false, "127.0.0.1"));

  // Meanwhile a node on another address enrolls.
  auto key = ok(crypto::Key::generate(crypto::KeyType::ec_p256));
  Connection other(w.port(), w.root_pem(), nullptr, true, "127.0.0.2");
  REQUIRE(other.send(request("POST", "/v1/enroll", enroll_body(w.token(), ok(crypto::Csr::create(key, "elsewhere")).to_pem()))));
  const Outcome enrolled = other.read();
  INFO(enrolled.body);
  CHECK(enrolled.status == 201);

  // Every idle connection is closed by the server: those over the address's share at once, the
  // others at the handshake deadline, well before the 10 s a request may take.
  std::size_t closed = 0;
  for (auto& connection : idle) closed += connection->closed_by_server(9s);
  CHECK(closed == idle.size());

  // Hundreds of refusals, a few log lines.
  const std::string log = evpn::test::read_file(w.serve_log()).substr(log_start);
  const std::size_t refusal_lines = lines_with(log, "refus");
  CHECK(refusal_lines >= 1);
  CHECK(refusal_lines <= 3);
}

TEST_CASE("a renewal over a resumed TLS session is authenticated by the certificate of its first handshake") {
  auto& w = world();
  w.reconfigure(json::object(), 256);
  const auto node = w.enroll("resumer", w.token());

  Connection first(w.port(), w.root_pem(), &node);
  REQUIRE(first.send(request("GET", "/v1/roots")));
  CHECK(first.read().status == 200);
  const Session session = first.close_keeping_session();
  REQUIRE(session);

  Connection resumed(w.port(), w.root_pem(), &node, true, "", session.get());
  CHECK(resumed.resumed());
  auto key = ok(crypto::Key::generate(crypto::KeyType::ec_p256));
  REQUIRE(resumed.send(request("POST", "/v1/renew", renew_body(ok(crypto::Csr::create(key, "resumer")).to_pem()))));
  const Outcome renewed = resumed.read();
  INFO(renewed.body);
  CHECK(renewed.status == 201);
  if (renewed.status == 201)
    CHECK(ok(crypto::Certificate::from_pem(ok(evpn::protocol::parse_enrollment_result(renewed.body)).certificate))
              .matches(key));
}
