// Signer::make_crl: the CRL parses with OpenSSL, is signed by the root, and OpenSSL's own chain
// verification with CRL checking refuses exactly the certificates it lists.

#include "ca-service/signing/signer.hpp"
#include "common/crypto/handle.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>

using namespace evpn;
using namespace std::chrono_literals;
using ca::signing::RevokedCertificate;

namespace {

using Crl = crypto::Handle<X509_CRL, X509_CRL_free>;

const test::TestPki& pki() {
  static const test::TestPki instance;
  return instance;
}

Crl parse(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  Crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(crl);
  CHECK(p == reinterpret_cast<const unsigned char*>(der.data() + der.size()));
  return crl;
}

long long to_unix(const ASN1_TIME* t) {
  struct tm parts {};
  REQUIRE(ASN1_TIME_to_tm(t, &parts) == 1);
  return static_cast<long long>(timegm(&parts));
}

// The reason code of the CRL entry for `cert`; -1 when the entry has none. Fails when the CRL does
// not list `cert`.
int reason_of(X509_CRL* crl, const crypto::Certificate& cert, TimePoint revoked_at) {
  X509_REVOKED* entry = nullptr;
  REQUIRE(X509_CRL_get0_by_serial(crl, &entry, X509_get_serialNumber(cert.get())) == 1);
  CHECK(to_unix(X509_REVOKED_get0_revocationDate(entry)) == evpn::to_unix(revoked_at));
  int critical = 0;
  auto* reason = static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, &critical, nullptr));
  if (!reason) return -1;
  const long code = ASN1_ENUMERATED_get(reason);
  ASN1_ENUMERATED_free(reason);
  return static_cast<int>(code);
}

// OpenSSL's verdict on `leaf` under the test root with `crl` and CRL checking on.
int verify_with_crl(const crypto::Certificate& leaf, X509_CRL* crl) {
  crypto::X509Store store(X509_STORE_new());
  crypto::X509StoreCtx ctx(X509_STORE_CTX_new());
  REQUIRE(store);
  REQUIRE(ctx);
  REQUIRE(X509_STORE_add_cert(store.get(), pki().signer().root().get()) == 1);
  REQUIRE(X509_STORE_add_crl(store.get(), crl) == 1);
  X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) == 1);
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

}  // namespace

TEST_CASE("a CRL is signed by the root and lists each revoked serial with its date and reason code") {
  const auto compromised = pki().node("node1", "evpn.test");
  const auto retired = pki().node("node2", "evpn.test");
  const auto kept = pki().node("node3", "evpn.test");
  const TimePoint now = now_seconds();
  const std::vector<RevokedCertificate> revoked{{compromised.cert.serial_hex(), now - 1h, "keyCompromise"},
                                                {retired.cert.serial_hex(), now - 2h, "unspecified"}};

  auto der = pki().signer().make_crl(revoked, 1'800'000'123, now, std::chrono::days(7));
  REQUIRE(der);
  Crl crl = parse(*der);

  CHECK(X509_CRL_get_version(crl.get()) == X509_CRL_VERSION_2);
  CHECK(X509_CRL_verify(crl.get(), pki().signer().root().public_key()) == 1);
  CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(pki().signer().root().get())) == 0);
  CHECK(to_unix(X509_CRL_get0_lastUpdate(crl.get())) == evpn::to_unix(now));
  CHECK(to_unix(X509_CRL_get0_nextUpdate(crl.get())) == evpn::to_unix(now + std::chrono::days(7)));

  auto* number = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr));
  REQUIRE(number);
  std::int64_t value = 0;
  CHECK(ASN1_INTEGER_get_int64(&value, number) == 1);
  ASN1_INTEGER_free(number);
  CHECK(value == 1'800'000'123);

  auto* aki =
      static_cast<AUTHORITY_KEYID*>(X509_CRL_get_ext_d2i(crl.get(), NID_authority_key_identifier, nullptr, nullptr));
  REQUIRE(aki);
  REQUIRE(aki->keyid);
  CHECK(ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(pki().signer().root().get())) == 0);
  AUTHORITY_KEYID_free(aki);

  CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())) == 2);
  CHECK(reason_of(crl.get(), compromised.cert, now - 1h) == 1);
  // RFC 5280 5.3.1: no reason code rather than "unspecified".
  CHECK(reason_of(crl.get(), retired.cert, now - 2h) == -1);

  CHECK(verify_with_crl(compromised.cert, crl.get()) == X509_V_ERR_CERT_REVOKED);
  CHECK(verify_with_crl(retired.cert, crl.get()) == X509_V_ERR_CERT_REVOKED);
  CHECK(verify_with_crl(kept.cert, crl.get()) == X509_V_OK);
}

TEST_CASE("a CRL with no revoked certificates is valid and lists nothing") {
  auto der = pki().signer().make_crl({}, 1, now_seconds(), std::chrono::days(7));
  REQUIRE(der);
  Crl crl = parse(*der);
  CHECK(X509_CRL_verify(crl.get(), pki().signer().root().public_key()) == 1);
  CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())) <= 0);
  CHECK(verify_with_crl(pki().node("node1", "evpn.test").cert, crl.get()) == X509_V_OK);
}

TEST_CASE("make_crl refuses a serial that is not hexadecimal and a reason it does not know") {
  const TimePoint now = now_seconds();
  auto bad_serial = pki().signer().make_crl({{"12-34", now, "unspecified"}}, 1, now, std::chrono::days(7));
  REQUIRE_FALSE(bad_serial);
  CHECK(bad_serial.error().code == Errc::invalid_request);
  CHECK_THAT(bad_serial.error().detail, Catch::Contains("12-34"));

  auto bad_reason = pki().signer().make_crl({{"1f", now, "certificateHold"}}, 1, now, std::chrono::days(7));
  REQUIRE_FALSE(bad_reason);
  CHECK(bad_reason.error().code == Errc::invalid_request);
  CHECK_THAT(bad_reason.error().detail, Catch::Contains("certificateHold") && Catch::Contains("keyCompromise"));
}

TEST_CASE("revocation reasons carry their RFC 5280 codes") {
  const auto code = [](const char* name) { return ca::signing::revocation_reason_code(name).value(); };
  CHECK(code("unspecified") == 0);
  CHECK(code("keyCompromise") == 1);
  CHECK(code("affiliationChanged") == 3);
  CHECK(code("superseded") == 4);
  CHECK(code("cessationOfOperation") == 5);
  CHECK(code("privilegeWithdrawn") == 9);
  CHECK_FALSE(ca::signing::revocation_reason_code("KeyCompromise"));
}
