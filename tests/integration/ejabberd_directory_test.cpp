#include "ca-service/config.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/crypto/certificate.hpp"
#include "common/fs/atomic_file.hpp"
#include "tests/support/ejabberd_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <utility>
#include <vector>

using evpn::test::ok;
using evpn::test::error_of;

namespace {

using namespace evpn;
using nlohmann::json;
using Catch::Contains;

const std::string domain = "evpn.test";

// The directory as `evpn-ca init --directory ejabberd` configures it for `server`.
ca::DirectoryConfig ejabberd_config(const test::EjabberdServer& server, const std::string& url = "") {
  ca::DirectoryConfig config;
  config.type = ca::DirectoryType::ejabberd;
  config.url = url.empty() ? server.api_url() : url;
  config.username = server.ca_account().jid;
  config.secret_file = server.ca_account_secret_file().string();
  config.timeout_ms = 2000;
  return config;
}

// A real ejabberd on loopback, with a server certificate from a throwaway PKI.
struct RunningEjabberd {
  test::TempDir dir{"evpn-ejabberd-directory"};
  test::TestPki pki;
  test::EjabberdServer server{options()};

  RunningEjabberd() { server.start(); }

  test::EjabberdServer::Options options() {
    test::TestPki::write(pki.server({domain, "localhost"}), dir.path(), "server");
    auto root = dir.path() / "root.crt";
    ok(fs::write_file_atomic(root, pki.root_pem(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    return {domain, dir.path() / "server.pem", root, dir.path() / "ejabberd"};
  }

  // Calls the API as the tests' account, to see what the directory did.
  json api(const std::string& command, const json& args) const {
    auto answer = server.api(command, args);
    INFO(command << " answered " << answer.body);
    REQUIRE(answer.status == 200);
    return json::parse(answer.body);
  }

  // The registered accounts: the CA's and the tests' own, and what evpn-ca provisioned.
  std::set<std::string> users() const { return api("registered_users", {{"host", domain}}).get<std::set<std::string>>(); }
};

const std::set<std::string> api_accounts = {"evpn-ca", "tests"};

using Command = std::pair<std::string, json>;

// Every command evpn-ca calls, with arguments ejabberd accepts, in an order in which each succeeds.
const std::vector<Command> evpn_ca_commands = {
    {"status", json::object()},
    {"register", {{"user", "probe"}, {"host", domain}, {"password", "probe-password"}}},
    {"check_account", {{"user", "probe"}, {"host", domain}}},
    {"srg_create", {{"group", "probe"}, {"host", domain}, {"label", "probe"}, {"description", ""}, {"display", ""}}},
    {"srg_user_add", {{"user", "probe"}, {"host", domain}, {"group", "probe"}, {"grouphost", domain}}},
    {"srg_user_del", {{"user", "probe"}, {"host", domain}, {"group", "probe"}, {"grouphost", domain}}},
    {"kick_user", {{"user", "probe"}, {"host", domain}}},
    {"unregister", {{"user", "probe"}, {"host", domain}}},
    {"srg_list", {{"host", domain}}},  // only `evpn-ca ejabberd check`
};

// Commands evpn-ca never calls, each harmful or revealing in the wrong hands.
const std::vector<Command> other_commands = {
    {"change_password", {{"user", "victim"}, {"host", domain}, {"newpass", "taken-over"}}},
    {"set_vcard", {{"user", "victim"}, {"host", domain}, {"name", "FN"}, {"content", "defaced"}}},
    {"ban_account", {{"user", "victim"}, {"host", domain}, {"reason", "none"}}},
    {"registered_users", {{"host", domain}}},
    {"srg_get_members", {{"group", "probe"}, {"host", domain}}},
    {"srg_delete", {{"group", "probe"}, {"host", domain}}},
    {"connected_users", json::object()},
};

// The `what:` list of the shipped api_permissions.
std::set<std::string> shipped_grant() {
  std::ifstream in(std::string(EVPN_SOURCE_DIR) + "/deploy/ejabberd/ejabberd.yml.in");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::smatch what;
  REQUIRE(std::regex_search(text, what, std::regex(R"(\n    what: \[([^\]]*)\])")));
  std::set<std::string> commands;
  const std::string list = what[1];
  const std::regex name(R"([a-z_]+)");
  for (std::sregex_iterator it(list.begin(), list.end(), name), end; it != end; ++it)
    commands.insert(it->str());
  return commands;
}

}  // namespace

TEST_CASE("the ejabberd directory provisions a group, a user and a membership, and tells who exists") {
  RunningEjabberd ejabberd;
  auto directory = ok(ca::xmpp::make_directory(ejabberd_config(ejabberd.server), domain));

  ok(directory->ping());
  ok(directory->ensure_group("overlay1"));
  ok(directory->ensure_group("overlay1"));
  CHECK_FALSE(ok(directory->user_exists("node1")));
  ok(directory->create_user("node1"));
  CHECK(ok(directory->user_exists("node1")));
  // A second create is a conflict: the caller decides whether the account is its own.
  CHECK(error_of(directory->create_user("node1")).code == Errc::conflict);
  ok(directory->add_member("node1", "overlay1"));
  ok(directory->add_member("node1", "overlay1"));

  CHECK(ejabberd.api("srg_get_members", {{"group", "overlay1"}, {"host", domain}}) == json{"node1@evpn.test"});
  CHECK(ejabberd.users() == std::set<std::string>{"evpn-ca", "tests", "node1"});
  // Members see each other only when the group displays itself.
  auto info = ejabberd.api("srg_get_info", {{"group", "overlay1"}, {"host", domain}});
  INFO(info.dump());
  CHECK(std::find(info.begin(), info.end(), json{{"key", "displayed_groups"}, {"value", "overlay1"}}) != info.end());

  ok(directory->disable_user("node1"));
  ok(directory->disable_user("node1"));
  CHECK(ejabberd.api("srg_get_members", {{"group", "_evpn-revoked"}, {"host", domain}}) == json{"node1@evpn.test"});
  ok(directory->lift_lockout("node1"));
  ok(directory->lift_lockout("node1"));
  CHECK(ejabberd.api("srg_get_members", {{"group", "_evpn-revoked"}, {"host", domain}}) == json::array());
  ok(directory->delete_user("node1"));
  ok(directory->delete_user("node1"));
  CHECK(ejabberd.users() == api_accounts);
  CHECK_FALSE(ok(directory->user_exists("node1")));

  ejabberd.server.stop();
  for (const auto& [name, result] :
       {std::pair{"ping", directory->ping()}, std::pair{"ensure_group", directory->ensure_group("overlay1")},
        std::pair{"create_user", directory->create_user("node2")},
        std::pair{"add_member", directory->add_member("node2", "overlay1")},
        std::pair{"disable_user", directory->disable_user("node2")},
        std::pair{"lift_lockout", directory->lift_lockout("node2")},
        std::pair{"delete_user", directory->delete_user("node2")}}) {
    INFO(name);
    auto error = error_of(result);
    CHECK(error.code == Errc::unavailable);
    CHECK_THAT(error.detail, Contains("ejabberd at " + ejabberd.server.api_url() + " is unreachable"));
  }
  CHECK(error_of(directory->user_exists("node2")).code == Errc::unavailable);
}

TEST_CASE("the ejabberd directory reports a wrong API path as a configuration error") {
  RunningEjabberd ejabberd;
  auto url = ejabberd.server.api_url();
  auto directory =
      ok(ca::xmpp::make_directory(ejabberd_config(ejabberd.server, url.substr(0, url.size() - 4) + "/wrong"), domain));

  auto error = error_of(directory->ensure_group("overlay1"));
  CHECK(error.code == Errc::internal);
  CHECK_THAT(error.detail, Contains("ejabberd refused srg_create (HTTP 404)"));
  CHECK_THAT(error.detail, Contains("api_permissions"));
}

TEST_CASE("make_directory refuses unusable URLs and a directory without its secret") {
  ca::DirectoryConfig config;
  config.url = "ftp://127.0.0.1/api";
  auto bad_url = error_of(ca::xmpp::make_directory(config, domain));
  CHECK(bad_url.code == Errc::invalid_request);
  CHECK_THAT(bad_url.detail, Contains("directory.url"));

  config.url = "http://127.0.0.1:5280/api";
  config.type = ca::DirectoryType::openfire;
  auto openfire = error_of(ca::xmpp::make_directory(config, domain));
  CHECK(openfire.code == Errc::invalid_request);
  CHECK_THAT(openfire.detail, Contains("directory.secret_file or directory.secret_env"));

}

TEST_CASE("the none directory accepts every call without a server") {
  ca::DirectoryConfig config;
  config.type = ca::DirectoryType::none;
  auto directory = ok(ca::xmpp::make_directory(config, domain));
  ok(directory->ping());
  ok(directory->ensure_group("overlay1"));
  CHECK_FALSE(ok(directory->user_exists("node1")));
  ok(directory->create_user("node1"));
  ok(directory->add_member("node1", "overlay1"));
  ok(directory->disable_user("node1"));
  ok(directory->lift_lockout("node1"));
  ok(directory->delete_user("node1"));
}

TEST_CASE("the shipped ejabberd config refuses API calls without credentials, from loopback too") {
  RunningEjabberd ejabberd;
  const auto answer = ejabberd.server.api_as(
      std::nullopt, "register", {{"user", "intruder"}, {"host", domain}, {"password", "guessed"}});
  INFO(answer.body);
  CHECK(answer.status == 403);
  for (const auto& [command, args] : evpn_ca_commands) {
    INFO(command);
    CHECK(ejabberd.server.api_as(std::nullopt, command, args).status == 403);
  }
  CHECK(ejabberd.users() == api_accounts);
}

TEST_CASE("the shipped ejabberd config lets only evpn-ca's account call only the commands evpn-ca uses") {
  std::set<std::string> expected;
  for (const auto& command : evpn_ca_commands) expected.insert(command.first);
  CHECK(shipped_grant() == expected);

  RunningEjabberd ejabberd;
  const test::ApiAccount& ca = ejabberd.server.ca_account();
  for (const auto& [command, args] : evpn_ca_commands) {
    INFO(command);
    const auto answer = ejabberd.server.api_as(ca, command, args);
    INFO(answer.body);
    CHECK(answer.status == 200);
  }

  ejabberd.server.register_user("victim");
  REQUIRE(ejabberd.server.api("change_password", {{"user", "victim"}, {"host", domain}, {"newpass", "known"}}).status ==
          200);
  const test::ApiAccount victim{"victim@" + domain, "known"};
  for (const auto& [command, args] : other_commands) {
    INFO(command);
    const auto answer = ejabberd.server.api_as(ca, command, args);
    INFO(answer.body);
    CHECK(answer.status == 403);
  }
  // Any other account, even with its right password, is refused every command.
  for (const auto& [command, args] : evpn_ca_commands) {
    INFO(command);
    CHECK(ejabberd.server.api_as(victim, command, args).status == 403);
  }
  CHECK(ejabberd.server.api_as(test::ApiAccount{ca.jid, "wrong"}, "status").status == 401);
}

TEST_CASE("the ejabberd directory with a wrong password is a configuration error that names what to check") {
  RunningEjabberd ejabberd;
  const std::string wrong = "wrong-" + crypto::to_hex(crypto::random_bytes(8));
  auto config = ejabberd_config(ejabberd.server);
  config.secret_file = (ejabberd.dir.path() / "wrong.secret").string();
  ok(fs::write_file_atomic(config.secret_file, wrong + "\n", std::filesystem::perms::owner_read));
  auto directory = ok(ca::xmpp::make_directory(config, domain));

  for (const auto& [name, result] : {std::pair{"ping", directory->ping()},
                                     std::pair{"ensure_group", directory->ensure_group("overlay1")},
                                     std::pair{"create_user", directory->create_user("node1")}}) {
    INFO(name);
    auto error = error_of(result);
    CHECK(error.code == Errc::internal);
    CHECK_THAT(error.detail, Contains("(HTTP 401)") && Contains("did not accept evpn-ca@evpn.test and its password") &&
                                 Contains("directory.secret_file") && Contains("ejabberdctl register"));
    CHECK_THAT(error.detail, !Contains(wrong));
  }
  CHECK(ejabberd.users() == api_accounts);
}

TEST_CASE("make_directory refuses an ejabberd config without a usable account") {
  ca::DirectoryConfig config;
  config.type = ca::DirectoryType::ejabberd;
  config.url = "http://127.0.0.1:5280/api";
  config.secret_env = "EVPN_TEST_EJABBERD_PASSWORD";
  setenv("EVPN_TEST_EJABBERD_PASSWORD", "s3cret", 1);
  for (const std::string user : {"", "evpn-ca", "@evpn.test", "evpn-ca@", "evpn:ca@evpn.test", "evpn ca@evpn.test"}) {
    config.username = user;
    auto error = error_of(ca::xmpp::make_directory(config, domain));
    CHECK(error.code == Errc::invalid_request);
    CHECK_THAT(error.detail, Contains("directory.username must be the full JID") && Contains("evpn-ca@evpn.test"));
  }

  config.username = "evpn-ca@evpn.test";
  ok(ca::xmpp::make_directory(config, domain));
  config.secret_env.clear();
  auto no_secret = error_of(ca::xmpp::make_directory(config, domain));
  CHECK(no_secret.code == Errc::invalid_request);
  CHECK_THAT(no_secret.detail, Contains("the password of --directory-user (directory.username)") &&
                                   Contains("directory.secret_file or directory.secret_env"));
  unsetenv("EVPN_TEST_EJABBERD_PASSWORD");
}
