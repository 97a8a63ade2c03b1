// meshctl's client for the agent's admin API: one HTTP/1.0 GET over the
// agent's UNIX socket (docs/ADMIN-API.md).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace nodemesh::cli {

inline constexpr const char* kDefaultSocketPath = "/run/nodemesh/admin.sock";
inline constexpr std::chrono::milliseconds kDefaultTimeout{5000};

// GETs apiPath ("/v1/status") and returns the JSON body of a 200 answer.
// Every error message is ready to show an operator as is: what failed and
// what to do (start the agent, use sudo, ...). Error::code carries the errno
// of a failed connect, 0 for an HTTP-level refusal.
Result<std::string> fetch(const std::string& socketPath, std::string_view apiPath,
                          std::chrono::milliseconds timeout = kDefaultTimeout);

// The operator-facing message for a connect() failure with errno err.
std::string connectErrorMessage(const std::string& socketPath, int err);

}  // namespace nodemesh::cli
