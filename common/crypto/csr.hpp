#pragma once
// Certificate signing requests: the agent builds one with CN=<username>; the CA verifies it and
// uses only its public key.

#include "common/crypto/handle.hpp"
#include "common/crypto/key.hpp"
#include "common/result.hpp"

#include <string>
#include <string_view>

namespace evpn::crypto {

class Csr {
 public:
  // A CSR with subject CN=<common_name>, signed with `key` (SHA-256).
  static Result<Csr> create(const Key& key, std::string_view common_name);
  // Parses one PEM CSR; Errc::invalid_request on anything else.
  static Result<Csr> from_pem(std::string_view pem);

  std::string to_pem() const;
  // Verifies the self-signature: Errc::invalid_request when it does not hold.
  Result<void> verify_signature() const;
  // The subject's single CN; Errc::invalid_request when there is none or more than one.
  Result<std::string> common_name() const;
  // The public key (owned by the CSR).
  EVP_PKEY* public_key() const noexcept;
  X509_REQ* get() const noexcept { return req_.get(); }

  explicit Csr(X509Req req) : req_(std::move(req)) {}

 private:
  X509Req req_;
};

}  // namespace evpn::crypto
