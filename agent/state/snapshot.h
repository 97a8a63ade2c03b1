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
// Only kL4 is implemented by this build; the node proxy adds the others.
enum class ServiceMode : std::uint8_t { kL4 };

const char* toString(Protocol p);
const char* toString(LbAlgorithm a);
const char* toString(ServiceMode m);

struct Workload {
  std::string cgroup;  // path relative to the cgroup v2 root, starts with '/'
  std::string ns;
  std::string serviceAccount;
  std::map<std::string, std::string> labels;
};

struct ServicePort {
  std::string name;  // may be empty when the service has one port
  std::uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  std::uint16_t targetPort = 0;  // backend port unless the endpoint sets one
};

struct Endpoint {
  IpAddress address;
  std::optional<std::uint16_t> port;  // overrides ServicePort::targetPort
  std::uint32_t weight = 1;           // 1..65535; 0 is refused by validation
  bool ready = true;
  std::string node;
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
};

struct Snapshot {
  std::uint64_t version = 0;  // set by the agent when it accepts the snapshot
  std::string source;         // file path or "embedded example"
  std::string nodeName;
  std::string servedCgroup;   // cgroup subtree the hooks attach to, relative to the v2 root
  std::vector<Workload> workloads;
  std::vector<Service> services;  // sorted by qualifiedName(), unique
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace nodemesh::state
