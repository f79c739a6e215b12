// The Openfire directory backend and `evpn-ca openfire check|setup` against the in-process
// REST API stand-in; and the stand-in's own fidelity to the plugin's documented quirks.

#include <openssl/pkcs12.h>
#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ca-service/config.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "ca-service/xmpp/openfire.hpp"
#include "ca-service/xmpp/openfire_admin.hpp"
#include "common/net/https_client.hpp"
#include "tests/support/captured_log.hpp"
#include "tests/support/openfire_standin.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

using evpn::test::ok;
using evpn::test::error_of;

namespace {

using namespace evpn;
using Catch::Contains;
using nlohmann::json;
using test::CapturedLog;
using test::OpenfireStandin;

const std::string secret = "s3cr3t-Of-the-restapi";

// A secret file and the CA's directory config pointing at the stand-in.
struct Setup {
  test::TempDir dir{"evpn-openfire"};
  OpenfireStandin standin;

  explicit Setup(OpenfireStandin::Options options = {}) : standin(with_secret(std::move(options))) {}

  static OpenfireStandin::Options with_secret(OpenfireStandin::Options options) {
    options.secret = secret;
    return options;
  }

  ca::DirectoryConfig config(const std::string& file_content = secret + "\n") const {
    const auto file = dir.path() / "restapi.secret";
    std::ofstream(file) << file_content;
    ca::DirectoryConfig c;
    c.type = ca::DirectoryType::openfire;
    c.url = standin.url();
    c.secret_file = file.string();
    c.timeout_ms = 3000;
    return c;
  }

  std::unique_ptr<ca::xmpp::Directory> directory(const ca::DirectoryConfig& c) const {
    auto made = ca::xmpp::make_directory(c, "evpn.test");
    INFO((made ? std::string() : made.error().detail));
    REQUIRE(made.has_value());
    return std::move(*made);
  }
  std::unique_ptr<ca::xmpp::Directory> directory() const { return directory(config()); }

  ca::xmpp::OpenfireApi api() const {
    auto made = ca::xmpp::OpenfireApi::from_config(config());
    REQUIRE(made.has_value());
    return std::move(*made);
  }

  // One raw request to the stand-in, as a client other than our backend would send it.
  net::HttpResponse raw(const std::string& method, const std::string& path, const std::string& body = "",
                        std::vector<std::pair<std::string, std::string>> headers = {}) const {
    net::HttpRequest request;
    request.method = method;
    request.url = *net::parse_url(standin.url() + path);
    request.headers = std::move(headers);
    request.body = body;
    auto response = net::HttpClient(net::ClientTls{}).send(request);
    REQUIRE(response.has_value());
    return std::move(*response);
  }
  net::HttpResponse json_call(const std::string& method, const std::string& path, const std::string& body = "") const {
    std::vector<std::pair<std::string, std::string>> headers{{"Authorization", secret}, {"Accept", "application/json"}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return raw(method, path, body, headers);
  }
};

std::size_t count(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), line));
}

}  // namespace

TEST_CASE("the openfire directory provisions a shared group, a user and a membership, and tells who exists") {
  Setup s;
  auto directory = s.directory();
  ok(directory->ping());
  CHECK_FALSE(ok(directory->user_exists("node1")));
  for (int round = 0; round < 2; ++round) {
    ok(directory->ensure_group("overlay1"));
    auto created = directory->create_user("node1");
    // The second create is a conflict: the caller decides whether the account is its own.
    if (round == 0) ok(created);
    else CHECK(error_of(created).code == Errc::conflict);
    ok(directory->add_member("node1", "overlay1"));
  }
  CHECK(ok(directory->user_exists("node1")));

  CHECK(s.standin.users() == std::set<std::string>{"node1"});
  const auto groups = s.standin.groups();
  REQUIRE(groups.count("overlay1") == 1);
  CHECK(groups.at("overlay1").shared);
  CHECK(groups.at("overlay1").members == std::set<std::string>{"node1"});
  CHECK(groups.at("overlay1").description == "EdgeVPN overlay group");

  const auto log = s.standin.requests();
  // The group is created once (the second round finds it), the user's duplicate is a 409.
  CHECK(count(log, "POST /plugins/restapi/v1/groups -> 201") == 1);
  CHECK(count(log, "GET /plugins/restapi/v1/groups/overlay1 -> 200") == 1);
  CHECK(count(log, "POST /plugins/restapi/v1/users -> 201") == 1);
  CHECK(count(log, "POST /plugins/restapi/v1/users -> 409") == 1);
  CHECK(count(log, "POST /plugins/restapi/v1/users/node1/groups/overlay1 -> 201") == 2);
}

