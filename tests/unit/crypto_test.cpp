#include "ca-service/signing/signer.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/csr.hpp"
#include "common/crypto/key.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <chrono>
#include <set>
#include <string>
#include <vector>

using namespace evpn;
using namespace evpn::crypto;
using evpn::ca::signing::NodeProfile;
using evpn::ca::signing::Signer;
using evpn::test::ok;

namespace {

using Eku = Handle<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using BasicConstraints = Handle<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;

const TimePoint fixed_now = from_unix(1767225600);  // 2026-01-01T00:00:00Z
constexpr std::chrono::seconds node_lifetime{30 * 86400};

template <class T>
void check_refused(const Result<T>& r, Errc code, const std::string& detail_part) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == code);
  INFO(r.error().detail);
  CHECK(r.error().detail.find(detail_part) != std::string::npos);
}

template <class T>
void check_invalid(const Result<T>& r) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::invalid_request);
  CHECK_FALSE(r.error().detail.empty());
}

PKey raw_key(const char* type, const char* curve) { return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve)); }
PKey raw_rsa_key(std::size_t bits) { return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits)); }

// The public half of `key` with its exponent replaced by `e` (for exponents that no key pair can
// have, such as even ones).
PKey rsa_public_key_with_exponent(const Key& key, unsigned long e) {
  BIGNUM* n = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n) == 1);
  BigNum modulus(n);
  BigNum exponent(BN_new());
  REQUIRE((exponent && BN_set_word(exponent.get(), e) == 1));
  Handle<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free> build(OSSL_PARAM_BLD_new());
  REQUIRE((build && OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) == 1 &&
           OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) == 1));
  Handle<OSSL_PARAM, OSSL_PARAM_free> params(OSSL_PARAM_BLD_to_param(build.get()));
  PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* out = nullptr;
  REQUIRE((params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
           EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) == 1));
  return PKey(out);
}

Signer make_signer(const std::string& cn = "evpn unit root") {
  auto key = ok(Key::generate(KeyType::ec_p256));
  auto root = ok(Signer::create_root(key, cn, fixed_now));
  return Signer(std::move(key), std::move(root));
}

struct Issued {
  Key key;
  Certificate cert;
};

// A node certificate of `signer` for a new key, parsed back from what the signer issued.
Certificate issue_for(const Signer& signer, const Key& key, const NodeProfile& profile) {
  return ok(Certificate::from_pem(ok(signer.issue_node(key.get(), profile, fixed_now)).pem));
}

Issued issue_node(const Signer& signer, KeyType type = KeyType::ec_p256) {
  auto key = ok(Key::generate(type));
  auto cert = issue_for(signer, key, NodeProfile{"node1", "evpn.test", node_lifetime});
  return {std::move(key), std::move(cert)};
}

// The one extension of `nid` in `cert` (fails the test when there is none or more than one).
X509_EXTENSION* only_extension(const Certificate& cert, int nid) {
  const int index = X509_get_ext_by_NID(cert.get(), nid, -1);
  REQUIRE(index >= 0);
  CHECK(X509_get_ext_by_NID(cert.get(), nid, index) < 0);
  return X509_get_ext(cert.get(), index);
}

GeneralNames subject_alt_names(const Certificate& cert) {
  GeneralNames names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  REQUIRE(names);
  return names;
}

// The NIDs of the extendedKeyUsage purposes, in order.
std::vector<int> extended_key_usages(const Certificate& cert) {
  Eku eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert.get(), NID_ext_key_usage, nullptr, nullptr)));
  REQUIRE(eku);
  std::vector<int> out;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) out.push_back(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)));
  return out;
}

bool is_ca(const Certificate& cert) {
  BasicConstraints bc(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert.get(), NID_basic_constraints, nullptr, nullptr)));
  REQUIRE(bc);
  return bc->ca != 0;
}

std::string string_of(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

// The DER of an X509_REQ built with OpenSSL directly (for requests Csr::create cannot make).
std::string der_of(X509_REQ* req) {
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req, &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

// PEM-armours DER bytes without parsing them, so damaged DER stays damaged.
std::string pem_armour(const char* label, const std::string& der) {
  Bio bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio(bio.get(), label, "", reinterpret_cast<const unsigned char*>(der.data()),
                        static_cast<long>(der.size())) > 0);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// A CSR signed by `key` whose subject is O=evpn followed by one CN entry per element of `cns`.
Csr csr_with_cns(const Key& key, const std::vector<std::string>& cns) {
  X509Req req(X509_REQ_new());
  X509Name name(X509_NAME_new());
  REQUIRE(X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("evpn"),
                                     -1, -1, 0) == 1);
  for (const auto& cn : cns)
    REQUIRE(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) == 1);
  REQUIRE(X509_REQ_set_subject_name(req.get(), name.get()) == 1);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
  REQUIRE(X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0);
  return ok(Csr::from_der(der_of(req.get())));
}

