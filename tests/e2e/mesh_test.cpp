// The mesh path end to end: pod on A -> VIP (mode mtls) -> proxy A -> HBONE
// (HTTP/2 CONNECT over TLS 1.3 mTLS, :15008) -> proxy B -> pod on B.
//
// Each also checks, at run time, that the agent accepts `mode: mtls`, and
// fails with that reason if it does not.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "e2e_env.h"

namespace nodemesh::e2e {
namespace {

std::map<std::string, int> countLines(const std::string& text) {
  std::map<std::string, int> n;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) ++n[l];
  return n;
}

int countPrefix(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) n += l.rfind(prefix, 0) == 0;
  return n;
}

std::string marker(const std::string& what) {
  return "nodemesh-e2e-" + what + "-" + std::to_string(::getpid()) + "-plaintext-marker";
}

bool onlyBetween(const CaptureSummary& s, const std::string& a, const std::string& b) {
  for (const auto& f : s.flows) {
    bool ab = f.src.rfind(a + ":", 0) == 0 && f.dst.rfind(b + ":", 0) == 0;
    bool ba = f.src.rfind(b + ":", 0) == 0 && f.dst.rfind(a + ":", 0) == 0;
    if (!ab && !ba) return false;
  }
  return true;
}

// nodemesh_proxy_events_total{kind="<kind...>"}: kindPrefix matches the start of the kind.
double events(const std::string& metrics, const std::string& kindPrefix) {
  return metricSum(metrics, "nodemesh_proxy_events_total", "kind=\"" + kindPrefix);
}

PodOptions podIn(const std::string& ns, const std::string& serviceAccount = "default") {
  PodOptions o;
  o.ns = ns;
  o.serviceAccount = serviceAccount;
  return o;
}

MeshSpec meshWithCa(const TestCa& ca) {
  MeshSpec m;
  m.trustDomain = "cluster.local";
  m.caCertFile = ca.certFile;
  m.caKeyFile = ca.keyFile;
  return m;
}

NamespaceSpec namespaceSpec(const std::string& name, bool meshed, std::optional<std::string> inbound = std::nullopt) {
  NamespaceSpec n;
  n.name = name;
  n.mesh = meshed;
  n.inbound = std::move(inbound);
  return n;
}

class Mesh : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(mtlsModeSupported()) << "this agent build rejects `mode: mtls` (check-config); the mesh is not there yet";
    std::string err;
    auto made = makeTestCa(cluster->dir() + "/pki", "mesh-ca", &err);
    ASSERT_TRUE(made) << err;
    ca = *made;
  }

  // Every node gets the same CA (cert + key files); namespace `test` is meshed.
  ClusterConfig meshConfig(std::vector<ServiceSpec> services) const {
    ClusterConfig cfg;
    cfg.meshSchema = true;
    cfg.mesh = meshWithCa(ca);
    cfg.namespaces.push_back(namespaceSpec("test", true, "permissive"));
    cfg.services = std::move(services);
    return cfg;
  }

  // The connections really went through the proxies: node `dst` opened at
  // least `streams` tunnelled connections (CONNECT streams).
  static void expectTunnelled(const SimNode& dst, double streams) {
    const std::string m = dst.metrics();
    EXPECT_GE(events(m, "tunnel_streams\""), streams) << "not through the mesh? " << metricLines(m, "proxy_events");
  }

  static ServiceSpec mtlsService(const std::vector<const SimPod*>& backends, const std::string& vip = "10.96.0.10") {
    return {.name = "web", .vip = vip, .port = 80, .targetPort = 8080, .mode = "mtls",
            .endpoints = endpointsOn(backends)};
  }

  TestCa ca;
};

