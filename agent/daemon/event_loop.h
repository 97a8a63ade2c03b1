// The agent's control loop: signals (SIGHUP reloads, SIGINT/SIGTERM stop)
// and changes to the config file, watched through its directory because
// editors and Kubernetes ConfigMaps replace files by rename.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"

namespace nodemesh::daemon {

struct LoopCallbacks {
  std::function<void()> reload;
  // Called about every `tickInterval` (certificate rotation, late cgroups);
  // must return quickly. Unset: no ticks.
  std::function<void()> tick;
  std::chrono::milliseconds tickInterval{1000};
};

// Blocks SIGHUP/SIGINT/SIGTERM for the whole process; call before starting
// any thread so that every thread inherits the mask.
Status blockControlSignals();

// Runs until SIGINT or SIGTERM. configPath: the file to watch, if any.
Status runEventLoop(const std::optional<std::string>& configPath, const LoopCallbacks& callbacks);

}  // namespace nodemesh::daemon
