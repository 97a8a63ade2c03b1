// buildMeshTable: the pure snapshot -> mesh view function.
#include <gtest/gtest.h>

#include <map>

#include "proxy/mesh/mesh_table.h"

namespace nodemesh::proxy::mesh {
namespace {

state::IpAddress ip(const char* s) { return state::IpAddress::parse(s).value(); }

state::Snapshot snapshot() {
  state::Snapshot s;
  s.version = 7;
  s.nodeName = "node-a";
  s.mesh.trustDomain = "cluster.local";
  s.mesh.inboundPort = 15008;
  s.peers = {{"node-b", ip("192.168.0.2")}};
  state::Namespace shop;
  shop.name = "shop";
  shop.meshed = true;
  shop.limits = {10, 1 << 20};
  s.namespaces = {shop};
  state::Workload w;
  w.cgroup = "/kubepods/pod-web";
  w.ns = "web";
  w.meshed = true;
  w.addresses = {ip("10.0.0.5")};
  state::Workload api;
  api.cgroup = "/kubepods/pod-api";
  api.ns = "shop";
  api.serviceAccount = "api";
  api.addresses = {ip("10.0.0.6"), ip("fd00::6")};
  s.workloads = {w, api};
  state::Service svc;
  svc.name = "api";
  svc.ns = "shop";
  svc.mode = state::ServiceMode::kMtls;
  svc.vips = {ip("10.96.0.10"), ip("fd00:96::10")};
  svc.ports = {{"http", 80, state::Protocol::kTcp, 8080}, {"dns", 53, state::Protocol::kUdp, 53}};
  state::Endpoint local{ip("10.0.0.6"), std::nullopt, 1, true, ""};
  state::Endpoint remote{ip("10.0.1.7"), 9090, 3, true, "node-b"};
  state::Endpoint notReady{ip("10.0.1.8"), std::nullopt, 1, false, "node-b"};
  state::Endpoint unknownNode{ip("10.0.2.9"), std::nullopt, 1, true, "node-z"};
  svc.endpoints = {local, remote, notReady, unknownNode};
  state::Service l4 = svc;
  l4.name = "plain";
  l4.mode = state::ServiceMode::kL4;
  l4.vips = {ip("10.96.0.11")};
  s.services = {svc, l4};
  state::AuthorizationRule deny;
  deny.name = "no-legacy";
  deny.action = state::RuleAction::kDeny;
  deny.fromNamespaces = {"legacy"};
  s.authorization = {deny};
  return s;
}

CgroupIdResolver resolver(std::map<std::string, std::uint64_t> ids) {
  return [ids](const std::string& path) -> std::optional<std::uint64_t> {
    auto it = ids.find(path);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
}

TEST(MeshTable, IndexesWorkloadsByCgroupAndAddressWithIdentity) {
  auto t = buildMeshTable(snapshot(), resolver({{"/kubepods/pod-web", 11}, {"/kubepods/pod-api", 12}}));
  ASSERT_TRUE(t) << t.error().message;
  const MeshTable& table = **t;
  EXPECT_EQ(table.version(), 7u);
  const MeshWorkload* web = table.workloadByCgroup(11);
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->id.str(), "spiffe://cluster.local/ns/web/sa/default");
  EXPECT_TRUE(web->meshed);
  const MeshWorkload* api = table.workloadByAddress(ip("fd00::6"));
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->id.str(), "spiffe://cluster.local/ns/shop/sa/api");
  EXPECT_EQ(table.workloadByCgroup(12), api);
  EXPECT_EQ(table.workloadByCgroup(99), nullptr);
  EXPECT_EQ(table.workloadByAddress(ip("10.0.0.99")), nullptr);
  EXPECT_EQ(table.limits("shop").maxConnections, 10u);
  EXPECT_EQ(table.limits("web").maxConnections, 0u);  // unnamed: unlimited
}

TEST(MeshTable, MtlsTcpFrontendsWithLocalAndPeerEndpoints) {
  auto t = buildMeshTable(snapshot(), resolver({}));
  ASSERT_TRUE(t) << t.error().message;
  const MeshTable& table = **t;
  EXPECT_EQ(table.services(), 2u);  // two VIPs x the TCP port; l4 and UDP are not the mesh's
  EXPECT_EQ(table.serviceByFrontend(ip("10.96.0.10"), 53), nullptr);
  EXPECT_EQ(table.serviceByFrontend(ip("10.96.0.11"), 80), nullptr);
  const MeshService* svc = table.serviceByFrontend(SocketAddress::parse("fd00:96::10", 80).value());
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->name, "shop/api");
  ASSERT_EQ(svc->endpoints.size(), 2u);  // not ready and unknown node skipped
  EXPECT_TRUE(svc->endpoints[0].local);
  EXPECT_EQ(svc->endpoints[0].address.toString(), "10.0.0.6:8080");
  EXPECT_FALSE(svc->endpoints[1].local);
  EXPECT_EQ(svc->endpoints[1].address.toString(), "10.0.1.7:9090");
  EXPECT_EQ(svc->endpoints[1].peer.toString(), "192.168.0.2:15008");
  EXPECT_EQ(svc->totalWeight, 4u);
  // Warnings name the skipped endpoint and the unresolved cgroups.
  bool unknownPeer = false;
  for (const auto& w : table.warnings()) unknownPeer |= w.find("node-z") != std::string::npos;
  EXPECT_TRUE(unknownPeer);
  EXPECT_EQ(table.workloadByCgroup(11), nullptr);
}

