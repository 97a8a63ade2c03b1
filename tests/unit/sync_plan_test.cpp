// The planner against a model of the three kernel maps: after every single
// map write, every service the hooks can find must resolve, slot by slot, to
// a backend of its old or its new set. That is the "never blackhole" promise.
#include "datapath/sync_plan.h"

#include <gtest/gtest.h>

#include <set>

#include "datapath/desired_state.h"

namespace nodemesh::datapath {
namespace {

using state::IpAddress;

struct MapModel {
  std::map<nm_service_key, nm_service, BytesLess<nm_service_key>> services;
  std::map<nm_slot_key, std::uint32_t, BytesLess<nm_slot_key>> slots;
  std::map<std::uint32_t, nm_backend> backends;

  void apply(const MapOp& op) {
    switch (op.kind) {
      case MapOp::Kind::kPutBackend: backends[op.id] = op.backend; break;
      case MapOp::Kind::kPutSlot: slots[op.slot] = op.id; break;
      case MapOp::Kind::kResetStats: break;
      case MapOp::Kind::kPutService: services[op.serviceKey] = op.service; break;
      case MapOp::Kind::kDeleteService: services.erase(op.serviceKey); break;
      case MapOp::Kind::kDeleteSlot: slots.erase(op.slot); break;
      case MapOp::Kind::kDeleteBackend: backends.erase(op.id); break;
    }
  }

  // What SocketLb::readInstalled reads back.
  InstalledState read() const {
    InstalledState st;
    st.backends = backends;
    std::set<nm_slot_key, BytesLess<nm_slot_key>> live;
    for (const auto& [key, svc] : services) {
      InstalledService is{svc, {}};
      for (std::uint32_t i = 0; i < svc.slot_count; ++i) {
        nm_slot_key sk{svc.id, i | (svc.generation ? NM_SLOT_GEN_BIT : 0u)};
        live.insert(sk);
        auto it = slots.find(sk);
        is.slots.push_back(it == slots.end() ? UINT32_MAX : it->second);
      }
      st.services.emplace(key, is);
    }
    for (const auto& [sk, id] : slots)
      if (!live.count(sk)) st.straySlots.push_back(sk);
    return st;
  }

