#include "sources/kubernetes/peer_nodes.h"

namespace nodemesh::kube {

std::optional<state::IpAddress> internalAddress(const NodeObject& node) {
  std::optional<state::IpAddress> first;
  for (const NodeAddress& a : node.addresses) {
    if (a.type != "InternalIP") continue;
    auto ip = state::IpAddress::parse(a.address);  // decodeNode checked it
    if (!ip) continue;
    if (ip->isV4()) return ip;
    if (!first) first = ip;
  }
  return first;
}

NodeTranslation translateNodes(const std::map<std::string, NodeObject>& nodes, const std::string& nodeName,
                               std::vector<std::string>& skipped, std::vector<std::string>& warnings) {
  NodeTranslation out;
  auto self = nodes.find(nodeName);
  if (self == nodes.end()) {
    warnings.push_back("Node " + nodeName + " (this node) is not in the API's node list; no node address, so peers "
                       "cannot reach this node's proxy (check --node-name / NODE_NAME)");
  } else {
    out.nodeAddress = internalAddress(self->second);
    if (!out.nodeAddress)
      warnings.push_back("Node " + nodeName + " (this node) has no InternalIP in status.addresses; no node address, "
                         "so peers cannot reach this node's proxy");
  }

  std::map<state::IpAddress, std::string> taken;  // address -> node name
  if (out.nodeAddress) taken.emplace(*out.nodeAddress, nodeName);
  for (const auto& [name, node] : nodes) {  // ordered by name: peers come out sorted
    if (name == nodeName) continue;
    if (!node.ready) {
      skipped.push_back("Node " + name + ": not Ready; not a peer until it is");
      continue;
    }
    auto address = internalAddress(node);
    if (!address) {
      warnings.push_back("Node " + name + " has no InternalIP in status.addresses; skipped as a peer (its "
                         "endpoints are not reachable through the mesh)");
      continue;
    }
    auto [it, fresh] = taken.emplace(*address, name);
    if (!fresh) {
      warnings.push_back("Node " + name + ": InternalIP " + address->toString() + " is already node " + it->second +
                         "'s; skipped as a peer");
      continue;
    }
    out.peers.push_back(state::PeerNode{name, *address});
  }
  return out;
}

}  // namespace nodemesh::kube
