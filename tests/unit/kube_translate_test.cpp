// Kubernetes objects -> Snapshot: decoding of real API JSON (fixtures under
// tests/fixtures/kubernetes), the translation rules, and malformed objects.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "identity/spiffe_id.h"
#include "sources/kubernetes/mesh_rules.h"
#include "sources/kubernetes/objects.h"
#include "sources/kubernetes/peer_nodes.h"
#include "sources/kubernetes/pod_cgroup.h"
#include "sources/kubernetes/translate.h"

namespace nodemesh::kube {
namespace {

using nlohmann::json;
using state::IpAddress;

std::string fixturePath(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / ".." / "fixtures" / "kubernetes" / name).string();
}

json fixture(const std::string& name) {
  std::ifstream in(fixturePath(name));
  EXPECT_TRUE(in) << "missing fixture " << name;
  return json::parse(in);
}

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

// Loads the five list fixtures into a cache, as the source does.
ClusterState fixtureCluster() {
  ClusterState c;
  const json servicesList = fixture("services.json");
  for (const auto& item : servicesList["items"]) {
    auto s = decodeService(item);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (s) c.services[s->meta.key()] = *s;
  }
  const json endpointslicesList = fixture("endpointslices.json");
  for (const auto& item : endpointslicesList["items"]) {
    auto s = decodeEndpointSlice(item);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (s) c.endpointSlices[s->meta.key()] = *s;
  }
  const json namespacesList = fixture("namespaces.json");
  for (const auto& item : namespacesList["items"]) {
    auto s = decodeNamespace(item);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (s) c.namespaces[s->meta.key()] = *s;
  }
  const json podsList = fixture("pods.json");
  for (const auto& item : podsList["items"]) {
    auto s = decodePod(item);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (s) c.pods[s->meta.key()] = *s;
  }
  const json nodesList = fixture("nodes.json");
  for (const auto& item : nodesList["items"]) {
    auto s = decodeNode(item);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (s) c.nodes[s->meta.key()] = *s;
  }
  return c;
}

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

const state::Workload* workloadOf(const state::Snapshot& s, const std::string& uidUnderscored) {
  for (const auto& w : s.workloads)
    if (w.cgroup.find(uidUnderscored) != std::string::npos) return &w;
  return nullptr;
}

// Every pod has its systemd-driver cgroup.
std::optional<std::string> everyCgroup(const PodObject& p) {
  return podCgroupPath(CgroupDriver::kSystemd, p.meta.uid, p.qosClass);
}

TranslateOptions nodeA() {
  TranslateOptions o;
  o.nodeName = "node-a";
  o.servedCgroup = "/kubepods.slice";
  return o;
}

const state::Service* find(const state::Snapshot& s, const std::string& qualified) {
  for (const auto& svc : s.services)
    if (svc.qualifiedName() == qualified) return &svc;
  return nullptr;
}

TEST(KubeDecode, ReadsRealObjects) {
  ClusterState c = fixtureCluster();
  ASSERT_EQ(c.services.size(), 6u);
  const ServiceObject& web = c.services.at("shop/web");
  ASSERT_EQ(web.ports.size(), 1u);
  EXPECT_EQ(web.ports[0].targetPortName, "http");
  EXPECT_FALSE(web.ports[0].targetPortNumber.has_value());
  EXPECT_EQ(c.services.at("shop/search").type, "ExternalName");
  EXPECT_EQ(c.services.at("shop/cart").clusterIPs, (std::vector<std::string>{"10.96.20.20", "fd00:10:96::20"}));

  const EndpointSliceObject& cart = c.endpointSlices.at("shop/cart-8hd7s");
  EXPECT_EQ(cart.serviceName, "cart");
  ASSERT_EQ(cart.endpoints.size(), 3u);
  EXPECT_EQ(cart.endpoints[0].ready, std::optional<bool>(true));
  EXPECT_EQ(cart.endpoints[1].ready, std::optional<bool>(false));
  EXPECT_EQ(cart.endpoints[2].ready, std::nullopt);  // conditions: {}

  const PodObject& db = c.pods.at("shop/db-0");
  EXPECT_EQ(db.qosClass, "BestEffort");
  EXPECT_EQ(db.nodeName, "node-a");
  EXPECT_EQ(db.meta.uid, "6b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d33");
  EXPECT_EQ(c.namespaces.at("shop").meta.labels.at(kDataplaneModeLabel), "enabled");
}

TEST(KubeDecode, MalformedObjectsSayKindNameAndField) {
  json svc = fixture("services.json")["items"][5];  // shop/web
  svc["spec"]["ports"][0]["port"] = "eighty";
  auto r = decodeService(svc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Service shop/web: spec.ports[0].port: must be an integer, got string");

  svc = fixture("services.json")["items"][5];
  svc["spec"]["ports"][0]["port"] = 70000;
  EXPECT_EQ(decodeService(svc).error().message, "Service shop/web: spec.ports[0].port: must be 1..65535, got 70000");

  json slice = fixture("endpointslices.json")["items"][2];
  slice["endpoints"][1]["conditions"]["ready"] = "yes";
  EXPECT_EQ(decodeEndpointSlice(slice).error().message,
            "EndpointSlice shop/cart-8hd7s: endpoints[1].conditions.ready: must be a boolean, got string");

  json pod = fixture("pods.json")["items"][0];
  pod["metadata"].erase("uid");
  EXPECT_EQ(decodePod(pod).error().message,
            "Pod shop/web-7f9c6d-abcde: metadata.uid: is required (it names the pod's cgroup)");

  EXPECT_EQ(decodeNamespace(json::array()).error().message,
            "Namespace (unnamed): object: must be a JSON object, got array");
  EXPECT_EQ(decodeService(json{{"metadata", {{"namespace", "x"}}}}).error().message,
            "Service (unnamed): metadata.name: is required");
}

TEST(KubeTranslate, FixtureClusterBecomesTheExpectedSnapshot) {
  Translation t = translate(fixtureCluster(), nodeA(), everyCgroup);
  const state::Snapshot& s = t.snapshot;
  EXPECT_EQ(s.nodeName, "node-a");
  EXPECT_EQ(s.servedCgroup, "/kubepods.slice");
  EXPECT_EQ(s.source, "kubernetes");

  std::vector<std::string> names;
  for (const auto& svc : s.services) names.push_back(svc.qualifiedName());
  // shop/db (headless) and shop/search (ExternalName) have no VIP.
  EXPECT_EQ(names, (std::vector<std::string>{"default/kubernetes", "kube-system/kube-dns", "shop/cart", "shop/web"}));

  const state::Service* api = find(s, "default/kubernetes");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->vips, (std::vector<IpAddress>{ip("10.96.0.1")}));
  ASSERT_EQ(api->ports.size(), 1u);
  EXPECT_EQ(api->ports[0].name, "https");
  EXPECT_EQ(api->ports[0].port, 443);
  EXPECT_EQ(api->ports[0].targetPort, 6443);
  ASSERT_EQ(api->endpoints.size(), 1u);
  EXPECT_EQ(api->endpoints[0].address, ip("192.168.56.10"));
  EXPECT_FALSE(api->endpoints[0].port.has_value());
  EXPECT_EQ(api->lb, state::LbAlgorithm::kRandom);

  // Three ports, same backends and one backend port each: one service.
  const state::Service* dns = find(s, "kube-system/kube-dns");
  ASSERT_NE(dns, nullptr);
  ASSERT_EQ(dns->ports.size(), 3u);
  EXPECT_EQ(dns->ports[0].name, "dns");
  EXPECT_EQ(dns->ports[0].protocol, state::Protocol::kUdp);
  EXPECT_EQ(dns->ports[1].protocol, state::Protocol::kTcp);
  EXPECT_EQ(dns->ports[2].targetPort, 9153);
  ASSERT_EQ(dns->endpoints.size(), 2u);
  EXPECT_EQ(dns->endpoints[0].node, "node-a");
  EXPECT_EQ(dns->endpoints[1].node, "node-b");

  // Dual stack, maglev annotation, readiness from conditions (nil = ready).
  const state::Service* cart = find(s, "shop/cart");
  ASSERT_NE(cart, nullptr);
  EXPECT_EQ(cart->vips, (std::vector<IpAddress>{ip("10.96.20.20"), ip("fd00:10:96::20")}));
  EXPECT_EQ(cart->lb, state::LbAlgorithm::kMaglev);
  ASSERT_EQ(cart->endpoints.size(), 4u);
  EXPECT_EQ(cart->endpoints[0].address, ip("10.244.0.20"));
  EXPECT_TRUE(cart->endpoints[0].ready);
  EXPECT_EQ(cart->endpoints[1].address, ip("10.244.1.21"));
  EXPECT_FALSE(cart->endpoints[1].ready);
  EXPECT_EQ(cart->endpoints[2].address, ip("10.244.2.22"));
  EXPECT_TRUE(cart->endpoints[2].ready);
  EXPECT_EQ(cart->endpoints[3].address, ip("fd00:10:244::20"));
  EXPECT_EQ(cart->ports[0].targetPort, 8080);

  // Named targetPort "http" resolves to 8080 for two pods and 8081 for the canary.
  const state::Service* web = find(s, "shop/web");
  ASSERT_NE(web, nullptr);
  ASSERT_EQ(web->endpoints.size(), 3u);
  EXPECT_EQ(web->endpoints[0].address, ip("10.244.0.11"));
  EXPECT_EQ(web->endpoints[0].port, std::optional<std::uint16_t>(8080));
  EXPECT_EQ(web->endpoints[1].port, std::optional<std::uint16_t>(8080));
  EXPECT_EQ(web->endpoints[2].address, ip("10.244.2.13"));
  EXPECT_EQ(web->endpoints[2].port, std::optional<std::uint16_t>(8081));

  bool headlessNoted = false, externalNoted = false;
  for (const auto& line : t.skipped) {
    headlessNoted = headlessNoted || line.rfind("Service shop/db: headless", 0) == 0;
    externalNoted = externalNoted || line.rfind("Service shop/search: ExternalName", 0) == 0;
  }
  EXPECT_TRUE(headlessNoted);
  EXPECT_TRUE(externalNoted);
}

TEST(KubeTranslate, WorkloadsFollowOptInAndPhase) {
  Translation t = translate(fixtureCluster(), nodeA(), everyCgroup);
  std::vector<std::pair<std::string, std::string>> got;  // (ns, cgroup)
  for (const auto& w : t.snapshot.workloads) got.emplace_back(w.ns, w.cgroup);
  // Sorted by cgroup. shop is opted in by its namespace label: web (Burstable), cart-0
  // (Guaranteed), db-0 (BestEffort); batch opts out by pod label; migrate-0
  // has Succeeded. payments/api-0 opts in by pod label, worker-0 does not.
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"shop",
                      "/kubepods.slice/kubepods-besteffort.slice/"
                      "kubepods-besteffort-pod6b8c9d0e_1f2a_4b3c_8d4e_5f6a7b8c9d33.slice"},
                     {"shop",
                      "/kubepods.slice/kubepods-burstable.slice/"
                      "kubepods-burstable-pod4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31.slice"},
                     {"payments",
                      "/kubepods.slice/kubepods-burstable.slice/"
                      "kubepods-burstable-pod9e1f2a3b_4c5d_4e6f_9a7b_8c9d0e1f2a36.slice"},
                     {"shop", "/kubepods.slice/kubepods-pod5a7b8c9d_0e1f_4a2b_9c3d_4e5f6a7b8c32.slice"},
                 }));
  const state::Workload& api = t.snapshot.workloads[2];  // sorted by cgroup path
  EXPECT_EQ(api.serviceAccount, "payments-api");
  EXPECT_EQ(api.labels.at("app"), "api");
  EXPECT_TRUE(t.pendingPods.empty());
}

