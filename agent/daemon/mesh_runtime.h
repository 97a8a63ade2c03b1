// The agent's side of the mesh: decides whether the node proxy runs for a
// snapshot, owns the identities (CA, certificates, rotation) and the proxy,
// and feeds the proxy the table built from each snapshot. Not thread-safe:
// the Agent calls it under its own lock.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "daemon/mesh_identity.h"
#include "daemon/metrics.h"
#include "datapath/capture.h"
#include "proxy/mesh/mesh_proxy.h"
#include "state/snapshot.h"

namespace nodemesh::daemon {

// True when `snapshot` needs the node proxy: a meshed workload or an mtls service.
bool meshNeeded(const state::Snapshot& snapshot);

class MeshRuntime {
 public:
  MeshRuntime(std::string pinRoot, std::string cgroupMount)
      : pinRoot_(std::move(pinRoot)), cgroupMount_(std::move(cgroupMount)) {}
  ~MeshRuntime() { stop(); }
  MeshRuntime(const MeshRuntime&) = delete;
  MeshRuntime& operator=(const MeshRuntime&) = delete;

  // Brings identities and the proxy in line with `snapshot` before the
  // datapath captures anything for it. An error leaves the previous mesh
  // state serving (the agent rejects the snapshot). Starting, stopping or
  // re-binding the proxy happens only when the snapshot changes whether the
  // mesh is needed or where the proxy listens; otherwise the workers get the
  // new table by pointer swap and live connections are untouched.
  Status apply(const state::Snapshot& snapshot);
  // Periodic: rotates certificates that are due; re-resolves workload
  // cgroups that did not exist at the last apply.
  void tick();
  void stop();

  bool running() const { return proxy_ != nullptr; }
  nlohmann::json statusJson() const;
  void fillMetrics(metrics::AgentMetrics& out) const;

 private:
  struct Listeners {
    std::vector<proxy::SocketAddress> outbound;
    std::optional<proxy::SocketAddress> inbound;
    unsigned workers = 0;
    bool operator==(const Listeners& o) const;
  };
  Result<Listeners> listenersFor(const state::Snapshot& snapshot) const;
  Result<proxy::mesh::MeshTablePtr> buildTable(const state::Snapshot& snapshot) const;
  Status ensureCaptureTable();

  std::string pinRoot_;
  std::string cgroupMount_;
  std::unique_ptr<MeshIdentity> identity_;
  std::shared_ptr<datapath::CaptureTable> capture_;
  std::unique_ptr<proxy::mesh::MeshProxy> proxy_;
  Listeners listeners_;
  state::SnapshotPtr snapshot_;  // the last applied one (for tick's re-resolution)
  proxy::mesh::MeshTablePtr table_;
};

}  // namespace nodemesh::daemon
