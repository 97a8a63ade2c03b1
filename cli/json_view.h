// Lenient reads from the agent's JSON. The agent may be a different version
// than meshctl, so a missing field, an extra field or a wrong type must
// render as "-" instead of throwing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace nodemesh::cli {

inline constexpr std::string_view kMissing = "-";

// j[key] if j is an object that has it, else nullptr.
const nlohmann::json* field(const nlohmann::json& j, std::string_view key);
// j[key] if it is an array, else an empty array.
const nlohmann::json& arrayField(const nlohmann::json& j, std::string_view key);
// j[key] if it is an object, else an empty object.
const nlohmann::json& objectField(const nlohmann::json& j, std::string_view key);

// A scalar as display text: strings (sanitized), numbers, booleans as
// "true"/"false"; null, absent, arrays and objects as "-".
std::string text(const nlohmann::json* v);
std::string textField(const nlohmann::json& j, std::string_view key);
// A boolean as "yes"/"no", anything else as "-".
std::string yesNoField(const nlohmann::json& j, std::string_view key);
// A finite number, if that is what is there.
std::optional<double> numberField(const nlohmann::json& j, std::string_view key);

// Replaces control characters so names from the cluster cannot inject
// terminal escape sequences or break table rows.
std::string sanitize(std::string_view s);

}  // namespace nodemesh::cli
