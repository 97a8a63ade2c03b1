// The CA the agent mints workload certificates from: loaded from the
// operator's PEM files, or a development CA generated in memory (the caller
// must log that loudly: peers only trust it if they share this process's
// bundle, and it vanishes with the process).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "identity/clock.h"
#include "identity/issued_certificate.h"
#include "identity/openssl_ptr.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace nodemesh::identity {

inline constexpr std::chrono::seconds kDefaultLeafTtl = std::chrono::hours(24);
inline constexpr std::chrono::seconds kClockSkewAllowance = std::chrono::minutes(5);
inline constexpr std::chrono::seconds kDefaultDevCaValidity = std::chrono::hours(24 * 365);
inline constexpr const char* kDevCaCommonName = "nodemesh development CA (NOT FOR PRODUCTION)";

class CertificateAuthority {
 public:
  // certPath: the signing CA certificate first, optionally followed by its
  // chain up to the root. keyPath: its unencrypted PEM private key. Checked:
  // CA:TRUE, keyCertSign (when keyUsage is present), valid at `now`, the key
  // matches, the chain in the file verifies. Errors name the file and the fault.
  static Result<CertificateAuthority> loadFromFiles(const std::string& certPath, const std::string& keyPath,
                                                    TimePoint now = systemNow());
  // A self-signed ECDSA P-256 CA living only in memory, CA:TRUE pathlen:0,
  // keyCertSign+cRLSign, named kDevCaCommonName, with the trust domain as its
  // URI SAN (spiffe://<td>), valid from now - 5 min for `validity`.
  static Result<CertificateAuthority> generateDevelopment(std::string_view trustDomain, TimePoint now = systemNow(),
                                                          std::chrono::seconds validity = kDefaultDevCaValidity);

  CertificateAuthority(CertificateAuthority&&) noexcept = default;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept = default;

  // Mints a workload certificate for `id` (see docs/IDENTITY.md): fresh P-256
  // key, URI SAN = id only, empty subject, CA:FALSE, digitalSignature,
  // serverAuth+clientAuth, random serial, valid [now - 5 min, now + ttl]
  // (cut at the CA's own notAfter). Thread-safe.
  Result<std::shared_ptr<const IssuedCertificate>> issue(const SpiffeId& id, TimePoint now = systemNow(),
                                                         std::chrono::seconds ttl = kDefaultLeafTtl) const;

  bool isDevelopment() const { return development_; }
  // "generated in memory" or the certificate file path.
  const std::string& source() const { return source_; }
  X509* certificate() const { return cert_.get(); }
  TimePoint notBefore() const { return notBefore_; }
  TimePoint notAfter() const { return notAfter_; }
  // What peers must trust to accept this CA's certificates.
  const TrustBundle& trustBundle() const { return bundle_; }

 private:
  CertificateAuthority(X509Ptr cert, EvpPkeyPtr key, std::vector<X509Ptr> chain, TrustBundle bundle, bool dev,
                       std::string source, TimePoint notBefore, TimePoint notAfter);

  X509Ptr cert_;
  EvpPkeyPtr key_;              // never serialized
  std::vector<X509Ptr> chain_;  // sent after each leaf
  TrustBundle bundle_;
  bool development_ = false;
  std::string source_;
  TimePoint notBefore_{};
  TimePoint notAfter_{};
};

}  // namespace nodemesh::identity
