#include "common/crypto/csr.hpp"

#include "common/crypto/openssl_error.hpp"

#include <openssl/pem.h>

namespace evpn::crypto {

Result<Csr> Csr::create(const Key& key, std::string_view common_name) {
  X509Req req(X509_REQ_new());
  X509Name name(X509_NAME_new());
  if (!req || !name ||
      X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.data()),
                                 static_cast<int>(common_name.size()), -1, 0) != 1 ||
      X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 || X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0)
    return openssl_failure(Errc::internal, "cannot build the certificate signing request");
  return Csr(std::move(req));
}

Result<Csr> Csr::from_pem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req)
    return openssl_failure(Errc::invalid_request,
                           "the CSR is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  return Csr(std::move(req));
}

std::string Csr::to_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req_.get()) != 1)
    throw std::runtime_error("cannot serialise a CSR: " + drain_openssl_errors());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<void> Csr::verify_signature() const {
  EVP_PKEY* key = public_key();
  if (!key) return openssl_failure(Errc::invalid_request, "the CSR's public key cannot be read");
  if (X509_REQ_verify(req_.get(), key) != 1)
    return openssl_failure(Errc::invalid_request,
                           "the CSR's signature does not verify: it was altered or not signed with its own key");
  return {};
}

Result<std::string> Csr::common_name() const {
  X509_NAME* name = X509_REQ_get_subject_name(req_.get());
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return fail(Errc::invalid_request, "the CSR has no CN in its subject: use CN=<username>");
  if (X509_NAME_get_index_by_NID(name, NID_commonName, index) >= 0)
    return fail(Errc::invalid_request, "the CSR has more than one CN: use exactly one, CN=<username>");
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return openssl_failure(Errc::invalid_request, "the CSR's CN is not valid text");
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

EVP_PKEY* Csr::public_key() const noexcept { return X509_REQ_get0_pubkey(req_.get()); }

}  // namespace evpn::crypto
