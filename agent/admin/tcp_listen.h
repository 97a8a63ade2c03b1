// The TCP side of the agent's HTTP servers (the metrics and health
// listener): parsing HOST:PORT, binding, and naming what was bound.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace nodemesh::admin {

struct TcpAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// "127.0.0.1:15020", "[::1]:15020", "fd00::5:15020" (unbracketed IPv6: the
// port is after the last colon), ":15020" (every IPv4 address) or
// "localhost:15020". Numeric addresses only otherwise: no DNS at start-up.
// Port 0 asks the kernel for a free port (tests).
Result<TcpAddress> parseTcpAddress(const std::string& hostPort);

// Binds (SO_REUSEADDR, so a restarted agent does not wait out TIME_WAIT)
// and listens; non-blocking and close-on-exec.
Result<UniqueFd> openTcpListener(const std::string& hostPort);

// "127.0.0.1:41234" / "[::1]:41234": what the socket is bound to.
std::string tcpLocalAddress(int fd);

}  // namespace nodemesh::admin
