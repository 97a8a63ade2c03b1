// Text views of the agent's admin API answers (docs/ADMIN-API.md). Pure
// functions of the JSON so they are unit-testable; they never throw and
// render "-" for anything missing or of the wrong type.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace nodemesh::cli {

// GET /v1/status as shown by `meshctl node status`.
std::string renderNodeStatus(const nlohmann::json& status);

// GET /v1/services as shown by `meshctl services`.
std::string renderServices(const nlohmann::json& services);

// 512 -> "512B", 1536 -> "1.5KiB", 12 * 2^20 -> "12.0MiB" (binary units).
std::string formatBytes(std::uint64_t bytes);

// 3723.4 -> "1h02m03s", 12.5 -> "12s", 90061 -> "1d01h01m01s";
// negative or non-finite -> "-".
std::string formatUptime(double seconds);

}  // namespace nodemesh::cli