TEST(MeshTable, PickFollowsWeights) {
  auto t = buildMeshTable(snapshot(), resolver({}));
  ASSERT_TRUE(t);
  const MeshService* svc = (*t)->serviceByFrontend(ip("10.96.0.10"), 80);
  ASSERT_NE(svc, nullptr);
  int remote = 0;
  for (std::uint32_t i = 0; i < 4000; ++i) remote += MeshTable::pick(*svc, i * 1073741u)->local ? 0 : 1;
  EXPECT_NEAR(remote, 3000, 100);  // weight 3 of 4
  EXPECT_TRUE(MeshTable::pick(*svc, 0)->local);
  EXPECT_FALSE(MeshTable::pick(*svc, 0xffffffffu)->local);
}

TEST(MeshTable, PickIfChoosesByWeightAmongTheEligibleOnly) {
  auto t = buildMeshTable(snapshot(), resolver({}));
  ASSERT_TRUE(t);
  const MeshService* svc = (*t)->serviceByFrontend(ip("10.96.0.10"), 80);
  ASSERT_NE(svc, nullptr);
  ASSERT_EQ(svc->endpoints.size(), 2u);
  auto onlyLocal = [](const MeshEndpoint& ep) { return ep.local; };
  auto onlyRemote = [](const MeshEndpoint& ep) { return !ep.local; };
  for (std::uint32_t r : {0u, 12345u, 0x80000000u, 0xffffffffu}) {
    EXPECT_TRUE(MeshTable::pickIf(*svc, r, onlyLocal)->local);
    EXPECT_FALSE(MeshTable::pickIf(*svc, r, onlyRemote)->local);
  }
  EXPECT_EQ(MeshTable::pickIf(*svc, 7, [](const MeshEndpoint&) { return false; }), nullptr);
  int remote = 0;
  for (std::uint32_t i = 0; i < 4000; ++i)
    remote += MeshTable::pickIf(*svc, i * 1073741u, [](const MeshEndpoint&) { return true; })->local ? 0 : 1;
  EXPECT_NEAR(remote, 3000, 100);  // all eligible: the same weights as pick()
}

TEST(MeshTable, CompilesAuthorization) {
  auto t = buildMeshTable(snapshot(), resolver({}));
  ASSERT_TRUE(t);
  auto m = (*t)->authorization().match({"spiffe://cluster.local/ns/legacy/sa/x", "", "shop", 80});
  EXPECT_EQ(m.verdict, policy::Verdict::kDeny);
  EXPECT_EQ(m.rule, "no-legacy");
  state::Snapshot bad = snapshot();
  bad.authorization[0].fromIdentities = {"not a spiffe id"};
  auto b = buildMeshTable(bad, resolver({}));
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("mesh authorization"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::proxy::mesh
