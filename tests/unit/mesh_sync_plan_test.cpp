// The mesh planner (nm_mesh_config, nm_workloads, nm_workload_stats,
// nm_node_addrs) against a model of those maps: after every single map write
// a registered workload has its counters, a workload meshed before and after
// stays findable (and STRICT stays enforced), and no address that both the
// old and the new state trust is ever missing, so STRICT never refuses the
// node proxy while the set changes.
#include "datapath/mesh_state.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace nodemesh::datapath {
namespace {

using state::InboundMode;
using state::IpAddress;
using Kind = MeshOp::Kind;

constexpr std::uint64_t kCookie = 0x1234'5678'9abc'def0ull;

// ---- helpers ---------------------------------------------------------------

state::Workload workload(const std::string& cgroup, bool meshed, InboundMode inbound = InboundMode::kPermissive) {
  state::Workload w;
  w.cgroup = cgroup;
  w.ns = "t";
  w.meshed = meshed;
  w.inbound = inbound;
  return w;
}

state::Snapshot snapshot(std::vector<state::Workload> workloads, std::optional<std::string> nodeAddress = std::nullopt,
                         std::uint16_t outboundPort = 15001) {
  state::Snapshot s;
  s.nodeName = "n1";
  s.servedCgroup = "/";
  if (nodeAddress) s.nodeAddress = *IpAddress::parse(*nodeAddress);
  s.mesh.outboundPort = outboundPort;
  s.workloads = std::move(workloads);
  return s;
}

// A fake cgroup2 tree: path -> id; anything else does not exist.
struct FakeCgroups {
  std::map<std::string, std::uint64_t> ids;
  CgroupResolver resolver() const {
    return [this](const std::string& path) -> std::optional<std::uint64_t> {
      auto it = ids.find(path);
      if (it == ids.end()) return std::nullopt;
      return it->second;
    };
  }
  std::string pathOf(std::uint64_t id) const {
    for (const auto& [p, i] : ids)
      if (i == id) return p;
    return "<unknown>";
  }
};

// The fixed tree every test uses (ids are inode-like, unordered w.r.t. paths).
FakeCgroups tree() {
  FakeCgroups t;
  t.ids = {{"/a", 901},
           {"/b", 17},
           {"/kubepods/pod1", 500},
           {"/kubepods/pod2", 42},
           {"/kubepods/burstable/pod3", 7000},
           {"/kubepods/burstable/pod4/ctr", 3},
           {"/kubepods/besteffort/pod5", 88}};
  return t;
}

DesiredMesh desired(const state::Snapshot& s, const FakeCgroups& cg = tree()) {
  return desiredMeshFromSnapshot(s, kCookie, cg.resolver());
}

nm_node_addr_key key(const std::string& addr, unsigned prefix) { return nodeAddrKey(*IpAddress::parse(addr), prefix); }

std::string str(const nm_node_addr_key& k) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, k.addr, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(k.prefixlen);
}

const char* str(Kind k) {
  switch (k) {
    case Kind::kPutNodeAddr: return "PutNodeAddr";
    case Kind::kPutWorkloadStats: return "PutWorkloadStats";
    case Kind::kPutConfig: return "PutConfig";
    case Kind::kPutWorkload: return "PutWorkload";
    case Kind::kDeleteWorkload: return "DeleteWorkload";
    case Kind::kDeleteWorkloadStats: return "DeleteWorkloadStats";
    case Kind::kDeleteNodeAddr: return "DeleteNodeAddr";
  }
  return "?";
}

std::string str(const std::vector<MeshOp>& ops) {
  std::string s;
  for (const auto& op : ops) {
    s += str(op.kind);
    if (op.kind == Kind::kPutNodeAddr || op.kind == Kind::kDeleteNodeAddr) s += "(" + str(op.nodeAddr) + ")";
    if (op.kind == Kind::kPutWorkload || op.kind == Kind::kDeleteWorkload || op.kind == Kind::kPutWorkloadStats ||
        op.kind == Kind::kDeleteWorkloadStats)
      s += "(" + std::to_string(op.cgroupId) + ")";
    s += " ";
  }
  return s;
}

// The rank of each op kind in the documented order.
int rank(Kind k) {
  switch (k) {
    case Kind::kPutNodeAddr: return 0;
    case Kind::kPutWorkloadStats: return 1;
    case Kind::kPutConfig: return 2;
    case Kind::kPutWorkload: return 3;
    case Kind::kDeleteWorkload: return 4;
    case Kind::kDeleteWorkloadStats: return 5;
    case Kind::kDeleteNodeAddr: return 6;
  }
  return 99;
}

void expectDocumentedOrder(const MeshPlan& plan) {
  for (std::size_t i = 1; i < plan.ops.size(); ++i)
    EXPECT_LE(rank(plan.ops[i - 1].kind), rank(plan.ops[i].kind))
        << "op " << i << " (" << str(plan.ops[i].kind) << ") after " << str(plan.ops[i - 1].kind) << "\n"
        << str(plan.ops);
}