TEST(KubeTranslate, PodWithoutCgroupIsPendingNotAWorkload) {
  auto onlyCart = [](const PodObject& p) -> std::optional<std::string> {
    if (p.meta.name == "cart-0") return podCgroupPath(CgroupDriver::kCgroupfs, p.meta.uid, p.qosClass);
    return std::nullopt;
  };
  Translation t = translate(fixtureCluster(), nodeA(), onlyCart);
  ASSERT_EQ(t.snapshot.workloads.size(), 1u);
  EXPECT_EQ(t.snapshot.workloads[0].cgroup, "/kubepods/pod5a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c32");
  EXPECT_EQ(t.pendingPods.size(), 3u);
  EXPECT_EQ(t.pendingPods[0], "payments/api-0 (uid 9e1f2a3b-4c5d-4e6f-9a7b-8c9d0e1f2a36)");
}

TEST(KubeTranslate, OptInRules) {
  PodObject pod;
  NamespaceObject ns;
  EXPECT_FALSE(podOptedIn(pod, nullptr));
  EXPECT_FALSE(podOptedIn(pod, &ns));
  ns.meta.labels[kDataplaneModeLabel] = "enabled";
  EXPECT_TRUE(podOptedIn(pod, &ns));
  pod.meta.labels[kDataplaneModeLabel] = "disabled";
  EXPECT_FALSE(podOptedIn(pod, &ns));
  pod.meta.labels[kDataplaneModeLabel] = "enabled";
  EXPECT_TRUE(podOptedIn(pod, nullptr));
  ns.meta.labels[kDataplaneModeLabel] = "disabled";
  EXPECT_TRUE(podOptedIn(pod, &ns));  // the pod label wins
}

