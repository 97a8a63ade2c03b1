// Relays: one proxied connection between two sides, each a socket or an
// HBONE stream, and the per-namespace buffer share that paces them.
//
// Bounded buffering, per direction:
//   socket -> socket  at most max_buffers_per_direction provided buffers
//                     (the engine's path: recvs armed only while there is room)
//   socket -> stream  the same FIFO, drained into the stream's send buffer
//                     (H2Limits::streamSendBuffer); a full stream waits for
//                     kWritable with the FIFO full and no recv armed
//   stream -> socket  one chunk read from the stream at a time; the stream's
//                     window reopens only by what was read, so the peer can
//                     never have more than a window in flight
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "proxy/mesh/mesh_worker.h"

namespace nodemesh::proxy::mesh {

namespace {
void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
}  // namespace

// ---- tenancy ---------------------------------------------------------------------

std::uint32_t MeshWorker::nsIndex(std::string_view name) {
  auto it = nsIndex_.find(std::string(name));
  if (it != nsIndex_.end()) return it->second;
  const auto idx = std::uint32_t(ns_.size());
  NsLocal n;
  n.cell = shared_.namespaces->get(name);  // the registry's mutex: once per namespace per worker
  ns_.push_back(std::move(n));
  nsIndex_.emplace(std::string(name), idx);
  return idx;
}

const state::TenancyLimits& MeshWorker::nsLimits(std::uint32_t ns) {
  NsLocal& n = ns_[ns];
  if (n.limitsFrom != table_.get()) {
    n.limitsFrom = table_.get();
    n.limits = table_ ? table_->limits(n.cell->name) : state::TenancyLimits{};
  }
  return n.limits;
}

// A namespace may hold, on this worker, at most the smaller of
// - its configured maxBufferedBytes divided by the worker count (the cap is
//   per node; workers share nothing, so each enforces its share), and
// - a fair share of this worker's buffer ring: ring bytes / namespaces with
//   connections here, so one namespace cannot take the ring from the others.
// Never less than one direction's worth of buffers, so every namespace moves.
bool MeshWorker::nsMayBuffer(std::uint32_t ns) {
  const std::uint64_t floor = std::uint64_t(options_.engine.buffer_size) * options_.engine.max_buffers_per_direction;
  std::uint64_t limit = std::uint64_t(buffers_.size()) * buffers_.count() / std::max<std::uint32_t>(1, activeNs_);
  if (std::uint64_t cap = nsLimits(ns).maxBufferedBytes; cap != 0) {
    limit = std::min<std::uint64_t>(limit, cap / std::max<std::size_t>(1, shared_.options.workers));
  }
  return ns_[ns].buffered < std::max(limit, floor);
}

void MeshWorker::nsBuffered(std::uint32_t ns, std::int64_t delta) {
  NsLocal& n = ns_[ns];
  n.buffered = std::uint64_t(std::int64_t(n.buffered) + delta);
  nsCounters(ns).buffered_bytes.store(n.buffered, std::memory_order_relaxed);
  if (delta < 0 && !n.paused.empty() && !n.reviveQueued && nsMayBuffer(ns)) {
    n.reviveQueued = true;
    revive_.push_back(ns);
  }
}

void MeshWorker::pauseForNamespace(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  if (x.paused) return;
  x.paused = true;
  ns_[r.ns].paused.push_back(DirRef{r.slot, r.gen, std::uint8_t(d)});
  bump(nsCounters(r.ns).buffer_pauses);
}

// ---- life ---------------------------------------------------------------------------

MeshWorker::Relay& MeshWorker::newRelay(std::uint32_t ns) {
  std::uint32_t slot;
  if (!freeRelays_.empty()) {
    slot = freeRelays_.back();
    freeRelays_.pop_back();
  } else {
    slot = std::uint32_t(relays_.size());
    relays_.emplace_back();
  }
  Relay& r = relays_[slot];
  const std::uint32_t gen = r.gen;
  r = Relay{};
  r.slot = slot;
  r.gen = gen;
  r.inUse = true;
  r.ns = ns;
  if (ns_[ns].relays++ == 0) ++activeNs_;
  WorkerCounters::add(counters_.active);
  return r;
}

MeshWorker::Relay* MeshWorker::relayFor(const DirRef& ref) {
  if (ref.slot >= relays_.size()) return nullptr;
  Relay& r = relays_[ref.slot];
  if (!r.inUse || r.gen != ref.gen || r.closing) return nullptr;
  return &r;
}

void MeshWorker::bindToNodeAddress(int fd, const SocketAddress& to) {
  if (!table_ || !table_->nodeAddress()) return;
  const state::IpAddress dst = ipOf(to);
  const state::IpAddress& node = *table_->nodeAddress();
  if (dst.isLoopback() || dst.family() != node.family() || to.family() != (node.isV4() ? AF_INET : AF_INET6)) return;
  auto src = SocketAddress::parse(node.toString(), 0);
  if (!src) return;
  // The port is picked at connect time (no bind-time port reservation).
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (::bind(fd, src->get(), src->len) != 0)
    spdlog::debug("mesh worker {}: binding to the node address {} failed: {}; the kernel picks the source",
                  index_, node.toString(), std::strerror(errno));
}

void MeshWorker::relayConnect(Relay& r, int side, const SocketAddress& to) {
  r.fd[side] = UniqueFd(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!r.fd[side]) {
    WorkerCounters::add(counters_.upstream_connect_failures);
    return closeRelay(r, false);
  }
  setNoDelay(r.fd[side].get());
  bindToNodeAddress(r.fd[side].get(), to);
  r.connectSide = std::int8_t(side);
  r.connectAddr = to;
  io_uring_sqe sqe{};
  io_uring_prep_connect(&sqe, r.fd[side].get(), r.connectAddr.get(), r.connectAddr.len);
  r.connectInflight = true;
  ++r.ops;
  submit(sqe, encode(MeshOp::kRelayConnect, r.slot, r.gen));
  connecting_.push_back({r.slot, r.gen, ++r.connects, Clock::now() + options_.connectTimeout});
}

void MeshWorker::expireConnects(Clock::time_point now) {
  while (!connecting_.empty()) {
    const PendingConnect& p = connecting_.front();
    Relay* r = p.slot < relays_.size() ? &relays_[p.slot] : nullptr;
    const bool live =
        r != nullptr && r->inUse && r->gen == p.gen && r->connects == p.connect && r->connectInflight && !r->closing;
    if (live && now < p.deadline) break;  // the rest are younger
    if (live) {
      r->connectTimedOut = true;
      cancelOp(encode(MeshOp::kRelayConnect, r->slot, r->gen));  // completes with -ECANCELED
    }
    connecting_.pop_front();
  }
}

void MeshWorker::onRelayConnect(Relay& r, int res) {
  if (r.closing) return;
  if (r.connectTimedOut && res < 0) {
    r.connectTimedOut = false;
    res = -ETIMEDOUT;
    bump(mesh_.connect_timeouts);
  }
  if (res < 0) {
    WorkerCounters::add(counters_.upstream_connect_failures);
    spdlog::debug("mesh worker {}: connect to {} failed: {}", index_, r.connectAddr.toString(), std::strerror(-res));
  }
  // Inbound: the CONNECT is answered now - 200 once connected, 503 if not.
  if (r.streamSide == 0) return answerInbound(r, res >= 0, res);
  if (res < 0) {
    // Outbound to a same-node endpoint: refused / unreachable means unhealthy.
    retryOrClose(r, true);
    return;
  }
  relayReady(r);
}

void MeshWorker::relayReady(Relay& r) {
  if (r.closing || r.ready) return;
  r.ready = true;
  if (r.route.service != nullptr) {  // outbound: the route has served its purpose
    endpointHealthy(*r.route.endpoint);
    r.route = Route{};
  }
  pump(r, 0);
  pump(r, 1);
}

// ---- moving bytes ---------------------------------------------------------------

void MeshWorker::pump(Relay& r, int d) {
  if (r.closing || !r.ready) return;
  if (r.streamSide == d) {
    pullFromStream(r, d);
  } else {
    if (r.streamSide == 1 - d)
      pushToStream(r, d);
    else
      sendHead(r, d);
    maybeArmRelayRecv(r, d);
  }
  maybeFinish(r, d);
}

void MeshWorker::maybeArmRelayRecv(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  if (stopping_ || r.closing || !r.ready || x.eof || x.recvArmed || x.stalled || x.paused) return;
  if (x.queued >= options_.engine.max_buffers_per_direction) return;  // resumed as the FIFO drains
  if (!nsMayBuffer(r.ns)) return pauseForNamespace(r, d);
  armRelayRecv(r, d);
}

void MeshWorker::armRelayRecv(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  io_uring_sqe sqe{};
  // len 0 + buffer select: the kernel picks a buffer only when data
  // arrives, so an idle connection holds none.
  if (multishotRecv_.load(std::memory_order_relaxed) && recvCap_.load(std::memory_order_relaxed)) {
    io_uring_prep_recv_multishot(&sqe, r.fd[d].get(), nullptr, 0, 0);
    // The byte cap (sqe->optlen, Linux 6.17): see Worker::armRecv.
    const std::uint32_t room = options_.engine.max_buffers_per_direction * buffers_.size() - x.bytes;
    sqe.file_index = room - buffers_.size() + 1;
  } else {
    // Without the cap, one buffer per arm: the bound stays exact.
    io_uring_prep_recv(&sqe, r.fd[d].get(), nullptr, 0, 0);
  }
  sqe.flags |= IOSQE_BUFFER_SELECT;
  sqe.buf_group = buffers_.group();
  x.recvArmed = true;
  ++r.ops;
  submit(sqe, encode(relayRecvOp(d), r.slot, r.gen));
}

void MeshWorker::onRelayRecv(Relay& r, int d, int res, std::uint32_t flags) {
  RelayDir& x = r.dir[d];
  if (flags & IORING_CQE_F_BUFFER) {
    const auto bid = std::uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    WorkerCounters::add(counters_.buffers_in_use);
    if (res > 0 && !r.closing)
      takeBuffer(r, d, bid, std::uint32_t(res));
    else
      dropBuffer(bid, 0);
  }
  if (r.closing) return;
  if (res > 0) {
    recvProven_ = true;
    return pump(r, d);
  }
  if (res == 0) {
    x.eof = true;
    return maybeFinish(r, d);
  }
  switch (-res) {
    case ENOBUFS:
      WorkerCounters::add(counters_.enobufs_stalls);
      growBuffers();
      x.stalled = true;
      stalled_.push_back(DirRef{r.slot, r.gen, std::uint8_t(d)});
      return;
    case EINVAL:
      if (!recvProven_ && recvCap_.load(std::memory_order_relaxed)) {
        spdlog::warn("mesh worker {}: kernel refused the multishot recv byte cap (Linux 6.17+); "
                     "receiving one buffer at a time", index_);
        recvCap_ = false;
        return maybeArmRelayRecv(r, d);
      }
      break;
    case ECANCELED:
    case EINTR:
    case EAGAIN:
      return maybeArmRelayRecv(r, d);
    default:
      break;
  }
  WorkerCounters::add(counters_.connection_errors);
  closeRelay(r, false);
}

void MeshWorker::sendHead(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  if (r.closing || x.sendInflight || x.head == kNoBuffer) return;
  const BufferLink& b = links_[x.head];
  io_uring_sqe sqe{};
  io_uring_prep_send(&sqe, r.fd[1 - d].get(), buffers_.buffer(std::uint16_t(x.head)) + b.off, b.len - b.off,
                     MSG_NOSIGNAL);
  x.sendInflight = true;
  ++r.ops;
  submit(sqe, encode(relaySendOp(d), r.slot, r.gen));
}

void MeshWorker::sendPulled(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  io_uring_sqe sqe{};
  io_uring_prep_send(&sqe, r.fd[1 - d].get(), x.pulled.data() + x.pulledOff, x.pulled.size() - x.pulledOff,
                     MSG_NOSIGNAL);
  x.sendInflight = true;
  ++r.ops;
  submit(sqe, encode(relaySendOp(d), r.slot, r.gen));
}

void MeshWorker::popHead(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  const std::int32_t bid = x.head;
  const BufferLink& b = links_[bid];
  x.head = b.next;
  if (x.head == kNoBuffer) x.tail = kNoBuffer;
  --x.queued;
  x.bytes -= b.len;
  const std::uint32_t len = b.len;
  dropBuffer(std::uint16_t(bid), len);
  nsBuffered(r.ns, -std::int64_t(len));
}

void MeshWorker::onRelaySent(Relay& r, int d, int res) {
  RelayDir& x = r.dir[d];
  if (r.closing) return;
  if (res <= 0) {
    if (res == -EINTR || res == -EAGAIN) return r.streamSide == d ? sendPulled(r, d) : sendHead(r, d);
    WorkerCounters::add(counters_.connection_errors);
    return closeRelay(r, false);
  }
  WorkerCounters::add(d == 0 ? counters_.bytes_to_upstream : counters_.bytes_to_client, std::uint64_t(res));
  bump(d == 0 ? nsCounters(r.ns).bytes_in : nsCounters(r.ns).bytes_out, std::uint64_t(res));
  if (r.streamSide == d) {
    x.pulledOff += std::uint32_t(res);
    if (x.pulledOff < x.pulled.size()) return sendPulled(r, d);
    const auto n = std::int64_t(x.pulled.size());
    x.pulled.clear();
    x.pulledOff = 0;
    WorkerCounters::sub(counters_.buffered_bytes, std::uint64_t(n));
    nsBuffered(r.ns, -n);
    return pump(r, d);
  }
  BufferLink& b = links_[x.head];
  b.off += std::uint32_t(res);
  if (b.off >= b.len) popHead(r, d);
  pump(r, d);
}

void MeshWorker::pushToStream(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  Tunnel* t = tunnelOf(r);
  hbone::H2Session* s = t != nullptr ? h2(*t) : nullptr;
  if (s == nullptr) return;
  std::uint64_t moved = 0;
  while (x.head != kNoBuffer) {
    BufferLink& b = links_[x.head];
    std::size_t n = s->write(r.stream, std::span<const std::uint8_t>(
                                           buffers_.buffer(std::uint16_t(x.head)) + b.off, b.len - b.off));
    if (n == 0) break;  // the stream's send buffer is full: kWritable resumes
    moved += n;
    b.off += std::uint32_t(n);
    if (b.off < b.len) break;
    popHead(r, d);
  }
  if (moved == 0) return;
  WorkerCounters::add(d == 0 ? counters_.bytes_to_upstream : counters_.bytes_to_client, moved);
  bump(d == 0 ? nsCounters(r.ns).bytes_in : nsCounters(r.ns).bytes_out, moved);
  bump(mesh_.tunnel_bytes_out, moved);
  t->bytesOut += moved;
  markDirty(*t);
}

void MeshWorker::pullFromStream(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  if (x.sendInflight || !x.pulled.empty() || x.eof || x.paused) return;
  Tunnel* t = tunnelOf(r);
  hbone::H2Session* s = t != nullptr ? h2(*t) : nullptr;
  if (s == nullptr) return;
  if (s->readable(r.stream) == 0) {
    if (s->peerEnded(r.stream)) x.eof = true;  // maybeFinish passes the half-close on
    return;
  }
  if (!nsMayBuffer(r.ns)) return pauseForNamespace(r, d);
  const std::size_t chunk = std::size_t(options_.engine.buffer_size) * options_.engine.max_buffers_per_direction;
  const std::size_t n = s->read(r.stream, x.pulled, chunk);  // reopens the windows by n
  WorkerCounters::add(counters_.buffered_bytes, n);
  notePeak();
  nsBuffered(r.ns, std::int64_t(n));
  bump(mesh_.tunnel_bytes_in, n);
  t->bytesIn += n;
  markDirty(*t);  // WINDOW_UPDATE to send
  sendPulled(r, d);
}

void MeshWorker::maybeFinish(Relay& r, int d) {
  RelayDir& x = r.dir[d];
  if (r.closing || x.done || !x.eof || x.sendInflight) return;
  if (r.streamSide == d) {
    if (!x.pulled.empty()) return;
    ::shutdown(r.fd[1 - d].get(), SHUT_WR);
  } else {
    if (x.head != kNoBuffer) return;
    if (r.streamSide == 1 - d) {
      Tunnel* t = tunnelOf(r);
      if (t == nullptr) return closeRelay(r, false);
      if (hbone::H2Session* s = h2(*t)) s->closeWrite(r.stream);  // END_STREAM once the send buffer drains
      markDirty(*t);
    } else {
      ::shutdown(r.fd[1 - d].get(), SHUT_WR);
    }
  }
  x.done = true;
  if (r.dir[0].done && r.dir[1].done) closeRelay(r, true);
}

void MeshWorker::closeRelay(Relay& r, bool clean) {
  if (r.closing) return;
  r.closing = true;
  if (r.streamSide >= 0) detachStream(r, !clean && !r.streamGone);
  const std::uint64_t cancels[] = {
      r.connectInflight ? encode(MeshOp::kRelayConnect, r.slot, r.gen) : 0,
      r.dir[0].recvArmed ? encode(MeshOp::kRelayRecv0, r.slot, r.gen) : 0,
      r.dir[1].recvArmed ? encode(MeshOp::kRelayRecv1, r.slot, r.gen) : 0,
      r.dir[0].sendInflight ? encode(MeshOp::kRelaySend0, r.slot, r.gen) : 0,
      r.dir[1].sendInflight ? encode(MeshOp::kRelaySend1, r.slot, r.gen) : 0,
  };
  for (std::uint64_t ud : cancels)
    if (ud) cancelOp(ud);
  if (r.ops == 0) releaseRelay(r);
}

void MeshWorker::releaseRelay(Relay& r) {
  for (int d = 0; d < 2; ++d) {
    RelayDir& x = r.dir[d];
    while (x.head != kNoBuffer) popHead(r, d);
    if (!x.pulled.empty()) {
      WorkerCounters::sub(counters_.buffered_bytes, x.pulled.size());
      nsBuffered(r.ns, -std::int64_t(x.pulled.size()));
      x.pulled = std::string();
    }
  }
  r.fd[0].reset();
  r.fd[1].reset();
  r.route = Route{};  // a free slot pins no table
  NsLocal& n = ns_[r.ns];
  if (--n.relays == 0) --activeNs_;
  if (r.holdsConnection) {
    n.cell->closed();
    r.holdsConnection = false;
  }
  r.inUse = false;
  r.closing = false;
  ++r.gen;
  freeRelays_.push_back(r.slot);
  WorkerCounters::sub(counters_.active);
  WorkerCounters::add(counters_.closed);
}

}  // namespace nodemesh::proxy::mesh
