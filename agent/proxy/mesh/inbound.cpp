// Inbound: HBONE from peer nodes. TLS presents the node's certificate and
// requires a verified client certificate (PeerVerifier: chain, trust domain,
// SPIFFE ID). Each CONNECT must name a workload of this node - anything else
// is refused, so the proxy never relays to arbitrary addresses - and pass
// authorization and the destination namespace's connection cap.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "proxy/mesh/mesh_worker.h"

namespace nodemesh::proxy::mesh {

// The server context presents the node certificate current at accept time;
// a rotated certificate makes a new context (the old one lives on in the
// connections that use it).
Result<std::shared_ptr<const hbone::TlsContext>> MeshWorker::serverContext() {
  std::shared_ptr<const identity::IssuedCertificate> cert =
      shared_.identity.nodeCertificate ? shared_.identity.nodeCertificate() : nullptr;
  if (!cert) return Error{"no node certificate yet (the identity provider has none)"};
  if (cert.get() != serverCert_ || !serverCtx_) {
    auto ctx = hbone::TlsContext::server(cert, shared_.identity.verifier);
    if (!ctx) return ctx.error();
    serverCtx_ = std::move(ctx).value();
    serverCert_ = cert.get();
    serverCertRef_ = std::move(cert);
  }
  return serverCtx_;
}

void MeshWorker::onInboundAccept(UniqueFd fd) {
  auto ctx = serverContext();
  if (!ctx) {
    spdlog::warn("mesh worker {}: refusing an HBONE connection: {}", index_, ctx.error().message);
    WorkerCounters::add(counters_.connection_errors);
    return;
  }
  auto conn = hbone::HboneServerConnection::create(
      ctx.value(), [this](const std::optional<identity::SpiffeId>& peer,
                          const hbone::TunnelAddress& dst) { return authorizeInbound(peer, dst); },
      options_.h2, &hboneIn_, hbone::AnswerMode::kDeferred);
  if (!conn) {
    spdlog::warn("mesh worker {}: HBONE server connection: {}", index_, conn.error().message);
    WorkerCounters::add(counters_.connection_errors);
    return;
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  Tunnel& t = newTunnel();
  if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    t.peerAddr = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  t.fd = std::move(fd);
  t.server = true;
  t.connected = true;
  t.serverConn = std::move(conn).value();
  bump(mesh_.tunnels_accepted);
  armTunnelRecv(t);
}

// Runs inside HboneServerConnection::receive(), before the request becomes kRequested.
bool MeshWorker::authorizeInbound(const std::optional<identity::SpiffeId>& peer, const hbone::TunnelAddress& dst) {
  const MeshWorkload* w = table_ ? table_->workloadByAddress(dst.ip) : nullptr;
  if (w == nullptr) {
    bump(mesh_.not_local);
    spdlog::debug("mesh worker {}: {} asked for a tunnel to {}, which is no workload of this node; refused", index_,
                  peer ? peer->str() : "(no identity)", dst.toString());
    return false;
  }
  const std::uint32_t ns = nsIndex(w->ns);
  policy::Request req{peer ? std::string_view(peer->str()) : std::string_view(), {}, w->ns, dst.port};
  const policy::Authorization::Match m = table_->authorization().match(req);
  if (m.verdict == policy::Verdict::kDeny) {
    bump(mesh_.policy_denials);
    bump(nsCounters(ns).policy_denials);
    spdlog::debug("mesh worker {}: {} -> {} ({}) denied by rule '{}'", index_, peer ? peer->str() : "(no identity)",
                  dst.toString(), w->ns, m.rule);
    return false;
  }
  // The cap is checked here so a refusal is a clean 403; the slot is taken
  // when the stream opens (another worker may win the last slot between).
  const std::uint32_t cap = nsLimits(ns).maxConnections;
  if (cap != 0 && ns_[ns].cell->active.load(std::memory_order_relaxed) >= cap) {
    bump(mesh_.tenancy_rejects);
    bump(nsCounters(ns).tenancy_rejects);
    return false;
  }
  return true;
}

// A kRequested stream (authorized, not answered yet): reserve the namespace
// slot, connect to the destination; the answer waits for the connect
// (answerInbound), so a dead backend is a 503 the client can retry
// elsewhere, not a 200 followed by a reset.
void MeshWorker::onInboundStream(Tunnel& t, std::int32_t stream, const hbone::TunnelAddress& dst) {
  hbone::HboneServer* s = t.serverConn->h2();
  const MeshWorkload* w = table_ ? table_->workloadByAddress(dst.ip) : nullptr;
  auto to = SocketAddress::parse(dst.ip.toString(), dst.port);
  if (w == nullptr || !to) {  // the table changed since the authorization
    bump(mesh_.not_local);
    s->decline(stream, 403, hbone::StreamReject::kDenied);
    return markDirty(t);
  }
  const std::uint32_t ns = nsIndex(w->ns);
  if (!ns_[ns].cell->tryOpen(nsLimits(ns).maxConnections)) {  // another worker took the last slot
    bump(mesh_.tenancy_rejects);
    bump(nsCounters(ns).tenancy_rejects);
    s->decline(stream, 403, hbone::StreamReject::kDenied);
    return markDirty(t);
  }
  bump(nsCounters(ns).connections_total);
  Relay& r = newRelay(ns);
  r.holdsConnection = true;
  r.streamSide = 0;
  r.tunnelSlot = t.slot;
  r.tunnelGen = t.gen;
  r.stream = stream;
  t.streams.emplace(stream, r.slot);
  relayConnect(r, 1, to.value());
}

void MeshWorker::answerInbound(Relay& r, bool connected, int connectError) {
  Tunnel* t = tunnelOf(r);
  hbone::HboneServer* s = t != nullptr && t->server && t->serverConn ? t->serverConn->h2() : nullptr;
  if (s == nullptr) return closeRelay(r, false);
  if (!connected) {
    bump(mesh_.backend_unavailable);
    spdlog::debug("mesh worker {}: tunnel from {} to {}: {}; answered 503", index_, t->peer,
                  r.connectAddr.toString(), std::strerror(-connectError));
    s->decline(r.stream, 503, hbone::StreamReject::kUnavailable);
    r.streamGone = true;  // answered and ended: nothing to reset
    markDirty(*t);
    return closeRelay(r, false);
  }
  if (!s->accept(r.stream)) {  // the peer gave up meanwhile (kClosed follows or came already)
    r.streamGone = true;
    return closeRelay(r, false);
  }
  bump(mesh_.tunnel_streams);
  ++t->streamCount;
  markDirty(*t);
  relayReady(r);
}

}  // namespace nodemesh::proxy::mesh
