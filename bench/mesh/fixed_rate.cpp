// Open-loop fixed-rate HTTP/1.1 keep-alive client for bench/mesh/run.sh.
//
// Requests are *scheduled* at a fixed rate (one every 1/rate s) whatever the
// server does; a request's latency runs from its scheduled time to the end of
// its response. So a stall of the server (or of the path to it) shows up as
// latency of every request that should have been sent during it, instead of
// silently lowering the rate (what a closed-loop client such as wrk, hey -q or
// h2load --rps does: "coordinated omission").
//
// A fixed pool of keep-alive connections carries the requests, at most one in
// flight per connection (no pipelining); a scheduled request waits for an idle
// connection, and that wait counts. Responses must carry Content-Length.
// Bounded: it stops scheduling after --duration seconds, waits at most
// --drain seconds for what is in flight, and exits.
//
// Output: one summary line on stdout
//   sent=N done=N errors=N late=N reconnects=N p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. rate=..
// and, with --latencies FILE, every measured latency in microseconds, one a
// line (for merging several clients' samples). Samples scheduled during the
// first --warmup seconds are not measured.
//
// Usage: fixed_rate --target IP:PORT --rate R --duration S [--warmup S]
//                   [--connections N] [--host H] [--path P] [--latencies FILE]
//                   [--drain S] [--connect-timeout S]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <string>
#include <vector>

namespace {

std::int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fixed_rate: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "fixed_rate: %s\nusage: fixed_rate --target IP:PORT --rate R --duration S [--warmup S] "
               "[--connections N] [--host H] [--path P] [--latencies FILE] [--drain S] [--connect-timeout S]\n",
               msg);
  std::exit(2);
}

struct Conn {
  int fd = -1;
  bool connected = false;
  bool busy = false;
  std::int64_t scheduled = 0;  // scheduled time of the request in flight
  bool measured = false;       // scheduled after the warm-up
  std::string in;
};

struct Options {
  sockaddr_in addr{};
  double rate = 0;
  double duration = 0;
  double warmup = 0;
  double drain = 3;
  double connectTimeout = 5;
  int connections = 4;
  std::string host = "bench";
  std::string path = "/";
  std::string latencies;
};

Options parse(int argc, char** argv) {
  Options o;
  bool haveTarget = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    if (a == "--target") {
      auto colon = v.rfind(':');
      if (colon == std::string::npos) usage("--target wants IP:PORT");
      o.addr.sin_family = AF_INET;
      o.addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(v.c_str() + colon + 1)));
      if (inet_pton(AF_INET, v.substr(0, colon).c_str(), &o.addr.sin_addr) != 1) usage("bad --target address");
      haveTarget = true;
    } else if (a == "--rate") {
      o.rate = std::atof(v.c_str());
    } else if (a == "--duration") {
      o.duration = std::atof(v.c_str());
    } else if (a == "--warmup") {
      o.warmup = std::atof(v.c_str());
    } else if (a == "--drain") {
      o.drain = std::atof(v.c_str());
    } else if (a == "--connect-timeout") {
      o.connectTimeout = std::atof(v.c_str());
    } else if (a == "--connections") {
      o.connections = std::atoi(v.c_str());
    } else if (a == "--host") {
      o.host = v;
    } else if (a == "--path") {
      o.path = v;
    } else if (a == "--latencies") {
      o.latencies = v;
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  if (!haveTarget) usage("--target is required");
  if (!(o.rate > 0 && o.rate <= 1e6)) usage("--rate must be in (0, 1e6]");
  if (!(o.duration > 0 && o.duration <= 600)) usage("--duration must be in (0, 600]");
  if (o.warmup < 0 || o.warmup > 600) usage("--warmup must be in [0, 600]");
  if (o.connections < 1 || o.connections > 1000) usage("--connections must be 1..1000");
  return o;
}

