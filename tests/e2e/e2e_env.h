// End-to-end harness: simulated nodes and pods on one machine.
//
//   SimCluster            owns everything below; tears it all down (also on failure)
//   ├─ SimNode "a"         netns nm-e2e-<pid>-<k>-a, 10.77.0.1/24 on veth "to-b"
//   │   ├─ served cgroup   <cgroup2>/nm-e2e-<pid>-<k>/a
//   │   ├─ agent           the real nodemesh-agent, exec'd inside the netns,
//   │   │                  --pin-root /sys/fs/bpf/nm-e2e-<pid>-<k>-a, own admin socket,
//   │   │                  metrics on 127.0.0.1:15020 of the node netns
//   │   └─ SimPod "c1"     netns nm-e2e-<pid>-<k>-a-c1, cgroup .../a/c1,
//   │                      10.1.1.1/32 on eth0, gateway 10.1.1.254 (node side of its veth)
//   └─ SimNode "b"         10.77.0.2/24 on veth "to-a", pods 10.1.2.<n>
//
// Addresses exist only inside the test's network namespaces: node netns have
// no default route, pods route 10.0.0.0/8 to their node only, nothing is
// connected to the host's namespace. ip_forward is enabled in node netns only.
//
// Every process the harness starts is a child of the test process, killed by
// its PID (SIGTERM/SIGKILL) on teardown and bound to the test's life with
// PR_SET_PDEATHSIG. Processes join a pod by writing their own PID to the pod's
// cgroup.procs and setns(CLONE_NEWNET) before running the body or exec'ing.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel_env.h"  // NM_REQUIRE_ROOT, privilegedRequired, runCommand

namespace nodemesh::e2e {

using nodemesh::testing::privilegedRequired;
using nodemesh::testing::runCommand;

// Where a child process runs. Empty fields: stay where the test process is.
struct Placement {
  std::string netns;      // name under /run/netns
  std::string cgroupDir;  // absolute cgroup v2 directory
};

// One child process, killed (by PID) and reaped when the object goes away.
class Child {
 public:
  Child() = default;
  Child(Child&& o) noexcept : pid_(o.pid_), status_(o.status_), logPath_(std::move(o.logPath_)) { o.pid_ = -1; }
  Child& operator=(Child&& o) noexcept;
  ~Child() { stop(SIGKILL, 0); }

  // Runs body (its return value is the exit code) / execs argv in the child.
  // stdout and stderr go to logPath (appended) when it is not empty, else /dev/null.
  static Child spawn(const Placement& where, const std::function<int()>& body, const std::string& logPath = "");
  // deathSig: what the child gets when the test process dies (PR_SET_PDEATHSIG).
  static Child exec(const Placement& where, const std::vector<std::string>& argv, const std::string& logPath = "",
                    int deathSig = SIGKILL);

  pid_t pid() const { return pid_; }
  bool running();  // false once it exited (then status() is its wait status)
  int status() const { return status_; }
  // Sends sig, waits up to graceMs, then SIGKILL; reaps. Returns the wait status (-1 if none).
  int stop(int sig = SIGTERM, int graceMs = 5000);
  // Waits for a natural exit up to timeoutMs; false on timeout (child left running).
  bool wait(int timeoutMs);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string logPath_;
};

struct RunResult {
  int exitCode = -1;      // exit code, 128+signal if killed
  bool timedOut = false;
  std::string out;        // what fn returned / the program's stdout (+stderr for execIn)
  bool ok() const { return exitCode == 0 && !timedOut; }
};

// Runs fn in a forked child placed at `where`; its returned string comes back.
RunResult runIn(const Placement& where, const std::function<std::string()>& fn, int timeoutSec = 30);
// Execs argv at `where` with stdinData on its stdin; stdout and stderr come back.
RunResult execIn(const Placement& where, const std::vector<std::string>& argv, int timeoutSec = 30,
                 const std::string& stdinData = "");

// Client helpers (call them inside runIn). On failure they return "ERR <what>".
// Connects to ip:port, reads the server's greeting line, sends payload and reads
// it back: "<greeting> <echo-ok|echo-mismatch|echo-short>".
std::string tcpExchange(const std::string& ip, std::uint16_t port, const std::string& payload, int timeoutMs = 5000);
// count exchanges, one line each.
std::string tcpExchangeMany(const std::string& ip, std::uint16_t port, int count, const std::string& payload);

// A TCP server body for Child::spawn: listens on addr:port (inside the
// caller's netns), greets each connection with "<name>\n", then echoes.
// Writes "ready\n" to readyFd (if >= 0) once listening.
int echoServerMain(const std::string& addr, std::uint16_t port, const std::string& name, int readyFd);

// Interface counters read with `ip -s -j link` inside a netns.
struct LinkStats {
  std::uint64_t rxPackets = 0, txPackets = 0, rxBytes = 0, txBytes = 0;
};

class SimCluster;
class SimNode;

struct PodOptions {
  std::string ns = "test";              // Kubernetes-like namespace of the workload
  std::string serviceAccount = "default";
  std::optional<bool> meshed;           // workloads[].mesh (mesh schema only); unset: the namespace decides
  std::optional<std::string> inbound;   // workloads[].inbound: "strict" | "permissive"
};

class SimPod {
 public:
  const std::string& name() const { return name_; }
  const std::string& ip() const { return ip_; }  // 10.1.<node>.<n>
  const std::string& netns() const { return netns_; }
  const std::string& cgroupRel() const { return cgroupRel_; }  // as the config writes it
  std::string cgroupAbs() const;
  SimNode& node() const { return *node_; }
  const PodOptions& options() const { return opts_; }
  std::string spiffeId(const std::string& trustDomain = "cluster.local") const {
    return "spiffe://" + trustDomain + "/ns/" + opts_.ns + "/sa/" + opts_.serviceAccount;
  }
  Placement placement() const { return {netns_, cgroupAbs()}; }

