// The receiving end of HBONE (the peer node's :15008): an HTTP/2 server that
// accepts only tunnel requests - plain CONNECT to a literal IP:port - asks
// the owner's authorization callback, answers 200 and relays bytes, or
// refuses with 400/405/403 and RST_STREAM. Sans-IO: plaintext HTTP/2 in and
// out (HboneServerConnection puts TLS under it).
//
// Answer modes. kImmediate: an authorized request is answered 200 at once
// (event kOpened). kDeferred: an authorized request becomes kRequested and
// stays unanswered until the owner calls accept() (200; e.g. once it has
// connected to the destination) or decline() (503 and friends; counted as
// StreamReject::kUnavailable). A deferred stream the peer resets before the
// answer reports kClosed like any other.
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

enum class AnswerMode : std::uint8_t { kImmediate, kDeferred };

class HboneServer : public H2Session {
 public:
  static Result<std::unique_ptr<HboneServer>> create(std::optional<identity::SpiffeId> peer, Authorizer authorize,
                                                     H2Limits limits = {}, HboneCounters* counters = nullptr,
                                                     AnswerMode mode = AnswerMode::kImmediate);
  const std::optional<identity::SpiffeId>& peer() const { return peer_; }
  AnswerMode answerMode() const { return mode_; }

  // Deferred mode: answers a kRequested stream with 200; the stream is open
  // (writable, readable) from now on. False when there is nothing to answer
  // (unknown id, already answered, reset by the peer, connection dead).
  bool accept(std::int32_t stream);
  // Deferred mode: answers a kRequested stream with `status` (a 4xx/5xx; 503
  // by default), ends and resets it; counted as `why`. Data the peer sent
  // meanwhile is dropped. False when there is nothing to answer.
  bool decline(std::int32_t stream, int status = 503, StreamReject why = StreamReject::kUnavailable);

 private:
  HboneServer(std::optional<identity::SpiffeId> peer, Authorizer authorize, H2Limits limits, HboneCounters* counters,
              AnswerMode mode)
      : H2Session(true, limits, counters), peer_(std::move(peer)), authorize_(std::move(authorize)), mode_(mode) {}
  void onHeadersComplete(Stream& s, const nghttp2_frame& frame) override;
  void refuse(Stream& s, int status, StreamReject why);
  Stream* awaiting(std::int32_t stream);

  std::optional<identity::SpiffeId> peer_;
  Authorizer authorize_;
  AnswerMode mode_;
};

}  // namespace nodemesh::proxy::hbone
