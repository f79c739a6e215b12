#pragma once
// The CA's policy core: decode -> validate -> authorize -> provision -> sign -> store -> render.
// No HTTP, no SQL. Thread-safe as long as its store and directory are.

#include "ca-service/config.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/records.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/crypto/csr.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace evpn::ca::store {
class Store;
}  // namespace evpn::ca::store

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
  // enforce_lockouts and `evpn-ca nodes` shows it.
  std::optional<Error> lockout_error;
};

// How long a CRL is valid (its nextUpdate - thisUpdate).
inline constexpr std::chrono::seconds crl_validity{7 * 86400};

// What `evpn-ca nodes` says of a node, from its current certificate: expiring once it is due for
// renewal (protocol::renewal_due). It is only ever printed, so it has no parse.
enum class NodeState { active, expiring, expired, revoked };
std::string_view to_string(NodeState state);
// The state of the node's current certificate at `now`.
NodeState node_state(const store::NodeRecord& node, TimePoint now);

// One lock per username, held while the CA provisions, signs and records for that name or locks it
// out, so that the directory calls of one name never interleave within this process.
class UsernameLocks {
 public:
  class Guard {
   public:
    Guard(UsernameLocks& locks, std::string username);
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard();

   private:
    UsernameLocks& locks_;
    std::string username_;
  };

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  std::set<std::string> held_;
};

class Authority {
 public:
  Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory, XmppConfig xmpp,
            std::vector<std::string> reserved_usernames = default_reserved_usernames);

  // Checks the request (CSR signature, key policy, username, token), provisions the directory,
  // signs, and records the certificate while spending one token use, in that order. A refused
  // request changes nothing and spends nothing. A repeat of an enrollment (same token secret,
  // name and public key) whose answer was lost gets the same certificate again, spending nothing.
  // Only an XMPP account that evpn-ca created is ever issued for: one that exists on the server
  // otherwise is Errc::account_exists, untouched, unless the token was made with --adopt-existing
  // for that name. Reserved usernames are Errc::forbidden for every token.
  Result<Issued> enroll(const protocol::EnrollRequest& request, TimePoint now);

  // Renews the certificate `current` (the TLS client certificate of the request): it must be issued
  // by this CA, unexpired, and the node's current active certificate; the CSR must carry a new key
  // and the same CN. Re-asserts the account and its membership (repairing drift) but never lifts a
  // lockout, signs, and makes the new certificate current. A repeat of a renewal whose answer was
  // lost (the same current certificate, the same new key) gets the certificate it was issued,
  // spending nothing. Errc::unauthorized for a certificate that may not renew.
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

  // Locks out, once more, every node whose current certificate is revoked and still valid: the
  // queued lockouts (failures stay queued with their error) and those done before, so that a
  // lockout undone by a lost race or by hand comes back within one call. Returns how many failed;
  // 0 without trying when another replica of the CA is doing it (Store::run_exclusive).
  Result<std::size_t> enforce_lockouts(TimePoint now);

  // The DER CRL of GET /v1/crl: every revoked certificate, valid crl_validity. The last CRL is
  // answered again while the revocations in the store are the same and it has more than half
  // its validity left; otherwise a new one is signed at `now`.
  Result<std::string> crl(TimePoint now);

  // The PEM bundle of GET /v1/roots (also in every enrollment's answer).
  const std::string& roots_pem() const noexcept { return roots_pem_; }

  // The store and the directory answer; else Errc::unavailable naming the one that does not
  // (its own error goes to the log only).
  Result<void> health();

 private:
  // What an issuance may do to the XMPP account besides creating it.
  struct Provisioning {
    bool may_adopt = false;     // the token was made with --adopt-existing for this name
    bool lift_lockout = false;  // the name's revoked certificate has expired: a new enrollment may lift
  };

  // Provisions the directory, signs, records through `record(cert, adopted)` and renders the result,
  // holding the username's lock throughout.
  template <class Record>
  Result<Issued> issue(const crypto::Csr& csr, const std::string& username, const store::GroupRecord& group,
                       const Provisioning& how, TimePoint now, Record record);

  // Makes the account and its membership right, touching no account that is not evpn-ca's (see
  // enroll). Returns whether an existing account is being adopted.
  Result<bool> provision(const std::string& username, const std::string& group, const Provisioning& how,
                         TimePoint now);

  // The certificate that renewed `superseded` for the key of `csr`, answered again, or nullopt.
  Result<std::optional<Issued>> replay_renewal(const store::CertificateRecord& superseded, const crypto::Csr& csr,
                                               TimePoint now);

  // enforce_lockouts, in the one process that works the queue at this moment.
  Result<std::size_t> enforce_lockouts_now(TimePoint now);
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
  std::vector<std::string> reserved_usernames_;
  std::string roots_pem_;  // encoded once: every answer carries it
  UsernameLocks locks_;

  // The last CRL signed, and what the store held then.
  struct SignedCrl {
    std::string der;
    TimePoint signed_at{};
    long long data_version = 0;
    std::size_t revocations = 0;
    TimePoint latest{};  // the latest revocation's time
  };
  // A store opened on ":memory:" has one connection, whose data_version does not see its own
  // commits: this process's revocations drop the cached CRL themselves.
  void invalidate_crl() {
    std::lock_guard lock(crl_mutex_);
    crl_cache_ = {};
  }
  std::mutex crl_mutex_;
  SignedCrl crl_cache_;
};

}  // namespace evpn::ca::authority
