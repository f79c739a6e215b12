#pragma once
// ejabberd through mod_http_api: register, srg_create, srg_user_add, unregister, kick_user.

#include "ca-service/xmpp/directory.hpp"
#include "common/net/https_client.hpp"

namespace evpn::ca::xmpp {

class EjabberdDirectory final : public Directory {
 public:
  EjabberdDirectory(net::Url api, net::HttpClient client, std::string domain);

  Result<void> ensure_group(const std::string& group) override;
  Result<void> ensure_user(const std::string& username) override;
  Result<void> add_member(const std::string& username, const std::string& group) override;
  Result<void> disable_user(const std::string& username) override;
  Result<void> delete_user(const std::string& username) override;
  Result<void> ping() override;

 private:
  // POSTs one command; Result holds the response body of a 2xx answer.
  Result<std::string> call(const std::string& command, const std::string& json_body);

  net::Url api_;
  net::HttpClient client_;
  std::string domain_;
};

}  // namespace evpn::ca::xmpp
