// Public configuration types of the proxy engine: addresses, the router seam,
// the options an Engine starts with and the io_uring features it ended up with.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nodemesh::proxy {

// An IPv4 or IPv6 socket address, by value. Sized for sockaddr_in6 (28 bytes),
// not sockaddr_storage (128): the proxy keeps addresses per connection, and the
// other 100 bytes would be padding in every one of them.
struct SocketAddress {
  union Storage {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  };
  Storage storage{};
  socklen_t len = 0;

  static Result<SocketAddress> parse(std::string_view ip, uint16_t port);
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.sa.sa_family; }
  uint16_t port() const;
  SocketAddress withPort(uint16_t port) const;
  std::string toString() const;  // "1.2.3.4:80" / "[::1]:80"
};

// Chooses the upstream for an accepted connection from the address the client
// reached (its local address on the proxy side; with capture this becomes the
// original destination lookup). Runs on the worker thread: it must be cheap,
// must not block and must be safe to call from every worker at once.
using Router = std::function<Result<SocketAddress>(const SocketAddress& local)>;

// What the rings of this engine actually run with. Each field is also a wish in
// EngineOptions::want: a feature not wished for is never tried (tests use this
// to exercise the fallbacks).
struct EngineFeatures {
  bool single_issuer = true;    // IORING_SETUP_SINGLE_ISSUER (6.0)
  bool defer_taskrun = true;    // IORING_SETUP_DEFER_TASKRUN (6.1)
  bool multishot_accept = true; // else one accept re-armed per completion
  bool multishot_recv = true;   // else one recv re-armed per completion
  bool multishot_recv_cap = true; // byte cap on a multishot recv (sqe->optlen, 6.17)

  // Names of the missing features, for `meshctl node status`.
  std::vector<std::string> missing() const;
};

struct EngineOptions {
  SocketAddress listen;          // port 0: the kernel picks; Engine::port() says which
  unsigned workers = 0;          // 0: std::thread::hardware_concurrency()
  unsigned sq_entries = 256;     // small values exercise the local backlog
  unsigned cq_entries = 4096;
  unsigned buffer_size = 16 * 1024;
  unsigned buffer_count = 512;   // per worker, the most the ring grows to; a power of two
  unsigned buffer_initial = 32;  // provided at start; doubled on each ENOBUFS (BufferRing)
  // Received-but-unsent buffers per direction before the source is paused.
  unsigned max_buffers_per_direction = 2;
  int listen_backlog = 4096;
  EngineFeatures want;           // features to try
  std::chrono::milliseconds stop_drain_timeout{2000};
};

}  // namespace nodemesh::proxy
