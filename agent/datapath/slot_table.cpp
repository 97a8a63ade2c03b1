#include "datapath/slot_table.h"

#include <algorithm>
#include <numeric>

#include "nodemesh/abi.h"

namespace nodemesh::datapath {
namespace {

// FNV-1a 64 with a seed: stable across builds and hosts, which matters
// because two agents (or one agent across a restart) must build the same table.
std::uint64_t hash64(const std::string& s, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

std::vector<std::uint32_t> buildRandomTable(const std::vector<WeightedBackend>& backends) {
  std::vector<std::uint32_t> table;
  if (backends.empty()) return table;
  std::uint32_t g = 0;
  std::uint64_t sum = 0;
  for (const auto& b : backends) {
    g = std::gcd(g, b.weight);
    sum += b.weight;
  }
  sum /= g;
  if (sum <= kMaxRandomSlots) {
    for (std::uint32_t i = 0; i < backends.size(); ++i) table.insert(table.end(), backends[i].weight / g, i);
    return table;
  }
  // Scale to kMaxRandomSlots with the largest-remainder method.
  const std::uint32_t n = static_cast<std::uint32_t>(backends.size());
  const std::uint64_t budget = std::max<std::uint64_t>(kMaxRandomSlots, n);
  std::vector<std::uint64_t> count(n);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> remainder;
  std::uint64_t used = 0;
  const std::uint64_t total = sum * g;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint64_t exact = backends[i].weight * budget;
    count[i] = std::max<std::uint64_t>(1, exact / total);
    used += count[i];
    remainder.emplace_back(exact % total, i);
  }
  std::sort(remainder.begin(), remainder.end(), [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (std::size_t k = 0; used < budget && k < remainder.size(); ++k, ++used) ++count[remainder[k].second];
  for (std::uint32_t i = 0; i < n; ++i) table.insert(table.end(), count[i], i);
  return table;
}

std::uint32_t maglevTableSize(std::size_t backendCount) {
  static constexpr std::uint32_t kPrimes[] = {251, 1021, 4093, NM_MAX_SLOTS_PER_SERVICE};
  for (std::uint32_t p : kPrimes)
    if (p >= 100 * backendCount) return p;
  return NM_MAX_SLOTS_PER_SERVICE;
}

std::vector<std::uint32_t> buildMaglevTable(const std::vector<WeightedBackend>& backends, std::uint32_t size) {
  std::vector<std::uint32_t> table;
  if (backends.empty() || size == 0) return table;
  // Work in a canonical order so the config's ordering never changes the table.
  std::vector<std::uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return backends[a].key < backends[b].key; });

  const std::size_t n = order.size();
  std::vector<std::uint64_t> offset(n), skip(n), next(n, 0), credit(n, 0);
  std::uint32_t maxWeight = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const auto& b = backends[order[j]];
    offset[j] = hash64(b.key, 0x6d61676c6576ULL) % size;
    skip[j] = hash64(b.key, 0x736b6970ULL) % (size - 1) + 1;
    maxWeight = std::max(maxWeight, b.weight);
  }
  table.assign(size, UINT32_MAX);
  std::uint32_t filled = 0;
  while (filled < size) {
    for (std::size_t j = 0; j < n && filled < size; ++j) {
      // Weighted turns: a backend claims a slot each time its credit reaches
      // the heaviest weight, so claims per round follow the weights.
      credit[j] += backends[order[j]].weight;
      if (credit[j] < maxWeight) continue;
      credit[j] -= maxWeight;
      std::uint64_t c;
      do {
        c = (offset[j] + next[j] * skip[j]) % size;
        ++next[j];
      } while (table[c] != UINT32_MAX);
      table[c] = order[j];
      ++filled;
    }
  }
  return table;
}

std::vector<std::uint32_t> buildTable(state::LbAlgorithm algo, const std::vector<WeightedBackend>& backends) {
  if (algo == state::LbAlgorithm::kMaglev) return buildMaglevTable(backends, maglevTableSize(backends.size()));
  return buildRandomTable(backends);
}

}  // namespace nodemesh::datapath
