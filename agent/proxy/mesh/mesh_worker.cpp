#include "proxy/mesh/mesh_worker.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

namespace nodemesh::proxy::mesh {

namespace {

[[noreturn]] void impossible(const char* what) {
  std::fprintf(stderr, "nodemesh mesh proxy: impossible state: %s\n", what);
  std::abort();
}

constexpr std::uint8_t kTunnelStall = 2;  // DirRef::dir of a stalled tunnel recv

}  // namespace

MeshWorker::MeshWorker(unsigned index, MeshShared& shared, std::vector<Listener> listeners, UniqueFd wake)
    : index_(index),
      shared_(shared),
      options_(shared.options),
      listeners_(std::move(listeners)),
      wakeFd_(std::move(wake)),
      rng_(0x9e3779b9u ^ (index * 0x85ebca6bu) ^ std::uint32_t(Clock::now().time_since_epoch().count())) {}

MeshWorker::~MeshWorker() = default;

EngineFeatures MeshWorker::features() const {
  EngineFeatures f = features_;
  f.multishot_accept = multishotAccept_.load(std::memory_order_relaxed);
  f.multishot_recv = multishotRecv_.load(std::memory_order_relaxed);
  f.multishot_recv_cap = f.multishot_recv && recvCap_.load(std::memory_order_relaxed);
  return f;
}

void MeshWorker::hboneStats(hbone::HboneCounters& outbound, hbone::HboneCounters& inbound) const {
  std::lock_guard lock(publishedMu_);
  outbound += publishedOut_;
  inbound += publishedIn_;
}

Status MeshWorker::init() {
  const EngineOptions& eo = options_.engine;
  if (Status s = ring_.init(eo.sq_entries, eo.cq_entries, eo.want, features_); !s)
    return s.error().wrap("mesh worker " + std::to_string(index_));
  multishotAccept_ = eo.want.multishot_accept;
  multishotRecv_ = eo.want.multishot_recv;
  recvCap_ = eo.want.multishot_recv_cap;
  if (Status s = buffers_.init(ring_.get(), 0, eo.buffer_count, eo.buffer_size, eo.buffer_initial); !s)
    return s.error().wrap("mesh worker " + std::to_string(index_));
  counters_.buffers_provided.store(buffers_.provided(), std::memory_order_relaxed);
  links_.assign(eo.buffer_count, BufferLink{});

  auto cctx = hbone::TlsContext::client(shared_.identity.verifier);
  if (!cctx) return cctx.error().wrap("mesh worker " + std::to_string(index_) + ": HBONE client TLS");
  clientCtx_ = std::move(cctx).value();
  if (options_.peerNodeIdentity) {
    expectedPeer_ = options_.peerNodeIdentity;
  } else {
    auto id = identity::SpiffeId::forWorkload(shared_.identity.verifier->trustDomain(), kPeerNodeNamespace,
                                              kPeerNodeServiceAccount);
    if (!id) return id.error().wrap("mesh worker " + std::to_string(index_) + ": peer node identity");
    expectedPeer_ = std::move(id).value();
  }
  reloadTable();

  // The tick bounds how late a handshake deadline or an idle tunnel is noticed.
  std::chrono::milliseconds every = std::min(options_.handshakeTimeout, options_.connectTimeout) / 4;
  if (options_.idleTunnelTimeout.count() > 0) every = std::min(every, options_.idleTunnelTimeout / 4);
  auto tick = std::clamp(every, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  tick_.tv_sec = tick.count() / 1000;
  tick_.tv_nsec = (tick.count() % 1000) * 1'000'000;

  armWake();
  armTimer();
  for (std::uint32_t i = 0; i < listeners_.size(); ++i) armAccept(i);
  return {};
}

void MeshWorker::requestStop() {
  stopRequested_.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wakeFd_.get(), &one, sizeof one);
}

void MeshWorker::reloadTable() {
  std::uint64_t v = shared_.tableVersion.load(std::memory_order_acquire);
  if (v == tableVersion_) return;
  tableVersion_ = v;
  table_ = shared_.table.load(std::memory_order_acquire);
}

// ---- submission ------------------------------------------------------------

void MeshWorker::submit(io_uring_sqe& sqe, std::uint64_t userData) {
  io_uring_sqe_set_data64(&sqe, userData);
  ++inflight_;
  if (ring_.push(sqe)) WorkerCounters::add(counters_.sq_backlogged);
}

void MeshWorker::armAccept(std::uint32_t i) {
  io_uring_sqe sqe{};
  if (multishotAccept_.load(std::memory_order_relaxed))
    io_uring_prep_multishot_accept(&sqe, listeners_[i].fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
  else
    io_uring_prep_accept(&sqe, listeners_[i].fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
  listeners_[i].armed = true;
  submit(sqe, encode(MeshOp::kAccept, i));
}

void MeshWorker::armWake() {
  io_uring_sqe sqe{};
  io_uring_prep_read(&sqe, wakeFd_.get(), &wakeValue_, sizeof wakeValue_, 0);
  submit(sqe, encode(MeshOp::kWake));
}

void MeshWorker::armTimer() {
  io_uring_sqe sqe{};
  io_uring_prep_timeout(&sqe, &tick_, 0, 0);
  submit(sqe, encode(MeshOp::kTimer));
}

void MeshWorker::cancelOp(std::uint64_t userData) {
  io_uring_sqe sqe{};
  io_uring_prep_cancel64(&sqe, userData, IORING_ASYNC_CANCEL_ALL);
  submit(sqe, encode(MeshOp::kCancel));
}

// ---- the loop and the one dispatch point -------------------------------------

void MeshWorker::run() {
  Clock::time_point deadline{};
  for (;;) {
    if (!stopping_ && stopRequested_.load(std::memory_order_acquire)) {
      beginStop();
      deadline = Clock::now() + options_.engine.stop_drain_timeout;
    }
    if (stopping_ && inflight_ == 0) break;
    if (stopping_ && Clock::now() > deadline) {
      spdlog::error("mesh worker {}: {} ops still in flight {} ms after stop; tearing the ring down anyway", index_,
                    inflight_, options_.engine.stop_drain_timeout.count());
      break;
    }
    ring_.flushBacklog();
    __kernel_timespec ts{0, 100'000'000};
    __kernel_timespec zero{0, 0};
    __kernel_timespec soon{0, 1'000'000};
    // Tunnels still dirty after a batch (bounded work per batch) must not wait for a completion;
    // counters a stats reader kept us from publishing go out within a millisecond.
    __kernel_timespec* wait = nullptr;
    if (!dirty_.empty() || !revive_.empty())
      wait = &zero;
    else if (stopping_)
      wait = &ts;
    else if (publishPending_)
      wait = &soon;
    io_uring_cqe* first = nullptr;
    int r = io_uring_submit_and_wait_timeout(ring_.get(), &first, 1, wait, nullptr);
    if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY)
      spdlog::error("mesh worker {}: io_uring wait failed: {}", index_, std::strerror(-r));
    unsigned head = 0, seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      dispatch(*cqe);
      ++seen;
    }
    io_uring_cq_advance(ring_.get(), seen);
    afterBatch();
  }
  for (Relay& r : relays_)
    if (r.inUse) releaseRelay(r);
  for (Tunnel& t : tunnels_)
    if (t.inUse) releaseTunnel(t);
  publish(true);
}

void MeshWorker::afterBatch() {
  serviceDirty();
  reviveStalled();
  if (!revive_.empty()) {
    std::vector<std::uint32_t> list;
    list.swap(revive_);
    for (std::uint32_t ns : list) {
      NsLocal& n = ns_[ns];
      n.reviveQueued = false;
      std::vector<DirRef> paused;
      paused.swap(n.paused);
      for (const DirRef& ref : paused) {
        Relay* r = relayFor(ref);
        if (r == nullptr) continue;
        r->dir[ref.dir].paused = false;
        pump(*r, ref.dir);
      }
    }
    serviceDirty();  // pulls from streams reopen windows
  }
  publishPending_ = !publish(false);
}

// At the end of every batch: the HBONE counters are copied out when they
// changed (compared with what was published: only this thread writes the
// published copy, so reading it here needs no lock). A batch that changed
// nothing costs two ~300-byte compares; a worker going idle has published
// everything. False: a reader held the lock, try again shortly.
bool MeshWorker::publish(bool force) {
  if (!force && hboneOut_ == publishedOut_ && hboneIn_ == publishedIn_) return true;
  std::unique_lock lock(publishedMu_, std::defer_lock);
  if (force) {
    lock.lock();
  } else if (!lock.try_lock()) {
    return false;
  }
  publishedOut_ = hboneOut_;
  publishedIn_ = hboneIn_;
  return true;
}

void MeshWorker::dispatch(const io_uring_cqe& cqe) {
  const MeshOpRef op = decode(cqe.user_data);
  const int res = cqe.res;
  const bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) {
    if (inflight_ == 0) impossible("completion with no op in flight");
    --inflight_;
  }
  switch (op.kind) {
    case MeshOp::kAccept:
      if (op.slot >= listeners_.size()) impossible("accept for an unknown listener");
      return onAccept(op.slot, res, more);
    case MeshOp::kWake:
      if (!stopRequested_.load(std::memory_order_acquire)) armWake();
      return;
    case MeshOp::kCancel:
      return;
    case MeshOp::kTimer:
      return onTimer();
    case MeshOp::kRelayConnect:
    case MeshOp::kRelayRecv0:
    case MeshOp::kRelayRecv1:
    case MeshOp::kRelaySend0:
    case MeshOp::kRelaySend1: {
      if (op.slot >= relays_.size()) impossible("op for a relay slot that never existed");
      Relay& r = relays_[op.slot];
      if (!r.inUse || (r.gen & kGenMask) != op.gen) impossible("op for a released relay");
      if (!more) {
        if (r.ops == 0) impossible("relay op count underflow");
        --r.ops;
      }
      switch (op.kind) {
        case MeshOp::kRelayConnect:
          r.connectInflight = false;
          onRelayConnect(r, res);
          break;
        case MeshOp::kRelayRecv0:
        case MeshOp::kRelayRecv1: {
          int d = op.kind == MeshOp::kRelayRecv0 ? 0 : 1;
          if (!more) r.dir[d].recvArmed = false;
          onRelayRecv(r, d, res, cqe.flags);
          break;
        }
        default: {
          int d = op.kind == MeshOp::kRelaySend0 ? 0 : 1;
          r.dir[d].sendInflight = false;
          onRelaySent(r, d, res);
          break;
        }
      }
      if (r.closing && r.ops == 0) releaseRelay(r);
      return;
    }
    case MeshOp::kTunnelConnect:
    case MeshOp::kTunnelRecv:
    case MeshOp::kTunnelSend: {
      if (op.slot >= tunnels_.size()) impossible("op for a tunnel slot that never existed");
      Tunnel& t = tunnels_[op.slot];
      if (!t.inUse || (t.gen & kGenMask) != op.gen) impossible("op for a released tunnel");
      if (!more) {
        if (t.ops == 0) impossible("tunnel op count underflow");
        --t.ops;
      }
      if (op.kind == MeshOp::kTunnelConnect) {
        t.connectInflight = false;
        onTunnelConnect(t, res);
      } else if (op.kind == MeshOp::kTunnelRecv) {
        if (!more) t.recvArmed = false;
        onTunnelRecv(t, res, cqe.flags);
      } else {
        t.sendInflight = false;
        onTunnelSent(t, res);
      }
      if (t.closing && t.ops == 0) releaseTunnel(t);
      return;
    }
  }
  impossible("unknown op kind in user_data");
}

