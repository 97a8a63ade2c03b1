// What this kernel offers the agent, probed once at start and shown by
// `meshctl node status` so an operator sees why a feature is off.
#pragma once

#include <string>
#include <vector>

namespace nodemesh::daemon {

struct KernelFeature {
  std::string name;
  bool available = false;
  std::string detail;
};

struct KernelInfo {
  std::string release;
  std::vector<KernelFeature> features;
};

KernelInfo probeKernel();

}  // namespace nodemesh::daemon
