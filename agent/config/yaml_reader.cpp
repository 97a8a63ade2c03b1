#include "config/yaml_reader.h"

#include <limits>

#include "config/names.h"

namespace nodemesh::config {
namespace {

constexpr std::string_view kPlainTag = "?";   // yaml-cpp's tag for unquoted scalars
constexpr std::string_view kQuotedTag = "!";  // ... and for quoted ones

bool isPlain(const YAML::Node& node) { return node.Tag() == kPlainTag; }

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "1.5", "1e3", ".5": numbers that are not integers, for a sharper message.
bool looksFloating(std::string_view s) {
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  bool digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') {
      return false;
    }
  }
  return digit;
}

std::string rangeText(std::int64_t min, std::int64_t max) {
  return std::to_string(min) + ".." + std::to_string(max);
}

}  // namespace

Location locate(const YAML::Node& node, std::string path) {
  Location loc{std::move(path), 0, 0};
  if (!node.IsDefined()) return loc;
  YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return loc;
  loc.line = mark.line + 1;
  loc.column = mark.column + 1;
  return loc;
}

const char* describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "a string";
}

std::optional<std::string> readString(const YAML::Node& node, const Location& at, Diagnostics& diag) {
  if (!node.IsScalar()) {
    diag.add(at, std::string("must be a string, got ") + describe(node));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::int64_t> readInteger(const YAML::Node& node, const Location& at, std::int64_t min,
                                        std::int64_t max, Diagnostics& diag) {
  if (!node.IsScalar()) {
    diag.add(at, std::string("must be an integer, got ") + describe(node));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  if (node.Tag() == kQuotedTag) {
    diag.add(at, "must be an integer, got the quoted string " + quoted(text) + " (remove the quotes)");
    return std::nullopt;
  }
  bool negative = !text.empty() && text.front() == '-';
  std::string_view digits = negative ? std::string_view(text).substr(1) : std::string_view(text);
  if (!isPlain(node) || !allDigits(digits)) {
    if (looksFloating(text)) {
      diag.add(at, "must be an integer, got " + text);
    } else {
      diag.add(at, "must be an integer, got " + quoted(text));
    }
    return std::nullopt;
  }
  // Accumulate with an overflow stop; anything that big is out of range anyway.
  std::uint64_t magnitude = 0;
  bool overflow = false;
  for (char c : digits) {
    if (magnitude > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) {
      overflow = true;
      break;
    }
    magnitude = magnitude * 10 + static_cast<std::uint64_t>(c - '0');
  }
  bool inRange = !overflow && !(negative && magnitude != 0 && min >= 0) &&
                 magnitude <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::int64_t value = inRange ? static_cast<std::int64_t>(magnitude) * (negative ? -1 : 1) : 0;
  if (!inRange || value < min || value > max) {
    std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
    diag.add(at, "must be " + rangeText(min, max) + ", got " + shown);
    return std::nullopt;
  }
  return value;
}

std::optional<bool> readBool(const YAML::Node& node, const Location& at, Diagnostics& diag) {
  if (node.IsScalar() && isPlain(node)) {
    if (node.Scalar() == "true") return true;
    if (node.Scalar() == "false") return false;
  }
  if (node.IsScalar()) {
    diag.add(at, "must be true or false, got " + quoted(node.Scalar()) +
                     (isPlain(node) ? "" : " (a quoted string)"));
  } else {
    diag.add(at, std::string("must be true or false, got ") + describe(node));
  }
  return std::nullopt;
}

bool expectList(const YAML::Node& node, const Location& at, Diagnostics& diag) {
  if (node.IsSequence()) return true;
  diag.add(at, std::string("must be a list, got ") + describe(node));
  return false;
}

MapReader::MapReader(const YAML::Node& node, std::string path, std::initializer_list<std::string_view> known,
                     Diagnostics& diag)
    : node_(node), path_(std::move(path)), diag_(diag) {
  if (!node.IsMap()) {
    diag_.add(location(), std::string("must be a map, got ") + describe(node));
    return;
  }
  valid_ = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!diag_.visit()) return;
    // Copies: it-> yields a temporary proxy, a reference into it would dangle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      diag_.add(locate(key, path_), std::string("field names must be strings, got ") + describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    Location keyAt = locate(key, path_.empty() ? name : path_ + "." + name);
    bool isKnown = false;
    for (std::string_view k : known) isKnown = isKnown || k == name;
    if (!isKnown) {
      std::string what = "unknown field " + quoted(name);
      if (name == "<<") {
        what += "; YAML merge keys are not supported, write the fields out";
      } else if (std::string_view hint = closestMatch(name, known); !hint.empty()) {
        what += "; did you mean '" + std::string(hint) + "'?";
      }
      diag_.add(keyAt, what);
      continue;
    }
    if (!fields_.emplace(name, value).second) {
      diag_.add(keyAt, "field is given more than once");
    }
  }
}

YAML::Node MapReader::value(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end() || !present(it->second)) return YAML::Node(YAML::NodeType::Undefined);
  return it->second;
}

std::string MapReader::fieldPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Location MapReader::fieldLocation(std::string_view key) const {
  YAML::Node v = value(key);
  return locate(v.IsDefined() ? v : node_, fieldPath(key));
}

bool MapReader::require(std::string_view key) {
  if (has(key)) return true;
  if (valid_) diag_.add(fieldLocation(key), "is required");
  return false;
}

std::optional<std::string> MapReader::string(std::string_view key, bool required) {
  if (required ? !require(key) : !has(key)) return std::nullopt;
  return readString(value(key), fieldLocation(key), diag_);
}

std::optional<std::int64_t> MapReader::integer(std::string_view key, std::int64_t min, std::int64_t max,
                                               bool required) {
  if (required ? !require(key) : !has(key)) return std::nullopt;
  return readInteger(value(key), fieldLocation(key), min, max, diag_);
}

std::optional<bool> MapReader::boolean(std::string_view key) {
  if (!has(key)) return std::nullopt;
  return readBool(value(key), fieldLocation(key), diag_);
}

}  // namespace nodemesh::config