// A trust store holding a fresh copy of `root`, as a relying party would parse it.
std::vector<Certificate> trusting(const Certificate& root) {
  std::vector<Certificate> roots;
  roots.push_back(ok(Certificate::from_der(root.to_der())));
  return roots;
}

bool is_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); });
}

}  // namespace

TEST_CASE("Key::generate makes EC P-256, RSA 2048 and RSA 3072 keys") {
  auto ec = ok(Key::generate(KeyType::ec_p256));
  CHECK(EVP_PKEY_is_a(ec.get(), "EC"));
  char curve[32] = {};
  REQUIRE(EVP_PKEY_get_utf8_string_param(ec.get(), "group", curve, sizeof curve, nullptr) == 1);
  CHECK(std::string(curve) == "prime256v1");

  auto rsa2048 = ok(Key::generate(KeyType::rsa_2048));
  CHECK(EVP_PKEY_is_a(rsa2048.get(), "RSA"));
  CHECK(EVP_PKEY_get_bits(rsa2048.get()) == 2048);

  auto rsa3072 = ok(Key::generate(KeyType::rsa_3072));
  CHECK(EVP_PKEY_is_a(rsa3072.get(), "RSA"));
  CHECK(EVP_PKEY_get_bits(rsa3072.get()) == 3072);

  auto other = ok(Key::generate(KeyType::ec_p256));
  CHECK(other.public_der() != ec.public_der());
}

TEST_CASE("a key survives to_pem and from_pem as unencrypted PKCS#8") {
  for (KeyType type : {KeyType::ec_p256, KeyType::rsa_2048}) {
    INFO(to_string(type));
    auto key = ok(Key::generate(type));
    const std::string pem = key.to_pem();
    CHECK(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
    CHECK(pem.find("ENCRYPTED") == std::string::npos);
    auto back = ok(Key::from_pem(pem));
    CHECK(EVP_PKEY_eq(back.get(), key.get()) == 1);
    CHECK(back.public_der() == key.public_der());
    CHECK(back.to_pem() == pem);
  }
}

TEST_CASE("Key::from_pem refuses text that is not a PEM private key") {
  auto cert_pem = make_signer().root().to_pem();
  for (const std::string& text : {std::string(), std::string("garbage"), cert_pem,
                                  std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}) {
    INFO(text);
    check_invalid(Key::from_pem(text));
  }
}

TEST_CASE("parse_key_type reads the three key type names and refuses others") {
  for (KeyType type : {KeyType::ec_p256, KeyType::rsa_2048, KeyType::rsa_3072})
    CHECK(ok(parse_key_type(to_string(type))) == type);
  CHECK(std::string(to_string(KeyType::ec_p256)) == "ec-p256");
  CHECK(std::string(to_string(KeyType::rsa_2048)) == "rsa-2048");
  CHECK(std::string(to_string(KeyType::rsa_3072)) == "rsa-3072");
  for (const char* name : {"", "ec-p384", "EC-P256", "rsa-1024", "rsa-4096", "ed25519", "ec-p256 "}) {
    auto r = parse_key_type(name);
    INFO('"' << name << '"');
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == Errc::invalid_request);
    CHECK(r.error().detail.find("ec-p256, rsa-2048 or rsa-3072") != std::string::npos);
  }
}

TEST_CASE("check_key_policy accepts EC P-256 and P-384 and RSA keys of 2048, 3072 and 4096 bits") {
  CHECK(check_key_policy(raw_key("EC", "P-256").get()).has_value());
  CHECK(check_key_policy(raw_key("EC", "P-384").get()).has_value());
  for (std::size_t bits : {2048, 3072, 4096}) {
    INFO(bits);
    CHECK(check_key_policy(raw_rsa_key(bits).get()).has_value());
  }
}

TEST_CASE("check_key_policy refuses RSA 1024, Ed25519 and P-521 keys and says why") {
  check_refused(check_key_policy(raw_rsa_key(1024).get()), Errc::invalid_request, "this one has 1024");
  check_refused(check_key_policy(raw_key("ED25519", nullptr).get()), Errc::invalid_request,
                "unsupported key algorithm ED25519");
  check_refused(check_key_policy(raw_key("EC", "P-521").get()), Errc::invalid_request,
                "P-256 or P-384, not secp521r1");
}

TEST_CASE("check_key_policy accepts RSA keys whose public exponent is 65537 or a larger odd number") {
  for (unsigned long e : {65537ul, 65539ul}) {
    INFO(e);
    CHECK(check_key_policy(evpn::test::rsa_key_with_exponent(e).get()).has_value());
  }
}

