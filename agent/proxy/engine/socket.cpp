#include "proxy/engine/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

namespace nodemesh::proxy {

Result<SocketAddress> SocketAddress::parse(std::string_view ip, uint16_t port) {
  SocketAddress a;
  std::string s(ip);
  if (!s.empty() && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (::inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  if (::inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return Error{"not an IPv4 or IPv6 address: '" + s + "'", EINVAL};
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  a.len = len > sizeof(a.storage) ? socklen_t(sizeof(a.storage)) : len;
  std::memcpy(&a.storage, sa, a.len);
  return a;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

SocketAddress SocketAddress::withPort(uint16_t p) const {
  SocketAddress a = *this;
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = htons(p);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = htons(p);
  return a;
}

std::string SocketAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port());
  }
  return "<unspecified address>";
}

std::vector<std::string> EngineFeatures::missing() const {
  std::vector<std::string> out;
  if (!single_issuer) out.emplace_back("IORING_SETUP_SINGLE_ISSUER");
  if (!defer_taskrun) out.emplace_back("IORING_SETUP_DEFER_TASKRUN");
  if (!multishot_accept) out.emplace_back("multishot accept");
  if (!multishot_recv) out.emplace_back("multishot recv");
  if (!multishot_recv_cap) out.emplace_back("multishot recv byte cap");
  return out;
}

Result<UniqueFd> makeReusePortListener(const SocketAddress& addr, int backlog) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("socket for listener " + addr.toString());
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    return Error::sys("setting SO_REUSEPORT on listener " + addr.toString());
  if (::bind(fd.get(), addr.get(), addr.len) < 0)
    return Error::sys("binding listener " + addr.toString() + " (is another process using the port?)");
  if (::listen(fd.get(), backlog) < 0) return Error::sys("listen on " + addr.toString());
  return fd;
}

Result<SocketAddress> localAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return Error::sys("getsockname");
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace nodemesh::proxy
