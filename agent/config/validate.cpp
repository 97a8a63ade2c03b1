#include "config/validate.h"

#include <algorithm>

#include <map>
#include <set>
#include <string>
#include <tuple>

#include "config/limits.h"
#include "config/names.h"
#include "identity/spiffe_id.h"

namespace nodemesh::config {
namespace {

using state::Service;

std::string portText(std::uint16_t port, state::Protocol proto) {
  return std::to_string(port) + "/" + state::toString(proto);
}

void validateWorkloads(const Decoded& d, Diagnostics& diag) {
  const state::Snapshot& s = d.snapshot;
  bool nodeCgroupOk = !s.servedCgroup.empty() && checkCgroupPath(s.servedCgroup).empty();
  std::map<std::string, std::string> seen;  // cgroup -> path of the first workload using it
  for (std::size_t i = 0; i < s.workloads.size() && !diag.full(); ++i) {
    const state::Workload& w = s.workloads[i];
    const WorkloadSite& site = d.sites.workloads[i];
    if (w.cgroup.empty() || !checkCgroupPath(w.cgroup).empty()) continue;  // already reported
    if (nodeCgroupOk && !cgroupWithin(w.cgroup, s.servedCgroup)) {
      diag.add(site.cgroup, "must be node.cgroup (" + s.servedCgroup + ") or below it, got " + quoted(w.cgroup) +
                                "; the hooks only see processes in that subtree");
    }
    auto [it, inserted] = seen.emplace(w.cgroup, site.item.path);
    if (!inserted) diag.add(site.cgroup, "cgroup " + quoted(w.cgroup) + " is already used by " + it->second);
  }
}

void validatePorts(const Service& svc, const ServiceSite& site, Diagnostics& diag) {
  std::map<std::string, std::size_t> names;
  std::map<std::pair<std::uint16_t, state::Protocol>, std::size_t> numbers;
  for (std::size_t i = 0; i < svc.ports.size(); ++i) {
    const state::ServicePort& p = svc.ports[i];
    const Location& at = site.ports[i];
    if (site.portsWritten > 1 && p.name.empty()) {
      diag.add({at.path + ".name", at.line, at.column},
               "is required when a service has more than one port (it tells them apart)");
    }
    if (!p.name.empty()) {
      auto [it, inserted] = names.emplace(p.name, i);
      if (!inserted) {
        diag.add({at.path + ".name", at.line, at.column},
                 "port name " + quoted(p.name) + " is already used by " + site.ports[it->second].path);
      }
    }
    auto [it, inserted] = numbers.emplace(std::make_pair(p.port, p.protocol), i);
    if (!inserted) {
      diag.add(at, "port " + portText(p.port, p.protocol) + " is already listed as " + site.ports[it->second].path);
    }
  }
}

bool isV4Mapped(const state::IpAddress& ip) {
  const auto& b = ip.bytes();
  return !ip.isV4() && std::all_of(b.begin(), b.begin() + 10, [](auto x) { return x == 0; }) && b[10] == 0xff &&
         b[11] == 0xff;
}

void validateVipFamilies(const Service& svc, const ServiceSite& site, Diagnostics& diag) {
  if (svc.vips.size() == 2 && svc.vips[0].family() == svc.vips[1].family()) {
    diag.add(site.vips[1], std::string("a service has at most one VIP per address family; ") +
                               (svc.vips[1].isV4() ? "IPv4" : "IPv6") + " is already " + svc.vips[0].toString());
  }
  // The hooks look up a v4-mapped destination as its IPv4 form, so a VIP
  // written as ::ffff:a.b.c.d would never match anything.
  for (std::size_t i = 0; i < svc.vips.size(); ++i) {
    if (isV4Mapped(svc.vips[i]))
      diag.add(site.vips[i], "an IPv4-mapped IPv6 VIP never matches; write it as IPv4 (dual-stack sockets "
                             "dialing ::ffff:a.b.c.d are served by the IPv4 VIP)");
  }
}

void validateEndpoints(const Service& svc, const ServiceSite& site, Diagnostics& diag) {
  // The port a connection would go to; 0 when the service has several ports
  // (then the address alone identifies the endpoint).
  std::uint16_t singleTarget = svc.ports.size() == 1 && site.portsWritten == 1 ? svc.ports[0].targetPort : 0;
  std::map<std::pair<state::IpAddress, std::uint16_t>, std::size_t> seen;
  for (std::size_t i = 0; i < svc.endpoints.size() && !diag.full(); ++i) {
    const state::Endpoint& ep = svc.endpoints[i];
    const EndpointSite& at = site.endpoints[i];
    if (ep.port && site.portsWritten > 1) {
      diag.add(at.port, "an endpoint may only set port when the service has exactly one port; this service has " +
                            std::to_string(site.portsWritten) +
                            ", so it would be ambiguous which one it overrides (set targetPort on each port instead)");
    }
    const bool familyServed = std::any_of(svc.vips.begin(), svc.vips.end(),
                                          [&](const auto& vip) { return vip.family() == ep.address.family(); });
    if (!familyServed && !svc.vips.empty()) {
      diag.add(at.item, "endpoint " + ep.address.toString() + " is " + (ep.address.isV4() ? "IPv4" : "IPv6") +
                            " but the service has no " + (ep.address.isV4() ? "IPv4" : "IPv6") +
                            " VIP, so no connection could ever reach it");
    }
    std::uint16_t port = ep.port.value_or(singleTarget);
    auto [it, inserted] = seen.emplace(std::make_pair(ep.address, port), i);
    if (!inserted) {
      std::string what = port != 0 ? ep.address.toString() + " port " + std::to_string(port) : ep.address.toString();
      diag.add(at.item, "duplicate endpoint " + what + "; already listed as " + site.endpoints[it->second].item.path);
    }
  }
}

// Services are unique by (namespace, name); a VIP+port+protocol belongs to one service.
void validateAcrossServices(const Decoded& d, Diagnostics& diag) {
  const auto& services = d.snapshot.services;
  std::map<std::pair<std::string, std::string>, std::size_t> names;
  std::map<std::tuple<state::IpAddress, std::uint16_t, state::Protocol>, std::size_t> frontends;
  std::size_t frontendCount = 0;
  for (std::size_t i = 0; i < services.size() && !diag.full(); ++i) {
    const Service& svc = services[i];
    const ServiceSite& site = d.sites.services[i];
    if (!svc.name.empty() && !svc.ns.empty()) {
      auto [it, inserted] = names.emplace(std::make_pair(svc.ns, svc.name), i);
      if (!inserted) {
        diag.add(site.name, "service " + svc.qualifiedName() + " is already defined by " +
                                d.sites.services[it->second].item.path);
      }
    }
    frontendCount += svc.vips.size() * svc.ports.size();
    for (std::size_t v = 0; v < svc.vips.size(); ++v) {
      for (std::size_t p = 0; p < svc.ports.size() && !diag.full(); ++p) {
        const state::ServicePort& port = svc.ports[p];
        auto key = std::make_tuple(svc.vips[v], port.port, port.protocol);
        auto [it, inserted] = frontends.emplace(key, i);
        if (!inserted && it->second != i) {
          diag.add(site.ports[p], "VIP " + svc.vips[v].toString() + " port " + portText(port.port, port.protocol) +
                                      " is already used by service " + services[it->second].qualifiedName() + " (" +
                                      d.sites.services[it->second].item.path + ")");
        }
      }
    }
  }
  if (frontendCount > kMaxFrontends) {
    diag.add(d.sites.serviceList, "services define " + std::to_string(frontendCount) +
                                      " VIP/port combinations; at most " + std::to_string(kMaxFrontends) +
                                      " are supported");
  }
}

// Peers: unique names and addresses, never this node.
void validatePeers(const Decoded& d, Diagnostics& diag) {
  const state::Snapshot& s = d.snapshot;
  std::map<std::string, std::size_t> names;
  std::map<state::IpAddress, std::size_t> addresses;
  for (std::size_t i = 0; i < s.peers.size() && !diag.full(); ++i) {
    const state::PeerNode& p = s.peers[i];
    const PeerSite& site = d.sites.peers[i];
    if (!p.name.empty() && checkDnsSubdomain(p.name).empty()) {
      if (p.name == s.nodeName) {
        diag.add(site.name, "node " + quoted(p.name) + " is this node (node.name); list only the other nodes");
      } else if (auto [it, inserted] = names.emplace(p.name, i); !inserted) {
        diag.add(site.name, "node " + quoted(p.name) + " is already listed as " + d.sites.peers[it->second].item.path);
      }
    }
    if (!site.addressValid) continue;
    if (s.nodeAddress && *s.nodeAddress == p.address) {
      diag.add(site.address, "address " + p.address.toString() + " is this node's own address (node.address)");
    } else if (auto [it, inserted] = addresses.emplace(p.address, i); !inserted) {
      diag.add(site.address, "address " + p.address.toString() + " is already used by " +
                                 d.sites.peers[it->second].item.path);
    }
  }
}

void validateNamespaces(const Decoded& d, Diagnostics& diag) {
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < d.snapshot.namespaces.size() && !diag.full(); ++i) {
    const std::string& name = d.snapshot.namespaces[i].name;
    if (name.empty()) continue;
    auto [it, inserted] = seen.emplace(name, i);
    if (!inserted) {
      diag.add(d.sites.namespaces[i].name,
               "namespace " + quoted(name) + " is already listed as " + d.sites.namespaces[it->second].item.path);
    }
  }
}

// A workload's own addresses identify it to the proxy: each belongs to one
// workload and is not a service VIP.
void validateWorkloadAddresses(const Decoded& d, Diagnostics& diag) {
  const state::Snapshot& s = d.snapshot;
  std::map<state::IpAddress, std::string> vips;  // VIP -> "service ns/name"
  for (const Service& svc : s.services)
    for (const auto& vip : svc.vips) vips.emplace(vip, svc.qualifiedName());
  std::map<state::IpAddress, std::string> seen;  // address -> path of its first listing
  for (std::size_t i = 0; i < s.workloads.size() && !diag.full(); ++i) {
    const state::Workload& w = s.workloads[i];
    const WorkloadSite& site = d.sites.workloads[i];
    for (std::size_t a = 0; a < w.addresses.size(); ++a) {
      const state::IpAddress& ip = w.addresses[a];
      if (auto vip = vips.find(ip); vip != vips.end()) {
        diag.add(site.addresses[a], "address " + ip.toString() + " is a VIP of service " + vip->second +
                                        "; a workload's addresses are its own (pod) IPs");
        continue;
      }
      auto [it, inserted] = seen.emplace(ip, site.addresses[a].path);
      if (!inserted) diag.add(site.addresses[a], "address " + ip.toString() + " is already used by " + it->second);
    }
  }
}

// mtls services carry TCP only; endpoints name this node or a listed peer;
// node.address is there when something needs it.
void validateMesh(const Decoded& d, Diagnostics& diag) {
  const state::Snapshot& s = d.snapshot;
  std::set<std::string> peerNames;
  for (const auto& p : s.peers) peerNames.insert(p.name);
  const Location* remoteEndpoint = nullptr;  // the first endpoint on another node
  std::string remoteNode;
  const Location* mtlsService = nullptr;
  for (std::size_t i = 0; i < s.services.size() && !diag.full(); ++i) {
    const Service& svc = s.services[i];
    const ServiceSite& site = d.sites.services[i];
    if (svc.mode == state::ServiceMode::kMtls) {
      if (!mtlsService) mtlsService = &site.item;
      for (std::size_t p = 0; p < svc.ports.size(); ++p) {
        if (svc.ports[p].protocol != state::Protocol::kUdp) continue;
        diag.add(site.ports[p], "port " + portText(svc.ports[p].port, svc.ports[p].protocol) +
                                    " in an mtls service: the node proxy carries TCP only (put UDP ports in a "
                                    "separate l4 service)");
      }
    }
    for (std::size_t e = 0; e < svc.endpoints.size(); ++e) {
      const state::Endpoint& ep = svc.endpoints[e];
      if (ep.node.empty() || ep.node == s.nodeName) continue;
      if (!peerNames.count(ep.node)) {
        diag.add(site.endpoints[e].node, "unknown node " + quoted(ep.node) +
                                             "; list it under nodes (or leave node empty for this node, " +
                                             quoted(s.nodeName) + ")");
        continue;
      }
      if (!remoteEndpoint) {
        remoteEndpoint = &site.endpoints[e].item;
        remoteNode = ep.node;
      }
    }
  }
  if (s.nodeAddress || s.nodeName.empty()) return;  // node missing or broken: reported already
  if (remoteEndpoint) {
    diag.add(d.sites.nodeAddress, "is required when endpoints run on other nodes (" + remoteEndpoint->path +
                                      " is on " + quoted(remoteNode) + ")");
  } else if (mtlsService && !s.peers.empty()) {
    diag.add(d.sites.nodeAddress, "is required when mtls services (" + mtlsService->path +
                                      ") and peer nodes are configured: peers reach this node's proxy there");
  }
}

void validateAuthorization(const Decoded& d, Diagnostics& diag) {
  const state::Snapshot& s = d.snapshot;
  const bool trustDomainOk = identity::checkTrustDomain(s.mesh.trustDomain).ok();
  std::map<std::string, std::size_t> names;
  for (std::size_t i = 0; i < s.authorization.size() && !diag.full(); ++i) {
    const state::AuthorizationRule& r = s.authorization[i];
    const RuleSite& site = d.sites.rules[i];
    if (!r.name.empty()) {
      auto [it, inserted] = names.emplace(r.name, i);
      if (!inserted) {
        diag.add(site.name, "rule " + quoted(r.name) + " is already defined by " + d.sites.rules[it->second].item.path);
      }
    }
    if (!trustDomainOk) continue;
    for (std::size_t k = 0; k < r.fromIdentities.size(); ++k) {
      Result<identity::SpiffeId> id = identity::SpiffeId::parse(r.fromIdentities[k]);
      if (!id || id->trustDomain() == s.mesh.trustDomain) continue;
      diag.add(site.identities[k], "identity is in trust domain " + quoted(id->trustDomain()) +
                                       " but the mesh's is " + quoted(s.mesh.trustDomain) +
                                       " (mesh.trustDomain); peers from another trust domain are refused before "
                                       "authorization, so the rule could never match");
    }
  }
}

}  // namespace

void validateSnapshot(const Decoded& decoded, Diagnostics& diag) {
  validateWorkloads(decoded, diag);
  validatePeers(decoded, diag);
  validateNamespaces(decoded, diag);
  validateWorkloadAddresses(decoded, diag);
  for (std::size_t i = 0; i < decoded.snapshot.services.size() && !diag.full(); ++i) {
    const Service& svc = decoded.snapshot.services[i];
    const ServiceSite& site = decoded.sites.services[i];
    validatePorts(svc, site, diag);
    validateVipFamilies(svc, site, diag);
    validateEndpoints(svc, site, diag);
  }
  validateAcrossServices(decoded, diag);
  validateMesh(decoded, diag);
  validateAuthorization(decoded, diag);
}

}  // namespace nodemesh::config
