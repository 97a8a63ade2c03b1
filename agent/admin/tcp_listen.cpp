#include "admin/tcp_listen.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace nodemesh::admin {
namespace {

constexpr int kBacklog = 64;

Error badAddress(const std::string& hostPort, const std::string& why) {
  return Error{"invalid listen address '" + hostPort + "': " + why + " (want HOST:PORT, e.g. 127.0.0.1:15020)",
               EINVAL};
}

}  // namespace

Result<TcpAddress> parseTcpAddress(const std::string& hostPort) {
  std::string host, port;
  if (!hostPort.empty() && hostPort.front() == '[') {
    const auto close = hostPort.find(']');
    if (close == std::string::npos || close + 1 >= hostPort.size() || hostPort[close + 1] != ':')
      return badAddress(hostPort, "a bracketed IPv6 address must be followed by :PORT");
    host = hostPort.substr(1, close - 1);
    port = hostPort.substr(close + 2);
  } else {
    const auto colon = hostPort.rfind(':');
    if (colon == std::string::npos) return badAddress(hostPort, "no port");
    host = hostPort.substr(0, colon);
    port = hostPort.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    return badAddress(hostPort, "port must be a number from 0 to 65535");

  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  TcpAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(value));
    out.len = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(value));
    out.len = sizeof(*v6);
  } else {
    return badAddress(hostPort, "'" + host + "' is not a numeric IPv4 or IPv6 address");
  }
  return out;
}

Result<UniqueFd> openTcpListener(const std::string& hostPort) {
  auto addr = parseTcpAddress(hostPort);
  if (!addr) return addr.error();
  UniqueFd fd(::socket(addr->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("creating a TCP socket for " + hostPort);
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    return Error::sys("SO_REUSEADDR on " + hostPort);
  if (addr->addr.ss_family == AF_INET6 &&
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
    return Error::sys("IPV6_V6ONLY on " + hostPort);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr->addr), addr->len) != 0)
    return Error::sys("binding " + hostPort);
  if (::listen(fd.get(), kBacklog) != 0) return Error::sys("listening on " + hostPort);
  return fd;
}

std::string tcpLocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  return "";
}

}  // namespace nodemesh::admin
