// The metrics and health listener of the real agent: --metrics-address
// 127.0.0.1:0, the bound port read back from the status, the probes, and
// kernel counters that match the connections a client really made.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "kernel_env.h"
#include "loopback_exchange.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

constexpr const char* kVip = "127.96.0.40";

std::string config(const TestCgroup& cg, std::uint16_t tcpPort, std::uint16_t udpPort) {
  std::ostringstream y;
  y << "node: {name: test-node, cgroup: " << cg.relative() << "}\nservices:\n"
    << "  - name: web\n    namespace: test\n    vips: [" << kVip << "]\n    ports: [{port: 80}]\n"
    << "    endpoints:\n      - {address: 127.0.0.1, port: " << tcpPort << "}\n"
    << "  - name: dns\n    namespace: test\n    vips: [" << kVip << "]\n    ports: [{port: 53, protocol: udp}]\n"
    << "    endpoints:\n      - {address: 127.0.0.1, port: " << udpPort << "}\n";
  return y.str();
}

json status(const AgentProcess& agent) {
  auto out = agent.meshctl("node status -o json");
  auto j = json::parse(out, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}


std::string get(std::uint16_t port, const std::string& path) {
  return loopbackExchange(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\n\r\n");
}

std::string statusLine(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }
std::string body(const std::string& raw) {
  auto p = raw.find("\r\n\r\n");
  return p == std::string::npos ? "" : raw.substr(p + 4);
}
std::string header(const std::string& raw, const std::string& name) {
  std::smatch m;
  if (std::regex_search(raw, m, std::regex("\r\n" + name + ": ([^\r]*)\r\n", std::regex::icase))) return m[1];
  return "";
}

// The value of the sample whose line starts with series (name plus labels), or -1.
long long sampleValue(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stoll(line.substr(series.size() + 1));
  }
  return -1;
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::uint16_t metricsPort(const AgentProcess& agent) {
  const json st = status(agent);
  if (!st.contains("agent") || !st["agent"]["metricsAddress"].is_string()) return 0;
  const std::string addr = st["agent"]["metricsAddress"];
  if (addr.rfind("127.0.0.1:", 0) != 0) return 0;
  return static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override { NM_REQUIRE_ROOT(); }
};

TEST_F(MetricsTest, ProbesAndCountersOfTheRealAgent) {
  TestCgroup cg;
  TcpBackend web("web-1");
  UdpBackend dns("dns-1");
  AgentProcess agent(config(cg, web.port(), dns.port()));
  agent.addArgs({"--metrics-address", "127.0.0.1:0"});
  ASSERT_TRUE(agent.start()) << agent.logs();

  const std::uint16_t port = metricsPort(agent);
  ASSERT_NE(port, 0) << status(agent).dump(2);
  EXPECT_NE(agent.logs().find("metrics and health listening on http://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << agent.logs();

  const std::string health = get(port, "/healthz");
  EXPECT_EQ(statusLine(health), "HTTP/1.1 200 OK") << health;
  EXPECT_EQ(body(health), "ok\n");
  EXPECT_EQ(header(health, "Connection"), "close");
  const std::string ready = get(port, "/readyz");
  EXPECT_EQ(statusLine(ready), "HTTP/1.1 200 OK") << ready;

  std::string m = get(port, "/metrics");
  ASSERT_EQ(statusLine(m), "HTTP/1.1 200 OK") << m;
  EXPECT_EQ(header(m, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  m = body(m);
  const std::string tcpSeries = std::string("{service=\"test/web\",vip=\"") + kVip + "\",port=\"80\",protocol=\"tcp\"}";
  const std::string udpSeries = std::string("{service=\"test/dns\",vip=\"") + kVip + "\",port=\"53\",protocol=\"udp\"}";
  EXPECT_EQ(sampleValue(m, "nodemesh_service_connections_total" + tcpSeries), 0) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_service_datagrams_total" + udpSeries), 0) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_service_no_backend_total" + tcpSeries), 0) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_build_info{version=\"" NM_VERSION "\"}"), 1) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_config_version"), 1) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_config_last_reload_success"), 1) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_config_reload_failures_total"), 0) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_services"), 2) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_backends"), 2) << m;
  EXPECT_GT(sampleValue(m, "nodemesh_bpf_map_max_entries{map=\"nm_services\"}"), 0) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_bpf_map_entries{map=\"nm_services\"}"), 2) << m;
  EXPECT_EQ(count(m, "# TYPE nodemesh_service_connections_total counter\n"), 1u) << m;
  EXPECT_EQ(count(m, "# HELP nodemesh_service_connections_total "), 1u) << m;

  // Real connections and datagrams through the VIP, from the served cgroup.
  constexpr int kConnections = 37, kDatagrams = 11;
  const std::string out = runInCgroup(cg.clientPath(), [] {
    std::string r;
    for (int i = 0; i < kConnections; ++i) r += tcpAsk(kVip, 80) + ",";
    for (int i = 0; i < kDatagrams; ++i) r += udpAsk(kVip, 53) + ",";
    return r;
  });
  EXPECT_EQ(count(out, "web-1,"), static_cast<std::size_t>(kConnections)) << out;
  EXPECT_EQ(count(out, "dns-1,"), static_cast<std::size_t>(kDatagrams)) << out;
  // A process outside the served cgroup is not counted (and not balanced).
  EXPECT_EQ(tcpAsk("127.0.0.1", web.port()), "web-1");

  m = body(get(port, "/metrics"));
  EXPECT_EQ(sampleValue(m, "nodemesh_service_connections_total" + tcpSeries), kConnections) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_service_datagrams_total" + udpSeries), kDatagrams) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_service_no_backend_total" + tcpSeries), 0) << m;
  // The status JSON reads the same kernel counters.
  const json st = status(agent);
  for (const auto& s : st["services"]) {
    if (s["name"] == "test/web") {
      EXPECT_EQ(s["connections"], kConnections) << st.dump(2);
    }
  }

  // Malformed, oversized and non-GET requests are refused; the listener keeps serving.
  const std::string bad = loopbackExchange(port, "garbage\r\n\r\n");
  EXPECT_EQ(statusLine(bad), "HTTP/1.1 400 Bad Request") << bad;
  EXPECT_EQ(statusLine(loopbackExchange(port, "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a'))),
            "HTTP/1.1 431 Request Header Fields Too Large");
  const std::string post = loopbackExchange(port, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(statusLine(post), "HTTP/1.1 405 Method Not Allowed") << post;
  EXPECT_EQ(header(post, "Allow"), "GET") << post;
  EXPECT_EQ(statusLine(get(port, "/nope")), "HTTP/1.1 404 Not Found");
  // A client that connects and says nothing does not block the others.
  int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  EXPECT_EQ(statusLine(get(port, "/healthz")), "HTTP/1.1 200 OK");
  ::close(silent);

  // A rejected reload: still ready (the last good config serves), and counted.
  agent.writeConfig("services: [this is not valid\n");
  ASSERT_TRUE([&] {
    for (int i = 0; i < 250; ++i) {
      if (sampleValue(body(get(port, "/metrics")), "nodemesh_config_last_reload_success") == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }()) << agent.logs();
  m = body(get(port, "/metrics"));
  EXPECT_GE(sampleValue(m, "nodemesh_config_reload_failures_total"), 1) << m;
  EXPECT_EQ(sampleValue(m, "nodemesh_config_version"), 1) << m;
  EXPECT_EQ(statusLine(get(port, "/readyz")), "HTTP/1.1 200 OK");
  EXPECT_EQ(statusLine(get(port, "/healthz")), "HTTP/1.1 200 OK");
}

TEST_F(MetricsTest, NotReadyUntilTheKubernetesSourceSyncs) {
  // An API server that never answers: the agent starts, loads the datapath,
  // and waits for a first sync that does not come.
  char tmpl[] = "/tmp/nodemesh-metrics-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string kubeconfig = dir + "/kubeconfig";
  {
    std::ofstream out(kubeconfig);
    out << "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster: {server: \"http://127.0.0.1:1\"}\n"
        << "users:\n- name: test\n  user: {token: t}\ncontexts:\n- name: none\n"
        << "  context: {cluster: none, user: test}\ncurrent-context: none\n";
  }
  TestCgroup root;
  std::filesystem::create_directories(root.absolute() + "/kubepods.slice");
  struct RemoveKubepods {
    std::string dir;
    ~RemoveKubepods() { ::rmdir(dir.c_str()); }
  } removeKubepods{root.absolute() + "/kubepods.slice"};
  {
    AgentProcess agent(AgentProcess::SourceArgs{
        {"--kubeconfig", kubeconfig, "--node-name", "n1", "--kube-cgroup-root", root.absolute()}});
    ASSERT_TRUE(agent.start()) << agent.logs();
    const std::uint16_t port = metricsPort(agent);
    ASSERT_NE(port, 0) << status(agent).dump(2);
    EXPECT_EQ(statusLine(get(port, "/healthz")), "HTTP/1.1 200 OK");
    const std::string ready = get(port, "/readyz");
    EXPECT_EQ(statusLine(ready), "HTTP/1.1 503 Service Unavailable") << ready;
    EXPECT_NE(body(ready).find("waiting for the first sync from kubernetes via " + kubeconfig), std::string::npos)
        << ready;
    const std::string m = body(get(port, "/metrics"));
    EXPECT_EQ(sampleValue(m, "nodemesh_config_version"), 0) << m;
    EXPECT_EQ(count(m, "nodemesh_service_connections_total{"), 0u) << m;
  }
  std::filesystem::remove_all(dir);
}

TEST_F(MetricsTest, ListenerCanBeDisabledAndABusyPortIsFatal) {
  TestCgroup cg;
  TcpBackend web("web-1");
  UdpBackend dns("dns-1");
  {
    AgentProcess agent(config(cg, web.port(), dns.port()));
    agent.addArgs({"--metrics-address", "off"});
    ASSERT_TRUE(agent.start()) << agent.logs();
    EXPECT_TRUE(status(agent)["agent"]["metricsAddress"].is_null()) << status(agent).dump(2);
  }
  // Someone else holds the port: the agent refuses to start and says why.
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string busy = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  AgentProcess agent(config(cg, web.port(), dns.port()));
  agent.addArgs({"--metrics-address=" + busy});
  EXPECT_FALSE(agent.start());
  EXPECT_NE(agent.logs().find("metrics listener: binding " + busy), std::string::npos) << agent.logs();
  ::close(holder);
}

}  // namespace
}  // namespace nodemesh::testing
