#include "common/crypto/csr.hpp"

#include "common/crypto/openssl_error.hpp"

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

namespace evpn::crypto {

// PKCS#10 (RFC 2986) as OpenSSL's own X509_REQ templates read it, except that the
// subjectPublicKeyInfo stays as its two encoded parts. Parsing an X509_REQ makes OpenSSL 3.0 decode
// that key through its provider decoders, which costs more than verifying the signature (about
// 95 us against 58 us for P-256 on the machine of the README's Performance figures); decode_key below imports EC keys
// directly instead.
struct CsrKeyInfo {
  X509_ALGOR* algorithm;
  ASN1_BIT_STRING* public_key;
};
struct CsrInfo {
  ASN1_ENCODING enc;  // the bytes as received, which the signature covers
  ASN1_INTEGER* version;
  X509_NAME* subject;
  CsrKeyInfo* key_info;
  STACK_OF(X509_ATTRIBUTE) * attributes;
};
struct CsrAsn1 {
  CsrInfo* info;
  X509_ALGOR* signature_algorithm;
  ASN1_BIT_STRING* signature;
};

ASN1_SEQUENCE(CsrKeyInfo) = {
    ASN1_SIMPLE(CsrKeyInfo, algorithm, X509_ALGOR),
    ASN1_SIMPLE(CsrKeyInfo, public_key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(CsrKeyInfo)

// The attributes are OPTIONAL here although RFC 2986 requires them, as in OpenSSL's template: some
// encoders leave out an empty set.
ASN1_SEQUENCE_enc(CsrInfo, enc, nullptr) = {
    ASN1_SIMPLE(CsrInfo, version, ASN1_INTEGER),
    ASN1_SIMPLE(CsrInfo, subject, X509_NAME),
    ASN1_SIMPLE(CsrInfo, key_info, CsrKeyInfo),
    ASN1_IMP_SET_OF_OPT(CsrInfo, attributes, X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END_enc(CsrInfo, CsrInfo)

ASN1_SEQUENCE(CsrAsn1) = {
    ASN1_SIMPLE(CsrAsn1, info, CsrInfo),
    ASN1_SIMPLE(CsrAsn1, signature_algorithm, X509_ALGOR),
    ASN1_SIMPLE(CsrAsn1, signature, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(CsrAsn1)

void CsrAsn1Free::operator()(CsrAsn1* csr) const noexcept {
  ASN1_item_free(reinterpret_cast<ASN1_VALUE*>(csr), ASN1_ITEM_rptr(CsrAsn1));
}

namespace {

constexpr const char* kNotPem = "the CSR is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)";
constexpr const char* kNotDer = "the CSR is not one DER PKCS#10 certificate request";

std::string key_info_der(const CsrKeyInfo* info) {
  auto der = to_der([info](unsigned char** out) {
    return ASN1_item_i2d(reinterpret_cast<const ASN1_VALUE*>(info), out, ASN1_ITEM_rptr(CsrKeyInfo));
  });
  if (!der) throw std::runtime_error("cannot encode a CSR's public key: " + drain_openssl_errors());
  return std::move(*der);
}

// A key holding only the named curve's parameters. Built once: making the curve's group costs
// OpenSSL 3.0 four times what copying it does (33 against 8 us per key on the README's machine).
PKey curve_parameters(const char* curve) {
  PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(curve), 0),
                         OSSL_PARAM_construct_end()};
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEY_PARAMETERS, params) != 1)
    throw std::runtime_error(std::string("cannot make the parameters of curve ") + curve + ": " +
                             drain_openssl_errors());
  return PKey(key);
}

// An EC key on `curve` (a key of curve_parameters), imported from its encoded point; null when the
// point is not on the curve.
PKey import_ec_key(const EVP_PKEY* curve, const ASN1_BIT_STRING* point) {
  PKey key(EVP_PKEY_dup(const_cast<EVP_PKEY*>(curve)));
  if (!key || EVP_PKEY_set1_encoded_public_key(key.get(), ASN1_STRING_get0_data(point),
                                               static_cast<std::size_t>(ASN1_STRING_length(point))) != 1)
    return nullptr;
  return key;
}

// The key of a subjectPublicKeyInfo, or null when OpenSSL cannot use it. EC keys on the named
// curves that the key policy accepts (P-256, P-384) are imported directly; anything else goes
// through OpenSSL's generic decoder, so that a key is always the one OpenSSL itself would read
// (other curves are not all plain EC keys to it: an SM2 curve key is of type SM2).
PKey decode_key(const CsrKeyInfo* info) {
  const ASN1_OBJECT* algorithm = nullptr;
  int parameter_type = 0;
  const void* parameter = nullptr;
  X509_ALGOR_get0(&algorithm, &parameter_type, &parameter, info->algorithm);
  if (OBJ_obj2nid(algorithm) == NID_X9_62_id_ecPublicKey && parameter_type == V_ASN1_OBJECT) {
    const int curve = OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(parameter));
    static const PKey p256 = curve_parameters(SN_X9_62_prime256v1);
    static const PKey p384 = curve_parameters(SN_secp384r1);
    if (curve == NID_X9_62_prime256v1) return import_ec_key(p256.get(), info->public_key);
    if (curve == NID_secp384r1) return import_ec_key(p384.get(), info->public_key);
  }
  const std::string der = key_info_der(info);
  const ErrorQueueGuard clear;  // an unusable key is reported when it is used
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return PKey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

}  // namespace

Csr::Csr(std::string der, std::unique_ptr<CsrAsn1, CsrAsn1Free> parsed, PKey key)
    : der_(std::move(der)), parsed_(std::move(parsed)), key_(std::move(key)) {}

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
  auto der = to_der(i2d_X509_REQ, req.get());
  if (!der) return openssl_failure(Errc::internal, "cannot encode the certificate signing request");
  return from_der(*der);
}

Result<Csr> Csr::from_pem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  unsigned char* raw = nullptr;
  long len = 0;
  const int read = bio ? PEM_bytes_read_bio(&raw, &len, nullptr, PEM_STRING_X509_REQ, bio.get(), nullptr, nullptr) : 0;
  const OpenSslMemory<unsigned char> data(raw);
  if (read != 1) return openssl_failure(Errc::invalid_request, kNotPem);
  return parse(std::string(reinterpret_cast<const char*>(data.get()), static_cast<std::size_t>(len)), kNotPem);
}

Result<Csr> Csr::from_der(std::string_view der) { return parse(std::string(der), kNotDer); }

Result<Csr> Csr::parse(std::string der, const char* not_a_csr) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<CsrAsn1, CsrAsn1Free> parsed(reinterpret_cast<CsrAsn1*>(
      ASN1_item_d2i(nullptr, &p, static_cast<long>(der.size()), ASN1_ITEM_rptr(CsrAsn1))));
  if (!parsed || p != reinterpret_cast<const unsigned char*>(der.data() + der.size()))
    return openssl_failure(Errc::invalid_request, not_a_csr);
  if (ASN1_INTEGER_get(parsed->info->version) != 0)
    return fail(Errc::invalid_request, "the CSR is not a version 1 PKCS#10 request: only version 1 exists");
  PKey key = decode_key(parsed->info->key_info);
  return Csr(std::move(der), std::move(parsed), std::move(key));
}