// The headline path: bytes echo back through both proxies, and the node veth
// carries only TLS between the two node addresses (to :15008).
TEST_F(Mesh, MtlsServiceAcrossNodesShowsOnlyTlsOnTheWire) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& client = cluster->addPod(a, "client");
  SimPod& web1 = cluster->addPod(b, "web1");
  SimPod& web2 = cluster->addPod(b, "web2");
  web1.startEchoServer(8080, "web1");
  web2.startEchoServer(8080, "web2");
  ASSERT_TRUE(cluster->startAgents(meshConfig({mtlsService({&web1, &web2})})));

  Capture cap(a, cluster->dir() + "/mesh.pcap");
  ASSERT_TRUE(cap.started()) << cap.error();
  const std::string secret = marker("mtls");
  RunResult r = client.run([&] { return tcpExchangeMany("10.96.0.10", 80, 20, secret); }, 90);
  CaptureSummary wire = cap.stop();

  auto n = countLines(r.out);
  EXPECT_EQ(n["web1 echo-ok"] + n["web2 echo-ok"], 20) << r.out;
  EXPECT_GT(n["web1 echo-ok"], 0) << r.out;
  EXPECT_GT(n["web2 echo-ok"], 0) << r.out;

  EXPECT_TRUE(wire.onlyTls()) << wire.describe();
  EXPECT_FALSE(wire.contains(secret)) << wire.describe();
  EXPECT_TRUE(onlyBetween(wire, a.address(), b.address())) << "pod addresses on the node wire:\n" << wire.describe();
  bool toHbone = false;
  for (const auto& f : wire.flows) toHbone = toHbone || f.dst == b.address() + ":15008";
  EXPECT_TRUE(toHbone) << wire.describe();

  // Both proxies saw the tunnel.
  const std::string ma = a.metrics(), mb = b.metrics();
  EXPECT_GE(events(ma, "tunnels_opened\""), 1) << metricLines(ma, "proxy_events");
  EXPECT_GE(events(mb, "tunnels_accepted\""), 1) << metricLines(mb, "proxy_events");
  EXPECT_GE(events(mb, "tunnel_streams\""), 20) << metricLines(mb, "proxy_events");
}

// Authorization on the destination node: one identity is denied, another allowed.
TEST_F(Mesh, DeniedIdentityIsRefused) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& good = cluster->addPod(a, "good", podIn("test", "frontend"));
  SimPod& bad = cluster->addPod(a, "bad", podIn("test", "intruder"));
  SimPod& web = cluster->addPod(b, "web");
  web.startEchoServer(8080, "web");
  ClusterConfig cfg = meshConfig({mtlsService({&web})});
  RuleSpec deny;
  deny.name = "no-intruders";
  deny.action = "deny";
  deny.fromIdentities = {bad.spiffeId()};
  cfg.authorization.push_back(deny);
  ASSERT_TRUE(cluster->startAgents(cfg));

  RunResult allowed = good.run([] { return tcpExchangeMany("10.96.0.10", 80, 5, "hello"); }, 60);
  EXPECT_EQ(countLines(allowed.out)["web echo-ok"], 5) << allowed.out;
  expectTunnelled(b, 5);
  RunResult denied = bad.run([] { return tcpExchangeMany("10.96.0.10", 80, 5, "let me in"); }, 60);
  EXPECT_EQ(countPrefix(denied.out, "ERR"), 5) << denied.out;
  EXPECT_EQ(denied.out.find("echo-ok"), std::string::npos) << denied.out;
  const std::string mb = b.metrics();
  EXPECT_GE(events(mb, "policy_denials\""), 5) << metricLines(mb, "proxy_events");
  EXPECT_GE(metricSum(mb, "nodemesh_namespace_policy_denials_total"), 5) << metricLines(mb, "policy_denials");
}

// A node whose certificates come from another CA cannot talk to the mesh:
// nothing gets through, in either direction, and no plaintext leaks.
TEST_F(Mesh, NodeWithAnotherCaCannotJoin) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& client = cluster->addPod(a, "client");
  SimPod& web = cluster->addPod(b, "web");
  web.startEchoServer(8080, "web");
  std::string err;
  auto rogue = makeTestCa(cluster->dir() + "/pki", "rogue-ca", &err);
  ASSERT_TRUE(rogue) << err;
  ClusterConfig cfg = meshConfig({mtlsService({&web})});
  cfg.meshPerNode["b"] = meshWithCa(*rogue);
  ASSERT_TRUE(cluster->startAgents(cfg));

  Capture cap(a, cluster->dir() + "/rogue.pcap");
  ASSERT_TRUE(cap.started()) << cap.error();
  const std::string secret = marker("rogue");
  RunResult r = client.run([&] { return tcpExchangeMany("10.96.0.10", 80, 3, secret); }, 90);
  CaptureSummary wire = cap.stop();
  EXPECT_EQ(r.out.find("echo-ok"), std::string::npos) << r.out;
  EXPECT_EQ(countPrefix(r.out, "ERR"), 3) << r.out;
  EXPECT_FALSE(wire.contains(secret)) << wire.describe();
  EXPECT_EQ(wire.plaintextFlows(), 0u) << wire.describe();
  // Counted as handshake failures on at least one side.
  const std::string ma = a.metrics(), mb = b.metrics();
  EXPECT_GE(events(ma, "outbound_tls_") + events(mb, "inbound_tls_"), 1)
      << metricLines(ma, "proxy_events") << metricLines(mb, "proxy_events");
}