std::size_t count(const MeshPlan& plan, Kind k) {
  return static_cast<std::size_t>(
      std::count_if(plan.ops.begin(), plan.ops.end(), [k](const MeshOp& op) { return op.kind == k; }));
}

// ---- the model of the four maps ---------------------------------------------

struct MeshMaps {
  nm_mesh_config config{};  // a one-entry array: all zero until written
  std::map<std::uint64_t, nm_workload> workloads;
  std::set<std::uint64_t> stats;
  NodeAddrSet nodeAddrs;

  void apply(const MeshOp& op) {
    switch (op.kind) {
      case Kind::kPutNodeAddr: nodeAddrs.insert(op.nodeAddr); break;
      case Kind::kPutWorkloadStats: stats.insert(op.cgroupId); break;
      case Kind::kPutConfig: config = op.config; break;
      case Kind::kPutWorkload: workloads[op.cgroupId] = op.workload; break;
      case Kind::kDeleteWorkload: workloads.erase(op.cgroupId); break;
      case Kind::kDeleteWorkloadStats: stats.erase(op.cgroupId); break;
      case Kind::kDeleteNodeAddr: nodeAddrs.erase(op.nodeAddr); break;
    }
  }

  // What SocketLb::syncMesh reads back.
  InstalledMesh read() const {
    InstalledMesh m;
    m.config = config;
    m.workloads = workloads;
    m.statsEntries = stats;
    m.nodeAddrs = nodeAddrs;
    return m;
  }

  // The capture/ingress hooks find a workload's cgroup from a process in a
  // child cgroup only through the ancestor search over wl_min..wl_max.
  bool findable(std::uint64_t id, const std::string& path) const {
    if (!workloads.count(id)) return false;
    const int level = cgroupLevel(path);
    return level >= config.wl_min_level && level <= config.wl_max_level;
  }

  bool trusted(const nm_node_addr_key& k) const { return nodeAddrs.count(k) > 0; }
};

InstalledMesh installedFrom(const DesiredMesh& d) {
  InstalledMesh m;
  m.config = d.config;
  for (const auto& [id, w] : d.workloads) {
    m.workloads.emplace(id, w.value);
    m.statsEntries.insert(id);
  }
  m.nodeAddrs = d.nodeAddrs;
  return m;
}

