// Two simulated nodes, the L4 datapath across them, the harness's own cleanup
// and the capture helper the mesh tests rely on.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "e2e_env.h"

namespace nodemesh::e2e {
namespace {

namespace fs = std::filesystem;

std::map<std::string, int> countLines(const std::string& text) {
  std::map<std::string, int> n;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) ++n[l];
  return n;
}

bool hasFlow(const CaptureSummary& s, const std::string& src, const std::string& dst) {
  for (const auto& f : s.flows)
    if (f.src.rfind(src, 0) == 0 && f.dst.rfind(dst, 0) == 0) return true;
  return false;
}

std::string uniqueMarker(const std::string& what) {
  return "nodemesh-e2e-" + what + "-" + std::to_string(::getpid()) + "-plaintext-marker";
}

class TwoNodes : public E2eTest {};

// A client pod on node A dials the VIP; the socket-LB of agent A picks a pod
// on node B; the bytes cross the node veth and echo back.
TEST_F(TwoNodes, L4ServiceAcrossNodes) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& client = cluster->addPod(a, "client");
  SimPod& web1 = cluster->addPod(b, "web1");
  SimPod& web2 = cluster->addPod(b, "web2");
  web1.startEchoServer(8080, "web1");
  web2.startEchoServer(8080, "web2");

  ClusterConfig cfg;
  cfg.services.push_back({.name = "web", .vip = "10.96.0.10", .port = 80, .targetPort = 8080, .mode = "l4",
                          .endpoints = endpointsOn({&web1, &web2})});
  ASSERT_TRUE(cluster->startAgents(cfg));

  auto before = a.linkStats();
  ASSERT_TRUE(before) << a.ip("-s link show");
  Capture cap(a, cluster->dir() + "/a-veth.pcap");
  ASSERT_TRUE(cap.started()) << cap.error();

  constexpr int kConnects = 40;
  const std::string marker = uniqueMarker("l4");
  RunResult r = client.run([&] { return tcpExchangeMany("10.96.0.10", 80, kConnects, marker); }, 60);
  CaptureSummary wire = cap.stop();
  auto after = a.linkStats();
  ASSERT_TRUE(after);

  auto n = countLines(r.out);
  EXPECT_EQ(n["web1 echo-ok"] + n["web2 echo-ok"], kConnects) << r.out;
  EXPECT_GT(n["web1 echo-ok"], 0) << r.out;  // random over 2: (1/2)^40 to miss one
  EXPECT_GT(n["web2 echo-ok"], 0) << r.out;

  // It really crossed the node veth: SYN, data, FIN at least, each way.
  EXPECT_GE(after->txPackets - before->txPackets, 3u * kConnects);
  EXPECT_GE(after->rxPackets - before->rxPackets, 3u * kConnects);
  // ... as pod-to-pod TCP (the VIP was resolved at connect(), it is never on the wire) ...
  EXPECT_TRUE(hasFlow(wire, client.ip() + ":", web1.ip() + ":8080")) << wire.describe();
  EXPECT_TRUE(hasFlow(wire, client.ip() + ":", web2.ip() + ":8080")) << wire.describe();
  EXPECT_FALSE(hasFlow(wire, "", "10.96.0.10")) << wire.describe();
  // ... in plaintext: l4 mode does not encrypt, and the capture helper sees it.
  EXPECT_TRUE(wire.contains(marker)) << wire.describe();
  EXPECT_GT(wire.plaintextFlows(), 0u);
  EXPECT_FALSE(wire.onlyTls());

  // Agent A counted the connects; agent B saw none (its pods only serve).
  auto status = a.meshctl("node status -o json");
  EXPECT_NE(status.find("\"connections\": " + std::to_string(kConnects)), std::string::npos) << status;
}

// Everything a test creates is gone after teardown, including what a crashed
// agent leaves (its pins) and processes still running in pods.
TEST_F(TwoNodes, HarnessCleansUpAfterItself) {
  std::vector<pid_t> pids;
  std::string prefix, cgroupDir, tmpDir;
  std::vector<std::string> netns, pins;
  {
    SimCluster c;  // a second cluster, destroyed by RAII at the end of this scope
    prefix = c.prefix();
    cgroupDir = c.cgroupAbs();
    tmpDir = c.dir();
    SimNode& a = c.addNode("a");
    SimNode& b = c.addNode("b");
    SimPod& p1 = c.addPod(a, "p1");
    SimPod& p2 = c.addPod(b, "p2");
    p1.startEchoServer(8080, "p1");
    p2.startEchoServer(8080, "p2");
    // A process that ignores SIGTERM, in a pod.
    Child& stubborn = p2.spawn(
        [] {
          ::signal(SIGTERM, SIG_IGN);
          for (int i = 0; i < 6000; ++i) ::usleep(100 * 1000);
          return 0;
        },
        "stubborn.log");
    pids.push_back(stubborn.pid());
    ClusterConfig cfg;
    cfg.services.push_back({.name = "web", .endpoints = endpointsOn({&p2})});
    ASSERT_TRUE(c.startAgents(cfg));
    pids.push_back(a.agentPid());
    pids.push_back(b.agentPid());
    for (SimNode* n : c.nodes()) {
      netns.push_back(n->netns());
      pins.push_back(n->pinRoot());
      for (const auto& p : n->pods()) netns.push_back(p->netns());
      ASSERT_TRUE(fs::exists(n->pinRoot() + "/links")) << n->agentLog();
    }
    // The connection works before teardown (so the cleanup has real state to remove).
    EXPECT_EQ(p1.run([] { return tcpExchange("10.96.0.10", 80, "x"); }).out, "p2 echo-ok");
    a.stopAgent(SIGKILL, false);  // a crashed agent: pins and attached hooks stay behind
    ASSERT_TRUE(fs::exists(a.pinRoot() + "/links"));
    EXPECT_EQ(c.leftovers().find("netns " + a.netns()) != std::string::npos, true);
  }
  // Nothing with the cluster's names is left.
  auto nsList = runCommand("ip netns list");
  for (const auto& n : netns) EXPECT_EQ(nsList.find(n), std::string::npos) << "netns left: " << n << "\n" << nsList;
  EXPECT_EQ(nsList.find(prefix), std::string::npos) << nsList;
  EXPECT_FALSE(fs::exists(cgroupDir)) << cgroupDir;
  for (const auto& p : pins) EXPECT_FALSE(fs::exists(p)) << p;
  EXPECT_FALSE(fs::exists(tmpDir)) << tmpDir;
  for (pid_t p : pids) EXPECT_NE(::kill(p, 0), 0) << "process " << p << " still alive";
  // No veth or address of ours leaked into the host's namespace.
  auto hostLinks = runCommand("ip -o link show");
  EXPECT_EQ(hostLinks.find("to-a"), std::string::npos) << hostLinks;
  EXPECT_EQ(hostLinks.find("to-b"), std::string::npos) << hostLinks;
  EXPECT_EQ(runCommand("ip -o addr show").find("10.77.0."), std::string::npos);
}