TEST(KubeTranslate, PodsOnOtherNodesAreIgnored) {
  ClusterState c = fixtureCluster();
  for (auto& [k, p] : c.pods) p.nodeName = "node-b";
  EXPECT_TRUE(translate(c, nodeA(), everyCgroup).snapshot.workloads.empty());
}

TEST(KubeTranslate, MultiPortServiceWithDifferingBackendPortsIsSplitPerPort) {
  ClusterState c = fixtureCluster();
  ServiceObject& web = c.services.at("shop/web");
  web.ports.push_back(ServicePortSpec{"admin", "TCP", 9000, std::nullopt, "admin"});
  for (auto* key : {"shop/web-2kq9d", "shop/web-9xv3t"})
    c.endpointSlices.at(key).ports.push_back(SlicePort{"admin", "TCP", 9900});
  Translation t = translate(c, nodeA(), everyCgroup);
  EXPECT_EQ(find(t.snapshot, "shop/web"), nullptr);
  const state::Service* http = find(t.snapshot, "shop/web:http");
  const state::Service* admin = find(t.snapshot, "shop/web:admin");
  ASSERT_NE(http, nullptr);
  ASSERT_NE(admin, nullptr);
  ASSERT_EQ(http->ports.size(), 1u);
  EXPECT_EQ(http->endpoints.size(), 3u);
  EXPECT_EQ(http->endpoints[2].port, std::optional<std::uint16_t>(8081));
  // Every admin backend uses 9900: the port carries it, endpoints do not.
  EXPECT_EQ(admin->ports[0].targetPort, 9900);
  EXPECT_FALSE(admin->endpoints[0].port.has_value());
  EXPECT_EQ(admin->vips, http->vips);
}

