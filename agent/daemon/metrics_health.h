// /healthz and /readyz decisions, kept pure so every state is unit-tested.
//
// Liveness: the control loop is running (or still starting) and no control
// operation (start, reload, a source snapshot) has been in progress longer
// than stuckAfter. The agent reads these from atomics and a tiny lock that
// is never held across work, so a wedged apply (holding the state lock)
// makes /healthz fail instead of hang.
// Readiness: the datapath is loaded and attached, and a first snapshot has
// been applied. A later rejected config does not make the agent unready:
// the last good one keeps serving (nodemesh_config_last_reload_success).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace nodemesh::daemon {

inline constexpr std::chrono::seconds kControlStuckAfter{60};

enum class LoopState { kStarting, kRunning, kStopped };

struct LivenessInputs {
  LoopState loop = LoopState::kStarting;
  // Age of the oldest control operation still in progress, if any.
  std::optional<std::chrono::steady_clock::duration> oldestOperation;
  std::chrono::steady_clock::duration stuckAfter = kControlStuckAfter;
};

struct ReadinessInputs {
  bool datapathLoaded = false;        // programs loaded (or adopted) from the pins
  bool firstSnapshotApplied = false;  // maps written and hooks attached to the served cgroup
  std::optional<std::string> externalSource;  // e.g. "kubernetes via in-cluster config"
  std::optional<std::string> lastError;       // the last rejected snapshot, if any
};

struct ProbeResult {
  bool ok = false;
  std::string reason;  // "ok", or why not (one line, for the 503 body)
};

ProbeResult liveness(const LivenessInputs& in);
ProbeResult readiness(const ReadinessInputs& in);

}  // namespace nodemesh::daemon
