#pragma once
// Enrollment tokens: format, hashing and the rules a token must pass. No SQL, no HTTP.
// Text form: "evpn1_<id>_<secret>", id = 16 hex chars (public, logged), secret = 64 hex chars
// (256 random bits, never stored: the store keeps SHA-256 of it).

#include "ca-service/store/records.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace evpn::ca::enrollment {

struct NewToken {
  std::string text;  // shown once to the operator
  store::TokenRecord record;
};

NewToken make_token(const std::string& group, std::optional<std::string> username,
                    std::chrono::seconds ttl, int uses, TimePoint now);

struct TokenParts {
  std::string id;
  std::string secret;
};

// Errc::unauthorized when the text is not a token of the form above.
Result<TokenParts> parse_token(std::string_view text);

// True when the presented secret is the record's (constant-time), whatever the token's state.
bool secret_matches(const store::TokenRecord& record, const TokenParts& presented);

// Checks a presented token against its record for issuing `username` at `now`:
// Errc::unauthorized (wrong secret, expired, used up: deliberately the same message),
// Errc::forbidden when the token is pinned to another username.
Result<void> check_token(const store::TokenRecord& record, const TokenParts& presented,
                         const std::string& username, TimePoint now);

// Where a token stands at `now`, for `token list` and the metrics; only an active one can enroll.
enum class TokenState { active, used_up, expired, revoked };
std::string_view to_string(TokenState state);
TokenState token_state(const store::TokenRecord& record, TimePoint now);

// Errc::forbidden when `username` is one of `reserved` (config.json reserved_usernames).
Result<void> check_not_reserved(std::string_view username, const std::vector<std::string>& reserved);

// Usernames: 1-64 chars of [a-z0-9._-], starting with a letter or digit, no "..".
Result<void> check_username(std::string_view username);

}  // namespace evpn::ca::enrollment