TEST_CASE("check_key_policy refuses RSA public exponents below 65537 or even, and says which it got") {
  const Key e3 = evpn::test::rsa_key_with_exponent(3);
  check_refused(check_key_policy(e3.get()), Errc::invalid_request, "public exponent 3");
  check_refused(check_key_policy(evpn::test::rsa_key_with_exponent(17).get()), Errc::invalid_request,
                "public exponent 17");
  check_refused(check_key_policy(rsa_public_key_with_exponent(e3, 65538).get()), Errc::invalid_request,
                "public exponent 65538");
}

TEST_CASE("check_key_policy refuses a key that could not be read") {
  check_refused(check_key_policy(nullptr), Errc::invalid_request, "public key cannot be read");
}

TEST_CASE("check_key_policy judges the public key of a parsed CSR") {
  Key p384(raw_key("EC", "P-384"));
  Key p521(raw_key("EC", "P-521"));
  auto good = ok(Csr::from_pem(ok(Csr::create(p384, "node1")).to_pem()));
  auto bad = ok(Csr::from_pem(ok(Csr::create(p521, "node1")).to_pem()));
  CHECK(check_key_policy(good.public_key()).has_value());
  check_refused(check_key_policy(bad.public_key()), Errc::invalid_request, "secp521r1");
}

TEST_CASE("a CSR whose EC point is not on its curve has no public key, and the key policy says so") {
  for (const char* curve : {"P-256", "P-384"}) {
    INFO(curve);
    Key key(raw_key("EC", curve));
    std::string der = ok(Csr::create(key, "node1")).der();
    unsigned char point[100];
    std::size_t size = 0;
    REQUIRE(EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &size) == 1);
    const auto at = der.find(std::string(reinterpret_cast<const char*>(point), size));
    REQUIRE(at != std::string::npos);
    der[at + size - 1] = static_cast<char>(der[at + size - 1] ^ 0x01);  // y + 1 or y - 1: off the curve

    auto csr = ok(Csr::from_der(der));
    CHECK(csr.public_key() == nullptr);
    check_refused(check_key_policy(csr.public_key()), Errc::invalid_request, "public key cannot be read");
  }
}

TEST_CASE("a CSR survives to_pem and from_pem with its CN, public key and valid signature") {
  for (KeyType type : {KeyType::ec_p256, KeyType::rsa_2048}) {
    INFO(to_string(type));
    auto key = ok(Key::generate(type));
    auto created = ok(Csr::create(key, "node1"));
    const std::string pem = created.to_pem();
    CHECK(pem.rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0) == 0);
    auto csr = ok(Csr::from_pem(pem));
    CHECK(ok(csr.common_name()) == "node1");
    CHECK(csr.verify_signature().has_value());
    CHECK(EVP_PKEY_eq(csr.public_key(), key.get()) == 1);
    CHECK(csr.to_pem() == pem);
  }
}

TEST_CASE("Csr::from_der refuses bytes after the request and versions other than 1") {
  auto key = ok(Key::generate(KeyType::ec_p256));
  const std::string der = ok(Csr::create(key, "node1")).der();
  check_refused(Csr::from_der(der + std::string(1, '\0')), Errc::invalid_request, "not one DER PKCS#10 certificate request");

  X509Req req(X509_REQ_new());
  REQUIRE(X509_REQ_set_version(req.get(), 1) == 1);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key.get()) == 1);
  REQUIRE(X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0);
  check_refused(Csr::from_der(der_of(req.get())), Errc::invalid_request, "version 1");
}

TEST_CASE("an EC key keeps its curve and point encoding from the CSR into the node certificate") {
  auto signer = make_signer();
  for (const char* curve : {"P-256", "P-384"}) {
    for (const char* format : {"uncompressed", "compressed"}) {
      INFO(curve << " " << format);
      PKey raw = raw_key("EC", curve);
      REQUIRE(EVP_PKEY_set_utf8_string_param(raw.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format) == 1);
      Key key(std::move(raw));
      auto csr = ok(Csr::from_pem(ok(Csr::create(key, "node1")).to_pem()));
      CHECK(csr.verify_signature().has_value());
      CHECK(EVP_PKEY_eq(csr.public_key(), key.get()) == 1);
      auto cert = issue_for(signer, key, NodeProfile{"node1", "evpn.test", node_lifetime});
      CHECK(cert.matches(key));
      // The certificate's subjectPublicKeyInfo is the CSR's: same algorithm, same point bytes.
      const auto* p = reinterpret_cast<const unsigned char*>(csr.der().data());
      X509Req parsed(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr.der().size())));
      REQUIRE(parsed);
      CHECK(X509_PUBKEY_eq(X509_get_X509_PUBKEY(cert.get()), X509_REQ_get_X509_PUBKEY(parsed.get())) == 1);
    }
  }
}

