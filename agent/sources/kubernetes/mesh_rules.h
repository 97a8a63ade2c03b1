// The mesh settings Kubernetes objects carry as nodemesh.io labels and
// annotations (docs/KUBERNETES.md), read the way the file source reads its
// `namespaces`, `workloads` and `services[].mode` fields:
//  - a namespace labelled nodemesh.io/dataplane-mode=enabled is meshed; its
//    nodemesh.io/inbound label (strict|permissive) is the inbound default;
//  - a workload (an opted-in pod) is meshed; its inbound mode is its own
//    nodemesh.io/inbound label, else its namespace's, else permissive; its
//    addresses are its pod IPs (none for hostNetwork pods: those are the node's);
//  - a Service is mtls in a meshed namespace and l4 elsewhere, unless its
//    nodemesh.io/mode annotation says l4 or mtls.
// A value that is not one of the allowed words is ignored with a warning
// naming the object, so a typo never silently changes security settings.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sources/kubernetes/objects.h"
#include "state/snapshot.h"

namespace nodemesh::kube {

// The namespaces that carry a nodemesh.io label, sorted by name (the others
// have the defaults: not meshed, permissive).
std::vector<state::Namespace> meshNamespaces(const std::map<std::string, NamespaceObject>& namespaces,
                                             std::vector<std::string>& warnings);

// True when the namespace is labelled nodemesh.io/dataplane-mode=enabled.
bool namespaceMeshed(const NamespaceObject* ns);

// The pod's own label, else its namespace's, else permissive.
state::InboundMode workloadInbound(const PodObject& pod, const NamespaceObject* ns, std::vector<std::string>& warnings);

// The pod IPs that identify the pod (empty for hostNetwork pods).
std::vector<state::IpAddress> workloadAddresses(const PodObject& pod);

// The annotation, else mtls in a meshed namespace, else l4.
state::ServiceMode serviceMode(const ServiceObject& svc, const NamespaceObject* ns, std::vector<std::string>& warnings);

}  // namespace nodemesh::kube
