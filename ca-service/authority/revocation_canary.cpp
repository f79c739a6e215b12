#include "ca-service/authority/revocation_canary.hpp"

#include "ca-service/xmpp/ejabberd.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "ca-service/log.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

namespace evpn::ca::authority {
namespace {

using evpn::xmpp::LoginOptions;
using evpn::xmpp::LoginReport;

// What `revoke` does to a node on this backend, and what makes it stick, for the messages.
struct Backend {
  std::string lockout;  // how the canary was locked out
  std::string fix;      // what to change when a locked-out account still logs in
};

Backend backend(DirectoryType type) {
  if (type == DirectoryType::openfire)
    return {"locked out through the REST API (POST /lockouts), as `evpn-ca revoke` locks out a node",
            "check that Openfire honours lockouts for SASL EXTERNAL (the lockout provider is the default "
            "DefaultLockOutProvider, not one that ignores the database)"};
  return {std::string("made a member of the shared roster group ") + xmpp::revoked_group +
              ", as `evpn-ca revoke` does to a node",
          std::string("copy the ACL `evpn_revoked: {shared_group: \"") + xmpp::revoked_group +
              "\"}` and the c2s access rule `deny: evpn_revoked` (before `allow: all`) from "
              "deploy/ejabberd/ejabberd.yml.in into your ejabberd.yml, check that the c2s listener has "
              "`access: c2s`, and reload ejabberd (ejabberdctl reload_config)"};
}

// The refusal the server gave, or that the login could not tell.
std::string why(const LoginReport& r) { return r.error ? r.error->detail : "it logged in"; }

bool unreachable(const LoginReport& r) { return r.error && r.error->code == Errc::unavailable; }

// The steps between creating the canary account and removing it.
void probe(CanaryReport& report, xmpp::Directory& directory, const signing::Signer& signer,
           const CanaryTarget& target, const LoginFunction& login, TimePoint now, const std::string& username) {
  const Backend how = backend(target.directory_type);
  auto add = [&report](std::string name, std::optional<bool> ok, std::string detail) {
    report.items.push_back({std::move(name), ok, std::move(detail)});
  };

  auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
  if (!key) return add("certificate login", std::nullopt, "cannot make the canary's key: " + key.error().detail);
  const signing::NodeProfile profile{username, target.xmpp.domain, canary_lifetime};
  auto issued = signer.issue_node(key->get(), profile, now);
  if (!issued) return add("certificate login", std::nullopt, "cannot sign the canary's certificate: " + issued.error().detail);

  LoginOptions options;
  options.host = target.xmpp.host;
  options.port = target.xmpp.port;
  options.jid = report.jid;
  options.cert_pem = issued->pem;
  options.key_pem = key->to_pem();
  options.ca_file = target.ca_file;
  options.ca_file_only = false;
  options.deadline = target.login_timeout;
  if (spdlog::should_log(spdlog::level::debug))
    options.trace = [](std::string_view line) { spdlog::debug("revocation canary: {}", line); };
  // The key's PEM is the only copy outside the Key object; wiped whatever way this returns.
  struct Wipe {
    std::string& text;
    ~Wipe() { OPENSSL_cleanse(text.data(), text.size()); }
  } wipe{options.key_pem};

  // Without this login a refusal below would prove nothing: a server that refuses every
  // certificate from this CA refuses a revoked one too.
  const LoginReport control = login(options);
  if (!control.ok())
    return add("certificate login", unreachable(control) ? std::nullopt : std::optional(false),
               "a fresh account cannot log in with a certificate from this CA, so nodes cannot either and the "
               "revocation cannot be tested: " + why(control));
  add("certificate login", true,
      "a fresh account logs in with a two-minute certificate from this CA (SASL " + control.mechanism +
          ", bound to " + control.bound_jid + ")");

  // The same account and key with a certificate from a CA the server must not trust.
  auto foreign_key = crypto::Key::generate(crypto::KeyType::ec_p256);
  auto foreign_root = foreign_key ? signing::Signer::create_root(*foreign_key, "evpn-ca canary: a foreign CA", now)
                                  : Result<crypto::Certificate>(foreign_key.error());
  if (!foreign_root) {
    add("foreign CA", std::nullopt, "cannot make the foreign CA: " + foreign_root.error().detail);
  } else {
    const signing::Signer foreign(std::move(*foreign_key), std::move(*foreign_root));
    auto foreign_cert = foreign.issue_node(key->get(), profile, now);
    if (!foreign_cert) {
      add("foreign CA", std::nullopt, "cannot sign with the foreign CA: " + foreign_cert.error().detail);
    } else {
      std::swap(options.cert_pem, foreign_cert->pem);
      const LoginReport r = login(options);
      std::swap(options.cert_pem, foreign_cert->pem);
      if (unreachable(r))
        add("foreign CA", std::nullopt, "the server did not answer: " + why(r));
      else if (r.ok() || r.authenticated)
        add("foreign CA", false,
            "a certificate from a foreign CA was accepted for " + report.jid +
                ": the server does not check client certificates against this CA's root, so anyone can log in "
                "as any node; ejabberd: `tls_verify: true` and `cafile` naming only this CA's root on the c2s "
                "listener; Openfire: xmpp.auth.external.client.skip-cert-revalidation false and only this root "
                "in the client trust store (`evpn-ca openfire check`)");
      else
        add("foreign CA", true, "a certificate for the same account from a throwaway foreign CA is refused (" +
                                     why(r) + ")");
    }
  }

  if (auto locked = directory.disable_user(username); !locked) {
    report.summary = "cannot lock the canary out: " + locked.error().detail;
    return add("revocation", locked.error().code == Errc::unavailable ? std::nullopt : std::optional(false),
               report.summary);
  }
  const LoginReport after = login(options);
  if (unreachable(after)) {
    report.summary = "the XMPP server did not answer the canary's login after its lockout: " + why(after);
    return add("revocation", std::nullopt, report.summary);
  }
  if (after.ok()) {
    report.revocation = Effectiveness::not_effective;
    report.summary = "revocation is NOT effective: the canary, " + how.lockout +
                     ", logged in again, so a revoked node keeps its access; " + how.fix;
    return add("revocation", false, report.summary);
  }
  report.revocation = Effectiveness::effective;
  report.summary = "revocation is effective: the canary, " + how.lockout + ", is refused (" + why(after) + ")";
  add("revocation", true, report.summary);
}

void line(std::ostream& out, std::optional<bool> ok, const std::string& text) {
  xmpp::print_check_line(out, !ok ? "UNKNOWN" : *ok ? "OK" : "WRONG", text);
}

}  // namespace

std::string_view to_string(Effectiveness e) {
  switch (e) {
    case Effectiveness::effective: return "effective";
    case Effectiveness::not_effective: return "not effective";
    case Effectiveness::unknown: break;
  }
  return "unknown";
}

bool CanaryReport::all_ok() const {
  return std::all_of(items.begin(), items.end(), [](const CanaryItem& i) { return i.ok == true; });
}

CanaryReport run_canary(xmpp::Directory& directory, const signing::Signer& signer, const CanaryTarget& target,
                        const LoginFunction& login, TimePoint now) {
  CanaryReport report;
  const std::string username = std::string(canary_prefix) + crypto::to_hex(crypto::random_bytes(6));
  report.jid = username + "@" + target.xmpp.domain;
  if (auto created = directory.create_user(username); !created) {
    report.summary = "cannot create the canary account " + report.jid + ": " + created.error().detail;
    report.items.push_back({"canary account",
                            created.error().code == Errc::unavailable ? std::nullopt : std::optional(false),
                            report.summary});
    return report;
  }
  probe(report, directory, signer, target, login, now, username);
  if (report.summary.empty() && !report.items.empty()) report.summary = report.items.back().detail;

  if (auto removed = remove_canary(directory, username)) {
    report.items.push_back({"clean-up", true, "the canary account was removed; its key never left memory"});
  } else {
    report.left_behind = username;
    report.items.push_back({"clean-up", false,
                            "cannot remove the canary account " + report.jid + ": " + removed.error().detail +
                                "; its certificate expired two minutes after issuance and its key is gone, but "
                                "remove the account (`evpn-ca serve` tries again at its next canary)"});
  }
  return report;
}

Result<void> remove_canary(xmpp::Directory& directory, const std::string& username) {
  // The lockout goes too: Openfire keeps lockouts by name, so one could outlive its account.
  auto lifted = directory.lift_lockout(username);
  auto deleted = directory.delete_user(username);
  return !deleted ? deleted : lifted;
}

bool print_canary(const CanaryReport& report, std::ostream& out) {
  out << "revocation canary " << report.jid << "\n";
  for (const auto& item : report.items) line(out, item.ok, item.name + ": " + item.detail);
  return report.all_ok();
}

void RevocationCanary::record(const CanaryReport& report, TimePoint at) {
  std::lock_guard lock(mutex_);
  effective_ = report.revocation;
  last_error_ = report.revocation == Effectiveness::effective ? "" : report.summary;
  last_run_ = at;
}

Effectiveness RevocationCanary::effective() const {
  std::lock_guard lock(mutex_);
  return effective_;
}

std::string RevocationCanary::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

std::optional<TimePoint> RevocationCanary::last_run() const {
  std::lock_guard lock(mutex_);
  return last_run_;
}

}  // namespace evpn::ca::authority
