// Who may be issued a certificate for which XMPP account, and what keeps a locked-out node out:
// the real evpn-ca and evpn-agent against a real ejabberd on loopback. An account evpn-ca did not
// create is never handed out; no enrollment or renewal lifts a lockout; `serve` re-asserts the
// lockout of every revoked node whose certificate is still valid.

#include "common/xmpp/login.hpp"
#include "tests/support/deployment.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using Catch::Matchers::Contains;
using evpn::test::Deployment;
using evpn::test::RunResult;
using evpn::test::TestNode;
using evpn::test::eventually;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Argv = std::vector<std::string>;

struct World {
  Deployment deployment{"evpn-owner"};
  World() { deployment.add_group("vnet", "101000F"); }
};

World& world() {
  static World w;
  return w;
}

std::string domain() { return Deployment::domain; }

json run_json(const RunResult& r) {
  INFO("exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
  json parsed = json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(parsed.is_discarded());
  return parsed;
}

json listing(const Argv& command) { return world().deployment.listing(command); }

int uses_left(const std::string& token) {
  const std::string id = token.substr(6, 16);
  for (const auto& t : listing({"token", "list"}))
    if (t["id"] == id) return t["uses_left"];
  FAIL("no token " << id);
  return -1;
}

std::vector<std::string> audit_actions(const std::string& username) {
  std::vector<std::string> actions;
  for (const auto& e : listing({"audit"}))
    if (e["username"] == username) actions.push_back(e["action"]);
  return actions;
}

// The members of an ejabberd shared roster group, as user@domain.
std::vector<std::string> members(const std::string& group) {
  const auto answer = world().deployment.xmpp().api("srg_get_members", {{"group", group}, {"host", domain()}});
  INFO(answer.body);
  REQUIRE(answer.status == 200);
  return json::parse(answer.body).get<std::vector<std::string>>();
}

bool is_member(const std::string& username, const std::string& group) {
  const auto list = members(group);
  return std::find(list.begin(), list.end(), username + "@" + domain()) != list.end();
}

bool account_exists(const std::string& username) {
  const auto answer = world().deployment.xmpp().api("check_account", {{"user", username}, {"host", domain()}});
  return answer.status == 200 && answer.body == "0";
}

evpn::xmpp::LoginReport login(const TestNode& node) {
  auto& d = world().deployment;
  evpn::xmpp::LoginOptions o;
  o.host = "127.0.0.1";
  o.port = d.xmpp().c2s_port();
  o.jid = node.username + "@" + domain();
  o.cert_file = node.current() / "node.crt";
  o.key_file = node.current() / "node.key";
  o.ca_file = d.ca_dir() / "ca.crt";
  return evpn::xmpp::verify_login(o);
}

void enroll(const TestNode& node) {
  const RunResult r = world().deployment.enroll(node, world().deployment.token("vnet"));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

void lock_out_by_hand(const std::string& username) {
  const auto answer = world().deployment.xmpp().api(
      "srg_user_add", {{"user", username}, {"host", domain()}, {"group", "_evpn-revoked"}, {"grouphost", domain()}});
  REQUIRE(answer.status == 200);
}

}  // namespace

TEST_CASE("an account that exists on the XMPP server but that evpn-ca did not create is refused, untouched") {
  auto& d = world().deployment;
  d.xmpp().register_user("alice");
  const std::string token = d.token("vnet", {"--uses", "2"});

  const TestNode node = d.node("alice");
  const RunResult r = d.enroll(node, token);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 3);
  const json answer = run_json(r);
  CHECK(answer["error"] == "account_exists");
  CHECK_THAT(answer["message"].get<std::string>(), Contains("--adopt-existing"));
  CHECK_FALSE(fs::exists(node.current()));
  CHECK(uses_left(token) == 2);
  CHECK_FALSE(is_member("alice", "vnet"));
  CHECK(listing({"nodes"}).dump().find("alice") == std::string::npos);

  // A pinned token does not take the account either: adopting one is its own, explicit choice.
  const RunResult pinned = d.enroll(d.node("alice"), d.token("vnet", {"--username", "alice"}));
  CHECK(pinned.exit_code == 3);
  CHECK(run_json(pinned)["error"] == "account_exists");
  CHECK_FALSE(is_member("alice", "vnet"));
}

