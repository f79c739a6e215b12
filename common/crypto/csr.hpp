#pragma once
// Certificate signing requests: the agent builds one with CN=<username>; the CA verifies it and
// uses only its public key.

#include "common/crypto/handle.hpp"
#include "common/crypto/key.hpp"
#include "common/result.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace evpn::crypto {

// The parsed PKCS#10 structure (defined in csr.cpp).
struct CsrAsn1;
struct CsrAsn1Free {
  void operator()(CsrAsn1* csr) const noexcept;
};

class Csr {
 public:
  // A CSR with subject CN=<common_name>, signed with `key` (SHA-256).
  static Result<Csr> create(const Key& key, std::string_view common_name);
  // Parses one PEM CSR; Errc::invalid_request on anything else.
  static Result<Csr> from_pem(std::string_view pem);
  // Parses one DER CSR with nothing after it; Errc::invalid_request on anything else.
  static Result<Csr> from_der(std::string_view der);

  std::string to_pem() const;
  const std::string& der() const noexcept { return der_; }
  // Verifies the self-signature: Errc::invalid_request when it does not hold.
  Result<void> verify_signature() const;
  // The subject's single CN; Errc::invalid_request when there is none or more than one.
  Result<std::string> common_name() const;
  // The public key (owned by the CSR).
  EVP_PKEY* public_key() const noexcept { return key_.get(); }

 private:
  // Parses DER; `not_a_csr` is the message when it is no PKCS#10 request.
  static Result<Csr> parse(std::string der, const char* not_a_csr);
  Csr(std::string der, std::unique_ptr<CsrAsn1, CsrAsn1Free> parsed, PKey key);

  std::string der_;
  std::unique_ptr<CsrAsn1, CsrAsn1Free> parsed_;
  PKey key_;
};

}  // namespace evpn::crypto
