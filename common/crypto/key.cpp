#include "common/crypto/key.hpp"

#include "common/crypto/openssl_error.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

namespace evpn::crypto {

const char* to_string(KeyType type) noexcept {
  switch (type) {
    case KeyType::ec_p256: return "ec-p256";
    case KeyType::rsa_2048: return "rsa-2048";
    case KeyType::rsa_3072: return "rsa-3072";
  }
  return "ec-p256";
}

Result<KeyType> parse_key_type(std::string_view name) {
  for (KeyType t : {KeyType::ec_p256, KeyType::rsa_2048, KeyType::rsa_3072})
    if (name == to_string(t)) return t;
  return fail(Errc::invalid_request,
              "unknown key type '" + std::string(name) + "': use ec-p256, rsa-2048 or rsa-3072");
}

Result<Key> Key::generate(KeyType type) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::ec_p256: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::rsa_2048: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}); break;
    case KeyType::rsa_3072: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}); break;
  }
  PKey key(raw);
  if (!key) return openssl_failure(Errc::internal, std::string("cannot generate a ") + to_string(type) + " key");
  return Key(std::move(key));
}

Result<Key> Key::from_pem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return openssl_failure(Errc::invalid_request, "not a PEM private key");
  return Key(std::move(key));
}

std::string Key::to_pem() const {
  Bio bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("cannot serialise a private key: " + drain_openssl_errors());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string Key::public_der() const { return public_key_der(key_.get()); }

std::optional<KeyType> key_type_of(EVP_PKEY* key) {
  const int bits = EVP_PKEY_get_bits(key);
  if (EVP_PKEY_is_a(key, "EC") && bits == 256) return KeyType::ec_p256;
  if (EVP_PKEY_is_a(key, "RSA") && bits == 2048) return KeyType::rsa_2048;
  if (EVP_PKEY_is_a(key, "RSA") && bits == 3072) return KeyType::rsa_3072;
  return std::nullopt;
}

std::string public_key_der(EVP_PKEY* key) {
  auto der = to_der(i2d_PUBKEY, key);
  if (!der) throw std::runtime_error("cannot encode a public key: " + drain_openssl_errors());
  return std::move(*der);
}

bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b) {
  const ErrorQueueGuard clear;  // keys of different types are queued as an error
  return a && b && EVP_PKEY_eq(a, b) == 1;
}

namespace {

// Small exponents make RSA fragile: with e=3 a verifier that checks PKCS#1 padding loosely accepts
// forged signatures (Bleichenbacher 2006). An even exponent is no RSA key at all. 65537 is what
// every generator uses; larger odd ones are allowed as FIPS 186 allows them.
Result<void> check_rsa_exponent(EVP_PKEY* key) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &raw) != 1)
    return openssl_failure(Errc::invalid_request, "cannot read the RSA key's public exponent");
  BigNum e(raw);
  // Odd and of 17 bits or more: at least 65537.
  if (BN_is_odd(e.get()) && BN_num_bits(e.get()) > 16) return {};
  const OpenSslMemory<char> decimal(BN_bn2dec(e.get()));
  const std::string text = decimal ? decimal.get() : "?";
  return fail(Errc::invalid_request, "the RSA key's public exponent " + text +
                                         " is not allowed: use 65537 (or a larger odd number); generate a new key "
                                         "(ec-p256 is the default)");
}

}  // namespace

Result<void> check_key_policy(EVP_PKEY* key) {
  if (!key)
    return fail(Errc::invalid_request,
                "the public key cannot be read (malformed, or an algorithm OpenSSL does not know): use EC P-256 or "
                "RSA 2048-4096");
  const int bits = EVP_PKEY_get_bits(key);
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (bits < 2048 || bits > 4096)
      return fail(Errc::invalid_request, "RSA keys must have 2048 to 4096 bits, this one has " +
                                             std::to_string(bits) + ": generate a new key (ec-p256 is the default)");
    return check_rsa_exponent(key);
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char curve[64] = {};
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve, nullptr) != 1)
      return openssl_failure(Errc::invalid_request, "cannot read the EC key's curve");
    const std::string name = curve;
    if (name == "prime256v1" || name == "P-256" || name == "secp384r1" || name == "P-384") return {};
    return fail(Errc::invalid_request, "EC keys must be on P-256 or P-384, not " + name);
  }
  return fail(Errc::invalid_request, std::string("unsupported key algorithm ") + EVP_PKEY_get0_type_name(key) +
                                         ": use EC P-256 or RSA 2048-4096");
}

}  // namespace evpn::crypto
