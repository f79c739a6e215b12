#include "ca-service/config.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/fs/atomic_file.hpp"
#include "common/net/https_client.hpp"
#include "tests/support/ejabberd_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using evpn::test::ok;
using evpn::test::error_of;

namespace {

using namespace evpn;
using nlohmann::json;
using Catch::Contains;

const std::string domain = "evpn.test";

ca::DirectoryConfig ejabberd_config(const std::string& url) {
  ca::DirectoryConfig config;
  config.type = "ejabberd";
  config.url = url;
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

  // Calls the API directly, to see what the directory did.
  json api(const std::string& command, const json& args) const {
    net::HttpRequest request;
    request.method = "POST";
    request.url = net::join(ok(net::parse_url(server.api_url())), command);
    request.headers = {{"Content-Type", "application/json"}};
    request.body = args.dump();
    auto response = ok(net::HttpClient(net::ClientTls{}).send(request));
    INFO(command << " answered " << response.body);
    REQUIRE(response.status == 200);
    return json::parse(response.body);
  }
};

}  // namespace

TEST_CASE("the ejabberd directory provisions a group, a user and a membership, and tells who exists") {
  RunningEjabberd ejabberd;
  auto directory = ok(ca::xmpp::make_directory(ejabberd_config(ejabberd.server.api_url()), domain));

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
  CHECK(ejabberd.api("registered_users", {{"host", domain}}) == json{"node1"});
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
  CHECK(ejabberd.api("registered_users", {{"host", domain}}) == json::array());
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
  auto directory = ok(ca::xmpp::make_directory(ejabberd_config(url.substr(0, url.size() - 4) + "/wrong"), domain));

  auto error = error_of(directory->ensure_group("overlay1"));
  CHECK(error.code == Errc::internal);
  CHECK_THAT(error.detail, Contains("ejabberd refused srg_create (HTTP 404)"));
  CHECK_THAT(error.detail, Contains("api_permissions"));
}

TEST_CASE("make_directory refuses unknown types and unusable URLs") {
  auto config = ejabberd_config("ftp://127.0.0.1/api");
  auto bad_url = error_of(ca::xmpp::make_directory(config, domain));
  CHECK(bad_url.code == Errc::invalid_request);
  CHECK_THAT(bad_url.detail, Contains("directory.url"));

  config.url = "http://127.0.0.1:5280/api";
  config.type = "openfire";
  auto openfire = error_of(ca::xmpp::make_directory(config, domain));
  CHECK(openfire.code == Errc::invalid_request);
  CHECK_THAT(openfire.detail, Contains("directory.secret_file or directory.secret_env"));

  config.type = "prosody";
  auto unknown = error_of(ca::xmpp::make_directory(config, domain));
  CHECK(unknown.code == Errc::invalid_request);
  CHECK_THAT(unknown.detail, Contains("'prosody'"));
}

TEST_CASE("the none directory accepts every call without a server") {
  ca::DirectoryConfig config;
  config.type = "none";
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
  net::HttpRequest request{"POST", net::join(ok(net::parse_url(ejabberd.server.api_url())), "register"),
                           {{"Content-Type", "application/json"}},
                           json{{"user", "intruder"}, {"host", domain}, {"password", "guessed"}}.dump()};
  auto answer = ok(net::HttpClient(net::ClientTls{}).send(request));
  INFO(answer.body);
  CHECK(answer.status == 403);
}
