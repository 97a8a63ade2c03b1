// Nodes -> where this node's proxy is reached (Snapshot::nodeAddress) and the
// other nodes of the mesh (Snapshot::peers), as the file source's
// `node.address` and `nodes`:
//  - a node's address is its first InternalIP, IPv4 preferred (the HBONE
//    listener binds it and peers dial it, so it must be reachable in-cluster);
//  - this node gets its address whether or not it is Ready;
//  - every other Ready node with an InternalIP is a peer; a node that is not
//    Ready is left out (its endpoints stay out of the mesh until it is back);
//  - a node without an InternalIP, or whose address another node already
//    has, is left out with a warning naming it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sources/kubernetes/objects.h"
#include "state/snapshot.h"

namespace nodemesh::kube {

struct NodeTranslation {
  std::optional<state::IpAddress> nodeAddress;
  std::vector<state::PeerNode> peers;  // sorted by name, unique names and addresses
};

// The first InternalIP, IPv4 preferred; nullopt when the node has none.
std::optional<state::IpAddress> internalAddress(const NodeObject& node);

// `skipped`: lines for the debug log (not-ready nodes); `warnings`: what an
// operator must see (missing InternalIP, duplicate address, this node unknown).
NodeTranslation translateNodes(const std::map<std::string, NodeObject>& nodes, const std::string& nodeName,
                               std::vector<std::string>& skipped, std::vector<std::string>& warnings);

}  // namespace nodemesh::kube
