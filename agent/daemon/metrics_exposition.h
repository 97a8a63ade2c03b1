// Prometheus text exposition format 0.0.4: metric families declared once
// (name, type, help) and samples that point at them. Pure functions, so the
// escaping and the HELP/TYPE-once rule are unit-tested without an agent.
// https://prometheus.io/docs/instrumenting/exposition_formats/
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace nodemesh::daemon::metrics {

inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge };

struct Family {
  std::string_view name;  // [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total
  Type type;
  std::string_view help;
};

// Label names are code constants ([a-zA-Z_][a-zA-Z0-9_]*, not starting with
// "__"); values are any UTF-8 and are escaped on output.
using Labels = std::vector<std::pair<std::string_view, std::string>>;
// Integers print exactly (a uint64 counter past 2^53 keeps every digit).
using Value = std::variant<std::uint64_t, double>;

struct Sample {
  std::size_t family;  // index into the family list
  Labels labels;
  Value value;
};

bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);

// Label values: backslash, double quote and line feed become \\, \" and \n.
std::string escapeLabelValue(std::string_view value);
// HELP text: backslash and line feed become \\ and \n (quotes stay).
std::string escapeHelp(std::string_view help);
// 42, 12.5, 1e+20, NaN, +Inf, -Inf.
std::string formatValue(const Value& value);

// Every family in list order: its HELP and TYPE lines once, then its
// samples in the order given (families without samples still declare
// themselves). Throws std::invalid_argument for a sample whose family index
// is out of range or whose label name is invalid: a programming error,
// answered with 500 rather than a malformed exposition.
std::string formatExposition(std::span<const Family> families, std::span<const Sample> samples);

}  // namespace nodemesh::daemon::metrics
