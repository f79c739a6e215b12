#pragma once
// The revocation canary: proves against the running XMPP server that a revoked node cannot log in.
// A throwaway account gets a two-minute certificate for a key that exists only in memory; it must
// log in, a certificate for it from a throwaway foreign CA must not, and once it is locked out the
// way `revoke` locks out a node it must not log in either. The account is removed afterwards.
// Nothing goes to the store: the canary is not a node, its certificate is not recorded (so it can
// neither renew nor ask for its status) and it expires two minutes after issuance.

#include "ca-service/config.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/time.hpp"
#include "common/xmpp/login.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace evpn::ca::authority {

// Canary accounts are named <canary_prefix><12 hex digits>. check_username wants a node's name to
// start with a letter or a digit, so no token can ever enroll one of them.
inline constexpr std::string_view canary_prefix = "_evpn-canary-";
// The canary certificate's lifetime from issuance (notBefore is backdated like every node's).
inline constexpr std::chrono::seconds canary_lifetime{120};

// Whether the last canary found revocation effective; unknown until a canary got an answer.
enum class Effectiveness { unknown, effective, not_effective };
std::string_view to_string(Effectiveness effectiveness);

// One thing the canary proved or failed to prove.
struct CanaryItem {
  std::string name;        // "certificate login", "foreign CA", "revocation", "clean-up"
  std::optional<bool> ok;  // nullopt: could not tell (the server did not answer, an earlier step failed)
  std::string detail;      // what happened; for a failure, how to fix it
};

struct CanaryReport {
  std::string jid;  // the canary account
  std::vector<CanaryItem> items;
  Effectiveness revocation = Effectiveness::unknown;
  // One line on the revocation: why it is effective, not effective or unknown.
  std::string summary;
  // The canary account's username when it could not be removed ("" otherwise): remove_canary it later.
  std::string left_behind;
  bool all_ok() const;
};

// Where and how the canary logs in.
struct CanaryTarget {
  XmppConfig xmpp;                 // the endpoint the nodes use
  DirectoryType directory_type = DirectoryType::ejabberd;  // whose fix the messages give
  std::filesystem::path ca_file;   // trust anchors for the XMPP server's certificate: the CA's root
  std::chrono::milliseconds login_timeout{10000};
};

// evpn::xmpp::verify_login, or a stand-in in unit tests.
using LoginFunction = std::function<evpn::xmpp::LoginReport(const evpn::xmpp::LoginOptions&)>;

// Runs the canary once, as of `now`. Never fails: every problem is an item of the report. The
// logins trust the system store as well as target.ca_file (LoginOptions::ca_file_only is off), as
// `serve` runs them beside threads that read the environment.
CanaryReport run_canary(xmpp::Directory& directory, const signing::Signer& signer, const CanaryTarget& target,
                        const LoginFunction& login, TimePoint now);

// Removes a canary account: lifts its lockout and deletes it, both attempted whatever the other
// answers. For run_canary, and for an account an earlier run left behind.
Result<void> remove_canary(xmpp::Directory& directory, const std::string& username);

// Prints a heading and one OK / WRONG / UNKNOWN line per item, as `openfire check` does; returns
// report.all_ok().
bool print_canary(const CanaryReport& report, std::ostream& out);

// The last canary's verdict on revocation, shared between the thread that runs the canary and the
// threads that report it (/healthz, metrics). Thread-safe.
class RevocationCanary {
 public:
  // Keeps the verdict of `report`, which ran at `at`.
  void record(const CanaryReport& report, TimePoint at);
  Effectiveness effective() const;
  // Why the revocation is not known to be effective; "" when it is.
  std::string last_error() const;
  // When the canary last ran; nullopt before the first run.
  std::optional<TimePoint> last_run() const;

 private:
  mutable std::mutex mutex_;
  Effectiveness effective_ = Effectiveness::unknown;
  std::string last_error_ = "the revocation canary has not run yet";
  std::optional<TimePoint> last_run_;
};

}  // namespace evpn::ca::authority
