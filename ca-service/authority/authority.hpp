#pragma once
// The CA's policy core: decode -> validate -> authorize -> provision -> sign -> store -> render.
// No HTTP, no SQL. Thread-safe as long as its store and directory are.

#include "ca-service/config.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/crypto/csr.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace evpn::ca::authority {

// What a successful enrollment did, for the request log line.
struct Issued {
  protocol::EnrollmentResult result;
  std::string token_id;  // "" for a renewal
};

// What to revoke: a node's current certificate (username) or one certificate (serial).
struct RevokeRequest {
  std::string username{};
  std::string serial{};  // hex, any case, colons allowed
  std::string reason = "unspecified";  // a name from signing::revocation_reasons
};

struct Revoked {
  store::RevocationRecord revocation;
  // Set when the node's directory lockout was due and failed: it stays queued for
  // retry_lockouts and `evpn-ca nodes` shows it.
  std::optional<Error> lockout_error;
};

// How long a CRL is valid (its nextUpdate - thisUpdate).
inline constexpr std::chrono::seconds crl_validity{7 * 86400};

// "active", "expiring" (a third of its lifetime or less left, the agent's renewal window),
// "expired" or "revoked", of the node's current certificate at `now`.
std::string node_state(const store::NodeRecord& node, TimePoint now);

class Authority {
 public:
  Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory,
            XmppConfig xmpp);

  // Checks the request (CSR signature, key policy, username, token), provisions the directory,
  // signs, and records the certificate while spending one token use, in that order. A refused
  // request changes nothing and spends nothing. A repeat of an enrollment (same token secret,
  // name and public key) whose answer was lost gets the same certificate again, spending nothing.
  Result<Issued> enroll(const protocol::EnrollRequest& request, TimePoint now);

  // Renews the certificate `current` (the TLS client certificate of the request): it must be issued
  // by this CA, unexpired, and the node's current active certificate; the CSR must carry a new key
  // and the same CN. Re-asserts the directory (repairing drift), signs, and makes the new
  // certificate current. Errc::unauthorized for a certificate that may not renew.
  Result<Issued> renew(const protocol::RenewRequest& request, const crypto::Certificate* current, TimePoint now);

  // How this CA sees `presented` (the TLS client certificate of GET /v1/status) at `now`: revoked,
  // superseded (no longer its node's current certificate), expired, or current. Errc::unauthorized
  // unless it is byte for byte a certificate this CA recorded (the TLS handshake proved the key).
  Result<protocol::CertificateStatus> certificate_status(const crypto::Certificate* presented, TimePoint now);

  // Revokes the certificate in the store (with the audit entry), then, when it was its node's
  // current certificate, locks the node out in the directory (no login, live sessions ended). A
  // failed lockout stays queued and is reported in Revoked::lockout_error; the revocation stands.
  // Errc::invalid_request for a bad request or reason, not_found / conflict from the store.
  Result<Revoked> revoke(const RevokeRequest& request, TimePoint now);

  // Runs every queued directory lockout once; failures stay queued with their error. Returns how
  // many are still queued.
  Result<std::size_t> retry_lockouts(TimePoint now);

  // The DER CRL of GET /v1/crl: every revoked certificate, signed at `now`, valid crl_validity.
  Result<std::string> crl(TimePoint now);

  // The PEM bundle of GET /v1/roots (also in every enrollment's answer).
  const std::string& roots_pem() const noexcept { return roots_pem_; }

  // The store and the directory answer.
  Result<void> health();

 private:
  // Provisions the directory, signs, records through `record` and renders the result.
  template <class Record>
  Result<Issued> issue(const crypto::Csr& csr, const std::string& username, const store::GroupRecord& group,
                       TimePoint now, Record record);

  // Disables `username` in the directory and records the outcome of the lockout queued by `serial`.
  Result<void> lock_out(const std::string& username, const std::string& serial, TimePoint now);

  // The result of an earlier enrollment by this token, name and key (a retry whose first answer
  // was lost), or nullopt.
  Result<std::optional<Issued>> replay(const store::TokenRecord& record, const enrollment::TokenParts& token,
                                       const crypto::Csr& csr, const std::string& username, TimePoint now);
  // The answer for the certificate `cert` of `group`, as recorded.
  Issued render(const store::CertificateRecord& cert, const store::GroupRecord& group, TimePoint now) const;

  store::Store& store_;
  const signing::Signer& signer_;
  xmpp::Directory& directory_;
  XmppConfig xmpp_;
  std::string roots_pem_;  // encoded once: every answer carries it
};

}  // namespace evpn::ca::authority
