#include "tests/support/test_pki.hpp"

#include "common/fs/atomic_file.hpp"

#include <openssl/bn.h>
#include <openssl/rsa.h>

#include <stdexcept>

namespace evpn::test {

namespace {

template <class T>
T value_or_throw(Result<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().detail);
  return std::move(*r);
}

ca::signing::Signer make_signer() {
  auto key = value_or_throw(crypto::Key::generate(crypto::KeyType::ec_p256), "test root key");
  auto root = value_or_throw(ca::signing::Signer::create_root(key, "evpn test root", now_seconds()), "test root");
  return ca::signing::Signer(std::move(key), std::move(root));
}

}  // namespace

TestPki::TestPki() : signer_(make_signer()) {}

TestPki::Pair TestPki::node(const std::string& username, const std::string& domain, crypto::KeyType type) const {
  auto key = value_or_throw(crypto::Key::generate(type), "node key");
  auto issued = value_or_throw(
      signer_.issue_node(key.get(), {username, domain, std::chrono::hours(24)}, now_seconds()), "node certificate");
  return {std::move(key), value_or_throw(crypto::Certificate::from_pem(issued.pem), "node certificate")};
}

TestPki::Pair TestPki::server(const std::vector<std::string>& names) const {
  auto key = value_or_throw(crypto::Key::generate(crypto::KeyType::ec_p256), "server key");
  auto cert = value_or_throw(signer_.issue_server(key.get(), names, std::chrono::hours(24), now_seconds()),
                             "server certificate");
  return {std::move(key), std::move(cert)};
}

std::filesystem::path TestPki::write(const Pair& pair, const std::filesystem::path& dir, const std::string& stem) {
  using std::filesystem::perms;
  const auto crt = dir / (stem + ".crt");
  const auto public_mode = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
  for (const auto& [path, data, mode] :
       {std::tuple{crt, pair.cert.to_pem(), public_mode},
        std::tuple{dir / (stem + ".key"), pair.key.to_pem(), perms::owner_read | perms::owner_write},
        std::tuple{dir / (stem + ".pem"), pair.cert.to_pem() + pair.key.to_pem(),
                   perms::owner_read | perms::owner_write}})
    if (auto r = fs::write_file_atomic(path, data, mode); !r) throw std::runtime_error(r.error().detail);
  return crt;
}

crypto::Key rsa_key_with_exponent(unsigned long exponent) {
  crypto::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  crypto::BigNum e(BN_new());
  EVP_PKEY* key = nullptr;
  if (!ctx || !e || BN_set_word(e.get(), exponent) != 1 || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) != 1 ||
      EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx.get(), e.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &key) != 1)
    throw std::runtime_error("cannot generate an RSA key with exponent " + std::to_string(exponent));
  return crypto::Key(crypto::PKey(key));
}

}  // namespace evpn::test