TEST(KubeTranslate, UnknownLbAnnotationFallsBackToRandomWithANote) {
  ClusterState c = fixtureCluster();
  c.services.at("shop/cart").meta.annotations[kLoadBalancingAnnotation] = "round-robin";
  Translation t = translate(c, nodeA(), everyCgroup);
  EXPECT_EQ(find(t.snapshot, "shop/cart")->lb, state::LbAlgorithm::kRandom);
  EXPECT_NE(std::find_if(t.skipped.begin(), t.skipped.end(),
                         [](auto& l) { return l.find("round-robin") != std::string::npos; }),
            t.skipped.end());
}

TEST(KubeTranslate, SameStateIgnoresVersionButSeesReadiness) {
  Translation a = translate(fixtureCluster(), nodeA(), everyCgroup);
  Translation b = translate(fixtureCluster(), nodeA(), everyCgroup);
  b.snapshot.version = 42;
  EXPECT_TRUE(sameState(a.snapshot, b.snapshot));
  ClusterState c = fixtureCluster();
  c.endpointSlices.at("shop/cart-8hd7s").endpoints[1].ready = true;
  EXPECT_FALSE(sameState(a.snapshot, translate(c, nodeA(), everyCgroup).snapshot));
}

TEST(KubeDecode, ReadsNodesAndPodAddresses) {
  ClusterState c = fixtureCluster();
  ASSERT_EQ(c.nodes.size(), 5u);
  const NodeObject& a = c.nodes.at("node-a");
  EXPECT_TRUE(a.meta.ns.empty());
  ASSERT_EQ(a.addresses.size(), 3u);
  EXPECT_EQ(a.addresses[0].type, "InternalIP");
  EXPECT_EQ(a.addresses[0].address, "fd00:56::11");
  EXPECT_EQ(a.addresses[2].type, "Hostname");
  EXPECT_TRUE(a.ready);
  EXPECT_FALSE(c.nodes.at("node-c").ready);  // Ready: Unknown
  EXPECT_EQ(c.pods.at("shop/web-7f9c6d-abcde").podIPs, (std::vector<std::string>{"10.244.0.11"}));
  EXPECT_FALSE(c.pods.at("shop/web-7f9c6d-abcde").hostNetwork);
}

