// libFuzzer target for the config parser: any input must come back as a
// Snapshot or an Error (never a crash, hang, leak or sanitizer report), and
// an accepted Snapshot must satisfy the invariants the datapath relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "config/config_loader.h"
#include "config/limits.h"
#include "identity/spiffe_id.h"
#include "policy/authorization.h"

namespace {

using nodemesh::state::Snapshot;
namespace config = nodemesh::config;
namespace state = nodemesh::state;

// The mesh schema: peers, namespaces, workloads' own addresses, mtls services,
// endpoint nodes and authorization (docs/CONFIG.md).
void checkMeshInvariants(const Snapshot& s) {
  // mesh settings in their documented ranges
  const auto& m = s.mesh;
  if (!nodemesh::identity::checkTrustDomain(m.trustDomain).ok()) std::abort();
  if (m.certificateTtlSeconds < config::kMinCertificateTtlSeconds ||
      m.certificateTtlSeconds > config::kMaxCertificateTtlSeconds)
    std::abort();
  if (m.outboundPort == 0 || m.inboundPort == 0 || m.outboundPort == m.inboundPort) std::abort();
  if (m.workers > config::kMaxProxyWorkers) std::abort();
  if (m.caCertFile.empty() != m.caKeyFile.empty()) std::abort();
  if (s.nodeAddress && s.nodeAddress->isUnspecified()) std::abort();

  // peers: sorted by name, unique names and addresses, never this node
  if (s.peers.size() > config::kMaxPeers) std::abort();
  std::set<state::IpAddress> peerAddresses;
  for (std::size_t i = 0; i < s.peers.size(); ++i) {
    const auto& p = s.peers[i];
    if (i > 0 && !(s.peers[i - 1].name < p.name)) std::abort();
    if (p.name.empty() || p.name == s.nodeName || p.address.isUnspecified()) std::abort();
    if (s.nodeAddress && *s.nodeAddress == p.address) std::abort();
    if (!peerAddresses.insert(p.address).second) std::abort();
    if (s.findPeer(p.name) != &p) std::abort();
  }

  // namespaces: sorted by name, unique
  if (s.namespaces.size() > config::kMaxNamespaces) std::abort();
  for (std::size_t i = 0; i < s.namespaces.size(); ++i) {
    if (s.namespaces[i].name.empty()) std::abort();
    if (i > 0 && !(s.namespaces[i - 1].name < s.namespaces[i].name)) std::abort();
    if (s.findNamespace(s.namespaces[i].name) != &s.namespaces[i]) std::abort();
  }

  // a workload's addresses: its own, never a VIP, never another workload's
  std::set<state::IpAddress> vips;
  for (const auto& svc : s.services) vips.insert(svc.vips.begin(), svc.vips.end());
  std::set<state::IpAddress> workloadAddresses;
  for (const auto& w : s.workloads) {
    if (w.addresses.size() > config::kMaxAddressesPerWorkload) std::abort();
    for (const auto& ip : w.addresses) {
      if (ip.isUnspecified() || vips.count(ip) || !workloadAddresses.insert(ip).second) std::abort();
    }
  }

  // mtls services carry TCP only; endpoints are on this node or a listed peer,
  // and a remote endpoint needs node.address (peers tunnel back to it)
  bool remoteEndpoint = false;
  bool mtlsService = false;
  for (const auto& svc : s.services) {
    if (svc.mode == state::ServiceMode::kMtls) {
      mtlsService = true;
      for (const auto& port : svc.ports)
        if (port.protocol == state::Protocol::kUdp) std::abort();
    }
    for (const auto& ep : svc.endpoints) {
      if (ep.node.empty() || ep.node == s.nodeName) continue;
      if (s.findPeer(ep.node) == nullptr) std::abort();
      remoteEndpoint = true;
    }
  }
  if (!s.nodeAddress && (remoteEndpoint || (mtlsService && !s.peers.empty()))) std::abort();

  // authorization: what the proxy compiles must compile, and every identity a
  // rule names is in the mesh's trust domain (else the rule could never match)
  if (s.authorization.size() > config::kMaxAuthorizationRules) std::abort();
  if (!nodemesh::policy::Authorization::compile(s.authorization).ok()) std::abort();
  for (const auto& rule : s.authorization) {
    for (const auto& id : rule.fromIdentities) {
      auto parsed = nodemesh::identity::SpiffeId::parse(id);
      if (!parsed.ok() || parsed->trustDomain() != m.trustDomain) std::abort();
    }
  }
}

// Aborts (a fuzzer finding) when an accepted snapshot breaks a promise of parseConfig.
void checkInvariants(const Snapshot& s) {
  if (s.version != 0 || s.source != "fuzz" || s.nodeName.empty() || s.servedCgroup.empty()) std::abort();
  std::size_t frontends = 0;
  for (std::size_t i = 0; i < s.services.size(); ++i) {
    const auto& svc = s.services[i];
    if (i > 0 && !(s.services[i - 1].qualifiedName() < svc.qualifiedName())) std::abort();
    if (svc.vips.empty() || svc.vips.size() > nodemesh::config::kMaxVipsPerService || svc.ports.empty()) std::abort();
    if (svc.endpoints.size() > nodemesh::config::kMaxEndpointsPerService) std::abort();
    frontends += svc.vips.size() * svc.ports.size();
    for (const auto& vip : svc.vips)
      if (vip.isUnspecified()) std::abort();
    for (const auto& port : svc.ports)
      if (port.port == 0 || port.targetPort == 0) std::abort();
    for (const auto& ep : svc.endpoints) {
      if (ep.weight < 1 || ep.weight > 65535 || ep.address.isUnspecified()) std::abort();
      if (ep.port && (*ep.port == 0 || svc.ports.size() != 1)) std::abort();
    }
  }
  if (frontends > nodemesh::config::kMaxFrontends) std::abort();
  checkMeshInvariants(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result = nodemesh::config::parseConfig(text, "fuzz");
  if (result.ok()) {
    checkInvariants(result.value());
  } else if (result.error().message.empty()) {
    std::abort();  // every rejection must say why
  }
  return 0;
}
