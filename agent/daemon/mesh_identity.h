// The node's certificates for the mesh: the CA (the operator's files, or a
// development CA generated in memory), a certificate for every meshed
// workload identity on this node (what the outbound proxy presents), and the
// node's own certificate (what the HBONE listener presents). Rotation is
// driven by the agent's control loop through refresh() at nextRenewal().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "identity/certificate_authority.h"
#include "identity/certificate_cache.h"
#include "identity/peer_verifier.h"
#include "identity/spiffe_id.h"
#include "state/snapshot.h"

namespace nodemesh::daemon {

// The identity the node proxy presents on its HBONE listener.
inline constexpr std::string_view kNodeNamespace = "nodemesh-system";
inline constexpr std::string_view kNodeServiceAccount = "nodemesh-agent";

class MeshIdentity {
 public:
  // Loads the CA named in `settings` (or generates a development CA and logs
  // a warning that peers will not trust it) and builds the verifier.
  static Result<std::unique_ptr<MeshIdentity>> create(const state::MeshSettings& settings);

  // True when `settings` would need a new MeshIdentity (CA, trust domain or TTL changed).
  bool differsFrom(const state::MeshSettings& settings) const;

  // Makes the cache hold the node identity plus every meshed workload's
  // identity in `snapshot`; re-issues what is due. Logs what changed.
  identity::RefreshReport refresh(const state::Snapshot& snapshot);
  // Rotation only (same identities as the last refresh).
  identity::RefreshReport rotate();

  std::shared_ptr<const identity::IssuedCertificate> workloadCertificate(const identity::SpiffeId& id) const {
    return cache_->get(id);
  }
  std::shared_ptr<const identity::IssuedCertificate> nodeCertificate() const { return cache_->get(nodeId_); }
  std::shared_ptr<const identity::PeerVerifier> verifier() const { return verifier_; }
  const identity::SpiffeId& nodeId() const { return nodeId_; }
  const identity::CertificateAuthority& authority() const { return *ca_; }
  std::optional<identity::TimePoint> nextRenewal() const { return cache_->nextRenewal(); }
  std::size_t certificates() const { return cache_->size(); }

 private:
  MeshIdentity(state::MeshSettings settings, std::shared_ptr<const identity::CertificateAuthority> ca,
               std::unique_ptr<identity::CertificateCache> cache, std::shared_ptr<const identity::PeerVerifier> v,
               identity::SpiffeId nodeId)
      : settings_(std::move(settings)), ca_(std::move(ca)), cache_(std::move(cache)), verifier_(std::move(v)),
        nodeId_(std::move(nodeId)) {}

  state::MeshSettings settings_;
  std::shared_ptr<const identity::CertificateAuthority> ca_;
  std::unique_ptr<identity::CertificateCache> cache_;
  std::shared_ptr<const identity::PeerVerifier> verifier_;
  identity::SpiffeId nodeId_;
};

// The identities a snapshot needs certificates for: the node's own and each
// meshed workload's (sorted, distinct).
Result<std::vector<identity::SpiffeId>> meshIdentitiesFor(const state::Snapshot& snapshot,
                                                           const identity::SpiffeId& nodeId);

}  // namespace nodemesh::daemon
