#pragma once
// The CA's policy core: decode -> validate -> authorize -> provision -> sign -> store -> render.
// No HTTP, no SQL. Thread-safe as long as its store and directory are.

#include "ca-service/config.hpp"
#include "ca-service/signing/signer.hpp"
#include "ca-service/store/store.hpp"
#include "ca-service/xmpp/directory.hpp"
#include "common/protocol/enrollment.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <string>

namespace evpn::ca::authority {

// What a successful enrollment did, for the request log line.
struct Issued {
  protocol::EnrollmentResult result;
  std::string token_id;
};

class Authority {
 public:
  Authority(store::Store& store, const signing::Signer& signer, xmpp::Directory& directory,
            XmppConfig xmpp);

  // Checks the request (CSR signature, key policy, username, token), provisions the directory,
  // signs, and records the certificate while spending one token use, in that order. A refused
  // request changes nothing and spends nothing.
  Result<Issued> enroll(const protocol::EnrollRequest& request, TimePoint now);

  // The PEM bundle of GET /v1/roots.
  std::string roots_pem() const;

  // The store and the directory answer.
  Result<void> health();

 private:
  store::Store& store_;
  const signing::Signer& signer_;
  xmpp::Directory& directory_;
  XmppConfig xmpp_;
};

}  // namespace evpn::ca::authority
