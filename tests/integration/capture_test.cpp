// Mesh capture and inbound STRICT in the kernel: the datapath library
// driven with constructed snapshots, a real cgroup, real sockets and network
// namespaces the tests create. A fake proxy listens on the outbound port and
// does what the real one will: accept, then look the capture record up.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/system_paths.h"
#include "datapath/desired_state.h"
#include "datapath/socket_lb.h"
#include "datapath/sync_plan.h"
#include "kernel_env.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace nodemesh::testing {
namespace {

using datapath::SocketLb;

// Not the default 15001, so a real agent on this machine never clashes.
constexpr std::uint16_t kOutboundPort = 25001;

state::IpAddress ip(const char* text) { return *state::IpAddress::parse(text); }

bool sockaddrOf(const std::string& address, std::uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  ss = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
    return true;
  }
  return false;
}

std::string text(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
}

// Client side (inside runInCgroup): connect, read the first line, and say
// what getpeername() showed: "<line> <peer>", or "ERR <errno name>".
std::string dial(const std::string& address, std::uint16_t port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!sockaddrOf(address, port, ss, len)) return "ERR badaddr";
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::string e = std::string("ERR ") + strerrorname_np(errno);
    ::close(fd);
    return e;
  }
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen);
  std::string line;
  char c;
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 5000) > 0 && ::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
  ::close(fd);
  return (line.empty() ? "ERR empty" : line) + " " + text(peer);
}

// A non-blocking connect from a chosen source address: "ok", "timeout" (the
// SYN went unanswered) or "ERR <errno name>".
// destOptions (IPv6): every packet, the SYN included, carries a
// destination-options extension header (8 bytes of padding) before TCP.
std::string connectFrom(const std::string& source, const std::string& dest, std::uint16_t port, int timeoutMs,
                        bool destOptions = false) {
  sockaddr_storage src, dst;
  socklen_t slen, dlen;
  if (!sockaddrOf(source, 0, src, slen) || !sockaddrOf(dest, port, dst, dlen)) return "ERR badaddr";
  int fd = ::socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  std::string out;
  const std::uint8_t padOptions[8] = {0, 0, 1 /* PadN */, 4, 0, 0, 0, 0};  // next header: filled by the kernel
  if (destOptions && ::setsockopt(fd, IPPROTO_IPV6, IPV6_DSTOPTS, padOptions, sizeof padOptions) != 0) {
    out = std::string("ERR IPV6_DSTOPTS ") + strerrorname_np(errno);
  } else if (::bind(fd, reinterpret_cast<sockaddr*>(&src), slen) != 0) {
    out = std::string("ERR bind ") + strerrorname_np(errno);
  } else if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), dlen) == 0) {
    out = "ok";
  } else if (errno != EINPROGRESS) {
    out = std::string("ERR ") + strerrorname_np(errno);
  } else {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeoutMs) <= 0) {
      out = "timeout";
    } else {
      int err = 0;
      socklen_t elen = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
      out = err ? std::string("ERR ") + strerrorname_np(err) : "ok";
    }
  }
  ::close(fd);
  return out;
}

// Runs fn on a thread that first enters ns (so the caller's netns is untouched).
std::string inNetns(const TestNetns& ns, const std::function<std::string()>& fn) {
  std::string out;
  std::thread t([&] { out = ns.enter() ? fn() : "ERROR: setns " + ns.name(); });
  t.join();
  return out;
}

// What the node proxy will do per accepted connection: look the capture up
// at once (the kernel promises the record exists by then), then again (it
// must be gone: lookups consume). Answers "proxy\n" and closes.
class FakeProxy {
 public:
  struct Accepted {
    std::string peer;
    std::string record;  // CaptureRecord::toString(), or "ERR <message>"
    bool secondLookupEmpty = false;
  };

