#include "datapath/capture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstring>

#include "nodemesh/abi.h"

namespace nodemesh::datapath {
namespace {
constexpr int kKernelENOTSUPP = 524;  // the kernel's ENOTSUPP, not in userspace headers
}  // namespace

state::IpAddress CaptureRecord::ip() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, address.data(), text, sizeof text);
  return state::IpAddress::parse(text).value_or(state::IpAddress{});
}

std::string CaptureRecord::toString() const {
  const std::string a = ip().toString();
  return (family == AF_INET6 ? "[" + a + "]" : a) + ":" + std::to_string(port) + " cgroup " + std::to_string(cgroupId);
}

Result<std::shared_ptr<CaptureTable>> CaptureTable::openPinned(const std::string& pinRoot) {
  const std::string path = pinRoot + "/maps/nm_capture";
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Error::sys("opening pinned capture map " + path);
  return std::make_shared<CaptureTable>(UniqueFd(fd));
}

Result<CaptureRecord> CaptureTable::lookup(const sockaddr* client, socklen_t len) const {
  nm_capture_key key{};
  if (client && client->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(client);
    std::memcpy(&key.addr[0], &in->sin_addr, 4);
    key.port = in->sin_port;
    key.family = NM_FAMILY_V4;
  } else if (client && client->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(client);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      std::memcpy(&key.addr[0], &in6->sin6_addr.s6_addr[12], 4);
      key.family = NM_FAMILY_V4;
    } else {
      std::memcpy(key.addr, &in6->sin6_addr, 16);
      key.family = NM_FAMILY_V6;
    }
    key.port = in6->sin6_port;
  } else {
    return Error{"capture lookup: not an IPv4/IPv6 socket address", client ? EAFNOSUPPORT : EINVAL};
  }

  nm_capture value{};
  int rc;
  if (!noLookupAndDelete_.load(std::memory_order_relaxed)) {
    rc = bpf_map_lookup_and_delete_elem(fd_.get(), &key, &value);
    if (rc != 0 && (errno == EINVAL || errno == kKernelENOTSUPP || errno == EOPNOTSUPP)) {
      noLookupAndDelete_.store(true, std::memory_order_relaxed);
    } else if (rc != 0) {
      return Error::sys("capture lookup");
    }
  }
  if (noLookupAndDelete_.load(std::memory_order_relaxed)) {
    if (bpf_map_lookup_elem(fd_.get(), &key, &value) != 0) return Error::sys("capture lookup");
    bpf_map_delete_elem(fd_.get(), &key);  // a concurrent reader of the same key cannot exist: one accept per peer
  }

  CaptureRecord rec;
  rec.family = value.family == NM_FAMILY_V6 ? AF_INET6 : AF_INET;
  std::memcpy(rec.address.data(), value.addr, value.family == NM_FAMILY_V6 ? 16 : 4);
  rec.port = ntohs(value.port);
  rec.cgroupId = value.cgroup_id;
  return rec;
}

std::optional<std::uint64_t> cgroupIdOf(const std::string& absolutePath) {
  struct statfs fs {};
  if (::statfs(absolutePath.c_str(), &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) return std::nullopt;
  struct stat st {};
  if (::stat(absolutePath.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_ino);  // a cgroup2 directory's inode number is its id
}

std::optional<std::uint64_t> cgroupIdOf(const std::string& cgroupMount, const std::string& relativePath) {
  if (relativePath.empty() || relativePath == "/") return cgroupIdOf(cgroupMount);
  return cgroupIdOf(cgroupMount + (relativePath.front() == '/' ? "" : "/") + relativePath);
}

}  // namespace nodemesh::datapath
