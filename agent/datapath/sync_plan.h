// The diff between what the maps hold and what they should hold, as an
// ordered list of map writes. The order is the safety argument: at every
// step, every service the hooks can find resolves to live backends.
//   1. new backends
//   2. per changed service: its table in the idle generation, then the one
//      service-value write that flips to it, then the old generation's slots
//   3. removed services, then their slots
//   4. stray slots and backends nothing points at any more
// Applying the plan of a state to itself yields an empty plan.
#pragma once

#include <map>
#include <vector>

#include "common/result.h"
#include "datapath/abi_types.h"
#include "datapath/desired_state.h"

namespace nodemesh::datapath {

struct InstalledService {
  nm_service value{};
  std::vector<std::uint32_t> slots;  // backend id per live slot
};

// What the kernel maps hold now, read back from them.
struct InstalledState {
  std::map<nm_service_key, InstalledService, BytesLess<nm_service_key>> services;
  std::map<std::uint32_t, nm_backend> backends;
  std::vector<nm_slot_key> straySlots;  // not in any live table (an interrupted sync left them)
};

struct MapOp {
  enum class Kind { kPutBackend, kPutSlot, kResetStats, kPutService, kDeleteService, kDeleteSlot, kDeleteBackend };
  Kind kind;
  nm_service_key serviceKey{};  // kPutService, kDeleteService
  nm_service service{};         // kPutService
  nm_slot_key slot{};           // kPutSlot, kDeleteSlot
  std::uint32_t id = 0;         // backend id (kPutBackend, kDeleteBackend, kPutSlot value) or stats index
  nm_backend backend{};         // kPutBackend
};

struct SyncPlan {
  std::vector<MapOp> ops;
  std::size_t servicesAdded = 0, servicesChanged = 0, servicesRemoved = 0;
  std::size_t backendsAdded = 0, backendsRemoved = 0;
};

// Fails only when ids run out (capacity is checked earlier, so that means a bug).
Result<SyncPlan> planSync(const InstalledState& installed, const DesiredServices& desired);

}  // namespace nodemesh::datapath