  FakeProxy(std::shared_ptr<datapath::CaptureTable> table, const std::string& address, std::uint16_t port,
            const TestNetns* ns = nullptr)
      : table_(std::move(table)) {
    std::promise<std::string> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, address, port, ns, &ready] {
      if (ns && !ns->enter()) return ready.set_value("setns " + ns->name());
      sockaddr_storage ss;
      socklen_t len;
      sockaddrOf(address, port, ss, len);
      fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (ss.ss_family == AF_INET6) ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 1024) != 0)
        return ready.set_value(std::string("listen ") + address + ": " + strerrorname_np(errno));
      socklen_t clen = sizeof cookie_;
      ::getsockopt(fd_, SOL_SOCKET, SO_NETNS_COOKIE, &cookie_, &clen);
      ready.set_value("");
      serve();
    });
    error_ = started.get();
  }
  ~FakeProxy() {
    stop_ = true;
    thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& error() const { return error_; }
  std::uint64_t netnsCookie() const { return cookie_; }
  std::vector<Accepted> accepted() {
    std::lock_guard lock(mu_);
    return accepted_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int c = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (c < 0) continue;
      Accepted a;
      a.peer = text(peer);
      auto rec = table_->lookup(reinterpret_cast<sockaddr*>(&peer), len);
      a.record = rec ? rec->toString() : "ERR " + rec.error().message;
      auto again = table_->lookup(reinterpret_cast<sockaddr*>(&peer), len);
      a.secondLookupEmpty = !again && again.error().code == ENOENT;
      {
        std::lock_guard lock(mu_);  // before answering: the client's return means it is recorded
        accepted_.push_back(std::move(a));
      }
      ::send(c, "proxy\n", 6, MSG_NOSIGNAL);
      ::close(c);
    }
  }

  std::shared_ptr<datapath::CaptureTable> table_;
  int fd_ = -1;
  std::uint64_t cookie_ = 0;
  std::string error_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Accepted> accepted_;
  std::thread thread_;
};

state::Workload workload(const std::string& cgroup, bool meshed,
                         state::InboundMode inbound = state::InboundMode::kPermissive) {
  state::Workload w;
  w.cgroup = cgroup;
  w.ns = "test";
  w.serviceAccount = "default";
  w.meshed = meshed;
  w.inbound = inbound;
  return w;
}

state::Service service(const std::string& name, const char* vip, std::uint16_t port, state::ServiceMode mode,
                       std::uint16_t backendPort, const char* backend = "127.0.0.1") {
  state::Service s;
  s.name = name;
  s.ns = "test";
  s.vips = {ip(vip)};
  s.ports = {{"", port, state::Protocol::kTcp, backendPort}};
  s.mode = mode;
  state::Endpoint ep;
  ep.address = ip(backend);
  ep.port = backendPort;
  s.endpoints = {ep};
  return s;
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NM_REQUIRE_ROOT();
    auto mount = discoverCgroup2Mount();
    ASSERT_TRUE(mount) << mount.error().message;
    mount_ = *mount;
    ASSERT_TRUE(ensureBpffs("/sys/fs/bpf"));
    static int counter = 0;
    pinRoot_ = "/sys/fs/bpf/nodemesh-captest-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    cg_ = std::make_unique<TestCgroup>();
    meshed_ = cg_->child("meshed");
    plain_ = cg_->child("plain");
    load();
  }
  void TearDown() override {
    lb_.reset();
    if (!pinRoot_.empty()) {
      EXPECT_TRUE(SocketLb::removePins(pinRoot_));
    }
    cg_.reset();
  }

  // Loads (or, a second time, re-loads and adopts, as a restarted agent does).
  void load() {
    lb_.reset();
    auto lb = SocketLb::load(pinRoot_);
    ASSERT_TRUE(lb) << lb.error().message;
    lb_ = std::move(*lb);
    auto st = lb_->attach(cg_->absolute(), cg_->relative());
    ASSERT_TRUE(st) << st.error().message;
  }

  state::Snapshot snapshot() const {
    state::Snapshot s;
    s.source = "capture test";
    s.nodeName = "test-node";
    s.servedCgroup = cg_->relative();
    s.mesh.outboundPort = kOutboundPort;
    s.workloads = {workload(cg_->relativeChild("meshed"), true), workload(cg_->relativeChild("plain"), false)};
    return s;
  }

  // What the daemon does per snapshot: mesh maps first, then services.
  datapath::MeshPlan sync(const state::Snapshot& s, datapath::SyncPlan* servicePlan = nullptr) {
    auto mesh = lb_->syncMesh(s, mount_);
    EXPECT_TRUE(mesh) << mesh.error().message;
    auto desired = datapath::desiredFromSnapshot(s);
    EXPECT_TRUE(desired) << desired.error().message;
    auto installed = lb_->readInstalled();
    EXPECT_TRUE(installed) << installed.error().message;
    auto plan = datapath::planSync(*installed, *desired);
    EXPECT_TRUE(plan) << plan.error().message;
    auto st = lb_->apply(*plan);
    EXPECT_TRUE(st) << st.error().message;
    if (servicePlan) *servicePlan = *plan;
    return mesh ? *mesh : datapath::MeshPlan{};
  }

  std::uint64_t idOf(const std::string& absolute) const { return datapath::cgroupIdOf(absolute).value_or(0); }

  std::uint64_t workloadCounter(std::uint64_t cgroupId, bool drops) {
    auto stats = lb_->readWorkloadStats();
    EXPECT_TRUE(stats) << stats.error().message;
    if (!stats) return 0;
    for (const auto& w : *stats)
      if (w.cgroupId == cgroupId) return drops ? w.strictDrops : w.captured;
    return 0;
  }

  std::string mount_, pinRoot_, meshed_, plain_;
  std::unique_ptr<TestCgroup> cg_;
  std::unique_ptr<SocketLb> lb_;
};

