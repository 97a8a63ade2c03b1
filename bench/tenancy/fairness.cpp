// Noisy neighbour: does one tenant's bulk traffic starve another tenant's
// small requests when both go through the same shared proxy worker?
//
// Two namespaces on one proxy: "quiet" makes sequential 64-byte echo round
// trips (one connection, one every --gap-us), "noisy" uploads as fast as it
// can over --noisy-conns connections to a discard backend. Phase 1: quiet
// alone; phase 2: quiet with noisy. Reported: the quiet tenant's round-trip
// latency in each phase (p50/p99/p99.9, µs) and the noisy tenant's
// throughput, one line per phase.
//
// --proxy nodemesh: starts a MeshProxy in this process (1 worker, the
//   same-node path: no TLS) with a capture lookup keyed by the client's
//   source address (127.0.3.1 quiet, 127.0.3.2 noisy), as the BPF hook would
//   record them.
// --proxy external --quiet-target IP:PORT --noisy-target IP:PORT: the same
//   load through another proxy (bench/tenancy/run.sh starts haproxy with one
//   thread in TCP mode), whose frontends forward to --echo-port /
//   --discard-port on 127.0.4.1 / 127.0.4.2 (the backends this program runs).
//
// Bounded: each phase lasts --duration seconds; every socket has a 5 s timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "identity/certificate_authority.h"
#include "identity/peer_verifier.h"
#include "proxy/mesh/mesh_proxy.h"

namespace {

using namespace nodemesh;
using namespace nodemesh::proxy;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string proxy = "nodemesh";
  std::string quietTarget, noisyTarget;
  std::uint16_t echoPort = 0, discardPort = 0;  // 0: the kernel picks
  int duration = 5;
  int noisyConns = 16;
  int gapUs = 1000;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fairness: %s\n", what.c_str());
  std::exit(1);
}

SocketAddress address(const std::string& ip, std::uint16_t port) {
  auto a = SocketAddress::parse(ip, port);
  if (!a) die(a.error().message);
  return a.value();
}

SocketAddress parseTarget(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) die("target must be IP:PORT, got " + text);
  return address(text.substr(0, colon), static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 1)));
}

void setTimeouts(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

UniqueFd dial(const std::string& sourceIp, const SocketAddress& to) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  SocketAddress src = address(sourceIp, 0);
  if (::bind(fd.get(), src.get(), src.len) != 0) die("bind " + sourceIp + ": " + std::strerror(errno));
  if (::connect(fd.get(), to.get(), to.len) != 0) die("connect " + to.toString() + ": " + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setTimeouts(fd.get());
  return fd;
}

// A backend: accepts on ip:port and runs handler(fd) on a thread per connection.
class Backend {
 public:
  Backend(const std::string& ip, std::uint16_t port, void (*handler)(int, std::atomic<std::uint64_t>&))
      : handler_(handler) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    SocketAddress a = address(ip, port);
    if (::bind(listener_.get(), a.get(), a.len) != 0 || ::listen(listener_.get(), 128) != 0)
      die("backend " + a.toString() + ": " + std::strerror(errno));
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
    acceptor_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // shutdown() in the destructor
        setTimeouts(c);
        threads_.emplace_back([this, c] {
          handler_(c, bytes_);
          ::close(c);
        });
      }
    });
  }
  ~Backend() {
    ::shutdown(listener_.get(), SHUT_RDWR);
    acceptor_.join();
    for (auto& t : threads_) t.join();
  }
  std::uint16_t port() const { return port_; }
  std::uint64_t bytes() const { return bytes_.load(); }

 private:
  void (*handler_)(int, std::atomic<std::uint64_t>&);
  UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> bytes_{0};
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

void echo(int fd, std::atomic<std::uint64_t>&) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || ::send(fd, buf, size_t(n), MSG_NOSIGNAL) != n) return;
  }
}

void discard(int fd, std::atomic<std::uint64_t>& bytes) {
  std::vector<char> buf(256 * 1024);
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) return;
    bytes += std::uint64_t(n);
  }
}

struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
  std::size_t n = 0;
};

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, std::size_t(q * double(v.size())))]; };
  p.p50 = at(0.50), p.p99 = at(0.99), p.p999 = at(0.999), p.max = v.back();
  return p;
}

// Sequential 64-byte round trips until `end`, one every gapUs.
std::vector<double> quietRoundTrips(int fd, Clock::time_point end, int gapUs) {
  std::vector<double> us;
  char msg[64], back[64];
  std::memset(msg, 'q', sizeof msg);
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    if (::send(fd, msg, sizeof msg, MSG_NOSIGNAL) != ssize_t(sizeof msg)) die("quiet send failed");
    std::size_t got = 0;
    while (got < sizeof back) {
      ssize_t n = ::recv(fd, back + got, sizeof back - got, 0);
      if (n <= 0) die("quiet recv failed (timeout or close)");
      got += size_t(n);
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    std::this_thread::sleep_until(t0 + std::chrono::microseconds(gapUs));
  }
  return us;
}

struct Proxy {
  std::unique_ptr<mesh::MeshProxy> mesh;  // --proxy nodemesh
  SocketAddress quiet, noisy;             // where each tenant's clients connect
};

constexpr std::uint64_t kQuietCgroup = 101, kNoisyCgroup = 102;

Proxy startNodemesh(std::uint16_t echoPort, std::uint16_t discardPort) {
  const std::string td = "bench.local";
  auto ca = identity::CertificateAuthority::generateDevelopment(td);
  if (!ca) die(ca.error().message);
  auto verifier = identity::PeerVerifier::create(ca->trustBundle(), td);
  if (!verifier) die(verifier.error().message);

  state::Snapshot s;
  s.nodeName = "bench";
  s.mesh.trustDomain = td;
  for (const char* ns : {"quiet", "noisy"}) {
    state::Namespace n;
    n.name = ns;
    s.namespaces.push_back(n);
  }
  auto workload = [](const char* cgroup, const char* ns, const char* sa, const char* ip) {
    state::Workload w;
    w.cgroup = cgroup;
    w.ns = ns;
    w.serviceAccount = sa;
    if (ip != nullptr) w.addresses = {state::IpAddress::parse(ip).value()};
    return w;
  };
  s.workloads = {workload("/quiet/client", "quiet", "client", nullptr),
                 workload("/noisy/client", "noisy", "client", nullptr),
                 workload("/quiet/echo", "quiet", "echo", "127.0.4.1"),
                 workload("/noisy/sink", "noisy", "sink", "127.0.4.2")};
  auto service = [](const char* name, const char* ns, const char* vip, const char* backend, std::uint16_t port) {
    state::Service svc;
    svc.name = name;
    svc.ns = ns;
    svc.mode = state::ServiceMode::kMtls;
    svc.vips = {state::IpAddress::parse(vip).value()};
    svc.ports = {{"", 80, state::Protocol::kTcp, port}};
    svc.endpoints = {{state::IpAddress::parse(backend).value(), std::nullopt, 1, true, ""}};
    return svc;
  };
  s.services = {service("echo", "quiet", "10.96.0.20", "127.0.4.1", echoPort),
                service("sink", "noisy", "10.96.0.21", "127.0.4.2", discardPort)};
  auto resolver = [](const std::string& path) -> std::optional<std::uint64_t> {
    if (path == "/quiet/client") return kQuietCgroup;
    if (path == "/noisy/client") return kNoisyCgroup;
    return std::nullopt;
  };
  auto table = mesh::buildMeshTable(s, resolver);
  if (!table) die(table.error().message);

  // What the connect hook would have recorded: the tenant is told by the
  // client's source address.
  const SocketAddress quietVip = address("10.96.0.20", 80), noisyVip = address("10.96.0.21", 80);
  mesh::CaptureLookup capture = [=](const SocketAddress& client) -> Result<mesh::CaptureRecord> {
    const std::string ip = client.toString().substr(0, client.toString().rfind(':'));
    if (ip == "127.0.3.1") return mesh::CaptureRecord{quietVip, kQuietCgroup};
    if (ip == "127.0.3.2") return mesh::CaptureRecord{noisyVip, kNoisyCgroup};
    return Error{"not a bench client: " + client.toString()};
  };
  mesh::IdentityProvider identity;
  identity.workloadCertificate = [](const identity::SpiffeId&) { return nullptr; };
  identity.nodeCertificate = [] { return nullptr; };
  identity.verifier = verifier.value();

  mesh::MeshProxyOptions o;
  o.workers = 1;  // both tenants on the one worker: the case fairness is about
  o.outbound = {address("127.0.0.1", 0)};
  auto p = mesh::MeshProxy::start(o, capture, identity, table.value());
  if (!p) die(p.error().message);
  Proxy out;
  out.quiet = out.noisy = p.value()->outboundAddresses().at(0);
  out.mesh = std::move(p).value();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--proxy") o.proxy = next();
    else if (a == "--quiet-target") o.quietTarget = next();
    else if (a == "--noisy-target") o.noisyTarget = next();
    else if (a == "--echo-port") o.echoPort = static_cast<std::uint16_t>(std::atoi(next().c_str()));
    else if (a == "--discard-port") o.discardPort = static_cast<std::uint16_t>(std::atoi(next().c_str()));
    else if (a == "--duration") o.duration = std::atoi(next().c_str());
    else if (a == "--noisy-conns") o.noisyConns = std::atoi(next().c_str());
    else if (a == "--gap-us") o.gapUs = std::atoi(next().c_str());
    else die("unknown option " + a + " (see the comment at the top of bench/tenancy/fairness.cpp)");
  }
  if (o.duration < 1 || o.duration > 60 || o.noisyConns < 1 || o.noisyConns > 256 || o.gapUs < 0)
    die("--duration 1..60, --noisy-conns 1..256, --gap-us >= 0");

  Backend echoBackend("127.0.4.1", o.echoPort, echo);
  Backend sinkBackend("127.0.4.2", o.discardPort, discard);
  Proxy proxy;
  if (o.proxy == "nodemesh") {
    proxy = startNodemesh(echoBackend.port(), sinkBackend.port());
  } else if (o.proxy == "external") {
    if (o.quietTarget.empty() || o.noisyTarget.empty()) die("--proxy external needs --quiet-target and --noisy-target");
    proxy.quiet = parseTarget(o.quietTarget);
    proxy.noisy = parseTarget(o.noisyTarget);
  } else {
    die("--proxy nodemesh|external");
  }

  UniqueFd quiet = dial("127.0.3.1", proxy.quiet);
  quietRoundTrips(quiet.get(), Clock::now() + std::chrono::milliseconds(300), o.gapUs);  // warm-up

  auto report = [&](const char* phase, const std::vector<double>& us, double noisyMBps) {
    const Percentiles p = percentiles(us);
    std::printf("proxy=%s phase=%s quiet_round_trips=%zu p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f "
                "noisy_MBps=%.0f\n",
                o.proxy.c_str(), phase, p.n, p.p50, p.p99, p.p999, p.max, noisyMBps);
    std::fflush(stdout);
  };
  report("alone", quietRoundTrips(quiet.get(), Clock::now() + std::chrono::seconds(o.duration), o.gapUs), 0);

  std::atomic<bool> stop{false};
  std::vector<std::thread> noisy;
  for (int i = 0; i < o.noisyConns; ++i) {
    noisy.emplace_back([&] {
      UniqueFd fd = dial("127.0.3.2", proxy.noisy);
      std::vector<char> chunk(64 * 1024, 'n');
      while (!stop.load())
        if (::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) return;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the bulk reaches its pace
  const std::uint64_t before = sinkBackend.bytes();
  const auto t0 = Clock::now();
  auto withNoise = quietRoundTrips(quiet.get(), Clock::now() + std::chrono::seconds(o.duration), o.gapUs);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mbps = double(sinkBackend.bytes() - before) / seconds / 1e6;
  stop = true;
  for (auto& t : noisy) t.join();
  report("noisy-neighbour", withNoise, mbps);
  quiet.reset();
  if (proxy.mesh) proxy.mesh->stop();
  return 0;
}
