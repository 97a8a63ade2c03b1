#include "sources/kubernetes/translate.h"

#include <algorithm>
#include <map>

#include "sources/kubernetes/mesh_rules.h"
#include "sources/kubernetes/peer_nodes.h"

namespace nodemesh::kube {
namespace {

struct Backend {
  state::IpAddress address;
  std::uint16_t port = 0;
  bool ready = true;
  std::string node;
};

std::optional<state::Protocol> protocolOf(const std::string& p) {
  if (p == "TCP") return state::Protocol::kTcp;
  if (p == "UDP") return state::Protocol::kUdp;
  return std::nullopt;
}

// The backends serving one service port, sorted by (address, port), unique.
std::vector<Backend> backendsFor(const ServiceObject& svc, const ServicePortSpec& sp,
                                 const std::vector<const EndpointSliceObject*>& slices,
                                 const std::vector<state::IpAddress>& vips, std::vector<std::string>& skipped) {
  std::map<std::pair<state::IpAddress, std::uint16_t>, Backend> out;
  for (const EndpointSliceObject* slice : slices) {
    auto spIt = std::find_if(slice->ports.begin(), slice->ports.end(),
                             [&](const SlicePort& p) { return p.name == sp.name && p.protocol == sp.protocol; });
    if (spIt == slice->ports.end()) continue;  // this slice does not serve the port
    std::optional<std::uint16_t> port = spIt->port ? spIt->port : sp.targetPortNumber;
    if (!port) {
      skipped.push_back("EndpointSlice " + slice->meta.key() + ": port " + (sp.name.empty() ? "\"\"" : sp.name) +
                        " has no number and Service " + svc.meta.key() + " has a named targetPort");
      continue;
    }
    for (const SliceEndpoint& ep : slice->endpoints) {
      if (ep.addresses.empty()) continue;
      // Consumers may use only the first address: the rest are fungible.
      auto ip = state::IpAddress::parse(ep.addresses.front());
      if (!ip) {
        skipped.push_back("EndpointSlice " + slice->meta.key() + ": address \"" + ep.addresses.front() +
                          "\" is not an IP address");
        continue;
      }
      bool familyServed = std::any_of(vips.begin(), vips.end(), [&](auto& v) { return v.family() == ip->family(); });
      if (!familyServed) continue;
      Backend b{*ip, *port, ep.ready.value_or(true), ep.nodeName};
      auto [it, inserted] = out.emplace(std::make_pair(*ip, *port), b);
      if (!inserted) it->second.ready = it->second.ready || b.ready;  // listed twice while slices are rebalanced
    }
  }
  std::vector<Backend> v;
  for (auto& [k, b] : out) v.push_back(std::move(b));
  return v;
}

state::Endpoint toEndpoint(const Backend& b, bool withPort) {
  state::Endpoint e;
  e.address = b.address;
  if (withPort) e.port = b.port;
  e.ready = b.ready;
  e.node = b.node;
  return e;
}

bool uniformPort(const std::vector<Backend>& bs) {
  return std::all_of(bs.begin(), bs.end(), [&](const Backend& b) { return b.port == bs.front().port; });
}

bool sameEndpointsIgnoringPort(const std::vector<Backend>& a, const std::vector<Backend>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].address != b[i].address || a[i].ready != b[i].ready || a[i].node != b[i].node) return false;
  }
  return true;
}

void translateService(const ServiceObject& svc, state::ServiceMode mode,
                      const std::vector<const EndpointSliceObject*>& slices, std::vector<state::Service>& out,
                      std::vector<std::string>& skipped) {
  const std::string who = "Service " + svc.meta.key();
  if (svc.type == "ExternalName") {
    skipped.push_back(who + ": ExternalName (DNS answers with a CNAME; no VIP to balance)");
    return;
  }
  state::Service base;
  base.name = svc.meta.name;
  base.ns = svc.meta.ns;
  // UDP ports of an mtls service stay plain L4 (the datapath and the proxy carry TCP only).
  base.mode = mode;
  for (const std::string& text : svc.clusterIPs) {
    if (text.empty() || text == "None") continue;
    auto ip = state::IpAddress::parse(text);
    if (!ip) {
      skipped.push_back(who + ": clusterIP \"" + text + "\" is not an IP address; ignored");
      continue;
    }
    bool dup = std::any_of(base.vips.begin(), base.vips.end(), [&](auto& v) { return v.family() == ip->family(); });
    if (!dup) base.vips.push_back(*ip);
  }
  if (base.vips.empty()) {
    skipped.push_back(who + ": headless (clusterIP None; DNS answers with the pod IPs, no VIP to balance)");
    return;
  }
  auto lbIt = svc.meta.annotations.find(kLoadBalancingAnnotation);
  if (lbIt != svc.meta.annotations.end()) {
    if (lbIt->second == "maglev") {
      base.lb = state::LbAlgorithm::kMaglev;
    } else if (lbIt->second != "random") {
      skipped.push_back(who + ": annotation " + kLoadBalancingAnnotation + "=\"" + lbIt->second +
                        "\" is not maglev or random; using random");
    }
  }

  struct PortPlan {
    state::ServicePort port;
    std::vector<Backend> backends;
  };
  std::vector<PortPlan> plans;
  for (const ServicePortSpec& sp : svc.ports) {
    auto proto = protocolOf(sp.protocol);
    if (!proto) {
      skipped.push_back(who + ": port " + std::to_string(sp.port) + "/" + sp.protocol +
                        " skipped (only TCP and UDP are balanced)");
      continue;
    }
    PortPlan plan;
    plan.port.name = sp.name;
    plan.port.port = sp.port;
    plan.port.protocol = *proto;
    plan.port.targetPort = sp.targetPortNumber.value_or(0);
    plan.backends = backendsFor(svc, sp, slices, base.vips, skipped);
    plans.push_back(std::move(plan));
  }
  if (plans.empty()) {
    skipped.push_back(who + ": no TCP or UDP port");
    return;
  }

  // One service when every port has one backend port and the same backends.
  bool together = true;
  for (const PortPlan& p : plans) {
    together = together && uniformPort(p.backends) && sameEndpointsIgnoringPort(p.backends, plans.front().backends);
  }
  if (plans.size() == 1 || together) {
    state::Service s = base;
    bool single = plans.size() == 1;
    bool overrides = single && !uniformPort(plans.front().backends);
    for (PortPlan& p : plans) {
      if (!p.backends.empty() && !overrides) p.port.targetPort = p.backends.front().port;
      s.ports.push_back(p.port);
    }
    for (const Backend& b : plans.front().backends) s.endpoints.push_back(toEndpoint(b, overrides));
    out.push_back(std::move(s));
    return;
  }
  for (PortPlan& p : plans) {
    state::Service s = base;
    s.name = base.name + ":" + (p.port.name.empty() ? std::to_string(p.port.port) : p.port.name);
    bool overrides = !uniformPort(p.backends);
    if (!p.backends.empty() && !overrides) p.port.targetPort = p.backends.front().port;
    s.ports.push_back(p.port);
    for (const Backend& b : p.backends) s.endpoints.push_back(toEndpoint(b, overrides));
    out.push_back(std::move(s));
  }
}

}  // namespace

