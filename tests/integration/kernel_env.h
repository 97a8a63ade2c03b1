// Test fixtures for kernel tests: a fresh cgroup, a private pin root, real
// backend servers on loopback, the real agent binary as a child process, and
// clients forked into the served cgroup. Everything is removed afterwards.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace nodemesh::testing {

// Skips the test without root, unless NODEMESH_REQUIRE_PRIVILEGED=1 (CI),
// which makes the missing privilege a failure instead.
#define NM_REQUIRE_ROOT()                                                                            \
  do {                                                                                               \
    if (::geteuid() != 0) {                                                                          \
      if (::nodemesh::testing::privilegedRequired())                                                 \
        FAIL() << "kernel test needs root and NODEMESH_REQUIRE_PRIVILEGED=1 forbids skipping it";    \
      GTEST_SKIP() << "kernel test needs root (cgroups, BPF); run as root to exercise the datapath"; \
    }                                                                                                \
  } while (0)

bool privilegedRequired();

// A cgroup subtree for one test: <cgroup2>/nodemesh-test-<pid>-<n>, with a
// "client" child the test runs its clients in.
class TestCgroup {
 public:
  TestCgroup();
  ~TestCgroup();
  const std::string& relative() const { return relative_; }  // as written in the config
  std::string clientPath() const { return absolute_ + "/client"; }
  std::string absolute() const { return absolute_; }
  // Creates (once) another child cgroup <absolute>/<name>, removed with this
  // one; returns its absolute path. relativeChild() is the config's form.
  std::string child(const std::string& name);
  std::string relativeChild(const std::string& name) const { return relative_ + "/" + name; }

 private:
  std::string relative_, absolute_;
  std::vector<std::string> children_;
};

// A network namespace for one test (`ip netns add`), deleted with the
// object. Addresses and links inside it never touch the host's network.
class TestNetns {
 public:
  explicit TestNetns(const std::string& tag);  // name: nmt-<pid>-<tag>
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  bool ok() const { return ok_; }
  // Runs `ip -n <name> <args>`; true on success.
  bool ip(const std::string& args) const;
  // Moves the calling thread into this netns (setns); true on success.
  bool enter() const;

 private:
  std::string name_;
  bool ok_ = false;
};

// Joins a and b with a veth pair (ifA in a, ifB in b), both up, with lo up
// in both. Interface names must be at most 15 characters.
bool vethPair(const TestNetns& a, const std::string& ifA, const TestNetns& b, const std::string& ifB);

// A TCP server that answers each connection with "<name>\n" and then echoes.
class TcpBackend {
 public:
  TcpBackend(std::string name, const std::string& address = "127.0.0.1");
  ~TcpBackend();
  std::uint16_t port() const { return port_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A UDP server that answers every datagram with "<name>".
class UdpBackend {
 public:
  UdpBackend(std::string name, const std::string& address = "127.0.0.1");
  ~UdpBackend();
  std::uint16_t port() const { return port_; }

 private:
  std::string name_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs fn in a forked child moved into cgroupDir; returns what fn returned.
// The child is killed after timeoutSec. Failures come back as "ERROR: ...".
std::string runInCgroup(const std::string& cgroupDir, const std::function<std::string()>& fn, int timeoutSec = 60);

// Client helpers (used inside runInCgroup). Return "ERR <errno name>" on failure.
std::string tcpAsk(const std::string& ip, std::uint16_t port);  // connect, read the first line
std::string udpAsk(const std::string& ip, std::uint16_t port, std::string* from = nullptr);

// The agent under test, run from its real binary.
class AgentProcess {
 public:
  // The source flags instead of "--config <dir>/node.yaml", e.g.
  // {"--kubeconfig", path, "--node-name", name}.
  struct SourceArgs {
    std::vector<std::string> args;
  };
  explicit AgentProcess(const std::string& configYaml);
  explicit AgentProcess(SourceArgs source);
  ~AgentProcess();  // SIGTERM, then --cleanup of its pins
  // Extra agent flags for the next start(), after the source and pin flags.
  // Unless they name --metrics-address, the agent gets 127.0.0.1:0 so tests
  // never fight over (or depend on) port 15020.
  void addArgs(std::vector<std::string> args) { extraArgs_.insert(extraArgs_.end(), args.begin(), args.end()); }
  bool start();      // spawns and waits until the admin API answers
  void kill(int sig);
  void writeConfig(const std::string& yaml);  // atomically (rename)
  std::string meshctl(const std::string& args) const;  // stdout of meshctl --socket ... args
  std::string pinRoot() const { return pinRoot_; }
  std::string configPath() const { return dir_ + "/node.yaml"; }
  std::string logs() const;
  std::string dir() const { return dir_; }  // private temp dir, removed with the agent
  pid_t pid() const { return pid_; }
  int cleanup();  // runs --cleanup, returns its exit code

 private:
  void makeDirs();

  std::string dir_, pinRoot_, socket_;
  std::vector<std::string> sourceArgs_;  // empty: --config configPath()
  std::vector<std::string> extraArgs_;
  pid_t pid_ = -1;
};

// Number of programs attached to a cgroup for one attach type.
int attachedPrograms(const std::string& cgroupDir, int attachType);

std::string runCommand(const std::string& cmd);

// An IPv4 or IPv6 literal and a port as a sockaddr; false when `ip` is neither.
bool fillAddr(const std::string& ip, std::uint16_t port, sockaddr_storage& ss, socklen_t& len);

}  // namespace nodemesh::testing
