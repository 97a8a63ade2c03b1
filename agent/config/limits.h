// Size limits the config enforces. The datapath sizes its maps from these, so
// a config that passes validation always fits.
#pragma once

#include <cstddef>

namespace nodemesh::config {

// Sum over services of vips x ports: one frontend (VIP, port, protocol) each.
inline constexpr std::size_t kMaxFrontends = 65536;
inline constexpr std::size_t kMaxEndpointsPerService = 256;
// At most one IPv4 and one IPv6 VIP per service.
inline constexpr std::size_t kMaxVipsPerService = 2;
// Larger inputs are refused before parsing; real configs are far smaller.
inline constexpr std::size_t kMaxConfigBytes = 16 * 1024 * 1024;

}  // namespace nodemesh::config
