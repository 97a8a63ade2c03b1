// The op record of a mesh worker submission, packed into user_data like the
// engine's (proxy/engine/op.h): kind (8) | generation (24) | slot (32). The
// slot indexes the relay or tunnel table the kind names (the listener index
// for accepts), so nothing is allocated per submission.
#pragma once

#include <cstdint>

#include "proxy/engine/op.h"

namespace nodemesh::proxy::mesh {

enum class MeshOp : std::uint8_t {
  kAccept = 1,     // slot: listener index
  kWake,           // the worker's eventfd: stop requested
  kCancel,         // an async cancel; the target reports its own end
  kTimer,          // periodic tick: handshake deadlines, table pick-up, counter publication
  kRelayConnect,   // connect of a relay's upstream side
  kRelayRecv0,     // recv on relay side 0 (direction 0)
  kRelayRecv1,     // recv on relay side 1 (direction 1)
  kRelaySend0,     // send of direction 0 (to side 1)
  kRelaySend1,     // send of direction 1 (to side 0)
  kTunnelConnect,  // TCP connect to a peer node's HBONE port
  kTunnelRecv,     // ciphertext from a tunnel socket
  kTunnelSend,     // ciphertext to a tunnel socket
};

inline std::uint64_t encode(MeshOp kind, std::uint32_t slot = 0, std::uint32_t gen = 0) {
  return std::uint64_t(kind) << 56 | std::uint64_t(gen & kGenMask) << 32 | slot;
}

struct MeshOpRef {
  MeshOp kind;
  std::uint32_t gen;
  std::uint32_t slot;
};

inline MeshOpRef decode(std::uint64_t ud) {
  return MeshOpRef{MeshOp(ud >> 56), std::uint32_t(ud >> 32) & kGenMask, std::uint32_t(ud)};
}

inline MeshOp relayRecvOp(int dir) { return dir == 0 ? MeshOp::kRelayRecv0 : MeshOp::kRelayRecv1; }
inline MeshOp relaySendOp(int dir) { return dir == 0 ? MeshOp::kRelaySend0 : MeshOp::kRelaySend1; }

}  // namespace nodemesh::proxy::mesh
