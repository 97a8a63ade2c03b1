#include "daemon/metrics.h"

namespace nodemesh::daemon::metrics {
namespace {

std::size_t idx(Metric m) { return static_cast<std::size_t>(m); }

}  // namespace

std::vector<Sample> samplesOf(const AgentMetrics& m) {
  std::vector<Sample> out;
  out.reserve(16 + 2 * m.maps.size() + 3 * m.servicePorts.size());
  out.push_back({idx(Metric::kBuildInfo), {{"version", m.version}}, std::uint64_t{1}});
  out.push_back({idx(Metric::kUptime), {}, m.uptimeSeconds});
  out.push_back({idx(Metric::kConfigVersion), {}, m.configVersion});
  out.push_back({idx(Metric::kReloadFailures), {}, m.reloadFailures});
  out.push_back({idx(Metric::kLastReloadSuccess), {}, std::uint64_t{m.lastReloadSucceeded ? 1u : 0u}});
  out.push_back({idx(Metric::kServices), {}, m.services});
  out.push_back({idx(Metric::kBackends), {}, m.backends});
  for (const auto& map : m.maps) {
    if (map.entries) out.push_back({idx(Metric::kMapEntries), {{"map", map.name}}, std::uint64_t{*map.entries}});
    out.push_back({idx(Metric::kMapMaxEntries), {{"map", map.name}}, std::uint64_t{map.maxEntries}});
  }
  for (const auto& sp : m.servicePorts) {
    const Labels labels{{"service", sp.service}, {"vip", sp.vip}, {"port", std::to_string(sp.port)}, {"protocol", sp.protocol}};
    out.push_back({idx(Metric::kServiceConnections), labels, sp.connections});
    out.push_back({idx(Metric::kServiceDatagrams), labels, sp.datagrams});
    out.push_back({idx(Metric::kServiceNoBackend), labels, sp.noBackend});
  }
  for (const auto& ns : m.namespaces) {
    const Labels labels{{"namespace", ns.ns}};
    out.push_back({idx(Metric::kNsConnections), labels, ns.connections});
    out.push_back({idx(Metric::kNsActive), labels, ns.active});
    out.push_back({idx(Metric::kNsBytes), {{"namespace", ns.ns}, {"direction", "upstream"}}, ns.bytesUpstream});
    out.push_back({idx(Metric::kNsBytes), {{"namespace", ns.ns}, {"direction", "downstream"}}, ns.bytesDownstream});
    out.push_back({idx(Metric::kNsHandshakeFailures), labels, ns.handshakeFailures});
    out.push_back({idx(Metric::kNsPolicyDenials), labels, ns.policyDenials});
    out.push_back({idx(Metric::kNsTenancyRejects), labels, ns.tenancyRejects});
  }
  for (const auto& [kind, count] : m.proxyEvents) out.push_back({idx(Metric::kProxyEvents), {{"kind", kind}}, count});
  return out;
}

std::string render(const AgentMetrics& m) { return formatExposition(kFamilies, samplesOf(m)); }

}  // namespace nodemesh::daemon::metrics
