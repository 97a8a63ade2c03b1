// RAII for one io_uring and its provided-buffer ring, plus the local backlog
// that takes submissions when the SQ is full (a submission is never dropped).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "common/result.h"
#include "proxy/engine/options.h"

namespace nodemesh::proxy {

// One anonymous mapping, unmapped exactly once.
class Mapping {
 public:
  Mapping() = default;
  static Result<Mapping> anonymous(size_t bytes);
  Mapping(Mapping&& o) noexcept;
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Creates the ring with the best setup flags `want` allows; `got` says which
  // of single_issuer/defer_taskrun were accepted. Call on the thread that
  // will submit (SINGLE_ISSUER binds the ring to it).
  Status init(unsigned sq_entries, unsigned cq_entries, const EngineFeatures& want,
              EngineFeatures& got);

  io_uring* get() { return &ring_; }

  // Queues one prepared SQE (built on the stack): into the SQ if there is
  // room and nothing is waiting ahead of it, else into the backlog. Returns
  // true when it went to the backlog.
  bool push(const io_uring_sqe& sqe);
  // Moves the backlog into the SQ, submitting to make room; stops early only
  // when the kernel refuses more (-EBUSY: reap completions first).
  void flushBacklog();
  size_t backlog() const { return backlog_.size(); }

 private:
  io_uring ring_{};
  bool live_ = false;
  std::deque<io_uring_sqe> backlog_;
};

// A provided-buffer ring with room for `count` buffers of `size` bytes, group
// `bgid`. Only `initial` buffers are handed to the kernel at first; grow()
// doubles that when the kernel runs out (ENOBUFS), up to `count`. Why: the
// kernel takes buffers in ring order and recycled ones go to the tail, so over
// time every buffer in the ring gets touched; a ring sized for the worst case
// would make every worker resident at its worst case after a little traffic.
// Growing on demand keeps the touched memory at the peak concurrency actually
// seen. Buffer memory is one lazily-touched mapping of `count` buffers.
// liburing 2.3 has no io_uring_setup_buf_ring: we map and register by hand.
class BufferRing {
 public:
  Status init(io_uring* ring, uint16_t bgid, unsigned count, unsigned size, unsigned initial = 0);
  uint16_t group() const { return bgid_; }
  unsigned size() const { return size_; }
  // Capacity: the most buffers the ring will ever provide.
  unsigned count() const { return count_; }
  // Buffers handed to the kernel so far (in the ring or taken from it).
  unsigned provided() const { return provided_; }
  uint8_t* buffer(uint16_t bid) const { return static_cast<uint8_t*>(memory_.data()) + size_t(bid) * size_; }
  // Gives a buffer back to the kernel.
  void recycle(uint16_t bid);
  // Provides more buffers (doubling, up to count()); false when all are out.
  bool grow();

 private:
  void provide(unsigned from, unsigned to);

  Mapping ring_mem_;
  Mapping memory_;
  io_uring_buf_ring* br_ = nullptr;
  uint16_t bgid_ = 0;
  unsigned count_ = 0;
  unsigned provided_ = 0;
  unsigned size_ = 0;
  int mask_ = 0;
};

}  // namespace nodemesh::proxy
