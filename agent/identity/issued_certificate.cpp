#include "identity/issued_certificate.h"

#include <openssl/err.h>

#include "identity/x509_util.h"

namespace nodemesh::identity {

std::string IssuedCertificate::certificateChainPem() const {
  std::string out = detail::certificatePem(cert.get());
  for (const auto& c : chain) out += detail::certificatePem(c.get());
  return out;
}

Status useCertificate(SSL_CTX* ctx, const IssuedCertificate& issued) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate(ctx, issued.cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx, issued.key.get()) != 1 ||
      SSL_CTX_clear_chain_certs(ctx) != 1) {
    return Error{"installing certificate for " + issued.id.str() + ": " + opensslErrors()};
  }
  for (const auto& c : issued.chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
      return Error{"installing chain for " + issued.id.str() + ": " + opensslErrors()};
    }
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Error{"certificate and key for " + issued.id.str() + " do not match: " + opensslErrors()};
  }
  return {};
}

Status useCertificate(SSL* ssl, const IssuedCertificate& issued) {
  ERR_clear_error();
  if (SSL_use_certificate(ssl, issued.cert.get()) != 1 || SSL_use_PrivateKey(ssl, issued.key.get()) != 1 ||
      SSL_clear_chain_certs(ssl) != 1) {
    return Error{"installing certificate for " + issued.id.str() + ": " + opensslErrors()};
  }
  for (const auto& c : issued.chain) {
    if (SSL_add1_chain_cert(ssl, c.get()) != 1) {
      return Error{"installing chain for " + issued.id.str() + ": " + opensslErrors()};
    }
  }
  if (SSL_check_private_key(ssl) != 1) {
    return Error{"certificate and key for " + issued.id.str() + " do not match: " + opensslErrors()};
  }
  return {};
}

}  // namespace nodemesh::identity
