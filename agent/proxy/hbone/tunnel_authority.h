// The destination of an HBONE tunnel: the :authority of a CONNECT request,
// which nodemesh (like Istio ambient) requires to be a literal IP:port.
// Pure, allocation-light, fuzzed (tests/fuzz/hbone_authority_fuzz.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "state/ip_address.h"

namespace nodemesh::proxy::hbone {

// "[" + 45 (longest IPv6 text) + "]:" + 5
inline constexpr std::size_t kMaxAuthorityLength = 53;

struct TunnelAddress {
  state::IpAddress ip;
  std::uint16_t port = 0;

  std::string toString() const;  // "10.0.0.1:8080" / "[fd00::1]:8080"
  friend bool operator==(const TunnelAddress&, const TunnelAddress&) = default;
};

// Accepts exactly `a.b.c.d:port` (dotted quad, no leading zeros) or
// `[v6]:port` (RFC 4291 text, no zone id); port 1..65535 in decimal without
// leading zeros. Rejects host names, missing/empty/zero ports, unbracketed
// IPv6, the unspecified, broadcast, multicast and IPv4-mapped IPv6 addresses,
// and any byte outside the address alphabet (NUL, spaces, '%', '@', ...).
// The error says which rule failed.
Result<TunnelAddress> parseTunnelAuthority(std::string_view authority);

}  // namespace nodemesh::proxy::hbone