// The source skips MODIFIED events whose decoded object is unchanged, so a
// kubelet heartbeat must decode equal, and a change we read must not.
TEST(KubeDecode, AHeartbeatDecodesEqualAReadinessChangeDoesNot) {
  const json node = fixture("nodes.json")["items"][2];  // node-b
  json beat = node;
  beat["metadata"]["resourceVersion"] = "99999";
  for (auto& c : beat["status"]["conditions"]) c["lastHeartbeatTime"] = "2026-11-27T15:00:00Z";
  EXPECT_TRUE(decodeNode(node).value() == decodeNode(beat).value());
  json notReady = node;
  for (auto& c : notReady["status"]["conditions"])
    if (c["type"] == "Ready") c["status"] = "False";
  EXPECT_FALSE(decodeNode(node).value() == decodeNode(notReady).value());
  json relabelled = node;
  relabelled["metadata"]["labels"]["nodemesh.io/zone"] = "b";
  EXPECT_FALSE(decodeNode(node).value() == decodeNode(relabelled).value());
}

TEST(KubeDecode, MalformedNodesSayNameAndField) {
  json node = fixture("nodes.json")["items"][2];  // node-b
  node["status"]["addresses"][0]["address"] = "192.168.56.300";
  EXPECT_EQ(decodeNode(node).error().message,
            "Node node-b: status.addresses[0].address: must be an IP address, got \"192.168.56.300\"");
  node = fixture("nodes.json")["items"][2];
  node["status"]["addresses"] = "192.168.56.12";
  EXPECT_EQ(decodeNode(node).error().message, "Node node-b: status.addresses: must be an array, got string");
  node = fixture("nodes.json")["items"][2];
  node["status"]["conditions"][3].erase("status");
  EXPECT_EQ(decodeNode(node).error().message, "Node node-b: status.conditions[3].status: is required");
  // A Hostname entry holds a name, not an IP: fine.
  node = fixture("nodes.json")["items"][2];
  node["status"]["addresses"][1]["address"] = "node-b.example.internal";
  EXPECT_TRUE(decodeNode(node).ok());

  json pod = fixture("pods.json")["items"][0];
  pod["status"]["podIPs"][0]["ip"] = "ten";
  EXPECT_EQ(decodePod(pod).error().message,
            "Pod shop/web-7f9c6d-abcde: status.podIPs[0].ip: must be an IP address, got \"ten\"");
  pod = fixture("pods.json")["items"][0];
  pod["spec"]["hostNetwork"] = "true";
  EXPECT_EQ(decodePod(pod).error().message,
            "Pod shop/web-7f9c6d-abcde: spec.hostNetwork: must be a boolean, got string");
}