std::string Csr::to_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio(bio.get(), PEM_STRING_X509_REQ, "", reinterpret_cast<const unsigned char*>(der_.data()),
                            static_cast<long>(der_.size())) <= 0)
    throw std::runtime_error("cannot serialise a CSR: " + drain_openssl_errors());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<void> Csr::verify_signature() const {
  if (!key_) return fail(Errc::invalid_request, "the CSR's public key cannot be read");
  // The signature covers the request info as received (kept by the template's ASN1_ENCODING).
  if (ASN1_item_verify(ASN1_ITEM_rptr(CsrInfo), parsed_->signature_algorithm, parsed_->signature, parsed_->info,
                       key_.get()) != 1)
    return openssl_failure(Errc::invalid_request,
                           "the CSR's signature does not verify: it was altered or not signed with its own key");
  return {};
}

Result<std::string> Csr::common_name() const {
  X509_NAME* name = parsed_->info->subject;
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return fail(Errc::invalid_request, "the CSR has no CN in its subject: use CN=<username>");
  if (X509_NAME_get_index_by_NID(name, NID_commonName, index) >= 0)
    return fail(Errc::invalid_request, "the CSR has more than one CN: use exactly one, CN=<username>");
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* raw = nullptr;
  const int len = ASN1_STRING_to_UTF8(&raw, data);
  const OpenSslMemory<unsigned char> utf8(raw);
  if (len < 0) return openssl_failure(Errc::invalid_request, "the CSR's CN is not valid text");
  return std::string(reinterpret_cast<const char*>(utf8.get()), static_cast<std::size_t>(len));
}

}  // namespace evpn::crypto
