// Per-worker counters and gauges, declared once in NM_ENGINE_COUNTERS: adding
// one is one line. Written only by the owning worker thread, read by anyone.
#pragma once

#include <atomic>
#include <cstdint>

namespace nodemesh::proxy {

// X(name, help)
#define NM_ENGINE_COUNTERS(X)                                                      \
  X(accepted, "client connections accepted")                                       \
  X(closed, "proxied connections fully closed")                                    \
  X(active, "gauge: proxied connections open now")                                 \
  X(bytes_to_upstream, "bytes sent from clients to upstreams")                     \
  X(bytes_to_client, "bytes sent from upstreams to clients")                       \
  X(upstream_connect_failures, "upstream connects that failed")                    \
  X(route_failures, "accepted connections the router had no upstream for")         \
  X(accept_errors, "accept completions with an error (EMFILE, ENOMEM, ...)")       \
  X(connection_errors, "connections closed on a recv/send error")                  \
  X(enobufs_stalls, "recvs stopped because the buffer ring was empty")             \
  X(buffers_provided, "gauge: provided buffers handed to the kernel (grows on demand)") \
  X(backpressure_pauses, "recvs paused because the other side was slow")           \
  X(sq_backlogged, "submissions queued locally because the SQ was full")           \
  X(buffers_in_use, "gauge: provided buffers taken from the ring")                 \
  X(buffered_bytes, "gauge: bytes received and not yet sent on")                   \
  X(buffered_bytes_peak, "gauge: highest buffered_bytes seen")

// A plain snapshot, summable across workers.
struct WorkerStats {
#define NM_FIELD(name, help) uint64_t name = 0;
  NM_ENGINE_COUNTERS(NM_FIELD)
#undef NM_FIELD

  WorkerStats& operator+=(const WorkerStats& o) {
#define NM_ADD(name, help) name += o.name;
    NM_ENGINE_COUNTERS(NM_ADD)
#undef NM_ADD
    return *this;
  }
  // fn(const char* name, const char* help, uint64_t value) for each field.
  template <typename Fn>
  void forEach(Fn&& fn) const {
#define NM_VISIT(name, help) fn(#name, help, name);
    NM_ENGINE_COUNTERS(NM_VISIT)
#undef NM_VISIT
  }
};

class WorkerCounters {
 public:
#define NM_ATOMIC(name, help) std::atomic<uint64_t> name{0};
  NM_ENGINE_COUNTERS(NM_ATOMIC)
#undef NM_ATOMIC

  // Single writer: plain load + store, no read-modify-write needed.
  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void sub(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }

  WorkerStats snapshot() const {
    WorkerStats s;
#define NM_LOAD(name, help) s.name = name.load(std::memory_order_relaxed);
    NM_ENGINE_COUNTERS(NM_LOAD)
#undef NM_LOAD
    return s;
  }
};

}  // namespace nodemesh::proxy
