// Config source: the embedded example, defaults, and every class of error
// with the exact location and field path an operator would be shown.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config_loader.h"
#include "config/limits.h"
#include "policy/authorization.h"

namespace nodemesh::config {
namespace {

using state::IpAddress;
using state::LbAlgorithm;
using state::Protocol;
using state::Snapshot;

constexpr const char* kSource = "t.yaml";

// Asserts the config fails and returns the whole message.
std::string errorOf(std::string_view yaml) {
  Result<Snapshot> r = parseConfig(yaml, kSource);
  EXPECT_FALSE(r.ok()) << "expected an error for:\n" << yaml;
  return r.ok() ? std::string() : r.error().message;
}

Snapshot parseOk(std::string_view yaml) {
  Result<Snapshot> r = parseConfig(yaml, kSource);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : Snapshot{};
}

::testing::AssertionResult hasText(const std::string& message, const std::string& needle) {
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "missing: " << needle << "\nin message:\n" << message;
}

std::size_t lineCount(const std::string& message) {
  return message.empty() ? 0 : static_cast<std::size_t>(std::count(message.begin(), message.end(), '\n')) + 1;
}

IpAddress ip(std::string_view text) { return IpAddress::parse(text).value(); }

// A valid node section; tests append services/workloads below it (lines 1-3).
constexpr std::string_view kNode =
    "node:\n"
    "  name: n1\n"
    "  cgroup: /mesh\n";

std::string withServices(std::string_view services) { return std::string(kNode) + "services:\n" + std::string(services); }

// ---------------------------------------------------------------- success

TEST(ConfigExample, EmbeddedExampleParsesWithExpectedValues) {
  std::string_view text = embeddedExampleConfig();
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text.find("demo-node"), std::string_view::npos);

  Result<Snapshot> r = parseConfig(text, kEmbeddedExampleSource);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Snapshot& s = r.value();
  EXPECT_EQ(s.version, 0u);
  EXPECT_EQ(s.source, "embedded example");
  EXPECT_EQ(s.nodeName, "demo-node");
  EXPECT_EQ(s.servedCgroup, "/nodemesh-demo");

  ASSERT_EQ(s.workloads.size(), 1u);
  EXPECT_EQ(s.workloads[0].cgroup, "/nodemesh-demo/client");
  EXPECT_EQ(s.workloads[0].ns, "demo");
  EXPECT_EQ(s.workloads[0].serviceAccount, "client");
  EXPECT_EQ(s.workloads[0].labels, (std::map<std::string, std::string>{{"app", "client"}}));

  // The demo namespace is meshed, so its workload is.
  EXPECT_TRUE(s.workloads[0].meshed);
  ASSERT_EQ(s.namespaces.size(), 1u);
  EXPECT_TRUE(s.namespaces[0].meshed);

  ASSERT_EQ(s.services.size(), 6u);
  // Sorted by qualifiedName, not written order (web, api, dns, maintenance, web-mesh, admin).
  EXPECT_EQ(s.services[0].qualifiedName(), "demo/admin");
  EXPECT_EQ(s.services[1].qualifiedName(), "demo/api");
  EXPECT_EQ(s.services[2].qualifiedName(), "demo/dns");
  EXPECT_EQ(s.services[3].qualifiedName(), "demo/maintenance");
  EXPECT_EQ(s.services[4].qualifiedName(), "demo/web");
  EXPECT_EQ(s.services[5].qualifiedName(), "demo/web-mesh");
  EXPECT_EQ(s.services[0].mode, state::ServiceMode::kMtls);
  EXPECT_EQ(s.services[5].mode, state::ServiceMode::kMtls);
  ASSERT_EQ(s.authorization.size(), 1u);
  EXPECT_EQ(s.authorization[0].action, state::RuleAction::kDeny);
  EXPECT_EQ(s.authorization[0].toPorts, std::vector<std::uint16_t>{18087});

  const state::Service& api = s.services[1];
  EXPECT_EQ(api.lb, LbAlgorithm::kMaglev);
  EXPECT_EQ(api.vips, std::vector<IpAddress>{ip("127.96.0.11")});
  ASSERT_EQ(api.ports.size(), 1u);
  EXPECT_EQ(api.ports[0].port, 8080);
  EXPECT_EQ(api.ports[0].targetPort, 18084);
  ASSERT_EQ(api.endpoints.size(), 3u);
  EXPECT_TRUE(api.endpoints[0].ready);
  EXPECT_TRUE(api.endpoints[1].ready);
  EXPECT_FALSE(api.endpoints[2].ready);
  EXPECT_EQ(api.endpoints[2].port, std::optional<std::uint16_t>(18086));

  const state::Service& dns = s.services[2];
  ASSERT_EQ(dns.ports.size(), 1u);
  EXPECT_EQ(dns.ports[0].name, "dns");
  EXPECT_EQ(dns.ports[0].protocol, Protocol::kUdp);
  EXPECT_EQ(dns.ports[0].port, 53);
  EXPECT_EQ(dns.ports[0].targetPort, 18053);
  EXPECT_EQ(dns.lb, LbAlgorithm::kRandom);  // default
  ASSERT_EQ(dns.endpoints.size(), 1u);
  EXPECT_EQ(dns.endpoints[0].port, std::nullopt);
  EXPECT_EQ(dns.endpoints[0].address, ip("127.0.0.1"));

  const state::Service& maintenance = s.services[3];
  EXPECT_TRUE(maintenance.endpoints.empty());
  ASSERT_EQ(maintenance.ports.size(), 1u);
  EXPECT_EQ(maintenance.ports[0].name, "");
  EXPECT_EQ(maintenance.ports[0].targetPort, 18090);

