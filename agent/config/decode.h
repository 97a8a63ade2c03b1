// First pass: turns the YAML tree into a Snapshot, checking each field on its
// own (presence, type, range, name syntax). Relationships between fields are
// validate.h's job; it needs to know where each item came from, so decoding
// also records the location of every item it keeps (the "sites").
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <vector>

#include "config/diagnostics.h"
#include "state/snapshot.h"

namespace nodemesh::config {

struct EndpointSite {
  Location item;
  Location port;  // the endpoint's own port field, when given
  Location node;  // the endpoint's node field, when given
};

struct ServiceSite {
  Location item;
  Location name;
  std::size_t portsWritten = 0;   // list length as written, before dropping bad entries
  std::vector<Location> vips;     // parallel to Service::vips
  std::vector<Location> ports;    // parallel to Service::ports
  std::vector<EndpointSite> endpoints;  // parallel to Service::endpoints
};

struct WorkloadSite {
  Location item;
  Location cgroup;
  // The workload's own settings; unset: inherited from its namespace.
  std::optional<bool> meshed;
  std::optional<state::InboundMode> inbound;
  std::vector<Location> addresses;  // parallel to Workload::addresses
};

struct PeerSite {
  Location item;
  Location name;
  Location address;
  bool addressValid = false;  // the entry is kept (its name is known) even when its address is bad
};

struct NamespaceSite {
  Location item;
  Location name;
};

struct RuleSite {
  Location item;
  Location name;
  std::vector<Location> identities;  // parallel to AuthorizationRule::fromIdentities
};

// Locations parallel to the Snapshot's vectors: sites.services[i] describes
// snapshot.services[i] (in written order; sorting and the resolution of
// workload settings from their namespaces happen after validation).
struct Sites {
  Location serviceList;  // the top-level `services` list (or the document when absent)
  Location node;         // the `node` map
  Location nodeName;
  Location nodeAddress;  // node.address, or the node map when absent
  Location trustDomain;  // mesh.trustDomain when given
  std::vector<WorkloadSite> workloads;
  std::vector<ServiceSite> services;
  std::vector<PeerSite> peers;             // parallel to Snapshot::peers (written order)
  std::vector<NamespaceSite> namespaces;   // parallel to Snapshot::namespaces (written order)
  std::vector<RuleSite> rules;             // parallel to Snapshot::authorization
};

struct Decoded {
  state::Snapshot snapshot;
  Sites sites;
};

// Decodes a document's root node. Problems go to `diag`; the Snapshot is only
// meaningful when diag stays empty.
Decoded decodeDocument(const YAML::Node& root, Diagnostics& diag);

// Decodes a document that holds only the `mesh` section (the Kubernetes
// source's --mesh-config file), with the same rules and messages; the result
// is in snapshot.mesh.
Decoded decodeMeshDocument(const YAML::Node& root, Diagnostics& diag);

}  // namespace nodemesh::config
