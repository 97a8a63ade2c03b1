// Ping-pong latency over one TCP connection (TCP_NODELAY on both ends):
// the client writes SIZE bytes, the server echoes them, the client waits for
// all of them before the next round. Prints round-trip percentiles.
//
//   pingpong server ADDR PORT             serves until killed (a process per connection)
//   pingpong client ADDR PORT SIZE SECS   one connection, at most SECS seconds
//                                         and 5,000,000 round trips
// Output (client): "size=64 rounds=123456 p50_us=11.2 p90_us=12.0 p99_us=19.8 rps=80000"
// Standalone on purpose (no project libraries): bench/redirect/run.sh builds it with g++.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kMaxSize = 1 << 20;
constexpr std::size_t kMaxRounds = 5'000'000;
constexpr int kWarmupRounds = 2000;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "pingpong: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

sockaddr_storage parse(const char* ip, int port, socklen_t& len) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET, v4->sin_port = htons(port), len = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6, v6->sin6_port = htons(port), len = sizeof *v6;
  } else {
    std::fprintf(stderr, "pingpong: bad address %s\n", ip);
    std::exit(2);
  }
  return ss;
}

void noDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool readAll(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r, n -= r;
  }
  return true;
}

bool writeAll(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    p += r, n -= r;
  }
  return true;
}

int serve(const char* ip, int port) {
  socklen_t len;
  sockaddr_storage ss = parse(ip, port, len);
  int lfd = ::socket(ss.ss_family, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(lfd, 64) != 0) die("bind/listen");
  ::signal(SIGCHLD, SIG_IGN);  // children reaped by the kernel
  while (true) {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) continue;
    if (::fork() == 0) {
      ::close(lfd);
      noDelay(c);
      std::uint32_t size = 0;
      if (!readAll(c, reinterpret_cast<char*>(&size), sizeof size) || size == 0 || size > kMaxSize) ::_exit(1);
      std::vector<char> buf(size);
      while (readAll(c, buf.data(), size) && writeAll(c, buf.data(), size)) {
      }
      ::_exit(0);
    }
    ::close(c);
  }
}

int client(const char* ip, int port, std::uint32_t size, int secs) {
  if (size == 0 || size > kMaxSize || secs <= 0 || secs > 600) {
    std::fprintf(stderr, "pingpong: size 1..%zu, secs 1..600\n", kMaxSize);
    return 2;
  }
  socklen_t len;
  sockaddr_storage ss = parse(ip, port, len);
  int fd = ::socket(ss.ss_family, SOCK_STREAM, 0);
  timeval tv{10, 0};  // a stuck peer ends the run instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) die("connect");
  noDelay(fd);
  if (!writeAll(fd, reinterpret_cast<const char*>(&size), sizeof size)) die("send size");
  std::vector<char> out(size, 'x'), in(size);
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < kWarmupRounds; ++i)
    if (!writeAll(fd, out.data(), size) || !readAll(fd, in.data(), size)) die("warm-up round");
  std::vector<float> us;
  us.reserve(1 << 20);
  const auto start = Clock::now(), end = start + std::chrono::seconds(secs);
  auto t = start;
  while (t < end && us.size() < kMaxRounds) {
    if (!writeAll(fd, out.data(), size) || !readAll(fd, in.data(), size)) die("round trip");
    auto now = Clock::now();
    us.push_back(std::chrono::duration<float, std::micro>(now - t).count());
    t = now;
  }
  ::close(fd);
  const double elapsed = std::chrono::duration<double>(t - start).count();
  std::sort(us.begin(), us.end());
  auto pct = [&](double q) { return us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))]; };
  std::printf("size=%u rounds=%zu p50_us=%.2f p90_us=%.2f p99_us=%.2f rps=%.0f\n", size, us.size(), pct(0.50),
              pct(0.90), pct(0.99), us.size() / elapsed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "server") return serve(argv[2], std::atoi(argv[3]));
  if (argc == 6 && std::string(argv[1]) == "client")
    return client(argv[2], std::atoi(argv[3]), static_cast<std::uint32_t>(std::atoi(argv[4])), std::atoi(argv[5]));
  std::fprintf(stderr, "usage: pingpong server ADDR PORT | pingpong client ADDR PORT SIZE SECS\n");
  return 2;
}