  // Every backend address a hook could pick for key right now.
  std::optional<std::set<std::string>> resolve(const nm_service_key& key) const {
    auto it = services.find(key);
    if (it == services.end()) return std::nullopt;
    std::set<std::string> out;
    for (std::uint32_t i = 0; i < it->second.slot_count; ++i) {
      auto s = slots.find({it->second.id, i | (it->second.generation ? NM_SLOT_GEN_BIT : 0u)});
      if (s == slots.end()) return std::set<std::string>{"<missing slot>"};
      auto b = backends.find(s->second);
      out.insert(b == backends.end() ? "<missing backend>" : toString(b->second));
    }
    return out;
  }
};

state::Service service(const std::string& name, const std::string& vip, std::vector<std::pair<std::string, bool>> eps,
                       state::LbAlgorithm lb = state::LbAlgorithm::kRandom) {
  state::Service s;
  s.name = name;
  s.ns = "t";
  s.vips = {*IpAddress::parse(vip)};
  s.ports = {{"", 80, state::Protocol::kTcp, 8080}};
  s.lb = lb;
  for (auto& [addr, ready] : eps) {
    state::Endpoint e;
    e.address = *IpAddress::parse(addr);
    e.ready = ready;
    s.endpoints.push_back(e);
  }
  return s;
}

DesiredServices desired(std::vector<state::Service> services) {
  state::Snapshot snap;
  snap.services = std::move(services);
  auto d = desiredFromSnapshot(snap);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
  return d.ok() ? *d : DesiredServices{};
}

std::set<std::string> backendsOf(const DesiredService& d) {
  std::set<std::string> out;
  for (const auto& be : d.slots) out.insert(toString(be));
  return out;
}

// Applies the plan op by op, checking the invariant after each, and returns the plan.
SyncPlan syncChecked(MapModel& maps, const DesiredServices& target) {
  auto before = maps;
  auto plan = planSync(maps.read(), target);
  EXPECT_TRUE(plan.ok());
  if (!plan.ok()) return {};
  for (std::size_t step = 0; step < plan->ops.size(); ++step) {
    const MapOp& op = plan->ops[step];
    maps.apply(op);
    const bool slotOp = op.kind == MapOp::Kind::kPutSlot || op.kind == MapOp::Kind::kDeleteSlot;
    for (const auto& [key, svc] : maps.services) {
      if (slotOp && svc.id != op.slot.service_id) continue;  // a slot write can only affect its own service
      auto now = maps.resolve(key);
      std::set<std::string> allowed;
      if (auto old = before.resolve(key)) allowed = *old;
      if (auto it = target.find(key); it != target.end()) {
        auto fresh = backendsOf(it->second);
        allowed.insert(fresh.begin(), fresh.end());
      }
      for (const auto& b : *now)
        EXPECT_TRUE(allowed.count(b)) << "after op " << step << ", " << toString(key) << " resolves to " << b;
      // A service that had backends and still should must never look empty.
      if (before.resolve(key) && !before.resolve(key)->empty() && target.count(key) && !target.at(key).slots.empty()) {
        EXPECT_FALSE(now->empty()) << "after op " << step << ", " << toString(key) << " has no backend";
      }
    }
  }
  // Converged: the maps now match the target exactly.
  for (const auto& [key, d] : target) EXPECT_EQ(maps.resolve(key), backendsOf(d)) << toString(key);
  EXPECT_EQ(maps.services.size(), target.size());
  EXPECT_TRUE(maps.read().straySlots.empty());
  return *plan;
}

TEST(SyncPlan, FromEmptyInstallsEverything) {
  MapModel maps;
  auto plan = syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.1", true}, {"127.0.0.2", true}})}));
  EXPECT_EQ(plan.servicesAdded, 1u);
  EXPECT_EQ(plan.backendsAdded, 2u);
  EXPECT_EQ(maps.slots.size(), 2u);
}

TEST(SyncPlan, SameStateTwiceIsANoOp) {
  MapModel maps;
  auto target = desired({service("a", "127.96.0.1", {{"127.0.0.1", true}}),
                         service("b", "127.96.0.2", {{"127.0.0.3", true}}, state::LbAlgorithm::kMaglev)});
  syncChecked(maps, target);
  auto again = planSync(maps.read(), target);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->ops.empty());
}

TEST(SyncPlan, AddingAndRemovingBackendsNeverBlackholes) {
  MapModel maps;
  syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.1", true}, {"127.0.0.2", true}})}));
  auto plan = syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.2", true}, {"127.0.0.3", true}})}));
  EXPECT_EQ(plan.servicesChanged, 1u);
  EXPECT_EQ(plan.backendsAdded, 1u);
  EXPECT_EQ(plan.backendsRemoved, 1u);
  EXPECT_EQ(maps.backends.size(), 2u);
  // The new backend was written before any slot used it, the old one deleted last.
  EXPECT_EQ(plan.ops.front().kind, MapOp::Kind::kPutBackend);
  EXPECT_EQ(plan.ops.back().kind, MapOp::Kind::kDeleteBackend);
}

TEST(SyncPlan, NotReadyEndpointsTakeNoSlotAndNoneReadyEmptiesTheTable) {
  MapModel maps;
  syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.1", true}, {"127.0.0.2", false}})}));
  EXPECT_EQ(maps.resolve(makeServiceKey(*IpAddress::parse("127.96.0.1"), 80, state::Protocol::kTcp))->size(), 1u);
  syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.1", false}})}));
  auto key = makeServiceKey(*IpAddress::parse("127.96.0.1"), 80, state::Protocol::kTcp);
  ASSERT_TRUE(maps.services.count(key));  // still known: connect() gets ECONNREFUSED, not a pass-through
  EXPECT_EQ(maps.services[key].slot_count, 0);
  EXPECT_TRUE(maps.backends.empty());
}

TEST(SyncPlan, RemovedServiceIdIsNotReusedInTheSamePlan) {
  MapModel maps;
  syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.1", true}})}));
  const auto oldId = maps.services.begin()->second.id;
  auto plan = syncChecked(maps, desired({service("b", "127.96.0.2", {{"127.0.0.9", true}})}));
  EXPECT_EQ(plan.servicesAdded, 1u);
  EXPECT_EQ(plan.servicesRemoved, 1u);
  EXPECT_NE(maps.services.begin()->second.id, oldId);
}

TEST(SyncPlan, StraySlotsFromAnInterruptedSyncAreRemovedButLiveOnesKept) {
  MapModel maps;
  auto target = desired({service("a", "127.96.0.1", {{"127.0.0.1", true}, {"127.0.0.2", true}})});
  syncChecked(maps, target);
  const auto svc = maps.services.begin()->second;
  // An agent killed mid-sync left the idle generation half written.
  maps.slots[{svc.id, 0 | (svc.generation ? 0u : NM_SLOT_GEN_BIT)}] = 12345;
  maps.slots[{svc.id, 7 | (svc.generation ? 0u : NM_SLOT_GEN_BIT)}] = 12345;
  syncChecked(maps, target);
  EXPECT_EQ(maps.slots.size(), 2u);
  // And a change that writes into that generation keeps its new slots.
  maps.slots[{svc.id, 0 | (svc.generation ? 0u : NM_SLOT_GEN_BIT)}] = 12345;
  syncChecked(maps, desired({service("a", "127.96.0.1", {{"127.0.0.3", true}})}));
  EXPECT_EQ(maps.slots.size(), 1u);
}

TEST(SyncPlan, ManyServicesChurn) {
  MapModel maps;
  std::vector<state::Service> first, second;
  for (int i = 0; i < 50; ++i) {
    std::string vip = "127.96.1." + std::to_string(i);
    first.push_back(service("s" + std::to_string(i), vip, {{"127.0.1." + std::to_string(i % 7), true}, {"127.0.2.1", true}}));
    if (i % 3) second.push_back(service("s" + std::to_string(i), vip, {{"127.0.3." + std::to_string(i % 5), true}},
                                        i % 2 ? state::LbAlgorithm::kMaglev : state::LbAlgorithm::kRandom));
  }
  syncChecked(maps, desired(first));
  syncChecked(maps, desired(second));
  syncChecked(maps, desired(first));
}

TEST(DesiredState, FamiliesAreKeptApartAndDuplicatesRefused) {
  auto s = service("a", "127.96.0.1", {{"127.0.0.1", true}, {"::1", true}});
  auto d = desired({s});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.begin()->second.backendCount, 1u);  // the IPv6 endpoint does not serve an IPv4 VIP

  state::Snapshot snap;
  snap.services = {service("a", "127.96.0.1", {}), service("b", "127.96.0.1", {})};
  auto dup = desiredFromSnapshot(snap);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("already used"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::datapath
