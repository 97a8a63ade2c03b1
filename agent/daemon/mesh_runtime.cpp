#include "daemon/mesh_runtime.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "common/unique_fd.h"

namespace nodemesh::daemon {

namespace {

// IPv6 can be disabled on a node (or in a pod's netns); the [::1] capture
// listener is only opened when the loopback address exists.
bool ipv6LoopbackUsable() {
  UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
}

std::string isoTime(identity::TimePoint t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

bool meshNeeded(const state::Snapshot& snapshot) {
  for (const auto& w : snapshot.workloads)
    if (w.meshed) return true;
  for (const auto& s : snapshot.services)
    if (s.mode == state::ServiceMode::kMtls) return true;
  return false;
}

bool MeshRuntime::Listeners::operator==(const Listeners& o) const {
  auto same = [](const proxy::SocketAddress& a, const proxy::SocketAddress& b) { return a.toString() == b.toString(); };
  if (outbound.size() != o.outbound.size() || inbound.has_value() != o.inbound.has_value() || workers != o.workers)
    return false;
  for (std::size_t i = 0; i < outbound.size(); ++i)
    if (!same(outbound[i], o.outbound[i])) return false;
  return !inbound || same(*inbound, *o.inbound);
}

Result<MeshRuntime::Listeners> MeshRuntime::listenersFor(const state::Snapshot& snapshot) const {
  Listeners l;
  l.workers = snapshot.mesh.workers;
  const auto outPort = snapshot.mesh.outboundPort;
  auto add = [&](std::string_view ip, std::uint16_t port) -> Status {
    auto a = proxy::SocketAddress::parse(ip, port);
    if (!a) return Error{"mesh: listener " + std::string(ip) + ": " + a.error().message};
    l.outbound.push_back(*a);
    return {};
  };
  if (auto st = add("127.0.0.1", outPort); !st) return st.error();
  if (ipv6LoopbackUsable())
    if (auto st = add("::1", outPort); !st) return st.error();
  if (snapshot.nodeAddress) {
    // Workloads in their own network namespace are steered here: they cannot reach the host's loopback.
    if (auto st = add(snapshot.nodeAddress->toString(), outPort); !st) return st.error();
    auto in = proxy::SocketAddress::parse(snapshot.nodeAddress->toString(), snapshot.mesh.inboundPort);
    if (!in) return Error{"mesh: HBONE listener: " + in.error().message};
    l.inbound = *in;
  }
  return l;
}

Result<proxy::mesh::MeshTablePtr> MeshRuntime::buildTable(const state::Snapshot& snapshot) const {
  const std::string mount = cgroupMount_;
  return proxy::mesh::buildMeshTable(
      snapshot, [mount](const std::string& rel) { return datapath::cgroupIdOf(mount, rel); });
}

Status MeshRuntime::ensureCaptureTable() {
  if (capture_) return {};
  auto t = datapath::CaptureTable::openPinned(pinRoot_);
  if (!t) return Error{"mesh: opening the capture map: " + t.error().message};
  capture_ = std::move(*t);
  return {};
}

Status MeshRuntime::apply(const state::Snapshot& snapshot) {
  if (!meshNeeded(snapshot)) {
    if (proxy_) spdlog::info("mesh: no meshed workload and no mtls service any more; stopping the node proxy");
    stop();
    snapshot_ = std::make_shared<const state::Snapshot>(snapshot);
    return {};
  }
  // Identity first: a CA that does not load rejects the snapshot before
  // anything changes.
  std::unique_ptr<MeshIdentity> newIdentity;
  if (!identity_ || identity_->differsFrom(snapshot.mesh)) {
    auto created = MeshIdentity::create(snapshot.mesh);
    if (!created) return created.error();
    newIdentity = std::move(*created);
  }
  auto table = buildTable(snapshot);
  if (!table) return Error{"mesh: " + table.error().message};
  for (const auto& w : (*table)->warnings()) spdlog::warn("mesh: {}", w);
  auto listeners = listenersFor(snapshot);
  if (!listeners) return listeners.error();
  if (auto st = ensureCaptureTable(); !st) return st;

  const bool restart = !proxy_ || newIdentity || !(*listeners == listeners_);
  MeshIdentity& ident = newIdentity ? *newIdentity : *identity_;
  const auto report = ident.refresh(snapshot);
  if (!ident.nodeCertificate()) {
    std::string why = report.failures.empty() ? "no certificate issued" : report.failures.front().message;
    return Error{"mesh: cannot issue the node certificate: " + why};
  }
  if (restart) {
    if (proxy_) spdlog::info("mesh: proxy listeners or CA changed; restarting the node proxy (open connections close)");
    proxy::mesh::MeshProxyOptions options;
    options.outbound = listeners->outbound;
    options.inbound = listeners->inbound;
    options.workers = listeners->workers;
    const MeshIdentity* id = &ident;
    proxy::mesh::IdentityProvider provider;
    provider.workloadCertificate = [id](const identity::SpiffeId& s) { return id->workloadCertificate(s); };
    provider.nodeCertificate = [id] { return id->nodeCertificate(); };
    provider.verifier = ident.verifier();
    std::shared_ptr<datapath::CaptureTable> capture = capture_;
    auto lookup = [capture](const proxy::SocketAddress& client) -> Result<proxy::mesh::CaptureRecord> {
      auto r = capture->lookup(client.get(), client.len);
      if (!r) return r.error();
      auto dst = proxy::SocketAddress::parse(r->ip().toString(), r->port);
      if (!dst) return dst.error();
      return proxy::mesh::CaptureRecord{*dst, r->cgroupId};
    };
    // The old proxy must release the ports before the new one binds them.
    if (proxy_) {
      proxy_->stop();
      proxy_.reset();
    }
    auto started = proxy::mesh::MeshProxy::start(std::move(options), std::move(lookup), std::move(provider), *table);
    if (!started) {
      // The identity the old proxy used is still ours; nothing serves until the next good apply.
      return Error{"mesh: starting the node proxy: " + started.error().message +
                   " (check that mesh.outboundPort/inboundPort are free and node.address is configured on this node)"};
    }
    proxy_ = std::move(*started);
    if (newIdentity) identity_ = std::move(newIdentity);
    listeners_ = *listeners;
    std::string outs;
    for (const auto& a : proxy_->outboundAddresses()) outs += (outs.empty() ? "" : ", ") + a.toString();
    spdlog::info("mesh: node proxy serving with {} workers; capture on {}; HBONE on {}", proxy_->workers(), outs,
                 proxy_->inboundAddress() ? proxy_->inboundAddress()->toString() : std::string("(none: no node.address)"));
    auto missing = proxy_->features().missing();
    for (const auto& f : missing) spdlog::warn("mesh: io_uring feature {} is missing on this kernel; using the fallback", f);
  } else {
    proxy_->update(*table);
  }
  table_ = *table;
  snapshot_ = std::make_shared<const state::Snapshot>(snapshot);
  return {};
}

void MeshRuntime::tick() {
  if (!proxy_ || !identity_) return;
  if (auto due = identity_->nextRenewal(); due && identity::systemNow() >= *due) identity_->rotate();
  // A workload whose cgroup appeared after the apply becomes routable.
  if (table_ && snapshot_ && !table_->warnings().empty()) {
    auto table = buildTable(*snapshot_);
    if (table && (*table)->warnings().size() < table_->warnings().size()) {
      spdlog::info("mesh: a workload cgroup appeared; updating the proxy table");
      table_ = *table;
      proxy_->update(table_);
    }
  }
}

void MeshRuntime::stop() {
  if (proxy_) {
    proxy_->stop();
    proxy_.reset();
  }
  table_.reset();
  listeners_ = {};
}

nlohmann::json MeshRuntime::statusJson() const {
  nlohmann::json j;
  j["proxy"] = proxy_ ? "running" : "off";
  if (!proxy_) return j;
  nlohmann::json outs = nlohmann::json::array();
  for (const auto& a : proxy_->outboundAddresses()) outs.push_back(a.toString());
  j["captureListeners"] = outs;
  j["hboneListener"] = proxy_->inboundAddress() ? nlohmann::json(proxy_->inboundAddress()->toString()) : nlohmann::json();
  j["workers"] = proxy_->workers();
  j["missingRingFeatures"] = proxy_->features().missing();
  if (identity_) {
    j["identity"] = {{"trustDomain", identity_->nodeId().trustDomain()},
                     {"ca", identity_->authority().isDevelopment() ? std::string("development CA (generated in memory)")
                                                                   : identity_->authority().source()},
                     {"node", identity_->nodeId().str()},
                     {"certificates", identity_->certificates()}};
    if (auto next = identity_->nextRenewal()) j["identity"]["nextRotation"] = isoTime(*next);
  }
  const auto stats = proxy_->stats();
  nlohmann::json counters;
  stats.mesh.forEach([&](const char* name, const char*, std::uint64_t v) { counters[name] = v; });
  j["counters"] = counters;
  nlohmann::json nss = nlohmann::json::array();
  for (const auto& ns : proxy_->namespaceStats()) {
    nlohmann::json n{{"namespace", ns.name}};
    ns.forEach([&](const char* name, const char*, std::uint64_t v) { n[name] = v; });
    nss.push_back(n);
  }
  j["namespaces"] = nss;
  if (table_) j["warnings"] = table_->warnings();
  return j;
}

void MeshRuntime::fillMetrics(metrics::AgentMetrics& out) const {
  if (!proxy_) return;
  for (const auto& ns : proxy_->namespaceStats()) {
    metrics::NamespaceCounters c;
    c.ns = ns.name;
    c.connections = ns.connections_total;
    c.active = ns.connections_active;
    c.bytesUpstream = ns.bytes_in;
    c.bytesDownstream = ns.bytes_out;
    c.handshakeFailures = ns.handshake_failures;
    c.policyDenials = ns.policy_denials;
    c.tenancyRejects = ns.tenancy_rejects;
    out.namespaces.push_back(std::move(c));
  }
  const auto stats = proxy_->stats();
  stats.mesh.forEach([&](const char* name, const char*, std::uint64_t v) { out.proxyEvents.emplace_back(name, v); });
  for (std::size_t i = 0; i < stats.inbound.tlsFailures.size(); ++i)
    if (i != 0)
      out.proxyEvents.emplace_back(std::string("inbound_tls_") + proxy::hbone::toString(static_cast<proxy::hbone::TlsFailure>(i)),
                                   stats.inbound.tlsFailures[i]);
  for (std::size_t i = 0; i < stats.outbound.tlsFailures.size(); ++i)
    if (i != 0)
      out.proxyEvents.emplace_back(std::string("outbound_tls_") + proxy::hbone::toString(static_cast<proxy::hbone::TlsFailure>(i)),
                                   stats.outbound.tlsFailures[i]);
  for (std::size_t i = 0; i < stats.inbound.closes.size(); ++i)
    if (i != 0)
      out.proxyEvents.emplace_back(std::string("inbound_close_") + proxy::hbone::toString(static_cast<proxy::hbone::CloseReason>(i)),
                                   stats.inbound.closes[i]);
}

}  // namespace nodemesh::daemon