TEST_CASE("a group that lost its shared flag is shared again with its members and admins kept") {
  Setup s;
  s.standin.put_group("overlay1", {"set up by hand", false, {"node1", "node2"}, {"boss"}});
  ok(s.directory()->ensure_group("overlay1"));

  const auto group = s.standin.groups().at("overlay1");
  CHECK(group.shared);
  CHECK(group.members == std::set<std::string>{"node1", "node2"});
  CHECK(group.admins == std::set<std::string>{"boss"});
  CHECK(group.description == "set up by hand");
  CHECK(count(s.standin.requests(), "PUT /plugins/restapi/v1/groups/overlay1 -> 200") == 1);
}

TEST_CASE("disable locks the user out, delete removes it, and both accept a user that is gone") {
  Setup s;
  auto directory = s.directory();
  ok(directory->ensure_group("overlay1"));
  ok(directory->create_user("node1"));
  ok(directory->add_member("node1", "overlay1"));

  ok(directory->disable_user("node1"));
  CHECK(s.standin.lockouts() == std::set<std::string>{"node1"});
  // Creating the user again changes nothing; only lift_lockout lifts it.
  CHECK(error_of(directory->create_user("node1")).code == Errc::conflict);
  CHECK(s.standin.lockouts() == std::set<std::string>{"node1"});
  ok(directory->lift_lockout("node1"));
  CHECK(s.standin.lockouts().empty());
  ok(directory->disable_user("node1"));
  ok(directory->delete_user("node1"));
  CHECK(s.standin.users().empty());
  CHECK(s.standin.groups().at("overlay1").members.empty());
  ok(directory->delete_user("node1"));
  ok(directory->disable_user("node1"));
}

TEST_CASE("path segments are percent-encoded") {
  CHECK(ca::xmpp::encode_segment("node-1_a.b~") == "node-1_a.b~");
  CHECK(ca::xmpp::encode_segment("a b/c%?#") == "a%20b%2Fc%25%3F%23");

  Setup s;
  auto directory = s.directory();
  ok(directory->ensure_group("net 1/x"));
  ok(directory->add_member("node1", "net 1/x"));
  CHECK(s.standin.groups().at("net 1/x").members == std::set<std::string>{"node1"});
}

TEST_CASE("a wrong secret is a configuration error whose message and log never show a secret") {
  Setup s;
  CapturedLog log;
  auto directory = s.directory(s.config("the-wrong-one"));
  for (const auto& result : {directory->ensure_group("overlay1"), directory->create_user("node1"), directory->ping()}) {
    auto error = error_of(result);
    CHECK(error.code == Errc::internal);
    CHECK_THAT(error.detail, Contains("Openfire refused the REST API secret (HTTP 401): check directory.secret_file / "
                                      "plugin.restapi.secret / plugin.restapi.allowedIPs"));
    CHECK_THAT(error.detail, !Contains("the-wrong-one"));
  }
  CHECK_THAT(log.text.str(), Contains("HTTP 401"));
  CHECK_THAT(log.text.str(), !Contains("the-wrong-one"));
  CHECK_THAT(log.text.str(), !Contains(secret));
  CHECK(s.standin.users().empty());
}

TEST_CASE("a disabled plugin is a configuration error and a redirect to the login a retryable one, both saying the fix") {
  Setup s;
  CapturedLog log;
  auto directory = s.directory();
  s.standin.set_property("plugin.restapi.enabled", "false");
  auto disabled = error_of(directory->create_user("node1"));
  CHECK(disabled.code == Errc::internal);
  CHECK_THAT(disabled.detail, Contains("the REST API plugin is disabled (HTTP 403): set plugin.restapi.enabled=true"));
  // Readiness needs no credentials, so ping goes on to an authenticated read to notice.
  CHECK_THAT(error_of(directory->ping()).detail, Contains("HTTP 403"));

  s.standin.set_property("plugin.restapi.enabled", "true");
  s.standin.set_property("adminConsole.access.allow-wildcards-in-excludes", "false");
  // A starting Openfire answers the same redirect until the plugin has loaded, so the node is
  // told to come back (503, token kept) rather than refused.
  auto redirected = error_of(directory->create_user("node1"));
  CHECK(redirected.code == Errc::unavailable);
  CHECK_THAT(redirected.detail, Contains("still starting"));
  CHECK_THAT(redirected.detail, Contains("adminConsole.access.allow-wildcards-in-excludes=true"));
  CHECK_THAT(log.text.str(), !Contains(secret));
}