  RunResult run(const std::function<std::string()>& fn, int timeoutSec = 30) const {
    return runIn(placement(), fn, timeoutSec);
  }
  RunResult exec(const std::vector<std::string>& argv, int timeoutSec = 30, const std::string& in = "") const {
    return execIn(placement(), argv, timeoutSec, in);
  }
  // A background process in the pod; the pod (and the cluster) kill it on teardown.
  Child& spawn(const std::function<int()>& body, const std::string& logName);
  Child& spawnExec(const std::vector<std::string>& argv, const std::string& logName);
  // The echo server (greeting "<greeting>\n", then echo) on 0.0.0.0:port;
  // returns once it listens. Stop it with stopServer(port) to simulate a dead backend.
  void startEchoServer(std::uint16_t port, const std::string& greeting);
  void stopServer(std::uint16_t port, int sig = SIGKILL);

  void killAll();  // every process this pod started, by PID

 private:
  friend class SimCluster;
  SimPod() = default;
  std::string name_, ip_, netns_, cgroupRel_, cgroupRoot_, nodeIf_, logDir_;
  SimNode* node_ = nullptr;
  PodOptions opts_;
  std::vector<std::unique_ptr<Child>> procs_;
  std::map<std::uint16_t, Child*> servers_;
};

class SimNode {
 public:
  const std::string& name() const { return name_; }        // node-a
  const std::string& shortName() const { return short_; }  // a
  int index() const { return index_; }                      // 1, 2
  const std::string& address() const { return address_; }   // 10.77.0.<index>
  const std::string& netns() const { return netns_; }
  const std::string& peerInterface() const { return peerIf_; }  // the node veth: to-<other>
  const std::string& servedCgroupRel() const { return cgroupRel_; }
  std::string servedCgroupAbs() const;
  const std::string& pinRoot() const { return pinRoot_; }
  const std::string& adminSocket() const { return adminSocket_; }
  const std::string& metricsAddress() const { return metricsAddress_; }  // inside the node netns
  std::string configPath() const { return dir_ + "/node.yaml"; }
  const std::string& dir() const { return dir_; }
  std::string podCidr() const { return "10.1." + std::to_string(index_) + ".0/24"; }
  std::string podGateway() const { return "10.1." + std::to_string(index_) + ".254"; }
  const std::vector<std::unique_ptr<SimPod>>& pods() const { return pods_; }
  Placement placement() const { return {netns_, ""}; }

  // The agent: --config configPath(), --pin-root, --admin-socket, --metrics-address
  // plus extraArgs; started inside the node netns. start waits until its admin API answers.
  void writeConfig(const std::string& yaml);  // atomically (rename), the agent reloads on change
  bool startAgent(const std::vector<std::string>& extraArgs = {}, int timeoutMs = 15000);
  // Signals the agent (SIGTERM: clean exit; SIGKILL: crash) and waits; then,
  // with cleanupPins, runs `nodemesh-agent --cleanup` on its pin root and
  // removes what is left of it. Returns the wait status.
  int stopAgent(int sig = SIGTERM, bool cleanupPins = true);
  bool agentRunning();
  pid_t agentPid() const { return agent_ ? agent_->pid() : -1; }
  std::string agentLog() const;
  std::string meshctl(const std::string& args) const;  // stdout+stderr
  // Waits until `meshctl node status -o json` contains needle (e.g. a config version).
  bool waitStatus(const std::string& needle, int timeoutMs = 10000) const;

