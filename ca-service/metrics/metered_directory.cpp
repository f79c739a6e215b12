#include "ca-service/metrics/metered_directory.hpp"

#include <chrono>

namespace evpn::ca::metrics {

MeteredDirectory::MeteredDirectory(std::unique_ptr<xmpp::Directory> inner, Metrics& metrics, std::string backend)
    : inner_(std::move(inner)), metrics_(metrics), backend_(std::move(backend)) {}

template <class Call>
auto MeteredDirectory::timed(const char* command, Call call) {
  const auto started = std::chrono::steady_clock::now();
  auto result = call();
  // "Exists already" is an answer the caller asked for, not a directory that failed.
  const bool failed = !result && result.error().code != Errc::conflict;
  metrics_.directory_request(backend_, command, std::chrono::steady_clock::now() - started, failed);
  return result;
}

Result<void> MeteredDirectory::ensure_group(const std::string& group) {
  return timed("ensure_group", [&] { return inner_->ensure_group(group); });
}
Result<bool> MeteredDirectory::user_exists(const std::string& username) {
  return timed("user_exists", [&] { return inner_->user_exists(username); });
}
Result<void> MeteredDirectory::create_user(const std::string& username) {
  return timed("create_user", [&] { return inner_->create_user(username); });
}
Result<void> MeteredDirectory::add_member(const std::string& username, const std::string& group) {
  return timed("add_member", [&] { return inner_->add_member(username, group); });
}
Result<void> MeteredDirectory::disable_user(const std::string& username) {
  return timed("disable_user", [&] { return inner_->disable_user(username); });
}
Result<void> MeteredDirectory::lift_lockout(const std::string& username) {
  return timed("lift_lockout", [&] { return inner_->lift_lockout(username); });
}
Result<void> MeteredDirectory::delete_user(const std::string& username) {
  return timed("delete_user", [&] { return inner_->delete_user(username); });
}
Result<void> MeteredDirectory::ping() {
  return timed("ping", [&] { return inner_->ping(); });
}

}  // namespace evpn::ca::metrics
