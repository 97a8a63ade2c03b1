// Idle-connection helper for bench/mesh/idle_conns.sh: a bounded echo server
// and a client that opens many connections in steps and then holds them idle.
//
//   idle_conns server --port P --max N --duration S
//       accepts up to N connections on 0.0.0.0:P, echoes what it reads, closes
//       on EOF; exits after S seconds. Prints "accepted=.. open=.." once a second.
//   idle_conns client --target IP:PORT --count N --steps K --pause S --hold S
//       opens N connections in K equal steps; on each, once connected, sends
//       one byte and waits for its echo (so the whole proxied path exists end
//       to end, and every proxy on it has moved one byte each way). After each
//       step it prints "step=k open=.. failed=.." and sleeps --pause seconds
//       (the script measures the proxies then); after the last step it holds
//       the connections --hold seconds, prints "holding-done", closes them all.
//       At most 256 connects in flight; a step that takes over 60 s fails.
// Exit status 0 when every connection was echoed; 1 otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "idle_conns: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

int server(int port, int max, int duration) {
  int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  int one = 1;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(std::uint16_t(port));
  if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) die("bind");
  if (::listen(ls, 4096) < 0) die("listen");
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = ls;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  long accepted = 0, open = 0;
  const auto t0 = Clock::now();
  auto last = t0;
  std::vector<epoll_event> evs(512);
  char buf[4096];
  while (secs(t0) < duration) {
    int n = ::epoll_wait(ep, evs.data(), int(evs.size()), 200);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        for (;;) {
          if (open >= max) break;
          int c = ::accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ++accepted;
          ++open;
          epoll_event ce{};
          ce.events = EPOLLIN | EPOLLRDHUP;
          ce.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        (void)!::write(fd, buf, size_t(r));  // one byte: fits in the send buffer
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fd);
        --open;
      }
    }
    if (secs(last) >= 1.0) {
      last = Clock::now();
      std::printf("accepted=%ld open=%ld\n", accepted, open);
      std::fflush(stdout);
    }
  }
  std::printf("accepted=%ld open=%ld exit\n", accepted, open);
  return 0;
}

struct Conn {
  int fd = -1;
  enum : std::uint8_t { kConnecting, kWaitEcho, kIdle, kFailed } st = kConnecting;
};

int client(const std::string& target, int count, int steps, int pause, int hold) {
  auto colon = target.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "--target IP:PORT\n");
    return 2;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(std::uint16_t(std::atoi(target.c_str() + colon + 1)));
  if (::inet_pton(AF_INET, target.substr(0, colon).c_str(), &to.sin_addr) != 1) {
    std::fprintf(stderr, "bad address %s\n", target.c_str());
    return 2;
  }
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<std::size_t>(count));
  std::vector<epoll_event> evs(512);
  long ok = 0, failed = 0;
  int opened = 0;
  for (int step = 1; step <= steps; ++step) {
    const int upto = int(long(count) * step / steps);
    const auto t0 = Clock::now();
    int inflight = 0;
    while ((opened < upto || inflight > 0) && secs(t0) < 60) {
      while (opened < upto && inflight < 256) {
        Conn& c = conns[size_t(opened)];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) die("socket (raise ulimit -n?)");
        int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
        if (rc < 0 && errno != EINPROGRESS) {
          c.st = Conn::kFailed;
          ::close(c.fd);
          c.fd = -1;
          ++failed;
          ++opened;
          continue;
        }
        epoll_event e{};
        e.events = EPOLLOUT | EPOLLIN;
        e.data.u32 = std::uint32_t(opened);
        ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &e);
        ++opened;
        ++inflight;
      }
      int n = ::epoll_wait(ep, evs.data(), int(evs.size()), 100);
      for (int i = 0; i < n; ++i) {
        Conn& c = conns[evs[i].data.u32];
        auto fail = [&] {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          ::close(c.fd);
          c.fd = -1;
          c.st = Conn::kFailed;
          ++failed;
          --inflight;
        };
        if (c.st == Conn::kConnecting) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0 || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
            fail();
            continue;
          }
          if (::write(c.fd, "x", 1) != 1) {
            fail();
            continue;
          }
          c.st = Conn::kWaitEcho;
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.u32 = evs[i].data.u32;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &e);
        } else if (c.st == Conn::kWaitEcho) {
          char b[16];
          ssize_t r = ::read(c.fd, b, sizeof b);
          if (r == 1 && b[0] == 'x') {
            c.st = Conn::kIdle;
            ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);  // idle from now on: nobody watches it
            ++ok;
            --inflight;
          } else if (r < 0 && errno == EAGAIN) {
            continue;
          } else {
            fail();
          }
        }
      }
    }
    if (inflight > 0) {
      std::printf("step=%d timeout inflight=%d\n", step, inflight);
      std::fflush(stdout);
      failed += inflight;
    }
    std::printf("step=%d open=%ld failed=%ld seconds=%.2f\n", step, ok, failed, secs(t0));
    std::fflush(stdout);
    if (inflight > 0) break;
    std::this_thread::sleep_for(std::chrono::seconds(step < steps ? pause : hold));
  }
  // Every connection still idle must still be open: a peek sees no EOF.
  long alive = 0;
  for (auto& c : conns) {
    if (c.st != Conn::kIdle) continue;
    char b;
    ssize_t r = ::recv(c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && errno == EAGAIN) ++alive;
  }
  std::printf("holding-done alive=%ld\n", alive);
  std::fflush(stdout);
  for (auto& c : conns)
    if (c.fd >= 0) ::close(c.fd);
  return (failed == 0 && alive == count) ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: idle_conns server|client [options]\n");
    return 2;
  }
  std::string mode = argv[1], target;
  int port = 9000, max = 20000, duration = 300, count = 1000, steps = 4, pause = 3, hold = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--port") port = std::atoi(v);
    else if (k == "--max") max = std::atoi(v);
    else if (k == "--duration") duration = std::atoi(v);
    else if (k == "--target") target = v;
    else if (k == "--count") count = std::atoi(v);
    else if (k == "--steps") steps = std::atoi(v);
    else if (k == "--pause") pause = std::atoi(v);
    else if (k == "--hold") hold = std::atoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (count < 1 || count > 20000 || steps < 1 || steps > count || duration < 1 || duration > 3600 || pause < 0 ||
      pause > 60 || hold < 0 || hold > 300) {
    std::fprintf(stderr, "idle_conns: option out of range\n");
    return 2;
  }
  if (mode == "server") return server(port, max, duration);
  if (mode == "client") return client(target, count, steps, pause, hold);
  std::fprintf(stderr, "mode: server or client\n");
  return 2;
}
