#include "state/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

namespace nodemesh::state {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpAddress ip;
  if (inet_pton(AF_INET, buf, ip.bytes_.data()) == 1) {
    ip.family_ = Family::kV4;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes_.data()) == 1) {
    ip.family_ = Family::kV6;
    return ip;
  }
  return std::nullopt;
}

IpAddress IpAddress::fromV4(std::uint32_t networkOrder) {
  IpAddress ip;
  std::memcpy(ip.bytes_.data(), &networkOrder, 4);
  return ip;
}

bool IpAddress::isLoopback() const {
  if (isV4()) return bytes_[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kLoop{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes_ == kLoop;
}

bool IpAddress::isUnspecified() const {
  for (std::size_t i = 0; i < (isV4() ? 4u : 16u); ++i)
    if (bytes_[i] != 0) return false;
  return true;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

}  // namespace nodemesh::state
