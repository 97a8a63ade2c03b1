// The node agent: turns snapshots from the config source into datapath
// state and answers the admin API. Two kinds of source: the YAML file (read
// by the agent on start and reload) and an external source (Kubernetes)
// that pushes snapshots from its own thread through applyFromSource().
// Snapshots are applied under mu_, so the control thread, the source thread
// and the admin server thread (which only reads) never race.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "datapath/desired_state.h"
#include "datapath/sock_redirect.h"
#include "datapath/socket_lb.h"
#include "daemon/kernel_features.h"
#include "daemon/mesh_runtime.h"
#include "daemon/metrics.h"
#include "daemon/metrics_health.h"
#include "state/snapshot.h"

namespace nodemesh::daemon {

struct AgentOptions {
  std::optional<std::string> configPath;  // nullopt: the embedded example topology
  // Set when snapshots come from an external source (e.g. "kubernetes via
  // <kubeconfig>"): start() applies nothing and reload() has no file to read;
  // the source calls applyFromSource(). configPath is ignored then.
  std::optional<std::string> externalSource;
  std::string nodeName;  // shown before the first snapshot names the node
  std::string pinRoot = "/sys/fs/bpf/nodemesh";
  std::string adminSocket = "/run/nodemesh/admin.sock";
  // HOST:PORT of the metrics and health listener; empty: disabled.
  std::string metricsAddress = "127.0.0.1:15020";
};

class Agent {
 public:
  explicit Agent(AgentOptions options);
  ~Agent();

  // Mounts what is missing, loads (or adopts) the datapath and applies the
  // initial config. A bad initial config is fatal: there is nothing to keep.
  // With an external source nothing is applied: an adopted datapath keeps
  // serving its pinned state until the source's first snapshot arrives.
  Status start();
  // Re-reads the config. A rejected config is logged and recorded; the last
  // good snapshot keeps serving. Returns the outcome for tests and logs.
  // With an external source there is no file: logs that and returns ok.
  Status reload();
  // A snapshot pushed by an external source, from any thread (after
  // start()). Outcome recorded like reload(): a rejected snapshot sets
  // lastReloadError and the last good one keeps serving.
  Status applyFromSource(state::Snapshot snapshot);

  // Periodic work from the control loop: certificate rotation, workload
  // cgroups that appeared late.
  void tick();

  nlohmann::json statusJson() const;
  nlohmann::json servicesJson() const;
  const AgentOptions& options() const { return options_; }

  // For /metrics: a copy taken under the lock (formatting happens outside).
  metrics::AgentMetrics metricsSnapshot() const;
  // For /healthz and /readyz: never take the state lock, so they answer
  // even while an apply holds it.
  LivenessInputs livenessInputs() const;
  ReadinessInputs readinessInputs() const;
  // main() reports the control loop's life and, once bound, where the
  // metrics listener is (shown as agent.metricsAddress in the status).
  void setLoopState(LoopState state) { loopState_.store(state); }
  void setMetricsAddress(std::optional<std::string> address);

 private:
  // Marks a control operation (start, reload, source snapshot) in progress
  // for liveness; several may overlap (control thread and source thread).
  class OperationGuard {
   public:
    explicit OperationGuard(const Agent& agent);
    ~OperationGuard();
    OperationGuard(const OperationGuard&) = delete;
    OperationGuard& operator=(const OperationGuard&) = delete;

   private:
    const Agent& agent_;
    std::multimap<std::chrono::steady_clock::time_point, int>::iterator it_;
  };

  Result<state::Snapshot> readConfig() const;
  Status startImpl();
  Status applySnapshot(state::Snapshot snapshot);

  // What status and metrics read from the kernel maps; caller holds mu_.
  struct DatapathView {
    std::size_t backends = 0;
    std::map<nm_service_key, nm_service_stats, datapath::BytesLess<nm_service_key>> stats;
    nm_service_stats statsOf(const nm_service_key& key) const;
  };
  DatapathView readDatapathView() const;
  nlohmann::json redirectJson() const;  // caller holds mu_
  nlohmann::json meshJson() const;      // caller holds mu_
  Status recordOutcome(Status st);

  AgentOptions options_;
  std::chrono::steady_clock::time_point started_;
  KernelInfo kernel_;
  std::string cgroupMount_;
  std::string bpffs_ = "/sys/fs/bpf";

  mutable std::mutex mu_;  // guards everything below
  std::unique_ptr<datapath::SocketLb> lb_;
  std::unique_ptr<MeshRuntime> mesh_;
  std::unique_ptr<datapath::SockRedirect> redirect_;  // same-node sk_msg shortcut, on when mesh.socketRedirect  // created with the datapath; the proxy runs only when the config needs it
  std::string attachedCgroup_;
  state::SnapshotPtr snapshot_;
  datapath::DesiredServices desired_;
  std::uint64_t nextVersion_ = 1;
  bool meshCgroupsMissing_ = false;  // the last mesh sync skipped a workload whose cgroup was absent
  std::optional<std::string> lastReloadError_;
  std::uint64_t reloadFailures_ = 0;
  std::optional<std::string> metricsAddress_;

  // Probe state: atomics and a lock held only for a few instructions.
  std::atomic<LoopState> loopState_{LoopState::kStarting};
  std::atomic<bool> datapathLoaded_{false};
  std::atomic<bool> firstSnapshotApplied_{false};
  mutable std::mutex healthMu_;
  mutable std::multimap<std::chrono::steady_clock::time_point, int> operations_;  // guarded by healthMu_
  mutable std::optional<std::string> lastErrorForProbe_;                           // guarded by healthMu_
};

}  // namespace nodemesh::daemon