TEST_CASE("a CSR with an SM2 key yields the key that OpenSSL's own CSR decoder reads") {
  Key sm2(raw_key("SM2", nullptr));
  X509Req req(X509_REQ_new());
  REQUIRE(X509_REQ_set_pubkey(req.get(), sm2.get()) == 1);
  REQUIRE(X509_REQ_sign(req.get(), sm2.get(), EVP_sm3()) > 0);
  const std::string der = der_of(req.get());
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Req openssl(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(X509_REQ_get0_pubkey(openssl.get()));

  auto csr = ok(Csr::from_der(der));
  REQUIRE(csr.public_key());
  CHECK(EVP_PKEY_eq(csr.public_key(), X509_REQ_get0_pubkey(openssl.get())) == 1);
  check_refused(check_key_policy(csr.public_key()), Errc::invalid_request, "unsupported key algorithm SM2");
}

TEST_CASE("a CSR keeps a UTF-8 common name intact") {
  auto key = ok(Key::generate(KeyType::ec_p256));
  auto csr = ok(Csr::from_pem(ok(Csr::create(key, "n\xC3\xB6" "de")).to_pem()));
  CHECK(ok(csr.common_name()) == "n\xC3\xB6" "de");
}

TEST_CASE("a CSR whose signature bytes were altered fails verify_signature") {
  auto key = ok(Key::generate(KeyType::ec_p256));
  std::string der = ok(Csr::create(key, "node1")).der();
  // The DER ends with the signature BIT STRING, so the last byte belongs to the signature.
  der.back() = static_cast<char>(der.back() ^ 0x01);
  auto csr = ok(Csr::from_pem(pem_armour("CERTIFICATE REQUEST", der)));
  CHECK(ok(csr.common_name()) == "node1");
  check_refused(csr.verify_signature(), Errc::invalid_request, "signature does not verify");
}

TEST_CASE("a CSR whose subject was changed after signing fails verify_signature") {
  auto key = ok(Key::generate(KeyType::ec_p256));
  auto signed_der = ok(Csr::create(key, "node1")).der();
  const auto* p = reinterpret_cast<const unsigned char*>(signed_der.data());
  X509Req req(d2i_X509_REQ(nullptr, &p, static_cast<long>(signed_der.size())));
  REQUIRE(req);
  X509Name admin(X509_NAME_new());
  REQUIRE(X509_NAME_add_entry_by_txt(admin.get(), "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("admin"),
                                     -1, -1, 0) == 1);
  REQUIRE(X509_REQ_set_subject_name(req.get(), admin.get()) == 1);
  auto altered = ok(Csr::from_pem(pem_armour("CERTIFICATE REQUEST", der_of(req.get()))));
  CHECK(ok(altered.common_name()) == "admin");
  check_refused(altered.verify_signature(), Errc::invalid_request, "signature does not verify");
}

TEST_CASE("Csr::from_pem refuses garbage, empty text, a certificate and a private key") {
  auto signer = make_signer();
  auto key = ok(Key::generate(KeyType::ec_p256));
  const std::string csr_pem = ok(Csr::create(key, "node1")).to_pem();
  const std::string truncated = csr_pem.substr(0, csr_pem.size() / 2) + "-----END CERTIFICATE REQUEST-----\n";
  for (const std::string& text : {std::string(), std::string("garbage"), signer.root().to_pem(), key.to_pem(),
                                  truncated, pem_armour("CERTIFICATE REQUEST", "not DER")}) {
    INFO(text);
    auto r = Csr::from_pem(text);
    check_invalid(r);
    if (!r.has_value()) CHECK(r.error().detail.find("CERTIFICATE REQUEST") != std::string::npos);
  }
  check_invalid(Csr::from_pem(std::string_view()));
}

TEST_CASE("Csr::common_name refuses a subject with two CNs or none, although the signature holds") {
  auto key = ok(Key::generate(KeyType::ec_p256));

  auto two = csr_with_cns(key, {"node1", "admin"});
  CHECK(two.verify_signature().has_value());
  auto two_cn = two.common_name();
  check_invalid(two_cn);
  CHECK(two_cn.error().detail.find("more than one CN") != std::string::npos);

  auto none = csr_with_cns(key, {});
  CHECK(none.verify_signature().has_value());
  auto no_cn = none.common_name();
  check_invalid(no_cn);
  CHECK(no_cn.error().detail.find("no CN") != std::string::npos);

  CHECK(ok(csr_with_cns(key, {"node1"}).common_name()) == "node1");
}

TEST_CASE("a node certificate's subject is CN=<username> and its only SAN is the xmppAddr <username>@<domain>") {
  auto signer = make_signer();
  auto node = issue_node(signer);

  CHECK(node.cert.common_name() == "node1");
  CHECK(X509_NAME_entry_count(X509_get_subject_name(node.cert.get())) == 1);
  CHECK(node.cert.xmpp_addrs() == std::vector<std::string>{"node1@evpn.test"});

  auto names = subject_alt_names(node.cert);
  REQUIRE(sk_GENERAL_NAME_num(names.get()) == 1);
  const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), 0);
  REQUIRE(gn->type == GEN_OTHERNAME);
  char oid[64] = {};
  OBJ_obj2txt(oid, sizeof oid, gn->d.otherName->type_id, 1);
  CHECK(std::string(oid) == "1.3.6.1.5.5.7.8.5");
  REQUIRE(gn->d.otherName->value->type == V_ASN1_UTF8STRING);
  CHECK(string_of(gn->d.otherName->value->value.utf8string) == "node1@evpn.test");
}

