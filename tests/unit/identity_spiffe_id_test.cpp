#include <gtest/gtest.h>

#include "identity/spiffe_id.h"
#include "identity/workload_identities.h"

namespace nodemesh::identity {
namespace {

TEST(SpiffeId, BuildsWorkloadId) {
  auto id = SpiffeId::forWorkload("cluster.local", "shop", "checkout");
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->str(), "spiffe://cluster.local/ns/shop/sa/checkout");
  EXPECT_EQ(id->trustDomain(), "cluster.local");
  EXPECT_EQ(id->path(), "/ns/shop/sa/checkout");
  EXPECT_EQ(id->workloadNamespace(), "shop");
  EXPECT_EQ(id->serviceAccount(), "checkout");
}

TEST(SpiffeId, ParseRoundTrips) {
  for (const char* text : {"spiffe://cluster.local/ns/a/sa/b", "spiffe://example.org", "spiffe://td_1-x.y/a.b/C-d_E",
                           "spiffe://x/ns/n/sa/s.with.dots"}) {
    auto id = SpiffeId::parse(text);
    ASSERT_TRUE(id) << text << ": " << id.error().message;
    EXPECT_EQ(id->str(), text);
  }
  auto td = SpiffeId::parse("spiffe://example.org");
  ASSERT_TRUE(td);
  EXPECT_TRUE(td->isTrustDomainId());
  EXPECT_FALSE(td->workloadNamespace());
  auto other = SpiffeId::parse("spiffe://example.org/ns/a/sa/b/extra");
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->workloadNamespace());  // not the /ns/<ns>/sa/<sa> form
}

struct BadId {
  const char* text;
  const char* expect;  // a substring of the error
};

TEST(SpiffeId, RejectsBadInputsWithReasons) {
  const BadId cases[] = {
      {"", "empty"},
      {"http://cluster.local/ns/a/sa/b", "scheme must be \"spiffe\""},
      {"SPIFFE://cluster.local/ns/a", "scheme must be \"spiffe\""},
      {"cluster.local/ns/a", "must start with \"spiffe://\""},
      {"spiffe://", "trust domain is empty"},
      {"spiffe:///ns/a", "trust domain is empty"},
      {"spiffe://Cluster.local/ns/a", "trust domains are lowercase"},
      {"spiffe://cluster.local:8443/ns/a", "no port"},
      {"spiffe://user@cluster.local/ns/a", "no user info"},
      {"spiffe://cluster.local/", "empty segment"},
      {"spiffe://cluster.local/ns//sa", "empty segment"},
      {"spiffe://cluster.local/ns/a/", "empty segment"},
      {"spiffe://cluster.local/ns/./sa", "\".\" is not allowed"},
      {"spiffe://cluster.local/ns/../sa", "\"..\" is not allowed"},
      {"spiffe://cluster.local/ns/a%20b", "percent-encoding"},
      {"spiffe://cluster.local/ns/a b", "' '"},
      {"spiffe://cluster.local/ns/a?x=1", "query"},
      {"spiffe://cluster.local/ns/a#frag", "fragment"},
      {"spiffe://cluster.local/ns/\x01", "0x01"},
  };
  for (const auto& c : cases) {
    auto id = SpiffeId::parse(c.text);
    ASSERT_FALSE(id) << c.text;
    EXPECT_NE(id.error().message.find(c.expect), std::string::npos) << c.text << " -> " << id.error().message;
  }
  EXPECT_FALSE(SpiffeId::parse("spiffe://" + std::string(256, 'a') + "/x"));
  EXPECT_FALSE(SpiffeId::parse("spiffe://td/" + std::string(2100, 'a')));
  EXPECT_TRUE(SpiffeId::parse("spiffe://" + std::string(255, 'a') + "/x"));
}

TEST(SpiffeId, ForWorkloadValidatesEachPart) {
  auto bad = SpiffeId::forWorkload("Cluster", "a", "b");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("lowercase"), std::string::npos) << bad.error().message;
  bad = SpiffeId::forWorkload("cluster.local", "", "b");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("namespace is empty"), std::string::npos);
  bad = SpiffeId::forWorkload("cluster.local", "a/b", "c");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("namespace \"a/b\" contains '/'"), std::string::npos) << bad.error().message;
  bad = SpiffeId::forWorkload("cluster.local", "a", "..");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("service account \"..\""), std::string::npos) << bad.error().message;
  EXPECT_FALSE(SpiffeId::forWorkload("cluster.local", "a", ""));
}

TEST(SpiffeId, OrdersAndCompares) {
  auto a = SpiffeId::parse("spiffe://t/ns/a/sa/x").value();
  auto b = SpiffeId::parse("spiffe://t/ns/b/sa/x").value();
  EXPECT_LT(a, b);
  EXPECT_EQ(a, SpiffeId::forWorkload("t", "a", "x").value());
}

TEST(TrustDomain, Check) {
  EXPECT_TRUE(checkTrustDomain("cluster.local"));
  EXPECT_TRUE(checkTrustDomain("a_b-c.0"));
  EXPECT_FALSE(checkTrustDomain(""));
  EXPECT_FALSE(checkTrustDomain("UPPER"));
  EXPECT_FALSE(checkTrustDomain("a/b"));
}

state::Workload workload(const char* cgroup, const char* ns, const char* sa) {
  state::Workload w;
  w.cgroup = cgroup;
  w.ns = ns;
  w.serviceAccount = sa;
  return w;
}

TEST(IdentitiesFor, DistinctSortedWithDefaultServiceAccount) {
  state::Snapshot snap;
  snap.workloads = {
      workload("/pods/p1", "shop", "checkout"),
      workload("/pods/p2", "shop", "checkout"),  // same identity, second pod
      workload("/pods/p3", "shop", ""),          // default service account
      workload("/pods/p4", "billing", "api"),
  };
  auto ids = identitiesFor(snap, "cluster.local");
  ASSERT_TRUE(ids) << ids.error().message;
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0].str(), "spiffe://cluster.local/ns/billing/sa/api");
  EXPECT_EQ((*ids)[1].str(), "spiffe://cluster.local/ns/shop/sa/checkout");
  EXPECT_EQ((*ids)[2].str(), "spiffe://cluster.local/ns/shop/sa/default");

  EXPECT_TRUE(identitiesFor(state::Snapshot{}, "cluster.local")->empty());
  EXPECT_FALSE(identitiesFor(snap, "Bad Domain"));
  snap.workloads.push_back(workload("/pods/bad", "", "x"));
  auto bad = identitiesFor(snap, "cluster.local");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("/pods/bad"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace nodemesh::identity
