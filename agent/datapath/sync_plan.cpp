#include "datapath/sync_plan.h"

#include <set>

namespace nodemesh::datapath {
namespace {

// Hands out the lowest ids not in use. Ids of things removed by the same
// plan stay reserved: reusing one would let a new service write slots that
// the old one still serves from until it is deleted.
class IdAllocator {
 public:
  IdAllocator(std::set<std::uint32_t> used, std::uint32_t max) : used_(std::move(used)), max_(max) {}
  Result<std::uint32_t> next(const char* what) {
    while (cursor_ <= max_ && used_.count(cursor_)) ++cursor_;
    if (cursor_ > max_) return Error{std::string("out of ") + what + " ids (" + std::to_string(max_) + ")"};
    used_.insert(cursor_);
    return cursor_++;
  }

 private:
  std::set<std::uint32_t> used_;
  std::uint32_t max_;
  std::uint32_t cursor_ = 1;
};

nm_slot_key slotKey(std::uint32_t serviceId, std::uint8_t generation, std::uint32_t index) {
  nm_slot_key k{};
  k.service_id = serviceId;
  k.slot = index | (generation ? NM_SLOT_GEN_BIT : 0u);
  return k;
}

}  // namespace

Result<SyncPlan> planSync(const InstalledState& installed, const DesiredServices& desired) {
  SyncPlan plan;
  auto& ops = plan.ops;

  // 1. Backends: an id names one (address, port) for its whole life.
  std::map<nm_backend, std::uint32_t, BytesLess<nm_backend>> backendId;
  std::set<std::uint32_t> usedBackendIds;
  for (const auto& [id, be] : installed.backends) {
    backendId.emplace(be, id);
    usedBackendIds.insert(id);
  }
  IdAllocator backendIds(usedBackendIds, NM_MAX_BACKENDS);
  std::set<std::uint32_t> referenced;
  for (const auto& [key, svc] : desired) {
    for (const auto& be : svc.slots) {
      auto it = backendId.find(be);
      if (it == backendId.end()) {
        auto id = backendIds.next("backend");
        if (!id) return id.error();
        it = backendId.emplace(be, *id).first;
        ops.push_back({.kind = MapOp::Kind::kPutBackend, .id = *id, .backend = be});
        ++plan.backendsAdded;
      }
      referenced.insert(it->second);
    }
  }

  // 2. New and changed services, each flipped to its new table in one write.
  std::set<std::uint32_t> usedServiceIds;
  for (const auto& [key, svc] : installed.services) usedServiceIds.insert(svc.value.id);
  IdAllocator serviceIds(usedServiceIds, NM_MAX_SERVICES - 1);
  std::set<nm_slot_key, BytesLess<nm_slot_key>> written;
  for (const auto& [key, svc] : desired) {
    std::vector<std::uint32_t> ids;
    ids.reserve(svc.slots.size());
    for (const auto& be : svc.slots) ids.push_back(backendId.at(be));
    const std::uint8_t algo = static_cast<std::uint8_t>(svc.algo);

    auto cur = installed.services.find(key);
    const bool exists = cur != installed.services.end();
    if (exists && cur->second.value.algo == algo && cur->second.value.flags == svc.flags && cur->second.slots == ids)
      continue;

    std::uint32_t id;
    std::uint8_t generation = 0;
    if (exists) {
      id = cur->second.value.id;
      generation = cur->second.value.generation ? 0 : 1;
      ++plan.servicesChanged;
    } else {
      auto fresh = serviceIds.next("service");
      if (!fresh) return fresh.error();
      id = *fresh;
      ops.push_back({.kind = MapOp::Kind::kResetStats, .id = id});
      ++plan.servicesAdded;
    }
    for (std::uint32_t i = 0; i < ids.size(); ++i) {
      nm_slot_key sk = slotKey(id, generation, i);
      written.insert(sk);
      ops.push_back({.kind = MapOp::Kind::kPutSlot, .slot = sk, .id = ids[i]});
    }
    nm_service value{};
    value.id = id;
    value.slot_count = static_cast<std::uint16_t>(ids.size());
    value.algo = algo;
    value.generation = generation;
    value.flags = svc.flags;
    ops.push_back({.kind = MapOp::Kind::kPutService, .serviceKey = key, .service = value});
    if (exists) {
      for (std::uint32_t i = 0; i < cur->second.slots.size(); ++i)
        ops.push_back({.kind = MapOp::Kind::kDeleteSlot, .slot = slotKey(id, cur->second.value.generation, i)});
    }
  }

  // 3. Removed services: unpublish first, then their tables.
  for (const auto& [key, svc] : installed.services) {
    if (desired.count(key)) continue;
    ops.push_back({.kind = MapOp::Kind::kDeleteService, .serviceKey = key});
    for (std::uint32_t i = 0; i < svc.slots.size(); ++i)
      ops.push_back({.kind = MapOp::Kind::kDeleteSlot, .slot = slotKey(svc.value.id, svc.value.generation, i)});
    ++plan.servicesRemoved;
  }

  // 4. Leftovers, now that nothing live points at them.
  for (const auto& sk : installed.straySlots)
    if (!written.count(sk)) ops.push_back({.kind = MapOp::Kind::kDeleteSlot, .slot = sk});
  for (const auto& [id, be] : installed.backends) {
    if (referenced.count(id)) continue;
    ops.push_back({.kind = MapOp::Kind::kDeleteBackend, .id = id});
    ++plan.backendsRemoved;
  }
  return plan;
}

}  // namespace nodemesh::datapath