TEST_CASE("a node certificate carries no DNS, URI or IP SANs") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  auto names = subject_alt_names(node.cert);
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const int type = sk_GENERAL_NAME_value(names.get(), i)->type;
    CHECK(type != GEN_DNS);
    CHECK(type != GEN_URI);
    CHECK(type != GEN_IPADD);
    CHECK(type != GEN_EMAIL);
  }
  // Without DNS SANs a TLS client can only match the CN, which OpenSSL's strict mode ignores.
  CHECK(X509_check_host(node.cert.get(), "node1", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) != 1);
}

TEST_CASE("a node certificate's subjectAltName is encoded exactly like the reference for node1@evpn.test") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  X509_EXTENSION* san = only_extension(node.cert, NID_subject_alt_name);
  CHECK(X509_EXTENSION_get_critical(san) == 0);
  CHECK(to_hex(string_of(X509_EXTENSION_get_data(san))) ==
        "301fa01d06082b06010505070805a0110c0f6e6f646531406576706e2e74657374");
}

TEST_CASE("a node certificate is for client authentication only") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  only_extension(node.cert, NID_ext_key_usage);
  CHECK(extended_key_usages(node.cert) == std::vector<int>{NID_client_auth});
}

TEST_CASE("a node certificate's keyUsage is critical digitalSignature, plus keyEncipherment for RSA keys") {
  auto signer = make_signer();
  auto ec = issue_node(signer, KeyType::ec_p256);
  CHECK(X509_EXTENSION_get_critical(only_extension(ec.cert, NID_key_usage)) == 1);
  CHECK(X509_get_key_usage(ec.cert.get()) == KU_DIGITAL_SIGNATURE);

  auto rsa = issue_node(signer, KeyType::rsa_2048);
  CHECK(X509_EXTENSION_get_critical(only_extension(rsa.cert, NID_key_usage)) == 1);
  CHECK(X509_get_key_usage(rsa.cert.get()) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
}

TEST_CASE("a node certificate is not a CA: basicConstraints is critical CA:FALSE") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  CHECK(X509_EXTENSION_get_critical(only_extension(node.cert, NID_basic_constraints)) == 1);
  CHECK_FALSE(is_ca(node.cert));
  CHECK(X509_check_ca(node.cert.get()) == 0);
}

TEST_CASE("a node certificate has a subject key id and an authority key id equal to the root's") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  only_extension(node.cert, NID_subject_key_identifier);
  only_extension(node.cert, NID_authority_key_identifier);
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(node.cert.get());
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(node.cert.get());
  const ASN1_OCTET_STRING* root_ski = X509_get0_subject_key_id(signer.root().get());
  REQUIRE(ski);
  REQUIRE(aki);
  REQUIRE(root_ski);
  CHECK(ASN1_OCTET_STRING_cmp(aki, root_ski) == 0);
  CHECK(ASN1_OCTET_STRING_cmp(ski, root_ski) != 0);
}

TEST_CASE("a node certificate's subject key id is the SHA-1 of its public key bits (RFC 5280 method 1)") {
  auto signer = make_signer();
  for (KeyType type : {KeyType::ec_p256, KeyType::rsa_2048}) {
    auto node = issue_node(signer, type);
    const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(node.cert.get());
    REQUIRE(bits);
    unsigned char sha1[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    REQUIRE(EVP_Digest(ASN1_STRING_get0_data(bits), static_cast<std::size_t>(ASN1_STRING_length(bits)), sha1, &size,
                       EVP_sha1(), nullptr) == 1);
    const std::string expected(reinterpret_cast<const char*>(sha1), size);
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(node.cert.get());
    REQUIRE(ski);
    CHECK(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ski)), ASN1_STRING_length(ski)) == expected);
  }
}