// ---- worker-level ops --------------------------------------------------------

void MeshWorker::onAccept(std::uint32_t i, int res, bool more) {
  Listener& l = listeners_[i];
  if (!more) l.armed = false;
  if (res >= 0) {
    UniqueFd fd(res);
    if (!stopping_) {
      reloadTable();
      if (l.inbound) {
        onInboundAccept(std::move(fd));
      } else {
        WorkerCounters::add(counters_.accepted);
        onOutboundAccept(std::move(fd));
      }
    }
  } else if (res == -EINVAL && multishotAccept_.load(std::memory_order_relaxed) &&
             counters_.accepted.load(std::memory_order_relaxed) == 0) {
    spdlog::warn("mesh worker {}: kernel refused multishot accept; accepting one at a time", index_);
    multishotAccept_ = false;
  } else if (res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
    WorkerCounters::add(counters_.accept_errors);
    spdlog::warn("mesh worker {}: accept failed: {} (check the fd limit)", index_, std::strerror(-res));
  }
  if (!l.armed && !stopping_) armAccept(i);
}

void MeshWorker::onTimer() {
  if (stopping_) return;
  reloadTable();
  const Clock::time_point now = Clock::now();
  for (Tunnel& t : tunnels_) {
    if (!t.inUse || t.closing || t.established || now < t.deadline) continue;
    bump(mesh_.handshake_timeouts);
    spdlog::debug("mesh worker {}: HBONE {} {}: no TLS handshake within {} ms; closing", index_,
                  t.server ? "connection from" : "connection to", t.peerAddr.toString(),
                  options_.handshakeTimeout.count());
    closeTunnel(t);
  }
  closeIdleTunnels(now);
  expireConnects(now);
  pruneEjections(now);
  armTimer();
}

