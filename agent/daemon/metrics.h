// What the agent exports on /metrics. The family list below is the single
// place a metric is declared: add one line to NM_METRIC_FAMILIES, then emit
// its samples in metrics.cpp (samplesOf). docs/ADMIN-API.md lists them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/metrics_exposition.h"

namespace nodemesh::daemon::metrics {

// X(enumerator, name, type, help)
#define NM_METRIC_FAMILIES(X)                                                                                   \
  X(kBuildInfo, "nodemesh_build_info", kGauge, "Always 1; the version label names the running agent build.")    \
  X(kUptime, "nodemesh_agent_uptime_seconds", kGauge, "Seconds since this agent process started.")              \
  X(kConfigVersion, "nodemesh_config_version", kGauge,                                                          \
    "Version of the config snapshot being served (0: none applied yet); +1 per applied snapshot.")              \
  X(kReloadFailures, "nodemesh_config_reload_failures_total", kCounter,                                         \
    "Config reloads or source snapshots that were rejected; the last good config kept serving.")                \
  X(kLastReloadSuccess, "nodemesh_config_last_reload_success", kGauge,                                          \
    "1 if the last config reload or source snapshot was applied (or none was tried yet), 0 if rejected.")       \
  X(kServices, "nodemesh_services", kGauge, "Services in the config snapshot being served.")                    \
  X(kBackends, "nodemesh_backends", kGauge, "Backend entries installed in the datapath maps.")                  \
  X(kMapEntries, "nodemesh_bpf_map_entries", kGauge, "Entries in a BPF map (absent where the kernel cannot count them).") \
  X(kMapMaxEntries, "nodemesh_bpf_map_max_entries", kGauge, "Capacity of a BPF map.")                           \
  X(kServiceConnections, "nodemesh_service_connections_total", kCounter,                                        \
    "TCP connects to a service VIP:port that the kernel sent to a backend.")                                    \
  X(kServiceDatagrams, "nodemesh_service_datagrams_total", kCounter,                                            \
    "UDP datagrams to a service VIP:port that the kernel sent to a backend.")                                   \
  X(kServiceNoBackend, "nodemesh_service_no_backend_total", kCounter,                                           \
    "Connects or datagrams to a service VIP:port refused because it had no ready backend.")                     \
  X(kNsConnections, "nodemesh_namespace_connections_total", kCounter,                                           \
    "Connections the node proxy accepted for a namespace (outbound: the client's; inbound: the destination's).") \
  X(kNsActive, "nodemesh_namespace_active_connections", kGauge,                                                 \
    "Connections of a namespace the node proxy holds now.")                                                     \
  X(kNsBytes, "nodemesh_namespace_bytes_total", kCounter,                                                       \
    "Payload bytes the node proxy moved for a namespace's connections (upstream: source to destination; downstream: back).")  \
  X(kNsHandshakeFailures, "nodemesh_namespace_handshake_failures_total", kCounter,                              \
    "mTLS handshakes that failed for a namespace's connections.")                                               \
  X(kNsPolicyDenials, "nodemesh_namespace_policy_denials_total", kCounter,                                      \
    "Connections refused by authorization, by destination namespace.")                                         \
  X(kNsTenancyRejects, "nodemesh_namespace_tenancy_rejects_total", kCounter,                                    \
    "Connections refused because the namespace was at its maxConnections cap.")                                 \
  X(kProxyEvents, "nodemesh_proxy_events_total", kCounter,                                                      \
    "Node proxy events by kind (uncaptured, no_route, tls failures and close reasons, stream rejects, ...).")

enum class Metric : std::size_t {
#define NM_METRIC_ENUM(id, name, type, help) id,
  NM_METRIC_FAMILIES(NM_METRIC_ENUM)
#undef NM_METRIC_ENUM
      kCount
};

inline constexpr Family kFamilies[] = {
#define NM_METRIC_FAMILY(id, name, type, help) Family{name, Type::type, help},
    NM_METRIC_FAMILIES(NM_METRIC_FAMILY)
#undef NM_METRIC_FAMILY
};
static_assert(std::size(kFamilies) == static_cast<std::size_t>(Metric::kCount));

struct MapGauge {
  std::string name;
  std::optional<std::uint32_t> entries;
  std::uint32_t maxEntries = 0;
};

// One (service, VIP, port, protocol): the unit the kernel balances and counts.
struct ServicePortCounters {
  std::string service;  // namespace/name
  std::string vip;
  std::uint16_t port = 0;
  std::string protocol;  // tcp | udp
  std::uint64_t connections = 0, datagrams = 0, noBackend = 0;
};

// Per-namespace accounting of the node proxy.
struct NamespaceCounters {
  std::string ns;
  std::uint64_t connections = 0, active = 0, bytesUpstream = 0, bytesDownstream = 0;
  std::uint64_t handshakeFailures = 0, policyDenials = 0, tenancyRejects = 0;
};

// A copy of everything /metrics shows, taken under the agent's lock so the
// formatting happens outside it.
struct AgentMetrics {
  std::string version;
  double uptimeSeconds = 0;
  std::uint64_t configVersion = 0;
  std::uint64_t reloadFailures = 0;
  bool lastReloadSucceeded = true;
  std::uint64_t services = 0;
  std::uint64_t backends = 0;
  std::vector<MapGauge> maps;
  std::vector<ServicePortCounters> servicePorts;
  std::vector<NamespaceCounters> namespaces;                      // empty when no node proxy runs
  std::vector<std::pair<std::string, std::uint64_t>> proxyEvents;  // (kind, count)
};

std::vector<Sample> samplesOf(const AgentMetrics& m);
// The /metrics body.
std::string render(const AgentMetrics& m);

}  // namespace nodemesh::daemon::metrics
