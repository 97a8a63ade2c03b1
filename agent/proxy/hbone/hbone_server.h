// The receiving end of HBONE (the peer node's :15008): an HTTP/2 server that
// accepts only tunnel requests - plain CONNECT to a literal IP:port - asks
// the owner's authorization callback, answers 200 and relays bytes, or
// refuses with 400/405/403 and RST_STREAM. Sans-IO: plaintext HTTP/2 in and
// out (HboneServerConnection puts TLS under it).
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "common/result.h"
#include "identity/spiffe_id.h"
#include "proxy/hbone/h2_session.h"
#include "proxy/hbone/tunnel_authority.h"

namespace nodemesh::proxy::hbone {

// peer: the client's verified SPIFFE ID (nullopt only on a plaintext session,
// which the real listener never has). Return true to allow the tunnel.
using Authorizer = std::function<bool(const std::optional<identity::SpiffeId>& peer, const TunnelAddress& dst)>;

class HboneServer : public H2Session {
 public:
  static Result<std::unique_ptr<HboneServer>> create(std::optional<identity::SpiffeId> peer, Authorizer authorize,
                                                     H2Limits limits = {}, HboneCounters* counters = nullptr);
  const std::optional<identity::SpiffeId>& peer() const { return peer_; }

 private:
  HboneServer(std::optional<identity::SpiffeId> peer, Authorizer authorize, H2Limits limits, HboneCounters* counters)
      : H2Session(true, limits, counters), peer_(std::move(peer)), authorize_(std::move(authorize)) {}
  void onHeadersComplete(Stream& s, const nghttp2_frame& frame) override;
  void refuse(Stream& s, int status, StreamReject why);

  std::optional<identity::SpiffeId> peer_;
  Authorizer authorize_;
};

}  // namespace nodemesh::proxy::hbone