  RunResult run(const std::function<std::string()>& fn, int timeoutSec = 30) const {
    return runIn(placement(), fn, timeoutSec);
  }
  RunResult exec(const std::vector<std::string>& argv, int timeoutSec = 30, const std::string& in = "") const {
    return execIn(placement(), argv, timeoutSec, in);
  }
  std::string ip(const std::string& args) const;  // `ip -n <netns> args`, stdout+stderr
  std::string metrics() const;  // GET /metrics from the agent, inside the node netns (curl)
  std::optional<LinkStats> linkStats(const std::string& iface = "") const;  // default: peerInterface()

 private:
  friend class SimCluster;
  SimNode() = default;
  std::string name_, short_, address_, netns_, peerIf_, cgroupRel_, cgroupRoot_, pinRoot_, adminSocket_,
      metricsAddress_, dir_;
  int index_ = 0;
  int podCount_ = 0;
  std::unique_ptr<Child> agent_;
  std::vector<std::unique_ptr<SimPod>> pods_;
};

// Sums every sample of the Prometheus text whose metric name contains
// nameFragment (and, if given, whose label set contains labelFragment).
double metricSum(const std::string& exposition, const std::string& nameFragment, const std::string& labelFragment = "");
// The sample lines whose metric name contains nameFragment (for failure messages).
std::string metricLines(const std::string& exposition, const std::string& nameFragment);

// Load through a TCP echo service: `longConns` connections held open and
// exchanging a small message every 100 ms, plus a new short connection every
// newEveryMs, for `seconds`. Returns "long_ok=N long_fail=N new_ok=N new_fail=N first_error=..."
// (call inside runIn).
std::string tcpLoad(const std::string& ip, std::uint16_t port, int seconds, int longConns, int newEveryMs);
struct LoadResult {
  long longOk = 0, longFail = 0, newOk = 0, newFail = 0;
  std::string firstError, raw;
};
LoadResult parseLoad(const std::string& line);

// ---- config generation ------------------------------------------------------

struct EndpointSpec {
  std::string address;
  std::optional<std::uint16_t> port;
  std::string node;  // empty: derived from the pod when built with endpointsOn()
  bool ready = true;
  std::uint32_t weight = 1;
};

struct ServiceSpec {
  std::string name;
  std::string ns = "test";
  std::string vip = "10.96.0.10";
  std::uint16_t port = 80;
  std::uint16_t targetPort = 8080;
  std::string protocol = "tcp";
  std::string mode = "l4";  // l4 | mtls
  std::string loadBalancing = "random";
  std::vector<EndpointSpec> endpoints;
};
// Endpoints for pods (address = pod IP, node = the pod's node).
std::vector<EndpointSpec> endpointsOn(const std::vector<const SimPod*>& pods);

struct NamespaceSpec {
  std::string name;
  std::optional<bool> mesh;             // mesh: enabled | disabled
  std::optional<std::string> inbound;   // strict | permissive
};

struct RuleSpec {
  std::string name;
  std::string action = "deny";  // allow | deny
  std::vector<std::string> fromIdentities, fromNamespaces, toNamespaces;
  std::vector<std::uint16_t> toPorts;
};

struct MeshSpec {
  std::string trustDomain;               // empty: agent default
  std::string caCertFile, caKeyFile;     // empty: development CA
  std::optional<std::uint32_t> certificateTtlSeconds;
  std::optional<unsigned> workers;
};

struct ClusterConfig {
  std::vector<ServiceSpec> services;
  std::vector<NamespaceSpec> namespaces;
  std::vector<RuleSpec> authorization;
  std::optional<MeshSpec> mesh;
  // Per node (by short name) overrides of mesh settings (e.g. a node with another CA).
  std::map<std::string, MeshSpec> meshPerNode;
  // Emit node.address, nodes:, endpoint node names and workload addresses.
  // Unset: whenever the agent binary accepts them (meshSchemaSupported()).
  std::optional<bool> meshSchema;
};

// True if the agent binary accepts the mesh fields (node.address, nodes:, ...).
bool meshSchemaSupported();
// True if it accepts `mode: mtls` services.
bool mtlsModeSupported();
// True if `nodemesh-agent --help` lists the flag (for features that add one).
bool agentHasFlag(const std::string& flag);

// ---- the cluster -------------------------------------------------------------

class SimCluster {
 public:
  SimCluster();   // picks the names, creates the private cgroup tree and temp dir
  ~SimCluster();  // teardown()
  SimCluster(const SimCluster&) = delete;
  SimCluster& operator=(const SimCluster&) = delete;

