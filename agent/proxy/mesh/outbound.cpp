// Outbound: a connection an app opened to a service VIP, steered to our
// capture listener by the BPF connect hook. The hook's record says what the
// app dialed and from which cgroup; identity comes from the cgroup, never
// from an address.
//
// Failures before the upstream answered are retried on another endpoint of
// the service (MeshProxyOptions::connectAttempts). The client socket is not
// read until the upstream is established (no recv is armed on it before
// relayReady), so there is nothing to replay: whatever the app sent waits in
// its socket's receive buffer (kernel memory, TCP flow control), and a
// retry only swaps the upstream side.
#include <sys/socket.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "proxy/mesh/mesh_worker.h"

namespace nodemesh::proxy::mesh {

namespace {
constexpr std::size_t kMaxEjections = 4096;  // per worker; beyond it a failure is not remembered

Result<SocketAddress> peerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return Error::sys("getpeername");
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}
}  // namespace

std::uint32_t MeshWorker::nextRandom() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

void MeshWorker::onOutboundAccept(UniqueFd client) {
  auto peer = peerAddress(client.get());
  if (!peer) {
    WorkerCounters::add(counters_.connection_errors);
    return;
  }
  auto record = shared_.capture(peer.value());
  if (!record) {
    bump(mesh_.uncaptured);
    spdlog::debug("mesh worker {}: {} was not captured by the connect hook: {}", index_, peer->toString(),
                  record.error().message);
    return;
  }
  const MeshWorkload* source = table_ ? table_->workloadByCgroup(record->cgroupId) : nullptr;
  if (source == nullptr) {
    bump(mesh_.unknown_workload);
    spdlog::debug("mesh worker {}: captured connection from cgroup {} (no known workload); closed", index_,
                  record->cgroupId);
    return;
  }
  const std::uint32_t ns = nsIndex(source->ns);
  const MeshService* service = table_->serviceByFrontend(record->originalDestination);
  if (service == nullptr) {
    bump(mesh_.no_route);
    spdlog::debug("mesh worker {}: {} dialed {}, which is no mtls service; closed", index_, source->id.str(),
                  record->originalDestination.toString());
    return;
  }
  const MeshEndpoint* ep = pickEndpoint(*service, nullptr);
  if (ep == nullptr) {
    bump(mesh_.no_endpoint);
    return;
  }
  if (ep->local && !allowLocal(*source, *service, *ep, ns)) return;
  if (!ns_[ns].cell->tryOpen(nsLimits(ns).maxConnections)) {
    bump(mesh_.tenancy_rejects);
    bump(nsCounters(ns).tenancy_rejects);
    spdlog::debug("mesh worker {}: namespace {} is at its connection cap ({}); refused {}", index_, source->ns,
                  nsLimits(ns).maxConnections, source->id.str());
    return;
  }
  bump(nsCounters(ns).connections_total);
  Relay& r = newRelay(ns);
  r.holdsConnection = true;
  r.fd[0] = std::move(client);
  r.route.table = table_;
  r.route.service = service;
  r.route.source = source;
  startUpstream(r, *ep);
}

void MeshWorker::startUpstream(Relay& r, const MeshEndpoint& ep) {
  Route& route = r.route;
  route.endpoint = &ep;
  route.tried[route.attempts++] = std::uint32_t(&ep - route.service->endpoints.data());
  if (ep.local)
    startLocal(r, ep);
  else
    startTunnelled(r, *route.source, ep);
}

// Same node: no TLS, but the authorization the destination's proxy would
// apply (checked before the connection takes a tenancy slot).
void MeshWorker::startLocal(Relay& r, const MeshEndpoint& ep) { relayConnect(r, 1, ep.address); }

bool MeshWorker::allowLocal(const MeshWorkload& source, const MeshService& service, const MeshEndpoint& ep,
                            std::uint32_t ns) {
  const MeshWorkload* dst = table_->workloadByAddress(ep.ip);
  policy::Request req{source.id.str(), source.ns, dst != nullptr ? dst->ns : service.ns, ep.port};
  const policy::Authorization::Match m = table_->authorization().match(req);
  if (m.verdict == policy::Verdict::kAllow) return true;
  bump(mesh_.policy_denials);
  bump(nsCounters(ns).policy_denials);
  spdlog::debug("mesh worker {}: {} -> {} denied by rule '{}'", index_, source.id.str(), ep.address.toString(),
                m.rule);
  return false;
}

