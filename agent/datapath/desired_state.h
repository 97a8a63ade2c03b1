// What the socket-LB maps should hold for a snapshot, before ids are given
// out: one entry per (VIP, port, protocol) with its backend table.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/abi_types.h"
#include "state/snapshot.h"

namespace nodemesh::datapath {

struct DesiredService {
  nm_service_key key{};
  std::string name;  // namespace/name, for logs and meshctl
  state::LbAlgorithm algo = state::LbAlgorithm::kRandom;
  std::uint32_t flags = 0;  // NM_SVC_F_*: NM_SVC_F_MTLS for the TCP ports of an mtls service
  std::vector<nm_backend> slots;  // backend of each slot; empty: no ready backend
  std::uint32_t backendCount = 0;  // endpoints of the VIP's family
  std::uint32_t readyCount = 0;
};

using DesiredServices = std::map<nm_service_key, DesiredService, BytesLess<nm_service_key>>;

// Expands services x VIPs x ports; only ready endpoints of the VIP's family
// take slots. Fails when the result would not fit the maps.
Result<DesiredServices> desiredFromSnapshot(const state::Snapshot& snapshot);

}  // namespace nodemesh::datapath
