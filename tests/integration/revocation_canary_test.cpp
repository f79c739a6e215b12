// The revocation canary against a real ejabberd: `evpn-ca ejabberd check` and `evpn-ca serve`,
// with the shipped configuration and with one whose c2s access rule lacks the revocation rule.

#include "common/net/https_client.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/deployment.hpp"
#include "tests/support/exposition.hpp"
#include "tests/support/process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using Catch::Matchers::Contains;
using evpn::test::Deployment;
using evpn::test::RunResult;
using nlohmann::json;

namespace {

Deployment& world() {
  static Deployment deployment("evpn-canary");
  return deployment;
}

RunResult ejabberd_check(Deployment& w) {
  return evpn::test::run({EVPN_CA_BIN, "ejabberd", "check", "--dir", w.ca_dir().string()});
}

json healthz(Deployment& w) {
  evpn::net::ClientTls tls;
  tls.ca_pem = evpn::test::read_file(w.ca_dir() / "ca.crt");
  auto url = evpn::net::parse_url(w.ca_url() + "/healthz");
  REQUIRE(url.has_value());
  auto answer = evpn::net::HttpClient(tls).send({"GET", *url, {}, ""});
  REQUIRE(answer.has_value());
  INFO(answer->body);
  CHECK(answer->status == 200);
  return json::parse(answer->body);
}

// /healthz once serve's first canary, which runs on its maintenance thread as it starts, has a verdict.
json healthz_after_canary(Deployment& w) {
  json health;
  CHECK(evpn::test::eventually(
      [&] {
        health = healthz(w);
        return health["revocation"] != "unknown";
      },
      std::chrono::seconds(60)));
  return health;
}

// Nothing of any canary is left: no account on the server, no member of the revoked group, and
// nothing in the CA's store (no node, no certificate, no audit entry).
void require_no_canary_left(Deployment& w) {
  const auto users = w.xmpp().api("registered_users", {{"host", Deployment::domain}});
  REQUIRE(users.status == 200);
  CHECK_THAT(users.body, !Contains("_evpn-canary-"));
  const auto revoked = w.xmpp().api("srg_get_members", {{"group", "_evpn-revoked"}, {"host", Deployment::domain}});
  REQUIRE(revoked.status == 200);
  CHECK_THAT(revoked.body, !Contains("_evpn-canary-"));
  CHECK(w.evpn_ca({"nodes", "--json"}) == "[]");
  CHECK(w.evpn_ca({"audit", "--json"}) == "[]");
}

}  // namespace

// First: until serve's first canary is done its account exists, which require_no_canary_left would see.
TEST_CASE("evpn-ca serve runs the canary at start and reports an effective revocation on /healthz") {
  auto& w = world();
  const json health = healthz_after_canary(w);
  CHECK(health["status"] == "ok");
  CHECK(health["revocation"] == "effective");
  CHECK_FALSE(health.contains("revocation_error"));
  CHECK_THAT(evpn::test::read_file(w.serve_log()), Contains("revocation canary: revocation is effective"));
  require_no_canary_left(w);
}

TEST_CASE("ejabberd check is OK and exits 0 against the shipped ejabberd configuration") {
  auto& w = world();
  const RunResult r = ejabberd_check(w);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("OK     status: the API answers the account with its password"));
  CHECK_THAT(r.out, Contains("OK     the shared roster group _evpn-revoked exists"));
  CHECK_THAT(r.out, Contains("OK     api_permissions refuse the account a command evpn-ca does not use"));
  CHECK_THAT(r.out, Contains("OK     certificate login: a fresh account logs in with a two-minute certificate"));
  CHECK_THAT(r.out, Contains("OK     foreign CA: a certificate for the same account from a throwaway foreign CA is "
                             "refused"));
  CHECK_THAT(r.out, Contains("OK     revocation: revocation is effective"));
  CHECK_THAT(r.out, Contains("OK     clean-up: the canary account was removed"));
  CHECK_THAT(r.out, Contains("result: OK"));
  // The refusal was ejabberd's c2s access rule, after a certificate it accepted.
  CHECK(w.xmpp().wait_for_log("Forbidden c2s session for _evpn-canary-"));
  require_no_canary_left(w);
}

// Last: restarts ejabberd without the rule.
TEST_CASE("without the revocation rule, ejabberd check says WRONG with the fix and exits 1, and serve says so loudly") {
  auto& w = world();
  w.xmpp().set_revocation_rule(false);
  w.xmpp().restart();

  const RunResult r = ejabberd_check(w);
  INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Contains("OK     certificate login"));
  CHECK_THAT(r.out, Contains("WRONG  revocation: revocation is NOT effective: the canary, made a member of the shared "
                             "roster group _evpn-revoked, as `evpn-ca revoke` does to a node, logged in again"));
  CHECK_THAT(r.out, Contains("copy the ACL `evpn_revoked: {shared_group: \"_evpn-revoked\"}` and the c2s access rule "
                             "`deny: evpn_revoked`"));
  CHECK_THAT(r.out, Contains("OK     clean-up"));
  CHECK_THAT(r.out, Contains("result: WRONG"));
  require_no_canary_left(w);

  w.stop_ca();
  w.start_ca();
  const json health = healthz_after_canary(w);
  CHECK(health["status"] == "ok");
  CHECK(health["revocation"] == "not effective");
  CHECK_THAT(health["revocation_error"].get<std::string>(), Contains("a revoked node keeps its access"));
  const std::string log = evpn::test::read_file(w.serve_log());
  CHECK_THAT(log, Contains("error: revocation canary: revocation is NOT effective"));
  // The metric follows the verdict once the maintenance round that ran the canary is over.
  CHECK(evpn::test::eventually(
      [&] { return evpn::test::scrape(w.metrics_url()).at("evpn_ca_revocation_effective") == 0; },
      std::chrono::seconds(10)));
  require_no_canary_left(w);
}
