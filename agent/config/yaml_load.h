// Turns YAML text into yaml-cpp document nodes without letting yaml-cpp's
// failure modes escape: exceptions become located diagnostics, and inputs
// on which yaml-cpp 0.7 never terminates are stopped (see yaml_load.cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string_view>
#include <vector>

#include "config/diagnostics.h"

namespace nodemesh::config {

// All documents in `text`; empty (with a diagnostic) when it is not valid YAML.
std::vector<YAML::Node> loadYamlDocuments(std::string_view text, Diagnostics& diag);

}  // namespace nodemesh::config