// Applies the plan from the maps' current content to target op by op, checking
// the invariants after every single op, and returns the plan.
MeshPlan syncChecked(MeshMaps& maps, const DesiredMesh& target, const FakeCgroups& cg = tree()) {
  const MeshMaps before = maps;
  const MeshPlan plan = planMeshSync(maps.read(), target);
  expectDocumentedOrder(plan);

  NodeAddrSet bothTrust;
  for (const auto& a : before.nodeAddrs)
    if (target.nodeAddrs.count(a)) bothTrust.insert(a);

  for (std::size_t step = 0; step < plan.ops.size(); ++step) {
    maps.apply(plan.ops[step]);
    const std::string at = "after op " + std::to_string(step) + " " + str(plan.ops[step].kind) + " of\n" + str(plan.ops);

    // Counters before the workloads that count into them.
    for (const auto& [id, w] : maps.workloads)
      EXPECT_TRUE(maps.stats.count(id)) << at << "\nworkload " << id << " has no nm_workload_stats entry";

    // STRICT never refuses the node mid-change.
    for (const auto& a : bothTrust) EXPECT_TRUE(maps.trusted(a)) << at << "\n" << str(a) << " is no longer trusted";

    // The node address pods are steered to (where the proxy listens and dials
    // from) is trusted whenever the config names it.
    if (maps.config.flags & NM_MESH_F_NODE4) {
      EXPECT_TRUE(maps.trusted(nodeAddrKey(IpAddress::fromV4(maps.config.node_addr4), 128)))
          << at << "\nthe config's IPv4 node address is not in nm_node_addrs";
    }
    if (maps.config.flags & NM_MESH_F_NODE6) {
      nm_node_addr_key k{};
      k.prefixlen = 128;
      std::memcpy(k.addr, maps.config.node_addr6, 16);
      EXPECT_TRUE(maps.trusted(k)) << at << "\nthe config's IPv6 node address is not in nm_node_addrs";
    }

    // A workload the maps already hold in its new form is findable by the
    // ancestor search and, when the target has a proxy port, has somewhere to
    // go (config before workload writes: no ECONNREFUSED for a new client).
    for (const auto& [id, w] : maps.workloads) {
      auto dw = target.workloads.find(id);
      if (dw == target.workloads.end() || !bytesEqual(w, dw->second.value)) continue;
      EXPECT_TRUE(maps.findable(id, dw->second.cgroup))
          << at << "\nworkload " << dw->second.cgroup << " (level " << cgroupLevel(dw->second.cgroup)
          << ") registered but outside levels " << int(maps.config.wl_min_level) << ".." << int(maps.config.wl_max_level);
      if (target.config.outbound_port != 0) {
        EXPECT_NE(maps.config.outbound_port, 0) << at << "\nworkload " << dw->second.cgroup << " meshed with no proxy port";
      }
    }

    // A workload meshed before and after stays meshed and findable, and one
    // STRICT before and after stays enforced.
    for (const auto& [id, dw] : target.workloads) {
      auto old = before.workloads.find(id);
      if (old == before.workloads.end()) continue;
      const std::string path = cg.pathOf(id);
      EXPECT_TRUE(maps.findable(id, path)) << at << "\nworkload " << path << " (level " << cgroupLevel(path)
                                           << ") not findable: levels " << int(maps.config.wl_min_level) << ".."
                                           << int(maps.config.wl_max_level);
      auto now = maps.workloads.find(id);
      if (now == maps.workloads.end()) continue;
      EXPECT_TRUE(now->second.flags & NM_WL_F_MESHED) << at << "\nworkload " << path << " lost its MESHED flag";
      if ((old->second.flags & NM_WL_F_STRICT) && (dw.value.flags & NM_WL_F_STRICT)) {
        EXPECT_TRUE(now->second.flags & NM_WL_F_STRICT) << at << "\nworkload " << path << " lost STRICT";
        EXPECT_TRUE(maps.config.flags & NM_MESH_F_STRICT) << at << "\nSTRICT switched off while " << path << " is STRICT";
      }
    }
  }

  // Converged: the maps hold exactly the target, and a second plan is empty.
  EXPECT_TRUE(bytesEqual(maps.config, target.config));
  EXPECT_EQ(maps.workloads.size(), target.workloads.size());
  for (const auto& [id, dw] : target.workloads) {
    EXPECT_TRUE(maps.workloads.count(id)) << cg.pathOf(id);
    if (!maps.workloads.count(id)) continue;
    EXPECT_TRUE(bytesEqual(maps.workloads.at(id), dw.value)) << cg.pathOf(id);
    EXPECT_TRUE(maps.findable(id, dw.cgroup)) << dw.cgroup;
  }
  std::set<std::uint64_t> wantStats;
  for (const auto& [id, dw] : target.workloads) wantStats.insert(id);
  EXPECT_EQ(maps.stats, wantStats);
  EXPECT_TRUE(std::equal(maps.nodeAddrs.begin(), maps.nodeAddrs.end(), target.nodeAddrs.begin(),
                         target.nodeAddrs.end(), [](const auto& x, const auto& y) { return bytesEqual(x, y); }));
  auto again = planMeshSync(maps.read(), target);
  EXPECT_TRUE(again.empty()) << str(again.ops);
  return plan;
}

// ---- cgroupLevel -----------------------------------------------------------

