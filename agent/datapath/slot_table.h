// Backend tables: the array of slots the BPF hook indexes into. Both
// algorithms produce a table whose slot shares follow the backend weights;
// they differ in how the hook picks a slot (random vs client hash) and in
// how the table is laid out (Maglev keeps most slots in place when the
// backend set changes, so most clients keep their backend).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "state/snapshot.h"

namespace nodemesh::datapath {

struct WeightedBackend {
  std::string key;  // stable identity ("addr:port"): Maglev's hash input
  std::uint32_t weight = 1;
};

// Largest table used for weighted-random services; weights whose reduced sum
// exceeds it are scaled down (largest remainder), keeping every backend >= 1 slot.
inline constexpr std::uint32_t kMaxRandomSlots = 1024;

// Table for LbAlgorithm::kRandom: backend i fills slots in proportion to its
// weight. Equal weights give exactly one slot per backend.
std::vector<std::uint32_t> buildRandomTable(const std::vector<WeightedBackend>& backends);

// Maglev table size for n backends: a prime >= 100*n (the paper's bound for
// < 1% imbalance), capped at NM_MAX_SLOTS_PER_SERVICE.
std::uint32_t maglevTableSize(std::size_t backendCount);

// Table for LbAlgorithm::kMaglev (Eisenbud et al., NSDI'16) with weights:
// each backend claims slots along its own permutation, heavier backends more
// often per round. Deterministic for a given backend set, whatever the order.
std::vector<std::uint32_t> buildMaglevTable(const std::vector<WeightedBackend>& backends, std::uint32_t size);

// Either of the above for the service's algorithm. Entries are indices into backends.
std::vector<std::uint32_t> buildTable(state::LbAlgorithm algo, const std::vector<WeightedBackend>& backends);

}  // namespace nodemesh::datapath