TEST(KubeTranslate, MeshedNamespaceGivesMeshedWorkloadsWithTheirIdentityInputs) {
  TranslateOptions o = nodeA();
  o.mesh.trustDomain = "prod.example.com";
  Translation t = translate(fixtureCluster(), o, everyCgroup);
  const state::Snapshot& s = t.snapshot;
  EXPECT_EQ(s.mesh.trustDomain, "prod.example.com");
  EXPECT_TRUE(s.authorization.empty());  // not read from Kubernetes: default allow within the trust domain

  // Only namespaces with a nodemesh.io label are listed, as a config file would name them.
  ASSERT_EQ(s.namespaces.size(), 1u);
  EXPECT_EQ(s.namespaces[0].name, "shop");
  EXPECT_TRUE(s.namespaces[0].meshed);
  EXPECT_EQ(s.namespaces[0].inbound, state::InboundMode::kPermissive);

  ASSERT_EQ(s.workloads.size(), 4u);
  for (const auto& w : s.workloads) {
    EXPECT_TRUE(w.meshed) << w.cgroup;
    EXPECT_EQ(w.inbound, state::InboundMode::kPermissive) << w.cgroup;
  }
  const state::Workload* web = workloadOf(s, "4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->ns, "shop");
  EXPECT_EQ(web->serviceAccount, "web");
  EXPECT_EQ(web->addresses, (std::vector<IpAddress>{ip("10.244.0.11")}));
  // The inputs give the SPIFFE identity the proxy issues and checks.
  auto id = identity::SpiffeId::forWorkload(s.mesh.trustDomain, web->ns, web->serviceAccount);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->str(), "spiffe://prod.example.com/ns/shop/sa/web");
  // No serviceAccountName: "default", as the API server fills it in.
  const state::Workload* db = workloadOf(s, "6b8c9d0e_1f2a_4b3c_8d4e_5f6a7b8c9d33");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->serviceAccount, "default");
  // payments/api-0 opted in by its own label: meshed too, in an unlisted namespace.
  const state::Workload* api = workloadOf(s, "9e1f2a3b_4c5d_4e6f_9a7b_8c9d0e1f2a36");
  ASSERT_NE(api, nullptr);
  EXPECT_TRUE(api->meshed);
  EXPECT_EQ(api->ns, "payments");
  EXPECT_FALSE(mentions(t.warnings, "label"));
}

TEST(KubeTranslate, InboundComesFromThePodElseItsNamespace) {
  ClusterState c = fixtureCluster();
  c.namespaces.at("shop").meta.labels[kInboundLabel] = "strict";
  c.pods.at("shop/cart-0").meta.labels[kInboundLabel] = "permissive";
  c.pods.at("shop/db-0").meta.labels[kInboundLabel] = "Strict";  // not a known word: the namespace's applies
  Translation t = translate(c, nodeA(), everyCgroup);
  ASSERT_EQ(t.snapshot.namespaces.size(), 1u);
  EXPECT_EQ(t.snapshot.namespaces[0].inbound, state::InboundMode::kStrict);
  EXPECT_EQ(workloadOf(t.snapshot, "4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31")->inbound, state::InboundMode::kStrict);
  EXPECT_EQ(workloadOf(t.snapshot, "5a7b8c9d_0e1f_4a2b_9c3d_4e5f6a7b8c32")->inbound, state::InboundMode::kPermissive);
  EXPECT_EQ(workloadOf(t.snapshot, "6b8c9d0e_1f2a_4b3c_8d4e_5f6a7b8c9d33")->inbound, state::InboundMode::kStrict);
  // payments has no label: permissive.
  EXPECT_EQ(workloadOf(t.snapshot, "9e1f2a3b_4c5d_4e6f_9a7b_8c9d0e1f2a36")->inbound, state::InboundMode::kPermissive);
  EXPECT_TRUE(mentions(t.warnings, "Pod shop/db-0: label nodemesh.io/inbound=\"Strict\" is not strict or permissive"));

  // A namespace with only the inbound label is listed, not meshed.
  c.namespaces.at("payments").meta.labels[kInboundLabel] = "strict";
  t = translate(c, nodeA(), everyCgroup);
  ASSERT_EQ(t.snapshot.namespaces.size(), 2u);
  EXPECT_EQ(t.snapshot.namespaces[0].name, "payments");
  EXPECT_FALSE(t.snapshot.namespaces[0].meshed);
  EXPECT_EQ(workloadOf(t.snapshot, "9e1f2a3b_4c5d_4e6f_9a7b_8c9d0e1f2a36")->inbound, state::InboundMode::kStrict);
}