bool podOptedIn(const PodObject& pod, const NamespaceObject* ns) {
  auto it = pod.meta.labels.find(kDataplaneModeLabel);
  if (it != pod.meta.labels.end()) {
    if (it->second == "enabled") return true;
    if (it->second == "disabled") return false;
  }
  if (ns == nullptr) return false;
  auto nit = ns->meta.labels.find(kDataplaneModeLabel);
  return nit != ns->meta.labels.end() && nit->second == "enabled";
}

Translation translate(const ClusterState& cluster, const TranslateOptions& options, const PodCgroupLookup& lookup) {
  Translation t;
  state::Snapshot& s = t.snapshot;
  s.source = options.sourceName;
  s.nodeName = options.nodeName;
  s.servedCgroup = options.servedCgroup;
  s.mesh = options.mesh;
  NodeTranslation nodes = translateNodes(cluster.nodes, options.nodeName, t.skipped, t.warnings);
  s.nodeAddress = nodes.nodeAddress;
  s.peers = std::move(nodes.peers);
  s.namespaces = meshNamespaces(cluster.namespaces, t.warnings);
  auto namespaceOf = [&](const std::string& name) -> const NamespaceObject* {
    auto it = cluster.namespaces.find(name);
    return it == cluster.namespaces.end() ? nullptr : &it->second;
  };

  std::map<std::pair<std::string, std::string>, std::vector<const EndpointSliceObject*>> slicesByService;
  for (const auto& [key, slice] : cluster.endpointSlices) {
    if (slice.serviceName.empty()) continue;
    if (slice.addressType != "IPv4" && slice.addressType != "IPv6") continue;  // FQDN: nothing to balance to
    slicesByService[{slice.meta.ns, slice.serviceName}].push_back(&slice);
  }
  static const std::vector<const EndpointSliceObject*> kNone;
  for (const auto& [key, svc] : cluster.services) {
    auto it = slicesByService.find({svc.meta.ns, svc.meta.name});
    translateService(svc, serviceMode(svc, namespaceOf(svc.meta.ns), t.warnings),
                     it == slicesByService.end() ? kNone : it->second, s.services, t.skipped);
  }
  std::sort(s.services.begin(), s.services.end(),
            [](const state::Service& a, const state::Service& b) { return a.qualifiedName() < b.qualifiedName(); });

  for (const auto& [key, pod] : cluster.pods) {
    if (pod.nodeName != options.nodeName) continue;
    if (pod.phase == "Succeeded" || pod.phase == "Failed") continue;  // containers gone, cgroup removed
    const NamespaceObject* ns = namespaceOf(pod.meta.ns);
    if (!podOptedIn(pod, ns)) continue;
    auto cgroup = lookup ? lookup(pod) : std::nullopt;
    if (!cgroup) {
      t.pendingPods.push_back(pod.meta.key() + " (uid " + pod.meta.uid + ")");
      continue;
    }
    state::Workload w;
    w.cgroup = *cgroup;
    w.ns = pod.meta.ns;
    w.serviceAccount = pod.serviceAccount;
    w.labels = pod.meta.labels;
    w.meshed = true;  // opted in is meshed: the label is the mesh's opt-in, as `mesh: enabled` in the file
    w.inbound = workloadInbound(pod, ns, t.warnings);
    w.addresses = workloadAddresses(pod);
    s.workloads.push_back(std::move(w));
  }
  std::sort(s.workloads.begin(), s.workloads.end(),
            [](const state::Workload& a, const state::Workload& b) { return a.cgroup < b.cgroup; });
  return t;
}

bool sameState(const state::Snapshot& a, const state::Snapshot& b) {
  if (a.version == b.version) return a == b;  // Snapshot's == compares every field
  state::Snapshot aligned = b;
  aligned.version = a.version;
  return a == aligned;
}

}  // namespace nodemesh::kube
