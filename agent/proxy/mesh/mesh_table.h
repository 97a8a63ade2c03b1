// What the mesh proxy routes and authorizes with, built from one snapshot by
// a pure function and shared read-only by every worker (they pick up a new
// table by atomic pointer swap; the old one is freed when no worker holds it).
//
// Lookups on the request path are hash / ordered-map finds on immutable data:
// no locks, no allocation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "identity/spiffe_id.h"
#include "policy/authorization.h"
#include "proxy/engine/options.h"
#include "state/snapshot.h"

namespace nodemesh::proxy::mesh {

// cgroup path relative to the cgroup v2 root (as in state::Workload::cgroup)
// -> the cgroup id the BPF hook records; nullopt when the cgroup is gone.
using CgroupIdResolver = std::function<std::optional<std::uint64_t>(const std::string& cgroupPathRelativeToV2Root)>;

struct MeshWorkload {
  std::string cgroup;
  std::string ns;
  std::string serviceAccount;  // "default" when the snapshot left it empty
  identity::SpiffeId id;
  bool meshed = false;
  state::InboundMode inbound = state::InboundMode::kPermissive;
  std::vector<state::IpAddress> addresses;
};

struct MeshEndpoint {
  state::IpAddress ip;
  std::uint16_t port = 0;
  SocketAddress address;  // ip:port, ready for connect()
  std::uint32_t weight = 1;
  bool local = true;
  std::string node;       // the peer node's name when !local
  SocketAddress peer;     // the peer node's HBONE listener (address:inboundPort) when !local
};

// One (VIP, port) frontend of an mtls TCP service; only ready endpoints.
struct MeshService {
  std::string name;  // ns/name
  std::string ns;
  std::uint16_t port = 0;
  std::vector<MeshEndpoint> endpoints;
  std::uint64_t totalWeight = 0;
};

class MeshTable {
 public:
  const MeshWorkload* workloadByCgroup(std::uint64_t cgroupId) const;
  const MeshWorkload* workloadByAddress(const state::IpAddress& ip) const;
  const MeshService* serviceByFrontend(const state::IpAddress& vip, std::uint16_t port) const;
  const MeshService* serviceByFrontend(const SocketAddress& originalDestination) const;
  // `random` in [0, 2^32): weighted choice among the ready endpoints; nullptr when none.
  static const MeshEndpoint* pick(const MeshService& service, std::uint32_t random);
  // The same among the endpoints `eligible(ep)` accepts; nullptr when none.
  template <typename Pred>
  static const MeshEndpoint* pickIf(const MeshService& service, std::uint32_t random, Pred&& eligible) {
    std::uint64_t total = 0;
    for (const MeshEndpoint& ep : service.endpoints)
      if (eligible(ep)) total += ep.weight;
    if (total == 0) return nullptr;
    std::uint64_t point = (std::uint64_t(random) * total) >> 32;  // uniform in [0, total)
    const MeshEndpoint* last = nullptr;
    for (const MeshEndpoint& ep : service.endpoints) {
      if (!eligible(ep)) continue;
      if (point < ep.weight) return &ep;
      point -= ep.weight;
      last = &ep;
    }
    return last;
  }

  const policy::Authorization& authorization() const { return authorization_; }
  // Limits of `ns` (all zero, i.e. unlimited, when the config does not name it).
  state::TenancyLimits limits(std::string_view ns) const;

  std::uint64_t version() const { return version_; }
  const std::string& trustDomain() const { return trustDomain_; }
  const std::string& nodeName() const { return nodeName_; }
  // The node address, if configured: the source of connections the proxy
  // opens to local workloads, so STRICT inbound (which trusts only the
  // node's addresses) lets the proxy in whichever interface the route uses.
  const std::optional<state::IpAddress>& nodeAddress() const { return nodeAddress_; }
  const std::vector<MeshWorkload>& workloads() const { return workloads_; }
  std::size_t services() const { return services_.size(); }
  // What the builder skipped, in the operator's words (for logs and status).
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  friend Result<std::shared_ptr<const MeshTable>> buildMeshTable(const state::Snapshot&, const CgroupIdResolver&);

  std::uint64_t version_ = 0;
  std::string trustDomain_;
  std::string nodeName_;
  std::optional<state::IpAddress> nodeAddress_;
  std::vector<MeshWorkload> workloads_;
  std::unordered_map<std::uint64_t, std::size_t> byCgroup_;
  std::map<state::IpAddress, std::size_t> byAddress_;
  std::map<std::pair<state::IpAddress, std::uint16_t>, MeshService> services_;
  std::map<std::string, state::TenancyLimits, std::less<>> limits_;
  policy::Authorization authorization_;
  std::vector<std::string> warnings_;
};

using MeshTablePtr = std::shared_ptr<const MeshTable>;

// Pure: the mesh view of `snapshot`. Workloads whose cgroup does not resolve
// keep their address entries (inbound) but cannot be found by cgroup id
// (outbound), with a warning; endpoints on unknown peer nodes are skipped,
// with a warning. Fails only when the authorization rules do not compile.
Result<MeshTablePtr> buildMeshTable(const state::Snapshot& snapshot, const CgroupIdResolver& resolveCgroup);

// The IP of a socket address (IPv4-mapped IPv6 becomes IPv4).
state::IpAddress ipOf(const SocketAddress& address);

}  // namespace nodemesh::proxy::mesh