class Client {
 public:
  explicit Client(const Options& o) : o_(o), conns_(static_cast<size_t>(o.connections)) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die("epoll_create1");
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nUser-Agent: nodemesh-fixed-rate\r\n\r\n";
  }

  int run() {
    for (size_t i = 0; i < conns_.size(); ++i) open(i);
    // Wait until every connection is up (bounded), so that the first
    // requests do not also time the TCP handshake.
    const std::int64_t deadline = nowNs() + static_cast<std::int64_t>(o_.connectTimeout * 1e9);
    while (connectedCount() < conns_.size()) {
      if (nowNs() > deadline) {
        std::fprintf(stderr, "fixed_rate: only %zu of %zu connections up after %.1f s\n", connectedCount(),
                     conns_.size(), o_.connectTimeout);
        return 1;
      }
      poll(10'000'000);
    }

    const double intervalNs = 1e9 / o_.rate;
    const std::int64_t start = nowNs();
    const std::int64_t warmEnd = start + static_cast<std::int64_t>(o_.warmup * 1e9);
    const std::int64_t stop = warmEnd + static_cast<std::int64_t>(o_.duration * 1e9);
    std::uint64_t k = 0;  // next request index
    for (;;) {
      std::int64_t now = nowNs();
      for (;;) {
        std::int64_t t = start + static_cast<std::int64_t>(static_cast<double>(k) * intervalNs);
        if (t > now || t >= stop) break;
        queue_.push_back({t, t >= warmEnd});
        ++k;
        ++sent_;
      }
      dispatch();
      std::int64_t next = start + static_cast<std::int64_t>(static_cast<double>(k) * intervalNs);
      if (next >= stop) break;
      poll(std::max<std::int64_t>(0, next - nowNs()));
    }
    // Drain what is queued or in flight, bounded.
    const std::int64_t drainEnd = nowNs() + static_cast<std::int64_t>(o_.drain * 1e9);
    while ((!queue_.empty() || busyCount() > 0) && nowNs() < drainEnd) {
      dispatch();
      poll(1'000'000);
    }
    late_ = queue_.size() + busyCount();  // never answered within the drain time
    report(static_cast<double>(stop - warmEnd) / 1e9);
    return 0;
  }

 private:
  struct Pending {
    std::int64_t scheduled;
    bool measured;
  };

  size_t connectedCount() const {
    return static_cast<size_t>(std::count_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.connected; }));
  }
  size_t busyCount() const {
    return static_cast<size_t>(std::count_if(conns_.begin(), conns_.end(), [](const Conn& c) { return c.busy; }));
  }

  void open(size_t i) {
    Conn& c = conns_[i];
    c = Conn{};
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket");
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&o_.addr), sizeof o_.addr) < 0 && errno != EINPROGRESS)
      die("connect");
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u64 = i;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) die("epoll_ctl");
  }

  // A connection failed or was closed: count it, drop its request, reopen.
  void fail(size_t i, bool error) {
    Conn& c = conns_[i];
    if (c.busy || error) ++errors_;
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    if (++reconnects_ > 10'000) {
      std::fprintf(stderr, "fixed_rate: too many reconnects, giving up\n");
      std::exit(1);
    }
    open(i);
  }

  void dispatch() {
    for (size_t i = 0; i < conns_.size() && !queue_.empty(); ++i) {
      Conn& c = conns_[i];
      if (!c.connected || c.busy) continue;
      Pending p = queue_.front();
      queue_.pop_front();
      ssize_t n = send(c.fd, request_.data(), request_.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(request_.size())) {  // tiny request: a short write means trouble
        queue_.push_front(p);
        fail(i, true);
        continue;
      }
      c.busy = true;
      c.scheduled = p.scheduled;
      c.measured = p.measured;
    }
  }

  void poll(std::int64_t timeoutNs) {
    epoll_event evs[64];
    timespec ts{static_cast<time_t>(timeoutNs / 1'000'000'000), static_cast<long>(timeoutNs % 1'000'000'000)};
    int n = epoll_pwait2(ep_, evs, 64, &ts, nullptr);
    if (n < 0) {
      if (errno == EINTR) return;
      die("epoll_pwait2");
    }
    for (int e = 0; e < n; ++e) {
      size_t i = evs[e].data.u64;
      Conn& c = conns_[i];
      if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (evs[e].events & (EPOLLERR | EPOLLHUP))) {
          ++connectErrors_;
          if (connectErrors_ > 1000) {
            std::fprintf(stderr, "fixed_rate: connect keeps failing: %s\n", std::strerror(err));
            std::exit(1);
          }
          fail(i, false);
          continue;
        }
        c.connected = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.u64 = i;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        continue;
      }
      if (evs[e].events & EPOLLIN) readable(i);
      else if (evs[e].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) fail(i, c.busy);
    }
  }

  void readable(size_t i) {
    Conn& c = conns_[i];
    char buf[16384];
    for (;;) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {  // peer closed
        consume(i);
        fail(i, conns_[i].busy);
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      fail(i, true);
      return;
    }
    consume(i);
  }

  // Complete the response in c.in, if there is a whole one.
  void consume(size_t i) {
    Conn& c = conns_[i];
    if (!c.busy) {
      c.in.clear();
      return;
    }
    auto hdrEnd = c.in.find("\r\n\r\n");
    if (hdrEnd == std::string::npos) return;
    std::string head = c.in.substr(0, hdrEnd);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    auto cl = lower.find("\r\ncontent-length:");
    if (cl == std::string::npos) {
      std::fprintf(stderr, "fixed_rate: response without Content-Length\n");
      std::exit(1);
    }
    size_t bodyLen = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    if (c.in.size() < hdrEnd + 4 + bodyLen) return;
    bool ok = head.compare(0, 12, "HTTP/1.1 200") == 0;
    std::int64_t lat = nowNs() - c.scheduled;
    c.in.erase(0, hdrEnd + 4 + bodyLen);
    c.busy = false;
    ++done_;
    if (!ok) ++non2xx_;
    if (c.measured) samples_.push_back(lat / 1000);
  }

  void report(double measuredSeconds) {
    std::sort(samples_.begin(), samples_.end());
    auto pct = [&](double p) -> long long {
      if (samples_.empty()) return -1;
      size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples_.size())));
      idx = std::clamp<size_t>(idx, 1, samples_.size());
      return samples_[idx - 1];
    };
    std::printf(
        "sent=%llu done=%llu measured=%zu errors=%llu non2xx=%llu late=%zu reconnects=%llu p50_us=%lld p90_us=%lld "
        "p99_us=%lld p999_us=%lld max_us=%lld rate=%.1f\n",
        static_cast<unsigned long long>(sent_), static_cast<unsigned long long>(done_), samples_.size(),
        static_cast<unsigned long long>(errors_), static_cast<unsigned long long>(non2xx_), late_,
        static_cast<unsigned long long>(reconnects_), pct(50), pct(90), pct(99), pct(99.9),
        samples_.empty() ? -1LL : static_cast<long long>(samples_.back()),
        static_cast<double>(samples_.size()) / measuredSeconds);
    if (!o_.latencies.empty()) {
      FILE* f = std::fopen(o_.latencies.c_str(), "w");
      if (!f) die("open --latencies file");
      for (auto v : samples_) std::fprintf(f, "%lld\n", static_cast<long long>(v));
      std::fclose(f);
    }
  }

  const Options& o_;
  int ep_ = -1;
  std::string request_;
  std::vector<Conn> conns_;
  std::deque<Pending> queue_;
  std::vector<std::int64_t> samples_;
  std::uint64_t sent_ = 0, done_ = 0, errors_ = 0, non2xx_ = 0, reconnects_ = 0, connectErrors_ = 0;
  size_t late_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  Client c(o);
  return c.run();
}
