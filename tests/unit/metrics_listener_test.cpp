// The metrics and health listener without a kernel: HOST:PORT parsing, the
// shared HttpServer loop over TCP speaking HTTP/1.1, and the routes against
// an agent that has not started (so: alive, not ready).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback_exchange.h"
#include "admin/http_server.h"
#include "admin/tcp_listen.h"
#include "daemon/agent.h"
#include "daemon/metrics_http.h"

namespace nodemesh {
namespace {


std::string statusLine(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }
std::string bodyOf(const std::string& raw) {
  const auto p = raw.find("\r\n\r\n");
  return p == std::string::npos ? "" : raw.substr(p + 4);
}

TEST(TcpAddress, ParsesTheAcceptedForms) {
  auto v4 = admin::parseTcpAddress("127.0.0.1:15020");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->addr.ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&v4->addr)->sin_port), 15020);
  auto any = admin::parseTcpAddress(":15020");
  ASSERT_TRUE(any);
  EXPECT_EQ(reinterpret_cast<const sockaddr_in*>(&any->addr)->sin_addr.s_addr, htonl(INADDR_ANY));
  auto local = admin::parseTcpAddress("localhost:0");
  ASSERT_TRUE(local);
  EXPECT_EQ(reinterpret_cast<const sockaddr_in*>(&local->addr)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  auto bracketed = admin::parseTcpAddress("[::1]:15020");
  ASSERT_TRUE(bracketed);
  EXPECT_EQ(bracketed->addr.ss_family, AF_INET6);
  // What $(POD_IP):15020 becomes on an IPv6-first cluster.
  auto bare = admin::parseTcpAddress("fd00::5:15020");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->addr.ss_family, AF_INET6);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in6*>(&bare->addr)->sin6_port), 15020);
  char text[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&bare->addr)->sin6_addr, text, sizeof text);
  EXPECT_STREQ(text, "fd00::5");
}

TEST(TcpAddress, RefusesWhatItCannotBind) {
  for (const char* bad : {"", "15020", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:80x", "example.com:80", "[::1]15020", "[::1", "1.2.3:80"}) {
    auto r = admin::parseTcpAddress(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message.find("HOST:PORT"), std::string::npos) << r.error().message;
    }
  }
}

class MetricsListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon::AgentOptions options;
    options.externalSource = "kubernetes via test";
    agent_ = std::make_unique<daemon::Agent>(options);
    auto fd = admin::openTcpListener("127.0.0.1:0");
    ASSERT_TRUE(fd) << fd.error().message;
    const std::string bound = admin::tcpLocalAddress(fd->get());
    ASSERT_EQ(bound.rfind("127.0.0.1:", 0), 0u) << bound;
    port_ = static_cast<std::uint16_t>(std::stoi(bound.substr(bound.rfind(':') + 1)));
    ASSERT_NE(port_, 0);
    admin::HttpServerOptions http;
    http.name = "metrics listener";
    http.version = admin::HttpVersion::k11;
    http.clientTimeout = std::chrono::milliseconds(300);
    auto server = admin::HttpServer::start(
        std::move(*fd),
        [this](std::string_view m, std::string_view p) { return daemon::metricsRoute(*agent_, m, p); },
        std::move(http));
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
  }
  void TearDown() override {
    server_.reset();
    agent_.reset();
  }

  std::unique_ptr<daemon::Agent> agent_;
  std::unique_ptr<admin::HttpServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(MetricsListenerTest, AliveButNotReadyBeforeStart) {
  const std::string health = testing::loopbackExchange(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(statusLine(health), "HTTP/1.1 200 OK") << health;
  EXPECT_EQ(bodyOf(health), "ok\n");
  EXPECT_NE(health.find("\r\nConnection: close\r\n"), std::string::npos) << health;
  EXPECT_NE(health.find("\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << health;

  const std::string ready = testing::loopbackExchange(port_, "GET /readyz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(statusLine(ready), "HTTP/1.1 503 Service Unavailable") << ready;
  EXPECT_EQ(bodyOf(ready), "starting: the datapath is not loaded yet\n");

  agent_->setLoopState(daemon::LoopState::kStopped);
  EXPECT_EQ(statusLine(testing::loopbackExchange(port_, "GET /healthz HTTP/1.1\r\n\r\n")), "HTTP/1.1 503 Service Unavailable");
}

TEST_F(MetricsListenerTest, MetricsDeclareEveryFamilyBeforeAnyDatapath) {
  const std::string raw = testing::loopbackExchange(port_, "GET /metrics?x=1 HTTP/1.1\r\nAccept: text/plain\r\n\r\n");
  EXPECT_EQ(statusLine(raw), "HTTP/1.1 200 OK") << raw;
  EXPECT_NE(raw.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << raw;
  const std::string body = bodyOf(raw);
  EXPECT_NE(body.find("# TYPE nodemesh_service_connections_total counter\n"), std::string::npos) << body;
  EXPECT_NE(body.find("\nnodemesh_config_version 0\n"), std::string::npos) << body;
  EXPECT_NE(body.find("\nnodemesh_build_info{version=\"" NM_VERSION "\"} 1\n"), std::string::npos) << body;
}

TEST_F(MetricsListenerTest, RefusesBadRequestsAndKeepsServing) {
  EXPECT_EQ(statusLine(testing::loopbackExchange(port_, "garbage\r\n\r\n")), "HTTP/1.1 400 Bad Request");
  const std::string post = testing::loopbackExchange(port_, "POST /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(statusLine(post), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(post.find("\r\nAllow: GET\r\n"), std::string::npos) << post;
  EXPECT_EQ(statusLine(testing::loopbackExchange(port_, "GET /v1/status HTTP/1.1\r\n\r\n")), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(statusLine(testing::loopbackExchange(port_, "GET /x HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a'))),
            "HTTP/1.1 431 Request Header Fields Too Large");
  // A silent client times out with 408 and does not hold up the next one.
  EXPECT_EQ(statusLine(testing::loopbackExchange(port_, "GET /healthz HTTP/1.1\r\n")), "HTTP/1.1 408 Request Timeout");
  EXPECT_EQ(statusLine(testing::loopbackExchange(port_, "GET /healthz HTTP/1.1\r\n\r\n")), "HTTP/1.1 200 OK");
}

}  // namespace
}  // namespace nodemesh
