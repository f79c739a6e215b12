#pragma once
// The CA's policy core: decode -> validate -> authorize -> provision -> sign -> store -> render.
// No HTTP, no SQL. Thread-safe as long as its store and directory are.

#include "ca-service/config.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/crypto/csr.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <string>

namespace evpn::ca::authority {

// What a successful enrollment did, for the request log line.
struct Issued {
  protocol::EnrollmentResult result;
  std::string token_id;  // "" for a renewal
};

class Authority {
 public:
  Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory,
            XmppConfig xmpp);

  // Checks the request (CSR signature, key policy, username, token), provisions the directory,
  // signs, and records the certificate while spending one token use, in that order. A refused
  // request changes nothing and spends nothing.
  Result<Issued> enroll(const protocol::EnrollRequest& request, TimePoint now);

  // Renews the certificate `current` (the TLS client certificate of the request): it must be issued
  // by this CA, unexpired, and the node's current active certificate; the CSR must carry a new key
  // and the same CN. Re-asserts the directory (repairing drift), signs, and makes the new
  // certificate current. Errc::unauthorized for a certificate that may not renew.
  Result<Issued> renew(const protocol::RenewRequest& request, const crypto::Certificate* current, TimePoint now);

  // The PEM bundle of GET /v1/roots.
  std::string roots_pem() const;

  // The store and the directory answer.
  Result<void> health();

 private:
  // Provisions the directory, signs, records through `record` and renders the result.
  template <class Record>
  Result<Issued> issue(const crypto::Csr& csr, const std::string& username, const store::GroupRecord& group,
                       TimePoint now, Record record);

  store::Store& store_;
  const signing::Signer& signer_;
  xmpp::Directory& directory_;
  XmppConfig xmpp_;
};

}  // namespace evpn::ca::authority
