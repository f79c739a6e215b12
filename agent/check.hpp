#pragma once
// `evpn-agent check`: the node's health as a monitoring system wants it. Every check runs and
// reports its own outcome; the exit code is the Nagios plugin convention.

#include "common/crypto/certificate.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace evpn::agent {

// The outcome of a check; the value is the Nagios exit code.
enum class CheckStatus { ok = 0, warning = 1, critical = 2, unknown = 3 };

// "ok", "warning", "critical", "unknown".
const char* to_string(CheckStatus status) noexcept;

// One check: its name ("key-mode", "xmpp-login", ...), outcome, a one-line message, and what
// it measured as a JSON object (e.g. "days_left", "seconds", "bound_jid").
struct CheckResult {
  std::string name;
  CheckStatus status = CheckStatus::unknown;
  std::string message;
  nlohmann::json data = nlohmann::json::object();
};

// What the "expiry" check measured: the certificate's notAfter and the time left until it.
struct CertificateExpiry {
  TimePoint not_after;
  std::chrono::seconds left{0};  // negative once expired
};

// What the "xmpp-login" check measured: whether the login succeeded, and how long it took.
struct LoginOutcome {
  bool ok = false;
  std::chrono::milliseconds elapsed{0};
};

// Every check's result, and typed copies of the measurements that the summary line and the
// metrics show (the checks' `data` is for the JSON form only).
struct HealthReport {
  std::string username;  // empty when the node has not enrolled
  std::string jid;
  std::vector<CheckResult> checks;
  std::optional<CertificateExpiry> expiry{};  // when the certificate could be read
  std::optional<LoginOutcome> login{};        // when the login check ran

  // The worst outcome, ranked ok < unknown < warning < critical: a check that could not run
  // because another one failed does not hide that failure, and UNKNOWN is left only when
  // nothing could be checked (the node has not enrolled).
  CheckStatus status() const;
};

struct CheckOptions {
  std::string state_dir = "/var/lib/evpn-agent";
  std::string xmpp_ca;       // trust anchors for the XMPP server; empty: the pinned root
  std::string metrics_file;  // Prometheus text file to write; empty: none
  // WARNING when the certificate expires within this many days; unset: warning_window's default.
  std::optional<int> warn_days;
  std::chrono::milliseconds timeout{15000};  // for the XMPP login, and for the CA's answer to GET /v1/status
  bool json = false;
};

// Runs every check on the node in options.state_dir, as of `now`. Never fails: every problem
// is a check result.
HealthReport check_node(const CheckOptions& options, TimePoint now);

// How close to notAfter `check_expiry` warns: `warn_days` when given, else a sixth of the
// certificate's lifetime, at most seven days. A fixed seven days would keep every certificate that
// lives a day or a week (a common choice) at WARNING for its whole life.
std::chrono::seconds warning_window(const crypto::Certificate& cert, std::optional<int> warn_days);

// "expiry": CRITICAL when `cert` is expired or not yet valid, WARNING from renew_after() on or
// within `warn` of notAfter, OK otherwise.
CheckResult check_expiry(const crypto::Certificate& cert, TimePoint now, std::chrono::seconds warn);

// "key-mode": OK for exactly 0600; CRITICAL when group or others have any access to the key;
// WARNING for any other mode (e.g. 0400); UNKNOWN when the file does not exist.
CheckResult check_key_mode(const std::filesystem::path& key_file);

// "evio-config": the EdgeVPN config exists, lists `overlay` in Broker.Overlays (or CFx.Overlays),
// and Signal.Overlays.<overlay> has AuthenticationMethod "x509" with CertDirectory/CertFile and
// CertDirectory/KeyFile resolving to `cert_file` and `key_file`. CRITICAL otherwise.
CheckResult check_evio_config(const std::filesystem::path& config, const std::string& overlay,
                              const std::filesystem::path& cert_file, const std::filesystem::path& key_file);

// "ca-status", from the CA's answer to GET /v1/status (see CaClient::status) for the certificate
// `serial` of the CA at `ca_url`: OK for current; CRITICAL for superseded, revoked or expired, and
// for a CA that does not know the certificate, saying what to do; WARNING when the CA cannot be
// reached or answer (the node may be fine, the CA's view is just unknown).
CheckResult check_ca_status(const Result<protocol::CertificateStatus>& answer, const std::string& serial,
                            const std::string& ca_url);

// "29 days", "5 h", "12 min", "40 s": the largest unit that still reads as at least 2.
std::string describe_duration(std::chrono::seconds d);

// Runs the checks, writes the metrics file (atomically, 0644) when asked, prints the report
// (agent/check_report.hpp), and returns the exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
int run_check(const CheckOptions& options);

}  // namespace evpn::agent
