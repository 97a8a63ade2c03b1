// Owning pointers for the OpenSSL objects the identity code touches: every
// EVP_PKEY, X509, X509_STORE, BIO, ... is held by one of these from the line
// that creates it, so no error path can leak or double-free. Plus the one
// helper that turns OpenSSL's thread-local error queue into words.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace nodemesh::identity {

template <auto FreeFn>
struct OpensslDeleter {
  template <typename T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};

struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

// A stack that only borrows its certificates (frees the stack, not them).
struct X509BorrowedStackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpensslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpensslDeleter<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpensslDeleter<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpensslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpensslDeleter<X509_EXTENSION_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpensslDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpensslDeleter<X509_STORE_CTX_free>>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;
using X509BorrowedStackPtr = std::unique_ptr<STACK_OF(X509), X509BorrowedStackDeleter>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpensslDeleter<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpensslDeleter<GENERAL_NAME_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpensslDeleter<ASN1_INTEGER_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, OpensslDeleter<ASN1_STRING_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpensslDeleter<BN_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslDeleter<BIO_free_all>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpensslDeleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpensslDeleter<SSL_free>>;

// A second owning reference to a refcounted object (nullptr stays nullptr).
inline X509Ptr shareX509(X509* x) {
  if (x != nullptr) X509_up_ref(x);
  return X509Ptr(x);
}
inline EvpPkeyPtr shareKey(EVP_PKEY* k) {
  if (k != nullptr) EVP_PKEY_up_ref(k);
  return EvpPkeyPtr(k);
}

// Drains this thread's OpenSSL error queue into "lib: reason (detail); ...",
// or "no OpenSSL detail" when it is empty.
std::string opensslErrors();

}  // namespace nodemesh::identity
