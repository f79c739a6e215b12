#pragma once
// The CA key and the certificate profiles (the profile: README, "How an enrollment works").

#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace evpn::ca::signing {

struct NodeProfile {
  std::string username;     // CN and the local part of the xmppAddr
  std::string xmpp_domain;  // the domain part of the xmppAddr
  std::chrono::seconds lifetime{30 * 86400};
};

// An RFC 5280 CRLReason that certificates are revoked with. certificateHold and removeFromCRL are
// left out: a revocation here is final.
struct RevocationReason {
  std::string_view name;
  int code;
};
inline constexpr std::array<RevocationReason, 6> revocation_reasons{{{"unspecified", 0},
                                                                     {"keyCompromise", 1},
                                                                     {"affiliationChanged", 3},
                                                                     {"superseded", 4},
                                                                     {"cessationOfOperation", 5},
                                                                     {"privilegeWithdrawn", 9}}};

// The CRLReason code of a name in revocation_reasons; Errc::invalid_request listing them otherwise.
Result<int> revocation_reason_code(std::string_view name);

// One entry of a CRL.
struct RevokedCertificate {
  std::string serial;  // lower-case hex, as Certificate::serial_hex() gives it
  TimePoint revoked_at;
  std::string reason;  // a name from revocation_reasons
};

// A node certificate as issued: its encoding and the fields the store records. It is not a
// crypto::Certificate because OpenSSL 3.0 would have to decode the subject's key again to make one
// (see set_public_key in signer.cpp); Certificate::from_pem(pem) makes one where it is needed.
struct IssuedCertificate {
  std::string pem;
  std::string serial;  // lower-case hex, as Certificate::serial_hex() gives it
  TimePoint not_before;
  TimePoint not_after;
};

class Signer {
 public:
  Signer(crypto::Key ca_key, crypto::Certificate root);

  // A self-signed root: CN=<common_name>, CA:TRUE, keyCertSign + cRLSign, 10 years.
  static Result<crypto::Certificate> create_root(const crypto::Key& ca_key, const std::string& common_name,
                                                 TimePoint now);

  // A node certificate: CN=<username>, exactly one xmppAddr SAN <username>@<domain>, clientAuth,
  // random 128-bit serial, notBefore = now - 5 min. Only `subject_key` is taken from the request.
  Result<IssuedCertificate> issue_node(EVP_PKEY* subject_key, const NodeProfile& profile, TimePoint now) const;

  // A TLS server certificate (serverAuth) for DNS names and IP literals in `names`; the first name
  // is the CN.
  Result<crypto::Certificate> issue_server(EVP_PKEY* subject_key, const std::vector<std::string>& names,
                                           std::chrono::seconds lifetime, TimePoint now) const;

  // A DER X.509 v2 CRL signed with the CA key: issuer = the root's subject, thisUpdate = now,
  // nextUpdate = now + validity, CRL number `number`, the root's key id as authorityKeyIdentifier,
  // and one entry per revoked certificate with its date and reason code (no reason code for
  // "unspecified", as RFC 5280 5.3.1 recommends). Errc::invalid_request for a bad serial or reason.
  Result<std::string> make_crl(const std::vector<RevokedCertificate>& revoked, std::int64_t number, TimePoint now,
                               std::chrono::seconds validity) const;

  const crypto::Certificate& root() const noexcept { return root_; }

 private:
  // The extensions every end-entity certificate under the root shares, made once: building them
  // from configuration text parses the text and decodes the root's key identifier each time.
  struct LeafExtensions {
    crypto::X509Ext ca_false, key_usage, key_usage_rsa, client_auth, server_auth, authority_key_id;
  };
  using Md = crypto::Handle<EVP_MD, EVP_MD_free>;

  // Makes `cert` (built by new_certificate, with the subject's key set) an end-entity certificate
  // under the root: CA:FALSE, keyUsage for the key's type, the one extendedKeyUsage given
  // (server_auth or client_auth of leaf_), SKI/AKI and exactly `alt_names` as subjectAltName;
  // then signs it.
  Result<crypto::X509Ptr> issue_leaf(crypto::X509Ptr cert, EVP_PKEY* subject_key, const X509_EXTENSION* extended_key_usage,
                                     GENERAL_NAMES* alt_names) const;
  Result<crypto::X509Ptr> sign(crypto::X509Ptr cert) const;

  crypto::Key key_;
  crypto::Certificate root_;
  // OpenSSL 3.0 looks the digest and signature implementations up by name on every X509_sign and
  // EVP_Digest with EVP_sha256()/EVP_sha1(), under global locks: the CA signs through a copy of a
  // context initialised once, and hashes key identifiers with a digest fetched once.
  crypto::MdCtx sign_template_;
  Md sha1_;
  LeafExtensions leaf_;
};

}  // namespace evpn::ca::signing
