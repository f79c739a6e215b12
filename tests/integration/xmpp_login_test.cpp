// verify_login against a real ejabberd on loopback that accepts SASL EXTERNAL only.

#include "common/xmpp/login.hpp"
#include "tests/support/ejabberd_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

using Catch::Matchers::Contains;
using evpn::Errc;
using evpn::xmpp::LoginOptions;
using evpn::xmpp::LoginReport;
using evpn::xmpp::verify_login;
using evpn::ca::signing::Signer;
using evpn::test::EjabberdServer;
using evpn::test::TempDir;
using evpn::test::TestPki;
namespace fs = std::filesystem;

namespace {

const std::string domain = "evpn.test";

// One PKI and one ejabberd for the whole binary: starting ejabberd takes a second or two.
struct World {
  TempDir dir{"evpn-xmpp-login"};
  TestPki pki;
  fs::path root_file = dir.path() / "root.crt";
  EjabberdServer server{{domain, dir.path() / "server.pem", root_file, dir.path() / "ejabberd"}};

  World() {
    std::ofstream(root_file) << pki.root_pem();
    TestPki::write(pki.server({domain, "localhost", "127.0.0.1"}), dir.path(), "server");
    server.start();
    server.register_user("node1");
    server.register_user("node2");
  }

  // Writes `pair` as <stem>.crt/.key and returns options to log in as <user>@evpn.test with it.
  LoginOptions options(const TestPki::Pair& pair, const std::string& stem,
                       const std::string& user) const {
    TestPki::write(pair, dir.path(), stem);
    LoginOptions o;
    o.host = "127.0.0.1";
    o.port = server.c2s_port();
    o.jid = user + "@" + domain;
    o.cert_file = dir.path() / (stem + ".crt");
    o.key_file = dir.path() / (stem + ".key");
    o.ca_file = root_file;
    return o;
  }
};

World& world() {
  static World w;
  return w;
}

std::string bare(const std::string& jid) { return jid.substr(0, jid.find('/')); }

std::size_t open_descriptors() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), {}));
}

// Sets an environment variable for the scope of a test case, then puts back what was there.
struct EnvFor {
  const char* name;
  std::optional<std::string> saved;
  EnvFor(const char* n, const std::string& value) : name(n) {
    if (const char* old = std::getenv(n)) saved = old;
    ::setenv(n, value.c_str(), 1);
  }
  ~EnvFor() { saved ? ::setenv(name, saved->c_str(), 1) : ::unsetenv(name); }
};

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "(unset)";
}

// OpenSSL's default trust store as a system would have it, in `dir`, holding `pki`'s root among
// others: a bundle for SSL_CERT_FILE, and a hashed directory (c_rehash's <subject hash>.0 names)
// for SSL_CERT_DIR. Tests leave /etc/ssl alone.
struct SystemTrust {
  fs::path bundle;
  fs::path directory;
};
SystemTrust system_trust(const TestPki& pki, const fs::path& dir) {
  const SystemTrust trust{dir / "ca-certificates.crt", dir / "certs"};
  fs::create_directories(trust.directory);
  std::ofstream(trust.bundle) << TestPki().root_pem() << pki.root_pem();
  char name[16];
  const X509_NAME* subject = X509_get_subject_name(pki.signer().root().get());
  std::snprintf(name, sizeof name, "%08lx.0", X509_NAME_hash_ex(subject, nullptr, nullptr, nullptr));
  std::ofstream(trust.directory / name) << pki.root_pem();
  return trust;
}

void require_logged_in(const LoginReport& r, const std::string& jid) {
  INFO((r.error ? r.error->detail : std::string()));
  REQUIRE(r.ok());
  CHECK(r.connected);
  CHECK(r.secured);
  CHECK(r.authenticated);
  CHECK(r.mechanism == "EXTERNAL");
  CHECK(bare(r.bound_jid) == jid);
}

}  // namespace

TEST_CASE("a node with an EC P-256 certificate logs in with SASL EXTERNAL as its own JID") {
  auto& w = world();
  const auto r = verify_login(w.options(w.pki.node("node1", domain), "node1-ec", "node1"));
  require_logged_in(r, "node1@evpn.test");
  CHECK(w.server.wait_for_log("Accepted c2s EXTERNAL authentication for node1@evpn.test"));
}

