// The node agent: turns snapshots from the config source into datapath
// state and answers the admin API. Single control thread; the admin server
// thread only reads, under mu_.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "datapath/desired_state.h"
#include "datapath/socket_lb.h"
#include "daemon/kernel_features.h"
#include "state/snapshot.h"

namespace nodemesh::daemon {

struct AgentOptions {
  std::optional<std::string> configPath;  // nullopt: the embedded example topology
  std::string pinRoot = "/sys/fs/bpf/nodemesh";
  std::string adminSocket = "/run/nodemesh/admin.sock";
};

class Agent {
 public:
  explicit Agent(AgentOptions options);
  ~Agent();

  // Mounts what is missing, loads (or adopts) the datapath and applies the
  // initial config. A bad initial config is fatal: there is nothing to keep.
  Status start();
  // Re-reads the config. A rejected config is logged and recorded; the last
  // good snapshot keeps serving. Returns the outcome for tests and logs.
  Status reload();

  nlohmann::json statusJson() const;
  nlohmann::json servicesJson() const;
  const AgentOptions& options() const { return options_; }

 private:
  Result<state::Snapshot> readConfig() const;
  Status applySnapshot(state::Snapshot snapshot);

  AgentOptions options_;
  std::chrono::steady_clock::time_point started_;
  KernelInfo kernel_;
  std::string cgroupMount_;
  std::string bpffs_ = "/sys/fs/bpf";

  mutable std::mutex mu_;  // guards everything below
  std::unique_ptr<datapath::SocketLb> lb_;
  std::string attachedCgroup_;
  state::SnapshotPtr snapshot_;
  datapath::DesiredServices desired_;
  std::uint64_t nextVersion_ = 1;
  std::optional<std::string> lastReloadError_;
};

}  // namespace nodemesh::daemon
