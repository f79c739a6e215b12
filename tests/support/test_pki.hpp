#pragma once
// A throwaway PKI generated at test time (no private key is committed), built on the real Signer.

#include "ca-service/signing/signer.hpp"
#include "common/crypto/key.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace evpn::test {

class TestPki {
 public:
  // A new EC P-256 root "evpn test root".
  TestPki();

  const ca::signing::Signer& signer() const { return signer_; }
  std::string root_pem() const { return signer_.root().to_pem(); }

  struct Pair {
    crypto::Key key;
    crypto::Certificate cert;
  };
  // A node certificate for <username>@<domain> (the production profile).
  Pair node(const std::string& username, const std::string& domain,
            crypto::KeyType type = crypto::KeyType::ec_p256) const;
  // A TLS server certificate for `names` (DNS names or IP literals).
  Pair server(const std::vector<std::string>& names) const;

  // Writes <dir>/<stem>.crt, <dir>/<stem>.key (0600) and, for ejabberd, <dir>/<stem>.pem
  // (certificate then key); returns the .crt path.
  static std::filesystem::path write(const Pair& pair, const std::filesystem::path& dir,
                                     const std::string& stem);

 private:
  ca::signing::Signer signer_;
};

// An RSA 2048 key pair with public exponent `exponent` (Key::generate always uses 65537).
crypto::Key rsa_key_with_exponent(unsigned long exponent);

}  // namespace evpn::test
