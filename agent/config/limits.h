// Size limits the config enforces. The datapath sizes its maps from these, so
// a config that passes validation always fits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nodemesh::config {

// Sum over services of vips x ports: one frontend (VIP, port, protocol) each.
inline constexpr std::size_t kMaxFrontends = 65536;
inline constexpr std::size_t kMaxEndpointsPerService = 256;
// At most one IPv4 and one IPv6 VIP per service.
inline constexpr std::size_t kMaxVipsPerService = 2;
// Larger inputs are refused before parsing; real configs are far smaller.
inline constexpr std::size_t kMaxConfigBytes = 16 * 1024 * 1024;

// Peer nodes (`nodes`): one HBONE destination each.
inline constexpr std::size_t kMaxPeers = 4096;
// Namespaces with settings (`namespaces`): the proxy keeps counters per namespace.
inline constexpr std::size_t kMaxNamespaces = 4096;
// A workload's own addresses (a pod has one per family; a few spare).
inline constexpr std::size_t kMaxAddressesPerWorkload = 16;
// Authorization rules: the proxy evaluates them per connection.
inline constexpr std::size_t kMaxAuthorizationRules = 1024;
// Entries in one list of a rule (from.identities, from.namespaces, to.namespaces, to.ports).
inline constexpr std::size_t kMaxRuleListEntries = 256;

// mesh settings
inline constexpr std::int64_t kMinCertificateTtlSeconds = 60;
inline constexpr std::int64_t kMaxCertificateTtlSeconds = 30 * 24 * 3600;  // 2592000
inline constexpr std::int64_t kMaxProxyWorkers = 256;

}  // namespace nodemesh::config