TEST_CASE("an unreachable Openfire and a 5xx answer are unavailable, with Openfire's answer in the detail") {
  CapturedLog log;
  ca::DirectoryConfig config;
  std::unique_ptr<ca::xmpp::Directory> directory;
  {
    Setup s;
    directory = s.directory();
    // Adding a member to a missing group is the plugin's NullPointerException: HTTP 500.
    auto server_error = error_of(directory->add_member("node1", "missing"));
    CHECK(server_error.code == Errc::unavailable);
    CHECK_THAT(server_error.detail, Contains("with HTTP 500: Request failed."));
    config = s.config();
  }
  // The stand-in is gone: nothing listens on its port any more.
  for (const auto& result : {directory->ensure_group("overlay1"), directory->ping()}) {
    auto error = error_of(result);
    CHECK(error.code == Errc::unavailable);
    CHECK_THAT(error.detail, Contains("Openfire at " + config.url + " is unreachable"));
  }
  CHECK_THAT(log.text.str(), !Contains(secret));
}

TEST_CASE("a URL without the REST API plugin behind it says so") {
  Setup s;
  auto config = s.config();
  config.url = s.standin.url().substr(0, s.standin.url().size() - 3) + "/v2";
  auto error = error_of(s.directory(config)->create_user("node1"));
  CHECK(error.code == Errc::internal);
  CHECK_THAT(error.detail, Contains("install the REST API plugin and check that directory.url ends in "
                                    "/plugins/restapi/v1"));
}

TEST_CASE("basic authentication uses an Openfire admin account") {
  OpenfireStandin::Options options;
  options.http_auth = "basic";
  Setup s(options);
  auto config = s.config(options.admin_password);
  config.auth = ca::DirectoryAuth::basic;
  config.username = options.admin_user;
  ok(s.directory(config)->create_user("node1"));
  CHECK(s.standin.users() == std::set<std::string>{"node1"});

  auto wrong = s.config("not-the-password");
  wrong.auth = ca::DirectoryAuth::basic;
  wrong.username = options.admin_user;
  auto error = error_of(s.directory(wrong)->create_user("node2"));
  CHECK(error.code == Errc::internal);
  CHECK_THAT(error.detail, Contains("refused the admin credentials (HTTP 401)"));
  CHECK_THAT(error.detail, !Contains("not-the-password"));

  // A shared secret is refused while the plugin expects basic authentication.
  CHECK(error_of(s.directory(s.config(secret))->create_user("node2")).code == Errc::internal);
}

TEST_CASE("the secret comes from a file or an environment variable and never from the config file") {
  Setup s;
  auto config = s.config();
  config.secret_file.clear();
  config.secret_env = "EVPN_TEST_OPENFIRE_SECRET";
  ::setenv("EVPN_TEST_OPENFIRE_SECRET", secret.c_str(), 1);
  ok(s.directory(config)->create_user("node1"));

  ::unsetenv("EVPN_TEST_OPENFIRE_SECRET");
  auto unset = ca::xmpp::make_directory(config, "evpn.test");
  REQUIRE_FALSE(unset.has_value());
  CHECK(unset.error().code == Errc::invalid_request);
  CHECK_THAT(unset.error().detail, Contains("EVPN_TEST_OPENFIRE_SECRET"));

  for (auto [mutate, expected] : std::initializer_list<std::pair<void (*)(ca::DirectoryConfig&), const char*>>{
           {[](ca::DirectoryConfig& c) { c.secret_env.clear(); }, "set directory.secret_file or directory.secret_env"},
           {[](ca::DirectoryConfig& c) { c.secret_file = "/nonexistent/secret"; }, "only one of"},
           {[](ca::DirectoryConfig& c) { c.auth = ca::DirectoryAuth::basic; }, "directory.username"}}) {
    auto changed = config;
    mutate(changed);
    auto made = ca::xmpp::make_directory(changed, "evpn.test");
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error().code == Errc::invalid_request);
    CHECK_THAT(made.error().detail, Contains(expected));
  }
  auto empty = s.config("  \n");
  auto made = ca::xmpp::make_directory(empty, "evpn.test");
  REQUIRE_FALSE(made.has_value());
  CHECK_THAT(made.error().detail, Contains("is empty"));
}

