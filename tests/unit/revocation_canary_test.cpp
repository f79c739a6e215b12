// The revocation canary's logic against the Openfire REST API stand-in, with an XMPP login stand-in
// that behaves like Openfire (a certificate must come from the CA, a locked-out user is refused)
// or misbehaves on purpose; the real logins are in tests/integration/revocation_canary_test.cpp.

#include "ca-service/authority/revocation_canary.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/openfire_standin.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using evpn::Errc;
using evpn::ca::authority::CanaryReport;
using evpn::ca::authority::Effectiveness;
using evpn::xmpp::LoginOptions;
using evpn::xmpp::LoginReport;

namespace {

const evpn::TimePoint now = evpn::from_unix(1'800'000'000);

// How the login stand-in's server misbehaves.
struct Server {
  bool honours_lockouts = true;
  bool checks_issuer = true;
  bool accepts_this_ca = true;
  bool reachable = true;
};

// The canary's world: its CA, the Openfire REST API stand-in, and every login it attempted.
struct World {
  evpn::test::TempDir dir{"evpn-canary-unit"};
  evpn::test::TestPki pki;
  evpn::test::OpenfireStandin standin{[] {
    evpn::test::OpenfireStandin::Options o;
    o.secret = "canary-secret";
    return o;
  }()};
  std::unique_ptr<evpn::ca::xmpp::Directory> directory;
  Server server;
  std::vector<LoginOptions> attempts;

  World() {
    const auto secret = dir.path() / "restapi.secret";
    std::ofstream(secret) << "canary-secret\n";
    evpn::ca::DirectoryConfig c;
    c.type = evpn::ca::DirectoryType::openfire;
    c.url = standin.url();
    c.secret_file = secret.string();
    directory = evpn::test::ok(evpn::ca::xmpp::make_directory(c, "evpn.test"));
  }

  LoginReport login(const LoginOptions& o) {
    attempts.push_back(o);
    LoginReport r;
    const auto refuse = [&](Errc code, const std::string& why) {
      r.error = evpn::fail(code, why);
      return r;
    };
    if (!server.reachable) return refuse(Errc::unavailable, "connection refused");
    r.connected = r.secured = true;
    r.mechanism = "EXTERNAL";
    auto cert = evpn::crypto::Certificate::from_pem(o.cert_pem);
    REQUIRE(cert.has_value());
    const bool from_ca = X509_verify(cert->get(), pki.signer().root().public_key()) == 1;
    if ((server.checks_issuer && !from_ca) || (from_ca && !server.accepts_this_ca))
      return refuse(Errc::unauthorized, "not-authorized: certificate not trusted");
    const std::string user = o.jid.substr(0, o.jid.find('@'));
    if (!standin.users().contains(user)) return refuse(Errc::unauthorized, "not-authorized: no such user");
    if (server.honours_lockouts && standin.lockouts().contains(user))
      return refuse(Errc::unauthorized, "account-disabled");
    r.authenticated = true;
    r.bound_jid = o.jid + "/canary";
    return r;
  }

  // Runs the canary through `through`, by default the Openfire backend.
  CanaryReport run(evpn::ca::xmpp::Directory* through = nullptr) {
    const evpn::ca::authority::CanaryTarget target{
        {"evpn.test", "127.0.0.1", 5222}, evpn::ca::DirectoryType::openfire, "/dev/null"};
    return evpn::ca::authority::run_canary(through ? *through : *directory, pki.signer(), target,
                                           [this](const LoginOptions& o) { return login(o); }, now);
  }

  // Nothing of the canary is left on the server.
  void require_nothing_left() const {
    CHECK(standin.users().empty());
    CHECK(standin.lockouts().empty());
  }
};

std::string item(const CanaryReport& r, const std::string& name) {
  for (const auto& i : r.items)
    if (i.name == name) return (!i.ok ? "UNKNOWN " : *i.ok ? "OK " : "WRONG ") + i.detail;
  return "(no item " + name + ")";
}

}  // namespace

TEST_CASE("the canary proves revocation effective where a locked-out account is refused, and leaves nothing") {
  World w;
  const CanaryReport r = w.run();
  INFO(r.summary);
  CHECK(r.revocation == Effectiveness::effective);
  CHECK(r.all_ok());
  CHECK_THAT(item(r, "certificate login"), StartsWith("OK a fresh account logs in"));
  CHECK_THAT(item(r, "foreign CA"), StartsWith("OK a certificate for the same account from a throwaway foreign CA"));
  CHECK_THAT(item(r, "revocation"), StartsWith("OK revocation is effective") && Contains("account-disabled"));
  CHECK_THAT(item(r, "clean-up"), StartsWith("OK the canary account was removed"));
  w.require_nothing_left();

  // Its account can never be a node's, and its certificate is good for two minutes and no more.
  CHECK_THAT(r.jid, StartsWith("_evpn-canary-"));
  const std::string username = r.jid.substr(0, r.jid.find('@'));
  CHECK_FALSE(evpn::ca::enrollment::check_username(username).has_value());
  REQUIRE(w.attempts.size() == 3);
  for (const auto& attempt : w.attempts) {
    // The key went to the login as text, never as a file.
    CHECK(attempt.key_file.empty());
    CHECK(attempt.cert_file.empty());
    CHECK_THAT(attempt.key_pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
    auto cert = evpn::crypto::Certificate::from_pem(attempt.cert_pem);
    REQUIRE(cert.has_value());
    CHECK(cert->not_after() == now + std::chrono::minutes(2));
    CHECK(cert->common_name() == username);
  }
}

TEST_CASE("each way a server fails the canary gives its verdict, a WRONG or UNKNOWN item, and leaves nothing") {
  struct Case {
    const char* server;
    bool Server::*fault;  // turned off
    Effectiveness revocation;
    const char* item;
    const char* item_starts;
    const char* summary_has;
  };
  const Case cases[] = {
      {"ignores the lockout", &Server::honours_lockouts, Effectiveness::not_effective, "revocation",
       "WRONG revocation is NOT effective: the canary, locked out through the REST API",
       "a revoked node keeps its access"},
      {"accepts a foreign CA's certificate", &Server::checks_issuer, Effectiveness::effective, "foreign CA",
       "WRONG a certificate from a foreign CA was accepted", "revocation is effective"},
      // A refusal after a control login that failed too would prove nothing.
      {"refuses this CA's certificates", &Server::accepts_this_ca, Effectiveness::unknown, "certificate login",
       "WRONG a fresh account cannot log in with a certificate from this CA", "the revocation cannot be tested"},
      {"does not answer", &Server::reachable, Effectiveness::unknown, "certificate login", "UNKNOWN",
       "connection refused"},
  };
  for (const auto& c : cases) {
    INFO("a server that " << c.server);
    World w;
    w.server.*c.fault = false;
    const CanaryReport r = w.run();
    CHECK(r.revocation == c.revocation);
    CHECK_FALSE(r.all_ok());
    CHECK_THAT(item(r, c.item), StartsWith(c.item_starts));
    CHECK_THAT(r.summary, Contains(c.summary_has));
    w.require_nothing_left();
  }
}

// The Openfire backend, but deleting a user fails while `deletes_fail` is set (Openfire restarting,
// say): the canary's clean-up cannot finish.
class FlakyDirectory final : public evpn::ca::xmpp::Directory {
 public:
  explicit FlakyDirectory(evpn::ca::xmpp::Directory& real) : real_(real) {}
  bool deletes_fail = true;

  evpn::Result<void> ensure_group(const std::string& g) override { return real_.ensure_group(g); }
  evpn::Result<bool> user_exists(const std::string& u) override { return real_.user_exists(u); }
  evpn::Result<void> create_user(const std::string& u) override { return real_.create_user(u); }
  evpn::Result<void> add_member(const std::string& u, const std::string& g) override { return real_.add_member(u, g); }
  evpn::Result<void> disable_user(const std::string& u) override { return real_.disable_user(u); }
  evpn::Result<void> lift_lockout(const std::string& u) override { return real_.lift_lockout(u); }
  evpn::Result<void> delete_user(const std::string& u) override {
    if (deletes_fail) return evpn::fail(Errc::unavailable, "Openfire is restarting");
    return real_.delete_user(u);
  }
  evpn::Result<void> ping() override { return real_.ping(); }

 private:
  evpn::ca::xmpp::Directory& real_;
};

TEST_CASE("a canary account whose removal failed is named in the report and removed by a later attempt") {
  World w;
  FlakyDirectory flaky(*w.directory);
  const CanaryReport r = w.run(&flaky);
  CHECK(r.revocation == Effectiveness::effective);
  CHECK_THAT(item(r, "clean-up"), StartsWith("WRONG cannot remove the canary account") &&
                                      Contains("Openfire is restarting"));
  REQUIRE(r.left_behind == r.jid.substr(0, r.jid.find('@')));
  CHECK(w.standin.users() == std::set<std::string>{r.left_behind});
  // Its lockout was lifted all the same: nothing but the account itself is left.
  CHECK(w.standin.lockouts().empty());

  flaky.deletes_fail = false;
  CHECK(evpn::ca::authority::remove_canary(flaky, r.left_behind).has_value());
  w.require_nothing_left();
}

TEST_CASE("print_canary prints one OK / WRONG / UNKNOWN line per item") {
  World w;
  w.server.honours_lockouts = false;
  std::ostringstream out;
  CHECK_FALSE(evpn::ca::authority::print_canary(w.run(), out));
  CHECK_THAT(out.str(), StartsWith("revocation canary _evpn-canary-"));
  CHECK_THAT(out.str(), Contains("\n  OK     certificate login: ") && Contains("\n  WRONG  revocation: "));
}

TEST_CASE("RevocationCanary keeps the last verdict for the threads that report it") {
  evpn::ca::authority::RevocationCanary canary;
  CHECK(canary.effective() == Effectiveness::unknown);
  CHECK(canary.last_error() == "the revocation canary has not run yet");
  CHECK_FALSE(canary.last_run().has_value());

  World w;
  w.server.honours_lockouts = false;
  canary.record(w.run(), now);
  CHECK(canary.effective() == Effectiveness::not_effective);
  CHECK_THAT(canary.last_error(), StartsWith("revocation is NOT effective"));
  CHECK(canary.last_run() == now);

  w.server.honours_lockouts = true;
  canary.record(w.run(), now + std::chrono::minutes(10));
  CHECK(canary.effective() == Effectiveness::effective);
  CHECK(canary.last_error().empty());
}
