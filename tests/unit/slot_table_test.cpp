#include "datapath/slot_table.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace nodemesh::datapath {
namespace {

std::vector<WeightedBackend> backends(std::initializer_list<std::uint32_t> weights) {
  std::vector<WeightedBackend> out;
  int i = 0;
  for (auto w : weights) out.push_back({"10.0.0." + std::to_string(++i) + ":80", w});
  return out;
}

std::map<std::uint32_t, std::size_t> shares(const std::vector<std::uint32_t>& table) {
  std::map<std::uint32_t, std::size_t> n;
  for (auto b : table) ++n[b];
  return n;
}

TEST(RandomTable, EqualWeightsGiveOneSlotEach) {
  auto t = buildRandomTable(backends({1, 1, 1}));
  EXPECT_EQ(t, (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(buildRandomTable(backends({5, 5})).size(), 2u);  // reduced by the gcd
}

TEST(RandomTable, SlotsFollowWeightsExactly) {
  auto n = shares(buildRandomTable(backends({1, 2, 3})));
  EXPECT_EQ(n[0], 1u);
  EXPECT_EQ(n[1], 2u);
  EXPECT_EQ(n[2], 3u);
}

TEST(RandomTable, LargeWeightsAreScaledKeepingEveryBackend) {
  auto t = buildRandomTable(backends({65535, 1, 30000}));
  EXPECT_EQ(t.size(), kMaxRandomSlots);
  auto n = shares(t);
  EXPECT_GE(n[1], 1u);  // even a tiny weight keeps a slot
  EXPECT_NEAR(static_cast<double>(n[0]) / n[2], 65535.0 / 30000.0, 0.05);
}

TEST(RandomTable, EmptyInputGivesEmptyTable) { EXPECT_TRUE(buildRandomTable({}).empty()); }

TEST(Maglev, TableSizeIsPrimeAndScalesWithBackends) {
  EXPECT_EQ(maglevTableSize(1), 251u);
  EXPECT_EQ(maglevTableSize(3), 1021u);
  EXPECT_EQ(maglevTableSize(30), 4093u);
  EXPECT_EQ(maglevTableSize(1000), 16381u);
}

TEST(Maglev, EveryBackendGetsAFairShare) {
  auto t = buildMaglevTable(backends({1, 1, 1, 1}), 1021);
  ASSERT_EQ(t.size(), 1021u);
  for (auto [b, count] : shares(t)) EXPECT_NEAR(count, 1021 / 4, 3) << "backend " << b;
}

TEST(Maglev, WeightsShapeTheShares) {
  auto t = buildMaglevTable(backends({1, 3}), 1021);
  auto n = shares(t);
  EXPECT_NEAR(static_cast<double>(n[1]) / t.size(), 0.75, 0.01);
}

TEST(Maglev, OrderOfBackendsDoesNotMatter) {
  auto a = backends({1, 1, 2});
  auto b = std::vector<WeightedBackend>{a[2], a[0], a[1]};
  auto ta = buildMaglevTable(a, 251), tb = buildMaglevTable(b, 251);
  ASSERT_EQ(ta.size(), tb.size());
  for (std::size_t i = 0; i < ta.size(); ++i) EXPECT_EQ(a[ta[i]].key, b[tb[i]].key) << "slot " << i;
}

TEST(Maglev, RemovingOneBackendMovesFewOtherSlots) {
  auto before = backends({1, 1, 1, 1, 1});
  auto after = before;
  after.erase(after.begin() + 2);
  auto tb = buildMaglevTable(before, 1021), ta = buildMaglevTable(after, 1021);
  // Slots whose backend survived but changed anyway: Maglev vs a plain
  // "slot i -> backend i mod n" table over the same backends.
  std::size_t moved = 0, movedModulo = 0;
  for (std::size_t i = 0; i < tb.size(); ++i) {
    if (before[tb[i]].key != before[2].key && before[tb[i]].key != after[ta[i]].key) ++moved;
    const auto& mb = before[i % before.size()].key;
    if (mb != before[2].key && mb != after[i % after.size()].key) ++movedModulo;
  }
  EXPECT_GT(movedModulo, tb.size() / 2);
  EXPECT_LT(moved * 4, movedModulo) << "maglev moved " << moved << " slots, modulo " << movedModulo;
}

TEST(BuildTable, DispatchesOnAlgorithm) {
  EXPECT_EQ(buildTable(state::LbAlgorithm::kRandom, backends({1, 1})).size(), 2u);
  EXPECT_EQ(buildTable(state::LbAlgorithm::kMaglev, backends({1, 1})).size(), 251u);
}

}  // namespace
}  // namespace nodemesh::datapath
