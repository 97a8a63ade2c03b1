// Socket helpers the engine uses outside the ring (setup, not data path).
#pragma once

#include "common/result.h"
#include "common/unique_fd.h"
#include "proxy/engine/options.h"

namespace nodemesh::proxy {

// A TCP listener with SO_REUSEPORT (and SO_REUSEADDR) bound to `addr`.
Result<UniqueFd> makeReusePortListener(const SocketAddress& addr, int backlog);

// The address a socket is bound to.
Result<SocketAddress> localAddress(int fd);

}  // namespace nodemesh::proxy
