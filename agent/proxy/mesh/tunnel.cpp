// Tunnels: HBONE connections (TLS 1.3 + HTTP/2) driven over the worker's
// ring, and the per-worker pool of client tunnels.
//
// The sans-IO objects are fed from provided buffers as ciphertext arrives
// (the buffer goes back to the ring at once: HTTP/2 flow control, not our
// FIFO, bounds what a peer can make us hold) and drained into one send at a
// time. Work that produces frames (a relay writing to a stream, reading from
// one, closing one) only marks the tunnel dirty; after each batch of
// completions every dirty tunnel handles its stream events and flushes, so a
// burst of relay activity becomes one TLS write.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "proxy/mesh/mesh_worker.h"

namespace nodemesh::proxy::mesh {

namespace {
constexpr int kMaxServiceRounds = 64;  // per batch; leftovers keep the loop from sleeping
constexpr std::uint8_t kTunnelStall = 2;
}  // namespace

MeshWorker::Tunnel& MeshWorker::newTunnel() {
  std::uint32_t slot;
  if (!freeTunnels_.empty()) {
    slot = freeTunnels_.back();
    freeTunnels_.pop_back();
  } else {
    slot = std::uint32_t(tunnels_.size());
    tunnels_.emplace_back();
  }
  Tunnel& t = tunnels_[slot];
  const std::uint32_t gen = t.gen;
  t = Tunnel{};
  t.slot = slot;
  t.gen = gen;
  t.inUse = true;
  t.deadline = Clock::now() + options_.handshakeTimeout;
  t.idleSince = Clock::now();
  return t;
}

hbone::H2Session* MeshWorker::h2(Tunnel& t) {
  if (t.server) return t.serverConn ? t.serverConn->h2() : nullptr;
  return t.client ? &t.client->h2() : nullptr;
}

MeshWorker::Tunnel* MeshWorker::tunnelOf(Relay& r) {
  if (r.streamSide < 0 || r.tunnelSlot >= tunnels_.size()) return nullptr;
  Tunnel& t = tunnels_[r.tunnelSlot];
  if (!t.inUse || t.gen != r.tunnelGen || t.closing) return nullptr;
  return &t;
}

void MeshWorker::markDirty(Tunnel& t) {
  if (t.dirty || t.closing) return;
  t.dirty = true;
  dirty_.push_back(t.slot);
}

void MeshWorker::serviceDirty() {
  for (int round = 0; round < kMaxServiceRounds && !dirty_.empty(); ++round) {
    std::vector<std::uint32_t> list;
    list.swap(dirty_);
    for (std::uint32_t slot : list) {
      Tunnel& t = tunnels_[slot];
      t.dirty = false;
      if (t.inUse && !t.closing) serviceTunnel(t);
    }
  }
}

void MeshWorker::serviceTunnel(Tunnel& t) {
  hbone::TlsSession& tls = t.server ? t.serverConn->tls() : t.client->tls();
  if (!t.established && tls.established()) {
    t.established = true;
    if (tls.peerId()) t.peer = tls.peerId()->str();
    if (options_.onTunnelEstablished)
      options_.onTunnelEstablished(TunnelInfo{t.server, t.peerAddr, t.peer, tls.peerCertificateSerial()});
  }
  // Events first (they may write to streams), then flush; flushing frames
  // DATA, which may report kWritable: handle those too, and flush again.
  for (int i = 0; i < 4 && !t.closing; ++i) {
    hbone::H2Session* s = h2(t);
    bool any = false;
    if (s != nullptr) {
      for (const hbone::StreamEvent& e : s->takeEvents()) {
        any = true;
        handleStreamEvent(t, e);
        if (t.closing) return;
      }
    }
    const bool wasInflight = t.sendInflight;
    flushTunnel(t);
    if (!any && (wasInflight || !t.sendInflight)) break;
  }
  if (t.closing || t.sendInflight) return;
  const bool finished = t.server ? t.serverConn->finished() : t.client->finished();
  hbone::H2Session* s = h2(t);
  if (finished || t.failed) return closeTunnel(t);
  if (t.draining && t.streams.empty() && (s == nullptr || s->streamCount() == 0)) return closeTunnel(t);
}

void MeshWorker::flushTunnel(Tunnel& t) {
  if (!t.connected || t.sendInflight || t.closing) return;
  if (t.outOff >= t.out.size()) {
    t.out.clear();
    t.outOff = 0;
    if (t.server)
      t.serverConn->output(t.out);
    else
      t.client->output(t.out);
  }
  if (t.outOff >= t.out.size()) return;
  io_uring_sqe sqe{};
  io_uring_prep_send(&sqe, t.fd.get(), t.out.data() + t.outOff, t.out.size() - t.outOff, MSG_NOSIGNAL);
  t.sendInflight = true;
  ++t.ops;
  submit(sqe, encode(MeshOp::kTunnelSend, t.slot, t.gen));
}

void MeshWorker::onTunnelSent(Tunnel& t, int res) {
  if (t.closing) return;
  if (res > 0) {
    t.outOff += std::size_t(res);
    if (t.outOff >= t.out.size() && t.out.capacity() > 256 * 1024) t.out = std::string();  // after a burst
    return markDirty(t);
  }
  if (res == -EINTR || res == -EAGAIN) return markDirty(t);
  spdlog::debug("mesh worker {}: HBONE send to {} failed: {}", index_, t.peerAddr.toString(), std::strerror(-res));
  closeTunnel(t);
}

void MeshWorker::armTunnelRecv(Tunnel& t) {
  io_uring_sqe sqe{};
  if (multishotRecv_.load(std::memory_order_relaxed))
    io_uring_prep_recv_multishot(&sqe, t.fd.get(), nullptr, 0, 0);
  else
    io_uring_prep_recv(&sqe, t.fd.get(), nullptr, 0, 0);
  sqe.flags |= IOSQE_BUFFER_SELECT;
  sqe.buf_group = buffers_.group();
  t.recvArmed = true;
  ++t.ops;
  submit(sqe, encode(MeshOp::kTunnelRecv, t.slot, t.gen));
}

void MeshWorker::feedTunnel(Tunnel& t, std::span<const std::uint8_t> bytes) {
  Status st = t.server ? t.serverConn->receive(bytes) : t.client->receive(bytes);
  if (!st) {
    // The reason is counted by the HBONE layer; flush the alert or GOAWAY, then close.
    t.failed = true;
    if (!t.server && t.client->tls().peerMismatch()) bump(mesh_.peer_identity_mismatch);
    spdlog::debug("mesh worker {}: HBONE {} {}: {}", index_, t.server ? "connection from" : "connection to",
                  t.peerAddr.toString(), st.error().message);
  }
  markDirty(t);
}

void MeshWorker::onTunnelRecv(Tunnel& t, int res, std::uint32_t flags) {
  if (flags & IORING_CQE_F_BUFFER) {
    const auto bid = std::uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    WorkerCounters::add(counters_.buffers_in_use);
    if (res > 0 && !t.closing && !t.failed) feedTunnel(t, std::span<const std::uint8_t>(buffers_.buffer(bid), res));
    dropBuffer(bid, 0);
  }
  if (t.closing) return;
  if (res > 0) {
    recvProven_ = true;
    if (!t.recvArmed && !t.failed && !stopping_) armTunnelRecv(t);
    return;
  }
  if (res == 0) return closeTunnel(t);  // the peer closed the connection
  switch (-res) {
    case ENOBUFS:
      WorkerCounters::add(counters_.enobufs_stalls);
      growBuffers();
      t.stalled = true;
      stalled_.push_back(DirRef{t.slot, t.gen, kTunnelStall});
      return;
    case EINVAL:
      if (!recvProven_ && multishotRecv_.load(std::memory_order_relaxed)) {
        spdlog::warn("mesh worker {}: kernel refused multishot recv; receiving one buffer at a time", index_);
        multishotRecv_ = false;
        return armTunnelRecv(t);
      }
      break;
    case ECANCELED:
    case EINTR:
    case EAGAIN:
      if (!t.recvArmed) armTunnelRecv(t);
      return;
    default:
      break;
  }
  WorkerCounters::add(counters_.connection_errors);
  closeTunnel(t);
}

void MeshWorker::onTunnelConnect(Tunnel& t, int res) {
  if (t.closing) return;
  if (res < 0) {
    bump(mesh_.tunnel_connect_failures);
    // Debug, not warn: with a peer down every new connection lands here; the
    // counter (tunnel_connect_failures) is what the operator watches.
    spdlog::debug("mesh worker {}: HBONE connect to peer node {} failed: {} (is its port reachable from this node? "
                  "a firewall or NetworkPolicy may block it)", index_, t.peerAddr.toString(), std::strerror(-res));
    return closeTunnel(t);
  }
  t.connected = true;
  armTunnelRecv(t);
  markDirty(t);  // the ClientHello (and queued CONNECTs) go out
}

void MeshWorker::handleStreamEvent(Tunnel& t, const hbone::StreamEvent& e) {
  using Kind = hbone::StreamEvent::Kind;
  if (t.server && e.kind == Kind::kRequested) return onInboundStream(t, e.stream, e.destination);
  auto it = t.streams.find(e.stream);
  if (it == t.streams.end()) return;  // the relay is gone (events after a clean close)
  Relay& r = relays_[it->second];
  if (!r.inUse || r.closing || r.tunnelSlot != t.slot || r.stream != e.stream) return;
  const int fromStream = r.streamSide;
  switch (e.kind) {
    case Kind::kRequested:  // server only (handled above)
      return;
    case Kind::kOpened:  // client: 200
      bump(mesh_.tunnel_streams);
      return relayReady(r);
    case Kind::kRejected:
      bump(mesh_.tunnel_rejected);
      spdlog::debug("mesh worker {}: peer {} refused the tunnel with {}", index_, t.peerAddr.toString(), e.status);
      r.streamGone = true;
      // 5xx: the peer could not reach the endpoint - another one may do. 4xx
      // (policy, not local, malformed) would be refused anywhere.
      if (e.status >= 500 && r.route.service != nullptr) {
        retryOrClose(r, e.status == 502 || e.status == 503 || e.status == 504);
        return;
      }
      return closeRelay(r, false);
    case Kind::kReadable:
    case Kind::kPeerEnd:
      return pump(r, fromStream);
    case Kind::kWritable:
      return pump(r, 1 - fromStream);
    case Kind::kClosed:
      r.streamGone = true;
      if (!r.ready && r.route.service != nullptr) {  // reset before the answer (e.g. REFUSED_STREAM)
        retryOrClose(r, false, e.errorCode != 0 ? &mesh_.tunnel_resets : nullptr);
        return;
      }
      if (e.errorCode != 0) {
        bump(mesh_.tunnel_resets);
        return closeRelay(r, false);
      }
      pump(r, fromStream);  // what is left stays readable
      // Closed before it opened (or connected), or while we still had bytes
      // for it: nothing can carry them now.
      if (!r.closing && (!r.ready || !r.dir[1 - fromStream].done)) closeRelay(r, false);
      return;
  }
}

void MeshWorker::detachStream(Relay& r, bool reset) {
  Tunnel* t = tunnelOf(r);
  if (t == nullptr) return;
  if (reset) {
    if (hbone::H2Session* s = h2(*t)) s->reset(r.stream);
  }
  t->streams.erase(r.stream);
  if (t->streams.empty()) t->idleSince = Clock::now();
  markDirty(*t);
}

void MeshWorker::closeTunnel(Tunnel& t) {
  if (t.closing) return;
  // Every relay on it ends now (its stream is gone with the connection).
  auto streams = std::move(t.streams);
  t.streams.clear();
  t.closing = true;
  // Outbound relays still waiting for their 200 try another endpoint (after
  // this tunnel left the pool, so the retry cannot pick it).
  std::vector<DirRef> retry;
  for (const auto& [id, slot] : streams) {
    Relay& r = relays_[slot];
    if (!r.inUse || r.closing) continue;
    r.streamGone = true;
    if (!stopping_ && !r.ready && r.route.service != nullptr) {
      retry.push_back(DirRef{r.slot, r.gen, 0});
      continue;
    }
    if (!stopping_) bump(mesh_.tunnel_resets);
    closeRelay(r, false);
  }
  if (!t.server) {
    auto it = pool_.find(t.poolKey);
    if (it != pool_.end()) {
      std::erase(it->second, t.slot);
      if (it->second.empty()) pool_.erase(it);
    }
    if (!t.established && !stopping_) bump(nsCounters(t.ns).handshake_failures);
  }
  for (const DirRef& ref : retry) {
    Relay* r = relayFor(ref);
    if (r != nullptr) retryOrClose(*r, true, &mesh_.tunnel_resets);
  }
  bump(mesh_.tunnels_closed);
  spdlog::debug("mesh worker {}: HBONE {} {} closed: peer {}, {} streams, {} bytes in, {} bytes out", index_,
                t.server ? "connection from" : "connection to", t.peerAddr.toString(),
                t.peer.empty() ? "(unverified)" : t.peer, t.streamCount, t.bytesIn, t.bytesOut);
  const std::uint64_t cancels[] = {
      t.connectInflight ? encode(MeshOp::kTunnelConnect, t.slot, t.gen) : 0,
      t.recvArmed ? encode(MeshOp::kTunnelRecv, t.slot, t.gen) : 0,
      t.sendInflight ? encode(MeshOp::kTunnelSend, t.slot, t.gen) : 0,
  };
  for (std::uint64_t ud : cancels)
    if (ud) cancelOp(ud);
  if (t.ops == 0) releaseTunnel(t);
}

void MeshWorker::releaseTunnel(Tunnel& t) {
  t.fd.reset();
  t.client.reset();
  t.serverConn.reset();
  t.cert.reset();
  t.streams.clear();
  t.out = std::string();
  t.inUse = false;
  t.closing = false;
  ++t.gen;
  freeTunnels_.push_back(t.slot);
}

// A pooled client tunnel unused for idleTunnelTimeout says GOAWAY (no error)
// and closes once that is out; the peer sees a clean end. It leaves the pool
// at once (draining), so no stream can land on it meanwhile.
void MeshWorker::closeIdleTunnels(Clock::time_point now) {
  if (options_.idleTunnelTimeout.count() <= 0) return;
  for (Tunnel& t : tunnels_) {
    if (!t.inUse || t.closing || t.server || !t.established || t.draining || t.failed || !t.streams.empty()) continue;
    if (now - t.idleSince < options_.idleTunnelTimeout) continue;
    bump(mesh_.tunnels_idle_closed);
    spdlog::debug("mesh worker {}: HBONE connection to {} unused for {} ms; closing", index_, t.peerAddr.toString(),
                  options_.idleTunnelTimeout.count());
    t.draining = true;
    t.client->h2().shutdown();
    markDirty(t);
  }
}

// ---- the pool ----------------------------------------------------------------------

// A usable client tunnel of (source identity, peer node): open, not failing,
// under the stream limit, presenting the identity's current certificate. A
// tunnel with an older certificate (rotation) takes no new streams: it
// drains and closes when its last stream ends, so rotation drops nothing.
MeshWorker::Tunnel* MeshWorker::pooledTunnel(const MeshWorkload& source, const SocketAddress& peer,
                                             const std::shared_ptr<const identity::IssuedCertificate>& cert) {
  auto it = pool_.find(source.id.str() + "|" + peer.toString());
  if (it == pool_.end()) return nullptr;
  for (std::uint32_t slot : it->second) {
    Tunnel& t = tunnels_[slot];
    if (!t.inUse || t.closing || t.draining || t.failed) continue;
    if (t.cert.get() != cert.get()) {
      t.draining = true;
      markDirty(t);
      continue;
    }
    hbone::H2Session* s = h2(t);
    if (s == nullptr || s->finished() || t.streams.size() >= options_.h2.maxConcurrentStreams) continue;
    return &t;
  }
  return nullptr;
}

MeshWorker::Tunnel* MeshWorker::openTunnel(const MeshWorkload& source, const SocketAddress& peer,
                                           std::shared_ptr<const identity::IssuedCertificate> cert, std::uint32_t ns) {
  UniqueFd fd(::socket(peer.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    bump(mesh_.tunnel_connect_failures);
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto conn = hbone::HboneClientConnection::create(clientCtx_, cert.get(), options_.h2, &hboneOut_, expectedPeer_);
  if (!conn) {
    spdlog::warn("mesh worker {}: HBONE client for {}: {}", index_, source.id.str(), conn.error().message);
    bump(mesh_.tunnel_connect_failures);
    return nullptr;
  }
  Tunnel& t = newTunnel();
  t.fd = std::move(fd);
  t.client = std::move(conn).value();
  t.cert = std::move(cert);
  t.poolKey = source.id.str() + "|" + peer.toString();
  t.peerAddr = peer;
  t.ns = ns;
  pool_[t.poolKey].push_back(t.slot);
  bump(mesh_.tunnels_opened);
  io_uring_sqe sqe{};
  io_uring_prep_connect(&sqe, t.fd.get(), t.peerAddr.get(), t.peerAddr.len);
  t.connectInflight = true;
  ++t.ops;
  submit(sqe, encode(MeshOp::kTunnelConnect, t.slot, t.gen));
  return &t;
}

}  // namespace nodemesh::proxy::mesh
