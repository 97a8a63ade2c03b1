#include "daemon/metrics_health.h"

namespace nodemesh::daemon {
namespace {

// Keeps the probe body one short line whatever the error says.
std::string firstLine(const std::string& s, std::size_t max = 300) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > max) line = line.substr(0, max) + "...";
  return line;
}

}  // namespace

ProbeResult liveness(const LivenessInputs& in) {
  if (in.loop == LoopState::kStopped) return {false, "control loop stopped (the agent is shutting down)"};
  if (in.oldestOperation && *in.oldestOperation > in.stuckAfter) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*in.oldestOperation).count();
    return {false, "a control operation (start, reload or snapshot apply) has been running for " +
                       std::to_string(secs) + "s"};
  }
  return {true, "ok"};
}

ProbeResult readiness(const ReadinessInputs& in) {
  if (!in.datapathLoaded) return {false, "starting: the datapath is not loaded yet"};
  if (!in.firstSnapshotApplied) {
    std::string reason = in.externalSource ? "waiting for the first sync from " + *in.externalSource
                                           : std::string("no config applied yet");
    if (in.lastError) reason += "; last snapshot rejected: " + firstLine(*in.lastError);
    return {false, reason};
  }
  return {true, "ok"};
}

}  // namespace nodemesh::daemon
