#include "proxy/engine/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "proxy/engine/op.h"
#include "proxy/engine/socket.h"

namespace nodemesh::proxy {

namespace {

[[noreturn]] void impossible(const char* what) {
  std::fprintf(stderr, "nodemesh proxy engine: impossible state: %s\n", what);
  std::abort();
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

Worker::Worker(unsigned index, const EngineOptions& options, Router router, UniqueFd listener, UniqueFd wake)
    : index_(index),
      options_(options),
      router_(std::move(router)),
      listener_(std::move(listener)),
      wake_fd_(std::move(wake)) {}

Worker::~Worker() = default;

EngineFeatures Worker::features() const {
  EngineFeatures f = features_;
  f.multishot_accept = multishot_accept_.load(std::memory_order_relaxed);
  f.multishot_recv = multishot_recv_.load(std::memory_order_relaxed);
  f.multishot_recv_cap = f.multishot_recv && recv_cap_.load(std::memory_order_relaxed);
  return f;
}

Status Worker::init() {
  if (Status s = ring_.init(options_.sq_entries, options_.cq_entries, options_.want, features_); !s)
    return s.error().wrap("worker " + std::to_string(index_));
  multishot_accept_ = options_.want.multishot_accept;
  multishot_recv_ = options_.want.multishot_recv;
  recv_cap_ = options_.want.multishot_recv_cap;
  if (Status s = buffers_.init(ring_.get(), 0, options_.buffer_count, options_.buffer_size, options_.buffer_initial); !s)
    return s.error().wrap("worker " + std::to_string(index_));
  counters_.buffers_provided.store(buffers_.provided(), std::memory_order_relaxed);
  links_.assign(options_.buffer_count, BufferLink{});
  armWake();
  armAccept();
  return {};
}

void Worker::requestStop() {
  stop_requested_.store(true, std::memory_order_release);
  uint64_t one = 1;
  // The eventfd read armed in the ring completes and wakes run().
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

// ---- submission ------------------------------------------------------------

void Worker::submit(io_uring_sqe& sqe, uint64_t user_data) {
  io_uring_sqe_set_data64(&sqe, user_data);
  ++inflight_;
  if (ring_.push(sqe)) WorkerCounters::add(counters_.sq_backlogged);
}

void Worker::armAccept() {
  io_uring_sqe sqe{};
  if (multishot_accept_.load(std::memory_order_relaxed))
    io_uring_prep_multishot_accept(&sqe, listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  else
    io_uring_prep_accept(&sqe, listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  accept_armed_ = true;
  submit(sqe, encodeOp(OpKind::kAccept));
}

void Worker::armWake() {
  io_uring_sqe sqe{};
  io_uring_prep_read(&sqe, wake_fd_.get(), &wake_value_, sizeof wake_value_, 0);
  wake_armed_ = true;
  submit(sqe, encodeOp(OpKind::kWake));
}

void Worker::cancelOp(uint64_t user_data) {
  io_uring_sqe sqe{};
  io_uring_prep_cancel64(&sqe, user_data, IORING_ASYNC_CANCEL_ALL);
  submit(sqe, encodeOp(OpKind::kCancel));
}

void Worker::armRecv(Connection& c, Dir d) {
  Direction& x = c.dir[d];
  io_uring_sqe sqe{};
  // len 0: the kernel picks a whole buffer from the group when data arrives,
  // so a recv waiting on an idle socket holds no memory.
  const bool capped = recv_cap_.load(std::memory_order_relaxed);
  if (multishot_recv_.load(std::memory_order_relaxed) && (capped || (!x.bulk && !x.paced))) {
    io_uring_prep_recv_multishot(&sqe, c.source(d), nullptr, 0, 0);
    // sqe->optlen (file_index in liburing 2.3's layout): the multishot ends
    // by itself once this many bytes arrived. The last recv may still fill a
    // whole buffer, hence room - size + 1: the FIFO never exceeds
    // max_buffers_per_direction * buffer_size bytes. (room >= size here:
    // maybeArmRecv saw queued < max and each buffer holds <= size bytes.)
    if (capped) {
      const uint32_t room = options_.max_buffers_per_direction * buffers_.size() - x.bytes;
      sqe.file_index = room - buffers_.size() + 1;
    }
  } else {
    io_uring_prep_recv(&sqe, c.source(d), nullptr, 0, 0);
  }
  sqe.flags |= IOSQE_BUFFER_SELECT;
  sqe.buf_group = buffers_.group();
  x.recv_armed = true;
  ++c.ops;
  submit(sqe, encodeOp(recvOp(d), c.slot, c.gen));
}

// ---- the loop and the one dispatch point -------------------------------------

void Worker::run() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point deadline{};
  for (;;) {
    if (!stopping_ && stop_requested_.load(std::memory_order_acquire)) {
      beginStop();
      deadline = Clock::now() + options_.stop_drain_timeout;
    }
    if (stopping_ && inflight_ == 0) break;
    if (stopping_ && Clock::now() > deadline) {
      spdlog::error("proxy worker {}: {} ops still in flight {} ms after stop; tearing the ring down anyway",
                    index_, inflight_, options_.stop_drain_timeout.count());
      break;
    }
    ring_.flushBacklog();  // never wait with submissions parked locally
    __kernel_timespec ts{0, 100'000'000};
    io_uring_cqe* first = nullptr;
    int r = io_uring_submit_and_wait_timeout(ring_.get(), &first, 1, stopping_ ? &ts : nullptr, nullptr);
    if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY)
      spdlog::error("proxy worker {}: io_uring wait failed: {}", index_, std::strerror(-r));
    unsigned head = 0, seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      dispatch(*cqe);
      ++seen;
    }
    io_uring_cq_advance(ring_.get(), seen);
    reviveStalled();
  }
  // Whatever is left (only after a drain timeout) dies with the ring.
  for (Connection& c : conns_)
    if (c.in_use) release(c);
}

void Worker::dispatch(const io_uring_cqe& cqe) {
  const OpRef op = decodeOp(cqe.user_data);
  const int res = cqe.res;
  const bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) {
    if (inflight_ == 0) impossible("completion with no op in flight");
    --inflight_;
  }

  switch (op.kind) {
    case OpKind::kAccept:
      return onAccept(res, more);
    case OpKind::kWake:
      return onWake(res);
    case OpKind::kCancel:
      return;  // the cancelled op reports its own end
    case OpKind::kConnect:
    case OpKind::kRecvClient:
    case OpKind::kRecvUpstream:
    case OpKind::kSendUpstream:
    case OpKind::kSendClient:
      break;
    default:
      impossible("unknown op kind in user_data");
  }

  if (op.slot >= conns_.size()) impossible("op for a slot that never existed");
  Connection& c = conns_[op.slot];
  if (!c.in_use || (c.gen & kGenMask) != op.gen) impossible("op for a released connection");
  if (!more) {
    if (c.ops == 0) impossible("connection op count underflow");
    --c.ops;
  }

  switch (op.kind) {
    case OpKind::kConnect:
      c.connect_inflight = false;
      onConnect(c, res);
      break;
    case OpKind::kRecvClient:
    case OpKind::kRecvUpstream: {
      Dir d = op.kind == OpKind::kRecvClient ? kToUpstream : kToClient;
      if (!more) {
        c.dir[d].recv_armed = false;
        c.dir[d].cancel_requested = false;
      }
      onRecv(c, d, res, cqe.flags);
      break;
    }
    case OpKind::kSendUpstream:
    case OpKind::kSendClient: {
      Dir d = op.kind == OpKind::kSendUpstream ? kToUpstream : kToClient;
      c.dir[d].send_inflight = false;
      onSent(c, d, res);
      break;
    }
    default:
      break;
  }
  if (c.closing && c.ops == 0) release(c);
}

// ---- worker-level ops --------------------------------------------------------

void Worker::onAccept(int res, bool more) {
  if (!more) accept_armed_ = false;
  if (res >= 0) {
    UniqueFd fd(res);
    WorkerCounters::add(counters_.accepted);
    if (!stopping_) startConnection(std::move(fd));
  } else if (res == -EINVAL && multishot_accept_.load(std::memory_order_relaxed) &&
             counters_.accepted.load(std::memory_order_relaxed) == 0) {
    spdlog::warn("proxy worker {}: kernel refused multishot accept; accepting one at a time", index_);
    multishot_accept_ = false;
  } else if (res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
    // EMFILE/ENFILE/ENOMEM: the connection waits in the listen queue.
    WorkerCounters::add(counters_.accept_errors);
    spdlog::warn("proxy worker {}: accept failed: {} (check the fd limit)", index_, std::strerror(-res));
  }
  if (!accept_armed_ && !stopping_) armAccept();
}

void Worker::onWake(int /*res*/) {
  wake_armed_ = false;
  if (stop_requested_.load(std::memory_order_acquire)) return;  // run() sees the flag
  armWake();
}

void Worker::beginStop() {
  stopping_ = true;
  // One cancel for everything the ring holds: accept, wake, every recv,
  // send and connect. Connections then release as their ops report.
  io_uring_sqe sqe{};
  io_uring_prep_cancel64(&sqe, 0, IORING_ASYNC_CANCEL_ANY);
  submit(sqe, encodeOp(OpKind::kCancel));
  for (Connection& c : conns_)
    if (c.in_use) closeConnection(c);
}

// ---- connections ---------------------------------------------------------------

void Worker::startConnection(UniqueFd client) {
  auto local = localAddress(client.get());
  if (!local) {
    WorkerCounters::add(counters_.route_failures);
    return;
  }
  auto upstream = router_(local.value());
  if (!upstream) {
    WorkerCounters::add(counters_.route_failures);
    spdlog::debug("proxy worker {}: no upstream for {}: {}", index_, local->toString(), upstream.error().message);
    return;
  }
  UniqueFd up(::socket(upstream->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!up) {
    WorkerCounters::add(counters_.upstream_connect_failures);
    return;
  }
  setNoDelay(client.get());
  setNoDelay(up.get());

  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = uint32_t(conns_.size());
    conns_.emplace_back();
  }
  Connection& c = conns_[slot];
  uint32_t gen = c.gen;
  c = Connection{};
  c.slot = slot;
  c.gen = gen;
  c.in_use = true;
  c.client = std::move(client);
  c.upstream = std::move(up);
  c.upstream_addr = upstream.value();
  WorkerCounters::add(counters_.active);

  io_uring_sqe sqe{};
  io_uring_prep_connect(&sqe, c.upstream.get(), c.upstream_addr.get(), c.upstream_addr.len);
  c.connect_inflight = true;
  ++c.ops;
  submit(sqe, encodeOp(OpKind::kConnect, c.slot, c.gen));
}

void Worker::onConnect(Connection& c, int res) {
  if (c.closing) return;
  if (res < 0) {
    WorkerCounters::add(counters_.upstream_connect_failures);
    spdlog::debug("proxy worker {}: connect to {} failed: {}", index_, c.upstream_addr.toString(),
                  std::strerror(-res));
    return closeConnection(c);
  }
  c.connected = true;
  maybeArmRecv(c, kToUpstream);
  maybeArmRecv(c, kToClient);
}

void Worker::maybeArmRecv(Connection& c, Dir d) {
  Direction& x = c.dir[d];
  if (stopping_ || c.closing || !c.connected || x.eof || x.recv_armed || x.stalled) return;
  if (x.queued >= options_.max_buffers_per_direction) return;  // resumed by onSent
  armRecv(c, d);
}

void Worker::onRecv(Connection& c, Dir d, int res, uint32_t flags) {
  Direction& x = c.dir[d];
  if (flags & IORING_CQE_F_BUFFER) {
    const uint16_t bid = uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
    WorkerCounters::add(counters_.buffers_in_use);
    if (res > 0 && !c.closing) {
      takeBuffer(c, d, bid, uint32_t(res));
    } else {
      dropBuffer(bid, 0);
    }
  }
  if (c.closing) return;

  if (res > 0) {
    recv_proven_ = true;
    x.bulk = uint32_t(res) >= buffers_.size();
    trySend(c, d);
    if (x.recv_armed && !x.cancel_requested && x.queued >= options_.max_buffers_per_direction) {
      // The sink is slower than the source: stop the multishot recv so the
      // kernel's socket buffer, not ours, absorbs the difference.
      x.cancel_requested = true;
      x.paced = true;
      WorkerCounters::add(counters_.backpressure_pauses);
      cancelOp(encodeOp(recvOp(d), c.slot, c.gen));
    }
    maybeArmRecv(c, d);  // single-shot mode, or multishot that ended
    return;
  }
  if (res == 0) {
    x.eof = true;
    return maybeFinish(c, d);
  }
  switch (-res) {
    case ENOBUFS:
      // The ring is empty: it grows if it may (the stall is revived after
      // this batch), else buffers come back as sends complete.
      WorkerCounters::add(counters_.enobufs_stalls);
      growBuffers();
      x.stalled = true;
      stalled_.push_back(Stall{c.slot, c.gen, d});
      return;
    case EINVAL:
      // A kernel without a recv feature refuses it at first use.
      if (!recv_proven_ && recv_cap_.load(std::memory_order_relaxed) && multishot_recv_.load()) {
        spdlog::warn("proxy worker {}: kernel refused the multishot recv byte cap (Linux 6.17+); "
                     "pausing by cancel instead", index_);
        recv_cap_ = false;
        return maybeArmRecv(c, d);
      }
      if (!recv_proven_ && multishot_recv_.load(std::memory_order_relaxed)) {
        spdlog::warn("proxy worker {}: kernel refused multishot recv; receiving one buffer at a time", index_);
        multishot_recv_ = false;
        return maybeArmRecv(c, d);
      }
      break;
    case ECANCELED:  // our backpressure cancel
    case EINTR:
    case EAGAIN:
      return maybeArmRecv(c, d);
    default:
      break;
  }
  WorkerCounters::add(counters_.connection_errors);
  closeConnection(c);
}

void Worker::takeBuffer(Connection& c, Dir d, uint16_t bid, uint32_t len) {
  Direction& x = c.dir[d];
  links_[bid] = BufferLink{len, 0, kNoBuffer};
  if (x.tail == kNoBuffer)
    x.head = bid;
  else
    links_[x.tail].next = bid;
  x.tail = bid;
  ++x.queued;
  x.bytes += len;
  WorkerCounters::add(counters_.buffered_bytes, len);
  uint64_t now = counters_.buffered_bytes.load(std::memory_order_relaxed);
  if (now > counters_.buffered_bytes_peak.load(std::memory_order_relaxed))
    counters_.buffered_bytes_peak.store(now, std::memory_order_relaxed);
}

void Worker::dropBuffer(uint16_t bid, uint32_t unsent) {
  WorkerCounters::sub(counters_.buffered_bytes, unsent);
  WorkerCounters::sub(counters_.buffers_in_use);
  buffers_.recycle(bid);  // stalled recvs re-arm after this batch (reviveStalled)
}

void Worker::trySend(Connection& c, Dir d) {
  Direction& x = c.dir[d];
  if (c.closing || x.send_inflight || x.head == kNoBuffer) return;
  const BufferLink& b = links_[x.head];
  io_uring_sqe sqe{};
  io_uring_prep_send(&sqe, c.sink(d), buffers_.buffer(uint16_t(x.head)) + b.off, b.len - b.off, MSG_NOSIGNAL);
  x.send_inflight = true;
  ++c.ops;
  submit(sqe, encodeOp(sendOp(d), c.slot, c.gen));
}

void Worker::onSent(Connection& c, Dir d, int res) {
  Direction& x = c.dir[d];
  if (c.closing) return;
  if (res > 0) {
    WorkerCounters::add(d == kToUpstream ? counters_.bytes_to_upstream : counters_.bytes_to_client, uint64_t(res));
    BufferLink& b = links_[x.head];
    b.off += uint32_t(res);
    if (b.off >= b.len) {
      const int32_t bid = x.head;
      x.head = b.next;
      if (x.head == kNoBuffer) x.tail = kNoBuffer;
      --x.queued;
      x.bytes -= b.len;
      dropBuffer(uint16_t(bid), b.len);
    }
    trySend(c, d);
    maybeArmRecv(c, d);
    return maybeFinish(c, d);
  }
  if (res == -EINTR || res == -EAGAIN) return trySend(c, d);
  WorkerCounters::add(counters_.connection_errors);
  closeConnection(c);
}

void Worker::maybeFinish(Connection& c, Dir d) {
  Direction& x = c.dir[d];
  if (c.closing || !x.eof || x.done || x.head != kNoBuffer || x.send_inflight) return;
  // Half-close: the source said EOF and everything it sent is delivered.
  ::shutdown(c.sink(d), SHUT_WR);
  x.done = true;
  if (c.dir[kToUpstream].done && c.dir[kToClient].done) closeConnection(c);
}

void Worker::closeConnection(Connection& c) {
  if (c.closing) return;
  c.closing = true;
  const uint64_t cancel_kinds[] = {
      c.connect_inflight ? encodeOp(OpKind::kConnect, c.slot, c.gen) : 0,
      c.dir[0].recv_armed ? encodeOp(recvOp(kToUpstream), c.slot, c.gen) : 0,
      c.dir[1].recv_armed ? encodeOp(recvOp(kToClient), c.slot, c.gen) : 0,
      c.dir[0].send_inflight ? encodeOp(sendOp(kToUpstream), c.slot, c.gen) : 0,
      c.dir[1].send_inflight ? encodeOp(sendOp(kToClient), c.slot, c.gen) : 0,
  };
  for (uint64_t ud : cancel_kinds)
    if (ud) cancelOp(ud);
  if (c.ops == 0) release(c);
}

void Worker::release(Connection& c) {
  for (Direction& x : c.dir) {
    while (x.head != kNoBuffer) {
      const int32_t bid = x.head;
      x.head = links_[bid].next;
      dropBuffer(uint16_t(bid), links_[bid].len);
    }
    x.tail = kNoBuffer;
    x.queued = 0;
    x.bytes = 0;
  }
  c.client.reset();
  c.upstream.reset();
  c.in_use = false;
  c.closing = false;
  ++c.gen;
  free_slots_.push_back(c.slot);
  WorkerCounters::sub(counters_.active);
  WorkerCounters::add(counters_.closed);
}

void Worker::growBuffers() {
  if (buffers_.grow()) counters_.buffers_provided.store(buffers_.provided(), std::memory_order_relaxed);
}

void Worker::reviveStalled() {
  if (stalled_.empty() || counters_.buffers_in_use.load(std::memory_order_relaxed) >= buffers_.provided()) return;
  std::vector<Stall> stalls;
  stalls.swap(stalled_);
  for (const Stall& s : stalls) {
    Connection& c = conns_[s.slot];
    if (!c.in_use || c.gen != s.gen) continue;
    c.dir[s.dir].stalled = false;
    maybeArmRecv(c, s.dir);
  }
}

}  // namespace nodemesh::proxy
