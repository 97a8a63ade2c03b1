// The sending end of HBONE: an HTTP/2 client that opens one CONNECT stream
// per tunnelled TCP connection (`:method CONNECT`, `:authority <ip:port>`),
// many multiplexed on one connection. A stream becomes writable when the
// server answers 200 (event kOpened); any other status is kRejected.
#pragma once

#include <memory>

#include "common/result.h"
#include "proxy/hbone/h2_session.h"
#include "proxy/hbone/tunnel_authority.h"

namespace nodemesh::proxy::hbone {

class HboneClient : public H2Session {
 public:
  static Result<std::unique_ptr<HboneClient>> create(H2Limits limits = {}, HboneCounters* counters = nullptr);
  // Queues a CONNECT to `dst`; returns the stream id (the request goes out
  // with the next output()).
  Result<std::int32_t> connect(const TunnelAddress& dst);
  // The server answered 200 and the stream is not closed.
  bool isOpen(std::int32_t stream) const;

 private:
  HboneClient(H2Limits limits, HboneCounters* counters) : H2Session(false, limits, counters) {}
  void onHeadersComplete(Stream& s, const nghttp2_frame& frame) override;
};

}  // namespace nodemesh::proxy::hbone
