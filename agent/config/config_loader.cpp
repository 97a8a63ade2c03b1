#include "config/config_loader.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "config/decode.h"
#include "config/diagnostics.h"
#include "config/limits.h"
#include "config/validate.h"
#include "config/yaml_load.h"
#include "config/yaml_reader.h"

// Generated from examples/demo.yaml by embed_file() in agent/CMakeLists.txt.
extern const char nm_embedded_example_config[];
extern const unsigned long nm_embedded_example_config_size;

namespace nodemesh::config {
namespace {

// Workload settings: the workload's own, else its namespace entry's, else the
// defaults (not meshed, permissive).
void resolveWorkloads(state::Snapshot& s, const Sites& sites) {
  for (std::size_t i = 0; i < s.workloads.size(); ++i) {
    state::Workload& w = s.workloads[i];
    const WorkloadSite& site = sites.workloads[i];
    const state::Namespace* ns = s.findNamespace(w.ns);
    w.meshed = site.meshed.value_or(ns ? ns->meshed : false);
    w.inbound = site.inbound.value_or(ns ? ns->inbound : state::InboundMode::kPermissive);
  }
}

// The one document of a config text; nullopt (with diag filled) when the text
// is too big, not YAML, empty or more than one document.
std::optional<YAML::Node> singleDocument(std::string_view yamlText, Diagnostics& diag, const char* expected) {
  if (yamlText.size() > kMaxConfigBytes) {
    diag.addGeneral(0, 0, "config is " + std::to_string(yamlText.size()) + " bytes; the limit is " +
                              std::to_string(kMaxConfigBytes));
    return std::nullopt;
  }
  std::vector<YAML::Node> docs = loadYamlDocuments(yamlText, diag);
  if (!diag.empty()) return std::nullopt;
  if (docs.empty() || !present(docs.front())) {
    diag.addGeneral(0, 0, std::string("document is empty; expected ") + expected);
    return std::nullopt;
  }
  if (docs.size() > 1) {
    diag.addGeneral(0, 0, "contains " + std::to_string(docs.size()) +
                              " YAML documents ('---'); a config is exactly one document");
    return std::nullopt;
  }
  return docs.front();
}

Result<state::Snapshot> parseChecked(std::string_view yamlText, const std::string& sourceName) {
  Diagnostics diag(sourceName);
  std::optional<YAML::Node> doc = singleDocument(
      yamlText, diag,
      "a map with 'node' (and optionally 'mesh', 'nodes', 'namespaces', 'workloads', 'services', 'authorization')");
  if (!doc) return diag.toError();
  Decoded decoded = decodeDocument(*doc, diag);
  if (!diag.full()) validateSnapshot(decoded, diag);
  if (!diag.empty()) return diag.toError();

  state::Snapshot snapshot = std::move(decoded.snapshot);
  snapshot.version = 0;
  snapshot.source = sourceName;
  resolveWorkloads(snapshot, decoded.sites);
  std::stable_sort(snapshot.services.begin(), snapshot.services.end(),
                   [](const state::Service& a, const state::Service& b) {
                     return a.qualifiedName() < b.qualifiedName();
                   });
  std::sort(snapshot.peers.begin(), snapshot.peers.end(),
            [](const state::PeerNode& a, const state::PeerNode& b) { return a.name < b.name; });
  std::sort(snapshot.namespaces.begin(), snapshot.namespaces.end(),
            [](const state::Namespace& a, const state::Namespace& b) { return a.name < b.name; });
  return snapshot;
}

Result<state::MeshSettings> parseMeshChecked(std::string_view yamlText, const std::string& sourceName) {
  Diagnostics diag(sourceName);
  std::optional<YAML::Node> doc = singleDocument(yamlText, diag, "a map with 'mesh'");
  if (!doc) return diag.toError();
  Decoded decoded = decodeMeshDocument(*doc, diag);
  if (!diag.empty()) return diag.toError();
  return decoded.snapshot.mesh;
}

// Both parsers turn anything thrown (yaml-cpp, allocation) into an Error.
template <typename T, typename Parse>
Result<T> guarded(Parse parse, const std::string& sourceName) {
  try {
    return parse();
  } catch (const std::bad_alloc&) {
    return Error{sourceName + ": out of memory while parsing the config", ENOMEM};
  } catch (const std::exception& e) {
    return Error{sourceName + ": internal error while parsing the config: " + e.what(), 0};
  } catch (...) {
    return Error{sourceName + ": internal error while parsing the config", 0};
  }
}

Result<std::string> readConfigText(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys("opening config " + path);
  std::string text;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("reading config " + path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    // Stop early on something huge (or endless, like /dev/zero); the parser reports the size.
    if (text.size() > kMaxConfigBytes) break;
  }
  return text;
}

}  // namespace

Result<state::Snapshot> parseConfig(std::string_view yamlText, const std::string& sourceName) {
  return guarded<state::Snapshot>([&] { return parseChecked(yamlText, sourceName); }, sourceName);
}

Result<state::Snapshot> loadConfigFile(const std::string& path) {
  auto text = readConfigText(path);
  if (!text) return text.error();
  return parseConfig(*text, path);
}

Result<state::MeshSettings> parseMeshConfig(std::string_view yamlText, const std::string& sourceName) {
  return guarded<state::MeshSettings>([&] { return parseMeshChecked(yamlText, sourceName); }, sourceName);
}

Result<state::MeshSettings> loadMeshConfigFile(const std::string& path) {
  auto text = readConfigText(path);
  if (!text) return text.error();
  return parseMeshConfig(*text, path);
}

std::string_view embeddedExampleConfig() {
  return {nm_embedded_example_config, static_cast<std::size_t>(nm_embedded_example_config_size)};
}

}  // namespace nodemesh::config