TEST(MeshSyncCgroupLevel, CountsPathComponentsBelowTheRoot) {
  const struct {
    const char* path;
    int level;
  } cases[] = {
      {"/", 0},
      {"/a", 1},
      {"/kubepods/pod1", 2},
      {"/kubepods/burstable/pod3", 3},
      {"/kubepods/burstable/pod4/ctr", 4},
      {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope", 4},
      {"/a/b/c/d/e/f/g/h", 8},
      {"/a/", 1},        // a trailing slash is not a level
      {"//a//b", 2},     // neither are empty components
      {"", 0},
  };
  for (const auto& c : cases) EXPECT_EQ(cgroupLevel(c.path), c.level) << "\"" << c.path << "\"";
}

// ---- desiredMeshFromSnapshot ------------------------------------------------

TEST(MeshSyncDesired, OnlyMeshedWorkloadsAreRegistered) {
  auto d = desired(snapshot({workload("/a", true), workload("/b", false), workload("/kubepods/pod1", true),
                             workload("/kubepods/pod2", false, InboundMode::kStrict)}));
  ASSERT_EQ(d.workloads.size(), 2u);
  ASSERT_TRUE(d.workloads.count(901));
  ASSERT_TRUE(d.workloads.count(500));
  EXPECT_EQ(d.workloads.at(901).cgroup, "/a");
  EXPECT_EQ(d.workloads.at(500).cgroup, "/kubepods/pod1");
  for (const auto& [id, w] : d.workloads) {
    EXPECT_EQ(w.value.flags, NM_WL_F_MESHED) << w.cgroup;
    EXPECT_EQ(w.value.pad, 0u);
  }
  EXPECT_TRUE(d.missingCgroups.empty());
  // The non-meshed STRICT workload turns nothing on.
  EXPECT_FALSE(d.config.flags & NM_MESH_F_STRICT);
}

TEST(MeshSyncDesired, StrictOnlyOnMeshedStrictWorkloads) {
  const struct {
    bool meshed;
    InboundMode inbound;
    bool registered;
    std::uint32_t flags;
    bool configStrict;
  } cases[] = {
      {false, InboundMode::kPermissive, false, 0, false},
      {false, InboundMode::kStrict, false, 0, false},
      {true, InboundMode::kPermissive, true, NM_WL_F_MESHED, false},
      {true, InboundMode::kStrict, true, NM_WL_F_MESHED | NM_WL_F_STRICT, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string("meshed=") + (c.meshed ? "yes" : "no") + " inbound=" + state::toString(c.inbound));
    auto d = desired(snapshot({workload("/kubepods/pod1", c.meshed, c.inbound)}));
    ASSERT_EQ(d.workloads.count(500), c.registered ? 1u : 0u);
    if (c.registered) {
      EXPECT_EQ(d.workloads.at(500).value.flags, c.flags);
    }
    EXPECT_EQ(bool(d.config.flags & NM_MESH_F_STRICT), c.configStrict);
  }
  // Mixed: STRICT only where asked, and the config says some workload is STRICT.
  auto d = desired(snapshot({workload("/a", true, InboundMode::kStrict), workload("/b", true),
                             workload("/kubepods/pod1", false, InboundMode::kStrict)}));
  ASSERT_EQ(d.workloads.size(), 2u);
  EXPECT_EQ(d.workloads.at(901).value.flags, NM_WL_F_MESHED | NM_WL_F_STRICT);
  EXPECT_EQ(d.workloads.at(17).value.flags, NM_WL_F_MESHED);
  EXPECT_TRUE(d.config.flags & NM_MESH_F_STRICT);
}

TEST(MeshSyncDesired, MissingCgroupIsReportedAndNotRegistered) {
  // The missing STRICT workload sits deepest: it must neither register, nor
  // widen the levels, nor switch STRICT on.
  auto d = desired(snapshot({workload("/a", true), workload("/kubepods/burstable/gone/ctr/x", true, InboundMode::kStrict),
                             workload("/not-yet", false)}));
  ASSERT_EQ(d.workloads.size(), 1u);
  EXPECT_TRUE(d.workloads.count(901));
  EXPECT_EQ(d.missingCgroups, std::vector<std::string>{"/kubepods/burstable/gone/ctr/x"});  // not the unmeshed one
  EXPECT_EQ(d.config.wl_min_level, 1);
  EXPECT_EQ(d.config.wl_max_level, 1);
  EXPECT_FALSE(d.config.flags & NM_MESH_F_STRICT);

  // The plan names it; the next sync, once the cgroup exists, registers it.
  MeshMaps maps;
  auto plan = syncChecked(maps, d);
  EXPECT_EQ(plan.missingCgroups, d.missingCgroups);
  EXPECT_EQ(plan.workloadsAdded, 1u);
  auto cg = tree();
  cg.ids["/kubepods/burstable/gone/ctr/x"] = 123456;
  auto later = desired(snapshot({workload("/a", true), workload("/kubepods/burstable/gone/ctr/x", true, InboundMode::kStrict),
                                 workload("/not-yet", false)}),
                       cg);
  EXPECT_TRUE(later.missingCgroups.empty());
  auto plan2 = syncChecked(maps, later, cg);
  EXPECT_EQ(plan2.workloadsAdded, 1u);
  EXPECT_TRUE(plan2.configChanged);  // levels 1..5, STRICT on
  EXPECT_EQ(maps.config.wl_max_level, 5);
  EXPECT_TRUE(maps.config.flags & NM_MESH_F_STRICT);
}

TEST(MeshSyncDesired, NodeAddressesAreLoopbackAndTheNodeAddress) {
  const struct {
    std::optional<std::string> node;
    std::vector<nm_node_addr_key> want;
  } cases[] = {
      {std::nullopt, {key("127.0.0.0", 8), key("::1", 128)}},
      {"10.1.2.3", {key("127.0.0.0", 8), key("::1", 128), key("10.1.2.3", 32)}},
      {"fd00::17", {key("127.0.0.0", 8), key("::1", 128), key("fd00::17", 128)}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("node address " + c.node.value_or("(none)"));
    auto d = desired(snapshot({workload("/a", true)}, c.node));
    std::vector<std::string> got, want;
    for (const auto& k : d.nodeAddrs) got.push_back(str(k));
    for (const auto& k : c.want) want.push_back(str(k));
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
  // The encodings: IPv4 is v4-mapped with the prefix shifted by 96.
  auto lo = key("127.0.0.0", 8);
  EXPECT_EQ(lo.prefixlen, 104u);
  EXPECT_EQ(lo.addr[0], 0u);
  EXPECT_EQ(lo.addr[1], 0u);
  EXPECT_EQ(lo.addr[2], htonl(0x0000ffff));
  EXPECT_EQ(lo.addr[3], htonl(0x7f000000));
  EXPECT_EQ(str(key("10.1.2.3", 128)), "::ffff:10.1.2.3/128");  // a /128 of an IPv4 address is its /32
  EXPECT_EQ(str(key("::1", 128)), "::1/128");
  EXPECT_EQ(str(key("fd00::17", 200)), "fd00::17/128");
}

TEST(MeshSyncDesired, ConfigCarriesPortNodeAddressCookieAndLevels) {
  const std::vector<state::Workload> wls = {workload("/kubepods/pod1", true), workload("/kubepods/burstable/pod4/ctr", true),
                                            workload("/a", false)};  // unmeshed at level 1: no effect on the levels
  {
    SCOPED_TRACE("IPv4 node address");
    auto d = desired(snapshot(wls, "10.1.2.3", 15006));
    EXPECT_EQ(d.config.host_netns_cookie, kCookie);
    EXPECT_EQ(ntohs(d.config.outbound_port), 15006);
    EXPECT_EQ(d.config.flags, NM_MESH_F_NODE4);
    EXPECT_EQ(d.config.node_addr4, inet_addr("10.1.2.3"));
    EXPECT_EQ(d.config.node_addr6[0] | d.config.node_addr6[1] | d.config.node_addr6[2] | d.config.node_addr6[3], 0u);
    EXPECT_EQ(d.config.wl_min_level, 2);
    EXPECT_EQ(d.config.wl_max_level, 4);
    EXPECT_EQ(d.config.pad, 0);
    EXPECT_EQ(d.config.pad2, 0);
    EXPECT_EQ(d.config.pad3, 0u);
  }
  {
    SCOPED_TRACE("IPv6 node address");
    auto d = desired(snapshot(wls, "fd00::17"));
    EXPECT_EQ(d.config.host_netns_cookie, kCookie);
    EXPECT_EQ(ntohs(d.config.outbound_port), 15001);
    EXPECT_EQ(d.config.flags, NM_MESH_F_NODE6);
    EXPECT_EQ(d.config.node_addr4, 0u);
    in6_addr want{};
    ASSERT_EQ(inet_pton(AF_INET6, "fd00::17", &want), 1);
    EXPECT_EQ(std::memcmp(d.config.node_addr6, &want, 16), 0);
    EXPECT_EQ(d.config.wl_min_level, 2);
    EXPECT_EQ(d.config.wl_max_level, 4);
  }
  {
    SCOPED_TRACE("no node address, STRICT at level 1");
    auto d = desired(snapshot({workload("/a", true, InboundMode::kStrict), workload("/kubepods/pod1", true)}));
    EXPECT_EQ(d.config.flags, NM_MESH_F_STRICT);
    EXPECT_EQ(d.config.node_addr4, 0u);
    EXPECT_EQ(d.config.wl_min_level, 1);
    EXPECT_EQ(d.config.wl_max_level, 2);
  }
}

TEST(MeshSyncDesired, NoMeshIsANeutralConfig) {
  for (const auto& wls : {std::vector<state::Workload>{},
                          std::vector<state::Workload>{workload("/a", false), workload("/b", false, InboundMode::kStrict)}}) {
    SCOPED_TRACE(std::to_string(wls.size()) + " unmeshed workloads");
    auto d = desired(snapshot(wls));
    EXPECT_TRUE(d.workloads.empty());
    EXPECT_TRUE(d.missingCgroups.empty());
    // What the code does: an empty level range (min > max: the ancestor
    // search does nothing), STRICT off, no node address; the proxy port and
    // the cookie are still written (they harm nothing without workloads).
    EXPECT_EQ(d.config.wl_min_level, 1);
    EXPECT_EQ(d.config.wl_max_level, 0);
    EXPECT_EQ(d.config.flags, 0);
    EXPECT_EQ(d.config.node_addr4, 0u);
    EXPECT_EQ(ntohs(d.config.outbound_port), 15001);
    EXPECT_EQ(d.config.host_netns_cookie, kCookie);
    // Loopback is trusted regardless.
    EXPECT_EQ(d.nodeAddrs.size(), 2u);
  }
}

TEST(MeshSyncDesired, ACgroupListedTwiceGetsTheUnionOfItsFlags) {
  for (bool strictFirst : {false, true}) {
    SCOPED_TRACE(strictFirst ? "STRICT first" : "PERMISSIVE first");
    std::vector<state::Workload> wls = {workload("/a", true, InboundMode::kPermissive),
                                        workload("/a", true, InboundMode::kStrict)};
    if (strictFirst) std::swap(wls[0], wls[1]);
    auto d = desired(snapshot(wls));
    ASSERT_EQ(d.workloads.size(), 1u);
    EXPECT_EQ(d.workloads.at(901).value.flags, NM_WL_F_MESHED | NM_WL_F_STRICT);
    EXPECT_TRUE(d.config.flags & NM_MESH_F_STRICT);
  }
}

// ---- planMeshSync ---------------------------------------------------------------

TEST(MeshSyncPlan, PlanOfAStateAgainstItselfIsEmpty) {
  const std::vector<state::Snapshot> states = {
      snapshot({}),
      snapshot({workload("/a", true)}),
      snapshot({workload("/a", true, InboundMode::kStrict), workload("/kubepods/pod1", true),
                workload("/kubepods/burstable/pod4/ctr", true), workload("/b", false)},
               "10.1.2.3"),
      snapshot({workload("/kubepods/pod2", true), workload("/missing", true)}, "fd00::1"),
  };
  for (std::size_t i = 0; i < states.size(); ++i) {
    SCOPED_TRACE("state " + std::to_string(i));
    auto d = desired(states[i]);
    auto plan = planMeshSync(installedFrom(d), d);
    EXPECT_TRUE(plan.empty()) << str(plan.ops);
    EXPECT_EQ(plan.workloadsAdded + plan.workloadsChanged + plan.workloadsRemoved, 0u);
    EXPECT_EQ(plan.nodeAddrsAdded + plan.nodeAddrsRemoved, 0u);
    EXPECT_FALSE(plan.configChanged);
    EXPECT_EQ(plan.missingCgroups, d.missingCgroups);  // still named, though nothing is written
    EXPECT_NE(summary(plan).find("workloads +0 ~0 -0"), std::string::npos) << summary(plan);
    // And through the model: install, then sync again.
    MeshMaps maps;
    syncChecked(maps, d);
    EXPECT_TRUE(planMeshSync(maps.read(), d).empty());
  }
}

TEST(MeshSyncPlan, FromEmptyAddressesThenStatsThenConfigThenWorkloads) {
  auto d = desired(snapshot({workload("/a", true), workload("/kubepods/pod1", true, InboundMode::kStrict),
                             workload("/kubepods/burstable/pod4/ctr", true)},
                            "10.1.2.3"));
  auto plan = planMeshSync(InstalledMesh{}, d);
  // Walk the ops: each phase is one contiguous run, in this order.
  const std::vector<std::pair<Kind, std::size_t>> want = {
      {Kind::kPutNodeAddr, 3}, {Kind::kPutWorkloadStats, 3}, {Kind::kPutConfig, 1}, {Kind::kPutWorkload, 3}};
  std::size_t i = 0;
  for (const auto& [kind, n] : want) {
    for (std::size_t j = 0; j < n; ++j, ++i) {
      ASSERT_LT(i, plan.ops.size()) << str(plan.ops);
      EXPECT_EQ(plan.ops[i].kind, kind) << "op " << i << ": " << str(plan.ops);
    }
  }
  EXPECT_EQ(i, plan.ops.size()) << str(plan.ops);
  // Every workload put is preceded by its own stats put, and carries the desired value.
  std::set<std::uint64_t> statsSeen;
  for (const auto& op : plan.ops) {
    if (op.kind == Kind::kPutWorkloadStats) statsSeen.insert(op.cgroupId);
    if (op.kind == Kind::kPutWorkload) {
      EXPECT_TRUE(statsSeen.count(op.cgroupId)) << op.cgroupId;
      ASSERT_TRUE(d.workloads.count(op.cgroupId));
      EXPECT_TRUE(bytesEqual(op.workload, d.workloads.at(op.cgroupId).value));
    }
    if (op.kind == Kind::kPutConfig) {
      EXPECT_TRUE(bytesEqual(op.config, d.config));
    }
  }
  EXPECT_EQ(plan.workloadsAdded, 3u);
  EXPECT_EQ(plan.workloadsChanged, 0u);
  EXPECT_EQ(plan.nodeAddrsAdded, 3u);
  EXPECT_TRUE(plan.configChanged);
  MeshMaps maps;
  syncChecked(maps, d);
}

TEST(MeshSyncPlan, RemovalsComeAfterPutsInReverse) {
  MeshMaps maps;
  syncChecked(maps, desired(snapshot({workload("/a", true), workload("/b", true), workload("/kubepods/pod1", true)},
                                     "10.1.2.3")));
  // /b leaves, pod2 arrives, the node moves to another address.
  auto plan = syncChecked(
      maps, desired(snapshot({workload("/a", true), workload("/kubepods/pod1", true), workload("/kubepods/pod2", true)},
                             "10.1.2.4")));
  EXPECT_EQ(plan.workloadsAdded, 1u);
  EXPECT_EQ(plan.workloadsRemoved, 1u);
  EXPECT_EQ(plan.nodeAddrsAdded, 1u);
  EXPECT_EQ(plan.nodeAddrsRemoved, 1u);
  // The last put comes before the first removal.
  std::size_t lastPut = 0, firstDelete = plan.ops.size();
  for (std::size_t i = 0; i < plan.ops.size(); ++i) {
    const Kind k = plan.ops[i].kind;
    const bool del = k == Kind::kDeleteWorkload || k == Kind::kDeleteWorkloadStats || k == Kind::kDeleteNodeAddr;
    if (del)
      firstDelete = std::min(firstDelete, i);
    else
      lastPut = i;
  }
  EXPECT_LT(lastPut, firstDelete) << str(plan.ops);
  // In reverse: the workload, then its counters, then the address.
  std::vector<Kind> tail;
  for (std::size_t i = firstDelete; i < plan.ops.size(); ++i) tail.push_back(plan.ops[i].kind);
  EXPECT_EQ(tail, (std::vector<Kind>{Kind::kDeleteWorkload, Kind::kDeleteWorkloadStats, Kind::kDeleteNodeAddr}))
      << str(plan.ops);
  EXPECT_EQ(plan.ops[firstDelete].cgroupId, 17u);
  EXPECT_EQ(plan.ops[firstDelete + 1].cgroupId, 17u);
  EXPECT_EQ(str(plan.ops.back().nodeAddr), "::ffff:10.1.2.3/128");
}

TEST(MeshSyncPlan, PermissiveToStrictIsOnePut) {
  MeshMaps maps;
  // Another workload is already STRICT, so the config (STRICT flag) does not change.
  syncChecked(maps, desired(snapshot({workload("/a", true), workload("/b", true, InboundMode::kStrict)}, "10.1.2.3")));
  const auto statsBefore = maps.stats;
  auto plan = syncChecked(
      maps, desired(snapshot({workload("/a", true, InboundMode::kStrict), workload("/b", true, InboundMode::kStrict)},
                             "10.1.2.3")));
  ASSERT_EQ(plan.ops.size(), 1u) << str(plan.ops);
  EXPECT_EQ(plan.ops[0].kind, Kind::kPutWorkload);
  EXPECT_EQ(plan.ops[0].cgroupId, 901u);
  EXPECT_EQ(plan.ops[0].workload.flags, NM_WL_F_MESHED | NM_WL_F_STRICT);
  EXPECT_EQ(plan.workloadsChanged, 1u);
  EXPECT_EQ(plan.workloadsAdded + plan.workloadsRemoved, 0u);
  EXPECT_FALSE(plan.configChanged);
  EXPECT_EQ(maps.stats, statsBefore);  // the counters are kept, not reset

  // The first STRICT workload also switches the ingress hook on: a config write before the put.
  MeshMaps fresh;
  syncChecked(fresh, desired(snapshot({workload("/a", true)})));
  auto first = syncChecked(fresh, desired(snapshot({workload("/a", true, InboundMode::kStrict)})));
  ASSERT_EQ(first.ops.size(), 2u) << str(first.ops);
  EXPECT_EQ(first.ops[0].kind, Kind::kPutConfig);
  EXPECT_TRUE(first.ops[0].config.flags & NM_MESH_F_STRICT);
  EXPECT_EQ(first.ops[1].kind, Kind::kPutWorkload);
  EXPECT_EQ(first.workloadsChanged, 1u);
}

TEST(MeshSyncPlan, RemovedNodeAddressIsDeletedLast) {
  MeshMaps maps;
  syncChecked(maps, desired(snapshot({workload("/a", true, InboundMode::kStrict), workload("/b", true)}, "10.1.2.3")));
  // The node address goes away and /b with it.
  auto plan = syncChecked(maps, desired(snapshot({workload("/a", true, InboundMode::kStrict)})));
  ASSERT_FALSE(plan.ops.empty());
  EXPECT_EQ(plan.ops.back().kind, Kind::kDeleteNodeAddr);
  EXPECT_EQ(str(plan.ops.back().nodeAddr), "::ffff:10.1.2.3/128");
  EXPECT_EQ(count(plan, Kind::kDeleteNodeAddr), 1u);
  EXPECT_EQ(plan.nodeAddrsRemoved, 1u);
  EXPECT_EQ(plan.nodeAddrsAdded, 0u);
  EXPECT_TRUE(plan.configChanged);
  // Loopback stays trusted.
  EXPECT_TRUE(maps.trusted(key("127.0.0.0", 8)));
  EXPECT_TRUE(maps.trusted(key("::1", 128)));
  EXPECT_EQ(maps.nodeAddrs.size(), 2u);
}

TEST(MeshSyncPlan, InterruptedSyncConverges) {
  MeshMaps maps;
  const auto d = desired(snapshot({workload("/a", true), workload("/kubepods/pod1", true, InboundMode::kStrict)}, "10.1.2.3"));
  auto plan = planMeshSync(maps.read(), d);
  // Killed halfway through every possible prefix: the next sync finishes the job safely.
  for (std::size_t cut = 0; cut <= plan.ops.size(); ++cut) {
    SCOPED_TRACE("killed after " + std::to_string(cut) + " ops");
    MeshMaps partial;
    for (std::size_t i = 0; i < cut; ++i) partial.apply(plan.ops[i]);
    syncChecked(partial, d);
  }
  // A workload whose counters vanished (stats written, workload written, stats lost) gets them back first.
  syncChecked(maps, d);
  maps.stats.erase(500);
  auto repair = syncChecked(maps, d);
  ASSERT_EQ(repair.ops.size(), 1u) << str(repair.ops);
  EXPECT_EQ(repair.ops[0].kind, Kind::kPutWorkloadStats);
  EXPECT_EQ(repair.ops[0].cgroupId, 500u);
  // Stray counters of a workload that is gone are removed.
  maps.stats.insert(4242);
  auto stray = syncChecked(maps, d);
  ASSERT_EQ(stray.ops.size(), 1u) << str(stray.ops);
  EXPECT_EQ(stray.ops[0].kind, Kind::kDeleteWorkloadStats);
  EXPECT_EQ(stray.ops[0].cgroupId, 4242u);
}

TEST(MeshSyncPlan, InvariantsHoldAfterEveryOpThroughASequenceOfStates) {
  // Each state differs from the previous one in several ways at once:
  // workloads in and out, flags flipping, levels widening and narrowing,
  // the node address appearing, moving, changing family and disappearing.
  const std::vector<state::Snapshot> states = {
      snapshot({workload("/a", true), workload("/kubepods/pod1", true)}),
      snapshot({workload("/a", true, InboundMode::kStrict), workload("/kubepods/pod1", true),
                workload("/kubepods/burstable/pod4/ctr", true, InboundMode::kStrict)},
               "10.1.2.3"),
      snapshot({workload("/kubepods/pod1", true, InboundMode::kStrict), workload("/kubepods/burstable/pod4/ctr", true),
                workload("/kubepods/burstable/pod3", true), workload("/b", false, InboundMode::kStrict)},
               "10.1.2.4"),
      snapshot({workload("/kubepods/pod1", true, InboundMode::kStrict), workload("/kubepods/pod2", true),
                workload("/kubepods/besteffort/pod5", true, InboundMode::kStrict)},
               "fd00::17", 15006),
      snapshot({workload("/kubepods/pod1", false), workload("/kubepods/pod2", true, InboundMode::kStrict),
                workload("/a", true, InboundMode::kStrict)},
               "fd00::17", 15006),
      snapshot({workload("/a", true, InboundMode::kStrict), workload("/kubepods/pod2", true, InboundMode::kStrict)},
               "10.1.2.3"),
      snapshot({workload("/a", true)}),
      snapshot({}),
      snapshot({workload("/kubepods/burstable/pod4/ctr", true, InboundMode::kStrict),
                workload("/kubepods/burstable/pod3", true)},
               "10.9.9.9"),
  };
  // Forward, then every pair in both directions from a converged start.
  MeshMaps maps;
  for (std::size_t i = 0; i < states.size(); ++i) {
    SCOPED_TRACE("forward to state " + std::to_string(i));
    syncChecked(maps, desired(states[i]));
  }
  for (std::size_t from = 0; from < states.size(); ++from) {
    for (std::size_t to = 0; to < states.size(); ++to) {
      SCOPED_TRACE("state " + std::to_string(from) + " -> " + std::to_string(to));
      MeshMaps m;
      syncChecked(m, desired(states[from]));
      auto plan = syncChecked(m, desired(states[to]));
      if (from == to) {
        EXPECT_TRUE(plan.empty()) << str(plan.ops);
      }
    }
  }
}

// ---- summary ----------------------------------------------------------------------

TEST(MeshSyncSummary, MentionsTheCounts) {
  MeshMaps maps;
  auto first = syncChecked(maps, desired(snapshot({workload("/a", true), workload("/b", true), workload("/gone", true)},
                                                  "10.1.2.3")));
  const std::string s1 = summary(first);
  EXPECT_NE(s1.find("workloads +2 ~0 -0"), std::string::npos) << s1;
  EXPECT_NE(s1.find("node addresses +3 -0"), std::string::npos) << s1;
  EXPECT_NE(s1.find("config changed"), std::string::npos) << s1;
  EXPECT_NE(s1.find("; 1 "), std::string::npos) << s1;  // one missing cgroup
  EXPECT_NE(s1.find("missing"), std::string::npos) << s1;
  EXPECT_NE(s1.find("/gone"), std::string::npos) << s1;

  auto second = syncChecked(
      maps, desired(snapshot({workload("/a", true, InboundMode::kStrict), workload("/kubepods/pod1", true)}, "10.1.2.4")));
  const std::string s2 = summary(second);
  EXPECT_NE(s2.find("workloads +1 ~1 -1"), std::string::npos) << s2;
  EXPECT_NE(s2.find("node addresses +1 -1"), std::string::npos) << s2;
  EXPECT_NE(s2.find("config changed"), std::string::npos) << s2;
  EXPECT_EQ(s2.find("missing"), std::string::npos) << s2;

  const std::string s3 = summary(planMeshSync(maps.read(), desired(snapshot(
      {workload("/a", true, InboundMode::kStrict), workload("/kubepods/pod1", true)}, "10.1.2.4"))));
  EXPECT_EQ(s3, "workloads +0 ~0 -0, node addresses +0 -0");
}

}  // namespace
}  // namespace nodemesh::datapath