TEST_CASE("a node with an RSA-2048 certificate logs in with SASL EXTERNAL") {
  auto& w = world();
  const auto r = verify_login(
      w.options(w.pki.node("node2", domain, evpn::crypto::KeyType::rsa_2048), "node2-rsa", "node2"));
  require_logged_in(r, "node2@evpn.test");
}

TEST_CASE("a client certificate from a foreign CA is refused by the server") {
  auto& w = world();
  const TestPki foreign;
  const auto r = verify_login(w.options(foreign.node("node1", domain), "node1-foreign", "node1"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::unauthorized);
  CHECK_THAT(r.error->detail, Contains("refused SASL EXTERNAL login for node1@evpn.test"));
  CHECK(r.secured);
  CHECK(r.mechanism == "EXTERNAL");
  CHECK_FALSE(r.authenticated);
  CHECK(w.server.wait_for_log("Failed c2s EXTERNAL authentication"));
}

TEST_CASE("an XMPP server whose certificate does not chain to the given CA is not trusted") {
  auto& w = world();
  const TestPki foreign;
  auto o = w.options(w.pki.node("node1", domain), "node1-untrusting", "node1");
  o.ca_file = w.dir.path() / "foreign-root.crt";
  std::ofstream(o.ca_file) << foreign.root_pem();

  const auto r = verify_login(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::unauthorized);
  CHECK_THAT(r.error->detail, Contains("the XMPP server's certificate did not verify"));
  CHECK_THAT(r.error->detail, Contains("evpn.test"));
  CHECK_FALSE(r.secured);
  // The client certificate was never offered for authentication to an untrusted server.
  CHECK(r.mechanism.empty());
}

TEST_CASE("a server certificate trusted only by OpenSSL's default trust store is not trusted") {
  auto& w = world();
  auto o = w.options(w.pki.node("node1", domain), "node1-system-trust", "node1");
  // Not another TestPki root: a CA file root named like the server's CA would be the only
  // candidate issuer OpenSSL considers, and the hashed directory would never be asked.
  o.ca_file = w.dir.path() / "other-root.crt";
  const auto other_key = evpn::crypto::Key::generate(evpn::crypto::KeyType::ec_p256);
  std::ofstream(o.ca_file) << Signer::create_root(*other_key, "another root", evpn::now_seconds())->to_pem();
  const SystemTrust trust = system_trust(w.pki, w.dir.path() / "system-trusts-server");
  const char* variable = nullptr;
  fs::path store;
  SECTION("a CA bundle in SSL_CERT_FILE") {
    variable = "SSL_CERT_FILE";
    store = trust.bundle;
  }
  SECTION("a hashed CA directory in SSL_CERT_DIR") {
    variable = "SSL_CERT_DIR";
    store = trust.directory;
  }
  const EnvFor system(variable, store.string());

  const auto r = verify_login(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::unauthorized);
  CHECK_THAT(r.error->detail, Contains("the XMPP server's certificate did not verify"));
  CHECK_FALSE(r.secured);
  CHECK(r.mechanism.empty());
  CHECK(env(variable) == store.string());
}

TEST_CASE("the given CA file is trusted whatever OpenSSL's default trust store holds, which is left as it was") {
  auto& w = world();
  const auto o = w.options(w.pki.node("node1", domain), "node1-own-trust", "node1");
  const TestPki foreign;
  const SystemTrust trust = system_trust(foreign, w.dir.path() / "system-trusts-other");
  const EnvFor file("SSL_CERT_FILE", trust.bundle.string());
  const EnvFor dir("SSL_CERT_DIR", trust.directory.string());

  require_logged_in(verify_login(o), "node1@evpn.test");
  CHECK(env("SSL_CERT_FILE") == trust.bundle.string());
  CHECK(env("SSL_CERT_DIR") == trust.directory.string());
}

TEST_CASE("asking for node1 with node2's certificate does not log in as node1") {
  auto& w = world();
  const auto r = verify_login(w.options(w.pki.node("node2", domain), "node2-as-node1", "node1"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::unauthorized);
  CHECK(bare(r.bound_jid) != "node1@evpn.test");
}

TEST_CASE("a server with nothing listening is reported as unavailable") {
  auto& w = world();
  auto o = w.options(w.pki.node("node1", domain), "node1-nowhere", "node1");
  o.port = evpn::test::free_port();
  const auto r = verify_login(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::unavailable);
  CHECK_THAT(r.error->detail,
             Contains("cannot reach the XMPP server at 127.0.0.1:" + std::to_string(o.port)));
  CHECK_FALSE(r.connected);
}

TEST_CASE("a server that accepts the connection but never answers runs into the deadline") {
  auto& w = world();
  // A listening socket that never accepts: the kernel completes the TCP handshake, and the
  // stream header goes unanswered.
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(sock, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(sock, 4) == 0);
  REQUIRE(::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0);

  auto o = w.options(w.pki.node("node1", domain), "node1-silent", "node1");
  o.port = ntohs(addr.sin_port);
  o.deadline = std::chrono::milliseconds(300);
  const auto r = verify_login(o);
  ::close(sock);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::unavailable);
  CHECK_THAT(r.error->detail, Contains("did not finish within 300 ms"));
  CHECK_FALSE(r.connected);
}

TEST_CASE("missing certificate, key or CA files are refused before connecting") {
  auto& w = world();
  auto o = w.options(w.pki.node("node1", domain), "node1-files", "node1");
  const fs::path missing = w.dir.path() / "does-not-exist.pem";
  for (auto file : {&LoginOptions::cert_file, &LoginOptions::key_file, &LoginOptions::ca_file}) {
    auto broken = o;
    broken.*file = missing;
    const auto r = verify_login(broken);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error->code == Errc::invalid_request);
    CHECK_THAT(r.error->detail, Contains(missing.string()));
    CHECK_FALSE(r.connected);
  }
}

