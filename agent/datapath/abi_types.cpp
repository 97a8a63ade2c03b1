#include "datapath/abi_types.h"

#include <arpa/inet.h>

namespace nodemesh::datapath {
namespace {

void copyAddress(const state::IpAddress& ip, std::uint32_t out[4], std::uint8_t& family) {
  std::memset(out, 0, 16);
  std::memcpy(out, ip.bytes().data(), ip.isV4() ? 4 : 16);
  family = ip.isV4() ? NM_FAMILY_V4 : NM_FAMILY_V6;
}

std::string hostPortText(const state::IpAddress& ip, std::uint16_t port) {
  return ip.isV4() ? ip.toString() + ":" + std::to_string(port) : "[" + ip.toString() + "]:" + std::to_string(port);
}

}  // namespace

nm_service_key makeServiceKey(const state::IpAddress& vip, std::uint16_t port, state::Protocol proto) {
  nm_service_key key{};
  copyAddress(vip, key.addr, key.family);
  key.port = htons(port);
  key.proto = static_cast<std::uint8_t>(proto);
  return key;
}

nm_backend makeBackend(const state::IpAddress& address, std::uint16_t port) {
  nm_backend be{};
  copyAddress(address, be.addr, be.family);
  be.port = htons(port);
  return be;
}

state::IpAddress addressOf(const std::uint32_t addr[4], std::uint8_t family) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == NM_FAMILY_V4 ? AF_INET : AF_INET6, addr, text, sizeof text);
  return state::IpAddress::parse(text).value_or(state::IpAddress{});
}

std::uint16_t hostPort(std::uint16_t networkPort) { return ntohs(networkPort); }

std::string toString(const nm_service_key& key) {
  return std::string(key.proto == IPPROTO_UDP ? "udp " : "tcp ") +
         hostPortText(addressOf(key.addr, key.family), hostPort(key.port));
}

std::string toString(const nm_backend& backend) {
  return hostPortText(addressOf(backend.addr, backend.family), hostPort(backend.port));
}

}  // namespace nodemesh::datapath