// :15008 is mTLS only: openssl s_client without a client certificate is
// refused; with a certificate of the mesh CA the handshake completes (the
// control that shows the port and the tool work).
TEST_F(Mesh, HbonePortRejectsClientWithoutCertificate) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& web = cluster->addPod(b, "web");
  web.startEchoServer(8080, "web");
  ASSERT_TRUE(cluster->startAgents(meshConfig({mtlsService({&web})})));
  const std::string target = b.address() + ":15008";
  // An HTTP/2 preface and a CONNECT-ish line: nothing of it may be answered.
  const std::string input = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

  // TLS 1.3: the client finishes its handshake first and the server's alert
  // comes after; -ign_eof keeps s_client reading until the server closes.
  RunResult noCert = a.exec({"openssl", "s_client", "-connect", target, "-tls1_3", "-alpn", "h2", "-CAfile",
                             ca.certFile, "-verify_return_error", "-ign_eof"},
                            15, input);
  EXPECT_FALSE(noCert.timedOut) << "the server did not close the connection:\n" << noCert.out;
  EXPECT_NE(noCert.exitCode, 0) << noCert.out;
  EXPECT_NE(noCert.out.find("alert certificate required"), std::string::npos) << noCert.out;

  std::string err;
  auto leaf = issueLeaf(ca, cluster->dir() + "/pki", "client", "spiffe://cluster.local/ns/test/sa/default", &err);
  ASSERT_TRUE(leaf) << err;
  RunResult withCert = a.exec({"openssl", "s_client", "-connect", target, "-tls1_3", "-alpn", "h2", "-CAfile",
                               ca.certFile, "-cert", leaf->certFile, "-key", leaf->keyFile},
                              30, input);
  EXPECT_NE(withCert.out.find("Verify return code: 0"), std::string::npos) << withCert.out;
  EXPECT_EQ(withCert.out.find("certificate required"), std::string::npos) << withCert.out;

  // The refusal is counted with its reason (counters reach the metrics a little later).
  std::string mb;
  for (int i = 0; i < 30; ++i) {
    mb = b.metrics();
    if (events(mb, "inbound_tls_no_client_cert\"") >= 1) break;
    ::usleep(100 * 1000);
  }
  EXPECT_GE(events(mb, "inbound_tls_no_client_cert\""), 1) << metricLines(mb, "proxy_events");
  // Plain TCP garbage on 15008 is closed too, and the proxy keeps serving.
  RunResult garbage = a.run([&] { return tcpExchange(b.address(), 15008, "GET / HTTP/1.1\r\n\r\n", 3000); });
  EXPECT_NE(garbage.out.find("ERR"), std::string::npos) << garbage.out;
  EXPECT_TRUE(b.agentRunning()) << b.agentLog();
}

// A dead backend: new connections go to the one still alive.
TEST_F(Mesh, KillingABackendSendsNewConnectionsElsewhere) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& client = cluster->addPod(a, "client");
  SimPod& web1 = cluster->addPod(b, "web1");
  SimPod& web2 = cluster->addPod(b, "web2");
  web1.startEchoServer(8080, "web1");
  web2.startEchoServer(8080, "web2");
  ASSERT_TRUE(cluster->startAgents(meshConfig({mtlsService({&web1, &web2})})));

  auto n = countLines(client.run([] { return tcpExchangeMany("10.96.0.10", 80, 20, "x"); }, 60).out);
  ASSERT_GT(n["web1 echo-ok"], 0);
  ASSERT_GT(n["web2 echo-ok"], 0);

  web1.stopServer(8080, SIGKILL);
  RunResult after = client.run([] { return tcpExchangeMany("10.96.0.10", 80, 20, "y"); }, 90);
  EXPECT_EQ(countLines(after.out)["web2 echo-ok"], 20) << after.out;
  expectTunnelled(b, 40);
}

