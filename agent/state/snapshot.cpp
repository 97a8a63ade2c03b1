#include "state/snapshot.h"

namespace nodemesh::state {

const char* toString(Protocol p) { return p == Protocol::kTcp ? "tcp" : "udp"; }
const char* toString(LbAlgorithm a) { return a == LbAlgorithm::kRandom ? "random" : "maglev"; }
const char* toString(ServiceMode) { return "l4"; }

}  // namespace nodemesh::state
