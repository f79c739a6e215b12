#include "common/crypto/certificate.hpp"

#include "common/crypto/openssl_error.hpp"

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace evpn::crypto {

namespace {

TimePoint to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return from_unix(static_cast<long long>(timegm(&tm)));
}

std::string mem_bio_string(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace

Result<Certificate> Certificate::from_pem(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return openssl_failure(Errc::invalid_request, "not a PEM certificate");
  return Certificate(std::move(cert));
}

Result<Certificate> Certificate::from_der(std::string_view der) {
  auto p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return openssl_failure(Errc::invalid_request, "not a DER certificate");
  return Certificate(std::move(cert));
}

Certificate Certificate::clone() const {
  X509_up_ref(cert_.get());
  return Certificate(X509Ptr(cert_.get()));
}

std::string Certificate::to_pem() const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert_.get()) != 1)
    throw std::runtime_error("cannot serialise a certificate: " + drain_openssl_errors());
  return mem_bio_string(bio.get());
}

std::string Certificate::to_der() const {
  auto der = crypto::to_der(i2d_X509, cert_.get());
  if (!der) throw std::runtime_error("cannot encode a certificate: " + drain_openssl_errors());
  return std::move(*der);
}

std::string Certificate::fingerprint_sha256() const { return to_hex(sha256(to_der())); }

std::string Certificate::serial_hex() const {
  BigNum bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert_.get()), nullptr));
  const OpenSslMemory<char> hex(bn ? BN_bn2hex(bn.get()) : nullptr);
  if (!hex) return "";
  std::string out(hex.get());
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

TimePoint Certificate::not_before() const { return to_time_point(X509_get0_notBefore(cert_.get())); }
TimePoint Certificate::not_after() const { return to_time_point(X509_get0_notAfter(cert_.get())); }

std::string Certificate::common_name() const {
  X509_NAME* name = X509_get_subject_name(cert_.get());
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  unsigned char* raw = nullptr;
  const int len = ASN1_STRING_to_UTF8(&raw, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  const OpenSslMemory<unsigned char> utf8(raw);
  if (len < 0) return "";
  return std::string(reinterpret_cast<const char*>(utf8.get()), static_cast<std::size_t>(len));
}

std::vector<std::string> Certificate::xmpp_addrs() const {
  std::vector<std::string> out;
  GeneralNames names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert_.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  const ASN1_OBJECT* xmpp_oid = OBJ_nid2obj(NID_XmppAddr);
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_OTHERNAME || OBJ_cmp(gn->d.otherName->type_id, xmpp_oid) != 0) continue;
    const ASN1_TYPE* value = gn->d.otherName->value;
    if (value->type != V_ASN1_UTF8STRING) continue;
    const ASN1_STRING* s = value->value.utf8string;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

bool Certificate::is_ca() const {
  // The flags are computed from the extensions on first use; EXFLAG_CA is basicConstraints CA:TRUE.
  return (X509_get_extension_flags(cert_.get()) & EXFLAG_CA) != 0;
}

bool Certificate::matches(const Key& key) const {
  const ErrorQueueGuard clear;  // a mismatch is queued as an OpenSSL error
  return X509_check_private_key(cert_.get(), key.get()) == 1;
}

EVP_PKEY* Certificate::public_key() const noexcept { return X509_get0_pubkey(cert_.get()); }

Result<std::vector<Certificate>> parse_pem_bundle(std::string_view pem) {
  const ErrorQueueGuard clear;  // the loop ends on "no start line", which is not an error
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<Certificate> out;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(X509Ptr(raw));
  if (out.empty()) return fail(Errc::invalid_request, "no PEM certificate found");
  return out;
}

namespace {
// sk_X509_free is a macro; the stack borrows its certificates, so they are not freed with it.
void free_stack(STACK_OF(X509)* stack) noexcept { sk_X509_free(stack); }
using X509Stack = Handle<STACK_OF(X509), free_stack>;
}  // namespace

Result<void> verify_chain(const Certificate& leaf, const std::vector<Certificate>& roots, TimePoint at,
                          int purpose, const std::vector<Certificate>& intermediates) {
  X509Store store(X509_STORE_new());
  X509StoreCtx ctx(X509_STORE_CTX_new());
  X509Stack untrusted(sk_X509_new_null());
  if (!store || !ctx || !untrusted) return openssl_failure(Errc::internal, "cannot set up certificate verification");
  for (const auto& root : roots)
    if (X509_STORE_add_cert(store.get(), root.get()) != 1)
      return openssl_failure(Errc::internal, "cannot add a trust anchor");
  for (const auto& cert : intermediates)
    if (sk_X509_push(untrusted.get(), cert.get()) <= 0)
      return openssl_failure(Errc::internal, "cannot add an intermediate certificate");
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1)
    return openssl_failure(Errc::internal, "cannot set up certificate verification");
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(to_unix(at)));
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  if (X509_verify_cert(ctx.get()) != 1) {
    const ErrorQueueGuard clear;  // the verification error is the answer, in the detail below
    return fail(Errc::unauthorized, std::string("certificate does not verify against the trusted root: ") +
                                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  return {};
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string to_base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string sha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed: " + drain_openssl_errors());
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("the random number generator failed: " + drain_openssl_errors());
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace evpn::crypto
