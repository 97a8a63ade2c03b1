// The config file source: YAML text in, a validated Snapshot out. Parsing
// never applies anything, so a bad file is rejected while the running
// snapshot stays in place. The schema is documented in docs/CONFIG.md.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "state/snapshot.h"

namespace nodemesh::config {

// The sourceName the agent uses for the compiled-in example.
inline constexpr const char* kEmbeddedExampleSource = "embedded example";

// Parses and validates the whole document; never applies anything. On error
// the message lists every problem found (up to Diagnostics::kMaxErrors), one
// per line, each as "<source>:<line>:<col>: <field path>: <what is wrong>"
// (":<line>:<col>" is left out when there is no node to point at).
// Snapshot.version stays 0 (the agent sets it); Snapshot.source = sourceName;
// services are sorted by qualifiedName(), endpoints keep their written order;
// peers and namespaces are sorted by name, authorization rules keep file
// order; each Workload's meshed/inbound is resolved (its own setting, else its
// namespace entry's, else not meshed and permissive).
// Never throws.
Result<state::Snapshot> parseConfig(std::string_view yamlText, const std::string& sourceName);

// Reads `path` and parses it with the path as source name. Read errors name
// the path and the errno text (Error::code carries the errno).
Result<state::Snapshot> loadConfigFile(const std::string& path);

// A file holding only the `mesh` section (docs/CONFIG.md), for sources that
// take everything else from elsewhere (Kubernetes: --mesh-config). Same
// rules, limits and error format as parseConfig; `mesh` absent or null means
// all defaults, any other top-level field is an error. Never throws.
Result<state::MeshSettings> parseMeshConfig(std::string_view yamlText, const std::string& sourceName);
Result<state::MeshSettings> loadMeshConfigFile(const std::string& path);

// The bytes of examples/demo.yaml, compiled in.
std::string_view embeddedExampleConfig();

}  // namespace nodemesh::config
