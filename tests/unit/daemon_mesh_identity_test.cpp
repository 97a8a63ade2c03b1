// The agent's mesh identity: which identities get certificates, and the
// development-CA path (the CA-file path is covered by the identity tests).
#include <gtest/gtest.h>

#include "daemon/mesh_identity.h"

namespace nodemesh::daemon {
namespace {

state::Workload workload(const char* cgroup, const char* ns, const char* sa, bool meshed) {
  state::Workload w;
  w.cgroup = cgroup;
  w.ns = ns;
  w.serviceAccount = sa;
  w.meshed = meshed;
  return w;
}

TEST(MeshIdentity, NodeAndMeshedWorkloadsOnly) {
  state::Snapshot snap;
  snap.workloads = {workload("/p/1", "shop", "checkout", true), workload("/p/2", "shop", "checkout", true),
                    workload("/p/3", "legacy", "old", false), workload("/p/4", "shop", "", true)};
  auto node = identity::SpiffeId::forWorkload("cluster.local", kNodeNamespace, kNodeServiceAccount);
  ASSERT_TRUE(node);
  auto ids = meshIdentitiesFor(snap, *node);
  ASSERT_TRUE(ids) << ids.error().message;
  std::vector<std::string> names;
  for (const auto& id : *ids) names.push_back(id.str());
  EXPECT_EQ(names, (std::vector<std::string>{"spiffe://cluster.local/ns/nodemesh-system/sa/nodemesh-agent",
                                             "spiffe://cluster.local/ns/shop/sa/checkout",
                                             "spiffe://cluster.local/ns/shop/sa/default"}));
}

TEST(MeshIdentity, DevelopmentCaIssuesAndVerifies) {
  state::MeshSettings settings;
  settings.trustDomain = "example.org";
  settings.certificateTtlSeconds = 600;
  auto mi = MeshIdentity::create(settings);
  ASSERT_TRUE(mi) << mi.error().message;
  EXPECT_TRUE((*mi)->authority().isDevelopment());
  EXPECT_EQ((*mi)->nodeId().str(), "spiffe://example.org/ns/nodemesh-system/sa/nodemesh-agent");

  state::Snapshot snap;
  snap.workloads = {workload("/p/1", "shop", "api", true)};
  auto report = (*mi)->refresh(snap);
  EXPECT_EQ(report.issued.size(), 2u);
  EXPECT_TRUE(report.failures.empty());
  ASSERT_NE((*mi)->nodeCertificate(), nullptr);
  auto shop = identity::SpiffeId::parse("spiffe://example.org/ns/shop/sa/api");
  ASSERT_TRUE(shop);
  auto cert = (*mi)->workloadCertificate(*shop);
  ASSERT_NE(cert, nullptr);
  auto verified = (*mi)->verifier()->verify(cert->cert.get(), nullptr);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->str(), shop->str());
  ASSERT_TRUE((*mi)->nextRenewal());

  // The workload leaves the mesh: its certificate goes, the node's stays.
  snap.workloads[0].meshed = false;
  report = (*mi)->refresh(snap);
  EXPECT_EQ(report.dropped.size(), 1u);
  EXPECT_EQ((*mi)->workloadCertificate(*shop), nullptr);
  EXPECT_NE((*mi)->nodeCertificate(), nullptr);
}

TEST(MeshIdentity, SettingsChangesThatNeedANewIdentity) {
  state::MeshSettings settings;
  auto mi = MeshIdentity::create(settings);
  ASSERT_TRUE(mi) << mi.error().message;
  EXPECT_FALSE((*mi)->differsFrom(settings));
  auto other = settings;
  other.outboundPort = 25001;  // proxy setting, not identity
  EXPECT_FALSE((*mi)->differsFrom(other));
  other.trustDomain = "other.org";
  EXPECT_TRUE((*mi)->differsFrom(other));
  other = settings;
  other.certificateTtlSeconds = 120;
  EXPECT_TRUE((*mi)->differsFrom(other));
}

TEST(MeshIdentity, MissingCaFileNamesTheField) {
  state::MeshSettings settings;
  settings.caCertFile = "/nonexistent/ca.pem";
  settings.caKeyFile = "/nonexistent/ca-key.pem";
  auto mi = MeshIdentity::create(settings);
  ASSERT_FALSE(mi);
  EXPECT_NE(mi.error().message.find("mesh.ca.certFile"), std::string::npos) << mi.error().message;
  EXPECT_NE(mi.error().message.find("/nonexistent/ca.pem"), std::string::npos) << mi.error().message;
}

}  // namespace
}  // namespace nodemesh::daemon
