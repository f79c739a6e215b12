#pragma once
// An XMPP directory that times every call of the one it wraps, by backend and command, into
// Metrics; the backends themselves know nothing of metrics.

#include "ca-service/metrics/metrics.hpp"
#include "ca-service/xmpp/directory.hpp"

#include <memory>
#include <string>

namespace evpn::ca::metrics {

class MeteredDirectory final : public xmpp::Directory {
 public:
  // `backend` is the label value: directory.type of the config.
  MeteredDirectory(std::unique_ptr<xmpp::Directory> inner, Metrics& metrics, std::string backend);

  Result<void> ensure_group(const std::string& group) override;
  Result<bool> user_exists(const std::string& username) override;
  Result<void> create_user(const std::string& username) override;
  Result<void> add_member(const std::string& username, const std::string& group) override;
  Result<void> disable_user(const std::string& username) override;
  Result<void> lift_lockout(const std::string& username) override;
  Result<void> delete_user(const std::string& username) override;
  Result<void> ping() override;
  bool manages_accounts() const override { return inner_->manages_accounts(); }

 private:
  // Runs `call`, recording its time under `command`.
  template <class Call>
  auto timed(const char* command, Call call);

  std::unique_ptr<xmpp::Directory> inner_;
  Metrics& metrics_;
  std::string backend_;
};

}  // namespace evpn::ca::metrics
