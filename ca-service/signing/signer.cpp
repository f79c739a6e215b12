#include "ca-service/signing/signer.hpp"

#include "common/crypto/openssl_error.hpp"
#include "common/protocol/lifetime.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>

#include <algorithm>
#include <cctype>


namespace evpn::ca::signing {

using namespace evpn::crypto;

namespace {

// Devices without a real-time clock may be a few minutes behind.
constexpr std::chrono::seconds root_lifetime{10LL * 365 * 86400};

Error build_failure(const char* what) { return openssl_failure(Errc::internal, std::string("cannot ") + what); }

// Puts `key` into the certificate as its subjectPublicKeyInfo, for a certificate that is only
// encoded afterwards. X509_set_pubkey would encode the key and decode it again through OpenSSL
// 3.0's provider encoders and decoders, which costs more than signing the certificate (about
// 150 us for P-256 on the 2-core machine of the README's Performance figures); an EC key on a named curve is written from its curve
// and point instead. The certificate then has no decoded key: OpenSSL cannot verify it as it is.
Result<void> set_public_key(X509* cert, EVP_PKEY* key) {
  char curve[64] = {};
  unsigned char point[160] = {};  // an uncompressed P-521 point takes 133 bytes
  std::size_t point_size = 0;
  const int curve_nid = [&] {
    const ErrorQueueGuard clear;  // a key that is not on a named curve takes the general path below
    return EVP_PKEY_is_a(key, "EC") &&
                   EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve, nullptr) ==
                       1 &&
                   EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &point_size) == 1
               ? OBJ_sn2nid(curve)
               : NID_undef;
  }();
  if (curve_nid == NID_undef) {
    if (X509_set_pubkey(cert, key) != 1) return build_failure("set the certificate's public key");
    return {};
  }
  OpenSslMemory<unsigned char> bits(static_cast<unsigned char*>(OPENSSL_memdup(point, point_size)));
  if (!bits || X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                      V_ASN1_OBJECT, OBJ_nid2obj(curve_nid), bits.get(),
                                      static_cast<int>(point_size)) != 1)
    return build_failure("set the certificate's public key");
  bits.release();  // the certificate's key owns it now
  return {};
}

// A new certificate with a random positive 128-bit serial, validity [now - 5 min, now + lifetime],
// subject CN=<cn> and issuer `issuer` (nullptr: self); the caller sets the public key.
Result<X509Ptr> new_certificate(const std::string& cn, const X509* issuer, std::chrono::seconds lifetime,
                                TimePoint now) {
  X509Ptr cert(X509_new());
  X509Name subject(X509_NAME_new());
  const std::string serial_bytes = random_bytes(16);
  BigNum serial(BN_bin2bn(reinterpret_cast<const unsigned char*>(serial_bytes.data()), 16, nullptr));
  if (!cert || !subject || !serial || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) ||
      X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()),
                                 -1, 0) != 1 ||
      X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject.get()) != 1 ||
      !ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(to_unix(now - protocol::issuance_backdate))) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(to_unix(now + lifetime))))
    return build_failure("build a certificate");
  return cert;
}

// Adds an extension given in OpenSSL's configuration syntax, e.g. "critical,CA:FALSE".
Result<void> add_extension(X509* cert, const X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, const_cast<X509*>(issuer ? issuer : cert), cert, nullptr, nullptr, 0);
  X509Ext ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return build_failure("add a certificate extension");
  return {};
}

Result<void> add_extensions(X509* cert, const X509* issuer,
                            std::initializer_list<std::pair<int, const char*>> extensions) {
  for (const auto& [nid, value] : extensions)
    if (auto r = add_extension(cert, issuer, nid, value); !r) return r;
  return {};
}

// Builds the subjectAltName from GENERAL_NAMEs directly rather than from configuration text,
// so that no name can inject extra entries.
Result<void> add_subject_alt_names(X509* cert, GENERAL_NAMES* names) {
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1)
    return build_failure("add the subjectAltName");
  return {};
}

