// Per-namespace accounting shared by the workers of one mesh proxy. A
// namespace gets one cell the first time a worker sees it; the cell holds the
// node-wide count of its open connections (the maxConnections cap is one
// number per node, so it is one atomic, bumped once per connection) and one
// block of counters per worker (single writer, relaxed; summed on read).
// Workers cache cell pointers, so the registry's mutex is taken once per
// namespace per worker, never per request.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/mesh/mesh_stats.h"

namespace nodemesh::proxy::mesh {

struct NamespaceWorkerCounters {
#define NM_ATOMIC(name, help) std::atomic<std::uint64_t> name{0};
  NM_NAMESPACE_COUNTERS(NM_ATOMIC)
#undef NM_ATOMIC
};

struct NamespaceCell {
  NamespaceCell(std::string n, unsigned workers)
      : name(std::move(n)), perWorker(std::make_unique<NamespaceWorkerCounters[]>(workers)) {}
  const std::string name;
  std::atomic<std::uint64_t> active{0};  // node-wide open connections
  std::unique_ptr<NamespaceWorkerCounters[]> perWorker;

  // Reserves a connection slot under `cap` (0: unlimited); false at the cap.
  bool tryOpen(std::uint32_t cap) {
    std::uint64_t now = active.fetch_add(1, std::memory_order_relaxed) + 1;
    if (cap != 0 && now > cap) {
      active.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void closed() { active.fetch_sub(1, std::memory_order_relaxed); }
};

class NamespaceRegistry {
 public:
  explicit NamespaceRegistry(unsigned workers) : workers_(workers) {}
  // The cell of `ns`, created on first use; stable for the registry's life.
  NamespaceCell* get(std::string_view ns);
  // Sorted by name.
  std::vector<NamespaceStats> snapshot() const;

 private:
  const unsigned workers_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<NamespaceCell>, std::less<>> cells_;
};

// Single-writer add/sub on a relaxed atomic (the worker owns it).
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void drop(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

}  // namespace nodemesh::proxy::mesh
