// Outbound: a connection an app opened to a service VIP, steered to our
// capture listener by the BPF connect hook. The hook's record says what the
// app dialed and from which cgroup; identity comes from the cgroup, never
// from an address.
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "proxy/mesh/mesh_worker.h"

namespace nodemesh::proxy::mesh {

namespace {
Result<SocketAddress> peerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return Error::sys("getpeername");
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}
}  // namespace

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
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  const MeshEndpoint* ep = MeshTable::pick(*service, rng_);
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
  if (ep->local)
    startLocal(r, *ep);
  else
    startTunnelled(r, *source, *ep);
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
  t->streams.emplace(r.stream, r.slot);
  ++t->streamCount;
  markDirty(*t);  // the CONNECT goes out (after the handshake, if that is still running)
}

}  // namespace nodemesh::proxy::mesh