TEST_CASE("a certificate and key given as PEM text log in without touching a file, and leave no descriptor behind") {
  auto& w = world();
  const auto pair = w.pki.node("node1", domain);
  LoginOptions o;
  o.host = "127.0.0.1";
  o.port = w.server.c2s_port();
  o.jid = "node1@" + domain;
  o.cert_pem = pair.cert.to_pem();
  o.key_pem = pair.key.to_pem();
  o.ca_file = w.root_file;
  std::vector<std::string> trace;
  o.trace = [&trace](std::string_view line) { trace.emplace_back(line); };
  require_logged_in(verify_login(o), "node1@evpn.test");  // warm-up: one-time library set-up
  const auto before = open_descriptors();
  require_logged_in(verify_login(o), "node1@evpn.test");
  CHECK(open_descriptors() == before);
  CHECK_THAT(trace.back(), Contains("succeeded with SASL EXTERNAL"));
  // Nothing of the key reaches the trace.
  const std::string key_body = o.key_pem.substr(o.key_pem.find('\n') + 1, 40);
  for (const auto& line : trace) CHECK_THAT(line, !Contains(key_body));

  // Exactly one of a file and PEM text, for the certificate and for the key.
  auto both = o;
  both.key_file = w.dir.path() / "node1.key";
  CHECK(verify_login(both).error->code == Errc::invalid_request);
  auto neither = o;
  neither.cert_pem.clear();
  CHECK_THAT(verify_login(neither).error->detail, Contains("either as files or as PEM text"));
}

TEST_CASE("repeated logins in one process leave no descriptors behind") {
  auto& w = world();
  const auto good = w.options(w.pki.node("node1", domain), "node1-repeat", "node1");
  auto refused = good;
  refused.jid = "node2@evpn.test";
  require_logged_in(verify_login(good), "node1@evpn.test");  // warm-up: one-time library set-up
  const auto before = open_descriptors();
  for (int i = 0; i < 5; ++i) {
    require_logged_in(verify_login(good), "node1@evpn.test");
    CHECK_FALSE(verify_login(refused).ok());
  }
  CHECK(open_descriptors() == before);
}

TEST_CASE("a login while ejabberd is stopped is unavailable and works again once it is back") {
  auto& w = world();
  const auto o = w.options(w.pki.node("node1", domain), "node1-restart", "node1");
  w.server.stop();
  const auto down = verify_login(o);
  w.server.start();
  REQUIRE_FALSE(down.ok());
  CHECK(down.error->code == Errc::unavailable);
  require_logged_in(verify_login(o), "node1@evpn.test");
  // Same spool: the accounts registered before the restart are still there.
  CHECK_THAT(w.server.api("registered_users", {{"host", domain}}).body, Contains("\"node1\""));
}
