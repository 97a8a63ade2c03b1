// How the agent runs on the Kubernetes source: flags -> source options, and
// the cgroup paths of its snapshots made relative to the real cgroup2 root.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "sources/kubernetes/kubernetes_source.h"
#include "state/snapshot.h"

namespace nodemesh::daemon {

struct KubeFlags {
  bool inCluster = false;      // --kubernetes
  std::string kubeconfig;      // --kubeconfig PATH
  std::string nodeName;        // --node-name; empty: $NODE_NAME, else the hostname
  std::string meshConfig;      // --mesh-config PATH: a YAML file with the `mesh` section; empty: defaults
  std::string kubepodsParent;  // hidden --kube-cgroup-root: a directory inside the cgroup2 mount
                               // the kubepods tree is looked up under (tests); empty: the mount
};

struct KubeWiring {
  kube::KubernetesSourceOptions options;
  // What the source's cgroup paths are relative to, as a path relative to
  // the cgroup2 mount ("" when the source looks at the mount itself).
  std::string cgroupPrefix;
  std::string description;  // "kubernetes via <origin>", for status and logs
};

// $NODE_NAME (the downward API's spec.nodeName), else the hostname.
std::string defaultNodeName();

// Reads the client config (in-cluster or kubeconfig) and the mesh settings
// file, and fills the options. cgroupMount is the discovered cgroup2 mount.
Result<KubeWiring> kubeWiring(const KubeFlags& flags, const std::string& cgroupMount);

// The source reports cgroups relative to the root it probed; the agent
// attaches relative to the cgroup2 mount. Prefixes servedCgroup and every
// workload cgroup with `prefix` (no-op when empty).
state::Snapshot rebaseCgroups(state::Snapshot snapshot, const std::string& prefix);

}  // namespace nodemesh::daemon
