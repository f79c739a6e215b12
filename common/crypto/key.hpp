#pragma once
// Private keys: generated locally, serialised as unencrypted PKCS#8 PEM (what EdgeVPN reads).

#include "common/crypto/handle.hpp"
#include "common/result.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace evpn::crypto {

enum class KeyType { ec_p256, rsa_2048, rsa_3072 };

// "ec-p256", "rsa-2048", "rsa-3072".
const char* to_string(KeyType type) noexcept;
Result<KeyType> parse_key_type(std::string_view name);

// A private key pair. Move-only; owns one EVP_PKEY.
class Key {
 public:
  static Result<Key> generate(KeyType type);
  static Result<Key> from_pem(std::string_view pem);

  // PKCS#8 PEM. The caller must treat the string as secret (write it 0600, never log it).
  std::string to_pem() const;
  // SubjectPublicKeyInfo DER of the public half.
  std::string public_der() const;
  EVP_PKEY* get() const noexcept { return key_.get(); }

  explicit Key(PKey key) : key_(std::move(key)) {}

 private:
  PKey key_;
};

// Which of the project's key types `key` is, if any.
std::optional<KeyType> key_type_of(EVP_PKEY* key);

// The DER SubjectPublicKeyInfo of any EVP_PKEY (public half only).
std::string public_key_der(EVP_PKEY* key);

// Whether `a` and `b` are the same public key (false when either is null).
bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b);

// Checks that a public key meets the CA's policy: EC P-256/P-384, or RSA of 2048 to 4096 bits with
// a public exponent that is odd and at least 65537. A null key (one that could not be read) fails.
Result<void> check_key_policy(EVP_PKEY* key);

}  // namespace evpn::crypto
