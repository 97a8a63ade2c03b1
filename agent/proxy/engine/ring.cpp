#include "proxy/engine/ring.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace nodemesh::proxy {

Result<Mapping> Mapping::anonymous(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Error::sys("mmap " + std::to_string(bytes) + " bytes");
  Mapping m;
  m.data_ = p;
  m.size_ = bytes;
  return m;
}

Mapping::Mapping(Mapping&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (data_) ::munmap(data_, size_);
}

Ring::~Ring() {
  if (live_) io_uring_queue_exit(&ring_);
}

Status Ring::init(unsigned sq_entries, unsigned cq_entries, const EngineFeatures& want,
                  EngineFeatures& got) {
  // Best first; each step drops one flag the running kernel may not know.
  struct Attempt {
    unsigned flags;
    bool single_issuer, defer_taskrun;
  };
  const Attempt attempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, true, true},
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN, true, false},
      {IORING_SETUP_COOP_TASKRUN, false, false},
      {0, false, false},
  };
  int last = 0;
  for (const Attempt& a : attempts) {
    if ((a.single_issuer && !want.single_issuer) || (a.defer_taskrun && !want.defer_taskrun)) continue;
    io_uring_params p{};
    p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = cq_entries;
    last = io_uring_queue_init_params(sq_entries, &ring_, &p);
    if (last == 0) {
      live_ = true;
      got.single_issuer = a.single_issuer;
      got.defer_taskrun = a.defer_taskrun;
      return {};
    }
    if (last != -EINVAL) break;  // ENOMEM, EPERM: a flag is not the problem
  }
  return Error::sys("creating an io_uring (is io_uring disabled by kernel.io_uring_disabled or a seccomp profile?)",
                    -last);
}

bool Ring::push(const io_uring_sqe& sqe) {
  if (backlog_.empty()) {
    if (io_uring_sqe* slot = io_uring_get_sqe(&ring_)) {
      *slot = sqe;
      return false;
    }
  }
  backlog_.push_back(sqe);
  return true;
}

void Ring::flushBacklog() {
  while (!backlog_.empty()) {
    io_uring_sqe* slot = io_uring_get_sqe(&ring_);
    if (!slot) {
      int r = io_uring_submit(&ring_);
      if (r < 0 && r != -EINTR && r != -EAGAIN) return;  // -EBUSY: CQ overflow, reap first
      slot = io_uring_get_sqe(&ring_);
      if (!slot) return;
    }
    *slot = backlog_.front();
    backlog_.pop_front();
  }
}

Status BufferRing::init(io_uring* ring, uint16_t bgid, unsigned count, unsigned size, unsigned initial) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0)
    return Error{"buffer_count must be a power of two in [1, 32768], got " + std::to_string(count), EINVAL};
  auto rm = Mapping::anonymous(count * sizeof(io_uring_buf));
  if (!rm) return rm.error().wrap("mapping the buffer ring");
  auto mem = Mapping::anonymous(size_t(count) * size);
  if (!mem) return mem.error().wrap("mapping provided buffers");
  ring_mem_ = std::move(rm.value());
  memory_ = std::move(mem.value());
  br_ = static_cast<io_uring_buf_ring*>(ring_mem_.data());
  bgid_ = bgid;
  count_ = count;
  size_ = size;
  mask_ = io_uring_buf_ring_mask(count);
  io_uring_buf_ring_init(br_);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = bgid;
  if (int r = io_uring_register_buf_ring(ring, &reg, 0); r < 0)
    return Error::sys("registering a provided buffer ring (needs Linux 5.19+)", -r);
  provide(0, (initial == 0 || initial > count) ? count : initial);
  return {};
}

void BufferRing::provide(unsigned from, unsigned to) {
  for (unsigned i = from; i < to; ++i)
    io_uring_buf_ring_add(br_, buffer(uint16_t(i)), size_, uint16_t(i), mask_, int(i - from));
  io_uring_buf_ring_advance(br_, int(to - from));
  provided_ = to;
}

bool BufferRing::grow() {
  if (provided_ >= count_) return false;
  provide(provided_, std::min(count_, provided_ * 2));
  return true;
}

void BufferRing::recycle(uint16_t bid) {
  io_uring_buf_ring_add(br_, buffer(bid), size_, bid, mask_, 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace nodemesh::proxy
