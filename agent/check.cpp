#include "agent/check.hpp"

#include "agent/ca_client.hpp"
#include "agent/check_report.hpp"
#include "agent/node_files.hpp"
#include "agent/log.hpp"
#include "agent/renewal.hpp"
#include "common/xmpp/login.hpp"
#include "common/crypto/key.hpp"
#include "common/fs/atomic_file.hpp"

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <system_error>
#include <tuple>

namespace evpn::agent {

namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;
using std::chrono::seconds;
using stdfs::perms;

// The order for "worst wins" (HealthReport::status): UNKNOWN outranks only OK.
int severity(CheckStatus s) {
  switch (s) {
    case CheckStatus::ok: return 0;
    case CheckStatus::unknown: return 1;
    case CheckStatus::warning: return 2;
    case CheckStatus::critical: return 3;
  }
  return 3;
}

CheckResult not_checked(std::string name, const std::string& why) {
  return {std::move(name), CheckStatus::unknown, "not checked: " + why};
}

// doc[k1][k2]..., or nullptr when a step is missing or not an object.
const Json* find_path(const Json& doc, std::initializer_list<std::string> keys) {
  const Json* at = &doc;
  for (const auto& key : keys) {
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

bool same_file(const stdfs::path& a, const stdfs::path& b) {
  std::error_code ec_a, ec_b;
  const auto ca = stdfs::weakly_canonical(a, ec_a), cb = stdfs::weakly_canonical(b, ec_b);
  return !ec_a && !ec_b && ca == cb;
}

// The "files" check, keeping what it parsed for the checks that need the key or certificate.
struct LoadedPair {
  std::optional<crypto::Key> key;
  std::optional<crypto::Certificate> cert;
  CheckResult check;
};

LoadedPair load_pair(const NodeFiles& files) {
  LoadedPair out;
  std::vector<std::string> problems;
  if (auto text = fs::read_file(files.key_file(), 64 * 1024); !text) {
    problems.push_back(text.error().detail);
  } else {
    auto key = crypto::Key::from_pem(*text);
    OPENSSL_cleanse(text->data(), text->size());  // the key's text is as secret as the key
    if (key)
      out.key = std::move(*key);
    else
      problems.push_back(files.key_file().string() + " is not a PEM private key: " + key.error().detail);
  }
  if (auto text = fs::read_file(files.cert_file()); !text) {
    problems.push_back(text.error().detail);
  } else if (auto cert = crypto::Certificate::from_pem(*text); !cert) {
    problems.push_back(files.cert_file().string() + " is not a PEM certificate: " + cert.error().detail);
  } else {
    out.cert = std::move(*cert);
  }

  Json data{{"key_file", files.key_file().string()}, {"cert_file", files.cert_file().string()}};
  if (!problems.empty()) {
    std::string message = problems.front();
    for (auto it = problems.begin() + 1; it != problems.end(); ++it) message += "; " + *it;
    out.check = {"files", CheckStatus::critical, message, std::move(data)};
    return out;
  }
  std::error_code ec;
  const auto target = stdfs::read_symlink(files.current_dir(), ec);
  out.check = {"files", CheckStatus::ok,
               "node.key and node.crt in " + files.current_dir().string() +
                   (ec ? std::string() : " -> " + target.filename().string()),
               std::move(data)};
  return out;
}

CheckResult check_key_match(const LoadedPair& pair) {
  if (!pair.key || !pair.cert) return not_checked("key-match", "needs a readable key and certificate");
  const std::string serial = pair.cert->serial_hex();
  if (pair.cert->matches(*pair.key))
    return {"key-match", CheckStatus::ok, "node.key is the key of node.crt (serial " + serial + ")"};
  return {"key-match", CheckStatus::critical,
          "node.key is not the key of node.crt (serial " + serial +
              "): nothing can log in with this pair; restore the pair or enroll again"};
}

CheckResult check_chain(const std::optional<crypto::Certificate>& cert, const stdfs::path& root_file,
                        const NodeState& state, TimePoint now) {
  if (!cert) return not_checked("chain", "no readable certificate");
  const auto critical = [](const std::string& why, Json data = Json::object()) {
    return CheckResult{"chain", CheckStatus::critical, why, std::move(data)};
  };
  auto text = fs::read_file(root_file);
  if (!text) return critical(text.error().detail);
  auto root = crypto::Certificate::from_pem(*text);
  if (!root) return critical(root_file.string() + " is not a PEM certificate: " + root.error().detail);
  const std::string fingerprint = root->fingerprint_sha256();
  Json data{{"root_fingerprint", fingerprint}};
  std::string pinned = state.fingerprint;
  std::transform(pinned.begin(), pinned.end(), pinned.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (fingerprint != pinned)
    return critical(root_file.string() + " is not the pinned root (its fingerprint is " + fingerprint +
                        ", the pinned one " + state.fingerprint + ")",
                    std::move(data));
  std::vector<crypto::Certificate> roots;
  roots.push_back(std::move(*root));
  if (auto r = crypto::verify_chain(*cert, roots, now, X509_PURPOSE_SSL_CLIENT); !r)
    return critical("node.crt does not verify against the pinned root: " + r.error().detail, std::move(data));
  const auto addrs = cert->xmpp_addrs();
  if (cert->common_name() != state.username || addrs.size() != 1 || addrs.front() != state.jid)
    return critical("node.crt is for CN " + cert->common_name() + ", not for " + state.jid, std::move(data));
  return {"chain", CheckStatus::ok,
          "issued to " + state.jid + " by the pinned root " + fingerprint.substr(0, 16) + "...", std::move(data)};
}

// Asks the CA how it sees the node's certificate, authenticating with the node's pair.
CheckResult ask_ca(const NodeState& state, const NodeFiles& files, const CheckOptions& o) {
  auto cert_pem = fs::read_file(files.cert_file());
  auto key_pem = fs::read_file(files.key_file(), 64 * 1024);
  auto root_pem = fs::read_file(files.root_file());
  if (!cert_pem || !key_pem || !root_pem) return not_checked("ca-status", "needs the node's key, certificate and root");
  auto cert = crypto::Certificate::from_pem(*cert_pem);
  auto root = crypto::Certificate::from_pem(*root_pem);
  auto key = crypto::Key::from_pem(*key_pem);
  if (!cert || !root || !key || !cert->matches(*key))
    return not_checked("ca-status", "needs a readable root and a certificate with its key");
  auto ca = CaClient::with_root(state.ca_url, std::move(*root), *cert_pem, *key_pem, o.timeout);
  OPENSSL_cleanse(key_pem->data(), key_pem->size());
  if (!ca) return not_checked("ca-status", ca.error().detail);
  return check_ca_status(ca->status(), cert->serial_hex(), state.ca_url);
}

// "xmpp-login"; its outcome and time also go to report.login.
CheckResult check_login(const NodeState& state, const NodeFiles& files, const CheckOptions& o, HealthReport& report) {
  xmpp::LoginOptions login;
  login.host = state.xmpp_host;
  login.port = state.xmpp_port;
  login.jid = state.jid;
  login.cert_file = files.cert_file();
  login.key_file = files.key_file();
  login.ca_file = o.xmpp_ca.empty() ? files.root_file() : stdfs::path(o.xmpp_ca);
  login.deadline = o.timeout;
  login.trace = log::debug_sink();
  const xmpp::LoginReport r = xmpp::verify_login(login);
  report.login = LoginOutcome{r.ok(), r.elapsed};
  const std::string where = state.xmpp_host + ":" + std::to_string(state.xmpp_port);
  Json data{{"server", where}, {"seconds", static_cast<double>(r.elapsed.count()) / 1000.0}};
  if (!r.ok()) {
    data["error"] = to_string(r.error->code);
    return {"xmpp-login", CheckStatus::critical, r.error->detail, std::move(data)};
  }
  data["bound_jid"] = r.bound_jid;
  data["mechanism"] = r.mechanism;
  return {"xmpp-login", CheckStatus::ok,
          "SASL " + r.mechanism + " at " + where + " bound " + r.bound_jid + " in " +
              std::to_string(r.elapsed.count()) + " ms",
          std::move(data)};
}

}  // namespace

const char* to_string(CheckStatus status) noexcept {
  switch (status) {
    case CheckStatus::ok: return "ok";
    case CheckStatus::warning: return "warning";
    case CheckStatus::critical: return "critical";
    case CheckStatus::unknown: return "unknown";
  }
  return "unknown";
}

std::string describe_duration(seconds d) {
  const auto s = d.count();
  if (s >= 2 * 86400) return std::to_string(s / 86400) + " days";
  if (s >= 2 * 3600) return std::to_string(s / 3600) + " h";
  if (s >= 2 * 60) return std::to_string(s / 60) + " min";
  return std::to_string(s) + " s";
}

CheckStatus HealthReport::status() const {
  if (checks.empty()) return CheckStatus::unknown;
  CheckStatus worst = CheckStatus::ok;
  for (const auto& c : checks)
    if (severity(c.status) > severity(worst)) worst = c.status;
  return worst;
}

seconds warning_window(const crypto::Certificate& cert, std::optional<int> warn_days) {
  constexpr seconds longest = std::chrono::days(7);
  if (warn_days) return std::chrono::days(*warn_days);
  const seconds lifetime = cert.not_after() - (cert.not_before() + protocol::issuance_backdate);
  return std::min(longest, lifetime / 6);
}

CheckResult check_expiry(const crypto::Certificate& cert, TimePoint now, seconds warn) {
  const TimePoint not_after = cert.not_after();
  const TimePoint renew_from = renew_after(cert);
  const seconds left = not_after - now;
  Json data{{"not_after", to_rfc3339(not_after)},
            {"renew_after", to_rfc3339(renew_from)},
            {"expiry_timestamp", to_unix(not_after)},
            {"seconds_left", left.count()},
            {"days_left", std::chrono::floor<std::chrono::days>(left).count()},
            {"warning_window_seconds", warn.count()}};
  const auto result = [&](CheckStatus status, const std::string& message) {
    return CheckResult{"expiry", status, message, data};
  };
  if (now >= not_after)
    return result(CheckStatus::critical, "expired " + describe_duration(now - not_after) + " ago (notAfter " +
                                             to_rfc3339(not_after) + "); enroll again");
  if (now < cert.not_before())
    return result(CheckStatus::critical, "not valid before " + to_rfc3339(cert.not_before()) +
                                             "; is this node's clock right?");
  const std::string remaining = describe_duration(left) + " left (notAfter " + to_rfc3339(not_after) + ")";
  if (now >= renew_from)
    return result(CheckStatus::warning,
                  remaining + ", renewal due since " + to_rfc3339(renew_from) + "; is evpn-agent-renew.timer running?");
  if (left <= warn)
    return result(CheckStatus::warning, remaining + ", within the warning window of " + describe_duration(warn));
  return result(CheckStatus::ok, remaining + ", renewal from " + to_rfc3339(renew_from));
}

CheckResult check_ca_status(const Result<protocol::CertificateStatus>& answer, const std::string& serial,
                            const std::string& ca_url) {
  using protocol::CertificateState;
  Json data{{"ca_url", ca_url}, {"serial", serial}};
  if (!answer) {
    data["error"] = to_string(answer.error().code);
    // The CA down (or too old to answer) says nothing about the node: EdgeVPN may well be working.
    const auto code = answer.error().code;
    if (code == Errc::unavailable || code == Errc::internal || code == Errc::not_found)
      return {"ca-status", CheckStatus::warning,
              "the CA could not say whether certificate " + serial + " is still current (" + answer.error().detail +
                  "); a warning, not critical: the node may be fine",
              std::move(data)};
    return {"ca-status", CheckStatus::critical,
            "the CA does not accept certificate " + serial + ", or could not be verified (" +
                answer.error().detail + "); enroll again with a token",
            std::move(data)};
  }
  data["ca_status"] = to_string(answer->status);
  const auto result = [&](CheckStatus status, const std::string& message) {
    return CheckResult{"ca-status", status, message, data};
  };
  switch (answer->status) {
    case CertificateState::current:
      return result(CheckStatus::ok, "the CA has certificate " + serial + " as this node's current one");
    case CertificateState::superseded:
      return result(CheckStatus::critical, "the CA has replaced certificate " + serial +
                                               " by a newer one that this node does not use; run evpn-agent renew (it "
                                               "finishes a renewal whose answer was lost), or enroll again with a token");
    case CertificateState::revoked:
      return result(CheckStatus::critical, "the operator revoked certificate " + serial +
                                               " at the CA; the node cannot log in with it: ask the operator, and "
                                               "enroll again with a new token if the node should stay");
    case CertificateState::expired:
      return result(CheckStatus::critical, "the CA has certificate " + serial + " as expired; enroll again with a token");
  }
  return result(CheckStatus::unknown, "unexpected status");
}

CheckResult check_key_mode(const stdfs::path& key_file) {
  std::error_code ec;
  const auto status = stdfs::status(key_file, ec);
  if (ec || !stdfs::exists(status)) return not_checked("key-mode", "cannot stat " + key_file.string());
  const auto mode = status.permissions() & perms::mask;
  char octal_text[8];
  std::snprintf(octal_text, sizeof octal_text, "%04o", static_cast<unsigned>(mode));
  const std::string octal = octal_text;
  const Json data{{"mode", octal}};
  if (mode == (perms::owner_read | perms::owner_write)) return {"key-mode", CheckStatus::ok, octal, data};
  // Any access by group or others exposes the private key: that needs action now. A mode that
  // is merely unusual (0400, 0700) gives nothing away.
  if ((mode & (perms::group_all | perms::others_all)) != perms::none)
    return {"key-mode", CheckStatus::critical,
            octal + ": the private key is open to other users; chmod 600 " + key_file.string(), data};
  return {"key-mode", CheckStatus::warning, octal + ", expected 0600; chmod 600 " + key_file.string(), data};
}

CheckResult check_evio_config(const stdfs::path& config, const std::string& overlay, const stdfs::path& cert_file,
                              const stdfs::path& key_file) {
  const Json data{{"file", config.string()}};
  const auto critical = [&](const std::string& why) {
    return CheckResult{"evio-config", CheckStatus::critical, why, data};
  };
  auto text = fs::read_file(config);
  if (!text) return critical(text.error().detail);
  const auto doc = Json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return critical(config.string() + " is not a JSON object");

  // The same generation rule as the merge: Broker (evio >= 23) when present, else CFx.
  const std::string framework = doc.contains("Broker") ? "Broker" : "CFx";
  const Json* ids = find_path(doc, {framework, "Overlays"});
  if (!ids || !ids->is_array() || std::find(ids->begin(), ids->end(), overlay) == ids->end())
    return critical("overlay " + overlay + " is not listed in " + framework + ".Overlays of " + config.string() +
                    ", so EdgeVPN does not start it");
  const std::string where = config.string() + ": Signal.Overlays." + overlay;
  const Json* entry = find_path(doc, {"Signal", "Overlays", overlay});
  if (!entry || !entry->is_object()) return critical(where + " is missing");
  const auto text_of = [&](const char* key) -> std::optional<std::string> {
    const auto it = entry->find(key);
    if (it == entry->end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  const auto method = text_of("AuthenticationMethod");
  if (method != "x509")
    return critical(where + ".AuthenticationMethod is " + (method ? "\"" + *method + "\"" : "missing") +
                    ", not \"x509\"");
  const auto dir = text_of("CertDirectory"), cert = text_of("CertFile"), key = text_of("KeyFile");
  if (!dir || !cert || !key) return critical(where + " lacks CertDirectory, CertFile or KeyFile");
  // EdgeVPN joins CertDirectory with each file name (an absolute name wins, as with
  // std::filesystem); symlinks are resolved so that any spelling of the same file passes.
  for (const auto& [name, configured, expected] :
       {std::tuple{"CertFile", *cert, cert_file}, std::tuple{"KeyFile", *key, key_file}}) {
    const auto resolved = stdfs::path(*dir) / configured;
    if (!same_file(resolved, expected))
      return critical(where + ": CertDirectory/" + name + " is " + resolved.string() + ", not " + expected.string());
  }
  return {"evio-config", CheckStatus::ok,
          where + " is x509 with " + cert_file.string() + " and " + key_file.filename().string() + ", listed in " +
              framework + ".Overlays",
          data};
}

HealthReport check_node(const CheckOptions& o, TimePoint now) {
  HealthReport report;
  const NodeFiles files(o.state_dir);
  auto loaded = files.load_state();
  if (!loaded || !*loaded) {
    report.checks.push_back({"state", CheckStatus::unknown,
                             loaded ? "not enrolled: " + files.state_file().string() +
                                          " does not exist; run evpn-agent enroll"
                                    : loaded.error().detail});
    return report;
  }
  const NodeState& state = **loaded;
  report.username = state.username;
  report.jid = state.jid;
  report.checks.push_back({"state", CheckStatus::ok,
                           state.jid + " in group " + state.group + ", overlay " + state.overlay,
                           {{"username", state.username}, {"group", state.group}, {"overlay", state.overlay}}});

  auto pair = load_pair(files);
  report.checks.push_back(pair.check);
  report.checks.push_back(check_key_mode(files.key_file()));
  report.checks.push_back(check_key_match(pair));
  report.checks.push_back(check_chain(pair.cert, files.root_file(), state, now));
  if (pair.cert) {
    report.checks.push_back(check_expiry(*pair.cert, now, warning_window(*pair.cert, o.warn_days)));
    report.expiry = CertificateExpiry{pair.cert->not_after(), pair.cert->not_after() - now};
  } else {
    report.checks.push_back(not_checked("expiry", "no readable certificate"));
  }
  report.checks.push_back(ask_ca(state, files, o));
  report.checks.push_back(check_evio_config(state.evio_config, state.overlay, files.cert_file(), files.key_file()));
  // The login runs even when a check above failed: it is what EdgeVPN itself depends on.
  report.checks.push_back(check_login(state, files, o, report));
  return report;
}

int run_check(const CheckOptions& options) {
  HealthReport report = check_node(options, now_seconds());
  if (!options.metrics_file.empty()) {
    constexpr auto mode = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
    // A monitoring blind spot is worth a warning, but the node itself may be fine.
    if (auto r = fs::write_file_atomic(options.metrics_file, format_metrics(report), mode); !r)
      report.checks.push_back({"metrics", CheckStatus::warning, r.error().detail});
  }
  std::cout << (options.json ? to_json(report).dump(2) + "\n" : format_text(report));
  return static_cast<int>(report.status());
}

}  // namespace evpn::agent
