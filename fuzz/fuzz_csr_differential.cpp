// libFuzzer target: the CA's own PKCS#10 parser (Csr::from_der: its own ASN.1 template, EC keys
// imported directly) against OpenSSL's d2i_X509_REQ, on the same DER bytes. Both must accept the
// same inputs, and for an accepted one yield the same public key, the same signature verdict and
// the same CN. Any disagreement aborts, with what differed on stderr. The two rules where Csr is
// stricter on purpose are applied to OpenSSL's answer in openssl_parse. (Both also read BER, e.g.
// indefinite lengths: the signature covers the bytes as received either way.) Built and run by
// fuzz/run.sh.

#include "common/crypto/csr.hpp"
#include "common/result.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace {

using evpn::crypto::Csr;
using evpn::crypto::X509Req;

// Debian's libcrypto is not instrumented, so libFuzzer sees none of OpenSSL's branches, only this
// file's and csr.cpp's. These counters (libFuzzer reads the section as extra coverage) stand in
// for them: one per distinct outcome, where an outcome names each OpenSSL error raised with its
// source line and ASN.1 field, the key type, the signature algorithm and each of our own error
// messages. An input that makes OpenSSL fail somewhere new is then kept in the corpus.
constexpr std::size_t kOutcomes = 1 << 16;
__attribute__((used, section("__libfuzzer_extra_counters"))) std::uint8_t outcomes[kOutcomes];

void note(std::string_view stage, std::string_view what) {
  std::uint32_t hash = 2166136261u;  // FNV-1a
  for (std::string_view part : {stage, std::string_view("\0", 1), what})
    for (char c : part) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  std::uint8_t& counter = outcomes[hash % kOutcomes];
  if (counter < 255) ++counter;
}

// Notes, then clears, every error OpenSSL has queued.
void note_openssl_errors(std::string_view stage) {
  const char* file = nullptr;
  const char* data = nullptr;
  int line = 0;
  int flags = 0;
  while (ERR_get_error_all(&file, &line, nullptr, &data, &flags) != 0)
    note(stage, std::string(file) + ":" + std::to_string(line) + " " + ((flags & ERR_TXT_STRING) ? data : ""));
}

template <class T>
void note_result(std::string_view stage, const evpn::Result<T>& result) {
  note(stage, result ? "ok" : result.error().detail);
}

[[noreturn]] void diverged(const char* what) {
  std::fprintf(stderr, "fuzz_csr_differential: the parsers disagree: %s\n", what);
  std::abort();
}

// What OpenSSL makes of `der`, with the rules that csr.hpp documents on top of it: null when
// either refuses.
X509Req openssl_parse(std::string_view der) {
  const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
  const auto* p = begin;
  X509Req req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req) return nullptr;
  // Deliberately stricter than OpenSSL: d2i_X509_REQ reads one request from the front and leaves
  // the rest, while Csr::from_der takes "one DER CSR with nothing after it".
  if (p != begin + der.size()) return nullptr;
  // Deliberately stricter than OpenSSL: it reads any version number, Csr refuses all but
  // version 1 (encoded 0), the only one RFC 2986 defines.
  if (X509_REQ_get_version(req.get()) != 0) return nullptr;
  return req;
}

// The subject's one CN as UTF-8, found by walking the entries (not the way csr.cpp looks it up);
// nullopt when there is none, more than one, or it is not valid text.
std::optional<std::string> openssl_common_name(X509_REQ* req) {
  const X509_NAME* name = X509_REQ_get_subject_name(req);
  const ASN1_STRING* cn = nullptr;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)) != NID_commonName) continue;
    if (cn) return std::nullopt;
    cn = X509_NAME_ENTRY_get_data(entry);
  }
  if (!cn) return std::nullopt;
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, cn);
  if (len < 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view der(reinterpret_cast<const char*>(data), size);
  ERR_clear_error();
  const X509Req theirs = openssl_parse(der);
  note_openssl_errors("d2i_X509_REQ");
  const auto ours = Csr::from_der(der);
  note_result("Csr::from_der", ours);
  if (ours.has_value() != (theirs != nullptr))
    diverged(ours ? "only Csr::from_der accepts the input" : "only d2i_X509_REQ accepts the input");
  if (!theirs) return 0;

  EVP_PKEY* our_key = ours->public_key();
  EVP_PKEY* their_key = X509_REQ_get0_pubkey(theirs.get());
  note_openssl_errors("X509_REQ_get0_pubkey");
  note("key type", their_key ? EVP_PKEY_get0_type_name(their_key) : "none");
  if ((our_key == nullptr) != (their_key == nullptr))
    diverged(our_key ? "only Csr decodes the public key" : "only OpenSSL decodes the public key");
  if (our_key && EVP_PKEY_eq(our_key, their_key) != 1) diverged("the public keys differ");

  const X509_ALGOR* signature_algorithm = nullptr;
  X509_REQ_get0_signature(theirs.get(), nullptr, &signature_algorithm);
  note("signature algorithm", std::to_string(OBJ_obj2nid(signature_algorithm->algorithm)));
  const auto our_verdict = ours->verify_signature();
  note_result("Csr::verify_signature", our_verdict);
  const bool their_verdict = their_key && X509_REQ_verify(theirs.get(), their_key) == 1;
  note_openssl_errors("X509_REQ_verify");
  if (our_verdict.has_value() != their_verdict)
    diverged(our_verdict ? "only Csr verifies the signature" : "only X509_REQ_verify verifies the signature");

  const auto our_cn = ours->common_name();
  note_result("Csr::common_name", our_cn);
  const std::optional<std::string> ours_or_none = our_cn ? std::optional(*our_cn) : std::nullopt;
  if (ours_or_none != openssl_common_name(theirs.get())) diverged("the CNs differ");
  note_openssl_errors("common name");
  return 0;
}
