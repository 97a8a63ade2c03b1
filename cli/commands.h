// meshctl's query commands, separated from argument parsing so that their
// output and exit codes are testable with string streams.
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "admin_client.h"

namespace nodemesh::cli {

enum class OutputFormat { kText, kJson };

using Renderer = std::string (*)(const nlohmann::json&);

struct QueryTarget {
  std::string socketPath = kDefaultSocketPath;
  std::chrono::milliseconds timeout = kDefaultTimeout;
};

// GETs apiPath and prints it to out: pretty JSON, or render()'s text.
// On failure prints exactly one "meshctl: ..." line to err. Returns the
// process exit code (0 or 1).
int runQuery(const QueryTarget& target, std::string_view apiPath, OutputFormat format, Renderer render,
             std::ostream& out, std::ostream& err);

}  // namespace nodemesh::cli
