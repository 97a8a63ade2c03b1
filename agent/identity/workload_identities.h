// Which SPIFFE identities a node needs certificates for.
#pragma once

#include <string_view>
#include <vector>

#include "common/result.h"
#include "identity/spiffe_id.h"
#include "state/snapshot.h"

namespace nodemesh::identity {

inline constexpr std::string_view kDefaultServiceAccount = "default";

// The distinct SPIFFE IDs of the snapshot's workloads, sorted; a workload
// without a service account is "default" (as in Kubernetes). An error names
// the first workload (by cgroup) whose ID cannot be formed.
Result<std::vector<SpiffeId>> identitiesFor(const state::Snapshot& snapshot, std::string_view trustDomain);

}  // namespace nodemesh::identity
