// sameState (translate.h): every field the source fills in, version aside.
// A field missing here would make the source swallow a real change, so the
// comparison lists them all, struct by struct.
#include <algorithm>
#include <tuple>

#include "sources/kubernetes/translate.h"

namespace nodemesh::kube {
namespace {

template <typename T, typename Key>
bool sameList(const std::vector<T>& a, const std::vector<T>& b, Key key) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [&](const T& x, const T& y) { return key(x) == key(y); });
}

auto meshKey(const state::MeshSettings& m) {
  return std::tie(m.trustDomain, m.caCertFile, m.caKeyFile, m.certificateTtlSeconds, m.outboundPort, m.inboundPort,
                  m.workers, m.socketRedirect);
}
auto peerKey(const state::PeerNode& p) { return std::tie(p.name, p.address); }
auto namespaceKey(const state::Namespace& n) { return std::tie(n.name, n.meshed, n.inbound, n.limits); }
auto workloadKey(const state::Workload& w) {
  return std::tie(w.cgroup, w.ns, w.serviceAccount, w.labels, w.meshed, w.inbound, w.addresses);
}
auto ruleKey(const state::AuthorizationRule& r) {
  return std::tie(r.name, r.action, r.fromIdentities, r.fromNamespaces, r.toNamespaces, r.toPorts);
}
auto portKey(const state::ServicePort& p) { return std::tie(p.name, p.port, p.protocol, p.targetPort); }
auto endpointKey(const state::Endpoint& e) { return std::tie(e.address, e.port, e.weight, e.ready, e.node); }

bool sameService(const state::Service& x, const state::Service& y) {
  return std::tie(x.name, x.ns, x.vips, x.mode, x.lb) == std::tie(y.name, y.ns, y.vips, y.mode, y.lb) &&
         sameList(x.ports, y.ports, portKey) && sameList(x.endpoints, y.endpoints, endpointKey);
}

}  // namespace

bool sameState(const state::Snapshot& a, const state::Snapshot& b) {
  return std::tie(a.source, a.nodeName, a.servedCgroup, a.nodeAddress) ==
             std::tie(b.source, b.nodeName, b.servedCgroup, b.nodeAddress) &&
         meshKey(a.mesh) == meshKey(b.mesh) && sameList(a.peers, b.peers, peerKey) &&
         sameList(a.namespaces, b.namespaces, namespaceKey) && sameList(a.workloads, b.workloads, workloadKey) &&
         sameList(a.authorization, b.authorization, ruleKey) &&
         std::equal(a.services.begin(), a.services.end(), b.services.begin(), b.services.end(), sameService);
}

}  // namespace nodemesh::kube
