// One proxied connection: a client fd, an upstream fd and two directions of
// byte stream between them. Lives in the worker's slot table; a slot is freed
// only when no op of the connection is in flight, so completions never find a
// reused slot.
#pragma once

#include <cstdint>

#include "common/unique_fd.h"
#include "proxy/engine/op.h"
#include "proxy/engine/options.h"

namespace nodemesh::proxy {

inline constexpr int32_t kNoBuffer = -1;

struct Direction {
  // FIFO of received, unsent buffers; links live in the worker's per-buffer
  // table (a buffer is in at most one queue), so a queue costs 8 bytes here.
  int32_t head = kNoBuffer;
  int32_t tail = kNoBuffer;
  uint16_t queued = 0;           // buffers in the FIFO
  uint32_t bytes = 0;            // unsent bytes in the FIFO
  bool recv_armed = false;       // a recv on the source is in flight
  bool cancel_requested = false; // backpressure cancel of that recv sent
  bool send_inflight = false;    // at most one send per direction
  bool stalled = false;          // recv ended with -ENOBUFS; on the stall list
  bool eof = false;              // the source reached EOF
  bool done = false;             // EOF propagated: shutdown(SHUT_WR) on the sink
  // Without the multishot byte cap only: the last recv filled a whole
  // buffer, the source has more than we take per recv, so use single-shot recvs (exactly one buffer per re-arm) instead
  // of a multishot that may post a burst of buffers before a cancel lands.
  // Starts true: a new stream proves itself interactive with a short read.
  bool bulk = true;
  bool paced = false;            // paused once by backpressure: single-shot from now on (no cap)
};

struct Connection {
  UniqueFd client;
  UniqueFd upstream;
  uint32_t slot = 0;             // index in the worker's table
  uint32_t gen = 0;
  uint16_t ops = 0;              // ops of this connection in flight
  bool in_use = false;
  bool connect_inflight = false;
  bool connected = false;
  bool closing = false;
  Direction dir[2];
  SocketAddress upstream_addr;   // stable memory for the async connect

  int source(Dir d) const { return d == kToUpstream ? client.get() : upstream.get(); }
  int sink(Dir d) const { return d == kToUpstream ? upstream.get() : client.get(); }
};

}  // namespace nodemesh::proxy