TEST_F(CaptureTest, MeshedClientOfAnMtlsServiceLandsOnTheProxyWhichLearnsTheVipOnce) {
  TcpBackend real("real");
  FakeProxy proxy(lb_->captureTable(), "127.0.0.1", kOutboundPort);
  ASSERT_EQ(proxy.error(), "");
  auto s = snapshot();
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port())};
  sync(s);

  EXPECT_EQ(runInCgroup(meshed_, [] { return dial("127.96.1.10", 80); }), "proxy 127.96.1.10:80");
  auto got = proxy.accepted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].peer.rfind("127.0.0.1:", 0), 0u) << got[0].peer;
  EXPECT_EQ(got[0].record, "127.96.1.10:80 cgroup " + std::to_string(idOf(meshed_)));
  EXPECT_TRUE(got[0].secondLookupEmpty) << "a record must be consumed by its lookup";

  // Counted per service and per workload; the L4 counter did not move.
  auto installed = lb_->readInstalled();
  ASSERT_TRUE(installed);
  auto stats = lb_->readStats(*installed);
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ(stats->begin()->second.captured, 1u);
  EXPECT_EQ(stats->begin()->second.connections, 0u);
  EXPECT_EQ(workloadCounter(idOf(meshed_), false), 1u);
}

TEST_F(CaptureTest, NonMeshedClientOfAnMtlsServiceGetsARealBackend) {
  TcpBackend real("real");
  FakeProxy proxy(lb_->captureTable(), "127.0.0.1", kOutboundPort);
  ASSERT_EQ(proxy.error(), "");
  auto s = snapshot();
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port())};
  sync(s);
  EXPECT_EQ(runInCgroup(plain_, [] { return dial("127.96.1.10", 80); }), "real 127.96.1.10:80");
  // A cgroup not listed at all (the served cgroup's "client") is not meshed either.
  EXPECT_EQ(runInCgroup(cg_->clientPath(), [] { return dial("127.96.1.10", 80); }), "real 127.96.1.10:80");
  EXPECT_TRUE(proxy.accepted().empty());
}

TEST_F(CaptureTest, L4ServiceFromAMeshedClientIsUnchanged) {
  TcpBackend real("real"), l4("l4");
  FakeProxy proxy(lb_->captureTable(), "127.0.0.1", kOutboundPort);
  ASSERT_EQ(proxy.error(), "");
  auto s = snapshot();
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port()),
                service("plain", "127.96.1.11", 80, state::ServiceMode::kL4, l4.port())};
  sync(s);
  EXPECT_EQ(runInCgroup(meshed_, [] { return dial("127.96.1.11", 80); }), "l4 127.96.1.11:80");
  EXPECT_TRUE(proxy.accepted().empty());
}