TEST_CASE("the stand-in reproduces the REST API plugin's documented quirks") {
  Setup s;
  const std::string group = R"({"name":"g1","description":"d","shared":true,"members":[],"admins":[]})";

  SECTION("a group created without members and admins is a 500, even as a duplicate") {
    CHECK(s.json_call("POST", "/groups", R"({"name":"g1","shared":true})").status == 500);
    CHECK(s.json_call("POST", "/groups", group).status == 201);
    CHECK(s.json_call("POST", "/groups", group).status == 409);
    auto duplicate = s.json_call("POST", "/groups", R"({"name":"g1","shared":true,"members":[]})");
    CHECK(duplicate.status == 500);
    CHECK_THAT(duplicate.body, Contains("\"servlet\":\"PluginServlet\""));
  }
  SECTION("creates answer 201 with an empty body, duplicates 409 with an error entity") {
    auto created = s.json_call("POST", "/users", R"({"username":"Alice","password":"p"})");
    CHECK(created.status == 201);
    CHECK(created.body.empty());
    auto duplicate = s.json_call("POST", "/users", R"({"username":"alice","password":"p"})");
    CHECK(duplicate.status == 409);
    CHECK(json::parse(duplicate.body)["exception"] == "UserAlreadyExistsException");
    // Created lower-case, looked up as given.
    CHECK(s.json_call("GET", "/users/alice").status == 200);
    auto missing = s.json_call("GET", "/users/Alice");
    CHECK(missing.status == 404);
    CHECK(json::parse(missing.body) ==
          json{{"exception", "UserNotFoundException"}, {"message", "Could not get user"}, {"resource", "Alice"}});
    CHECK(s.json_call("POST", "/users", R"({"username":"bob","password":""})").status == 500);
    CHECK(s.json_call("POST", "/users", R"({"username":"bob"})").status == 400);
    CHECK(s.json_call("POST", "/users", R"({"username":"bob","password":"p","isadmin":true})").status == 400);
  }
  SECTION("membership: 500 for a missing group, 201 again for an existing one, no user check") {
    CHECK(s.json_call("POST", "/users/ghost/groups/g1").status == 500);
    CHECK(s.standin.groups().empty());
    REQUIRE(s.json_call("POST", "/groups", group).status == 201);
    CHECK(s.json_call("POST", "/users/ghost/groups/g1").status == 201);
    CHECK(s.json_call("POST", "/users/ghost/groups/g1").status == 201);
    auto got = json::parse(s.json_call("GET", "/groups/g1").body);
    CHECK(got["members"] == json{"ghost@evpn.test"});
    CHECK(got["shared"] == true);
    // The list never shows the shared flag.
    CHECK(json::parse(s.json_call("GET", "/groups").body)["groups"][0]["shared"] == false);
  }
  SECTION("an update replaces the member list") {
    REQUIRE(s.json_call("POST", "/groups", R"({"name":"g1","members":["a","b@evpn.test"],"admins":[]})").status == 201);
    CHECK(s.standin.groups().at("g1").members == std::set<std::string>{"a", "b"});
    CHECK(s.json_call("PUT", "/groups/g1", R"({"name":"g1","shared":true,"members":["c"],"admins":[]})").status == 200);
    CHECK(s.standin.groups().at("g1").members == std::set<std::string>{"c"});
    CHECK(s.json_call("PUT", "/groups/g1", R"({"name":"g2","members":[],"admins":[]})").status == 400);
    CHECK(s.json_call("PUT", "/groups/g9", R"({"name":"g9","members":[],"admins":[]})").status == 404);
  }
  SECTION("XML unless JSON is asked for; bodies must be JSON") {
    auto xml = s.raw("GET", "/groups/none", "", {{"Authorization", secret}});
    CHECK(xml.status == 404);
    CHECK(xml.content_type == "application/xml");
    CHECK_THAT(xml.body, Contains("<exception>GroupNotFoundException</exception>"));
    auto untyped = s.raw("POST", "/groups", group, {{"Authorization", secret}, {"Accept", "application/json"}});
    CHECK(untyped.status == 415);
    CHECK(s.standin.groups().empty());
  }
  SECTION("401 without the secret, 403 while disabled, readiness always") {
    CHECK(s.raw("GET", "/users").status == 401);
    CHECK(s.raw("GET", "/users", "", {{"Authorization", "nope"}}).status == 401);
    s.standin.set_property("plugin.restapi.enabled", "false");
    CHECK(s.json_call("GET", "/users").status == 403);
    CHECK(s.raw("GET", "/system/readiness").status == 200);
  }
  SECTION("system properties: GET and PUT 404 while unset, POST creates") {
    auto unset = s.json_call("GET", "/system/properties/sasl.mechs");
    CHECK(unset.status == 404);
    CHECK(json::parse(unset.body)["exception"] == "PropertyNotFoundException");
    CHECK(s.json_call("PUT", "/system/properties/sasl.mechs", R"({"key":"sasl.mechs","value":"EXTERNAL"})").status ==
          404);
    CHECK(s.json_call("POST", "/system/properties", R"({"key":"sasl.mechs","value":"PLAIN"})").status == 201);
    CHECK(s.json_call("PUT", "/system/properties/sasl.mechs", R"({"key":"sasl.mechs","value":"EXTERNAL"})").status ==
          200);
    CHECK(json::parse(s.json_call("GET", "/system/properties/sasl.mechs").body)["value"] == "EXTERNAL");
  }
  SECTION("lockouts need the user") {
    CHECK(s.json_call("POST", "/lockouts/ghost").status == 404);
    REQUIRE(s.json_call("POST", "/users", R"({"username":"bob","password":"p"})").status == 201);
    CHECK(s.json_call("POST", "/lockouts/bob").status == 201);
    CHECK(s.standin.lockouts() == std::set<std::string>{"bob"});
    CHECK(s.json_call("DELETE", "/lockouts/bob").status == 200);
    CHECK(s.standin.lockouts().empty());
  }
}

