// Rotation with an injected clock: nothing sleeps.
#include <gtest/gtest.h>

#include <thread>

#include "identity/certificate_cache.h"
#include "identity/peer_verifier.h"

namespace nodemesh::identity {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTd = "cluster.local";

SpiffeId id(std::string_view ns, std::string_view sa) {
  return SpiffeId::forWorkload(kTd, ns, sa).value();
}

class CacheTest : public ::testing::Test {
 protected:
  TimePoint start = std::chrono::time_point_cast<std::chrono::seconds>(systemNow());
  TimePoint now = start;
  std::shared_ptr<const CertificateAuthority> ca =
      std::make_shared<const CertificateAuthority>(CertificateAuthority::generateDevelopment(kTd, start).value());
  std::unique_ptr<CertificateCache> cache =
      CertificateCache::create(ca, CacheOptions{.ttl = 24h, .renewFraction = 0.5}, [this] { return now; }).value();
};

TEST_F(CacheTest, IssuesForEveryIdentityOnce) {
  std::vector<SpiffeId> ids = {id("a", "x"), id("b", "y"), id("a", "x")};
  auto r = cache->refresh(ids);
  EXPECT_EQ(r.issued.size(), 2u);
  EXPECT_TRUE(r.failures.empty());
  EXPECT_EQ(cache->size(), 2u);
  auto cert = cache->get(id("a", "x"));
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(cert->id, id("a", "x"));
  EXPECT_EQ(cert->notAfter, start + 24h);
  EXPECT_EQ(cache->get(id("c", "z")), nullptr);
  EXPECT_EQ(cache->nextRenewal(), start + 12h);

  // Same set, same time: nothing to do, the same objects are served.
  auto again = cache->refresh();
  EXPECT_FALSE(again.changed());
  EXPECT_EQ(cache->get(id("a", "x")), cert);
}

TEST_F(CacheTest, RenewsPastHalfLifeAndOldCertificateStaysUsable) {
  std::vector<SpiffeId> ids = {id("a", "x")};
  cache->refresh(ids);
  std::shared_ptr<const IssuedCertificate> old = cache->get(id("a", "x"));
  ASSERT_NE(old, nullptr);

  now = start + 11h;  // before half-life: kept
  EXPECT_FALSE(cache->refresh().changed());
  EXPECT_EQ(cache->get(id("a", "x")), old);

  now = start + 12h + 1s;  // past half-life: replaced
  auto r = cache->refresh();
  ASSERT_EQ(r.renewed.size(), 1u);
  EXPECT_EQ(r.renewed[0], id("a", "x"));
  auto fresh = cache->get(id("a", "x"));
  ASSERT_NE(fresh, nullptr);
  EXPECT_NE(fresh, old);
  EXPECT_EQ(fresh->notAfter, now + 24h);
  EXPECT_NE(EVP_PKEY_eq(fresh->key.get(), old->key.get()), 1);  // a new key too

  // The connection holding `old` still has a complete, valid certificate.
  EXPECT_EQ(X509_check_private_key(old->cert.get(), old->key.get()), 1);
  auto verified = verifyPeerCertificate(old->cert.get(), nullptr, ca->trustBundle(), kTd, now);
  EXPECT_TRUE(verified) << verified.error().message;
  EXPECT_TRUE(verifyPeerCertificate(fresh->cert.get(), nullptr, ca->trustBundle(), kTd, now));
  EXPECT_EQ(cache->nextRenewal(), now + 12h);
}

TEST_F(CacheTest, ConfigurableRenewFraction) {
  auto early = CertificateCache::create(ca, CacheOptions{.ttl = 1h, .renewFraction = 0.8}, [this] { return now; });
  ASSERT_TRUE(early);
  std::vector<SpiffeId> ids = {id("a", "x")};
  (*early)->refresh(ids);
  now = start + 47min;
  EXPECT_FALSE((*early)->refresh().changed());
  now = start + 48min;
  EXPECT_EQ((*early)->refresh().renewed.size(), 1u);

  EXPECT_FALSE(CertificateCache::create(ca, CacheOptions{.ttl = 1h, .renewFraction = 0}));
  EXPECT_FALSE(CertificateCache::create(ca, CacheOptions{.ttl = 1h, .renewFraction = 1.5}));
  EXPECT_FALSE(CertificateCache::create(ca, CacheOptions{.ttl = 0s, .renewFraction = 0.5}));
  EXPECT_FALSE(CertificateCache::create(nullptr));
}

TEST_F(CacheTest, DropsRemovedAndIssuesNewIdentities) {
  std::vector<SpiffeId> first = {id("a", "x"), id("b", "y")};
  cache->refresh(first);
  auto kept = cache->get(id("a", "x"));
  auto removed = cache->get(id("b", "y"));

  now = start + 1h;
  std::vector<SpiffeId> second = {id("a", "x"), id("c", "z")};
  auto r = cache->refresh(second);
  EXPECT_EQ(r.issued, std::vector<SpiffeId>{id("c", "z")});
  EXPECT_EQ(r.dropped, std::vector<SpiffeId>{id("b", "y")});
  EXPECT_TRUE(r.renewed.empty());
  EXPECT_EQ(cache->get(id("b", "y")), nullptr);
  EXPECT_EQ(cache->get(id("a", "x")), kept);  // untouched
  EXPECT_NE(cache->get(id("c", "z")), nullptr);
  EXPECT_EQ(cache->size(), 2u);
  // A holder of the dropped identity's certificate still owns it.
  EXPECT_EQ(X509_check_private_key(removed->cert.get(), removed->key.get()), 1);

  std::vector<SpiffeId> none;
  EXPECT_EQ(cache->refresh(none).dropped.size(), 2u);
  EXPECT_EQ(cache->size(), 0u);
  EXPECT_FALSE(cache->nextRenewal());
}

TEST_F(CacheTest, KeepsOldCertificateWhenIssuanceFails) {
  auto shortCa = std::make_shared<const CertificateAuthority>(
      CertificateAuthority::generateDevelopment(kTd, start, std::chrono::hours(2)).value());
  auto c = CertificateCache::create(shortCa, CacheOptions{.ttl = 1h, .renewFraction = 0.5}, [this] { return now; });
  std::vector<SpiffeId> ids = {id("a", "x")};
  (*c)->refresh(ids);
  auto old = (*c)->get(id("a", "x"));
  now = start + 3h;  // the CA has expired
  auto r = (*c)->refresh();
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].message.find("expired"), std::string::npos) << r.failures[0].message;
  EXPECT_EQ((*c)->get(id("a", "x")), old);
}

TEST_F(CacheTest, ConcurrentReadersDuringRotation) {
  std::vector<SpiffeId> ids = {id("a", "x"), id("b", "y")};
  cache->refresh(ids, start);
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto c = cache->get(id("a", "x"));
        if (c && X509_get0_pubkey(c->cert.get()) != nullptr) reads.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= 20; ++i) cache->refresh(ids, start + i * 13h);  // every step renews
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(cache->size(), 2u);
}

}  // namespace
}  // namespace nodemesh::identity