TEST_F(CaptureTest, ProcessInAChildCgroupOfAWorkloadIsCapturedAsThatWorkload) {
  // A pod's containers sit in child cgroups of the pod's cgroup.
  TcpBackend real("real");
  FakeProxy proxy(lb_->captureTable(), "127.0.0.1", kOutboundPort);
  ASSERT_EQ(proxy.error(), "");
  const std::string container = cg_->child("meshed/container");
  auto s = snapshot();
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port())};
  sync(s);
  EXPECT_EQ(runInCgroup(container, [] { return dial("127.96.1.10", 80); }), "proxy 127.96.1.10:80");
  auto got = proxy.accepted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].record, "127.96.1.10:80 cgroup " + std::to_string(idOf(meshed_)));
}

TEST_F(CaptureTest, Ipv6AndV4MappedClientsAreCapturedToTheirLoopback) {
  TcpBackend real("real");
  FakeProxy proxy4(lb_->captureTable(), "127.0.0.1", kOutboundPort);
  FakeProxy proxy6(lb_->captureTable(), "::1", kOutboundPort);
  ASSERT_EQ(proxy4.error(), "");
  ASSERT_EQ(proxy6.error(), "");
  auto s = snapshot();
  auto v6 = service("web6", "fd00::96:10", 80, state::ServiceMode::kMtls, real.port(), "::1");
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port()), v6};
  sync(s);

  EXPECT_EQ(runInCgroup(meshed_, [] { return dial("fd00::96:10", 80); }), "proxy [fd00::96:10]:80");
  auto got6 = proxy6.accepted();
  ASSERT_EQ(got6.size(), 1u);
  EXPECT_EQ(got6[0].peer.rfind("[::1]:", 0), 0u) << got6[0].peer;
  EXPECT_EQ(got6[0].record, "[fd00::96:10]:80 cgroup " + std::to_string(idOf(meshed_)));
  EXPECT_TRUE(got6[0].secondLookupEmpty);

  // A dual-stack socket dialing ::ffff:VIP reaches the IPv4 listener; the
  // proxy sees a plain IPv4 peer and the IPv4 VIP.
  EXPECT_EQ(runInCgroup(meshed_, [] { return dial("::ffff:127.96.1.10", 80); }), "proxy [::ffff:127.96.1.10]:80");
  auto got4 = proxy4.accepted();
  ASSERT_EQ(got4.size(), 1u);
  EXPECT_EQ(got4[0].peer.rfind("127.0.0.1:", 0), 0u) << got4[0].peer;
  EXPECT_EQ(got4[0].record, "127.96.1.10:80 cgroup " + std::to_string(idOf(meshed_)));
}

TEST_F(CaptureTest, TheRecordExistsWhenTheProxyAcceptsEveryTime) {
  // sockops writes at ACTIVE_ESTABLISHED, before the client's final ACK: the
  // proxy's accept() cannot return before the record is there. Many short
  // connections from two clients at once, looked up the instant they arrive.
  TcpBackend real("real");
  FakeProxy proxy(lb_->captureTable(), "127.0.0.1", kOutboundPort);
  ASSERT_EQ(proxy.error(), "");
  auto s = snapshot();
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port())};
  sync(s);
  constexpr int kPerClient = 400;
  auto client = [&] {
    return runInCgroup(meshed_, [] {
      int bad = 0;
      for (int i = 0; i < kPerClient; ++i) bad += dial("127.96.1.10", 80) != "proxy 127.96.1.10:80";
      return std::to_string(bad);
    });
  };
  auto a = std::async(std::launch::async, client), b = std::async(std::launch::async, client);
  EXPECT_EQ(a.get(), "0");
  EXPECT_EQ(b.get(), "0");
  auto got = proxy.accepted();
  ASSERT_EQ(got.size(), 2u * kPerClient);
  int missing = 0, notConsumed = 0;
  for (const auto& g : got) {
    missing += g.record.rfind("127.96.1.10:80 cgroup ", 0) != 0;
    notConsumed += !g.secondLookupEmpty;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(notConsumed, 0);
}

