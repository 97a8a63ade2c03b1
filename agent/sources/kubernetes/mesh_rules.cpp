#include "sources/kubernetes/mesh_rules.h"

namespace nodemesh::kube {
namespace {

const std::string* valueOf(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// The inbound label of one object; nullopt when absent or not a known word.
std::optional<state::InboundMode> inboundOf(const ObjectMeta& meta, const char* kind,
                                            std::vector<std::string>& warnings) {
  const std::string* v = valueOf(meta.labels, kInboundLabel);
  if (v == nullptr) return std::nullopt;
  if (*v == "strict") return state::InboundMode::kStrict;
  if (*v == "permissive") return state::InboundMode::kPermissive;
  warnings.push_back(std::string(kind) + " " + meta.key() + ": label " + kInboundLabel + "=\"" + *v +
                     "\" is not strict or permissive; ignored");
  return std::nullopt;
}

}  // namespace

bool namespaceMeshed(const NamespaceObject* ns) {
  if (ns == nullptr) return false;
  const std::string* v = valueOf(ns->meta.labels, kDataplaneModeLabel);
  return v != nullptr && *v == "enabled";
}

std::vector<state::Namespace> meshNamespaces(const std::map<std::string, NamespaceObject>& namespaces,
                                             std::vector<std::string>& warnings) {
  std::vector<state::Namespace> out;  // the map is ordered: sorted by name
  for (const auto& [name, ns] : namespaces) {
    const std::string* mode = valueOf(ns.meta.labels, kDataplaneModeLabel);
    const bool hasInbound = valueOf(ns.meta.labels, kInboundLabel) != nullptr;
    if (mode == nullptr && !hasInbound) continue;
    if (mode != nullptr && *mode != "enabled" && *mode != "disabled")
      warnings.push_back("Namespace " + name + ": label " + kDataplaneModeLabel + "=\"" + *mode +
                         "\" is not enabled or disabled; the namespace is not meshed");
    state::Namespace n;
    n.name = name;
    n.meshed = namespaceMeshed(&ns);
    n.inbound = inboundOf(ns.meta, "Namespace", warnings).value_or(state::InboundMode::kPermissive);
    out.push_back(std::move(n));
  }
  return out;
}

state::InboundMode workloadInbound(const PodObject& pod, const NamespaceObject* ns, std::vector<std::string>& warnings) {
  if (auto own = inboundOf(pod.meta, "Pod", warnings)) return *own;
  // The namespace's invalid value was reported with the namespaces already.
  std::vector<std::string> ignored;
  if (ns != nullptr)
    if (auto inherited = inboundOf(ns->meta, "Namespace", ignored)) return *inherited;
  return state::InboundMode::kPermissive;
}

std::vector<state::IpAddress> workloadAddresses(const PodObject& pod) {
  std::vector<state::IpAddress> out;
  if (pod.hostNetwork) return out;  // the node's addresses: attributing them to the pod would misroute inbound
  for (const std::string& text : pod.podIPs)
    if (auto ip = state::IpAddress::parse(text)) out.push_back(*ip);  // decodePod checked them
  return out;
}

state::ServiceMode serviceMode(const ServiceObject& svc, const NamespaceObject* ns, std::vector<std::string>& warnings) {
  const state::ServiceMode fallback = namespaceMeshed(ns) ? state::ServiceMode::kMtls : state::ServiceMode::kL4;
  const std::string* v = valueOf(svc.meta.annotations, kModeAnnotation);
  if (v == nullptr) return fallback;
  if (*v == "l4") return state::ServiceMode::kL4;
  if (*v == "mtls") return state::ServiceMode::kMtls;
  warnings.push_back("Service " + svc.meta.key() + ": annotation " + kModeAnnotation + "=\"" + *v +
                     "\" is not l4 or mtls; using " + state::toString(fallback));
  return fallback;
}

}  // namespace nodemesh::kube
