// Socket-LB through the real agent binary, a real cgroup and real sockets.
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <sstream>

#include "kernel_env.h"

namespace nodemesh::testing {
namespace {

struct Ep {
  std::uint16_t port;
  std::uint32_t weight = 1;
  bool ready = true;
  std::string address = "127.0.0.1";
};

std::string svcYaml(const std::string& name, const std::string& vip, std::uint16_t port, const std::vector<Ep>& eps,
                    const std::string& proto = "tcp", const std::string& lb = "random") {
  std::ostringstream y;
  y << "  - name: " << name << "\n    namespace: test\n    vips: [\"" << vip << "\"]\n"
    << "    ports: [{port: " << port << ", protocol: " << proto << "}]\n    loadBalancing: " << lb << "\n"
    << "    endpoints:\n";
  if (eps.empty()) y << "      []\n";
  for (const auto& e : eps)
    y << "      - {address: \"" << e.address << "\", port: " << e.port << ", weight: " << e.weight
      << ", ready: " << (e.ready ? "true" : "false") << "}\n";
  return y.str();
}

std::string nodeYaml(const TestCgroup& cg, const std::string& services) {
  return "node: {name: test-node, cgroup: " + cg.relative() + "}\nservices:\n" + services;
}

std::map<std::string, int> countAnswers(const std::string& lines) {
  std::map<std::string, int> n;
  std::istringstream in(lines);
  std::string l;
  while (std::getline(in, l)) ++n[l];
  return n;
}

std::string askMany(const std::string& vip, std::uint16_t port, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += tcpAsk(vip, port) + "\n";
  return out;
}

class SocketLbTest : public ::testing::Test {
 protected:
  void SetUp() override { NM_REQUIRE_ROOT(); }
};

TEST_F(SocketLbTest, TcpReachesOnlyTheServiceBackendsWithWeightedSpread) {
  TestCgroup cg;
  TcpBackend a("a"), b("b"), c("c"), other("other");
  AgentProcess agent(nodeYaml(cg, svcYaml("web", "127.96.0.10", 80, {{a.port(), 1}, {b.port(), 2}, {c.port(), 3}}) +
                                      svcYaml("other", "127.96.0.11", 80, {{other.port()}})));
  ASSERT_TRUE(agent.start()) << agent.logs();

  constexpr int kConnects = 3000;
  auto n = countAnswers(runInCgroup(cg.clientPath(), [] { return askMany("127.96.0.10", 80, kConnects); }));
  EXPECT_EQ(n.size(), 3u) << "answers from unexpected places: " << ::testing::PrintToString(n);
  EXPECT_EQ(n["a"] + n["b"] + n["c"], kConnects);
  // Expected shares 1/6, 2/6, 3/6; +-4 points is over 4 standard deviations at this count.
  EXPECT_NEAR(n["a"] / double(kConnects), 1 / 6.0, 0.04);
  EXPECT_NEAR(n["b"] / double(kConnects), 2 / 6.0, 0.04);
  EXPECT_NEAR(n["c"] / double(kConnects), 3 / 6.0, 0.04);

  // The per-service counter saw every connect.
  auto status = agent.meshctl("node status -o json");
  EXPECT_NE(status.find("\"connections\": " + std::to_string(kConnects)), std::string::npos) << status;
}

TEST_F(SocketLbTest, GetpeernameShowsTheVipTheAppDialed) {
  TestCgroup cg;
  TcpBackend a("a");
  AgentProcess agent(nodeYaml(cg, svcYaml("web", "127.96.0.10", 80, {{a.port()}})));
  ASSERT_TRUE(agent.start()) << agent.logs();
  auto peer = runInCgroup(cg.clientPath(), [] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{AF_INET, htons(80), {inet_addr("127.96.0.10")}, {}};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return std::string("connect failed");
    sockaddr_in got{};
    socklen_t len = sizeof got;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&got), &len);
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &got.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(got.sin_port));
  });
  EXPECT_EQ(peer, "127.96.0.10:80");
}

TEST_F(SocketLbTest, DualStackSocketDialingAV4MappedVipIsServedByTheIpv4Service) {
  TestCgroup cg;
  TcpBackend a("a");
  AgentProcess agent(nodeYaml(cg, svcYaml("web", "127.96.0.16", 80, {{a.port()}})));
  ASSERT_TRUE(agent.start()) << agent.logs();
  auto out = runInCgroup(cg.clientPath(), [] {
    int fd = ::socket(AF_INET6, SOCK_STREAM, 0);  // dual-stack: IPV6_V6ONLY is off by default
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(80);
    inet_pton(AF_INET6, "::ffff:127.96.0.16", &sa.sin6_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return std::string("connect: ") + strerrorname_np(errno);
    char c;
    std::string hello;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') hello += c;
    sockaddr_in6 peer{};
    socklen_t len = sizeof peer;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &peer.sin6_addr, buf, sizeof buf);
    return hello + " " + buf + ":" + std::to_string(ntohs(peer.sin6_port));
  });
  EXPECT_EQ(out, "a ::ffff:127.96.0.16:80");
}

TEST_F(SocketLbTest, UdpDatagramsAreBalancedAndRepliesComeFromTheVip) {
  TestCgroup cg;
  UdpBackend a("ua"), b("ub");
  AgentProcess agent(nodeYaml(cg, svcYaml("dns", "127.96.0.53", 53, {{a.port()}, {b.port()}}, "udp")));
  ASSERT_TRUE(agent.start()) << agent.logs();
  auto out = runInCgroup(cg.clientPath(), [] {
    std::string res;
    for (int i = 0; i < 200; ++i) {
      std::string from;
      res += udpAsk("127.96.0.53", 53, &from) + " " + from + "\n";
    }
    return res;
  });
  auto n = countAnswers(out);
  EXPECT_EQ(n.size(), 2u) << out.substr(0, 300);
  EXPECT_GT(n["ua 127.96.0.53:53"], 40);
  EXPECT_GT(n["ub 127.96.0.53:53"], 40);
}

