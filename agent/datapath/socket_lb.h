// The socket-LB datapath: the only code that talks to libbpf. It loads the
// programs, pins maps and links under one root so they outlive the agent,
// adopts what an earlier agent pinned, and reads and writes the maps.
#pragma once

#include <sys/socket.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "datapath/abi_types.h"
#include "datapath/capture.h"
#include "datapath/mesh_state.h"
#include "datapath/sync_plan.h"
#include "state/snapshot.h"

struct sock_lb;  // generated skeleton
struct bpf_link;

namespace nodemesh::datapath {

struct AttachedProgram {
  std::string hook;    // "connect4", ..., "sockops", "ingress"
  std::string cgroup;  // as given to attach()
  std::uint32_t programId = 0;
  std::uint32_t linkId = 0;
  std::string pin;
};

struct MapFill {
  std::string name;
  std::optional<std::uint32_t> entries;  // nullopt where the kernel cannot count (socket storage)
  std::uint32_t maxEntries = 0;
};

// Per-workload counters (summed over CPUs) of a registered workload.
struct WorkloadCounters {
  std::uint64_t cgroupId = 0;
  std::string cgroup;  // the snapshot's path, when this agent synced it (empty after a restart until the first sync)
  bool meshed = false, strict = false;
  std::uint64_t captured = 0;     // connects steered to the node proxy
  std::uint64_t strictDrops = 0;  // SYNs refused by inbound STRICT
};

// Pin layout under the root: maps/<map name>, links/<hook>.
struct PinPaths {
  explicit PinPaths(std::string root) : root(std::move(root)) {}
  std::string root;
  std::string maps() const { return root + "/maps"; }
  std::string links() const { return root + "/links"; }
  std::string link(const std::string& hook) const { return links() + "/" + hook; }
};

class SocketLb {
 public:
  ~SocketLb();
  SocketLb(const SocketLb&) = delete;
  SocketLb& operator=(const SocketLb&) = delete;

  // Loads the programs, reusing pinned maps (creating and pinning them the
  // first time). Fails with a clear message if pinned maps have another layout.
  static Result<std::unique_ptr<SocketLb>> load(const std::string& pinRoot);

  // Attaches every hook (connect/sendmsg/recvmsg/getpeername 4 and 6,
  // sockops, cgroup_skb ingress) to cgroupPath (absolute). A pinned link already on
  // that cgroup is switched to the new program in place (no gap, no second
  // attachment); one on another cgroup is detached.
  Status attach(const std::string& cgroupPath, const std::string& displayName);

  Result<InstalledState> readInstalled() const;
  // Applies ops in order; stops at the first failure (the maps stay
  // consistent because of the plan's order; the next sync converges).
  Status apply(const SyncPlan& plan);
  // Per-CPU counters summed, by service key, for the services in installed.
  Result<std::map<nm_service_key, nm_service_stats, BytesLess<nm_service_key>>> readStats(
      const InstalledState& installed) const;

  // --- Mesh: capture and inbound STRICT ---------------------------------
  // Brings nm_mesh_config, nm_workloads (+ their counters) and nm_node_addrs
  // to what the snapshot says, by diff (an unchanged snapshot writes
  // nothing; the plan's counts are for the log). Call it before apply() of
  // the same snapshot's services, so a service turns mtls only once its
  // workloads and the proxy port are in place. Workload cgroups are resolved
  // under cgroupMount; missing ones are skipped and listed in the plan
  // (missingCgroups), and picked up by a later sync.
  Result<MeshPlan> syncMesh(const state::Snapshot& snapshot, const std::string& cgroupMount);
  Result<InstalledMesh> readInstalledMesh() const;
  Status applyMesh(const MeshPlan& plan);
  // Sockets in this network namespace reach the proxy on loopback; others
  // are steered to the node address. Default: the netns the agent runs in.
  void setHostNetnsCookie(std::uint64_t cookie) { hostNetnsCookie_ = cookie; }
  std::uint64_t hostNetnsCookie() const { return hostNetnsCookie_; }

  // The proxy's lookup (thread-safe, one syscall): see CaptureTable::lookup.
  Result<CaptureRecord> lookupCapture(const sockaddr* client, socklen_t len) const {
    return capture_->lookup(client, len);
  }
  // A handle that stays valid after this SocketLb is gone (its own map fd).
  std::shared_ptr<CaptureTable> captureTable() const { return capture_; }
  // Counters of every registered workload.
  Result<std::vector<WorkloadCounters>> readWorkloadStats() const;

  const std::vector<AttachedProgram>& programs() const { return programs_; }
  std::vector<MapFill> mapFill() const;

  // Detaches and removes everything under pinRoot (links first, then maps).
  static Status removePins(const std::string& pinRoot);

 private:
  explicit SocketLb(std::string pinRoot);

  PinPaths pins_;
  sock_lb* skel_ = nullptr;
  std::vector<AttachedProgram> programs_;
  std::vector<::bpf_link*> links_;
  int numCpus_ = 1;
  std::uint64_t hostNetnsCookie_ = 0;
  std::shared_ptr<CaptureTable> capture_;
  mutable std::mutex pathsMu_;
  std::map<std::uint64_t, std::string> workloadPaths_;  // cgroup id -> snapshot path, from the last sync
};

}  // namespace nodemesh::datapath
