#pragma once
// ejabberd through mod_http_api (check_account, register, srg_create, srg_user_add, srg_user_del,
// unregister, kick_user, status), authenticated with HTTP basic as an ejabberd account that
// api_permissions lets call exactly these commands (deploy/ejabberd/ejabberd.yml.in).
// Disabling a user puts it in the shared roster group `revoked_group`, which the c2s access rule of
// deploy/ejabberd/ejabberd.yml.in refuses: the only thing that stops a certificate login there.

#include "ca-service/xmpp/directory.hpp"
#include "common/net/https_client.hpp"

namespace evpn::ca::xmpp {

// Names of groups evpn-ca creates start with a letter or digit, so this one never clashes.
inline constexpr const char* revoked_group = "_evpn-revoked";

class EjabberdDirectory final : public Directory {
 public:
  // `account` is the JID that `authorization` (a basic Authorization header value) logs in as;
  // messages name it, never the password.
  EjabberdDirectory(net::Url api, net::HttpClient client, std::string domain, std::string account,
                    std::string authorization);

  Result<void> ensure_group(const std::string& group) override;
  Result<bool> user_exists(const std::string& username) override;
  Result<void> create_user(const std::string& username) override;
  Result<void> add_member(const std::string& username, const std::string& group) override;
  Result<void> disable_user(const std::string& username) override;
  Result<void> lift_lockout(const std::string& username) override;
  Result<void> delete_user(const std::string& username) override;
  Result<void> ping() override;

 private:
  // The revoked group exists, displayed to nobody.
  Result<void> ensure_revoked_group();
  // The arguments of srg_user_add / srg_user_del for `username` in the revoked group.
  std::string revoked_membership(const std::string& username) const;
  // POSTs one command as the account; Result holds the response body of a 2xx answer.
  // Errc::internal saying what to check on 401 (credentials), 403 (api_permissions) and 404.
  Result<std::string> call(const std::string& command, const std::string& json_body);

  net::Url api_;
  net::HttpClient client_;
  std::string domain_;
  std::string account_;
  std::string authorization_;
};

}  // namespace evpn::ca::xmpp
