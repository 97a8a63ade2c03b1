// The validated desired state of one node: what every programmer (datapath,
// later proxy and identity) is driven from. A Snapshot is immutable once
// built; sources produce a new one and the agent swaps it in whole.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state/ip_address.h"

namespace nodemesh::state {

enum class Protocol : std::uint8_t { kTcp = 6, kUdp = 17 };
enum class LbAlgorithm : std::uint8_t { kRandom = 0, kMaglev = 1 };
// kL4: socket-LB only. kMtls: connections from meshed workloads are captured
// to the node proxy, which tunnels them over HBONE/mTLS (same-node: plain, but
// through policy). Clients that are not meshed still get kL4 behaviour.
enum class ServiceMode : std::uint8_t { kL4, kMtls };
// What a meshed workload accepts that did not come through a node proxy.
enum class InboundMode : std::uint8_t { kPermissive, kStrict };

const char* toString(Protocol p);
const char* toString(LbAlgorithm a);
const char* toString(ServiceMode m);
const char* toString(InboundMode m);

// Per-namespace caps the shared node proxy enforces (0: unlimited).
struct TenancyLimits {
  std::uint32_t maxConnections = 0;    // concurrent proxied connections attributed to the namespace
  std::uint64_t maxBufferedBytes = 0;  // proxy buffer memory held for the namespace's connections

  bool operator==(const TenancyLimits&) const = default;
};

struct Namespace {
  std::string name;
  bool meshed = false;  // workloads in it are captured unless they opt out
  InboundMode inbound = InboundMode::kPermissive;
  TenancyLimits limits;

  bool operator==(const Namespace&) const = default;
};

struct Workload {
  std::string cgroup;  // path relative to the cgroup v2 root, starts with '/'
  std::string ns;
  std::string serviceAccount;
  std::map<std::string, std::string> labels;
  // Resolved from the workload's own setting, else its namespace's.
  bool meshed = false;
  InboundMode inbound = InboundMode::kPermissive;
  // The workload's own addresses (a pod's IPs): inbound connections to them
  // are attributed to this workload (policy, tenancy, STRICT mode).
  std::vector<IpAddress> addresses;

  bool operator==(const Workload&) const = default;
};

// Another node of the mesh: where its proxy's HBONE port is reached.
struct PeerNode {
  std::string name;
  IpAddress address;

  bool operator==(const PeerNode&) const = default;
};

struct MeshSettings {
  std::string trustDomain = "cluster.local";
  // PEM files; both empty: the agent generates a development CA (and says so loudly).
  std::string caCertFile;
  std::string caKeyFile;
  std::uint32_t certificateTtlSeconds = 3600;  // workload certificates; rotated at half-life
  std::uint16_t outboundPort = 15001;          // captured connections (127.0.0.1, [::1], node address)
  std::uint16_t inboundPort = 15008;           // HBONE from peer nodes (node address)
  unsigned workers = 0;                        // 0: one per core
  bool socketRedirect = false;                 // sockops + sk_msg same-node shortcut

  bool operator==(const MeshSettings&) const = default;
};

enum class RuleAction : std::uint8_t { kAllow, kDeny };

// L4 authorization, evaluated by the proxy that delivers to the destination:
// any matching deny refuses; else, when allow rules select the destination,
// one of them must match; else allowed (within the trust domain, which TLS
// verification already enforced). An empty list inside `from`/`to` matches anything.
struct AuthorizationRule {
  std::string name;
  RuleAction action = RuleAction::kAllow;
  std::vector<std::string> fromIdentities;  // SPIFFE IDs
  std::vector<std::string> fromNamespaces;
  std::vector<std::string> toNamespaces;    // destination workload's namespace
  std::vector<std::uint16_t> toPorts;       // destination (backend) port

  bool operator==(const AuthorizationRule&) const = default;
};

struct ServicePort {
  std::string name;  // may be empty when the service has one port
  std::uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  std::uint16_t targetPort = 0;  // backend port unless the endpoint sets one

  bool operator==(const ServicePort&) const = default;
};

struct Endpoint {
  IpAddress address;
  std::optional<std::uint16_t> port;  // overrides ServicePort::targetPort
  std::uint32_t weight = 1;           // 1..65535; 0 is refused by validation
  bool ready = true;
  std::string node;  // empty or Snapshot::nodeName: on this node; else a PeerNode's name

  bool operator==(const Endpoint&) const = default;
};

struct Service {
  std::string name;
  std::string ns;
  std::vector<IpAddress> vips;  // one per family at most
  std::vector<ServicePort> ports;
  ServiceMode mode = ServiceMode::kL4;
  LbAlgorithm lb = LbAlgorithm::kRandom;
  std::vector<Endpoint> endpoints;

  std::string qualifiedName() const { return ns + "/" + name; }
  bool operator==(const Service&) const = default;
};

struct Snapshot {
  std::uint64_t version = 0;  // set by the agent when it accepts the snapshot
  std::string source;         // file path or "embedded example"
  std::string nodeName;
  std::string servedCgroup;   // cgroup subtree the hooks attach to, relative to the v2 root
  // Where peers reach this node (HBONE) and where captured workloads in their
  // own network namespace are steered; unset on a single-node setup.
  std::optional<IpAddress> nodeAddress;
  MeshSettings mesh;
  std::vector<PeerNode> peers;            // sorted by name, unique
  std::vector<Namespace> namespaces;      // sorted by name, unique (only those the config names)
  std::vector<Workload> workloads;
  std::vector<Service> services;  // sorted by qualifiedName(), unique
  std::vector<AuthorizationRule> authorization;  // in file order

  const Namespace* findNamespace(const std::string& name) const;
  const PeerNode* findPeer(const std::string& name) const;
  // Every field, `version` included; a field added later is compared too.
  bool operator==(const Snapshot&) const = default;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace nodemesh::state
