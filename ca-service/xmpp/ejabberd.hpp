#pragma once
// ejabberd through mod_http_api (check_account, register, srg_create, srg_user_add, srg_user_del,
// unregister, kick_user, status, and srg_list for `evpn-ca ejabberd check`), authenticated with HTTP basic as an ejabberd account that
// api_permissions lets call exactly these commands (deploy/ejabberd/ejabberd.yml.in).
// Disabling a user puts it in the shared roster group `revoked_group`, which the c2s access rule of
// deploy/ejabberd/ejabberd.yml.in refuses: the only thing that stops a certificate login there.

#include "ca-service/xmpp/directory.hpp"
#include "common/net/https_client.hpp"

#include <ostream>

namespace evpn::ca::xmpp {

// Names of groups evpn-ca creates start with a letter or digit, so this one never clashes.
inline constexpr const char* revoked_group = "_evpn-revoked";

class EjabberdDirectory final : public Directory {
 public:
  // `account` is the JID that `authorization` (a basic Authorization header value) logs in as;
  // messages name it, never the password.
  EjabberdDirectory(net::Url api, net::HttpClient client, std::string domain, std::string account,
                    std::string authorization);
  // From directory.url, directory.username and its password (directory.secret_file or secret_env);
  // Errc::invalid_request when validate_directory refuses `config`.
  static Result<EjabberdDirectory> from_config(const DirectoryConfig& config, const std::string& domain);

  Result<void> ensure_group(const std::string& group) override;
  Result<bool> user_exists(const std::string& username) override;
  Result<void> create_user(const std::string& username) override;
  Result<void> add_member(const std::string& username, const std::string& group) override;
  Result<void> disable_user(const std::string& username) override;
  Result<void> lift_lockout(const std::string& username) override;
  Result<void> delete_user(const std::string& username) override;
  Result<void> ping() override;

  // Whether the shared roster group exists on the domain (srg_list).
  Result<bool> group_exists(const std::string& group);
  // Whether the account may call `command`: true when it answers 2xx to `json_body`, false on 403.
  Result<bool> permits(const std::string& command, const std::string& json_body = "{}");
  // "<api url> as <account>", for messages.
  std::string where() const;

 private:
  // The revoked group exists, displayed to nobody.
  Result<void> ensure_revoked_group();
  // The arguments of srg_user_add / srg_user_del for `username` in the revoked group.
  std::string revoked_membership(const std::string& username) const;
  // POSTs one command as the account; Result holds the response body of a 2xx answer.
  // Errc::internal saying what to check on 401 (credentials), 403 (api_permissions) and 404.
  Result<std::string> call(const std::string& command, const std::string& json_body);
  // POSTs one command as the account; Result holds any HTTP answer, Errc::unavailable when none came.
  Result<net::HttpResponse> post(const std::string& command, const std::string& json_body);

  net::Url api_;
  net::HttpClient client_;
  std::string domain_;
  std::string account_;
  std::string authorization_;
};

// `evpn-ca ejabberd check`, the API's part: prints one OK / WRONG line (with the fix) per item to
// `out`: the API answers the account with its password (status), the group `revoked_group` exists
// (srg_list), and a command evpn-ca does not use is refused (api_permissions grants exactly the
// commands evpn-ca calls).
struct ApiCheck {
  bool all_ok = false;
  bool answers = false;  // the API answered the account at all: the revocation canary can run
};
ApiCheck check_ejabberd_api(EjabberdDirectory& ejabberd, std::ostream& out);

}  // namespace evpn::ca::xmpp
