// The certificates of the identities present on this node, kept fresh.
// refresh() is the only writer: it issues for new identities, re-issues those
// past `renewFraction` of their lifetime, and drops identities that left.
// Readers get shared_ptr<const IssuedCertificate>: a rotation publishes a new
// map and never invalidates a certificate a connection still holds.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "identity/certificate_authority.h"
#include "identity/clock.h"
#include "identity/issued_certificate.h"
#include "identity/spiffe_id.h"

namespace nodemesh::identity {

struct CacheOptions {
  std::chrono::seconds ttl = kDefaultLeafTtl;
  double renewFraction = 0.5;  // re-issue once this much of [issuedAt, notAfter) has passed; (0, 1]
};

struct RefreshReport {
  std::vector<SpiffeId> issued;   // new identities
  std::vector<SpiffeId> renewed;  // replaced certificates
  std::vector<SpiffeId> dropped;  // identities no longer present
  std::vector<Error> failures;    // per identity; its previous certificate (if any) is kept
  bool changed() const { return !issued.empty() || !renewed.empty() || !dropped.empty(); }
};

class CertificateCache {
 public:
  using Entries = std::map<SpiffeId, std::shared_ptr<const IssuedCertificate>>;

  static Result<std::unique_ptr<CertificateCache>> create(std::shared_ptr<const CertificateAuthority> ca,
                                                          CacheOptions options = {}, Clock clock = systemNow);

  // Makes the cache hold exactly `identities` (duplicates ignored) at `now`.
  RefreshReport refresh(std::span<const SpiffeId> identities, TimePoint now);
  RefreshReport refresh(std::span<const SpiffeId> identities) { return refresh(identities, clock_()); }
  // Same identities as the last call: rotation only.
  RefreshReport refresh(TimePoint now);
  RefreshReport refresh() { return refresh(clock_()); }

  // Readers never wait for refresh() (an atomic shared_ptr load); nullptr when absent.
  std::shared_ptr<const IssuedCertificate> get(const SpiffeId& id) const;
  std::shared_ptr<const Entries> entries() const { return entries_.load(); }
  std::size_t size() const { return entries_.load()->size(); }
  // When the earliest certificate becomes due for renewal (for the agent's
  // timer); nullopt when the cache is empty.
  std::optional<TimePoint> nextRenewal() const;
  // When `cert` becomes due under this cache's policy.
  TimePoint renewalTime(const IssuedCertificate& cert) const;

  const CertificateAuthority& authority() const { return *ca_; }
  const CacheOptions& options() const { return options_; }

 private:
  CertificateCache(std::shared_ptr<const CertificateAuthority> ca, CacheOptions options, Clock clock);

  std::shared_ptr<const CertificateAuthority> ca_;
  CacheOptions options_;
  Clock clock_;
  std::mutex writer_;             // serializes refresh()
  std::vector<SpiffeId> wanted_;  // guarded by writer_
  std::atomic<std::shared_ptr<const Entries>> entries_;
};

}  // namespace nodemesh::identity