TEST_F(CaptureTest, PodInItsOwnNetnsIsSteeredToTheNodeAddress) {
  // A "node" netns plays the host (the proxy listens there) and a "pod"
  // netns is joined to it by a veth: 10.251.0.1 (node) - 10.251.0.2 (pod).
  TestNetns node("cnode"), pod("cpod");
  ASSERT_TRUE(node.ok() && pod.ok());
  const std::string tag = std::to_string(::getpid() % 100000);
  ASSERT_TRUE(vethPair(node, "nmcn" + tag, pod, "nmcp" + tag));
  ASSERT_TRUE(node.ip("addr add 10.251.0.1/30 dev nmcn" + tag));
  ASSERT_TRUE(pod.ip("addr add 10.251.0.2/30 dev nmcp" + tag));
  ASSERT_TRUE(node.ip("addr add fd51::1/64 dev nmcn" + tag + " nodad"));
  ASSERT_TRUE(pod.ip("addr add fd51::2/64 dev nmcp" + tag + " nodad"));

  TcpBackend real("real");
  FakeProxy proxy(lb_->captureTable(), "10.251.0.1", kOutboundPort, &node);
  FakeProxy proxy6(lb_->captureTable(), "fd51::1", kOutboundPort, &node);
  ASSERT_EQ(proxy.error(), "");
  ASSERT_EQ(proxy6.error(), "");
  lb_->setHostNetnsCookie(proxy.netnsCookie());  // the node netns is "the host" here
  auto s = snapshot();
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port()),
                service("web6", "fd00::96:10", 80, state::ServiceMode::kMtls, real.port(), "::1")};

  // No node address: a meshed pod has nowhere to go, and is refused rather
  // than let past the proxy.
  sync(s);
  auto fromPod = [&](const char* vip) {
    return runInCgroup(meshed_, [&] { return pod.enter() ? dial(vip, 80) : std::string("ERROR: setns"); });
  };
  EXPECT_EQ(fromPod("127.96.1.10"), "ERR ECONNREFUSED");

  s.nodeAddress = ip("10.251.0.1");
  sync(s);
  EXPECT_EQ(fromPod("127.96.1.10"), "proxy 127.96.1.10:80");
  auto got = proxy.accepted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].peer.rfind("10.251.0.2:", 0), 0u) << got[0].peer;
  EXPECT_EQ(got[0].record, "127.96.1.10:80 cgroup " + std::to_string(idOf(meshed_)));
  EXPECT_EQ(fromPod("fd00::96:10"), "ERR ECONNREFUSED") << "no IPv6 node address configured";

  s.nodeAddress = ip("fd51::1");
  sync(s);
  EXPECT_EQ(fromPod("fd00::96:10"), "proxy [fd00::96:10]:80");
  auto got6 = proxy6.accepted();
  ASSERT_EQ(got6.size(), 1u);
  EXPECT_EQ(got6[0].peer.rfind("[fd51::2]:", 0), 0u) << got6[0].peer;
  EXPECT_EQ(got6[0].record, "[fd00::96:10]:80 cgroup " + std::to_string(idOf(meshed_)));

  // The same workload in the "host" netns is steered to loopback instead.
  FakeProxy loopback(lb_->captureTable(), "127.0.0.1", kOutboundPort, &node);
  ASSERT_EQ(loopback.error(), "");
  EXPECT_EQ(runInCgroup(meshed_, [&] { return node.enter() ? dial("127.96.1.10", 80) : std::string("ERROR"); }),
            "proxy 127.96.1.10:80");
  auto gotLo = loopback.accepted();
  ASSERT_EQ(gotLo.size(), 1u);
  EXPECT_EQ(gotLo[0].peer.rfind("127.0.0.1:", 0), 0u) << gotLo[0].peer;
  EXPECT_EQ(gotLo[0].record, "127.96.1.10:80 cgroup " + std::to_string(idOf(meshed_)));
  EXPECT_EQ(proxy.accepted().size(), 1u);
}

