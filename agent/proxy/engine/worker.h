// A Worker is one thread's share of the engine: one io_uring, one
// SO_REUSEPORT listener, one provided-buffer ring and the connections it
// accepted. Shared-nothing: only its counters and stop flag cross threads.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proxy/engine/connection.h"
#include "proxy/engine/counters.h"
#include "proxy/engine/options.h"
#include "proxy/engine/ring.h"

namespace nodemesh::proxy {

class Worker {
 public:
  Worker(unsigned index, const EngineOptions& options, Router router, UniqueFd listener, UniqueFd wake);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Creates the ring and buffers and arms accept; call on the worker thread.
  Status init();
  // Runs until requestStop(), then closes every connection and drains the ring.
  void run();
  // Any thread: asks run() to return.
  void requestStop();

  WorkerStats stats() const { return counters_.snapshot(); }
  // Valid after init() returned (the multishot fields may turn false later if
  // the kernel refuses them at first use).
  EngineFeatures features() const;

 private:
  struct BufferLink {
    uint32_t len = 0;
    uint32_t off = 0;
    int32_t next = kNoBuffer;
  };
  struct Stall {
    uint32_t slot, gen;
    Dir dir;
  };

  void submit(io_uring_sqe& sqe, uint64_t user_data);
  void dispatch(const io_uring_cqe& cqe);
  void armAccept();
  void armWake();
  void onAccept(int res, bool more);
  void onWake(int res);
  void startConnection(UniqueFd client);
  void onConnect(Connection& c, int res);
  void onRecv(Connection& c, Dir d, int res, uint32_t flags);
  void onSent(Connection& c, Dir d, int res);
  void armRecv(Connection& c, Dir d);
  void maybeArmRecv(Connection& c, Dir d);
  void trySend(Connection& c, Dir d);
  void maybeFinish(Connection& c, Dir d);
  void closeConnection(Connection& c);
  void release(Connection& c);
  void cancelOp(uint64_t user_data);
  void takeBuffer(Connection& c, Dir d, uint16_t bid, uint32_t len);
  void dropBuffer(uint16_t bid, uint32_t unsent);
  void reviveStalled();
  void growBuffers();  // on ENOBUFS: more buffers if the ring may grow
  void beginStop();

  const unsigned index_;
  const EngineOptions options_;
  const Router router_;
  UniqueFd listener_;
  UniqueFd wake_fd_;
  uint64_t wake_value_ = 0;
  std::atomic<bool> stop_requested_{false};
  bool stopping_ = false;
  bool accept_armed_ = false;
  bool wake_armed_ = false;
  uint64_t inflight_ = 0;  // submissions whose final completion is still due

  EngineFeatures features_;
  std::atomic<bool> multishot_accept_{true};
  std::atomic<bool> multishot_recv_{true};
  std::atomic<bool> recv_cap_{true};
  bool recv_proven_ = false;  // a recv has returned data: EINVAL is no longer a feature probe
  WorkerCounters counters_;

  // Declared before ring_ so the ring is torn down before buffer memory.
  BufferRing buffers_;
  std::vector<BufferLink> links_;
  Ring ring_;

  std::deque<Connection> conns_;  // deque: addresses stay put as it grows
  std::vector<uint32_t> free_slots_;
  std::vector<Stall> stalled_;
};

}  // namespace nodemesh::proxy
