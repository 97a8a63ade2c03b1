// The set of CA certificates a peer's chain must lead to. Every certificate
// in a bundle is a trust anchor (verification uses X509_V_FLAG_PARTIAL_CHAIN,
// so an operator may pin an intermediate).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "identity/openssl_ptr.h"

namespace nodemesh::identity {

class TrustBundle {
 public:
  // Takes its own references to `anchors` (at least one).
  static Result<TrustBundle> fromCertificates(const std::vector<X509*>& anchors);
  // Every certificate in a PEM file.
  static Result<TrustBundle> loadPemFile(const std::string& path);

  TrustBundle(const TrustBundle& o);
  TrustBundle& operator=(const TrustBundle& o);
  TrustBundle(TrustBundle&&) noexcept = default;
  TrustBundle& operator=(TrustBundle&&) noexcept = default;

  // Shared, read-only after construction (X509_STORE lookups are thread-safe).
  X509_STORE* store() const { return store_.get(); }
  const std::vector<X509Ptr>& certificates() const { return certs_; }
  std::string pem() const;

 private:
  TrustBundle() = default;
  X509StorePtr store_;
  std::vector<X509Ptr> certs_;
};

}  // namespace nodemesh::identity