TEST_F(CaptureTest, StrictDropsASynFromOutsideTheNodeAndPermissiveDoesNot) {
  // The workload's server lives in a "pod" netns; clients connect from a
  // "node" netns, from the node address (trusted) or from another address.
  TestNetns node("snode"), pod("spod");
  ASSERT_TRUE(node.ok() && pod.ok());
  const std::string tag = std::to_string(::getpid() % 100000);
  ASSERT_TRUE(vethPair(node, "nmsn" + tag, pod, "nmsp" + tag));
  ASSERT_TRUE(node.ip("addr add 10.252.0.1/30 dev nmsn" + tag));
  ASSERT_TRUE(node.ip("addr add 10.252.0.9/32 dev nmsn" + tag));
  ASSERT_TRUE(pod.ip("addr add 10.252.0.2/30 dev nmsp" + tag));
  ASSERT_TRUE(pod.ip("route add default via 10.252.0.1"));
  ASSERT_TRUE(node.ip("addr add fd52::9/64 dev nmsn" + tag + " nodad"));
  ASSERT_TRUE(pod.ip("addr add fd52::2/64 dev nmsp" + tag + " nodad"));

  const std::string server = cg_->child("strict");
  auto s = snapshot();
  s.nodeAddress = ip("10.252.0.1");
  s.workloads.push_back(workload(cg_->relativeChild("strict"), true, state::InboundMode::kStrict));
  sync(s);

  constexpr std::uint16_t kPort = 18081;
  auto served = std::async(std::launch::async, [&] {
    return runInCgroup(server, [&] {
      if (!pod.enter()) return std::string("ERROR: setns");
      int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);  // dual stack
      const int off = 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      sa.sin6_port = htons(kPort);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 64) != 0)
        return std::string("ERROR: listen");
      int accepted = 0;
      auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) continue;
        char q = 0;
        pollfd pc{c, POLLIN, 0};
        bool quit = ::poll(&pc, 1, 1000) > 0 && ::recv(c, &q, 1, 0) == 1 && q == 'q';
        ::close(c);
        if (quit) break;
        ++accepted;
      }
      return std::to_string(accepted);
    });
  });
  auto fromNode = [&](const char* source, int timeoutMs, bool destOptions = false) {
    const char* to = std::strchr(source, ':') != nullptr ? "fd52::2" : "10.252.0.2";
    return inNetns(node, [&] { return connectFrom(source, to, kPort, timeoutMs, destOptions); });
  };
  // From the node address (where the proxy connects from): allowed. Retried
  // until the server listens.
  std::string trusted;
  for (int i = 0; i < 100 && (trusted = fromNode("10.252.0.1", 2000)) == "ERR ECONNREFUSED"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(trusted, "ok");

  // From elsewhere: the SYN is dropped, so the connect just times out.
  EXPECT_EQ(fromNode("10.252.0.9", 1500), "timeout");
  const std::uint64_t strictId = idOf(server);
  EXPECT_GE(workloadCounter(strictId, true), 1u);
  // IPv6 too, and a SYN behind an extension header is still seen as one.
  EXPECT_EQ(fromNode("fd52::9", 1500), "timeout");
  const std::uint64_t dropsPlainV6 = workloadCounter(strictId, true);
  EXPECT_EQ(fromNode("fd52::9", 1500, true), "timeout");
  EXPECT_GT(workloadCounter(strictId, true), dropsPlainV6) << "the SYN with a destination-options header";

  // PERMISSIVE: the same source gets in.
  s.workloads.back().inbound = state::InboundMode::kPermissive;
  auto plan = sync(s);
  EXPECT_EQ(plan.workloadsChanged, 1u);
  const std::uint64_t dropsBefore = workloadCounter(strictId, true);
  EXPECT_EQ(fromNode("10.252.0.9", 3000), "ok");
  EXPECT_EQ(fromNode("fd52::9", 3000, true), "ok");  // so the extension header itself is no obstacle
  EXPECT_EQ(workloadCounter(strictId, true), dropsBefore);

  // Stop the server with a 'q' from the node address.
  inNetns(node, [&] {
    sockaddr_in sa{AF_INET, htons(kPort), {}, {}};
    inet_pton(AF_INET, "10.252.0.2", &sa.sin_addr);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) ::send(fd, "q", 1, MSG_NOSIGNAL);
    ::close(fd);
    return std::string();
  });
  EXPECT_EQ(served.get(), "3");  // the trusted one and the two permissive ones
}

TEST_F(CaptureTest, WorkloadWhoseCgroupAppearsLaterIsRegisteredByALaterSync) {
  auto s = snapshot();
  s.workloads.push_back(workload(cg_->relativeChild("late"), true));
  auto plan = sync(s);
  EXPECT_EQ(plan.workloadsAdded, 1u);  // "meshed"; "plain" is not meshed, "late" has no cgroup yet
  ASSERT_EQ(plan.missingCgroups.size(), 1u);
  EXPECT_EQ(plan.missingCgroups[0], cg_->relativeChild("late"));
  EXPECT_NE(datapath::summary(plan).find("missing"), std::string::npos) << datapath::summary(plan);

  const std::string late = cg_->child("late");
  plan = sync(s);
  EXPECT_EQ(plan.workloadsAdded, 1u);
  EXPECT_TRUE(plan.missingCgroups.empty());
  EXPECT_TRUE(sync(s).empty()) << "an unchanged snapshot must write nothing";
}

