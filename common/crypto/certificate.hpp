#pragma once
// X.509 certificates: parsing, the fields the project checks, and chain verification.

#include "common/crypto/handle.hpp"
#include "common/crypto/key.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace evpn::crypto {

class Certificate {
 public:
  static Result<Certificate> from_pem(std::string_view pem);
  static Result<Certificate> from_der(std::string_view der);

  // Another owner of the same certificate (reference-counted, no copy).
  Certificate clone() const;
  std::string to_pem() const;
  std::string to_der() const;
  // 64 lower-case hex characters: SHA-256 of the DER encoding.
  std::string fingerprint_sha256() const;
  // Lower-case hex of the serial number, without leading zeros.
  std::string serial_hex() const;
  TimePoint not_before() const;
  TimePoint not_after() const;
  // The subject's CN ("" when absent).
  std::string common_name() const;
  // Every id-on-xmppAddr otherName in the subjectAltName, in order.
  std::vector<std::string> xmpp_addrs() const;
  // True when basicConstraints says CA:TRUE.
  bool is_ca() const;
  // True when the certificate's public key is the public half of `key`.
  bool matches(const Key& key) const;
  EVP_PKEY* public_key() const noexcept;
  X509* get() const noexcept { return cert_.get(); }

  explicit Certificate(X509Ptr cert) : cert_(std::move(cert)) {}

 private:
  X509Ptr cert_;
};

// Parses every certificate of a PEM bundle (at least one).
Result<std::vector<Certificate>> parse_pem_bundle(std::string_view pem);

// Verifies that `leaf` chains to one of `roots` at time `at`, for the purpose given
// (X509_PURPOSE_SSL_CLIENT / X509_PURPOSE_SSL_SERVER, X509_PURPOSE_ANY), through any of
// `intermediates` (not trusted by themselves). Errc::unauthorized with the reason otherwise.
Result<void> verify_chain(const Certificate& leaf, const std::vector<Certificate>& roots, TimePoint at,
                          int purpose, const std::vector<Certificate>& intermediates = {});

// Lower-case hex of bytes.
std::string to_hex(std::string_view bytes);
// Standard base64 of bytes, padded, on one line.
std::string to_base64(std::string_view bytes);
// SHA-256 of bytes (raw 32 bytes).
std::string sha256(std::string_view bytes);
// Cryptographically random bytes.
std::string random_bytes(std::size_t n);
// Constant-time comparison of two equal-length strings.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace evpn::crypto
