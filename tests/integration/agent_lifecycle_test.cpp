// The agent's life: reloads under load, SIGKILL and restart, bad configs,
// and --cleanup, all against the real binary, cgroup and sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "kernel_env.h"

namespace nodemesh::testing {
namespace {

std::string config(const TestCgroup& cg, const std::vector<std::uint16_t>& ports, const std::string& vip = "127.96.0.20") {
  std::ostringstream y;
  y << "node: {name: test-node, cgroup: " << cg.relative() << "}\nservices:\n"
    << "  - name: web\n    namespace: test\n    vips: [" << vip << "]\n    ports: [{port: 80}]\n    endpoints:\n";
  for (auto p : ports) y << "      - {address: 127.0.0.1, port: " << p << "}\n";
  return y.str();
}

bool waitFor(const std::function<bool()>& cond, int ms = 5000) {
  for (int i = 0; i < ms / 20; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

class AgentLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { NM_REQUIRE_ROOT(); }
};

TEST_F(AgentLifecycleTest, BackendChurnUnderLoadLosesNoConnection) {
  TestCgroup cg;
  TcpBackend b1("b1"), b2("b2"), b3("b3"), b4("b4");
  const std::vector<std::vector<std::uint16_t>> sets = {
      {b1.port(), b2.port()}, {b2.port(), b3.port()}, {b3.port()}, {b3.port(), b4.port(), b1.port()}, {b4.port()}};
  AgentProcess agent(config(cg, sets[0]));
  ASSERT_TRUE(agent.start()) << agent.logs();

  // The client hammers the VIP for a bounded time while the config changes 20 times.
  std::thread client([&] {
    auto out = runInCgroup(cg.clientPath(), [] {
      int ok = 0, failed = 0;
      std::string firstFailure;
      auto end = std::chrono::steady_clock::now() + std::chrono::seconds(4);
      while (std::chrono::steady_clock::now() < end && ok + failed < 200000) {
        auto r = tcpAsk("127.96.0.20", 80);
        if (r.rfind("ERR", 0) == 0) {
          if (!failed++) firstFailure = r;
        } else {
          ++ok;
        }
      }
      return std::to_string(ok) + " " + std::to_string(failed) + " " + firstFailure;
    });
    int ok = 0, failed = -1;
    std::istringstream(out) >> ok >> failed;
    EXPECT_EQ(failed, 0) << out;
    EXPECT_GT(ok, 500) << out;
  });
  for (int i = 1; i <= 20; ++i) {
    agent.writeConfig(config(cg, sets[i % sets.size()]));
    agent.kill(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  client.join();
  // After the last change (sets[0]), only b1 and b2 answer. (Each write is
  // seen twice, by SIGHUP and by the file watch, so versions say little.)
  std::string answers;
  EXPECT_TRUE(waitFor([&] {
    answers = runInCgroup(cg.clientPath(), [] {
      std::string s;
      for (int i = 0; i < 100; ++i) s += tcpAsk("127.96.0.20", 80) + ",";
      return s;
    });
    return answers.find("b3") == std::string::npos && answers.find("b4") == std::string::npos;
  })) << answers;
  EXPECT_NE(answers.find("b1"), std::string::npos) << answers;
  EXPECT_NE(answers.find("b2"), std::string::npos) << answers;
  EXPECT_EQ(answers.find("ERR"), std::string::npos) << answers;
  EXPECT_NE(agent.meshctl("node status -o json").find("\"lastReloadError\": null"), std::string::npos);
}

TEST_F(AgentLifecycleTest, FileChangeIsPickedUpWithoutSignal) {
  TestCgroup cg;
  TcpBackend b1("b1"), b2("b2");
  AgentProcess agent(config(cg, {b1.port()}));
  ASSERT_TRUE(agent.start()) << agent.logs();
  EXPECT_EQ(runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.0.20", 80); }), "b1");
  agent.writeConfig(config(cg, {b2.port()}));
  EXPECT_TRUE(waitFor([&] { return runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.0.20", 80); }) == "b2"; }))
      << agent.logs();
}

TEST_F(AgentLifecycleTest, SigkilledAgentLeavesTheDatapathServingAndRestartAdoptsIt) {
  TestCgroup cg;
  TcpBackend b1("b1");
  AgentProcess agent(config(cg, {b1.port()}));
  ASSERT_TRUE(agent.start()) << agent.logs();

  // A client in the cgroup holds a connection across the agent's death and restart.
  int toChild[2], fromChild[2];
  ASSERT_EQ(::pipe(toChild), 0);
  ASSERT_EQ(::pipe(fromChild), 0);
  std::thread holder([&] {
    auto out = runInCgroup(cg.clientPath(), [&] {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{AF_INET, htons(80), {inet_addr("127.96.0.20")}, {}};
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return std::string("connect failed");
      char c;
      std::string hello;
      while (::recv(fd, &c, 1, 0) == 1 && c != '\n') hello += c;
      ::write(fromChild[1], "r", 1);
      ::read(toChild[0], &c, 1);  // parent killed and restarted the agent meanwhile
      ::send(fd, "ping", 4, 0);
      char buf[8] = {};
      ssize_t n = ::recv(fd, buf, 4, MSG_WAITALL);
      return hello + ":" + std::string(buf, n > 0 ? n : 0);
    });
    EXPECT_EQ(out, "b1:ping");
  });
  char c;
  ASSERT_EQ(::read(fromChild[0], &c, 1), 1);

  agent.kill(SIGKILL);
  EXPECT_EQ(runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.0.20", 80); }), "b1") << "datapath died with the agent";

  ASSERT_TRUE(agent.start()) << agent.logs();
  // Adopted, not duplicated: still exactly one program per hook.
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_UDP4_SENDMSG), 1);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET6_GETPEERNAME), 1);
  EXPECT_NE(agent.logs().find("services +0 ~0 -0"), std::string::npos) << "restart rewrote the maps:\n" << agent.logs();
  EXPECT_EQ(runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.0.20", 80); }), "b1");

  ::write(toChild[1], "g", 1);
  holder.join();
  for (int fd : {toChild[0], toChild[1], fromChild[0], fromChild[1]}) ::close(fd);
}

TEST_F(AgentLifecycleTest, BadConfigIsRefusedAndTheLastGoodOneKeepsServing) {
  TestCgroup cg;
  TcpBackend b1("b1");
  AgentProcess agent(config(cg, {b1.port()}));
  ASSERT_TRUE(agent.start()) << agent.logs();

  agent.writeConfig(config(cg, {b1.port()}) + "      - {address: not-an-ip, port: 70000}\n");
  agent.kill(SIGHUP);
  std::string status;
  ASSERT_TRUE(waitFor([&] {
    status = agent.meshctl("node status -o json");
    return status.find("\"lastReloadError\": null") == std::string::npos;
  })) << status;
  EXPECT_NE(status.find("node.yaml:"), std::string::npos) << "error must name the file: " << status;
  EXPECT_NE(status.find("endpoints[1]"), std::string::npos) << "error must name the field: " << status;
  EXPECT_NE(status.find("\"configVersion\": 1"), std::string::npos);
  EXPECT_EQ(runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.0.20", 80); }), "b1");

  // A good config clears the error.
  agent.writeConfig(config(cg, {b1.port()}));
  agent.kill(SIGHUP);
  EXPECT_TRUE(waitFor([&] { return agent.meshctl("node status -o json").find("\"lastReloadError\": null") != std::string::npos; }));

  // An invalid file at start-up is refused with a non-zero exit and the reason.
  AgentProcess bad("node: {name: x}\nservices: 7\n");
  EXPECT_FALSE(bad.start());
  EXPECT_NE(bad.logs().find("node.cgroup"), std::string::npos) << bad.logs();
}

TEST_F(AgentLifecycleTest, CleanupDetachesEverythingAndRemovesThePins) {
  TestCgroup cg;
  TcpBackend b1("b1");
  AgentProcess agent(config(cg, {b1.port()}));
  ASSERT_TRUE(agent.start()) << agent.logs();
  ASSERT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET4_CONNECT), 1);
  agent.kill(SIGTERM);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET4_CONNECT), 1) << "SIGTERM must leave the datapath serving";
  EXPECT_EQ(agent.cleanup(), 0);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_INET4_CONNECT), 0);
  EXPECT_EQ(attachedPrograms(cg.absolute(), BPF_CGROUP_UDP6_RECVMSG), 0);
  EXPECT_FALSE(std::filesystem::exists(agent.pinRoot()));
  // With the hooks gone the VIP is just an unbound loopback address again.
  EXPECT_EQ(runInCgroup(cg.clientPath(), [] { return tcpAsk("127.96.0.20", 80); }), "ERR ECONNREFUSED");
}

TEST_F(AgentLifecycleTest, MeshctlReportsClearlyWhenNoAgentRuns) {
  auto out = runCommand(std::string(NM_MESHCTL_BINARY) + " --socket /tmp/nodemesh-no-such-dir/admin.sock node status 2>&1; echo rc=$?");
  EXPECT_NE(out.find("Is the agent running?"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
}

}  // namespace
}  // namespace nodemesh::testing