  const state::Service& web = s.services[4];
  EXPECT_EQ(web.mode, state::ServiceMode::kL4);
  EXPECT_EQ(web.ports[0].protocol, Protocol::kTcp);
  ASSERT_EQ(web.endpoints.size(), 3u);
  EXPECT_EQ(web.endpoints[0].weight, 1u);
  EXPECT_EQ(web.endpoints[1].weight, 1u);
  EXPECT_EQ(web.endpoints[2].weight, 2u);
  EXPECT_EQ(web.endpoints[0].port, std::optional<std::uint16_t>(18081));
  EXPECT_EQ(web.endpoints[2].port, std::optional<std::uint16_t>(18083));
  EXPECT_EQ(web.endpoints[2].node, "demo-node");
}

TEST(ConfigDefaults, OmittedFieldsTakeDocumentedDefaults) {
  Snapshot s = parseOk(std::string(kNode) +
                       "workloads:\n"
                       "  - {cgroup: /mesh/a, namespace: ns1}\n"
                       "services:\n"
                       "  - name: web\n"
                       "    namespace: demo\n"
                       "    vips: [10.96.0.1, 'fd00::1']\n"
                       "    ports: [{port: 80}]\n"
                       "    endpoints: [{address: 10.0.0.1}, {address: 'fd00::2'}]\n");
  EXPECT_EQ(s.source, kSource);
  EXPECT_EQ(s.version, 0u);
  ASSERT_EQ(s.workloads.size(), 1u);
  EXPECT_EQ(s.workloads[0].serviceAccount, "default");
  EXPECT_TRUE(s.workloads[0].labels.empty());
  ASSERT_EQ(s.services.size(), 1u);
  const state::Service& svc = s.services[0];
  EXPECT_EQ(svc.vips, (std::vector<IpAddress>{ip("10.96.0.1"), ip("fd00::1")}));
  ASSERT_EQ(svc.ports.size(), 1u);
  EXPECT_EQ(svc.ports[0].name, "");
  EXPECT_EQ(svc.ports[0].protocol, Protocol::kTcp);
  EXPECT_EQ(svc.ports[0].targetPort, 80);
  EXPECT_EQ(svc.mode, state::ServiceMode::kL4);
  EXPECT_EQ(svc.lb, LbAlgorithm::kRandom);
  ASSERT_EQ(svc.endpoints.size(), 2u);
  for (const state::Endpoint& ep : svc.endpoints) {
    EXPECT_EQ(ep.weight, 1u);
    EXPECT_TRUE(ep.ready);
    EXPECT_EQ(ep.port, std::nullopt);
    EXPECT_EQ(ep.node, "");
  }
  EXPECT_EQ(svc.endpoints[1].address, ip("fd00::2"));
}

TEST(ConfigDefaults, NodeOnlyIsValidAndNullListsMeanEmpty) {
  Snapshot s = parseOk(kNode);
  EXPECT_TRUE(s.workloads.empty());
  EXPECT_TRUE(s.services.empty());

  s = parseOk(std::string(kNode) + "workloads:\nservices: ~\n");
  EXPECT_TRUE(s.workloads.empty());
  EXPECT_TRUE(s.services.empty());

  s = parseOk(withServices("  - {name: a, namespace: b, vips: [10.0.0.1], ports: [{port: 1}], endpoints: }\n"));
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_TRUE(s.services[0].endpoints.empty());
}

TEST(ConfigParse, AcceptsKubernetesStyleUppercaseProtocol) {
  Snapshot s = parseOk(withServices(
      "  - {name: a, namespace: b, vips: [10.0.0.1], ports: [{name: x, port: 53, protocol: UDP}, "
      "{name: y, port: 53, protocol: TCP}]}\n"));
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_EQ(s.services[0].ports[0].protocol, Protocol::kUdp);
  EXPECT_EQ(s.services[0].ports[1].protocol, Protocol::kTcp);
}

TEST(ConfigParse, SortsServicesAndKeepsEndpointOrder) {
  Snapshot s = parseOk(withServices(
      "  - {name: zeta, namespace: a, vips: [10.0.0.3], ports: [{port: 80}]}\n"
      "  - {name: alpha, namespace: b, vips: [10.0.0.2], ports: [{port: 80}]}\n"
      "  - name: beta\n"
      "    namespace: a\n"
      "    vips: [10.0.0.1]\n"
      "    ports: [{port: 80}]\n"
      "    endpoints: [{address: 10.1.0.9}, {address: 10.1.0.1}, {address: 10.1.0.5}]\n"));
  ASSERT_EQ(s.services.size(), 3u);
  EXPECT_EQ(s.services[0].qualifiedName(), "a/beta");
  EXPECT_EQ(s.services[1].qualifiedName(), "a/zeta");
  EXPECT_EQ(s.services[2].qualifiedName(), "b/alpha");
  ASSERT_EQ(s.services[0].endpoints.size(), 3u);
  EXPECT_EQ(s.services[0].endpoints[0].address, ip("10.1.0.9"));
  EXPECT_EQ(s.services[0].endpoints[1].address, ip("10.1.0.1"));
  EXPECT_EQ(s.services[0].endpoints[2].address, ip("10.1.0.5"));
}

TEST(ConfigParse, EndpointPortOverridesSinglePortAndWholeNodeCgroupIsAllowed) {
  Snapshot s = parseOk(
      "node: {name: node.example-1, cgroup: /, address: 10.77.0.1}\n"
      "nodes: [{name: other, address: 10.77.0.2}]\n"
      "workloads: [{cgroup: /any/where, namespace: x}]\n"
      "services:\n"
      "  - {name: a, namespace: b, vips: [10.0.0.1], ports: [{port: 80, targetPort: 8080}],\n"
      "     endpoints: [{address: 10.0.0.2, port: 9090, weight: 65535, ready: false, node: other}]}\n");
  EXPECT_EQ(s.servedCgroup, "/");
  ASSERT_EQ(s.services.size(), 1u);
  const state::Endpoint& ep = s.services[0].endpoints.at(0);
  EXPECT_EQ(ep.port, std::optional<std::uint16_t>(9090));
  EXPECT_EQ(ep.weight, 65535u);
  EXPECT_FALSE(ep.ready);
  EXPECT_EQ(ep.node, "other");
}

TEST(ConfigParse, WorkloadEqualToNodeCgroupIsAllowed) {
  Snapshot s = parseOk(std::string(kNode) + "workloads: [{cgroup: /mesh, namespace: x, labels: {a: '1', b: }}]\n");
  ASSERT_EQ(s.workloads.size(), 1u);
  EXPECT_EQ(s.workloads[0].labels, (std::map<std::string, std::string>{{"a", "1"}, {"b", ""}}));
}

TEST(ConfigFile, LoadsFileAndNamesItInErrors) {
  char path[] = "/tmp/nm_config_test_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string_view text = embeddedExampleConfig();
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  Result<Snapshot> r = loadConfigFile(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, path);
  EXPECT_EQ(r->services.size(), 6u);

  fd = ::open(path, O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  std::string bad = "node:\n  name: BAD\n  cgroup: /x\n";
  ASSERT_EQ(::write(fd, bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  ::close(fd);
  r = loadConfigFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(hasText(r.error().message, std::string(path) + ":2:9: node.name: must be a DNS-1123 subdomain"));
  ::unlink(path);
}

TEST(ConfigFile, ReadErrorsNameThePathAndErrno) {
  Result<Snapshot> r = loadConfigFile("/nonexistent/nodemesh.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_TRUE(hasText(r.error().message, "/nonexistent/nodemesh.yaml"));
  EXPECT_TRUE(hasText(r.error().message, "No such file or directory"));

  r = loadConfigFile("/tmp");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EISDIR);
  EXPECT_TRUE(hasText(r.error().message, "/tmp: Is a directory"));
}

// ---------------------------------------------------------------- errors: values

TEST(ConfigErrors, WeightZeroPointsAtTheValue) {
  std::string msg = errorOf(withServices(
      "  - name: web\n"                                // 5
      "    namespace: demo\n"                          // 6
      "    vips: [10.96.0.1]\n"                        // 7
      "    ports:\n"                                   // 8
      "      - {port: 80}\n"                           // 9
      "    endpoints:\n"                               // 10
      "      - {address: 10.0.0.1}\n"                  // 11
      "      - {address: 10.0.0.2, weight: 0}\n"));    // 12
  EXPECT_EQ(msg, "t.yaml:12:37: services[0].endpoints[1].weight: must be 1..65535, got 0");
}

TEST(ConfigErrors, IntegersRejectFloatsNegativesQuotedAndOutOfRange) {
  std::string msg = errorOf(withServices(
      "  - name: web\n"
      "    namespace: demo\n"
      "    vips: [10.96.0.1]\n"
      "    ports:\n"
      "      - {name: a, port: 65536}\n"                          // 9
      "      - {name: b, port: -1}\n"                             // 10
      "      - {name: c, port: 8.5}\n"                            // 11
      "      - {name: d, port: '80'}\n"                           // 12
      "      - {name: e, port: 0x50}\n"                           // 13
      "      - {name: f, port: 99999999999999999999999}\n"        // 14
      "      - {name: g, port: 80, targetPort: 0}\n"              // 15
      "      - {name: h, port: [80]}\n"));                        // 16
  EXPECT_TRUE(hasText(msg, "t.yaml:9:25: services[0].ports[0].port: must be 1..65535, got 65536"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:25: services[0].ports[1].port: must be 1..65535, got -1"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:25: services[0].ports[2].port: must be an integer, got 8.5"));
  EXPECT_TRUE(hasText(msg, "t.yaml:12:25: services[0].ports[3].port: must be an integer, got the quoted string '80'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:13:25: services[0].ports[4].port: must be an integer, got '0x50'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:14:25: services[0].ports[5].port: must be 1..65535, got 99999999999999999999999"));
  EXPECT_TRUE(hasText(msg, "t.yaml:15:41: services[0].ports[6].targetPort: must be 1..65535, got 0"));
  EXPECT_TRUE(hasText(msg, "t.yaml:16:25: services[0].ports[7].port: must be an integer, got a list"));
  EXPECT_EQ(lineCount(msg), 8u) << msg;
}

TEST(ConfigErrors, BooleansAreOnlyTrueOrFalse) {
  std::string msg = errorOf(withServices(
      "  - name: web\n"
      "    namespace: demo\n"
      "    vips: [10.96.0.1]\n"
      "    ports: [{port: 80}]\n"
      "    endpoints:\n"                                   // 9
      "      - {address: 10.0.0.1, ready: yes}\n"          // 10
      "      - {address: 10.0.0.2, ready: 'true'}\n"       // 11
      "      - {address: 10.0.0.3, ready: 1}\n"));         // 12
  EXPECT_TRUE(hasText(msg, "t.yaml:10:36: services[0].endpoints[0].ready: must be true or false, got 'yes'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:36: services[0].endpoints[1].ready: must be true or false, got 'true' (a quoted string)"));
  EXPECT_TRUE(hasText(msg, "t.yaml:12:36: services[0].endpoints[2].ready: must be true or false, got '1'"));
  EXPECT_EQ(lineCount(msg), 3u) << msg;
}

TEST(ConfigErrors, WrongContainerTypes) {
  std::string msg = errorOf(
      "node: [n1]\n"                                        // 1
      "workloads: {cgroup: /x}\n"                           // 2
      "services:\n"                                         // 3
      "  - name: [web]\n"                                   // 4
      "    namespace: demo\n"                               // 5
      "    vips: 10.96.0.1\n"                               // 6
      "    ports: {port: 80}\n"                             // 7
      "    endpoints: {address: 10.0.0.1}\n"                // 8
      "  - web\n");                                         // 9
  EXPECT_TRUE(hasText(msg, "t.yaml:1:7: node: must be a map, got a list"));
  EXPECT_TRUE(hasText(msg, "t.yaml:2:12: workloads: must be a list, got a map"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:11: services[0].name: must be a string, got a list"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:11: services[0].vips: must be a list, got a string"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:12: services[0].ports: must be a list, got a map"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:16: services[0].endpoints: must be a list, got a map"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:5: services[1]: must be a map, got a string"));
  EXPECT_EQ(lineCount(msg), 7u) << msg;
}

TEST(ConfigErrors, RequiredFieldsPointAtTheirMap) {
  std::string msg = errorOf(
      "workloads:\n"                      // 1
      "  - namespace: x\n"                // 2
      "services:\n"                       // 3
      "  - namespace: demo\n"             // 4
      "    endpoints: [{weight: 2}]\n");  // 5
  EXPECT_TRUE(hasText(msg, "t.yaml:1:1: node: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:2:5: workloads[0].cgroup: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:5: services[0].name: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:5: services[0].vips: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:5: services[0].ports: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:5:17: services[0].endpoints[0].address: is required"));
  EXPECT_EQ(lineCount(msg), 6u) << msg;

  msg = errorOf("node:\n  name: ~\n");
  EXPECT_TRUE(hasText(msg, "t.yaml:2:3: node.name: is required"));  // explicit null counts as not set
  EXPECT_TRUE(hasText(msg, "t.yaml:2:3: node.cgroup: is required"));
}

TEST(ConfigErrors, NameRules) {
  std::string longLabel(64, 'a');
  std::string msg = errorOf(
      "node: {name: Node_1, cgroup: /mesh}\n"                                              // 1
      "workloads: [{cgroup: /mesh/a, namespace: " + longLabel + ", serviceAccount: -sa}]\n"  // 2
      "services:\n"                                                                        // 3
      "  - {name: web.v2, namespace: demo, vips: [10.0.0.1], ports: [{name: HTTP, port: 80}]}\n");  // 4
  EXPECT_TRUE(hasText(msg, "t.yaml:1:14: node.name: must be a DNS-1123 subdomain"));
  EXPECT_TRUE(hasText(msg, "got 'Node_1'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:2:42: workloads[0].namespace: must be at most 63 characters, got 64"));
  EXPECT_TRUE(hasText(msg, "t.yaml:2:124: workloads[0].serviceAccount: must be a DNS-1123 subdomain"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:12: services[0].name: must be a DNS-1123 label"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:70: services[0].ports[0].name: must be a DNS-1123 label"));
  EXPECT_EQ(lineCount(msg), 5u) << msg;
}

TEST(ConfigErrors, CgroupPathRules) {
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: mesh}\n"),
                      "t.yaml:1:25: node.cgroup: must start with '/' (a path relative to the cgroup v2 mount root)"));
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: /a//b}\n"), "node.cgroup: must not contain '//'"));
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: /a/../b}\n"), "node.cgroup: must not contain '.' or '..'"));
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: /a/}\n"), "node.cgroup: must not end with '/'"));
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: ''}\n"), "node.cgroup: must not be empty"));
}

