// The socket-LB datapath: the only code that talks to libbpf. It loads the
// programs, pins maps and links under one root so they outlive the agent,
// adopts what an earlier agent pinned, and reads and writes the maps.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "datapath/abi_types.h"
#include "datapath/sync_plan.h"

struct sock_lb;  // generated skeleton
struct bpf_link;

namespace nodemesh::datapath {

struct AttachedProgram {
  std::string hook;    // "connect4", ...
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

  // Attaches every hook to cgroupPath (absolute). A pinned link already on
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
};

}  // namespace nodemesh::datapath
