// First pass: turns the YAML tree into a Snapshot, checking each field on its
// own (presence, type, range, name syntax). Relationships between fields are
// validate.h's job; it needs to know where each item came from, so decoding
// also records the location of every item it keeps (the "sites").
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <vector>

#include "config/diagnostics.h"
#include "state/snapshot.h"

namespace nodemesh::config {

struct EndpointSite {
  Location item;
  Location port;  // the endpoint's own port field, when given
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
};

// Locations parallel to the Snapshot's vectors: sites.services[i] describes
// snapshot.services[i] (in written order; sorting happens after validation).
struct Sites {
  Location serviceList;  // the top-level `services` list (or the document when absent)
  std::vector<WorkloadSite> workloads;
  std::vector<ServiceSite> services;
};

struct Decoded {
  state::Snapshot snapshot;
  Sites sites;
};

// Decodes a document's root node. Problems go to `diag`; the Snapshot is only
// meaningful when diag stays empty.
Decoded decodeDocument(const YAML::Node& root, Diagnostics& diag);

}  // namespace nodemesh::config
