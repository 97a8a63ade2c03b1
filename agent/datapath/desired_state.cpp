#include "datapath/desired_state.h"

#include <set>

#include "datapath/slot_table.h"

namespace nodemesh::datapath {

Result<DesiredServices> desiredFromSnapshot(const state::Snapshot& snapshot) {
  DesiredServices out;
  std::set<nm_backend, BytesLess<nm_backend>> backends;
  std::size_t slotTotal = 0;
  for (const auto& svc : snapshot.services) {
    for (const auto& vip : svc.vips) {
      for (const auto& port : svc.ports) {
        DesiredService d;
        d.key = makeServiceKey(vip, port.port, port.protocol);
        d.name = svc.qualifiedName();
        d.algo = svc.lb;
        // Only TCP is captured; a UDP port of an mtls service stays plain L4.
        if (svc.mode == state::ServiceMode::kMtls && port.protocol == state::Protocol::kTcp) d.flags = NM_SVC_F_MTLS;
        std::vector<WeightedBackend> weighted;
        std::vector<nm_backend> ready;
        for (const auto& ep : svc.endpoints) {
          if (ep.address.family() != vip.family()) continue;
          ++d.backendCount;
          if (!ep.ready) continue;
          nm_backend be = makeBackend(ep.address, ep.port.value_or(port.targetPort));
          ready.push_back(be);
          weighted.push_back({toString(be), ep.weight});
          backends.insert(be);
        }
        d.readyCount = static_cast<std::uint32_t>(ready.size());
        for (std::uint32_t idx : buildTable(d.algo, weighted)) d.slots.push_back(ready[idx]);
        slotTotal += d.slots.size();
        if (!out.emplace(d.key, std::move(d)).second)
          return Error{"service " + svc.qualifiedName() + ": " + toString(makeServiceKey(vip, port.port, port.protocol)) +
                       " is already used by another service"};
      }
    }
  }
  if (out.size() >= NM_MAX_SERVICES)
    return Error{std::to_string(out.size()) + " service ports exceed the datapath's capacity of " +
                 std::to_string(NM_MAX_SERVICES - 1)};
  if (backends.size() > NM_MAX_BACKENDS)
    return Error{std::to_string(backends.size()) + " distinct backends exceed the datapath's capacity of " +
                 std::to_string(NM_MAX_BACKENDS)};
  // A sync briefly holds two generations of one table at a time, so half the
  // slot map is the budget for live tables.
  if (slotTotal > NM_MAX_SLOTS / 2)
    return Error{std::to_string(slotTotal) + " backend slots exceed the datapath's capacity of " +
                 std::to_string(NM_MAX_SLOTS / 2) + "; use loadBalancing: random for large services"};
  return out;
}

}  // namespace nodemesh::datapath