TEST_F(SocketLbTest, NoReadyBackendFailsConnectAtOnceWithEconnrefused) {
  TestCgroup cg;
  TcpBackend a("a");
  AgentProcess agent(nodeYaml(cg, svcYaml("down", "127.96.0.12", 80, {{a.port(), 1, false}}) +
                                      svcYaml("empty", "127.96.0.13", 80, {})));
  ASSERT_TRUE(agent.start()) << agent.logs();
  auto out = runInCgroup(cg.clientPath(), [] {
    auto t0 = std::chrono::steady_clock::now();
    std::string r = tcpAsk("127.96.0.12", 80) + "," + tcpAsk("127.96.0.13", 80);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    return r + (ms < 100 ? ",fast" : ",slow");
  });
  EXPECT_EQ(out, "ERR ECONNREFUSED,ERR ECONNREFUSED,fast");
  auto status = agent.meshctl("node status -o json");
  EXPECT_NE(status.find("\"noBackend\": 1"), std::string::npos) << status;
}

TEST_F(SocketLbTest, ProcessesOutsideTheServedCgroupAreUntouched) {
  TestCgroup cg;
  TcpBackend backend("backend");
  TcpBackend direct("direct", "127.96.0.14");  // something really listening on the VIP address
  AgentProcess agent(nodeYaml(cg, svcYaml("web", "127.96.0.14", direct.port(), {{backend.port()}})));
  ASSERT_TRUE(agent.start()) << agent.logs();
  EXPECT_EQ(tcpAsk("127.96.0.14", direct.port()), "direct");  // this test process is outside
  EXPECT_EQ(runInCgroup(cg.clientPath(), [&] { return tcpAsk("127.96.0.14", direct.port()); }), "backend");
}

TEST_F(SocketLbTest, MaglevKeepsAClientOnOneBackend) {
  TestCgroup cg;
  TcpBackend a("a"), b("b"), c("c");
  AgentProcess agent(
      nodeYaml(cg, svcYaml("api", "127.96.0.15", 8080, {{a.port()}, {b.port()}, {c.port()}}, "tcp", "maglev")));
  ASSERT_TRUE(agent.start()) << agent.logs();
  auto n = countAnswers(runInCgroup(cg.clientPath(), [] { return askMany("127.96.0.15", 8080, 100); }));
  ASSERT_EQ(n.size(), 1u) << ::testing::PrintToString(n);
  EXPECT_EQ(n.begin()->second, 100);
}

TEST_F(SocketLbTest, Ipv6AndOtherVipRangesInsideAPrivateNetns) {
  TestCgroup cg;
  // Backends and clients live in a netns created by the child, so the VIPs
  // (10.96.0.0/16, fd00::/8) never have a route out of this machine.
  const std::string yaml = nodeYaml(cg, svcYaml("v4", "10.96.0.10", 80, {{18080}}) +
                                            svcYaml("v6", "fd00::10", 80, {{18080, 1, true, "::1"}}));
  AgentProcess agent(yaml);
  ASSERT_TRUE(agent.start()) << agent.logs();
  auto check = runInCgroup(cg.clientPath(), [] {
    if (::unshare(CLONE_NEWNET) != 0 || std::system("ip link set lo up") != 0) return std::string("ERROR: netns");
    int s4 = ::socket(AF_INET, SOCK_STREAM, 0), s6 = ::socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in a4{AF_INET, htons(18080), {htonl(INADDR_LOOPBACK)}, {}};
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(18080);
    a6.sin6_addr = in6addr_loopback;
    int one = 1;
    ::setsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(s4, reinterpret_cast<sockaddr*>(&a4), sizeof a4) || ::bind(s6, reinterpret_cast<sockaddr*>(&a6), sizeof a6) ||
        ::listen(s4, 8) || ::listen(s6, 8))
      return std::string("ERROR: bind in netns");
    std::string r;
    for (const char* vip : {"10.96.0.10", "fd00::10"}) {
      sockaddr_storage ss{};
      socklen_t len;
      if (std::string(vip).find(':') == std::string::npos) {
        auto* v = reinterpret_cast<sockaddr_in*>(&ss);
        v->sin_family = AF_INET, v->sin_port = htons(80), inet_pton(AF_INET, vip, &v->sin_addr), len = sizeof *v;
      } else {
        auto* v = reinterpret_cast<sockaddr_in6*>(&ss);
        v->sin6_family = AF_INET6, v->sin6_port = htons(80), inet_pton(AF_INET6, vip, &v->sin6_addr), len = sizeof *v;
      }
      int c = ::socket(ss.ss_family, SOCK_STREAM, 0);
      if (::connect(c, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        r += std::string(vip) + "=ERR" + strerrorname_np(errno) + ";";
        continue;
      }
      sockaddr_storage peer{};
      socklen_t plen = sizeof peer;
      ::getpeername(c, reinterpret_cast<sockaddr*>(&peer), &plen);
      char buf[INET6_ADDRSTRLEN] = {};
      inet_ntop(peer.ss_family, peer.ss_family == AF_INET ? static_cast<void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr)
                                                          : static_cast<void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr),
                buf, sizeof buf);
      r += std::string(vip) + "=peer:" + buf + ";";
      ::close(c);
    }
    return r;
  });
  EXPECT_EQ(check, "10.96.0.10=peer:10.96.0.10;fd00::10=peer:fd00::10;");
}

}  // namespace
}  // namespace nodemesh::testing