TEST_CASE("openfire check reports the default settings as WRONG, setup fixes them, check then passes") {
  Setup s;
  auto api = s.api();
  std::ostringstream before;
  CHECK_FALSE(ca::xmpp::check_openfire(api, before));
  INFO(before.str());
  CHECK_THAT(before.str(), Contains("OK     REST API plugin: enabled"));
  CHECK_THAT(before.str(), Contains("WRONG  xmpp.client.cert.policy = (unset): Openfire does not ask"));
  CHECK_THAT(before.str(), Contains("OK     sasl.mechs = (unset): the default list includes EXTERNAL"));
  CHECK_THAT(before.str(), Contains("result: WRONG"));
  // Openfire 5.1's default (the SAN mapper alone) finds no identity in our certificates on Java 17.
  CHECK_THAT(before.str(), Contains("WRONG  provider.clientCertIdentityMap.classList = (unset)"));

  const std::string fingerprint(64, 'a');
  std::ostringstream setup;
  ok(ca::xmpp::setup_openfire(api, {"/srv/ca dir/ca.crt", fingerprint, "/opt/openfire"}, setup));
  INFO(setup.str());
  const auto properties = s.standin.properties();
  CHECK(properties.at("xmpp.client.cert.policy") == "needed");
  CHECK(properties.at("provider.clientCertIdentityMap.classList") ==
        "org.jivesoftware.util.cert.SANCertificateIdentityMapping,"
        "org.jivesoftware.util.cert.CNCertificateIdentityMapping");
  CHECK(properties.count("sasl.mechs") == 0);  // left alone: the default includes EXTERNAL
  CHECK_THAT(setup.str(), Contains("keytool -importcert -noprompt -trustcacerts -alias evpn-enroll-aaaaaaaaaaaaaaaa "
                                   "-file '/srv/ca dir/ca.crt' -keystore "
                                   "/opt/openfire/resources/security/client.truststore -storepass changeit"));
  CHECK_THAT(setup.str(), Contains("systemctl restart openfire"));

  std::ostringstream after;
  CHECK(ca::xmpp::check_openfire(api, after));
  CHECK_THAT(after.str(), Contains("result: OK"));
}