// The capture helper tells TLS records from plaintext on a real veth.
TEST_F(TwoNodes, CaptureTellsTlsFromPlaintext) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& client = cluster->addPod(a, "client");
  SimPod& server = cluster->addPod(b, "server");
  std::string err;
  auto ca = makeTestCa(cluster->dir(), "server", &err);
  ASSERT_TRUE(ca) << err;
  server.startEchoServer(8080, "plain");
  // -rev: answers each line reversed (and closes on "CLOSE"), so the client
  // sees the server got the bytes.
  Child& tls = server.spawnExec({"openssl", "s_server", "-accept", "8443", "-cert", ca->certFile, "-key", ca->keyFile,
                                 "-rev", "-naccept", "1"},
                                "s_server.log");
  bool listening = false;
  for (int i = 0; i < 100 && !listening; ++i) {
    listening = tls.log().find("ACCEPT") != std::string::npos;
    if (!listening) ::usleep(50 * 1000);
  }
  ASSERT_TRUE(listening) << tls.log();

  const std::string marker = uniqueMarker("tls");
  {
    Capture cap(a, cluster->dir() + "/tls.pcap");
    ASSERT_TRUE(cap.started()) << cap.error();
    RunResult r = client.exec({"openssl", "s_client", "-connect", server.ip() + ":8443", "-servername", "e2e",
                               "-ign_eof"},
                              30, marker + "\nCLOSE\n");
    EXPECT_NE(r.out.find("BEGIN CERTIFICATE"), std::string::npos) << r.out;
    // The server got the bytes (through TLS) and answered them reversed.
    const std::string reversed(marker.rbegin(), marker.rend());
    EXPECT_NE(r.out.find(reversed), std::string::npos) << r.out;
    CaptureSummary wire = cap.stop();
    // ... and the wire carried only TLS records, never the marker.
    EXPECT_TRUE(wire.onlyTls()) << wire.describe();
    EXPECT_FALSE(wire.contains(marker)) << wire.describe();
    EXPECT_FALSE(wire.contains(reversed)) << wire.describe();
    EXPECT_GE(wire.flows.size(), 2u) << wire.describe();  // both directions
  }
  {
    Capture cap(a, cluster->dir() + "/plain.pcap");
    ASSERT_TRUE(cap.started()) << cap.error();
    EXPECT_EQ(client.run([&] { return tcpExchange(server.ip(), 8080, marker); }).out, "plain echo-ok");
    CaptureSummary wire = cap.stop();
    EXPECT_FALSE(wire.onlyTls()) << wire.describe();
    EXPECT_GE(wire.plaintextFlows(), 2u) << wire.describe();
    EXPECT_TRUE(wire.contains(marker)) << wire.describe();
  }
}

// The classifier on hand-made streams (no root needed).
TEST(CaptureClassifier, TlsRecordsVersusPlaintext) {
  auto rec = [](unsigned char type, std::size_t len) {
    std::string r{static_cast<char>(type), 3, 3, static_cast<char>(len >> 8), static_cast<char>(len & 0xff)};
    return r + std::string(len, '\x17');
  };
  EXPECT_TRUE(looksLikeTls(rec(22, 100) + rec(20, 1) + rec(23, 300)));
  EXPECT_TRUE(looksLikeTls(rec(23, 16384 + 256)));
  EXPECT_TRUE(looksLikeTls(rec(22, 100) + rec(23, 300).substr(0, 50)));  // capture ended mid-record
  EXPECT_TRUE(looksLikeTls(rec(22, 100) + "\x17\x03"));                  // ... or mid-header
  EXPECT_FALSE(looksLikeTls(""));
  EXPECT_FALSE(looksLikeTls("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(looksLikeTls("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  EXPECT_FALSE(looksLikeTls(rec(22, 100) + "hello plaintext after a record"));
  EXPECT_FALSE(looksLikeTls(std::string("\x16\x03\x03\x00\x00", 5)));  // empty record
  EXPECT_FALSE(looksLikeTls(rec(99, 10)));
}

}  // namespace
}  // namespace nodemesh::e2e