TEST_CASE("node certificate serials are positive, 128 random bits and differ between issuances") {
  auto signer = make_signer();
  auto key = ok(Key::generate(KeyType::ec_p256));
  std::set<std::string> serials;
  int widest = 0;
  for (int i = 0; i < 8; ++i) {
    auto cert = issue_for(signer, key, NodeProfile{"node1", "evpn.test", node_lifetime});
    BigNum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
    REQUIRE(serial);
    CHECK_FALSE(BN_is_negative(serial.get()));
    CHECK_FALSE(BN_is_zero(serial.get()));
    const int bits = BN_num_bits(serial.get());
    // Random bits: a few leading zero bits are expected now and then, 32 of them never.
    CHECK(bits <= 128);
    CHECK(bits > 96);
    widest = std::max(widest, bits);
    serials.insert(cert.serial_hex());
  }
  CHECK(widest > 120);
  CHECK(serials.size() == 8);
}

TEST_CASE("a node certificate is an X.509 v3 certificate valid from five minutes before now for its lifetime") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  CHECK(X509_get_version(node.cert.get()) == X509_VERSION_3);
  CHECK(to_unix(node.cert.not_before()) == to_unix(fixed_now) - 300);
  CHECK(to_unix(node.cert.not_after()) == to_unix(fixed_now + node_lifetime));

  auto key = ok(Key::generate(KeyType::ec_p256));
  auto week = issue_for(signer, key, NodeProfile{"node2", "evpn.test", std::chrono::hours(7 * 24)});
  CHECK(to_unix(week.not_after()) == to_unix(fixed_now) + 7 * 86400);
}

TEST_CASE("a node certificate matches its own key and not another one") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  CHECK(node.cert.matches(node.key));
  CHECK(EVP_PKEY_eq(node.cert.public_key(), node.key.get()) == 1);
  ERR_clear_error();
  CHECK_FALSE(node.cert.matches(ok(Key::generate(KeyType::ec_p256))));
  CHECK_FALSE(node.cert.matches(ok(Key::generate(KeyType::rsa_2048))));
  // A mismatch is an answer, not an error that should surface in a later failure's detail.
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("a node certificate verifies against its root for TLS client authentication") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  const auto roots = trusting(signer.root());
  CHECK(verify_chain(node.cert, roots, fixed_now, X509_PURPOSE_SSL_CLIENT).has_value());
  CHECK(verify_chain(node.cert, roots, fixed_now + node_lifetime - std::chrono::seconds(1), X509_PURPOSE_SSL_CLIENT)
            .has_value());
}

TEST_CASE("a node certificate does not verify against another root") {
  auto signer = make_signer();
  auto other = make_signer();
  auto node = issue_node(signer);
  const auto roots = trusting(other.root());
  check_refused(verify_chain(node.cert, roots, fixed_now, X509_PURPOSE_SSL_CLIENT), Errc::unauthorized,
                "does not verify");
}

TEST_CASE("a node certificate impersonating the root's name under another key does not verify") {
  auto signer = make_signer("evpn unit root");
  auto impostor = make_signer("evpn unit root");
  auto node = issue_node(impostor);
  const auto roots = trusting(signer.root());
  check_refused(verify_chain(node.cert, roots, fixed_now, X509_PURPOSE_SSL_CLIENT), Errc::unauthorized,
                "does not verify");
}

TEST_CASE("a node certificate does not verify after its notAfter or before its notBefore") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  const auto roots = trusting(signer.root());
  check_refused(verify_chain(node.cert, roots, node.cert.not_after() + std::chrono::seconds(1),
                             X509_PURPOSE_SSL_CLIENT),
                Errc::unauthorized, "expired");
  check_refused(verify_chain(node.cert, roots, fixed_now - std::chrono::hours(1), X509_PURPOSE_SSL_CLIENT),
                Errc::unauthorized, "not yet valid");
}

TEST_CASE("a node certificate is refused as a TLS server certificate") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  const auto roots = trusting(signer.root());
  check_refused(verify_chain(node.cert, roots, fixed_now, X509_PURPOSE_SSL_SERVER), Errc::unauthorized,
                "does not verify");
}

