// nodemesh-demo-backend: the tiny servers behind the example topology.
//   serve NAME tcp:PORT|udp:PORT ...   answer HTTP requests (or datagrams)
//                                      with "NAME (port PORT)"
//   ask-udp IP PORT                    send one datagram, print the reply and
//                                      the address it came from
// Deliberately simple (a thread per listener, blocking I/O): it exists so
// the demo needs nothing but this repository.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int bindLoopback(int type, int port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::fprintf(stderr, "demo-backend: cannot bind 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    std::exit(1);
  }
  if (type == SOCK_STREAM) ::listen(fd, 128);
  return fd;
}

void serveTcp(const std::string& name, int port) {
  int fd = bindLoopback(SOCK_STREAM, port);
  const std::string body = name + " (port " + std::to_string(port) + ")\n";
  const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  while (true) {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    pollfd p{c, POLLIN, 0};
    char buf[2048];
    if (::poll(&p, 1, 2000) > 0 && ::recv(c, buf, sizeof buf, 0) > 0)
      ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    ::close(c);
  }
}

void serveUdp(const std::string& name, int port) {
  int fd = bindLoopback(SOCK_DGRAM, port);
  const std::string reply = name + " (port " + std::to_string(port) + ")\n";
  char buf[512];
  while (true) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) >= 0)
      ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
  }
}

int askUdp(const char* ip, int port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return 2;
  if (::sendto(fd, "?", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 1) {
    std::printf("send failed: %s\n", std::strerror(errno));
    return 1;
  }
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) {
    std::printf("no reply\n");
    return 1;
  }
  char buf[512];
  sockaddr_in from{};
  socklen_t len = sizeof from;
  ssize_t n = ::recvfrom(fd, buf, sizeof buf - 1, 0, reinterpret_cast<sockaddr*>(&from), &len);
  buf[n > 0 ? n : 0] = '\0';
  char addr[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from.sin_addr, addr, sizeof addr);
  std::printf("reply from %s:%d: %s", addr, ntohs(from.sin_port), buf);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "ask-udp") return askUdp(argv[2], std::atoi(argv[3]));
  if (argc < 4 || std::string(argv[1]) != "serve") {
    std::fprintf(stderr, "usage: %s serve NAME tcp:PORT|udp:PORT ...\n       %s ask-udp IP PORT\n", argv[0], argv[0]);
    return 2;
  }
  std::vector<std::thread> threads;
  for (int i = 3; i < argc; ++i) {
    std::string spec = argv[i];
    const int port = std::atoi(spec.c_str() + 4);
    if (spec.rfind("tcp:", 0) == 0)
      threads.emplace_back(serveTcp, std::string(argv[2]), port);
    else if (spec.rfind("udp:", 0) == 0)
      threads.emplace_back(serveUdp, std::string(argv[2]), port);
  }
  for (auto& t : threads) t.join();
}