TEST_F(CaptureTest, RestartAdoptsEveryHookResyncChangesNothingAndCleanupRemovesAll) {
  TcpBackend real("real");
  auto s = snapshot();
  s.nodeAddress = ip("10.253.0.1");
  s.workloads.push_back(workload(cg_->relativeChild("strict"), true, state::InboundMode::kStrict));
  cg_->child("strict");
  s.services = {service("web", "127.96.1.10", 80, state::ServiceMode::kMtls, real.port())};
  auto first = sync(s);
  EXPECT_EQ(first.workloadsAdded, 2u);
  EXPECT_TRUE(first.configChanged);

  load();  // a restarted agent: fresh programs, pinned maps and links adopted
  for (int type : {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_SOCK_OPS, BPF_CGROUP_INET_INGRESS,
                   BPF_CGROUP_INET6_GETPEERNAME})
    EXPECT_EQ(attachedPrograms(cg_->absolute(), type), 1) << "attach type " << type;
  datapath::SyncPlan services;
  auto again = sync(s, &services);
  EXPECT_TRUE(again.empty()) << datapath::summary(again);
  EXPECT_TRUE(services.ops.empty());

  // Still capturing, through the adopted links and the new programs.
  {
    FakeProxy proxy(lb_->captureTable(), "127.0.0.1", kOutboundPort);
    ASSERT_EQ(proxy.error(), "");
    EXPECT_EQ(runInCgroup(meshed_, [] { return dial("127.96.1.10", 80); }), "proxy 127.96.1.10:80");
    auto got = proxy.accepted();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].record, "127.96.1.10:80 cgroup " + std::to_string(idOf(meshed_)));
  }

  // A CaptureTable outlives the SocketLb that handed it out.
  auto table = lb_->captureTable();
  lb_.reset();
  EXPECT_TRUE(SocketLb::removePins(pinRoot_));
  // The kernel releases an unpinned link after an RCU grace period: poll.
  for (int type : {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_SOCK_OPS, BPF_CGROUP_INET_INGRESS}) {
    int attached = -1;
    for (int i = 0; i < 100 && (attached = attachedPrograms(cg_->absolute(), type)) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(attached, 0) << "attach type " << type;
  }
  EXPECT_FALSE(std::filesystem::exists(pinRoot_));
  sockaddr_in nobody{AF_INET, htons(1), {htonl(INADDR_LOOPBACK)}, {}};
  auto r = table->lookup(reinterpret_cast<sockaddr*>(&nobody), sizeof nobody);
  EXPECT_FALSE(r);
  EXPECT_EQ(r.ok() ? 0 : r.error().code, ENOENT);
}

// The agent binary adopts the new hooks like the old ones, and --cleanup
// removes them (independent of the mesh config: every hook is always attached).
TEST_F(CaptureTest, AgentRestartAdoptsSockopsAndIngressAndCleanupDetachesThem) {
  TestCgroup cg;
  TcpBackend b1("b1");
  AgentProcess agent("node: {name: test-node, cgroup: " + cg.relative() +
                     "}\nservices:\n  - name: web\n    namespace: test\n    vips: [127.96.1.20]\n"
                     "    ports: [{port: 80}]\n    endpoints:\n      - {address: 127.0.0.1, port: " +
                     std::to_string(b1.port()) + "}\n");
  ASSERT_TRUE(agent.start()) << agent.logs();
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_SOCK_OPS), 1);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET_INGRESS), 1);
  agent.kill(SIGKILL);
  ASSERT_TRUE(agent.start()) << agent.logs();
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_SOCK_OPS), 1);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET_INGRESS), 1);
  EXPECT_EQ(runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.1.20", 80); }), "b1");
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.cleanup(), 0);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_SOCK_OPS), 0);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET_INGRESS), 0);
  EXPECT_FALSE(std::filesystem::exists(agent.pinRoot()));
}

}  // namespace
}  // namespace nodemesh::testing
