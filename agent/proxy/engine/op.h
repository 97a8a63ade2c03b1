// The op record each submission carries in user_data: {kind, generation, slot}
// packed into 64 bits, so no allocation per submission and nothing to leak when
// a ring is torn down with requests in flight. The generation makes a stale
// record (slot reused) detectable and keeps cancel-by-user_data exact.
#pragma once

#include <cstdint>

namespace nodemesh::proxy {

enum class OpKind : uint8_t {
  kAccept = 1,     // multishot (or single) accept on the worker's listener
  kWake,           // read on the worker's eventfd: stop requested
  kCancel,         // an async cancel; its result is reported by the target op
  kConnect,        // upstream connect
  kRecvClient,     // recv from the client     (direction kToUpstream)
  kRecvUpstream,   // recv from the upstream   (direction kToClient)
  kSendUpstream,   // send to the upstream     (direction kToUpstream)
  kSendClient,     // send to the client       (direction kToClient)
};

// Direction of a byte stream through a connection.
enum Dir : uint8_t { kToUpstream = 0, kToClient = 1 };

struct OpRef {
  OpKind kind;
  uint32_t gen;   // low 24 bits of the connection's generation
  uint32_t slot;  // index into the worker's connection table
};

inline constexpr uint32_t kGenMask = 0xffffff;

inline uint64_t encodeOp(OpKind kind, uint32_t slot = 0, uint32_t gen = 0) {
  return uint64_t(kind) << 56 | uint64_t(gen & kGenMask) << 32 | slot;
}

inline OpRef decodeOp(uint64_t ud) {
  return OpRef{OpKind(ud >> 56), uint32_t(ud >> 32) & kGenMask, uint32_t(ud)};
}

inline OpKind recvOp(Dir d) { return d == kToUpstream ? OpKind::kRecvClient : OpKind::kRecvUpstream; }
inline OpKind sendOp(Dir d) { return d == kToUpstream ? OpKind::kSendUpstream : OpKind::kSendClient; }

}  // namespace nodemesh::proxy
