#include "daemon/metrics_exposition.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace nodemesh::daemon::metrics {
namespace {

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool validMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(isAlpha(c) || c == '_' || c == ':' || (i > 0 && isDigit(c)))) return false;
  }
  return true;
}

bool validLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(isAlpha(c) || c == '_' || (i > 0 && isDigit(c)))) return false;
  }
  return true;
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string formatValue(const Value& value) {
  if (const auto* u = std::get_if<std::uint64_t>(&value)) return std::to_string(*u);
  const double d = std::get<double>(value);
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", d);  // shortest form that reads back as the same double
}

std::string formatExposition(std::span<const Family> families, std::span<const Sample> samples) {
  std::vector<std::vector<const Sample*>> byFamily(families.size());
  for (const auto& s : samples) {
    if (s.family >= families.size())
      throw std::invalid_argument("metric sample names family #" + std::to_string(s.family) + " of " +
                                  std::to_string(families.size()));
    for (const auto& [name, value] : s.labels) {
      if (!validLabelName(name))
        throw std::invalid_argument("invalid label name '" + std::string(name) + "' on " +
                                    std::string(families[s.family].name));
    }
    byFamily[s.family].push_back(&s);
  }
  std::string out;
  out.reserve(128 * families.size() + 96 * samples.size());
  for (std::size_t f = 0; f < families.size(); ++f) {
    const Family& family = families[f];
    out += "# HELP ";
    out += family.name;
    out += ' ';
    out += escapeHelp(family.help);
    out += "\n# TYPE ";
    out += family.name;
    out += family.type == Type::kCounter ? " counter\n" : " gauge\n";
    for (const Sample* s : byFamily[f]) {
      out += family.name;
      if (!s->labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [name, value] : s->labels) {
          if (!first) out += ',';
          first = false;
          out += name;
          out += "=\"";
          out += escapeLabelValue(value);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      out += formatValue(s->value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace nodemesh::daemon::metrics
