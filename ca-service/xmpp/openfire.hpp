#pragma once
// Openfire through the REST API plugin (/plugins/restapi/v1): shared-secret or HTTP basic
// authentication, JSON only, path segments URL-encoded. The operator's path and the quirks checked
// against Openfire 5.1.1: deploy/openfire/README.md.

#include <string>
#include <string_view>

#include "ca-service/xmpp/directory.hpp"
#include "common/net/https_client.hpp"

namespace evpn::ca::xmpp {

// One authenticated way into the REST API, shared by the directory and `evpn-ca openfire`.
class OpenfireApi {
 public:
  struct Answer {
    int status = 0;
    std::string body;
  };

  // From the CA config: url, TLS trust (ca_file), timeout, auth mode and the secret, read from
  // directory.secret_file (trimmed) or the variable named by directory.secret_env.
  // Errc::invalid_request naming the key to fix.
  static Result<OpenfireApi> from_config(const DirectoryConfig& config);

  OpenfireApi(net::Url base, net::HttpClient client, std::string authorization);

  // Sends one request to `path` (relative to the base URL, segments already encoded) with `body`
  // as JSON when it is not empty. Errc::unavailable when Openfire is unreachable or answers 5xx;
  // Errc::internal with the fix on 401 and 403; Errc::unavailable with the fix on a redirect to
  // the admin login (also what a starting Openfire answers). Any other
  // status is an Answer for the caller to judge. Never puts the secret in a message or log.
  Result<Answer> call(const std::string& method, const std::string& path, const std::string& body = "") const;

  // Errc::internal "Openfire answered <what> with HTTP <status>: <its error>" for an answer the
  // caller did not expect.
  Error unexpected(const std::string& what, const Answer& answer) const;

  // The base URL, for messages.
  std::string where() const { return net::to_string(base_); }

 private:
  net::Url base_;
  net::HttpClient client_;
  std::string authorization_;
  bool basic_ = false;
};

// One URL path segment, percent-encoded ("a b/c" -> "a%20b%2Fc").
std::string encode_segment(std::string_view text);

// The Directory over the REST API: group GET then POST (409 = exists) or PUT to share it again,
// user GET (404 = none) and POST (409 = conflict), membership POST, lockout POST to disable and
// DELETE to lift, user DELETE to delete (404 = gone).
class OpenfireDirectory final : public Directory {
 public:
  explicit OpenfireDirectory(OpenfireApi api);

  Result<void> ensure_group(const std::string& group) override;
  Result<bool> user_exists(const std::string& username) override;
  Result<void> create_user(const std::string& username) override;
  Result<void> add_member(const std::string& username, const std::string& group) override;
  Result<void> disable_user(const std::string& username) override;
  Result<void> lift_lockout(const std::string& username) override;
  Result<void> delete_user(const std::string& username) override;
  Result<void> ping() override;

 private:
  OpenfireApi api_;
};

// The Openfire backend for `make_directory`.
Result<std::unique_ptr<Directory>> make_openfire_directory(const DirectoryConfig& config);

}  // namespace evpn::ca::xmpp
