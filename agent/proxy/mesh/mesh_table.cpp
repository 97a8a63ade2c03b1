#include "proxy/mesh/mesh_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace nodemesh::proxy::mesh {

state::IpAddress ipOf(const SocketAddress& address) {
  if (address.family() == AF_INET) {
    return state::IpAddress::fromV4(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr);
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
    std::uint32_t v4;
    std::memcpy(&v4, v6->sin6_addr.s6_addr + 12, 4);
    return state::IpAddress::fromV4(v4);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
  return state::IpAddress::parse(buf).value_or(state::IpAddress{});
}

const MeshWorkload* MeshTable::workloadByCgroup(std::uint64_t cgroupId) const {
  auto it = byCgroup_.find(cgroupId);
  return it == byCgroup_.end() ? nullptr : &workloads_[it->second];
}

const MeshWorkload* MeshTable::workloadByAddress(const state::IpAddress& ip) const {
  auto it = byAddress_.find(ip);
  return it == byAddress_.end() ? nullptr : &workloads_[it->second];
}

const MeshService* MeshTable::serviceByFrontend(const state::IpAddress& vip, std::uint16_t port) const {
  auto it = services_.find({vip, port});
  return it == services_.end() ? nullptr : &it->second;
}

const MeshService* MeshTable::serviceByFrontend(const SocketAddress& originalDestination) const {
  return serviceByFrontend(ipOf(originalDestination), originalDestination.port());
}

const MeshEndpoint* MeshTable::pick(const MeshService& service, std::uint32_t random) {
  if (service.endpoints.empty() || service.totalWeight == 0) return nullptr;
  std::uint64_t point = (std::uint64_t(random) * service.totalWeight) >> 32;  // uniform in [0, total)
  for (const MeshEndpoint& ep : service.endpoints) {
    if (point < ep.weight) return &ep;
    point -= ep.weight;
  }
  return &service.endpoints.back();
}

state::TenancyLimits MeshTable::limits(std::string_view ns) const {
  auto it = limits_.find(ns);
  return it == limits_.end() ? state::TenancyLimits{} : it->second;
}

Result<MeshTablePtr> buildMeshTable(const state::Snapshot& snapshot, const CgroupIdResolver& resolveCgroup) {
  auto authorization = policy::Authorization::compile(snapshot.authorization);
  if (!authorization) return authorization.error().wrap("mesh authorization rules");

  auto table = std::make_shared<MeshTable>();
  table->version_ = snapshot.version;
  table->trustDomain_ = snapshot.mesh.trustDomain;
  table->nodeName_ = snapshot.nodeName;
  table->nodeAddress_ = snapshot.nodeAddress;
  table->authorization_ = std::move(authorization).value();
  for (const state::Namespace& ns : snapshot.namespaces) table->limits_.emplace(ns.name, ns.limits);

  for (const state::Workload& w : snapshot.workloads) {
    std::string sa = w.serviceAccount.empty() ? "default" : w.serviceAccount;
    auto id = identity::SpiffeId::forWorkload(snapshot.mesh.trustDomain, w.ns, sa);
    if (!id) {
      table->warnings_.push_back("workload " + w.cgroup + ": no SPIFFE identity: " + id.error().message);
      continue;
    }
    const std::size_t index = table->workloads_.size();
    table->workloads_.push_back(MeshWorkload{w.cgroup, w.ns, sa, std::move(id).value(), w.meshed, w.inbound,
                                             w.addresses});
    for (const state::IpAddress& ip : w.addresses) {
      if (!table->byAddress_.emplace(ip, index).second) {
        table->warnings_.push_back("address " + ip.toString() + " belongs to two workloads; " + w.cgroup +
                                   " does not get inbound connections to it");
      }
    }
    std::optional<std::uint64_t> cg = resolveCgroup ? resolveCgroup(w.cgroup) : std::nullopt;
    if (!cg) {
      table->warnings_.push_back("workload " + w.cgroup + ": cgroup not found (is the pod running?); "
                                 "its outbound connections cannot be attributed");
    } else {
      table->byCgroup_.emplace(*cg, index);
    }
  }

  for (const state::Service& svc : snapshot.services) {
    if (svc.mode != state::ServiceMode::kMtls) continue;
    for (const state::ServicePort& port : svc.ports) {
      if (port.protocol != state::Protocol::kTcp) continue;  // the mesh carries TCP only
      MeshService ms;
      ms.name = svc.qualifiedName();
      ms.ns = svc.ns;
      ms.port = port.port;
      for (const state::Endpoint& ep : svc.endpoints) {
        if (!ep.ready || ep.weight == 0) continue;
        MeshEndpoint me;
        me.ip = ep.address;
        me.port = ep.port.value_or(port.targetPort);
        me.weight = ep.weight;
        auto addr = SocketAddress::parse(ep.address.toString(), me.port);
        if (!addr) continue;  // cannot happen for a parsed IpAddress
        me.address = addr.value();
        me.local = ep.node.empty() || ep.node == snapshot.nodeName;
        if (!me.local) {
          const state::PeerNode* peer = snapshot.findPeer(ep.node);
          if (peer == nullptr) {
            table->warnings_.push_back("service " + ms.name + ": endpoint " + me.address.toString() +
                                       " is on node '" + ep.node + "', which is not a known peer; skipped");
            continue;
          }
          auto peerAddr = SocketAddress::parse(peer->address.toString(), snapshot.mesh.inboundPort);
          if (!peerAddr) continue;
          me.node = ep.node;
          me.peer = peerAddr.value();
        }
        ms.totalWeight += me.weight;
        ms.endpoints.push_back(std::move(me));
      }
      for (const state::IpAddress& vip : svc.vips) table->services_[{vip, port.port}] = ms;
    }
  }
  return MeshTablePtr(std::move(table));
}

}  // namespace nodemesh::proxy::mesh
