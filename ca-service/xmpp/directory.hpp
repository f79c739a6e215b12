#pragma once
// The XMPP server's user directory, as the CA provisions it. Every call is idempotent and bounded
// by a timeout. Errors: Errc::unavailable when the server cannot be reached or answers 5xx (the
// CA answers 503 and issues nothing); Errc::internal for a configuration error (wrong secret,
// API disabled), with the server's answer in the detail and never the secret.

#include "ca-service/config.hpp"
#include "common/net/https_client.hpp"
#include "common/result.hpp"

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace evpn::ca::xmpp {

class Directory {
 public:
  virtual ~Directory() = default;

  // The group exists and is shared with its own members (members see each other's presence).
  virtual Result<void> ensure_group(const std::string& group) = 0;
  // Whether the server has an account of that name, whoever created it.
  virtual Result<bool> user_exists(const std::string& username) = 0;
  // Creates the account (with a random password that SASL EXTERNAL never uses). Errc::conflict
  // when it exists already: the caller decides whether that account is its own.
  virtual Result<void> create_user(const std::string& username) = 0;
  // The user is a member of the group (which must exist).
  virtual Result<void> add_member(const std::string& username, const std::string& group) = 0;
  // The user can no longer log in; live sessions are ended. Idempotent.
  virtual Result<void> disable_user(const std::string& username) = 0;
  // Undoes disable_user. Only an operator-approved enrollment calls it: no renewal and no other
  // request ever lifts a lockout.
  virtual Result<void> lift_lockout(const std::string& username) = 0;
  virtual Result<void> delete_user(const std::string& username) = 0;
  // Proves the directory answers (for /healthz).
  virtual Result<void> ping() = 0;
  // Whether this directory creates and changes accounts at all: false for `none`, where accounts
  // are managed elsewhere and evpn-ca owns, creates and adopts none.
  virtual bool manages_accounts() const { return true; }
};

// The HTTP client a backend talks to its server with: the configured timeout, and for an https
// url the configured trust anchors (directory.ca_file, else the system store).
Result<net::HttpClient> make_directory_client(const DirectoryConfig& config, const net::Url& url);

// The secret a backend authenticates with, from directory.secret_file (trimmed), else the variable
// named by directory.secret_env (validate_directory makes sure exactly one is set).
// Errc::invalid_request naming the key to fix; never the secret.
Result<std::string> read_secret(const DirectoryConfig& config);

// The value of an HTTP basic Authorization header: "Basic " + base64(user ":" password).
std::string basic_authorization(std::string_view user, std::string_view password);

// One line of a check's report (`evpn-ca openfire check`, `ejabberd check`): "  <mark> <text>",
// the mark (OK, WRONG, UNKNOWN, NOTE, ...) padded to one column.
void print_check_line(std::ostream& out, std::string_view mark, std::string_view text);

// The backend named by `config.type`; Errc::invalid_request when validate_directory refuses `config`.
Result<std::unique_ptr<Directory>> make_directory(const DirectoryConfig& config,
                                                  const std::string& xmpp_domain);

}  // namespace evpn::ca::xmpp