TEST_CASE("openfire setup repairs wrong values and keeps acceptable ones") {
  Setup s;
  s.standin.set_property("xmpp.client.cert.policy", "wanted");
  s.standin.set_property("sasl.mechs", "PLAIN SCRAM-SHA-1");
  s.standin.set_property("provider.clientCertIdentityMap.classList",
                         "org.jivesoftware.util.cert.SANCertificateIdentityMapping");
  s.standin.set_property("xmpp.auth.autoadd", "true");
  s.standin.set_property("xmpp.socket.ssl.client.truststore", "/etc/openfire/security/client.truststore");
  auto api = s.api();

  std::ostringstream before;
  CHECK_FALSE(ca::xmpp::check_openfire(api, before));
  CHECK_THAT(before.str(), Contains("OK     xmpp.client.cert.policy = wanted"));
  CHECK_THAT(before.str(), Contains("WRONG  sasl.mechs = PLAIN SCRAM-SHA-1: EXTERNAL is missing"));
  CHECK_THAT(before.str(), Contains("WRONG  provider.clientCertIdentityMap.classList"));
  CHECK_THAT(before.str(), Contains("WRONG  xmpp.auth.autoadd = true"));

  std::ostringstream setup;
  ok(ca::xmpp::setup_openfire(api, {"/srv/ca/ca.crt", std::string(64, 'b'), "/usr/share/openfire"}, setup));
  const auto properties = s.standin.properties();
  CHECK(properties.at("xmpp.client.cert.policy") == "wanted");
  CHECK(properties.at("sasl.mechs") == "PLAIN SCRAM-SHA-1,EXTERNAL");
  CHECK(properties.at("xmpp.auth.autoadd") == "false");
  CHECK(properties.at("provider.clientCertIdentityMap.classList") ==
        "org.jivesoftware.util.cert.SANCertificateIdentityMapping,"
        "org.jivesoftware.util.cert.CNCertificateIdentityMapping");
  CHECK_THAT(setup.str(), Contains("-keystore /etc/openfire/security/client.truststore"));

  std::ostringstream after;
  CHECK(ca::xmpp::check_openfire(api, after));
}

TEST_CASE("openfire check accepts every mapper list that holds the CN mapper, which reads our CN on every Java") {
  for (const std::string list : {"org.jivesoftware.util.cert.CNCertificateIdentityMapping",
                                 "org.jivesoftware.util.cert.SANCertificateIdentityMapping "
                                 "org.jivesoftware.util.cert.CNCertificateIdentityMapping"}) {
    Setup s;
    s.standin.set_property("provider.clientCertIdentityMap.classList", list);
    std::ostringstream out;
    ca::xmpp::check_openfire(s.api(), out);
    INFO(out.str());
    CHECK_THAT(out.str(), Contains("OK     provider.clientCertIdentityMap.classList = " + list));
  }
}

TEST_CASE("openfire check fails clearly when the REST API refuses us") {
  Setup s;
  s.standin.set_property("plugin.restapi.enabled", "false");
  std::ostringstream out;
  CHECK_FALSE(ca::xmpp::check_openfire(s.api(), out));
  CHECK_THAT(out.str(), Contains("OK     readiness"));
  CHECK_THAT(out.str(), Contains("WRONG  REST API plugin: the REST API plugin is disabled (HTTP 403): set "
                                 "plugin.restapi.enabled=true (REST API at " +
                                 s.standin.url() + ")"));
}

TEST_CASE("the PKCS#12 keystore holds the server key, its certificate and the root under the alias") {
  test::TestPki pki;
  auto server = pki.server({"xmpp.example.org"});
  auto der = ca::xmpp::make_pkcs12(server.key, server.cert, pki.signer().root(), "xmpp.example.org", "changeit");
  REQUIRE(der.has_value());

  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  crypto::Handle<PKCS12, PKCS12_free> p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der->size())));
  REQUIRE(p12);
  CHECK(PKCS12_verify_mac(p12.get(), "changeit", -1) == 1);
  CHECK(PKCS12_verify_mac(p12.get(), "wrong", -1) == 0);
  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_ca = nullptr;
  REQUIRE(PKCS12_parse(p12.get(), "changeit", &raw_key, &raw_cert, &raw_ca) == 1);
  crypto::PKey key(raw_key);
  crypto::X509Ptr cert(raw_cert);
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> ca(
      raw_ca, [](STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); });
  CHECK(X509_cmp(cert.get(), server.cert.get()) == 0);
  CHECK(EVP_PKEY_eq(key.get(), server.key.get()) == 1);
  REQUIRE(sk_X509_num(ca.get()) == 1);
  CHECK(X509_cmp(sk_X509_value(ca.get(), 0), pki.signer().root().get()) == 0);
  int length = 0;
  const unsigned char* alias = X509_alias_get0(cert.get(), &length);
  REQUIRE(alias);
  CHECK(std::string(reinterpret_cast<const char*>(alias), static_cast<std::size_t>(length)) == "xmpp.example.org");

  const auto commands = ca::xmpp::keystore_commands("/tmp/xmpp.p12", "xmpp.example.org", "changeit");
  CHECK_THAT(commands, Contains("keytool -importkeystore -noprompt -srckeystore /tmp/xmpp.p12 -srcstoretype PKCS12 "
                                "-srcstorepass changeit -srcalias xmpp.example.org -destkeystore "
                                "/usr/share/openfire/resources/security/keystore"));
}
