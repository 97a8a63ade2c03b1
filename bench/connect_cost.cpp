// connect_cost: what a connect() costs, measured in isolation, so the price
// of the socket-LB hook is not drowned by HTTP and scheduler noise.
//   connect_cost serve PORT              accept and close connections on 127.0.0.1:PORT
//   connect_cost dial IP PORT COUNT      COUNT x (socket, connect, close); prints
//                                        "connects=N p50_ns=.. p90_ns=.. p99_ns=.. mean_ns=.."
// Bounded by COUNT; loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

namespace {

int serve(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("connect_cost serve");
    return 1;
  }
  while (true) {
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) ::close(c);
  }
}

int dial(const char* ip, int port, long count) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return 2;
  std::vector<long> ns;
  ns.reserve(count);
  long failures = 0;
  for (long i = 0; i < count; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    // RST on close: no TIME_WAIT pile-up, so every iteration costs the same.
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    auto t0 = std::chrono::steady_clock::now();
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    auto t1 = std::chrono::steady_clock::now();
    ::close(fd);
    if (rc != 0) {
      ++failures;
      continue;
    }
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  if (ns.empty()) {
    std::printf("connects=0 failures=%ld\n", failures);
    return 1;
  }
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double p) { return ns[static_cast<std::size_t>(p * (ns.size() - 1))]; };
  const double mean = std::accumulate(ns.begin(), ns.end(), 0.0) / ns.size();
  std::printf("connects=%zu failures=%ld p50_ns=%ld p90_ns=%ld p99_ns=%ld mean_ns=%.0f\n", ns.size(), failures, pct(0.5),
              pct(0.9), pct(0.99), mean);
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "serve") == 0) return serve(std::atoi(argv[2]));
  if (argc == 5 && std::strcmp(argv[1], "dial") == 0) return dial(argv[2], std::atoi(argv[3]), std::atol(argv[4]));
  std::fprintf(stderr, "usage: connect_cost serve PORT | dial IP PORT COUNT\n");
  return 2;
}