TEST_CASE("TestPki issues node certificates with the production profile") {
  test::TestPki pki;
  auto node = pki.node("node7", "evpn.test", KeyType::rsa_2048);
  CHECK(node.cert.common_name() == "node7");
  CHECK(node.cert.xmpp_addrs() == std::vector<std::string>{"node7@evpn.test"});
  CHECK(node.cert.matches(node.key));
  CHECK(X509_get_key_usage(node.cert.get()) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  const auto roots = trusting(ok(Certificate::from_pem(pki.root_pem())));
  CHECK(verify_chain(node.cert, roots, now_seconds(), X509_PURPOSE_SSL_CLIENT).has_value());
}

TEST_CASE("a root certificate is a self-signed critical CA:TRUE with keyCertSign and cRLSign") {
  auto signer = make_signer("evpn unit root");
  const Certificate& root = signer.root();
  CHECK(root.common_name() == "evpn unit root");
  CHECK(X509_get_version(root.get()) == X509_VERSION_3);
  CHECK(X509_EXTENSION_get_critical(only_extension(root, NID_basic_constraints)) == 1);
  CHECK(is_ca(root));
  CHECK(X509_EXTENSION_get_critical(only_extension(root, NID_key_usage)) == 1);
  CHECK(X509_get_key_usage(root.get()) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(root.get()) != nullptr);
  CHECK(X509_NAME_cmp(X509_get_subject_name(root.get()), X509_get_issuer_name(root.get())) == 0);
  CHECK(X509_verify(root.get(), root.public_key()) == 1);
  CHECK(X509_check_issued(root.get(), root.get()) == X509_V_OK);
  CHECK(to_unix(root.not_before()) == to_unix(fixed_now) - 300);
  CHECK(to_unix(root.not_after()) == to_unix(fixed_now) + 3650LL * 86400);
  const auto roots = trusting(root);
  CHECK(verify_chain(root, roots, fixed_now, X509_PURPOSE_ANY).has_value());
}

TEST_CASE("a server certificate carries the given DNS and IP SANs, the first name as CN, and serverAuth") {
  auto signer = make_signer();
  auto key = ok(Key::generate(KeyType::ec_p256));
  auto cert = ok(signer.issue_server(key.get(), {"xmpp.evpn.test", "127.0.0.1", "::1"}, std::chrono::hours(24),
                                       fixed_now));
  CHECK(cert.common_name() == "xmpp.evpn.test");
  CHECK(extended_key_usages(cert) == std::vector<int>{NID_server_auth});
  CHECK_FALSE(is_ca(cert));
  CHECK(cert.xmpp_addrs().empty());

  auto names = subject_alt_names(cert);
  REQUIRE(sk_GENERAL_NAME_num(names.get()) == 3);
  const GENERAL_NAME* dns = sk_GENERAL_NAME_value(names.get(), 0);
  const GENERAL_NAME* ipv4 = sk_GENERAL_NAME_value(names.get(), 1);
  const GENERAL_NAME* ipv6 = sk_GENERAL_NAME_value(names.get(), 2);
  REQUIRE(dns->type == GEN_DNS);
  CHECK(string_of(dns->d.dNSName) == "xmpp.evpn.test");
  REQUIRE(ipv4->type == GEN_IPADD);
  CHECK(to_hex(string_of(ipv4->d.iPAddress)) == "7f000001");
  REQUIRE(ipv6->type == GEN_IPADD);
  CHECK(to_hex(string_of(ipv6->d.iPAddress)) == "00000000000000000000000000000001");

  CHECK(X509_check_host(cert.get(), "xmpp.evpn.test", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(cert.get(), "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(cert.get(), "::1", 0) == 1);
  CHECK(X509_check_host(cert.get(), "other.evpn.test", 0, 0, nullptr) != 1);
}

TEST_CASE("a server certificate verifies against its root for TLS servers only") {
  auto signer = make_signer();
  auto key = ok(Key::generate(KeyType::ec_p256));
  auto cert = ok(signer.issue_server(key.get(), {"localhost"}, std::chrono::hours(24), fixed_now));
  const auto roots = trusting(signer.root());
  CHECK(verify_chain(cert, roots, fixed_now, X509_PURPOSE_SSL_SERVER).has_value());
  check_refused(verify_chain(cert, roots, fixed_now, X509_PURPOSE_SSL_CLIENT), Errc::unauthorized,
                "does not verify");
}

TEST_CASE("issue_server refuses an empty list of names") {
  auto signer = make_signer();
  auto key = ok(Key::generate(KeyType::ec_p256));
  check_invalid(signer.issue_server(key.get(), {}, std::chrono::hours(24), fixed_now));
}

TEST_CASE("a certificate survives to_pem/from_pem and to_der/from_der unchanged") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  const std::string der = node.cert.to_der();
  const std::string pem = node.cert.to_pem();
  CHECK(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0) == 0);
  auto from_pem = ok(Certificate::from_pem(pem));
  CHECK(from_pem.to_der() == der);
  CHECK(from_pem.to_pem() == pem);
  auto from_der = ok(Certificate::from_der(der));
  CHECK(from_der.to_der() == der);
  CHECK(from_der.xmpp_addrs() == node.cert.xmpp_addrs());
}

TEST_CASE("Certificate::from_pem and from_der refuse what is not a certificate") {
  auto key = ok(Key::generate(KeyType::ec_p256));
  const std::string csr_pem = ok(Csr::create(key, "node1")).to_pem();
  for (const std::string& text : {std::string(), std::string("garbage"), csr_pem, key.to_pem()}) {
    INFO(text);
    check_invalid(Certificate::from_pem(text));
  }
  check_invalid(Certificate::from_der(""));
  check_invalid(Certificate::from_der("not DER"));
  auto signer = make_signer();
  const std::string der = signer.root().to_der();
  check_invalid(Certificate::from_der(der.substr(0, der.size() - 10)));
}

TEST_CASE("fingerprint_sha256 is 64 lower-case hex characters of the SHA-256 of the DER") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  const std::string fp = node.cert.fingerprint_sha256();
  CHECK(fp.size() == 64);
  CHECK(is_lower_hex(fp));

  const std::string der = node.cert.to_der();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(der.data(), der.size(), md, &len, EVP_sha256(), nullptr) == 1);
  std::string expected;
  for (unsigned int i = 0; i < len; ++i) {
    char byte[3];
    std::snprintf(byte, sizeof byte, "%02x", md[i]);
    expected += byte;
  }
  CHECK(fp == expected);
  CHECK(fp != signer.root().fingerprint_sha256());
}

