// Typed, located access to yaml-cpp nodes. Every read reports into
// Diagnostics with the field path and the node's line:column instead of
// throwing, so one pass over the document finds every problem.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/diagnostics.h"

namespace nodemesh::config {

// `path` plus the node's 1-based position (line 0 when yaml-cpp has no mark).
Location locate(const YAML::Node& node, std::string path);
// "a map", "a list", "a string", "null": for "must be X, got Y" messages.
const char* describe(const YAML::Node& node);
// A present value: defined and not null (explicit null means "not set").
inline bool present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

// Scalar readers for values outside a map (list items) or behind MapReader.
std::optional<std::string> readString(const YAML::Node& node, const Location& at, Diagnostics& diag);
// Plain decimal integers only: floats, quoted numbers, hex and YAML 1.1 forms are refused.
std::optional<std::int64_t> readInteger(const YAML::Node& node, const Location& at, std::int64_t min,
                                        std::int64_t max, Diagnostics& diag);
// Plain `true` or `false` only; yes/no/on/off are ambiguous between YAML versions.
std::optional<bool> readBool(const YAML::Node& node, const Location& at, Diagnostics& diag);
// True when node is a list; otherwise reports "must be a list".
bool expectList(const YAML::Node& node, const Location& at, Diagnostics& diag);

// One YAML map checked against the fields its schema level knows. Reports
// (once, on construction) a non-map node, unknown fields with a "did you
// mean" hint, repeated fields and non-string keys.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, std::initializer_list<std::string_view> known,
            Diagnostics& diag);

  bool valid() const { return valid_; }
  const std::string& path() const { return path_; }
  Location location() const { return locate(node_, path_); }

  // Present (non-null) value of `key`, or an undefined node.
  YAML::Node value(std::string_view key) const;
  bool has(std::string_view key) const { return present(value(key)); }
  std::string fieldPath(std::string_view key) const;
  // Where the value is, or where the map is when the field is absent.
  Location fieldLocation(std::string_view key) const;
  // Reports "is required" and returns false when `key` is absent or null.
  bool require(std::string_view key);

  std::optional<std::string> string(std::string_view key, bool required);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max,
                                      bool required);
  std::optional<bool> boolean(std::string_view key);

 private:
  YAML::Node node_;
  std::string path_;
  Diagnostics& diag_;
  bool valid_ = false;
  std::map<std::string, YAML::Node, std::less<>> fields_;  // first occurrence of each key
};

}  // namespace nodemesh::config
