// The admin API's view of the agent (docs/ADMIN-API.md is the contract).
#include <netinet/in.h>
#include <unistd.h>

#include "daemon/agent.h"

namespace nodemesh::daemon {
namespace {

using nlohmann::json;

json kernelJson(const KernelInfo& k, const std::string& cgroupMount, const std::string& bpffs) {
  json features = json::array();
  for (const auto& f : k.features) features.push_back({{"name", f.name}, {"available", f.available}, {"detail", f.detail}});
  return {{"release", k.release}, {"cgroup2Mount", cgroupMount}, {"bpffs", bpffs}, {"features", features}};
}

}  // namespace

// One read of the installed maps serves both the backend count and the
// counters (the maps are the truth, not the agent's memory).
Agent::DatapathView Agent::readDatapathView() const {
  DatapathView view;
  auto installed = lb_->readInstalled();
  if (!installed) return view;
  view.backends = installed->backends.size();
  if (auto stats = lb_->readStats(*installed)) view.stats = std::move(*stats);
  return view;
}

nm_service_stats Agent::DatapathView::statsOf(const nm_service_key& key) const {
  auto it = stats.find(key);
  return it == stats.end() ? nm_service_stats{} : it->second;
}

json Agent::meshJson() const {
  json j = mesh_ ? mesh_->statusJson() : json{{"proxy", "off"}};
  // What the kernel did for each registered (meshed) workload.
  if (lb_) {
    if (auto wl = lb_->readWorkloadStats()) {
      json workloads = json::array();
      for (const auto& w : *wl)
        workloads.push_back({{"cgroup", w.cgroup},
                             {"cgroupId", w.cgroupId},
                             {"inbound", w.strict ? "strict" : "permissive"},
                             {"captured", w.captured},
                             {"strictDrops", w.strictDrops}});
      j["workloads"] = workloads;
    }
  }
  return j;
}

json Agent::redirectJson() const {
  if (!redirect_) return json{{"enabled", false}};
  const auto st = redirect_->status();
  json j{{"enabled", st.enabled}, {"sockets", st.sockets ? json(*st.sockets) : json(nullptr)}};
  if (auto stats = redirect_->stats()) {
    j["messagesRedirected"] = stats->msgsRedirected;
    j["bytesRedirected"] = stats->bytesRedirected;
    j["messagesOverTcp"] = stats->msgsPassed + stats->msgsPinnedTcp;
  }
  return j;
}

json Agent::statusJson() const {
  std::lock_guard lock(mu_);
  const double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::string source = snapshot_ ? snapshot_->source : "";
  if (!snapshot_ && options_.externalSource) source = *options_.externalSource + " (waiting for the first sync)";
  json agent = {{"version", NM_VERSION},
                {"node", snapshot_ ? snapshot_->nodeName : options_.nodeName},
                {"pid", ::getpid()},
                {"uptimeSeconds", uptime},
                {"configSource", source},
                {"configVersion", snapshot_ ? snapshot_->version : 0},
                {"lastReloadError", lastReloadError_ ? json(*lastReloadError_) : json(nullptr)},
                {"metricsAddress", metricsAddress_ ? json(*metricsAddress_) : json(nullptr)}};

  json programs = json::array();
  json maps = json::array();
  json services = json::array();
  std::size_t backends = 0;
  if (lb_) {
    for (const auto& p : lb_->programs())
      programs.push_back({{"hook", p.hook}, {"cgroup", p.cgroup}, {"programId", p.programId}, {"linkId", p.linkId}, {"pin", p.pin}});
    for (const auto& m : lb_->mapFill())
      maps.push_back({{"name", m.name}, {"entries", m.entries ? json(*m.entries) : json(nullptr)}, {"maxEntries", m.maxEntries}});
    const DatapathView view = readDatapathView();
    backends = view.backends;
    for (const auto& [key, svc] : desired_) {
      const nm_service_stats s = view.statsOf(key);
      services.push_back({{"name", svc.name},
                          {"vip", datapath::addressOf(key.addr, key.family).toString()},
                          {"port", datapath::hostPort(key.port)},
                          {"protocol", key.proto == IPPROTO_UDP ? std::string("udp") : std::string("tcp")},
                          {"lb", state::toString(svc.algo)},
                          {"backends", svc.backendCount},
                          {"readyBackends", svc.readyCount},
                          {"connections", s.connections},
                          {"datagrams", s.datagrams},
                          {"noBackend", s.no_backend}});
    }
  }
  json counts = {{"services", snapshot_ ? snapshot_->services.size() : 0},
                 {"servicePorts", desired_.size()},
                 {"backends", backends},
                 {"workloads", snapshot_ ? snapshot_->workloads.size() : 0}};
  return {{"agent", agent},
          {"kernel", kernelJson(kernel_, cgroupMount_, bpffs_)},
          {"programs", programs},
          {"maps", maps},
          {"counts", counts},
          {"services", services},
          {"mesh", meshJson()},
          {"socketRedirect", redirectJson()}};
}

metrics::AgentMetrics Agent::metricsSnapshot() const {
  std::lock_guard lock(mu_);
  metrics::AgentMetrics m;
  m.version = NM_VERSION;
  m.uptimeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  m.configVersion = snapshot_ ? snapshot_->version : 0;
  m.reloadFailures = reloadFailures_;
  m.lastReloadSucceeded = !lastReloadError_;
  m.services = snapshot_ ? snapshot_->services.size() : 0;
  if (!lb_) return m;
  for (const auto& f : lb_->mapFill()) m.maps.push_back({f.name, f.entries, f.maxEntries});
  if (mesh_) mesh_->fillMetrics(m);
  const DatapathView view = readDatapathView();
  m.backends = view.backends;
  for (const auto& [key, svc] : desired_) {
    const nm_service_stats s = view.statsOf(key);
    m.servicePorts.push_back({svc.name, datapath::addressOf(key.addr, key.family).toString(),
                              datapath::hostPort(key.port), key.proto == IPPROTO_UDP ? "udp" : "tcp",
                              s.connections, s.datagrams, s.no_backend});
  }
  return m;
}

json Agent::servicesJson() const {
  std::lock_guard lock(mu_);
  json services = json::array();
  if (!snapshot_) return {{"services", services}};
  for (const auto& svc : snapshot_->services) {
    json vips = json::array();
    for (const auto& v : svc.vips) vips.push_back(v.toString());
    json ports = json::array();
    for (const auto& p : svc.ports)
      ports.push_back({{"name", p.name}, {"port", p.port}, {"protocol", state::toString(p.protocol)}, {"targetPort", p.targetPort}});
    json endpoints = json::array();
    for (const auto& e : svc.endpoints) {
      json ep = {{"address", e.address.toString()}, {"weight", e.weight}, {"ready", e.ready}, {"node", e.node}};
      if (e.port) ep["port"] = *e.port;
      endpoints.push_back(std::move(ep));
    }
    services.push_back({{"name", svc.qualifiedName()},
                        {"mode", state::toString(svc.mode)},
                        {"lb", state::toString(svc.lb)},
                        {"vips", vips},
                        {"ports", ports},
                        {"endpoints", endpoints}});
  }
  return {{"services", services}};
}

}  // namespace nodemesh::daemon
