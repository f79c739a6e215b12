#include "ca-service/enrollment/tokens.hpp"

#include "tests/support/catch_result.hpp"

#include <catch2/catch.hpp>


using namespace evpn;
using namespace evpn::ca::enrollment;

namespace {

const TimePoint kNow = from_unix(1'800'000'000);
const std::string kRefused =
    "the enrollment token is unknown, expired or used up; ask the operator for a new one";

TokenParts parse(const std::string& text) {
  auto parts = parse_token(text);
  REQUIRE(parts);
  return *parts;
}

Error refusal(const Result<void>& r) {
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("a new token parses back into its id and a secret that matches the stored hash") {
  NewToken token = make_token("lab", std::nullopt, std::chrono::hours(24), 3, kNow);
  CHECK(token.text.size() == 6 + 16 + 1 + 64);
  CHECK(token.text.starts_with("evpn1_"));
  CHECK(token.record.id.size() == 16);
  CHECK(token.record.secret_hash.size() == 64);
  CHECK(token.record.group == "lab");
  CHECK_FALSE(token.record.username.has_value());
  CHECK(token.record.expires_at == kNow + std::chrono::hours(24));
  CHECK(token.record.created_at == kNow);
  CHECK(token.record.uses_left == 3);

  TokenParts parts = parse(token.text);
  CHECK(parts.id == token.record.id);
  CHECK(token.text == "evpn1_" + parts.id + "_" + parts.secret);
  CHECK(check_token(token.record, parts, "node1", kNow));
}

TEST_CASE("a token's record never contains its secret") {
  NewToken token = make_token("lab", std::string("node1"), std::chrono::hours(1), 1, kNow);
  const std::string secret = parse(token.text).secret;
  const auto& r = token.record;
  for (const std::string* field : {&r.id, &r.secret_hash, &r.group, &*r.username})
    CHECK(field->find(secret) == std::string::npos);
  CHECK(r.secret_hash != secret);
}

TEST_CASE("two new tokens differ in id and secret") {
  NewToken a = make_token("lab", std::nullopt, std::chrono::hours(1), 1, kNow);
  NewToken b = make_token("lab", std::nullopt, std::chrono::hours(1), 1, kNow);
  CHECK(a.record.id != b.record.id);
  CHECK(parse(a.text).secret != parse(b.text).secret);
}

TEST_CASE("parse_token refuses malformed tokens without repeating them") {
  const std::string id(16, 'a');
  const std::string secret(64, 'b');
  const std::string good = "evpn1_" + id + "_" + secret;
  REQUIRE(parse_token(good));
  const std::string upper_secret = "evpn1_" + id + "_" + std::string(63, 'b') + "B";
  const std::string bad[] = {
      "",
      "evpn2_" + id + "_" + secret,
      "EVPN1_" + id + "_" + secret,
      "evpn1_" + id + "_" + secret.substr(1),
      "evpn1_" + id.substr(1) + "_" + secret + "0",
      "evpn1_" + std::string(15, 'a') + "A_" + secret,
      upper_secret,
      "evpn1_" + id + "-" + secret,
      good + "_extra",
      "evpn1_" + id + "_" + secret.substr(0, 32) + "_" + secret.substr(33),
      "evpn1_" + id + "_" + std::string(63, 'b') + "g",
      " " + good.substr(1),
  };
  for (const std::string& text : bad) {
    INFO("token: '" << text << "'");
    auto r = parse_token(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::unauthorized);
    CHECK(r.error().detail == "the enrollment token is malformed: expected evpn1_<16 hex>_<64 hex>");
  }
}

TEST_CASE("check_token refuses a wrong secret, an expired token and a used-up token with one message") {
  NewToken token = make_token("lab", std::nullopt, std::chrono::hours(1), 1, kNow);
  TokenParts parts = parse(token.text);

  TokenParts wrong = parts;
  wrong.secret[0] = wrong.secret[0] == '0' ? '1' : '0';
  ca::store::TokenRecord used_up = token.record;
  used_up.uses_left = 0;

  const Error errors[] = {
      refusal(check_token(token.record, wrong, "node1", kNow)),
      refusal(check_token(token.record, parts, "node1", token.record.expires_at)),
      refusal(check_token(token.record, parts, "node1", token.record.expires_at + std::chrono::days(1))),
      refusal(check_token(used_up, parts, "node1", kNow)),
  };
  for (const Error& e : errors) {
    CHECK(e.code == Errc::unauthorized);
    CHECK(e.detail == kRefused);
  }
  CHECK(check_token(token.record, parts, "node1", token.record.expires_at - std::chrono::seconds(1)));
}

TEST_CASE("check_token refuses a token pinned to another username") {
  NewToken token = make_token("lab", std::string("node1"), std::chrono::hours(1), 1, kNow);
  TokenParts parts = parse(token.text);
  CHECK(check_token(token.record, parts, "node1", kNow));
  Error e = refusal(check_token(token.record, parts, "node2", kNow));
  CHECK(e.code == Errc::forbidden);
  CHECK(e.detail == "this token is for username 'node1', not 'node2'");
}

TEST_CASE("check_token does not reveal the pinned username to a wrong secret") {
  NewToken token = make_token("lab", std::string("node1"), std::chrono::hours(1), 1, kNow);
  TokenParts wrong = parse(token.text);
  wrong.secret[0] = wrong.secret[0] == '0' ? '1' : '0';
  Error e = refusal(check_token(token.record, wrong, "node2", kNow));
  CHECK(e.code == Errc::unauthorized);
  CHECK(e.detail == kRefused);
}

TEST_CASE("an unpinned token accepts any valid username") {
  NewToken token = make_token("lab", std::nullopt, std::chrono::hours(1), 5, kNow);
  TokenParts parts = parse(token.text);
  for (const char* name : {"node1", "gateway-7", "a"}) CHECK(check_token(token.record, parts, name, kNow));
}

TEST_CASE("check_username accepts lower-case names of letters, digits, dots, underscores and dashes") {
  for (const std::string& name :
       {std::string("node-1.a_b"), std::string("a"), std::string("0node"), std::string(64, 'x')}) {
    INFO(name);
    CHECK(check_username(name));
  }
}

TEST_CASE("check_username refuses bad names and says what is wrong") {
  struct Case {
    std::string name;
    std::string says;
  };
  const Case cases[] = {
      {"Node1", "usernames are lower case: use 'node1' instead of 'Node1'"},
      {"", "the username is empty"},
      {std::string(65, 'x'), "65 characters long"},
      {"a/b", "contains '/'"},
      {"a b", "contains byte 0x20"},
      {"a\nb", "contains byte 0x0a"},
      {"node@lab", "contains '@'"},
      {"a..b", "must not contain '..'"},
      {"-node", "must start with a letter or a digit"},
      {".node", "must start with a letter or a digit"},
  };
  for (const Case& c : cases) {
    INFO("username: '" << c.name << "'");
    auto r = check_username(c.name);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_request);
    CHECK_THAT(r.error().detail, Catch::Contains(c.says));
  }
}

TEST_CASE("token_state names a token active only while it is unrevoked, unexpired and has uses left") {
  auto token = make_token("lab", std::nullopt, std::chrono::hours(1), 1, kNow).record;
  CHECK(token_state(token, kNow) == TokenState::active);
  CHECK(token_state(token, kNow + std::chrono::hours(1)) == TokenState::expired);
  token.uses_left = 0;
  CHECK(token_state(token, kNow) == TokenState::used_up);
  CHECK(to_string(TokenState::used_up) == "used up");
  token.revoked_at = kNow;
  CHECK(token_state(token, kNow) == TokenState::revoked);
}
