#include "state/snapshot.h"

namespace nodemesh::state {

const char* toString(Protocol p) { return p == Protocol::kTcp ? "tcp" : "udp"; }
const char* toString(LbAlgorithm a) { return a == LbAlgorithm::kRandom ? "random" : "maglev"; }
const char* toString(ServiceMode m) { return m == ServiceMode::kL4 ? "l4" : "mtls"; }
const char* toString(InboundMode m) { return m == InboundMode::kPermissive ? "permissive" : "strict"; }

const Namespace* Snapshot::findNamespace(const std::string& name) const {
  for (const auto& n : namespaces)
    if (n.name == name) return &n;
  return nullptr;
}

const PeerNode* Snapshot::findPeer(const std::string& name) const {
  for (const auto& p : peers)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace nodemesh::state
