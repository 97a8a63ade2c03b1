// The metrics and health listener's routes (127.0.0.1:15020 by default,
// --metrics-address): GET /metrics, /healthz, /readyz. Not root-only and
// nothing secret: counts, versions, service names and VIPs.
#pragma once

#include <string_view>

#include "admin/http_message.h"
#include "daemon/agent.h"

namespace nodemesh::daemon {

admin::Response metricsRoute(const Agent& agent, std::string_view method, std::string_view path);

}  // namespace nodemesh::daemon
