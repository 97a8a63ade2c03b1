#include "identity/certificate_cache.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace nodemesh::identity {

Result<std::unique_ptr<CertificateCache>> CertificateCache::create(std::shared_ptr<const CertificateAuthority> ca,
                                                                   CacheOptions options, Clock clock) {
  if (!ca) return Error{"certificate cache: no CA"};
  if (!clock) return Error{"certificate cache: no clock"};
  if (options.ttl < std::chrono::seconds(1)) return Error{"certificate cache: TTL must be at least 1 second"};
  if (!(options.renewFraction > 0.0 && options.renewFraction <= 1.0)) {
    return Error{"certificate cache: renewFraction must be in (0, 1], got " + std::to_string(options.renewFraction)};
  }
  return std::unique_ptr<CertificateCache>(new CertificateCache(std::move(ca), options, std::move(clock)));
}

CertificateCache::CertificateCache(std::shared_ptr<const CertificateAuthority> ca, CacheOptions options, Clock clock)
    : ca_(std::move(ca)), options_(options), clock_(std::move(clock)), entries_(std::make_shared<const Entries>()) {}

TimePoint CertificateCache::renewalTime(const IssuedCertificate& cert) const {
  auto lifetime = std::chrono::duration<double>(cert.notAfter - cert.issuedAt);
  return cert.issuedAt + std::chrono::duration_cast<TimePoint::duration>(lifetime * options_.renewFraction);
}

std::shared_ptr<const IssuedCertificate> CertificateCache::get(const SpiffeId& id) const {
  auto snapshot = entries_.load();
  auto it = snapshot->find(id);
  return it == snapshot->end() ? nullptr : it->second;
}

std::optional<TimePoint> CertificateCache::nextRenewal() const {
  auto snapshot = entries_.load();
  std::optional<TimePoint> next;
  for (const auto& [id, cert] : *snapshot) {
    TimePoint t = renewalTime(*cert);
    if (!next || t < *next) next = t;
  }
  return next;
}

RefreshReport CertificateCache::refresh(std::span<const SpiffeId> identities, TimePoint now) {
  std::lock_guard lock(writer_);
  wanted_.assign(identities.begin(), identities.end());
  std::sort(wanted_.begin(), wanted_.end());
  wanted_.erase(std::unique(wanted_.begin(), wanted_.end()), wanted_.end());

  auto current = entries_.load();
  auto next = std::make_shared<Entries>();
  RefreshReport report;
  for (const SpiffeId& id : wanted_) {
    auto it = current->find(id);
    std::shared_ptr<const IssuedCertificate> have = it == current->end() ? nullptr : it->second;
    // Due: past the renewal point, or the clock went back before notBefore.
    bool due = have && (now >= renewalTime(*have) || now < have->notBefore);
    if (have && !due) {
      next->emplace(id, have);
      continue;
    }
    auto fresh = ca_->issue(id, now, options_.ttl);
    if (!fresh) {
      spdlog::warn("identity: {}", fresh.error().message);
      report.failures.push_back(fresh.error());
      if (have) next->emplace(id, have);  // still valid until its notAfter
      continue;
    }
    spdlog::debug("identity: {} certificate for {} valid until {}", have ? "renewed" : "issued", id.str(),
                  formatUtc((*fresh)->notAfter));
    (have ? report.renewed : report.issued).push_back(id);
    next->emplace(id, std::move(fresh).value());
  }
  for (const auto& [id, cert] : *current) {
    if (!next->contains(id)) report.dropped.push_back(id);
  }
  entries_.store(std::move(next));
  if (report.changed()) {
    spdlog::info("identity: certificates +{} ~{} -{} ({} held)", report.issued.size(), report.renewed.size(),
                 report.dropped.size(), size());
  }
  return report;
}

RefreshReport CertificateCache::refresh(TimePoint now) {
  std::vector<SpiffeId> wanted;
  {
    std::lock_guard lock(writer_);
    wanted = wanted_;
  }
  return refresh(wanted, now);
}

}  // namespace nodemesh::identity
