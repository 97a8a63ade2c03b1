// An IPv4 or IPv6 address as 16 network-order bytes, the form the BPF maps use.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nodemesh::state {

enum class Family : std::uint8_t { kV4 = 4, kV6 = 6 };

class IpAddress {
 public:
  IpAddress() = default;
  // Parses dotted IPv4 or RFC 4291 IPv6 text; nullopt when it is neither.
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress fromV4(std::uint32_t networkOrder);

  Family family() const { return family_; }
  bool isV4() const { return family_ == Family::kV4; }
  bool isLoopback() const;
  bool isUnspecified() const;
  // Bytes as the kernel sees them (IPv4: first 4 bytes, rest zero).
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  std::string toString() const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  Family family_ = Family::kV4;
  std::array<std::uint8_t, 16> bytes_{};
};

}  // namespace nodemesh::state
