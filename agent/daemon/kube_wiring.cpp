#include "daemon/kube_wiring.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "config/config_loader.h"
#include "sources/kubernetes/client_config.h"

namespace nodemesh::daemon {

std::string defaultNodeName() {
  if (const char* env = std::getenv("NODE_NAME"); env && *env) return env;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

Result<KubeWiring> kubeWiring(const KubeFlags& flags, const std::string& cgroupMount) {
  KubeWiring w;
  auto client = flags.inCluster ? kube::inClusterConfigFromEnvironment() : kube::loadKubeconfig(flags.kubeconfig);
  if (!client) return client.error();
  w.options.client = std::move(*client);
  w.options.nodeName = flags.nodeName.empty() ? defaultNodeName() : flags.nodeName;
  if (w.options.nodeName.empty())
    return Error{"no node name: pass --node-name or set NODE_NAME (downward API: spec.nodeName)", 0};

  // Read once at start: the file is mounted from a ConfigMap, and a change
  // (a new CA, other ports) restarts the proxy anyway, so it takes a rollout.
  if (!flags.meshConfig.empty()) {
    auto mesh = config::loadMeshConfigFile(flags.meshConfig);
    if (!mesh) return mesh.error().wrap("--mesh-config");
    w.options.mesh = std::move(*mesh);
  }

  w.options.cgroupRoot = cgroupMount;
  if (!flags.kubepodsParent.empty()) {
    std::string root = std::filesystem::path(flags.kubepodsParent).lexically_normal().string();
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root != cgroupMount && root.rfind(cgroupMount + "/", 0) != 0)
      return Error{"--kube-cgroup-root " + flags.kubepodsParent + " must be inside the cgroup2 mount " + cgroupMount,
                   0};
    w.options.cgroupRoot = root;
    w.cgroupPrefix = root.substr(cgroupMount.size());
  }
  w.description = "kubernetes via " + w.options.client.origin;
  return w;
}

state::Snapshot rebaseCgroups(state::Snapshot snapshot, const std::string& prefix) {
  if (prefix.empty()) return snapshot;
  auto rebase = [&](const std::string& p) { return p.empty() || p == "/" ? prefix : prefix + p; };
  snapshot.servedCgroup = rebase(snapshot.servedCgroup);
  for (auto& w : snapshot.workloads) w.cgroup = rebase(w.cgroup);
  return snapshot;
}

}  // namespace nodemesh::daemon