TEST(KubeTranslate, HostNetworkPodsHaveNoAddressesOfTheirOwn) {
  ClusterState c = fixtureCluster();
  PodObject& web = c.pods.at("shop/web-7f9c6d-abcde");
  web.hostNetwork = true;
  web.podIPs = {"192.168.56.11"};  // the node's, as the API reports it
  Translation t = translate(c, nodeA(), everyCgroup);
  const state::Workload* w = workloadOf(t.snapshot, "4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->meshed);
  EXPECT_TRUE(w->addresses.empty());
}

TEST(KubeTranslate, ServicesInAMeshedNamespaceAreMtlsUnlessAnnotated) {
  ClusterState c = fixtureCluster();
  Translation t = translate(c, nodeA(), everyCgroup);
  EXPECT_EQ(find(t.snapshot, "shop/cart")->mode, state::ServiceMode::kMtls);
  EXPECT_EQ(find(t.snapshot, "shop/web")->mode, state::ServiceMode::kMtls);
  EXPECT_EQ(find(t.snapshot, "default/kubernetes")->mode, state::ServiceMode::kL4);
  EXPECT_EQ(find(t.snapshot, "kube-system/kube-dns")->mode, state::ServiceMode::kL4);

  c.services.at("shop/cart").meta.annotations[kModeAnnotation] = "l4";
  c.services.at("kube-system/kube-dns").meta.annotations[kModeAnnotation] = "mtls";
  c.services.at("shop/web").meta.annotations[kModeAnnotation] = "http";
  t = translate(c, nodeA(), everyCgroup);
  EXPECT_EQ(find(t.snapshot, "shop/cart")->mode, state::ServiceMode::kL4);
  // The annotation applies anywhere; its UDP port stays plain L4 in the datapath.
  EXPECT_EQ(find(t.snapshot, "kube-system/kube-dns")->mode, state::ServiceMode::kMtls);
  EXPECT_EQ(find(t.snapshot, "shop/web")->mode, state::ServiceMode::kMtls);  // unknown value: the default
  EXPECT_TRUE(mentions(t.warnings, "Service shop/web: annotation nodemesh.io/mode=\"http\" is not l4 or mtls; using mtls"));

  // Split services keep the mode.
  ServiceObject& web = c.services.at("shop/web");
  web.meta.annotations.erase(kModeAnnotation);
  web.ports.push_back(ServicePortSpec{"admin", "TCP", 9000, std::nullopt, "admin"});
  for (auto* key : {"shop/web-2kq9d", "shop/web-9xv3t"})
    c.endpointSlices.at(key).ports.push_back(SlicePort{"admin", "TCP", 9900});
  t = translate(c, nodeA(), everyCgroup);
  EXPECT_EQ(find(t.snapshot, "shop/web:admin")->mode, state::ServiceMode::kMtls);
}

TEST(KubeTranslate, NodesGiveTheNodeAddressAndTheReadyPeers) {
  Translation t = translate(fixtureCluster(), nodeA(), everyCgroup);
  const state::Snapshot& s = t.snapshot;
  // node-a lists fd00:56::11 first; IPv4 is preferred.
  EXPECT_EQ(s.nodeAddress, std::optional<IpAddress>(ip("192.168.56.11")));
  // This node is not a peer; node-c is not Ready; node-d has no InternalIP.
  ASSERT_EQ(s.peers.size(), 2u);
  EXPECT_EQ(s.peers[0].name, "control-plane");
  EXPECT_EQ(s.peers[0].address, ip("192.168.56.10"));
  EXPECT_EQ(s.peers[1].name, "node-b");
  EXPECT_EQ(s.peers[1].address, ip("192.168.56.12"));
  EXPECT_NE(s.findPeer("node-b"), nullptr);
  EXPECT_TRUE(mentions(t.skipped, "Node node-c: not Ready"));
  EXPECT_TRUE(mentions(t.warnings, "Node node-d has no InternalIP"));
}

TEST(KubeTranslate, NodeAddressEdgeCases) {
  ClusterState c = fixtureCluster();
  // IPv6-only InternalIP: used.
  auto& a = c.nodes.at("node-a").addresses;
  a.erase(a.begin() + 1);
  EXPECT_EQ(translate(c, nodeA(), everyCgroup).snapshot.nodeAddress, std::optional<IpAddress>(ip("fd00:56::11")));
  // Not Ready does not matter for this node's own address.
  c.nodes.at("node-a").ready = false;
  EXPECT_TRUE(translate(c, nodeA(), everyCgroup).snapshot.nodeAddress.has_value());
  // No InternalIP: no address, and a warning naming this node.
  a.erase(a.begin());
  Translation t = translate(c, nodeA(), everyCgroup);
  EXPECT_FALSE(t.snapshot.nodeAddress.has_value());
  EXPECT_TRUE(mentions(t.warnings, "Node node-a (this node) has no InternalIP"));
  // Unknown to the API: the same, said differently.
  c.nodes.erase("node-a");
  t = translate(c, nodeA(), everyCgroup);
  EXPECT_FALSE(t.snapshot.nodeAddress.has_value());
  EXPECT_TRUE(mentions(t.warnings, "Node node-a (this node) is not in the API's node list"));
  EXPECT_EQ(t.snapshot.peers.size(), 2u);

  // Two nodes with one address: the first (by name) keeps it.
  c = fixtureCluster();
  c.nodes.at("node-b").addresses[0].address = "192.168.56.10";
  t = translate(c, nodeA(), everyCgroup);
  ASSERT_EQ(t.snapshot.peers.size(), 1u);
  EXPECT_EQ(t.snapshot.peers[0].name, "control-plane");
  EXPECT_TRUE(mentions(t.warnings, "Node node-b: InternalIP 192.168.56.10 is already node control-plane's"));
}

TEST(KubeTranslate, SameStateSeesMeshChanges) {
  const Translation base = translate(fixtureCluster(), nodeA(), everyCgroup);
  ClusterState c = fixtureCluster();
  c.nodes.at("node-c").ready = true;  // a new peer
  EXPECT_FALSE(sameState(base.snapshot, translate(c, nodeA(), everyCgroup).snapshot));
  c = fixtureCluster();
  c.pods.at("shop/db-0").meta.labels[kInboundLabel] = "strict";
  EXPECT_FALSE(sameState(base.snapshot, translate(c, nodeA(), everyCgroup).snapshot));
  c = fixtureCluster();
  c.pods.at("shop/db-0").podIPs = {"10.244.0.31"};
  EXPECT_FALSE(sameState(base.snapshot, translate(c, nodeA(), everyCgroup).snapshot));
  c = fixtureCluster();
  c.services.at("shop/cart").meta.annotations[kModeAnnotation] = "l4";
  EXPECT_FALSE(sameState(base.snapshot, translate(c, nodeA(), everyCgroup).snapshot));
  TranslateOptions o = nodeA();
  o.mesh.inboundPort = 15009;
  EXPECT_FALSE(sameState(base.snapshot, translate(fixtureCluster(), o, everyCgroup).snapshot));
}

}  // namespace
}  // namespace nodemesh::kube