void MeshWorker::beginStop() {
  stopping_ = true;
  io_uring_sqe sqe{};
  io_uring_prep_cancel64(&sqe, 0, IORING_ASYNC_CANCEL_ANY);
  submit(sqe, encode(MeshOp::kCancel));
  for (Relay& r : relays_)
    if (r.inUse) closeRelay(r, false);
  for (Tunnel& t : tunnels_)
    if (t.inUse) closeTunnel(t);
}

// ---- provided buffers ----------------------------------------------------------

void MeshWorker::takeBuffer(Relay& r, int d, std::uint16_t bid, std::uint32_t len) {
  RelayDir& x = r.dir[d];
  links_[bid] = BufferLink{len, 0, kNoBuffer};
  if (x.tail == kNoBuffer)
    x.head = bid;
  else
    links_[x.tail].next = bid;
  x.tail = bid;
  ++x.queued;
  x.bytes += len;
  WorkerCounters::add(counters_.buffered_bytes, len);
  nsBuffered(r.ns, len);
  notePeak();
}

void MeshWorker::notePeak() {
  std::uint64_t now = counters_.buffered_bytes.load(std::memory_order_relaxed);
  if (now > counters_.buffered_bytes_peak.load(std::memory_order_relaxed))
    counters_.buffered_bytes_peak.store(now, std::memory_order_relaxed);
}

void MeshWorker::dropBuffer(std::uint16_t bid, std::uint32_t unsent) {
  WorkerCounters::sub(counters_.buffered_bytes, unsent);
  WorkerCounters::sub(counters_.buffers_in_use);
  buffers_.recycle(bid);
}

void MeshWorker::growBuffers() {
  if (buffers_.grow()) counters_.buffers_provided.store(buffers_.provided(), std::memory_order_relaxed);
}

void MeshWorker::reviveStalled() {
  if (stalled_.empty() || counters_.buffers_in_use.load(std::memory_order_relaxed) >= buffers_.provided()) return;
  std::vector<DirRef> stalls;
  stalls.swap(stalled_);
  for (const DirRef& s : stalls) {
    if (s.dir == kTunnelStall) {
      Tunnel& t = tunnels_[s.slot];
      if (!t.inUse || t.gen != s.gen || t.closing) continue;
      t.stalled = false;
      if (!t.recvArmed) armTunnelRecv(t);
      continue;
    }
    Relay* r = relayFor(s);
    if (r == nullptr) continue;
    r->dir[s.dir].stalled = false;
    maybeArmRelayRecv(*r, s.dir);
  }
}

}  // namespace nodemesh::proxy::mesh
