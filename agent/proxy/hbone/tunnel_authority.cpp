#include "proxy/hbone/tunnel_authority.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace nodemesh::proxy::hbone {
namespace {

Error bad(std::string_view authority, const char* why) {
  // The authority is attacker-controlled: quote at most a bounded, printable prefix.
  std::string shown;
  for (char c : authority.substr(0, kMaxAuthorityLength + 8)) {
    shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return Error{std::string("bad tunnel authority \"") + shown + "\": " + why};
}

bool allOf(std::string_view s, bool (*pred)(char)) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isV4Char(char c) {
  return isDigit(c) || c == '.';
}
bool isV6Char(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// Parses text (already restricted to the family's alphabet) with inet_pton.
bool toBytes(int af, std::string_view text, std::uint8_t* out) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  return inet_pton(af, buf, out) == 1;
}

}  // namespace

std::string TunnelAddress::toString() const {
  return ip.isV4() ? ip.toString() + ":" + std::to_string(port) : "[" + ip.toString() + "]:" + std::to_string(port);
}

Result<TunnelAddress> parseTunnelAuthority(std::string_view a) {
  if (a.empty()) return bad(a, "empty");
  if (a.size() > kMaxAuthorityLength) return bad(a, "longer than any IP:port");

  std::string_view host;
  std::string_view portText;
  bool v6 = false;
  if (a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos) return bad(a, "'[' without ']'");
    host = a.substr(1, close - 1);
    auto rest = a.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return bad(a, "missing port after ']'");
    portText = rest.substr(1);
    v6 = true;
    if (host.empty()) return bad(a, "empty IPv6 address");
    if (!allOf(host, isV6Char))
      return bad(a, "IPv6 address has a character outside [0-9a-fA-F:.] (zone ids are not allowed)");
  } else {
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return bad(a, "missing port");
    host = a.substr(0, colon);
    portText = a.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad(a, "IPv6 address must be in brackets");
    if (host.empty()) return bad(a, "empty host");
    if (!allOf(host, isV4Char)) return bad(a, "host is not a literal IP address");
  }

  if (portText.empty()) return bad(a, "empty port");
  if (portText.size() > 5 || !allOf(portText, isDigit)) return bad(a, "port is not a decimal number");
  if (portText.front() == '0') return bad(a, portText.size() == 1 ? "port 0" : "port has a leading zero");
  unsigned port = 0;
  for (char c : portText) port = port * 10 + static_cast<unsigned>(c - '0');
  if (port > 65535) return bad(a, "port above 65535");

  std::array<std::uint8_t, 16> bytes{};
  TunnelAddress out;
  out.port = static_cast<std::uint16_t>(port);
  if (!v6) {
    // glibc's inet_pton(AF_INET) takes only the dotted quad, without leading zeros.
    if (!toBytes(AF_INET, host, bytes.data())) return bad(a, "not a dotted-quad IPv4 address");
    std::uint32_t be = 0;
    std::memcpy(&be, bytes.data(), 4);
    out.ip = state::IpAddress::fromV4(be);
    std::uint32_t h = ntohl(be);
    if (h == 0) return bad(a, "unspecified address");
    if (h == 0xffffffffu) return bad(a, "broadcast address");
    if ((h >> 28) == 0xe) return bad(a, "multicast address");
  } else {
    if (!toBytes(AF_INET6, host, bytes.data())) return bad(a, "not an IPv6 address");
    auto ip = state::IpAddress::parse(host);
    if (!ip) return bad(a, "not an IPv6 address");
    out.ip = *ip;
    static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes.data(), kMapped.data(), kMapped.size()) == 0) {
      return bad(a, "IPv4-mapped IPv6 address (use the IPv4 form)");
    }
    if (out.ip.isUnspecified()) return bad(a, "unspecified address");
    if (bytes[0] == 0xff) return bad(a, "multicast address");
  }
  return out;
}

}  // namespace nodemesh::proxy::hbone
