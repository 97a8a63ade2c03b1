#include "daemon/mesh_identity.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace nodemesh::daemon {

namespace {

void logReport(const identity::RefreshReport& r) {
  for (const auto& id : r.issued) spdlog::info("identity: issued a certificate for {}", id.str());
  for (const auto& id : r.renewed) spdlog::info("identity: rotated the certificate of {}", id.str());
  for (const auto& id : r.dropped) spdlog::info("identity: dropped {} (no workload uses it)", id.str());
  for (const auto& e : r.failures)
    spdlog::error("identity: {} (the previous certificate, if any, stays in use)", e.message);
}

}  // namespace

Result<std::vector<identity::SpiffeId>> meshIdentitiesFor(const state::Snapshot& snapshot,
                                                           const identity::SpiffeId& nodeId) {
  std::vector<identity::SpiffeId> ids{nodeId};
  const std::string td(nodeId.trustDomain());
  for (const auto& w : snapshot.workloads) {
    if (!w.meshed) continue;
    auto id = identity::SpiffeId::forWorkload(td, w.ns, w.serviceAccount.empty() ? "default" : w.serviceAccount);
    if (!id) return Error{"workload " + w.cgroup + ": " + id.error().message};
    ids.push_back(std::move(*id));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<std::unique_ptr<MeshIdentity>> MeshIdentity::create(const state::MeshSettings& settings) {
  std::shared_ptr<const identity::CertificateAuthority> ca;
  if (settings.caCertFile.empty()) {
    auto dev = identity::CertificateAuthority::generateDevelopment(settings.trustDomain);
    if (!dev) return Error{"mesh: cannot generate a development CA: " + dev.error().message};
    ca = std::make_shared<const identity::CertificateAuthority>(std::move(*dev));
    spdlog::warn(
        "mesh: NO CA CONFIGURED - using a development CA generated in memory for trust domain {}. Peer nodes "
        "will NOT trust this node's certificates and every restart makes a new CA. Set mesh.ca.certFile and "
        "mesh.ca.keyFile (the same CA on every node) for anything but a single-node trial.",
        settings.trustDomain);
  } else {
    auto loaded = identity::CertificateAuthority::loadFromFiles(settings.caCertFile, settings.caKeyFile);
    if (!loaded) return Error{"mesh: CA: " + loaded.error().message + " (check mesh.ca.certFile and mesh.ca.keyFile)"};
    ca = std::make_shared<const identity::CertificateAuthority>(std::move(*loaded));
    spdlog::info("mesh: CA loaded from {} (trust domain {})", settings.caCertFile, settings.trustDomain);
  }
  identity::CacheOptions cacheOptions;
  cacheOptions.ttl = std::chrono::seconds(settings.certificateTtlSeconds);
  auto cache = identity::CertificateCache::create(ca, cacheOptions);
  if (!cache) return Error{"mesh: certificate cache: " + cache.error().message};
  auto verifier = identity::PeerVerifier::create(ca->trustBundle(), settings.trustDomain);
  if (!verifier) return Error{"mesh: peer verifier: " + verifier.error().message};
  auto nodeId = identity::SpiffeId::forWorkload(settings.trustDomain, kNodeNamespace, kNodeServiceAccount);
  if (!nodeId) return Error{"mesh: node identity: " + nodeId.error().message};
  return std::unique_ptr<MeshIdentity>(
      new MeshIdentity(settings, std::move(ca), std::move(*cache), std::move(*verifier), std::move(*nodeId)));
}

bool MeshIdentity::differsFrom(const state::MeshSettings& s) const {
  return s.trustDomain != settings_.trustDomain || s.caCertFile != settings_.caCertFile ||
         s.caKeyFile != settings_.caKeyFile || s.certificateTtlSeconds != settings_.certificateTtlSeconds;
}

identity::RefreshReport MeshIdentity::refresh(const state::Snapshot& snapshot) {
  auto ids = meshIdentitiesFor(snapshot, nodeId_);
  if (!ids) {
    // Validation makes this unreachable for file configs; keep what we have.
    spdlog::error("identity: {}", ids.error().message);
    return rotate();
  }
  auto report = cache_->refresh(*ids);
  logReport(report);
  return report;
}

identity::RefreshReport MeshIdentity::rotate() {
  auto report = cache_->refresh();
  logReport(report);
  return report;
}

}  // namespace nodemesh::daemon
