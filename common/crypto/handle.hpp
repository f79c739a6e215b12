#pragma once
// RAII owners for OpenSSL handles: wrap a raw pointer on the line that creates it.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

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

}  // namespace evpn::crypto
