#include "proxy/mesh/tenancy.h"

namespace nodemesh::proxy::mesh {

NamespaceCell* NamespaceRegistry::get(std::string_view ns) {
  std::lock_guard lock(mu_);
  auto it = cells_.find(ns);
  if (it != cells_.end()) return it->second.get();
  auto cell = std::make_unique<NamespaceCell>(std::string(ns), workers_);
  NamespaceCell* raw = cell.get();
  cells_.emplace(std::string(ns), std::move(cell));
  return raw;
}

std::vector<NamespaceStats> NamespaceRegistry::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<NamespaceStats> out;
  out.reserve(cells_.size());
  for (const auto& [name, cell] : cells_) {
    NamespaceStats s;
    s.name = name;
    for (unsigned w = 0; w < workers_; ++w) {
      const NamespaceWorkerCounters& c = cell->perWorker[w];
#define NM_SUM(field, help) s.field += c.field.load(std::memory_order_relaxed);
      NM_NAMESPACE_COUNTERS(NM_SUM)
#undef NM_SUM
    }
    // Open connections are counted node-wide (the cap), not per worker.
    s.connections_active = cell->active.load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

hbone::HboneCounters& operator+=(hbone::HboneCounters& a, const hbone::HboneCounters& b) {
  for (std::size_t i = 0; i < a.tlsFailures.size(); ++i) a.tlsFailures[i] += b.tlsFailures[i];
  for (std::size_t i = 0; i < a.closes.size(); ++i) a.closes[i] += b.closes[i];
  for (std::size_t i = 0; i < a.rejects.size(); ++i) a.rejects[i] += b.rejects[i];
  a.handshakes += b.handshakes;
  a.streamsOpened += b.streamsOpened;
  a.streamsReset += b.streamsReset;
  a.bytesIn += b.bytesIn;
  a.bytesOut += b.bytesOut;
  return a;
}

}  // namespace nodemesh::proxy::mesh
