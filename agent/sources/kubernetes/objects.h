// The subset of Kubernetes API objects the source reads, decoded from the
// JSON the API server writes. Decoding checks every field it uses and says
// what is wrong ("Service default/web: spec.ports[1].port: must be 1..65535,
// got 0"), so a malformed object is skipped with a clear log line while the
// rest of the cache stays in place.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace nodemesh::kube {

// Opt-in label, on a Namespace or a Pod: "enabled" opts in, on a pod
// "disabled" opts that pod out of an enabled namespace.
inline constexpr const char* kDataplaneModeLabel = "nodemesh.io/dataplane-mode";
// Namespace or Pod label: what meshed workloads accept that did not come
// through a node proxy, "strict" or "permissive" (default). The pod's wins.
inline constexpr const char* kInboundLabel = "nodemesh.io/inbound";
// Service annotation: "maglev" or "random" (default).
inline constexpr const char* kLoadBalancingAnnotation = "nodemesh.io/load-balancing";
// Service annotation: "l4" or "mtls"; the default is mtls in a namespace
// labelled nodemesh.io/dataplane-mode=enabled, else l4.
inline constexpr const char* kModeAnnotation = "nodemesh.io/mode";
// EndpointSlice label naming the Service it belongs to.
inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

enum class Kind { kService, kEndpointSlice, kNamespace, kPod, kNode };
const char* toString(Kind k);  // "Service", "EndpointSlice", ...

struct ObjectMeta {
  std::string name;
  std::string ns;  // empty for cluster-scoped objects (Namespace, Node)
  std::string uid;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;

  // "namespace/name", or "name" for cluster-scoped objects: the cache key.
  std::string key() const { return ns.empty() ? name : ns + "/" + name; }
  // Equality of what we read, so equal objects translate alike: a MODIFIED
  // event that changed only what we do not read (a kubelet heartbeat in a
  // Node's conditions, managedFields, the resourceVersion) compares equal.
  bool operator==(const ObjectMeta&) const = default;
};

struct ServicePortSpec {
  std::string name;
  std::string protocol;  // "TCP", "UDP", "SCTP"
  std::uint16_t port = 0;
  std::optional<std::uint16_t> targetPortNumber;  // numeric targetPort
  std::string targetPortName;                     // named targetPort (resolved per endpoint)

  bool operator==(const ServicePortSpec&) const = default;
};

struct ServiceObject {
  ObjectMeta meta;
  std::string type;                     // ClusterIP, NodePort, LoadBalancer, ExternalName
  std::vector<std::string> clusterIPs;  // spec.clusterIPs (or [spec.clusterIP]); "None" for headless
  std::vector<ServicePortSpec> ports;

  bool operator==(const ServiceObject&) const = default;
};

struct SliceEndpoint {
  std::vector<std::string> addresses;
  std::optional<bool> ready;  // conditions.ready; nullopt (unknown) counts as ready
  std::string nodeName;

  bool operator==(const SliceEndpoint&) const = default;
};

struct SlicePort {
  std::string name;
  std::string protocol;
  std::optional<std::uint16_t> port;

  bool operator==(const SlicePort&) const = default;
};

struct EndpointSliceObject {
  ObjectMeta meta;
  std::string addressType;  // IPv4, IPv6, FQDN
  std::string serviceName;  // label kubernetes.io/service-name
  std::vector<SliceEndpoint> endpoints;
  std::vector<SlicePort> ports;

  bool operator==(const EndpointSliceObject&) const = default;
};

struct NamespaceObject {
  ObjectMeta meta;

  bool operator==(const NamespaceObject&) const = default;
};

struct PodObject {
  ObjectMeta meta;
  std::string nodeName;
  std::string serviceAccount;
  std::string phase;     // Pending, Running, Succeeded, Failed, Unknown
  std::string qosClass;  // Guaranteed, Burstable, BestEffort
  bool hostNetwork = false;         // spec.hostNetwork: its IPs are the node's, not its own
  std::vector<std::string> podIPs;  // status.podIPs (or [status.podIP]), validated IP literals

  bool operator==(const PodObject&) const = default;
};

struct NodeAddress {
  std::string type;     // InternalIP, ExternalIP, Hostname, ...
  std::string address;  // an IP literal for InternalIP/ExternalIP (checked), else free text

  bool operator==(const NodeAddress&) const = default;
};

struct NodeObject {
  ObjectMeta meta;
  std::vector<NodeAddress> addresses;  // status.addresses, in the API's order
  bool ready = false;                  // status.conditions type Ready has status "True"

  bool operator==(const NodeObject&) const = default;
};

// Each decoder accepts one object as the API server writes it (list item or
// watch event "object"). Errors read "<Kind> <ns/name>: <field>: <problem>".
Result<ServiceObject> decodeService(const nlohmann::json& j);
Result<EndpointSliceObject> decodeEndpointSlice(const nlohmann::json& j);
Result<NamespaceObject> decodeNamespace(const nlohmann::json& j);
Result<PodObject> decodePod(const nlohmann::json& j);
Result<NodeObject> decodeNode(const nlohmann::json& j);

// The last-known objects of each kind, keyed by ObjectMeta::key().
struct ClusterState {
  std::map<std::string, ServiceObject> services;
  std::map<std::string, EndpointSliceObject> endpointSlices;
  std::map<std::string, NamespaceObject> namespaces;
  std::map<std::string, PodObject> pods;
  std::map<std::string, NodeObject> nodes;
};

}  // namespace nodemesh::kube
