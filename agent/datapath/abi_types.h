// C++ views of the BPF ABI (bpf/include/nodemesh/abi.h): ordering for use as
// std::map keys and constructors from state types. The structs themselves
// are the shared ones, so there is exactly one definition of each layout.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "nodemesh/abi.h"
#include "state/ip_address.h"
#include "state/snapshot.h"

namespace nodemesh::datapath {

// Byte-wise order and equality. Valid because every ABI struct used as a key
// has explicit padding and is zero-initialised before its fields are set.
template <typename T>
struct BytesLess {
  bool operator()(const T& a, const T& b) const { return std::memcmp(&a, &b, sizeof(T)) < 0; }
};
template <typename T>
bool bytesEqual(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

nm_service_key makeServiceKey(const state::IpAddress& vip, std::uint16_t port, state::Protocol proto);
nm_backend makeBackend(const state::IpAddress& address, std::uint16_t port);

state::IpAddress addressOf(const std::uint32_t addr[4], std::uint8_t family);
std::uint16_t hostPort(std::uint16_t networkPort);
std::string toString(const nm_service_key& key);  // "tcp 127.96.0.10:80"
std::string toString(const nm_backend& backend);  // "127.0.0.1:8080", "[::1]:8080"

}  // namespace nodemesh::datapath
