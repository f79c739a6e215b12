#pragma once
// RAII owners for OpenSSL handles: wrap a raw pointer on the line that creates it.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace evpn::crypto {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept { Free(p); }
};

template <class T, auto Free>
using Handle = std::unique_ptr<T, Deleter<Free>>;

using PKey = Handle<EVP_PKEY, EVP_PKEY_free>;
using PKeyCtx = Handle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtx = Handle<EVP_MD_CTX, EVP_MD_CTX_free>;
using Bio = Handle<BIO, BIO_free_all>;
using X509Ptr = Handle<X509, X509_free>;
using X509Req = Handle<X509_REQ, X509_REQ_free>;
using X509Name = Handle<X509_NAME, X509_NAME_free>;
using X509Ext = Handle<X509_EXTENSION, X509_EXTENSION_free>;
using X509Store = Handle<X509_STORE, X509_STORE_free>;
using X509StoreCtx = Handle<X509_STORE_CTX, X509_STORE_CTX_free>;
using Asn1Integer = Handle<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1Time = Handle<ASN1_TIME, ASN1_TIME_free>;
using BigNum = Handle<BIGNUM, BN_free>;
using GeneralNames = Handle<GENERAL_NAMES, GENERAL_NAMES_free>;
using GeneralName = Handle<GENERAL_NAME, GENERAL_NAME_free>;
using Asn1Type = Handle<ASN1_TYPE, ASN1_TYPE_free>;
using Asn1Utf8String = Handle<ASN1_UTF8STRING, ASN1_UTF8STRING_free>;
using Asn1Ia5String = Handle<ASN1_IA5STRING, ASN1_IA5STRING_free>;
using Asn1OctetString = Handle<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;

// OPENSSL_free is a macro (it passes the caller's file and line), so it cannot be a Deleter's
// template argument itself.
inline void openssl_free(void* p) noexcept { OPENSSL_free(p); }

// Memory that OpenSSL allocated for the caller: i2d_* output, BN_bn2hex, ASN1_STRING_to_UTF8.
template <class T>
using OpenSslMemory = Handle<T, openssl_free>;

// The bytes that `encode(&out)` writes, in the i2d convention: it allocates `out` and returns its
// length, <= 0 on failure (the reason is on OpenSSL's error queue). Nothing when it fails. The
// buffer is owned before anything can throw.
template <class Encode>
std::optional<std::string> to_der(Encode encode) {
  unsigned char* raw = nullptr;
  const int length = encode(&raw);
  const OpenSslMemory<unsigned char> der(raw);
  if (length <= 0 || !der) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(der.get()), static_cast<std::size_t>(length));
}

// The DER of `object` by its i2d function: to_der(i2d_X509, cert).
template <class T>
std::optional<std::string> to_der(int (*i2d)(const T*, unsigned char**), const T* object) {
  return to_der([&](unsigned char** out) { return i2d(object, out); });
}

}  // namespace evpn::crypto