Result<void> push_name(GENERAL_NAMES* names, GeneralName name) {
  if (!name || !sk_GENERAL_NAME_push(names, name.get())) return build_failure("build a subjectAltName entry");
  name.release();  // the stack owns it now
  return {};
}

// Each part is owned by a handle until the part that takes it over (the set0 and set calls) has it.
GeneralName xmpp_addr_name(const std::string& jid) {
  GeneralName gn(GENERAL_NAME_new());
  Asn1Type value(ASN1_TYPE_new());
  Asn1Utf8String text(ASN1_UTF8STRING_new());
  if (!gn || !value || !text || ASN1_STRING_set(text.get(), jid.data(), static_cast<int>(jid.size())) != 1)
    return nullptr;
  ASN1_TYPE_set(value.get(), V_ASN1_UTF8STRING, text.release());
  if (GENERAL_NAME_set0_othername(gn.get(), OBJ_nid2obj(NID_XmppAddr), value.get()) != 1) return nullptr;
  value.release();
  return gn;
}

GeneralName dns_or_ip_name(const std::string& name) {
  GeneralName gn(GENERAL_NAME_new());
  if (!gn) return nullptr;
  Asn1OctetString ip = [&] {
    const ErrorQueueGuard clear;  // a name that is no IP address is a DNS name, not an error
    return Asn1OctetString(a2i_IPADDRESS(name.c_str()));
  }();
  if (ip) {
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, ip.release());
    return gn;
  }
  Asn1Ia5String dns(ASN1_IA5STRING_new());
  if (!dns || ASN1_STRING_set(dns.get(), name.data(), static_cast<int>(name.size())) != 1) return nullptr;
  GENERAL_NAME_set0_value(gn.get(), GEN_DNS, dns.release());
  return gn;
}

using X509Crl = Handle<X509_CRL, X509_CRL_free>;
using X509Revoked = Handle<X509_REVOKED, X509_REVOKED_free>;
using Asn1Enumerated = Handle<ASN1_ENUMERATED, ASN1_ENUMERATED_free>;

Asn1Time asn1_time(TimePoint t) { return Asn1Time(ASN1_TIME_set(nullptr, static_cast<time_t>(to_unix(t)))); }

Result<Asn1Integer> serial_from_hex(const std::string& hex) {
  const auto is_hex = [](unsigned char c) { return std::isxdigit(c) != 0; };
  if (hex.empty() || hex.size() > 40 || !std::all_of(hex.begin(), hex.end(), is_hex))
    return fail(Errc::invalid_request, "'" + hex + "' is not a certificate serial (1-40 hexadecimal digits)");
  BIGNUM* parsed = nullptr;
  BN_hex2bn(&parsed, hex.c_str());
  BigNum value(parsed);
  Asn1Integer serial(value ? BN_to_ASN1_INTEGER(value.get(), nullptr) : nullptr);
  if (!serial) return build_failure("encode a certificate serial");
  return serial;
}

// One CRL entry: serial, revocation date and, unless it is "unspecified", the reason code.
Result<X509Revoked> crl_entry(const RevokedCertificate& revoked) {
  auto code = revocation_reason_code(revoked.reason);
  if (!code) return code.error();
  auto serial = serial_from_hex(revoked.serial);
  if (!serial) return serial.error();
  X509Revoked entry(X509_REVOKED_new());
  Asn1Time date = asn1_time(revoked.revoked_at);
  if (!entry || !date || X509_REVOKED_set_serialNumber(entry.get(), serial->get()) != 1 ||
      X509_REVOKED_set_revocationDate(entry.get(), date.get()) != 1)
    return build_failure("build a CRL entry");
  if (*code == 0) return entry;
  Asn1Enumerated reason(ASN1_ENUMERATED_new());
  if (!reason || ASN1_ENUMERATED_set(reason.get(), *code) != 1 ||
      X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, reason.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return build_failure("add a CRL entry's reason code");
  return entry;
}

Result<X509Ptr> sign_with(X509Ptr cert, const Key& key) {
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return build_failure("sign a certificate");
  return cert;
}

// An extension given in OpenSSL's configuration syntax, for a certificate issued by `issuer`.
X509Ext make_extension(const X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, const_cast<X509*>(issuer), nullptr, nullptr, nullptr, 0);
  X509Ext ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext) throw std::runtime_error("cannot build a certificate extension: " + drain_openssl_errors());
  return ext;
}