TEST_CASE("an operator adopts an existing account only with a token made for it with --adopt-existing") {
  auto& d = world().deployment;
  d.xmpp().register_user("bob");
  const RunResult unpinned = evpn::test::run(
      {EVPN_CA_BIN, "token", "create", "--dir", d.ca_dir().string(), "--group", "vnet", "--adopt-existing"});
  CHECK(unpinned.exit_code != 0);
  CHECK_THAT(unpinned.err, Contains("--username"));

  const TestNode node = d.node("bob");
  const RunResult r = d.enroll(node, d.token("vnet", {"--username", "bob", "--adopt-existing"}));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(login(node).ok());
  CHECK(is_member("bob", "vnet"));
  const auto actions = audit_actions("bob");
  CHECK(std::count(actions.begin(), actions.end(), "account-adopt") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "enroll") == 1);
}

TEST_CASE("reserved usernames are refused for every token and never created") {
  auto& d = world().deployment;
  for (const std::string name : {"admin", "postmaster"}) {
    const RunResult pinned = evpn::test::run(
        {EVPN_CA_BIN, "token", "create", "--dir", d.ca_dir().string(), "--group", "vnet", "--username", name});
    CHECK(pinned.exit_code == 1);
    CHECK_THAT(pinned.err, Contains("reserved"));

    const std::string token = d.token("vnet");
    const RunResult r = d.enroll(d.node(name), token);
    CHECK(r.exit_code == 3);
    CHECK(run_json(r)["error"] == "forbidden");
    CHECK_THAT(run_json(r)["message"].get<std::string>(), Contains("reserved"));
    CHECK(uses_left(token) == 1);
    CHECK_FALSE(account_exists(name));
  }
}

TEST_CASE("a node cannot lift a lockout the operator placed by renewing") {
  auto& d = world().deployment;
  const TestNode node = d.node("carol");
  enroll(node);
  REQUIRE(login(node).ok());
  lock_out_by_hand("carol");
  REQUIRE_FALSE(login(node).ok());

  const RunResult renewal = evpn::test::run(
      {EVPN_AGENT_BIN, "renew", "--force", "--retry-for", "0", "--state-dir", node.state().string(), "--json"});
  INFO("stdout: " << renewal.out << "\nstderr: " << renewal.err);
  CHECK(renewal.exit_code != 0);
  CHECK(is_member("carol", "_evpn-revoked"));
  CHECK_FALSE(login(node).ok());
}

TEST_CASE("serve re-asserts the lockout of a revoked node whose certificate is still valid") {
  auto& d = world().deployment;
  const TestNode node = d.node("dave");
  enroll(node);
  const RunResult revoked = evpn::test::run({EVPN_CA_BIN, "revoke", "--dir", d.ca_dir().string(), "--username", "dave"});
  REQUIRE(revoked.exit_code == 0);
  REQUIRE_FALSE(login(node).ok());

  // A lost race or an operator's mistake takes the node out of the revoked group...
  const auto lifted = d.xmpp().api(
      "srg_user_del", {{"user", "dave"}, {"host", domain()}, {"group", "_evpn-revoked"}, {"grouphost", domain()}});
  REQUIRE(lifted.status == 200);
  REQUIRE(login(node).ok());
  // ...and serve's maintenance (every 30 s) puts it back.
  CHECK(eventually([&] { return is_member("dave", "_evpn-revoked"); }, std::chrono::seconds(75)));
  CHECK_FALSE(login(node).ok());
}