TEST_CASE("serial_hex is the serial number in lower-case hex without leading zeros") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  const std::string hex = node.cert.serial_hex();
  CHECK(is_lower_hex(hex));
  CHECK(hex.front() != '0');
  BIGNUM* parsed = nullptr;
  REQUIRE(BN_hex2bn(&parsed, hex.c_str()) == static_cast<int>(hex.size()));
  BigNum parsed_owner(parsed);
  BigNum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(node.cert.get()), nullptr));
  CHECK(BN_cmp(parsed, serial.get()) == 0);

  struct Case {
    long serial;
    const char* hex;
  };
  for (const auto& c : {Case{0x0fff, "fff"}, Case{0xab, "ab"}, Case{0x10, "10"}, Case{0, "0"}}) {
    Certificate copy(X509Ptr(X509_dup(node.cert.get())));
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(copy.get()), c.serial) == 1);
    CHECK(copy.serial_hex() == c.hex);
  }
}

TEST_CASE("parse_pem_bundle returns every certificate in order and refuses a bundle without one") {
  auto signer = make_signer();
  auto node = issue_node(signer);
  auto bundle = ok(parse_pem_bundle(node.cert.to_pem() + signer.root().to_pem()));
  REQUIRE(bundle.size() == 2);
  CHECK(bundle[0].fingerprint_sha256() == node.cert.fingerprint_sha256());
  CHECK(bundle[1].fingerprint_sha256() == signer.root().fingerprint_sha256());

  // A certificate-and-key file (as ejabberd reads) yields just its certificate.
  CHECK(ok(parse_pem_bundle(node.cert.to_pem() + node.key.to_pem())).size() == 1);

  for (const std::string& text : {std::string(), std::string("garbage"), node.key.to_pem()}) {
    INFO(text);
    check_invalid(parse_pem_bundle(text));
  }
}

TEST_CASE("sha256 and to_hex give the standard SHA-256 test vectors") {
  CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256("abc").size() == 32);
  CHECK(to_hex(std::string("\x00\xff\x10\xab", 4)) == "00ff10ab");
  CHECK(to_hex("").empty());
}

TEST_CASE("to_base64 gives the RFC 4648 test vectors") {
  for (const auto& [in, out] : {std::pair{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                                {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}})
    CHECK(to_base64(in) == out);
}

TEST_CASE("equal_constant_time is true only for equal strings") {
  CHECK(equal_constant_time("token-hash", "token-hash"));
  CHECK(equal_constant_time("", ""));
  CHECK_FALSE(equal_constant_time("token-hash", "token-hasH"));
  CHECK_FALSE(equal_constant_time("token-hash", "token-has"));
  CHECK_FALSE(equal_constant_time("", "x"));
  CHECK(equal_constant_time(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(equal_constant_time(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("random_bytes returns the requested number of bytes, different each time") {
  const std::string a = random_bytes(32);
  const std::string b = random_bytes(32);
  CHECK(a.size() == 32);
  CHECK(b.size() == 32);
  CHECK(a != b);
  CHECK(random_bytes(0).empty());
}
