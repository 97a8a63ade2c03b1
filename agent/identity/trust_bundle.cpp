#include "identity/trust_bundle.h"

#include <openssl/err.h>

#include "identity/x509_util.h"

namespace nodemesh::identity {

Result<TrustBundle> TrustBundle::fromCertificates(const std::vector<X509*>& anchors) {
  if (anchors.empty()) return Error{"trust bundle: no CA certificate"};
  ERR_clear_error();
  TrustBundle b;
  b.store_.reset(X509_STORE_new());
  if (!b.store_) return Error{"trust bundle: " + opensslErrors()};
  for (X509* cert : anchors) {
    if (X509_STORE_add_cert(b.store_.get(), cert) != 1) {
      return Error{"trust bundle: adding " + detail::subjectString(cert) + ": " + opensslErrors()};
    }
    b.certs_.push_back(shareX509(cert));
  }
  return b;
}

Result<TrustBundle> TrustBundle::loadPemFile(const std::string& path) {
  auto text = detail::readSmallFile(path, 1 << 20);
  if (!text) return text.error().wrap("trust bundle");
  auto certs = detail::parseCertificates(*text, path);
  if (!certs) return certs.error().wrap("trust bundle");
  std::vector<X509*> raw;
  for (auto& c : *certs) raw.push_back(c.get());
  return fromCertificates(raw);
}

TrustBundle::TrustBundle(const TrustBundle& o) {
  *this = o;
}

TrustBundle& TrustBundle::operator=(const TrustBundle& o) {
  if (this == &o) return *this;
  if (o.store_) X509_STORE_up_ref(o.store_.get());
  store_.reset(o.store_.get());
  certs_.clear();
  for (const auto& c : o.certs_) certs_.push_back(shareX509(c.get()));
  return *this;
}

std::string TrustBundle::pem() const {
  std::string out;
  for (const auto& c : certs_) out += detail::certificatePem(c.get());
  return out;
}

}  // namespace nodemesh::identity
