#pragma once
// The CA key and the certificate profiles (DESIGN.md, "Certificate profile").

#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace evpn::ca::signing {

struct NodeProfile {
  std::string username;     // CN and the local part of the xmppAddr
  std::string xmpp_domain;  // the domain part of the xmppAddr
  std::chrono::seconds lifetime{30 * 86400};
};

class Signer {
 public:
  Signer(crypto::Key ca_key, crypto::Certificate root);

  // A self-signed root: CN=<common_name>, CA:TRUE, keyCertSign + cRLSign, 10 years.
  static Result<crypto::Certificate> create_root(const crypto::Key& ca_key, const std::string& common_name,
                                                 TimePoint now);

  // A node certificate: CN=<username>, exactly one xmppAddr SAN <username>@<domain>, clientAuth,
  // random 128-bit serial, notBefore = now - 5 min. Only `subject_key` is taken from the request.
  Result<crypto::Certificate> issue_node(EVP_PKEY* subject_key, const NodeProfile& profile,
                                         TimePoint now) const;

  // A TLS server certificate (serverAuth) for DNS names and IP literals in `names`; the first name
  // is the CN.
  Result<crypto::Certificate> issue_server(EVP_PKEY* subject_key, const std::vector<std::string>& names,
                                           std::chrono::seconds lifetime, TimePoint now) const;

  const crypto::Certificate& root() const noexcept { return root_; }

 private:
  // An end-entity certificate under the root: CN, CA:FALSE, keyUsage for the key's type, the one
  // extendedKeyUsage given, SKI/AKI and exactly `alt_names` as subjectAltName.
  Result<crypto::Certificate> issue_leaf(EVP_PKEY* subject_key, const std::string& cn, const char* extended_key_usage,
                                         GENERAL_NAMES* alt_names, std::chrono::seconds lifetime, TimePoint now) const;

  crypto::Key key_;
  crypto::Certificate root_;
};

}  // namespace evpn::ca::signing