// Another node: a CONNECT stream on a pooled HBONE connection presenting the
// client workload's certificate; the peer's proxy authorizes.
void MeshWorker::startTunnelled(Relay& r, const MeshWorkload& source, const MeshEndpoint& ep) {
  std::shared_ptr<const identity::IssuedCertificate> cert =
      shared_.identity.workloadCertificate ? shared_.identity.workloadCertificate(source.id) : nullptr;
  if (!cert) {
    bump(mesh_.no_certificate);
    spdlog::debug("mesh worker {}: no certificate for {} yet; closed", index_, source.id.str());
    return closeRelay(r, false);
  }
  Tunnel* t = pooledTunnel(source, ep.peer, cert);
  if (t == nullptr) t = openTunnel(source, ep.peer, std::move(cert), r.ns);
  if (t == nullptr) return closeRelay(r, false);
  auto stream = t->client->h2().connect(hbone::TunnelAddress{ep.ip, ep.port});
  if (!stream) {
    spdlog::debug("mesh worker {}: {}", index_, stream.error().message);
    WorkerCounters::add(counters_.connection_errors);
    return closeRelay(r, false);
  }
  r.streamSide = 1;
  r.tunnelSlot = t->slot;
  r.tunnelGen = t->gen;
  r.stream = stream.value();
  r.streamGone = false;
  t->streams.emplace(r.stream, r.slot);
  ++t->streamCount;
  markDirty(*t);  // the CONNECT goes out (after the handshake, if that is still running)
}

bool MeshWorker::retryOrClose(Relay& r, bool unhealthy, std::atomic<std::uint64_t>* giveUp) {
  if (r.closing) return false;
  Route& route = r.route;
  // Counted before the close, so whoever sees the client connection end sees the count.
  auto close = [&] {
    if (giveUp != nullptr) bump(*giveUp);
    closeRelay(r, false);
    return false;
  };
  if (route.service == nullptr || route.endpoint == nullptr) return close();
  if (unhealthy) eject(*route.endpoint);
  const unsigned limit = std::clamp(options_.connectAttempts, 1u, kMaxAttempts);
  const MeshEndpoint* next = stopping_ || route.attempts >= limit ? nullptr : pickEndpoint(*route.service, &route);
  if (next == nullptr) return close();
  if (next->local && !allowLocal(*route.source, *route.service, *next, r.ns)) return close();
  // Let go of the failed upstream side. The client side was never read.
  if (r.streamSide == 1) {
    detachStream(r, !r.streamGone);
    r.streamSide = -1;
    r.stream = 0;
    r.streamGone = false;
  }
  r.fd[1].reset();
  r.connectSide = -1;
  bump(mesh_.endpoint_retries);
  spdlog::debug("mesh worker {}: {} -> {}: attempt {} on {} failed; trying {}", index_, route.source->id.str(),
                route.service->name, route.attempts, route.endpoint->address.toString(), next->address.toString());
  startUpstream(r, *next);
  return !r.closing;
}

// Weighted random among the endpoints not tried yet (by this connection) and
// not ejected (by this worker); when all untried ones are ejected, among the
// untried ones anyway.
const MeshEndpoint* MeshWorker::pickEndpoint(const MeshService& service, const Route* route) {
  const std::uint32_t random = nextRandom();
  auto untried = [&](const MeshEndpoint& ep) {
    if (route == nullptr) return true;
    const auto index = std::uint32_t(&ep - service.endpoints.data());
    return std::find(route->tried, route->tried + route->attempts, index) == route->tried + route->attempts;
  };
  if (ejections_.empty()) return route == nullptr ? MeshTable::pick(service, random) : MeshTable::pickIf(service, random, untried);
  const Clock::time_point now = Clock::now();
  if (const MeshEndpoint* ep =
          MeshTable::pickIf(service, random, [&](const MeshEndpoint& e) { return untried(e) && !ejected(e, now); }))
    return ep;
  return MeshTable::pickIf(service, random, untried);
}

// ---- passive outlier ejection ---------------------------------------------------------

bool MeshWorker::ejected(const MeshEndpoint& ep, Clock::time_point now) const {
  auto it = ejections_.find(EndpointKey{ep.ip, ep.port});
  return it != ejections_.end() && now < it->second.until;
}

void MeshWorker::eject(const MeshEndpoint& ep) {
  const Clock::time_point now = Clock::now();
  const EndpointKey key{ep.ip, ep.port};
  auto it = ejections_.find(key);
  if (it == ejections_.end()) {
    if (ejections_.size() >= kMaxEjections) pruneEjections(now);
    if (ejections_.size() >= kMaxEjections) return;  // bounded: this failure is not remembered
    it = ejections_.emplace(key, Ejection{now, std::chrono::milliseconds(0)}).first;
  }
  Ejection& e = it->second;
  if (now < e.until) return;  // already out (several attempts failing at once count once)
  e.backoff = e.backoff.count() == 0 ? options_.ejectionTime : std::min(e.backoff * 2, options_.maxEjectionTime);
  e.until = now + e.backoff;
  bump(mesh_.endpoints_ejected);
  spdlog::debug("mesh worker {}: endpoint {} ejected for {} ms", index_, ep.address.toString(), e.backoff.count());
}

void MeshWorker::endpointHealthy(const MeshEndpoint& ep) {
  if (!ejections_.empty()) ejections_.erase(EndpointKey{ep.ip, ep.port});
}

// An endpoint back in rotation for maxEjectionTime without failing again is forgotten
// (its next failure starts from ejectionTime again).
void MeshWorker::pruneEjections(Clock::time_point now) {
  std::erase_if(ejections_, [&](const auto& kv) { return now >= kv.second.until + options_.maxEjectionTime; });
}

}  // namespace nodemesh::proxy::mesh