// Inbound modes for traffic that did not come through a node proxy: a
// non-meshed pod on A dials meshed pods on B directly. STRICT refuses it,
// PERMISSIVE accepts it; the meshed path to the STRICT pod still works.
TEST_F(Mesh, StrictRefusesPlaintextPermissiveAcceptsIt) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& legacy = cluster->addPod(a, "legacy", podIn("legacy"));
  SimPod& meshed = cluster->addPod(a, "meshed", podIn("test"));
  SimPod& strict = cluster->addPod(b, "strict", podIn("secure"));
  SimPod& relaxed = cluster->addPod(b, "relaxed", podIn("test"));
  strict.startEchoServer(8080, "strict");
  relaxed.startEchoServer(8080, "relaxed");
  ClusterConfig cfg = meshConfig({mtlsService({&strict}, "10.96.0.20")});
  cfg.namespaces.push_back(namespaceSpec("legacy", false));
  cfg.namespaces.push_back(namespaceSpec("secure", true, "strict"));
  cfg.services[0].ns = "secure";
  ASSERT_TRUE(cluster->startAgents(cfg));

  EXPECT_EQ(legacy.run([&] { return tcpExchange(relaxed.ip(), 8080, "plain", 3000); }).out, "relaxed echo-ok");
  RunResult refused = legacy.run([&] { return tcpExchange(strict.ip(), 8080, "plain", 3000); });
  EXPECT_EQ(refused.out.rfind("ERR", 0), 0u) << refused.out;
  EXPECT_EQ(meshed.run([] { return tcpExchange("10.96.0.20", 80, "tunnelled"); }).out, "strict echo-ok");
  expectTunnelled(b, 1);
}

// Certificates with the shortest TTL the config allows (60 s, rotated at
// half-life) rotate under steady load; no connection, long or new, fails.
TEST_F(Mesh, CertificateRotationUnderLoadDropsNothing) {
  SimNode& a = cluster->addNode("a");
  SimNode& b = cluster->addNode("b");
  SimPod& client = cluster->addPod(a, "client");
  SimPod& web1 = cluster->addPod(b, "web1");
  SimPod& web2 = cluster->addPod(b, "web2");
  web1.startEchoServer(8080, "web1");
  web2.startEchoServer(8080, "web2");
  ClusterConfig cfg = meshConfig({mtlsService({&web1, &web2})});
  cfg.mesh->certificateTtlSeconds = 60;
  ASSERT_TRUE(cluster->startAgents(cfg));

  // 45 s covers the first rotation (at ~30 s) with margin on both sides.
  RunResult r = client.run([] { return tcpLoad("10.96.0.10", 80, 45, 8, 200); }, 120);
  LoadResult load = parseLoad(r.out);
  EXPECT_EQ(load.longFail, 0) << load.raw;
  EXPECT_EQ(load.newFail, 0) << load.raw;
  EXPECT_GT(load.longOk, 8 * 300) << load.raw;  // ~10 rounds/s x 45 s x 8
  EXPECT_GT(load.newOk, 150) << load.raw;
  expectTunnelled(b, static_cast<double>(load.newOk + 8));
  // The client's certificate was issued, then rotated during the run (at half-life).
  const std::string log = a.agentLog();
  auto count = [&log](const std::string& what) {
    std::size_t times = 0;
    for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++times;
    return times;
  };
  EXPECT_EQ(count("issued a certificate for " + client.spiffeId()), 1u) << log;
  EXPECT_GE(count("rotated the certificate of " + client.spiffeId()), 1u)
      << "no rotation seen in the log of " << a.name() << ":\n" << log;
}

}  // namespace
}  // namespace nodemesh::e2e