TEST(ConfigErrors, WorkloadsMustBeInsideNodeCgroupAndUnique) {
  std::string msg = errorOf(std::string(kNode) +
                            "workloads:\n"                                     // 4
                            "  - {cgroup: /meshx/a, namespace: x}\n"           // 5
                            "  - {cgroup: /mesh/a, namespace: x}\n"            // 6
                            "  - {cgroup: /mesh/a, namespace: y}\n"            // 7
                            "  - {cgroup: /other, namespace: x}\n");           // 8
  EXPECT_TRUE(hasText(msg, "t.yaml:5:14: workloads[0].cgroup: must be node.cgroup (/mesh) or below it, got '/meshx/a'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:14: workloads[2].cgroup: cgroup '/mesh/a' is already used by workloads[1]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:14: workloads[3].cgroup: must be node.cgroup (/mesh) or below it"));
  EXPECT_EQ(lineCount(msg), 3u) << msg;
}

TEST(ConfigErrors, LabelsMustBeStrings) {
  std::string msg = errorOf(std::string(kNode) +
                            "workloads:\n"
                            "  - {cgroup: /mesh/a, namespace: x, labels: {app: [a]}}\n"   // 5
                            "  - {cgroup: /mesh/b, namespace: x, labels: [app]}\n");      // 6
  EXPECT_TRUE(hasText(msg, "t.yaml:5:51: workloads[0].labels.app: must be a string, got a list"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:45: workloads[1].labels: must be a map of strings to strings, got a list"));
}

TEST(ConfigErrors, VipRules) {
  std::string msg = errorOf(withServices(
      "  - {name: a, namespace: d, vips: [0.0.0.0], ports: [{port: 80}]}\n"                 // 5
      "  - {name: b, namespace: d, vips: ['::'], ports: [{port: 80}]}\n"                    // 6
      "  - {name: c, namespace: d, vips: [10.0.0.1, 10.0.0.2], ports: [{port: 80}]}\n"      // 7
      "  - {name: e, namespace: d, vips: [10.0.0.3, 'fd00::1', 10.0.0.4], ports: [{port: 80}]}\n"  // 8
      "  - {name: f, namespace: d, vips: [], ports: [{port: 80}]}\n"                        // 9
      "  - {name: g, namespace: d, vips: [not-an-ip, 10.0.0.300], ports: [{port: 80}]}\n"));  // 10
  EXPECT_TRUE(hasText(msg, "t.yaml:5:36: services[0].vips[0]: must not be the unspecified address 0.0.0.0"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:36: services[1].vips[0]: must not be the unspecified address ::"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:46: services[2].vips[1]: a service has at most one VIP per address family; IPv4 is already 10.0.0.1"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:35: services[3].vips: must list at most 2 addresses (one IPv4 and one IPv6), got 3"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:35: services[4].vips: must list at least one address"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:36: services[5].vips[0]: must be an IPv4 or IPv6 address, got 'not-an-ip'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:47: services[5].vips[1]: must be an IPv4 or IPv6 address, got '10.0.0.300'"));
  EXPECT_EQ(lineCount(msg), 7u) << msg;
}

TEST(ConfigErrors, MappedVipsAndEndpointsOfAnUnservedFamily) {
  std::string msg = errorOf(withServices(
      "  - {name: a, namespace: d, vips: ['::ffff:127.96.0.1'], ports: [{port: 80}]}\n"                  // 5
      "  - name: b\n"                                                                                  // 6
      "    namespace: d\n"                                                                             // 7
      "    vips: [127.96.0.2]\n"                                                                       // 8
      "    ports: [{port: 80}]\n"                                                                      // 9
      "    endpoints: [{address: '::1'}, {address: 127.0.0.1}]\n"));                                  // 10
  EXPECT_TRUE(hasText(msg, "t.yaml:5:36: services[0].vips[0]: an IPv4-mapped IPv6 VIP never matches"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:17: services[1].endpoints[0]: endpoint ::1 is IPv6 but the service has no IPv6 VIP"));
  EXPECT_EQ(lineCount(msg), 2u) << msg;
}

TEST(ConfigErrors, VipPortProtocolBelongsToOneService) {
  std::string msg = errorOf(withServices(
      "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}]}\n"                    // 5
      "  - {name: b, namespace: d, vips: [10.0.0.1], ports: [{port: 80, protocol: udp}]}\n"    // 6: ok, udp
      "  - {name: c, namespace: d, vips: [10.0.0.1], ports: [{port: 81}]}\n"                    // 7: ok, port
      "  - {name: e, namespace: d, vips: ['fd00::1', 10.0.0.1], ports: [{port: 80}]}\n"));       // 8: clash
  EXPECT_EQ(msg, "t.yaml:8:66: services[3].ports[0]: VIP 10.0.0.1 port 80/tcp is already used by service d/a (services[0])");
}

TEST(ConfigErrors, PortRules) {
  std::string msg = errorOf(withServices(
      "  - {name: a, namespace: d, vips: [10.0.0.1], ports: []}\n"                                      // 5
      "  - {name: b, namespace: d, vips: [10.0.0.2], ports: [{port: 80}, {name: y, port: 81}]}\n"      // 6
      "  - {name: c, namespace: d, vips: [10.0.0.3], ports: [{name: x, port: 80}, {name: x, port: 81}]}\n"  // 7
      "  - {name: e, namespace: d, vips: [10.0.0.4], ports: [{name: x, port: 80}, {name: y, port: 80, protocol: TCP}]}\n"  // 8
      "  - {name: f, namespace: d, vips: [10.0.0.5], ports: [{port: 80, protocol: sctp}]}\n"));          // 9
  EXPECT_TRUE(hasText(msg, "t.yaml:5:54: services[0].ports: must list at least one port"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:55: services[1].ports[0].name: is required when a service has more than one port"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:76: services[2].ports[1].name: port name 'x' is already used by services[2].ports[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:76: services[3].ports[1]: port 80/tcp is already listed as services[3].ports[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:76: services[4].ports[0].protocol: must be tcp or udp, got 'sctp'"));
  EXPECT_EQ(lineCount(msg), 5u) << msg;
}

TEST(ConfigErrors, ModeAndLoadBalancing) {
  std::string msg = errorOf(withServices(
      "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}], mode: mtls}\n"           // 5: ok
      "  - {name: b, namespace: d, vips: [10.0.0.2], ports: [{port: 80}], mode: http}\n"           // 6
      "  - {name: c, namespace: d, vips: [10.0.0.3], ports: [{port: 80}], mode: L4}\n"             // 7
      "  - {name: e, namespace: d, vips: [10.0.0.4], ports: [{port: 80}], loadBalancing: rr}\n"));  // 8
  EXPECT_TRUE(hasText(msg, "t.yaml:6:74: services[1].mode: mode 'http' is not implemented by this build yet; use l4 or mtls"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:74: services[2].mode: must be one of: l4, mtls, got 'L4'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:83: services[3].loadBalancing: must be one of: random, maglev, got 'rr'"));
  EXPECT_EQ(lineCount(msg), 3u) << msg;
}

TEST(ConfigErrors, EndpointPortNeedsExactlyOneServicePort) {
  std::string msg = errorOf(withServices(
      "  - name: a\n"
      "    namespace: d\n"
      "    vips: [10.0.0.1]\n"
      "    ports: [{name: x, port: 80}, {name: y, port: 81}]\n"
      "    endpoints:\n"                                   // 9
      "      - {address: 10.1.0.1, port: 8080}\n"));       // 10
  EXPECT_TRUE(hasText(msg, "t.yaml:10:35: services[0].endpoints[0].port: an endpoint may only set port when the "
                           "service has exactly one port; this service has 2"));
  EXPECT_EQ(lineCount(msg), 1u) << msg;
}

TEST(ConfigErrors, EndpointAddressAndDuplicates) {
  std::string msg = errorOf(withServices(
      "  - name: a\n"
      "    namespace: d\n"
      "    vips: [10.0.0.1]\n"
      "    ports: [{port: 80, targetPort: 8080}]\n"
      "    endpoints:\n"                                    // 9
      "      - {address: 10.1.0.1}\n"                       // 10
      "      - {address: 10.1.0.1, port: 8080}\n"           // 11: same effective port
      "      - {address: 10.1.0.1, port: 8081}\n"           // 12: ok
      "      - {address: 10.1.0.1, port: 8081}\n"           // 13
      "      - {address: '::'}\n"                           // 14
      "      - {address: host.example}\n"));                // 15
  EXPECT_TRUE(hasText(msg, "t.yaml:11:9: services[0].endpoints[1]: duplicate endpoint 10.1.0.1 port 8080; already listed as services[0].endpoints[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:13:9: services[0].endpoints[3]: duplicate endpoint 10.1.0.1 port 8081; already listed as services[0].endpoints[2]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:14:19: services[0].endpoints[4].address: must not be the unspecified address ::"));
  EXPECT_TRUE(hasText(msg, "t.yaml:15:19: services[0].endpoints[5].address: must be an IPv4 or IPv6 address, got 'host.example'"));
  EXPECT_EQ(lineCount(msg), 4u) << msg;
}

TEST(ConfigErrors, DuplicateServiceName) {
  std::string msg = errorOf(withServices(
      "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}]}\n"     // 5
      "  - {name: a, namespace: e, vips: [10.0.0.2], ports: [{port: 80}]}\n"     // 6: other namespace, ok
      "  - {name: a, namespace: d, vips: [10.0.0.3], ports: [{port: 80}]}\n"));  // 7
  EXPECT_EQ(msg, "t.yaml:7:12: services[2].name: service d/a is already defined by services[0]");
}

// ---------------------------------------------------------------- errors: keys

TEST(ConfigErrors, UnknownKeysSuggestTheClosestField) {
  std::string msg = errorOf(withServices(
      "  - name: a\n"
      "    namespace: d\n"
      "    vips: [10.0.0.1]\n"
      "    ports: [{port: 80, targetport: 81}]\n"            // 8
      "    endpoints:\n"
      "      - {address: 10.1.0.1, wieght: 3}\n"             // 10
      "    colour: blue\n"                                   // 11
      "servics: []\n"                                        // 12
      "<<: {}\n"));                                          // 13
  EXPECT_TRUE(hasText(msg, "t.yaml:8:24: services[0].ports[0].targetport: unknown field 'targetport'; did you mean 'targetPort'?"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:29: services[0].endpoints[0].wieght: unknown field 'wieght'; did you mean 'weight'?"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:5: services[0].colour: unknown field 'colour'\n"));
  EXPECT_TRUE(hasText(msg, "t.yaml:12:1: servics: unknown field 'servics'; did you mean 'services'?"));
  EXPECT_TRUE(hasText(msg, "t.yaml:13:1: <<: unknown field '<<'; YAML merge keys are not supported"));
  EXPECT_EQ(lineCount(msg), 5u) << msg;
}

TEST(ConfigErrors, RepeatedAndNonStringKeys) {
  std::string msg = errorOf(
      "node:\n"
      "  name: a\n"
      "  cgroup: /x\n"
      "  name: b\n"               // 4
      "[1, 2]: x\n");             // 5
  EXPECT_TRUE(hasText(msg, "t.yaml:4:3: node.name: field is given more than once"));
  EXPECT_TRUE(hasText(msg, "t.yaml:5:1: : field names must be strings, got a list"));
}

// ---------------------------------------------------------------- errors: collection

TEST(ConfigErrors, ReportsManyProblemsAtOnceOnePerLine) {
  std::string msg = errorOf(
      "node: {name: n, cgroup: /x}\n"
      "services:\n"
      "  - {name: A, namespace: d, vips: [1.2.3.4], ports: [{port: 0}]}\n"
      "  - {name: b, namespace: D, vips: [1.2.3.5], ports: [{port: 80}], mode: x}\n"
      "  - {name: c, namespace: d, vips: [1.2.3.6], ports: [{port: 80}], endpoints: [{address: 1.1.1.1, weight: 0}]}\n");
  EXPECT_EQ(lineCount(msg), 5u) << msg;
  for (std::string_view needle : {"services[0].name", "services[0].ports[0].port", "services[1].namespace",
                                  "services[1].mode", "services[2].endpoints[0].weight"}) {
    EXPECT_TRUE(hasText(msg, std::string(needle) + ": "));
  }
  // Every line is self-contained: source, position, path.
  std::size_t start = 0;
  while (start < msg.size()) {
    std::size_t end = msg.find('\n', start);
    if (end == std::string::npos) end = msg.size();
    EXPECT_EQ(msg.compare(start, 7, "t.yaml:"), 0) << msg.substr(start, end - start);
    start = end + 1;
  }
}

TEST(ConfigErrors, StopsAfterTwentyProblems) {
  std::string yaml = std::string(kNode) + "services:\n";
  for (int i = 0; i < 40; ++i) {
    yaml += "  - {name: s" + std::to_string(i) + ", namespace: d, vips: [10.0.0.1], ports: [{port: 0}]}\n";
  }
  std::string msg = errorOf(yaml);
  EXPECT_EQ(lineCount(msg), 21u) << msg;
  EXPECT_TRUE(hasText(msg, "services[19].ports[0].port: must be 1..65535, got 0"));
  EXPECT_FALSE(hasText(msg, "services[20]"));
  EXPECT_TRUE(hasText(msg, "t.yaml: stopped after 20 errors; fix these and check again"));
}

TEST(ConfigErrors, EndpointLimitPerService) {
  std::string yaml = withServices("  - name: a\n    namespace: d\n    vips: [10.0.0.1]\n    ports: [{port: 80}]\n"
                                  "    endpoints:\n");  // line 9
  for (std::size_t i = 0; i <= kMaxEndpointsPerService; ++i) {
    yaml += "      - {address: 10.1." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250) + "}\n";
  }
  std::string msg = errorOf(yaml);
  EXPECT_EQ(msg, "t.yaml:10:7: services[0].endpoints: has 257 endpoints; at most 256 are allowed per service");
  // Exactly at the limit is fine.
  yaml = yaml.substr(0, yaml.rfind("      - {"));
  Snapshot s = parseOk(yaml);
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_EQ(s.services[0].endpoints.size(), kMaxEndpointsPerService);
}

TEST(ConfigErrors, FrontendLimitAcrossServices) {
  // One service with 2 VIPs x 32769 ports = 65538 frontends: just over the limit.
  std::string yaml = withServices("  - name: a\n    namespace: d\n    vips: [10.0.0.1, 'fd00::1']\n    ports:\n");
  for (int port = 1; port <= 32769; ++port) {
    yaml += "      - {name: p" + std::to_string(port) + ", port: " + std::to_string(port) + "}\n";
  }
  std::string msg = errorOf(yaml);
  EXPECT_EQ(msg, "t.yaml:5:3: services: services define 65538 VIP/port combinations; at most 65536 are supported");
}

// ---------------------------------------------------------------- malformed documents

TEST(ConfigMalformed, TopLevelMustBeAMap) {
  EXPECT_EQ(errorOf("- a\n- b\n"), "t.yaml:1:1: (top level): must be a map with the fields node, mesh, nodes, "
                                    "namespaces, workloads, services, authorization; got a list");
  EXPECT_EQ(errorOf("hello\n"), "t.yaml:1:1: (top level): must be a map with the fields node, mesh, nodes, "
                                 "namespaces, workloads, services, authorization; got a string");
}

TEST(ConfigMalformed, EmptyDocumentsAreErrors) {
  for (std::string_view empty : {"", "\n\n", "# only a comment\n", "---\n", "~\n", "null"}) {
    std::string msg = errorOf(empty);
    EXPECT_EQ(msg, "t.yaml: document is empty; expected a map with 'node' (and optionally 'mesh', 'nodes', "
                   "'namespaces', 'workloads', 'services', 'authorization')")
        << "input: " << empty;
  }
}

TEST(ConfigMalformed, MultipleDocumentsAreRejected) {
  EXPECT_EQ(errorOf(std::string(kNode) + "---\n" + std::string(kNode)),
            "t.yaml: contains 2 YAML documents ('---'); a config is exactly one document");
}

TEST(ConfigMalformed, SyntaxErrorsAreLocated) {
  EXPECT_TRUE(hasText(errorOf("node: {name: a,\n"), "t.yaml:2:1: invalid YAML: "));
  EXPECT_TRUE(hasText(errorOf("node:\n  name: a\n   cgroup: b: c\n"), "t.yaml:3:"));
  EXPECT_TRUE(hasText(errorOf("a: *nope\n"), "invalid YAML: "));
}

TEST(ConfigMalformed, StrayCommaDoesNotHangTheParser) {
  // yaml-cpp 0.7 loops forever (allocating) on a flow ',' outside a flow
  // collection; found by the fuzzer. The loader must stop and report it.
  for (std::string_view text : {",", "[a],\n", "node: {name: n, cgroup: /x}\n,\n"}) {
    std::string msg = errorOf(text);
    EXPECT_TRUE(hasText(msg, "invalid YAML: ")) << "input: " << text;
  }
  EXPECT_EQ(errorOf(","), "t.yaml:1:1: invalid YAML: malformed document (the YAML parser stopped making progress)");
}

TEST(ConfigMalformed, GarbageBinaryAndHugeInputsReturnErrors) {
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  EXPECT_FALSE(parseConfig(binary, kSource).ok());
  EXPECT_FALSE(parseConfig(std::string_view("\0\0\0node:\n", 9), kSource).ok());
  EXPECT_FALSE(parseConfig("\xff\xfe\x00n\x00o\x00", kSource).ok());
  EXPECT_FALSE(parseConfig("node: {name: \"\\xff\\u0000\", cgroup: \"/a\\x00b\"}", kSource).ok());

  std::string deep(100000, '[');
  EXPECT_EQ(errorOf(deep), "t.yaml:1:1: invalid YAML: nested too deeply");
  std::string deepMaps;
  for (int i = 0; i < 5000; ++i) deepMaps += "{a: ";
  EXPECT_FALSE(parseConfig(deepMaps, kSource).ok());

  std::string huge(kMaxConfigBytes + 1, '#');
  Result<Snapshot> r = parseConfig(huge, kSource);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "t.yaml: config is 16777217 bytes; the limit is 16777216");
}

TEST(ConfigMalformed, AliasExpansionIsBounded) {
  // Each level references the previous one ten times: 10^7 leaves if expanded.
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 7; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int j = 1; j < 10; ++j) yaml += ", " + prev;
    yaml += "]\n";
  }
  EXPECT_FALSE(parseConfig(yaml, kSource).ok());  // unknown keys, but must not expand
  std::string services = std::string(kNode) +
                         "x: &svc {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}]}\n"
                         "services: [*svc, *svc]\n";
  std::string msg = errorOf(services);
  EXPECT_TRUE(hasText(msg, "x: unknown field 'x'"));
  EXPECT_TRUE(hasText(msg, "services[1].name: service d/a is already defined by services[0]"));
}

// ---------------------------------------------------------------- mesh schema: node, mesh, nodes

TEST(ConfigMesh, DefaultsWhenTheMeshSectionsAreAbsent) {
  Snapshot s = parseOk(kNode);
  EXPECT_EQ(s.nodeAddress, std::nullopt);
  const state::MeshSettings defaults;
  EXPECT_EQ(s.mesh.trustDomain, "cluster.local");
  EXPECT_EQ(s.mesh.trustDomain, defaults.trustDomain);
  EXPECT_EQ(s.mesh.caCertFile, "");
  EXPECT_EQ(s.mesh.caKeyFile, "");
  EXPECT_EQ(s.mesh.certificateTtlSeconds, 3600u);
  EXPECT_EQ(s.mesh.outboundPort, 15001);
  EXPECT_EQ(s.mesh.inboundPort, 15008);
  EXPECT_EQ(s.mesh.workers, 0u);
  EXPECT_FALSE(s.mesh.socketRedirect);
  EXPECT_TRUE(s.peers.empty());
  EXPECT_TRUE(s.namespaces.empty());
  EXPECT_TRUE(s.authorization.empty());

  // Null and empty maps/lists are "not set" too.
  s = parseOk(std::string(kNode) + "mesh:\nnodes: []\nnamespaces: ~\nauthorization: []\n");
  EXPECT_EQ(s.mesh.trustDomain, "cluster.local");
  EXPECT_TRUE(s.peers.empty());
  s = parseOk(std::string(kNode) + "mesh: {ca: {}}\n");  // no files: the development CA
  EXPECT_EQ(s.mesh.caCertFile, "");
}

TEST(ConfigMesh, EveryFieldIsRead) {
  Snapshot s = parseOk(
      "node: {name: node-a, cgroup: /nm/node-a, address: 10.77.0.1}\n"
      "mesh:\n"
      "  trustDomain: prod.example_1\n"
      "  ca: {certFile: /etc/nodemesh/ca.pem, keyFile: /etc/nodemesh/ca-key.pem}\n"
      "  certificateTtlSeconds: 60\n"
      "  outboundPort: 25001\n"
      "  inboundPort: 25008\n"
      "  workers: 256\n"
      "  socketRedirect: true\n");
  EXPECT_EQ(s.nodeAddress, ip("10.77.0.1"));
  EXPECT_EQ(s.mesh.trustDomain, "prod.example_1");
  EXPECT_EQ(s.mesh.caCertFile, "/etc/nodemesh/ca.pem");
  EXPECT_EQ(s.mesh.caKeyFile, "/etc/nodemesh/ca-key.pem");
  EXPECT_EQ(s.mesh.certificateTtlSeconds, 60u);
  EXPECT_EQ(s.mesh.outboundPort, 25001);
  EXPECT_EQ(s.mesh.inboundPort, 25008);
  EXPECT_EQ(s.mesh.workers, 256u);
  EXPECT_TRUE(s.mesh.socketRedirect);

  s = parseOk(std::string(kNode) + "mesh: {certificateTtlSeconds: 2592000, workers: 0, socketRedirect: false}\n");
  EXPECT_EQ(s.mesh.certificateTtlSeconds, 2592000u);
  s = parseOk("node: {name: n, cgroup: /x, address: 'fd00:77::1'}\n");
  EXPECT_EQ(s.nodeAddress, ip("fd00:77::1"));
}

TEST(ConfigMesh, FieldErrors) {
  std::string msg = errorOf(std::string(kNode) +
                            "mesh:\n"                                   // 4
                            "  trustDomain: Cluster.local\n"            // 5
                            "  ca: {certFile: etc/ca.pem}\n"            // 6
                            "  certificateTtlSeconds: 59\n"             // 7
                            "  outboundPort: 0\n"                       // 8
                            "  inboundPort: 65536\n"                    // 9
                            "  workers: 257\n"                          // 10
                            "  socketRedirect: yes\n"                   // 11
                            "  trustdomain: x\n");                      // 12
  EXPECT_TRUE(hasText(msg, "t.yaml:5:16: mesh.trustDomain: trust domain \"Cluster.local\" contains 'C' (trust domains "
                           "are lowercase)"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:18: mesh.ca.certFile: must be an absolute path (starting with '/'), got 'etc/ca.pem'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:7: mesh.ca.keyFile: is required when certFile is given (give both files, or "
                           "neither for a development CA)"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:26: mesh.certificateTtlSeconds: must be 60..2592000, got 59"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:17: mesh.outboundPort: must be 1..65535, got 0"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:16: mesh.inboundPort: must be 1..65535, got 65536"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:12: mesh.workers: must be 0..256, got 257"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:19: mesh.socketRedirect: must be true or false, got 'yes'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:12:3: mesh.trustdomain: unknown field 'trustdomain'; did you mean 'trustDomain'?"));
  EXPECT_EQ(lineCount(msg), 9u) << msg;

  msg = errorOf(std::string(kNode) + "mesh: {ca: {keyFile: /k.pem}, certificateTtlSeconds: 2592001, trustDomain: ''}\n");
  EXPECT_TRUE(hasText(msg, "t.yaml:4:12: mesh.ca.certFile: is required when keyFile is given"));
  EXPECT_TRUE(hasText(msg, "mesh.certificateTtlSeconds: must be 60..2592000, got 2592001"));
  EXPECT_TRUE(hasText(msg, "mesh.trustDomain: trust domain is empty"));
  EXPECT_EQ(lineCount(msg), 3u) << msg;

  msg = errorOf(std::string(kNode) + "mesh: {ca: {certFile: /ca/, keyFile: \"/k\\x01\"}, caFile: /x}\n");
  EXPECT_TRUE(hasText(msg, "mesh.ca.certFile: must name a file, not a directory, got '/ca/'"));
  EXPECT_TRUE(hasText(msg, "mesh.ca.keyFile: must not contain control characters"));
  EXPECT_TRUE(hasText(msg, "t.yaml:4:49: mesh.caFile: unknown field 'caFile'"));
  EXPECT_FALSE(hasText(msg, "did you mean"));  // 'ca' is too far from 'caFile' for a hint
  EXPECT_EQ(lineCount(msg), 3u) << msg;

  EXPECT_TRUE(hasText(errorOf(std::string(kNode) + "mesh: [a]\n"), "t.yaml:4:7: mesh: must be a map, got a list"));
  EXPECT_TRUE(hasText(errorOf(std::string(kNode) + "mesh: {ca: /etc/ca.pem}\n"),
                      "t.yaml:4:12: mesh.ca: must be a map, got a string"));
}

TEST(ConfigMesh, InboundAndOutboundPortsDiffer) {
  EXPECT_EQ(errorOf(std::string(kNode) + "mesh: {outboundPort: 9000, inboundPort: 9000}\n"),
            "t.yaml:4:41: mesh.inboundPort: inboundPort and outboundPort must differ, both are 9000 (one listener "
            "takes captured connections, the other HBONE from peers)");
  // Against the default of the other one.
  EXPECT_TRUE(hasText(errorOf(std::string(kNode) + "mesh: {outboundPort: 15008}\n"),
                      "t.yaml:4:22: mesh.outboundPort: inboundPort and outboundPort must differ, both are 15008"));
  EXPECT_TRUE(hasText(errorOf(std::string(kNode) + "mesh: {inboundPort: 15001}\n"),
                      "t.yaml:4:21: mesh.inboundPort: inboundPort and outboundPort must differ, both are 15001"));
  // A bad port is reported once, not compared.
  EXPECT_EQ(lineCount(errorOf(std::string(kNode) + "mesh: {outboundPort: 0, inboundPort: 0}\n")), 2u);
  Snapshot s = parseOk(std::string(kNode) + "mesh: {outboundPort: 15008, inboundPort: 15001}\n");
  EXPECT_EQ(s.mesh.outboundPort, 15008);
}

TEST(ConfigNodes, PeersAreSortedAndEndpointsMayNameThem) {
  Snapshot s = parseOk(
      "node: {name: node-a, cgroup: /nm/node-a, address: 10.77.0.1}\n"
      "nodes:\n"
      "  - {name: node-c, address: 10.77.0.3}\n"
      "  - {name: node-b, address: 'fd00:77::2'}\n"
      "services:\n"
      "  - name: web\n"
      "    namespace: shop\n"
      "    vips: [10.96.0.1, 'fd00:96::1']\n"
      "    ports: [{port: 80}]\n"
      "    endpoints:\n"
      "      - {address: 10.1.0.1}\n"
      "      - {address: 10.1.0.2, node: node-a}\n"
      "      - {address: 10.2.0.1, node: node-b}\n"
      "      - {address: 10.3.0.1, node: node-c}\n");
  ASSERT_EQ(s.peers.size(), 2u);
  EXPECT_EQ(s.peers[0].name, "node-b");
  EXPECT_EQ(s.peers[0].address, ip("fd00:77::2"));
  EXPECT_EQ(s.peers[1].name, "node-c");
  EXPECT_EQ(s.peers[1].address, ip("10.77.0.3"));
  ASSERT_NE(s.findPeer("node-c"), nullptr);
  EXPECT_EQ(s.findPeer("node-a"), nullptr);
  ASSERT_EQ(s.services.size(), 1u);
  EXPECT_EQ(s.services[0].endpoints[3].node, "node-c");
}

TEST(ConfigNodes, PeerErrors) {
  std::string msg = errorOf(
      "node: {name: node-a, cgroup: /x, address: 10.77.0.1}\n"   // 1
      "nodes:\n"                                                 // 2
      "  - {name: node-b, address: 10.77.0.2}\n"                 // 3
      "  - {name: node-b, address: 10.77.0.3}\n"                 // 4: duplicate name
      "  - {name: node-a, address: 10.77.0.4}\n"                 // 5: this node
      "  - {name: node-d, address: 10.77.0.2}\n"                 // 6: duplicate address
      "  - {name: node-e, address: 10.77.0.1}\n"                 // 7: this node's address
      "  - {name: node-f}\n"                                     // 8
      "  - {name: Node_G, address: nope}\n"                      // 9
      "  - {address: 10.77.0.9, zone: a}\n"                      // 10
      "  - node-h\n");                                           // 11
  EXPECT_TRUE(hasText(msg, "t.yaml:4:12: nodes[1].name: node 'node-b' is already listed as nodes[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:5:12: nodes[2].name: node 'node-a' is this node (node.name); list only the other nodes"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:29: nodes[3].address: address 10.77.0.2 is already used by nodes[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:29: nodes[4].address: address 10.77.0.1 is this node's own address (node.address)"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:5: nodes[5].address: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:12: nodes[6].name: must be a DNS-1123 subdomain"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:29: nodes[6].address: must be an IPv4 or IPv6 address, got 'nope'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:5: nodes[7].name: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:26: nodes[7].zone: unknown field 'zone'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:5: nodes[8]: must be a map, got a string"));
  EXPECT_EQ(lineCount(msg), 10u) << msg;

  EXPECT_TRUE(hasText(errorOf(std::string(kNode) + "nodes: {name: b}\n"), "t.yaml:4:8: nodes: must be a list, got a map"));
  EXPECT_TRUE(hasText(errorOf(std::string(kNode) + "node: {name: b, cgroup: /x}\n"),
                      "node: field is given more than once"));
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: /x, address: 0.0.0.0}\n"),
                      "t.yaml:1:38: node.address: must not be the unspecified address 0.0.0.0"));
  EXPECT_TRUE(hasText(errorOf("node: {name: n, cgroup: /x, adress: 10.0.0.1}\n"),
                      "node.adress: unknown field 'adress'; did you mean 'address'?"));
}

TEST(ConfigNodes, PeerLimit) {
  std::string yaml = "node: {name: n, cgroup: /x, address: 10.0.0.1}\nnodes:\n";
  for (std::size_t i = 0; i <= kMaxPeers; ++i)
    yaml += "  - {name: p" + std::to_string(i) + ", address: 10.1." + std::to_string(i / 250) + "." +
            std::to_string(1 + i % 250) + "}\n";
  EXPECT_EQ(errorOf(yaml), "t.yaml:3:3: nodes: has 4097 nodes; at most 4096 are allowed");
  yaml = yaml.substr(0, yaml.rfind("  - {"));
  EXPECT_EQ(parseOk(yaml).peers.size(), kMaxPeers);
}

TEST(ConfigNodes, EndpointNodeMustBeThisNodeOrAListedPeer) {
  std::string msg = errorOf(
      "node: {name: node-a, cgroup: /x, address: 10.77.0.1}\n"                      // 1
      "nodes: [{name: node-b, address: 10.77.0.2}]\n"                               // 2
      "services:\n"                                                                 // 3
      "  - name: web\n"                                                             // 4
      "    namespace: shop\n"                                                       // 5
      "    vips: [10.96.0.1]\n"                                                     // 6
      "    ports: [{port: 80}]\n"                                                   // 7
      "    endpoints:\n"                                                            // 8
      "      - {address: 10.1.0.1, node: node-b}\n"                                 // 9
      "      - {address: 10.1.0.2, node: node-c}\n"                                 // 10
      "      - {address: 10.1.0.3, node: Node-A}\n");                               // 11
  EXPECT_TRUE(hasText(msg, "t.yaml:10:35: services[0].endpoints[1].node: unknown node 'node-c'; list it under nodes "
                           "(or leave node empty for this node, 'node-a')"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:35: services[0].endpoints[2].node: unknown node 'Node-A'"));
  EXPECT_EQ(lineCount(msg), 2u) << msg;
  // Without any peers listed, the same.
  EXPECT_TRUE(hasText(errorOf(withServices("  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}], "
                                           "endpoints: [{address: 10.0.0.2, node: elsewhere}]}\n")),
                      "services[0].endpoints[0].node: unknown node 'elsewhere'; list it under nodes"));
}

TEST(ConfigNodes, NodeAddressIsRequiredWhenSomethingUsesIt) {
  const std::string peers =
      "node: {name: node-a, cgroup: /x}\n"             // 1
      "nodes: [{name: node-b, address: 10.77.0.2}]\n"  // 2
      "services:\n";                                   // 3
  // An endpoint on another node.
  EXPECT_EQ(errorOf(peers + "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}], "
                            "endpoints: [{address: 10.1.0.1, node: node-a}, {address: 10.2.0.1, node: node-b}]}\n"),
            "t.yaml:1:7: node.address: is required when endpoints run on other nodes (services[0].endpoints[1] is "
            "on 'node-b')");
  // An mtls service while peers exist.
  EXPECT_EQ(errorOf(peers + "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}], mode: mtls}\n"),
            "t.yaml:1:7: node.address: is required when mtls services (services[0]) and peer nodes are configured: "
            "peers reach this node's proxy there");
  // Neither: single node mtls, or peers with only local l4 services.
  parseOk(std::string(kNode) + "services: [{name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}], mode: mtls}]\n");
  parseOk(peers + "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{port: 80}], "
                  "endpoints: [{address: 10.1.0.1, node: node-a}, {address: 10.1.0.2}]}\n");
}

// ---------------------------------------------------------------- mesh schema: namespaces, workloads

TEST(ConfigNamespaces, ParsedSortedWithDefaults) {
  Snapshot s = parseOk(std::string(kNode) +
                       "namespaces:\n"
                       "  - name: shop\n"
                       "    mesh: enabled\n"
                       "    inbound: strict\n"
                       "    limits: {maxConnections: 1000, maxBufferedBytes: 16777216}\n"
                       "  - {name: demo}\n"
                       "  - {name: legacy, mesh: disabled, inbound: permissive, limits: {maxConnections: 0}}\n"
                       "  - {name: big, limits: {maxConnections: 4294967295, maxBufferedBytes: 9223372036854775807}}\n");
  ASSERT_EQ(s.namespaces.size(), 4u);
  EXPECT_EQ(s.namespaces[0].name, "big");
  EXPECT_EQ(s.namespaces[0].limits.maxConnections, 4294967295u);
  EXPECT_EQ(s.namespaces[0].limits.maxBufferedBytes, 9223372036854775807u);
  EXPECT_EQ(s.namespaces[1].name, "demo");
  EXPECT_FALSE(s.namespaces[1].meshed);
  EXPECT_EQ(s.namespaces[1].inbound, state::InboundMode::kPermissive);
  EXPECT_EQ(s.namespaces[1].limits, state::TenancyLimits{});
  EXPECT_EQ(s.namespaces[2].name, "legacy");
  EXPECT_FALSE(s.namespaces[2].meshed);
  EXPECT_EQ(s.namespaces[2].limits.maxConnections, 0u);
  EXPECT_EQ(s.namespaces[3].name, "shop");
  EXPECT_TRUE(s.namespaces[3].meshed);
  EXPECT_EQ(s.namespaces[3].inbound, state::InboundMode::kStrict);
  EXPECT_EQ(s.namespaces[3].limits.maxConnections, 1000u);
  EXPECT_EQ(s.namespaces[3].limits.maxBufferedBytes, 16777216u);
  ASSERT_NE(s.findNamespace("shop"), nullptr);
  EXPECT_EQ(s.findNamespace("nope"), nullptr);
}

TEST(ConfigNamespaces, Errors) {
  std::string msg = errorOf(std::string(kNode) +
                            "namespaces:\n"                                                 // 4
                            "  - {name: shop, mesh: on}\n"                                  // 5
                            "  - {name: web, inbound: STRICT}\n"                            // 6
                            "  - {name: shop}\n"                                            // 7
                            "  - {name: Bad_ns, limits: {maxConnections: -1}}\n"            // 8
                            "  - {name: x, limits: {maxConnections: 4294967296, maxBytes: 1}}\n"  // 9
                            "  - {mesh: enabled}\n"                                         // 10
                            "  - {name: y, limits: 100}\n");                                // 11
  EXPECT_TRUE(hasText(msg, "t.yaml:5:24: namespaces[0].mesh: must be one of: enabled, disabled, got 'on'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:26: namespaces[1].inbound: must be one of: strict, permissive, got 'STRICT'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:12: namespaces[2].name: namespace 'shop' is already listed as namespaces[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:12: namespaces[3].name: must be a DNS-1123 label"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:45: namespaces[3].limits.maxConnections: must be 0..4294967295, got -1"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:40: namespaces[4].limits.maxConnections: must be 0..4294967295, got 4294967296"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:52: namespaces[4].limits.maxBytes: unknown field 'maxBytes'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:5: namespaces[5].name: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:23: namespaces[6].limits: must be a map, got a string"));
  EXPECT_EQ(lineCount(msg), 9u) << msg;

  std::string yaml = std::string(kNode) + "namespaces:\n";
  for (std::size_t i = 0; i <= kMaxNamespaces; ++i) yaml += "  - {name: ns" + std::to_string(i) + "}\n";
  EXPECT_EQ(errorOf(yaml), "t.yaml:5:3: namespaces: has 4097 namespaces; at most 4096 are allowed");
}

struct MeshResolution {
  bool meshed;
  state::InboundMode inbound;
};

TEST(ConfigWorkloads, MeshAndInboundResolveFromWorkloadThenNamespaceThenDefault) {
  using state::InboundMode;
  const std::string head = std::string(kNode) +
                           "namespaces:\n"
                           "  - {name: on-strict, mesh: enabled, inbound: strict}\n"
                           "  - {name: off-default}\n"
                           "workloads:\n";
  const std::vector<std::pair<std::string, MeshResolution>> cases = {
      {"namespace: on-strict", {true, InboundMode::kStrict}},
      {"namespace: on-strict, mesh: disabled", {false, InboundMode::kStrict}},
      {"namespace: on-strict, inbound: permissive", {true, InboundMode::kPermissive}},
      {"namespace: off-default", {false, InboundMode::kPermissive}},
      {"namespace: off-default, mesh: enabled, inbound: strict", {true, InboundMode::kStrict}},
      {"namespace: unlisted", {false, InboundMode::kPermissive}},
      {"namespace: unlisted, mesh: enabled", {true, InboundMode::kPermissive}},
      {"namespace: unlisted, inbound: strict", {false, InboundMode::kStrict}},
  };
  for (const auto& [fields, want] : cases) {
    SCOPED_TRACE(fields);
    Snapshot s = parseOk(head + "  - {cgroup: /mesh/w, " + fields + "}\n");
    ASSERT_EQ(s.workloads.size(), 1u);
    EXPECT_EQ(s.workloads[0].meshed, want.meshed);
    EXPECT_EQ(s.workloads[0].inbound, want.inbound);
  }
}

TEST(ConfigWorkloads, Addresses) {
  Snapshot s = parseOk(std::string(kNode) +
                       "workloads:\n"
                       "  - {cgroup: /mesh/a, namespace: x, addresses: [10.1.1.2, 'fd00:1::2']}\n"
                       "  - {cgroup: /mesh/b, namespace: x, addresses: []}\n"
                       "  - {cgroup: /mesh/c, namespace: x}\n");
  ASSERT_EQ(s.workloads.size(), 3u);
  EXPECT_EQ(s.workloads[0].addresses, (std::vector<IpAddress>{ip("10.1.1.2"), ip("fd00:1::2")}));
  EXPECT_TRUE(s.workloads[1].addresses.empty());
  EXPECT_TRUE(s.workloads[2].addresses.empty());

  std::string msg = errorOf(std::string(kNode) +
                            "workloads:\n"                                                          // 4
                            "  - {cgroup: /mesh/a, namespace: x, addresses: [10.1.1.2, 10.1.1.2]}\n"  // 5
                            "  - {cgroup: /mesh/b, namespace: x, addresses: [10.1.1.3, 10.1.1.2]}\n"  // 6
                            "  - {cgroup: /mesh/c, namespace: x, addresses: ['::', pod-ip]}\n"      // 7
                            "  - {cgroup: /mesh/d, namespace: x, addresses: 10.1.1.9}\n"            // 8
                            "  - {cgroup: /mesh/e, namespace: x, addresses: [10.96.0.1], mesh: yes}\n"  // 9
                            "services: [{name: web, namespace: x, vips: [10.96.0.1], ports: [{port: 80}]}]\n");
  EXPECT_TRUE(hasText(msg, "t.yaml:5:59: workloads[0].addresses[1]: address 10.1.1.2 is already used by "
                           "workloads[0].addresses[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:59: workloads[1].addresses[1]: address 10.1.1.2 is already used by "
                           "workloads[0].addresses[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:49: workloads[2].addresses[0]: must not be the unspecified address ::"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:55: workloads[2].addresses[1]: must be an IPv4 or IPv6 address, got 'pod-ip'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:48: workloads[3].addresses: must be a list, got a string"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:49: workloads[4].addresses[0]: address 10.96.0.1 is a VIP of service x/web"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:67: workloads[4].mesh: must be one of: enabled, disabled, got 'yes'"));
  EXPECT_EQ(lineCount(msg), 7u) << msg;

  std::string many = std::string(kNode) + "workloads: [{cgroup: /mesh/a, namespace: x, addresses: [";
  for (std::size_t i = 0; i <= kMaxAddressesPerWorkload; ++i) many += (i ? ", 10.0.0." : "10.0.0.") + std::to_string(i + 1);
  EXPECT_EQ(errorOf(many + "]}]\n"),
            "t.yaml:4:56: workloads[0].addresses: has 17 addresses; at most 16 are allowed");
}

// ---------------------------------------------------------------- mesh schema: services

TEST(ConfigServices, MtlsModeIsAcceptedForTcpOnly) {
  Snapshot s = parseOk(withServices(
      "  - {name: a, namespace: d, vips: [10.0.0.1], ports: [{name: x, port: 80}, {name: y, port: 443, protocol: TCP}], "
      "mode: mtls}\n"
      "  - {name: b, namespace: d, vips: [10.0.0.2], ports: [{port: 53, protocol: udp}], mode: l4}\n"));
  ASSERT_EQ(s.services.size(), 2u);
  EXPECT_EQ(s.services[0].mode, state::ServiceMode::kMtls);
  EXPECT_EQ(s.services[1].mode, state::ServiceMode::kL4);

  std::string msg = errorOf(withServices(
      "  - name: dns\n"                                                              // 5
      "    namespace: d\n"                                                           // 6
      "    vips: [10.0.0.3]\n"                                                       // 7
      "    mode: mtls\n"                                                             // 8
      "    ports:\n"                                                                 // 9
      "      - {name: tcp, port: 53}\n"                                              // 10
      "      - {name: udp, port: 53, protocol: udp}\n"));                            // 11
  EXPECT_EQ(msg, "t.yaml:11:9: services[0].ports[1]: port 53/udp in an mtls service: the node proxy carries TCP only "
                 "(put UDP ports in a separate l4 service)");
}

// ---------------------------------------------------------------- mesh schema: authorization

TEST(ConfigAuthorization, RulesKeepFileOrderAndCompile) {
  Snapshot s = parseOk(std::string(kNode) +
                       "authorization:\n"
                       "  - name: deny-legacy\n"
                       "    action: deny\n"
                       "    from: {identities: ['spiffe://cluster.local/ns/legacy/sa/default'], namespaces: [legacy]}\n"
                       "    to: {namespaces: [shop], ports: [8080]}\n"
                       "  - name: allow-shop\n"
                       "    action: allow\n"
                       "    from:\n"
                       "      namespaces: [shop, web]\n"
                       "    to:\n"
                       "      namespaces: [shop]\n"
                       "  - {name: deny-all-telnet, action: deny, to: {ports: [23, 2323]}}\n"
                       "  - {name: a-open, action: allow, from: {}, to: ~}\n");
  ASSERT_EQ(s.authorization.size(), 4u);
  const state::AuthorizationRule& deny = s.authorization[0];
  EXPECT_EQ(deny.name, "deny-legacy");
  EXPECT_EQ(deny.action, state::RuleAction::kDeny);
  EXPECT_EQ(deny.fromIdentities, std::vector<std::string>{"spiffe://cluster.local/ns/legacy/sa/default"});
  EXPECT_EQ(deny.fromNamespaces, std::vector<std::string>{"legacy"});
  EXPECT_EQ(deny.toNamespaces, std::vector<std::string>{"shop"});
  EXPECT_EQ(deny.toPorts, std::vector<std::uint16_t>{8080});
  EXPECT_EQ(s.authorization[1].name, "allow-shop");
  EXPECT_EQ(s.authorization[1].action, state::RuleAction::kAllow);
  EXPECT_EQ(s.authorization[1].fromNamespaces, (std::vector<std::string>{"shop", "web"}));
  EXPECT_TRUE(s.authorization[1].fromIdentities.empty());
  EXPECT_TRUE(s.authorization[1].toPorts.empty());
  EXPECT_EQ(s.authorization[2].toPorts, (std::vector<std::uint16_t>{23, 2323}));
  EXPECT_TRUE(s.authorization[2].toNamespaces.empty());
  EXPECT_EQ(s.authorization[3].name, "a-open");  // not sorted
  EXPECT_TRUE(s.authorization[3].fromNamespaces.empty());

  // What the config accepts, the proxy's compiler accepts.
  auto compiled = policy::Authorization::compile(s.authorization);
  ASSERT_TRUE(compiled) << compiled.error().message;
  EXPECT_EQ(compiled->evaluate({"spiffe://cluster.local/ns/legacy/sa/default", "legacy", "shop", 8080}).rule,
            "deny-legacy");
  EXPECT_EQ(compiled->evaluate({"spiffe://cluster.local/ns/web/sa/x", "web", "shop", 8080}).rule, "allow-shop");

  // Identities follow mesh.trustDomain.
  s = parseOk(std::string(kNode) + "mesh: {trustDomain: prod.example}\n"
                                   "authorization: [{name: r, action: allow, from: {identities: "
                                   "['spiffe://prod.example/ns/a/sa/b']}}]\n");
  EXPECT_EQ(s.authorization[0].fromIdentities[0], "spiffe://prod.example/ns/a/sa/b");
}

TEST(ConfigAuthorization, RuleErrors) {
  std::string msg = errorOf(std::string(kNode) +
                            "authorization:\n"                                                              // 4
                            "  - {name: r1}\n"                                                              // 5
                            "  - {name: r1, action: permit}\n"                                              // 6
                            "  - {name: default, action: allow}\n"                                          // 7
                            "  - {name: no-matching-allow, action: deny}\n"                                 // 8
                            "  - {name: Bad, action: deny, form: {}}\n"                                     // 9
                            "  - {action: deny, to: {namespaces: [shop, shop, Shop], ports: [0, 80, 80]}}\n"  // 10
                            "  - {name: ok, action: deny, to: {port: [1]}, from: [a]}\n");                  // 11
  EXPECT_TRUE(hasText(msg, "t.yaml:5:5: authorization[0].action: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:12: authorization[1].name: rule 'r1' is already defined by authorization[0]"));
  EXPECT_TRUE(hasText(msg, "t.yaml:6:24: authorization[1].action: must be one of: allow, deny, got 'permit'"));
  EXPECT_TRUE(hasText(msg, "t.yaml:7:12: authorization[2].name: the name 'default' is reserved (decisions that no rule "
                           "made report it); choose another"));
  EXPECT_TRUE(hasText(msg, "t.yaml:8:12: authorization[3].name: the name 'no-matching-allow' is reserved"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:12: authorization[4].name: must be a DNS-1123 label"));
  EXPECT_TRUE(hasText(msg, "t.yaml:9:31: authorization[4].form: unknown field 'form'; did you mean 'from'?"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:5: authorization[5].name: is required"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:44: authorization[5].to.namespaces[1]: 'shop' is listed more than once"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:50: authorization[5].to.namespaces[2]: must be a DNS-1123 label"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:65: authorization[5].to.ports[0]: must be 1..65535, got 0"));
  EXPECT_TRUE(hasText(msg, "t.yaml:10:72: authorization[5].to.ports[2]: port 80 is listed more than once"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:35: authorization[6].to.port: unknown field 'port'; did you mean 'ports'?"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:53: authorization[6].from: must be a map, got a list"));
  EXPECT_EQ(lineCount(msg), 14u) << msg;
}

TEST(ConfigAuthorization, IdentityErrors) {
  std::string msg = errorOf(std::string(kNode) +
                            "authorization:\n"                                                          // 4
                            "  - name: r\n"                                                             // 5
                            "    action: allow\n"                                                       // 6
                            "    from:\n"                                                               // 7
                            "      identities:\n"                                                       // 8
                            "        - spiffe://cluster.local/ns/a/sa/b\n"                              // 9
                            "        - spiffe://cluster.local/ns/a/sa/b\n"                              // 10
                            "        - https://cluster.local/ns/a/sa/b\n"                               // 11
                            "        - spiffe://cluster.local\n"                                        // 12
                            "        - spiffe://cluster.local/workload/x\n"                             // 13
                            "        - spiffe://other.domain/ns/a/sa/b\n"                               // 14
                            "        - spiffe://cluster.local/ns/a/sa/b%20\n"                           // 15
                            "        - [x]\n"                                                           // 16
                            "      namespaces: [a, '']\n");                                             // 17
  EXPECT_TRUE(hasText(msg, "t.yaml:10:11: authorization[0].from.identities[1]: "
                           "'spiffe://cluster.local/ns/a/sa/b' is listed more than once"));
  EXPECT_TRUE(hasText(msg, "t.yaml:11:11: authorization[0].from.identities[2]: invalid SPIFFE ID "
                           "\"https://cluster.local/ns/a/sa/b\": scheme must be \"spiffe\""));
  EXPECT_TRUE(hasText(msg, "t.yaml:12:11: authorization[0].from.identities[3]: must be a workload identity "
                           "spiffe://<trust domain>/ns/<namespace>/sa/<service account>"));
  EXPECT_TRUE(hasText(msg, "t.yaml:13:11: authorization[0].from.identities[4]: must be a workload identity"));
  EXPECT_TRUE(hasText(msg, "t.yaml:14:11: authorization[0].from.identities[5]: identity is in trust domain "
                           "'other.domain' but the mesh's is 'cluster.local' (mesh.trustDomain)"));
  EXPECT_TRUE(hasText(msg, "t.yaml:15:11: authorization[0].from.identities[6]: invalid SPIFFE ID"));
  EXPECT_TRUE(hasText(msg, "percent-encoding is not allowed"));
  EXPECT_TRUE(hasText(msg, "t.yaml:16:11: authorization[0].from.identities[7]: must be a string, got a list"));
  EXPECT_TRUE(hasText(msg, "t.yaml:17:23: authorization[0].from.namespaces[1]: must not be empty"));
  EXPECT_EQ(lineCount(msg), 8u) << msg;

  // An invalid mesh.trustDomain is reported once, not again for every identity.
  msg = errorOf(std::string(kNode) + "mesh: {trustDomain: 'Bad'}\n"
                                     "authorization: [{name: r, action: allow, from: {identities: "
                                     "['spiffe://cluster.local/ns/a/sa/b']}}]\n");
  EXPECT_EQ(lineCount(msg), 1u) << msg;
}

TEST(ConfigAuthorization, Limits) {
  std::string yaml = std::string(kNode) + "authorization:\n";
  for (std::size_t i = 0; i <= kMaxAuthorizationRules; ++i)
    yaml += "  - {name: r" + std::to_string(i) + ", action: allow}\n";
  EXPECT_EQ(errorOf(yaml), "t.yaml:5:3: authorization: has 1025 rules; at most 1024 are allowed");
  yaml = yaml.substr(0, yaml.rfind("  - {"));
  EXPECT_EQ(parseOk(yaml).authorization.size(), kMaxAuthorizationRules);

  std::string ports = std::string(kNode) + "authorization: [{name: r, action: deny, to: {ports: [";
  for (std::size_t i = 0; i <= kMaxRuleListEntries; ++i) ports += (i ? ", " : "") + std::to_string(i + 1);
  EXPECT_EQ(errorOf(ports + "]}}]\n"),
            "t.yaml:4:53: authorization[0].to.ports: has 257 entries; at most 256 are allowed");
}

// ---------------------------------------------------------------- the whole mesh schema at once

TEST(ConfigMesh, DocumentedExampleParses) {
  // The "Full example" of docs/CONFIG.md, verbatim (keep in step).
  Snapshot s = parseOk(
      "node:\n"
      "  name: node-a\n"
      "  cgroup: /nm/node-a\n"
      "  address: 10.77.0.1            # where peers reach this node's proxy (HBONE)\n"
      "\n"
      "mesh:                           # optional; every field has a default\n"
      "  trustDomain: cluster.local\n"
      "  ca: {certFile: /etc/nodemesh/ca.pem, keyFile: /etc/nodemesh/ca-key.pem}\n"
      "  certificateTtlSeconds: 3600\n"
      "  outboundPort: 15001\n"
      "  inboundPort: 15008\n"
      "  workers: 0\n"
      "  socketRedirect: false\n"
      "\n"
      "nodes:                          # the other nodes of the mesh\n"
      "  - {name: node-b, address: 10.77.0.2}\n"
      "\n"
      "namespaces:\n"
      "  - name: shop\n"
      "    mesh: enabled\n"
      "    inbound: strict\n"
      "    limits: {maxConnections: 1000, maxBufferedBytes: 16777216}\n"
      "  - name: legacy                # listed for its defaults: not meshed, permissive\n"
      "\n"
      "workloads:\n"
      "  - cgroup: /nm/node-a/checkout\n"
      "    namespace: shop\n"
      "    serviceAccount: checkout\n"
      "    labels: {app: checkout}\n"
      "    addresses: [10.1.1.2]\n"
      "  - cgroup: /nm/node-a/batch\n"
      "    namespace: shop\n"
      "    inbound: permissive         # overrides the namespace's strict\n"
      "    addresses: [10.1.1.3]\n"
      "  - cgroup: /nm/node-a/old\n"
      "    namespace: legacy\n"
      "    addresses: [10.1.1.4]\n"
      "\n"
      "services:\n"
      "  - name: cart\n"
      "    namespace: shop\n"
      "    vips: [10.96.0.20]\n"
      "    ports: [{name: http, port: 80, targetPort: 8080}]\n"
      "    mode: mtls                  # meshed clients go through the node proxies\n"
      "    endpoints:\n"
      "      - {address: 10.1.1.9}                 # this node\n"
      "      - {address: 10.2.1.9, node: node-b}   # a peer: reached over HBONE\n"
      "\n"
      "  - name: web\n"
      "    namespace: shop\n"
      "    vips: [10.96.0.10, \"fd00:96::10\"]\n"
      "    ports:\n"
      "      - name: http\n"
      "        port: 80\n"
      "        protocol: tcp\n"
      "        targetPort: 18081\n"
      "      - name: metrics\n"
      "        port: 9090\n"
      "    mode: l4\n"
      "    loadBalancing: maglev\n"
      "    endpoints:\n"
      "      - address: 10.1.1.20\n"
      "        weight: 2\n"
      "        ready: true\n"
      "        node: node-a\n"
      "      - address: \"fd00:1::20\"\n"
      "\n"
      "  - name: dns\n"
      "    namespace: shop\n"
      "    vips: [10.96.0.53]\n"
      "    ports:\n"
      "      - {port: 53, protocol: UDP, targetPort: 18053}\n"
      "    endpoints:\n"
      "      - {address: 10.1.1.53, port: 18054}   # per-endpoint port: single-port services only\n"
      "\n"
      "  - name: maintenance                       # no endpoints: connect() fails with ECONNREFUSED\n"
      "    namespace: shop\n"
      "    vips: [10.96.0.12]\n"
      "    ports: [{port: 80}]\n"
      "\n"
      "authorization:\n"
      "  - name: deny-legacy\n"
      "    action: deny\n"
      "    from: {identities: [\"spiffe://cluster.local/ns/legacy/sa/default\"], namespaces: [legacy]}\n"
      "    to: {namespaces: [shop], ports: [8080]}\n"
      "  - name: shop-internal\n"
      "    action: allow\n"
      "    from: {namespaces: [shop]}\n"
      "    to: {namespaces: [shop]}\n");
  EXPECT_EQ(s.nodeAddress, ip("10.77.0.1"));
  EXPECT_EQ(s.mesh.caCertFile, "/etc/nodemesh/ca.pem");
  ASSERT_EQ(s.workloads.size(), 3u);
  EXPECT_TRUE(s.workloads[0].meshed);
  EXPECT_EQ(s.workloads[0].inbound, state::InboundMode::kStrict);
  EXPECT_EQ(s.workloads[0].addresses, std::vector<IpAddress>{ip("10.1.1.2")});
  EXPECT_TRUE(s.workloads[1].meshed);
  EXPECT_EQ(s.workloads[1].inbound, state::InboundMode::kPermissive);
  EXPECT_FALSE(s.workloads[2].meshed);
  EXPECT_EQ(s.workloads[2].inbound, state::InboundMode::kPermissive);
  ASSERT_EQ(s.peers.size(), 1u);
  EXPECT_EQ(s.peers[0].name, "node-b");
  ASSERT_EQ(s.namespaces.size(), 2u);
  EXPECT_EQ(s.namespaces[0].name, "legacy");
  EXPECT_EQ(s.namespaces[1].limits.maxConnections, 1000u);
  ASSERT_EQ(s.services.size(), 4u);
  EXPECT_EQ(s.services[0].qualifiedName(), "shop/cart");
  EXPECT_EQ(s.services[0].mode, state::ServiceMode::kMtls);
  EXPECT_EQ(s.services[0].endpoints[1].node, "node-b");
  ASSERT_EQ(s.authorization.size(), 2u);
  EXPECT_TRUE(policy::Authorization::compile(s.authorization).ok());
}

}  // namespace
}  // namespace nodemesh::config