// The subjectKeyIdentifier of RFC 5280 4.2.1.2 method (1), as OpenSSL's "hash" computes it: the
// SHA-1 of the subjectPublicKey bits.
Result<void> add_subject_key_id(X509* cert, const EVP_MD* sha1) {
  const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Asn1OctetString id(ASN1_OCTET_STRING_new());
  if (!bits || !id || EVP_Digest(ASN1_STRING_get0_data(bits), static_cast<std::size_t>(ASN1_STRING_length(bits)), digest,
                                 &size, sha1, nullptr) != 1 ||
      ASN1_OCTET_STRING_set(id.get(), digest, static_cast<int>(size)) != 1 ||
      X509_add1_ext_i2d(cert, NID_subject_key_identifier, id.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return build_failure("add the subjectKeyIdentifier");
  return {};
}

// A new certificate (see new_certificate) that OpenSSL can verify and use as it is: root and
// server certificates are made rarely, and used as X509 objects.
Result<X509Ptr> new_decoded_certificate(const std::string& cn, const X509* issuer, EVP_PKEY* key,
                                        std::chrono::seconds lifetime, TimePoint now) {
  auto cert = new_certificate(cn, issuer, lifetime, now);
  if (cert && X509_set_pubkey(cert->get(), key) != 1) return build_failure("set the certificate's public key");
  return cert;
}

}  // namespace

Signer::Signer(Key ca_key, Certificate root)
    : key_(std::move(ca_key)),
      root_(std::move(root)),
      sign_template_(EVP_MD_CTX_new()),
      sha1_(EVP_MD_fetch(nullptr, "SHA1", nullptr)),
      leaf_{make_extension(root_.get(), NID_basic_constraints, "critical,CA:FALSE"),
            make_extension(root_.get(), NID_key_usage, "critical,digitalSignature"),
            // keyEncipherment only means something for RSA key transport.
            make_extension(root_.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment"),
            make_extension(root_.get(), NID_ext_key_usage, "clientAuth"),
            make_extension(root_.get(), NID_ext_key_usage, "serverAuth"),
            make_extension(root_.get(), NID_authority_key_identifier, "keyid:always")} {
  if (!sign_template_ || !sha1_ ||
      EVP_DigestSignInit_ex(sign_template_.get(), nullptr, "SHA256", nullptr, nullptr, key_.get(), nullptr) != 1)
    throw std::runtime_error("cannot prepare signing with the CA key: " + drain_openssl_errors());
}

Result<X509Ptr> Signer::sign(X509Ptr cert) const {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_MD_CTX_copy_ex(ctx.get(), sign_template_.get()) != 1 || X509_sign_ctx(cert.get(), ctx.get()) <= 0)
    return build_failure("sign a certificate");
  return cert;
}

Result<Certificate> Signer::create_root(const Key& ca_key, const std::string& common_name, TimePoint now) {
  auto cert = new_decoded_certificate(common_name, nullptr, ca_key.get(), root_lifetime, now);
  if (!cert) return cert.error();
  if (auto r = add_extensions(cert->get(), nullptr,
                              {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                               {NID_key_usage, "critical,keyCertSign,cRLSign"},
                               {NID_subject_key_identifier, "hash"}});
      !r)
    return r.error();
  auto root = sign_with(std::move(*cert), ca_key);
  if (!root) return root.error();
  return Certificate(std::move(*root));
}

Result<X509Ptr> Signer::issue_leaf(X509Ptr cert, EVP_PKEY* subject_key, const X509_EXTENSION* extended_key_usage,
                                   GENERAL_NAMES* alt_names) const {
  const X509_EXTENSION* key_usage = EVP_PKEY_is_a(subject_key, "RSA") ? leaf_.key_usage_rsa.get() : leaf_.key_usage.get();
  for (const X509_EXTENSION* ext : std::initializer_list<const X509_EXTENSION*>{leaf_.ca_false.get(), key_usage,
                                                                                 extended_key_usage})
    if (X509_add_ext(cert.get(), const_cast<X509_EXTENSION*>(ext), -1) != 1)
      return build_failure("add a certificate extension");
  if (auto r = add_subject_key_id(cert.get(), sha1_.get()); !r) return r.error();
  if (X509_add_ext(cert.get(), leaf_.authority_key_id.get(), -1) != 1)
    return build_failure("add the authorityKeyIdentifier");
  if (auto r = add_subject_alt_names(cert.get(), alt_names); !r) return r.error();
  return sign(std::move(cert));
}

Result<IssuedCertificate> Signer::issue_node(EVP_PKEY* subject_key, const NodeProfile& profile, TimePoint now) const {
  GeneralNames names(sk_GENERAL_NAME_new_null());
  if (!names) return build_failure("build the subjectAltName");
  if (auto r = push_name(names.get(), xmpp_addr_name(profile.username + "@" + profile.xmpp_domain)); !r)
    return r.error();
  auto cert = new_certificate(profile.username, root_.get(), profile.lifetime, now);
  if (!cert) return cert.error();
  if (auto r = set_public_key(cert->get(), subject_key); !r) return r.error();
  auto issued = issue_leaf(std::move(*cert), subject_key, leaf_.client_auth.get(), names.get());
  if (!issued) return issued.error();
  // Only fields that need no key are read from it.
  const Certificate leaf(std::move(*issued));
  return IssuedCertificate{leaf.to_pem(), leaf.serial_hex(), leaf.not_before(), leaf.not_after()};
}

Result<Certificate> Signer::issue_server(EVP_PKEY* subject_key, const std::vector<std::string>& names,
                                         std::chrono::seconds lifetime, TimePoint now) const {
  if (names.empty()) return fail(Errc::invalid_request, "a server certificate needs at least one name");
  GeneralNames sans(sk_GENERAL_NAME_new_null());
  if (!sans) return build_failure("build the subjectAltName");
  for (const auto& name : names)
    if (auto r = push_name(sans.get(), dns_or_ip_name(name)); !r) return r.error();
  auto cert = new_decoded_certificate(names.front(), root_.get(), subject_key, lifetime, now);
  if (!cert) return cert.error();
  auto issued = issue_leaf(std::move(*cert), subject_key, leaf_.server_auth.get(), sans.get());
  if (!issued) return issued.error();
  return Certificate(std::move(*issued));
}

Result<int> revocation_reason_code(std::string_view name) {
  std::string names;
  for (const auto& reason : revocation_reasons) {
    if (reason.name == name) return reason.code;
    names += (names.empty() ? "" : ", ") + std::string(reason.name);
  }
  return fail(Errc::invalid_request, "unknown revocation reason '" + std::string(name) + "': use one of " + names);
}

Result<std::string> Signer::make_crl(const std::vector<RevokedCertificate>& revoked, std::int64_t number,
                                     TimePoint now, std::chrono::seconds validity) const {
  X509Crl crl(X509_CRL_new());
  Asn1Time this_update = asn1_time(now);
  Asn1Time next_update = asn1_time(now + validity);
  Asn1Integer crl_number(ASN1_INTEGER_new());
  if (!crl || !this_update || !next_update || !crl_number || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(root_.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1 ||
      ASN1_INTEGER_set_int64(crl_number.get(), number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crl_number.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return build_failure("build a CRL");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, root_.get(), nullptr, nullptr, crl.get(), 0);
  X509Ext aki(X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1) return build_failure("add the CRL's authority key id");
  for (const auto& certificate : revoked) {
    auto entry = crl_entry(certificate);
    if (!entry) return entry.error();
    if (X509_CRL_add0_revoked(crl.get(), entry->get()) != 1) return build_failure("add a CRL entry");
    entry->release();  // the CRL owns it now
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), key_.get(), EVP_sha256()) <= 0)
    return build_failure("sign the CRL");
  auto der = to_der(i2d_X509_CRL, crl.get());
  if (!der) return build_failure("encode the CRL");
  return std::move(*der);
}

}  // namespace evpn::ca::signing
