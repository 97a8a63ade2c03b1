#include "datapath/mesh_state.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace nodemesh::datapath {

int cgroupLevel(const std::string& relativePath) {
  int level = 0;
  bool inName = false;
  for (char c : relativePath) {
    if (c == '/') {
      inName = false;
    } else if (!inName) {
      inName = true;
      ++level;
    }
  }
  return level;
}

nm_node_addr_key nodeAddrKey(const state::IpAddress& address, unsigned prefixLen) {
  nm_node_addr_key key{};
  if (address.isV4()) {
    key.addr[2] = htonl(0x0000ffff);
    std::memcpy(&key.addr[3], address.bytes().data(), 4);
    key.prefixlen = 96 + std::min(prefixLen, 32u);
  } else {
    std::memcpy(key.addr, address.bytes().data(), 16);
    key.prefixlen = std::min(prefixLen, 128u);
  }
  return key;
}

DesiredMesh desiredMeshFromSnapshot(const state::Snapshot& snapshot, std::uint64_t hostNetnsCookie,
                                    const CgroupResolver& resolve) {
  DesiredMesh out;
  auto& cfg = out.config;
  cfg.host_netns_cookie = hostNetnsCookie;
  cfg.outbound_port = htons(snapshot.mesh.outboundPort);
  if (snapshot.nodeAddress) {
    const auto& bytes = snapshot.nodeAddress->bytes();
    if (snapshot.nodeAddress->isV4()) {
      std::memcpy(&cfg.node_addr4, bytes.data(), 4);
      cfg.flags |= NM_MESH_F_NODE4;
    } else {
      std::memcpy(cfg.node_addr6, bytes.data(), 16);
      cfg.flags |= NM_MESH_F_NODE6;
    }
  }

  int minLevel = NM_MAX_CGROUP_LEVEL, maxLevel = -1;
  for (const auto& w : snapshot.workloads) {
    if (!w.meshed) continue;
    nm_workload value{};
    value.flags = NM_WL_F_MESHED;
    if (w.inbound == state::InboundMode::kStrict) value.flags |= NM_WL_F_STRICT;
    auto id = resolve(w.cgroup);
    if (!id) {
      out.missingCgroups.push_back(w.cgroup);
      continue;
    }
    auto [it, fresh] = out.workloads.emplace(*id, DesiredWorkload{value, w.cgroup});
    if (!fresh) it->second.value.flags |= value.flags;  // one cgroup listed twice: the union
    const int level = std::min(cgroupLevel(w.cgroup), NM_MAX_CGROUP_LEVEL - 1);
    minLevel = std::min(minLevel, level);
    maxLevel = std::max(maxLevel, level);
    if (it->second.value.flags & NM_WL_F_STRICT) cfg.flags |= NM_MESH_F_STRICT;
  }
  if (maxLevel >= 0) {
    cfg.wl_min_level = static_cast<std::uint8_t>(minLevel);
    cfg.wl_max_level = static_cast<std::uint8_t>(maxLevel);
  } else {
    cfg.wl_min_level = 1;  // an empty range: the ancestor search does nothing
    cfg.wl_max_level = 0;
  }

  out.nodeAddrs.insert(nodeAddrKey(*state::IpAddress::parse("127.0.0.0"), 8));
  out.nodeAddrs.insert(nodeAddrKey(*state::IpAddress::parse("::1"), 128));
  if (snapshot.nodeAddress) out.nodeAddrs.insert(nodeAddrKey(*snapshot.nodeAddress, 128));
  return out;
}

MeshPlan planMeshSync(const InstalledMesh& installed, const DesiredMesh& desired) {
  MeshPlan plan;
  plan.missingCgroups = desired.missingCgroups;
  auto& ops = plan.ops;
  using K = MeshOp::Kind;

  for (const auto& a : desired.nodeAddrs) {
    if (installed.nodeAddrs.count(a)) continue;
    ops.push_back({.kind = K::kPutNodeAddr, .nodeAddr = a});
    ++plan.nodeAddrsAdded;
  }
  for (const auto& [id, w] : desired.workloads)
    if (!installed.statsEntries.count(id)) ops.push_back({.kind = K::kPutWorkloadStats, .cgroupId = id});
  if (!bytesEqual(installed.config, desired.config)) {
    ops.push_back({.kind = K::kPutConfig, .config = desired.config});
    plan.configChanged = true;
  }
  for (const auto& [id, w] : desired.workloads) {
    auto cur = installed.workloads.find(id);
    if (cur != installed.workloads.end() && bytesEqual(cur->second, w.value)) continue;
    ops.push_back({.kind = K::kPutWorkload, .cgroupId = id, .workload = w.value});
    ++(cur == installed.workloads.end() ? plan.workloadsAdded : plan.workloadsChanged);
  }
  for (const auto& [id, w] : installed.workloads) {
    if (desired.workloads.count(id)) continue;
    ops.push_back({.kind = K::kDeleteWorkload, .cgroupId = id});
    ++plan.workloadsRemoved;
  }
  for (std::uint64_t id : installed.statsEntries)
    if (!desired.workloads.count(id)) ops.push_back({.kind = K::kDeleteWorkloadStats, .cgroupId = id});
  for (const auto& a : installed.nodeAddrs) {
    if (desired.nodeAddrs.count(a)) continue;
    ops.push_back({.kind = K::kDeleteNodeAddr, .nodeAddr = a});
    ++plan.nodeAddrsRemoved;
  }
  return plan;
}

std::string summary(const MeshPlan& plan) {
  std::string s = "workloads +" + std::to_string(plan.workloadsAdded) + " ~" + std::to_string(plan.workloadsChanged) +
                  " -" + std::to_string(plan.workloadsRemoved) + ", node addresses +" +
                  std::to_string(plan.nodeAddrsAdded) + " -" + std::to_string(plan.nodeAddrsRemoved) +
                  (plan.configChanged ? ", mesh config changed" : "");
  if (!plan.missingCgroups.empty()) {
    s += "; " + std::to_string(plan.missingCgroups.size()) + " meshed workload cgroup(s) missing, retried next sync:";
    for (const auto& c : plan.missingCgroups) s += " " + c;
  }
  return s;
}

}  // namespace nodemesh::datapath
