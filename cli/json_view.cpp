#include "json_view.h"

#include <cmath>
#include <cstdio>

namespace nodemesh::cli {
namespace {

const nlohmann::json& emptyArray() {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  return kEmpty;
}

const nlohmann::json& emptyObject() {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return kEmpty;
}

std::string formatDouble(double d) {
  if (!std::isfinite(d)) return std::string(kMissing);
  if (d == std::trunc(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", d);
  return buf;
}

}  // namespace

const nlohmann::json* field(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const nlohmann::json& arrayField(const nlohmann::json& j, std::string_view key) {
  const auto* v = field(j, key);
  return v && v->is_array() ? *v : emptyArray();
}

const nlohmann::json& objectField(const nlohmann::json& j, std::string_view key) {
  const auto* v = field(j, key);
  return v && v->is_object() ? *v : emptyObject();
}

std::string text(const nlohmann::json* v) {
  if (v == nullptr) return std::string(kMissing);
  switch (v->type()) {
    case nlohmann::json::value_t::string: {
      const auto& s = v->get_ref<const std::string&>();
      return s.empty() ? std::string(kMissing) : sanitize(s);
    }
    case nlohmann::json::value_t::number_integer: return std::to_string(v->get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: return std::to_string(v->get<std::uint64_t>());
    case nlohmann::json::value_t::number_float: return formatDouble(v->get<double>());
    case nlohmann::json::value_t::boolean: return v->get<bool>() ? "true" : "false";
    default: return std::string(kMissing);
  }
}

std::string textField(const nlohmann::json& j, std::string_view key) { return text(field(j, key)); }

std::string yesNoField(const nlohmann::json& j, std::string_view key) {
  const auto* v = field(j, key);
  if (v == nullptr || !v->is_boolean()) return std::string(kMissing);
  return v->get<bool>() ? "yes" : "no";
}

std::optional<double> numberField(const nlohmann::json& j, std::string_view key) {
  const auto* v = field(j, key);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  const double d = v->get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::string sanitize(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace nodemesh::cli
