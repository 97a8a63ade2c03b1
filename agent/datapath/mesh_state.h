// What the mesh maps should hold for a snapshot (nm_mesh_config,
// nm_workloads, nm_node_addrs), and the ordered diff against what they hold.
// Pure: cgroup ids come from an injected resolver, so this is unit-testable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "datapath/abi_types.h"
#include "state/snapshot.h"

namespace nodemesh::datapath {

using NodeAddrSet = std::set<nm_node_addr_key, BytesLess<nm_node_addr_key>>;

struct DesiredWorkload {
  nm_workload value{};
  std::string cgroup;  // as in the snapshot (relative to the cgroup2 root)
};

struct DesiredMesh {
  nm_mesh_config config{};
  std::map<std::uint64_t, DesiredWorkload> workloads;  // by cgroup id; only meshed ones
  NodeAddrSet nodeAddrs;
  std::vector<std::string> missingCgroups;  // meshed workloads skipped: their cgroup does not exist (yet)
};

struct InstalledMesh {
  nm_mesh_config config{};
  std::map<std::uint64_t, nm_workload> workloads;
  std::set<std::uint64_t> statsEntries;  // keys of nm_workload_stats
  NodeAddrSet nodeAddrs;
};

// Resolves a snapshot cgroup path (relative, starting with '/') to its id.
using CgroupResolver = std::function<std::optional<std::uint64_t>(const std::string& relativePath)>;

// The cgroup level of a path relative to the cgroup2 root ("/" is 0,
// "/kubepods/pod1" is 2): what bpf_get_current_ancestor_cgroup_id counts.
int cgroupLevel(const std::string& relativePath);

// Key of a node-address prefix in nm_node_addrs (IPv4 stored v4-mapped).
nm_node_addr_key nodeAddrKey(const state::IpAddress& address, unsigned prefixLen);

// A workload is registered when it is meshed; STRICT is set only for
// meshed workloads (a non-meshed workload is outside the mesh in both
// directions). Trusted sources: 127.0.0.0/8, ::1 and the node address.
DesiredMesh desiredMeshFromSnapshot(const state::Snapshot& snapshot, std::uint64_t hostNetnsCookie,
                                    const CgroupResolver& resolve);

struct MeshOp {
  enum class Kind { kPutNodeAddr, kPutWorkloadStats, kPutConfig, kPutWorkload, kDeleteWorkload, kDeleteWorkloadStats,
                    kDeleteNodeAddr };
  Kind kind;
  std::uint64_t cgroupId = 0;  // workload ops
  nm_workload workload{};
  nm_node_addr_key nodeAddr{};
  nm_mesh_config config{};
};

struct MeshPlan {
  std::vector<MeshOp> ops;
  std::size_t workloadsAdded = 0, workloadsChanged = 0, workloadsRemoved = 0;
  std::size_t nodeAddrsAdded = 0, nodeAddrsRemoved = 0;
  bool configChanged = false;
  std::vector<std::string> missingCgroups;
  bool empty() const { return ops.empty(); }
};

// Order: trusted addresses first (STRICT never refuses the node while it
// changes), counters before the workloads that count into them, the config
// (proxy port, node address, levels), then workload writes, then removals
// in reverse. Applying the plan of a state to itself yields an empty plan.
MeshPlan planMeshSync(const InstalledMesh& installed, const DesiredMesh& desired);

// "workloads +1 ~0 -0, node addresses +3 -0, mesh config changed; 1 meshed workload cgroup(s) missing, retried next sync: /a"
std::string summary(const MeshPlan& plan);

}  // namespace nodemesh::datapath