  // Nodes are named node-<shortName>; at most two (joined by one veth pair).
  SimNode& addNode(const std::string& shortName);
  SimPod& addPod(SimNode& node, const std::string& name, const PodOptions& opts = {});
  SimNode& node(const std::string& shortName);

  std::string configFor(const SimNode& node, const ClusterConfig& cfg) const;
  // Writes every node's config and starts every agent; false (with logs in the message) on failure.
  ::testing::AssertionResult startAgents(const ClusterConfig& cfg, const std::vector<std::string>& extraArgs = {});

  // Stops everything, removes netns, veths, cgroups, pins and the temp dir. Idempotent.
  void teardown();
  // What still exists under this cluster's names ("" when nothing).
  std::string leftovers() const;

  const std::string& prefix() const { return prefix_; }       // nm-e2e-<pid>-<k>
  const std::string& dir() const { return dir_; }             // temp dir (configs, logs, captures)
  const std::string& cgroupRel() const { return cgroupRel_; }  // /nm-e2e-<pid>-<k>
  std::string cgroupAbs() const { return cgroupRoot_ + cgroupRel_; }
  std::vector<SimNode*> nodes() const;

 private:
  std::string prefix_, dir_, cgroupRoot_, cgroupRel_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<std::string> netnsCreated_;  // in creation order
  bool tornDown_ = false;
};

// ---- capture -------------------------------------------------------------------

struct TcpFlowText {
  std::string src, dst;  // "ip:port"
  std::string payload;   // reassembled, in sequence order (as far as captured)
  bool tls = false;      // the payload is a well-formed run of TLS records
};

struct CaptureSummary {
  std::size_t packets = 0;
  std::vector<TcpFlowText> flows;  // one per direction that carried payload
  std::size_t tlsFlows() const;
  std::size_t plaintextFlows() const;
  bool onlyTls() const { return tlsFlows() > 0 && plaintextFlows() == 0; }
  bool contains(const std::string& needle) const;  // anywhere in any TCP payload
  std::string describe() const;                    // one line per flow, for failure messages
};

// True if data is a sequence of TLS records (type 20..24, version 3.x, length
// <= 2^14 + 2048); a truncated last record counts (the capture may end mid-record).
bool looksLikeTls(const std::string& data);
// Parses a pcap file (Ethernet or Linux cooked, IPv4/IPv6, TCP).
CaptureSummary parsePcap(const std::string& path, std::string* error = nullptr);

// tcpdump -i <iface> -w <file> inside a node netns for the life of the object.
class Capture {
 public:
  Capture(const SimNode& node, const std::string& file, const std::string& iface = "");
  ~Capture() { stop(); }
  bool started() const { return started_; }
  const std::string& error() const { return error_; }
  CaptureSummary stop();  // flushes (SIGINT) and parses; later calls return the same summary

 private:
  Child proc_;
  std::string file_, log_, error_;
  bool started_ = false, stopped_ = false;
  CaptureSummary summary_;
};

// ---- certificates ----------------------------------------------------------------

struct TestCa {
  std::string certFile, keyFile;
};
// A self-signed P-256 CA in dir/name/{ca.pem,ca-key.pem}, made by
// deploy/make-mesh-ca.sh (the operators' script).
std::optional<TestCa> makeTestCa(const std::string& dir, const std::string& name, std::string* error = nullptr);
// A P-256 leaf signed by ca with one URI SAN (a SPIFFE ID), usable as a TLS
// client or server certificate (for openssl s_client against :15008).
struct TestLeaf {
  std::string certFile, keyFile;
};
std::optional<TestLeaf> issueLeaf(const TestCa& ca, const std::string& dir, const std::string& name,
                                  const std::string& uriSan, std::string* error = nullptr);

// Fixture base: root check, a cluster per test, teardown even when the test fails.
class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::unique_ptr<SimCluster> cluster;
};

}  // namespace nodemesh::e2e
