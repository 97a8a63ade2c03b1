// Kubernetes objects -> state::Snapshot. Pure: the only outside input is the
// pod-cgroup lookup, injected so tests (and the source's rescans) control it.
// The rules (docs/KUBERNETES.md):
//  - Services with a cluster IP become services with those VIPs (one per
//    family). Headless (clusterIP None) and ExternalName Services are skipped:
//    DNS answers those with pod IPs / a CNAME, there is no VIP to balance.
//  - Backends come from the Service's EndpointSlices (label
//    kubernetes.io/service-name): first address of each endpoint, ready unless
//    conditions.ready is false, port from the slice port with the service
//    port's name (this is how named targetPorts are resolved, per endpoint).
//  - A multi-port Service whose endpoints do not agree on one backend port per
//    service port is split into one service per port, named "<name>:<port name>"
//    (the Snapshot carries one port override per endpoint).
//  - Workloads: pods on this node, not finished, opted in by namespace or pod
//    label nodemesh.io/dataplane-mode=enabled (pod label "disabled" opts out),
//    whose cgroup exists. Pods whose cgroup is missing are reported pending.
//    Every workload is meshed (mesh_rules.h: inbound mode, pod IPs); a
//    Service's mode is mtls in a meshed namespace unless annotated otherwise.
//  - Nodes give the node address and the peers (peer_nodes.h); the mesh
//    settings come from the options (flags / --mesh-config), authorization
//    rules are not read from Kubernetes (default: allow within the trust domain).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sources/kubernetes/objects.h"
#include "state/snapshot.h"

namespace nodemesh::kube {

struct TranslateOptions {
  std::string nodeName;
  std::string servedCgroup = "/kubepods.slice";
  std::string sourceName = "kubernetes";
  state::MeshSettings mesh;  // copied into every snapshot
};

// A pod's cgroup path relative to the cgroup2 root, or nullopt when it does
// not exist (yet).
using PodCgroupLookup = std::function<std::optional<std::string>(const PodObject&)>;

struct Translation {
  state::Snapshot snapshot;
  std::vector<std::string> pendingPods;  // "ns/name (uid)" of opted-in pods without a cgroup yet
  std::vector<std::string> skipped;      // one line per object or port left out, and why (debug log)
  std::vector<std::string> warnings;     // what the operator must fix: bad label values, nodes without an InternalIP
};

// True when the pod takes part: pod label enabled, or namespace label enabled
// and the pod label is not "disabled".
bool podOptedIn(const PodObject& pod, const NamespaceObject* ns);

Translation translate(const ClusterState& cluster, const TranslateOptions& options, const PodCgroupLookup& lookup);

// Snapshot equality ignoring `version`: the source only reports a change.
bool sameState(const state::Snapshot& a, const state::Snapshot& b);

}  // namespace nodemesh::kube
