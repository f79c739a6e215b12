#include "ca-service/enrollment/tokens.hpp"

#include "common/crypto/certificate.hpp"
#include "common/protocol/enrollment.hpp"

#include <algorithm>
#include <cstdio>

namespace evpn::ca::enrollment {
namespace {

constexpr std::string_view kPrefix = "evpn1_";
constexpr std::size_t kIdChars = 16;
constexpr std::size_t kSecretChars = 64;
constexpr std::size_t kMaxUsername = 64;

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

std::string secret_hash(std::string_view secret) { return crypto::to_hex(crypto::sha256(secret)); }

}  // namespace

NewToken make_token(const std::string& group, std::optional<std::string> username, std::chrono::seconds ttl,
                    int uses, TimePoint now) {
  std::string id = crypto::to_hex(crypto::random_bytes(kIdChars / 2));
  const std::string secret = crypto::to_hex(crypto::random_bytes(kSecretChars / 2));
  std::string text = std::string(kPrefix) + id + "_" + secret;
  return NewToken{std::move(text), store::TokenRecord{std::move(id), secret_hash(secret), group,
                                                      std::move(username), now + ttl, uses, now}};
}

Result<TokenParts> parse_token(std::string_view text) {
  // The message never repeats the text: it may be a real token with a typo.
  const auto malformed = [] {
    return fail(Errc::unauthorized, "the enrollment token is malformed: expected evpn1_<16 hex>_<64 hex>");
  };
  if (text.size() != kPrefix.size() + kIdChars + 1 + kSecretChars || !text.starts_with(kPrefix))
    return malformed();
  const std::string_view id = text.substr(kPrefix.size(), kIdChars);
  const std::string_view secret = text.substr(kPrefix.size() + kIdChars + 1);
  if (text[kPrefix.size() + kIdChars] != '_' || !is_lower_hex(id) || !is_lower_hex(secret))
    return malformed();
  return TokenParts{std::string(id), std::string(secret)};
}

bool secret_matches(const store::TokenRecord& record, const TokenParts& presented) {
  // Constant-time, so timing does not tell how much of a guess was right.
  const std::string presented_hash = secret_hash(presented.secret);
  return presented.id == record.id && presented_hash.size() == record.secret_hash.size() &&
         crypto::equal_constant_time(presented_hash, record.secret_hash);
}

Result<void> check_token(const store::TokenRecord& record, const TokenParts& presented,
                         const std::string& username, TimePoint now) {
  // One message for every way a token can be refused, so a caller learns nothing about which
  // tokens exist.
  if (!secret_matches(record, presented) || now >= record.expires_at || record.uses_left <= 0)
    return fail(Errc::unauthorized, protocol::token_refused);
  if (record.username && *record.username != username)
    return fail(Errc::forbidden,
                "this token is for username '" + *record.username + "', not '" + username + "'");
  return {};
}

Result<void> check_username(std::string_view username) {
  const std::string allowed = "use 1 to 64 characters of a-z, 0-9, '.', '_' and '-'";
  if (username.empty()) return fail(Errc::invalid_request, "the username is empty: " + allowed);
  if (username.size() > kMaxUsername)
    return fail(Errc::invalid_request,
                "the username is " + std::to_string(username.size()) + " characters long: " + allowed);
  for (char c : username) {
    if (is_lower_alnum(c) || is_upper(c) || c == '.' || c == '_' || c == '-') continue;
    // Show the offending character, but as a byte code when it is not printable (no control
    // characters in messages that end up in logs).
    char shown[16];
    if (c > ' ' && c < 0x7f)
      std::snprintf(shown, sizeof shown, "'%c'", c);
    else
      std::snprintf(shown, sizeof shown, "byte 0x%02x", static_cast<unsigned char>(c));
    return fail(Errc::invalid_request, std::string("the username contains ") + shown + ": " + allowed);
  }
  const std::string name(username);
  if (!is_lower_alnum(name.front()) && !is_upper(name.front()))
    return fail(Errc::invalid_request, "the username '" + name + "' must start with a letter or a digit");
  if (name.find("..") != std::string::npos)
    return fail(Errc::invalid_request, "the username '" + name + "' must not contain '..'");
  if (std::any_of(name.begin(), name.end(), is_upper)) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return is_upper(c) ? char(c - 'A' + 'a') : c; });
    return fail(Errc::invalid_request,
                "usernames are lower case: use '" + lower + "' instead of '" + name + "'");
  }
  return {};
}

std::string_view to_string(TokenState state) {
  switch (state) {
    case TokenState::active: return "active";
    case TokenState::used_up: return "used up";
    case TokenState::expired: return "expired";
    case TokenState::revoked: return "revoked";
  }
  return "?";
}

TokenState token_state(const store::TokenRecord& record, TimePoint now) {
  if (record.revoked_at) return TokenState::revoked;
  if (record.expires_at <= now) return TokenState::expired;
  if (record.uses_left <= 0) return TokenState::used_up;
  return TokenState::active;
}

Result<void> check_not_reserved(std::string_view username, const std::vector<std::string>& reserved) {
  // check_username admits lower case only, and XMPP servers fold case: comparing as is suffices.
  if (std::find(reserved.begin(), reserved.end(), username) == reserved.end()) return {};
  return fail(Errc::forbidden, "the username '" + std::string(username) +
                                   "' is reserved (reserved_usernames in the CA's config.json): choose another one");
}

}  // namespace evpn::ca::enrollment
