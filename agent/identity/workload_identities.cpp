#include "identity/workload_identities.h"

#include <algorithm>

namespace nodemesh::identity {

Result<std::vector<SpiffeId>> identitiesFor(const state::Snapshot& snapshot, std::string_view trustDomain) {
  if (auto st = checkTrustDomain(trustDomain); !st) return st.error().wrap("identities");
  std::vector<SpiffeId> out;
  out.reserve(snapshot.workloads.size());
  for (const auto& w : snapshot.workloads) {
    std::string_view sa = w.serviceAccount.empty() ? kDefaultServiceAccount : std::string_view(w.serviceAccount);
    auto id = SpiffeId::forWorkload(trustDomain, w.ns, sa);
    if (!id) return id.error().wrap("workload " + w.cgroup);
    out.push_back(std::move(id).value());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace nodemesh::identity
