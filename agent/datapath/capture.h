// The proxy's side of mesh capture: for an accepted connection, what the
// client dialed (service VIP and port) and which workload it is. The kernel
// writes nm_capture when the client's handshake completes (bpf/lib/
// capture.bpf.h), keyed by the client's address and port, i.e. the accepted
// socket's peer; the proxy reads each record once, which deletes it.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "state/ip_address.h"

namespace nodemesh::datapath {

struct CaptureRecord {
  int family = 0;                       // AF_INET or AF_INET6, of the original destination
  std::array<std::uint8_t, 16> address{};  // original destination (the VIP), network order; IPv4: first 4 bytes
  std::uint16_t port = 0;               // original destination port, host order
  std::uint64_t cgroupId = 0;           // the client's workload cgroup (cgroupIdOf(workload cgroup))

  state::IpAddress ip() const;          // address as an IpAddress
  std::string toString() const;         // "127.96.0.10:80 cgroup 1234"
};

// A handle on the pinned nm_capture map, independent of the SocketLb that
// loaded it: it holds its own fd, so proxy workers can keep it (shared_ptr)
// across datapath reloads. lookup() is thread-safe and one syscall.
class CaptureTable {
 public:
  explicit CaptureTable(UniqueFd mapFd) : fd_(std::move(mapFd)) {}
  // Opens <pinRoot>/maps/nm_capture (e.g. from a proxy in another process).
  static Result<std::shared_ptr<CaptureTable>> openPinned(const std::string& pinRoot);

  // The record of the client at `client` (the accepted socket's peer, as
  // accept()/getpeername() return it; a v4-mapped IPv6 peer is looked up as
  // IPv4), removed from the map. Error code ENOENT: no record (not a captured
  // connection, or already looked up); EAFNOSUPPORT/EINVAL: bad address.
  Result<CaptureRecord> lookup(const sockaddr* client, socklen_t len) const;

 private:
  UniqueFd fd_;
  mutable std::atomic<bool> noLookupAndDelete_{false};  // kernel without it: lookup + delete
};

// The id of the cgroup v2 directory at absolutePath (its inode number), or
// nullopt when it does not exist or is not on a cgroup2 filesystem.
std::optional<std::uint64_t> cgroupIdOf(const std::string& absolutePath);
// Same for a path relative to the cgroup2 mount (as workloads are written).
std::optional<std::uint64_t> cgroupIdOf(const std::string& cgroupMount, const std::string& relativePath);

}  // namespace nodemesh::datapath
