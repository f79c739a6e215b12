#include "ca-service/config.hpp"

#include "tests/support/catch_result.hpp"
#include "tests/support/process.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace evpn;
using Catch::Contains;
using evpn::test::error_of;
using evpn::test::ok;

namespace {

// A valid config: the ejabberd directory with its API account and password file.
ca::CaConfig valid_config() {
  ca::CaConfig c;
  c.xmpp = {"evpn.test", "evpn.test", 5222};
  c.directory.url = "http://127.0.0.1:5280/api";
  c.directory.username = "evpn-ca@evpn.test";
  c.directory.secret_file = "/etc/evpn-ca/ejabberd.secret";
  return c;
}

// Writes `config` as config.json, then replaces `key` of section `section` with `value` in the text.
std::filesystem::path written(const test::TempDir& dir, const ca::CaConfig& config, const std::string& from = "",
                              const std::string& to = "") {
  const auto file = dir.path() / "config.json";
  ok(ca::save_config(file, config));
  if (from.empty()) return file;
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text.find(from) != std::string::npos);
  text.replace(text.find(from), from.size(), to);
  std::ofstream(file) << text;
  return file;
}

}  // namespace

TEST_CASE("each closed set of config.json reads back what it writes, and nothing else") {
  for (auto type : {ca::DirectoryType::ejabberd, ca::DirectoryType::openfire, ca::DirectoryType::none})
    CHECK(ca::parse_directory_type(ca::to_string(type)) == type);
  for (auto auth : {ca::DirectoryAuth::secret, ca::DirectoryAuth::basic})
    CHECK(ca::parse_directory_auth(ca::to_string(auth)) == auth);
  CHECK_FALSE(ca::parse_directory_type("prosody"));
  CHECK_FALSE(ca::parse_directory_type("Ejabberd"));
  CHECK_FALSE(ca::parse_directory_auth("token"));
}

TEST_CASE("load_config reads back a config that save_config wrote") {
  test::TempDir dir{"evpn-config"};
  auto config = valid_config();
  config.directory.type = ca::DirectoryType::openfire;
  config.directory.auth = ca::DirectoryAuth::basic;
  config.directory.username = "admin";
  const auto loaded = ok(ca::load_config(written(dir, config)));
  CHECK(loaded.directory.type == ca::DirectoryType::openfire);
  CHECK(loaded.directory.auth == ca::DirectoryAuth::basic);
  CHECK(loaded.directory.username == "admin");
  CHECK(loaded.xmpp.domain == "evpn.test");
}

TEST_CASE("load_config refuses an unknown directory type or auth, naming the key and the choices") {
  test::TempDir dir{"evpn-config"};
  const auto type = error_of(ca::load_config(written(dir, valid_config(), "\"ejabberd\"", "\"prosody\"")));
  CHECK(type.code == Errc::invalid_request);
  CHECK_THAT(type.detail, Contains("directory.type must be ejabberd, openfire or none") && Contains("'prosody'"));
  const auto auth = error_of(ca::load_config(written(dir, valid_config(), "\"secret\"", "\"token\"")));
  CHECK_THAT(auth.detail, Contains("directory.auth must be secret or basic") && Contains("'token'"));
}

TEST_CASE("load_config applies the rules init applies, so a hand-edited config cannot skip them") {
  test::TempDir dir{"evpn-config"};
  auto no_user = valid_config();
  no_user.directory.username = "evpn-ca";
  // What init refuses, validate_config refuses, and load_config with it (naming the file).
  CHECK_THAT(error_of(ca::validate_config(no_user)).detail, Contains("full JID"));
  const auto loaded = error_of(ca::load_config(written(dir, no_user)));
  CHECK_THAT(loaded.detail, Contains("config.json") && Contains("directory.username must be the full JID"));

  auto both_secrets = valid_config();
  both_secrets.directory.secret_env = "EJABBERD_PASSWORD";
  CHECK_THAT(error_of(ca::load_config(written(dir, both_secrets))).detail, Contains("only one of"));

  auto bad_listen = valid_config();
  bad_listen.listen = "8443";
  CHECK_THAT(error_of(ca::load_config(written(dir, bad_listen))).detail, Contains("listen (--listen) must be HOST:PORT"));

  auto bad_key = valid_config();
  bad_key.key_type = "dsa";
  CHECK_THAT(error_of(ca::load_config(written(dir, bad_key))).detail, Contains("key_type"));

  auto none = valid_config();
  none.directory = {};
  none.directory.type = ca::DirectoryType::none;
  ok(ca::load_config(written(dir, none)));
}
