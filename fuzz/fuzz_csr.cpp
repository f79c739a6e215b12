// libFuzzer target: the CA's checks of a CSR (parse, signature, key policy, CN, username), the
// code that every unauthenticated POST /v1/enroll reaches. Built and run by fuzz/run.sh.

#include "ca-service/enrollment/tokens.hpp"
#include "common/crypto/csr.hpp"
#include "common/crypto/key.hpp"

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// Inputs that are not PEM are taken as DER and armoured, so that most mutations reach the ASN.1
// parser instead of failing in the base64 decoder.
std::string as_pem(std::string_view input) {
  if (input.starts_with("-----BEGIN")) return std::string(input);
  std::string base64(4 * ((input.size() + 2) / 3) + 1, '\0');
  base64.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64.data()),
                                                         reinterpret_cast<const unsigned char*>(input.data()),
                                                         static_cast<int>(input.size()))));
  std::string pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (std::size_t at = 0; at < base64.size(); at += 64) pem += base64.substr(at, 64) + "\n";
  return pem + "-----END CERTIFICATE REQUEST-----\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto csr = evpn::crypto::Csr::from_pem(as_pem({reinterpret_cast<const char*>(data), size}));
  if (!csr) return 0;
  // Each check runs whatever the previous one said (the CA stops at the first failure), so that
  // the key policy and the CN checks also see keys and names of CSRs whose signature is wrong.
  (void)csr->verify_signature();
  if (csr->public_key()) (void)evpn::crypto::check_key_policy(csr->public_key());
  if (auto cn = csr->common_name()) (void)evpn::ca::enrollment::check_username(*cn);
  return 0;
}
