// HBONE as the engine will drive it: TlsSession under HboneServer /
// HboneClient, ciphertext in and out. Still sans-IO: receive() what the
// socket read, send what output() returns, close when finished().
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "identity/issued_certificate.h"
#include "proxy/hbone/counters.h"
#include "proxy/hbone/hbone_client.h"
#include "proxy/hbone/hbone_server.h"
#include "proxy/hbone/tls_session.h"

namespace nodemesh::proxy::hbone {

// One accepted connection on :15008.
class HboneServerConnection {
 public:
  static Result<std::unique_ptr<HboneServerConnection>> create(std::shared_ptr<const TlsContext> ctx,
                                                               Authorizer authorize, H2Limits limits = {},
                                                               HboneCounters* counters = nullptr,
                                                               AnswerMode mode = AnswerMode::kImmediate);
  // An error: the connection is dead (reason counted); send output() (an
  // alert or GOAWAY) if you like, then close the socket.
  Status receive(std::span<const std::uint8_t> ciphertext);
  Status receive(std::string_view c) {
    return receive(std::span(reinterpret_cast<const std::uint8_t*>(c.data()), c.size()));
  }
  // Appends ciphertext to send; returns bytes appended.
  std::size_t output(std::string& ciphertext);
  bool finished() const;

  TlsSession& tls() { return *tls_; }
  // nullptr until the TLS handshake completed (the peer identity is known).
  HboneServer* h2() { return h2_.get(); }

 private:
  HboneServerConnection() = default;
  std::unique_ptr<TlsSession> tls_;
  std::unique_ptr<HboneServer> h2_;
  Authorizer authorize_;
  H2Limits limits_;
  HboneCounters* counters_ = nullptr;
  AnswerMode mode_ = AnswerMode::kImmediate;
  bool failed_ = false;
};

// One outbound connection to a peer node, presenting the client workload's
// certificate. `expectedPeer`: the server must present exactly this SPIFFE ID
// (the mesh: the peer node's identity); another verified identity fails the
// handshake as bad_certificate and tls().peerMismatch() says so.
class HboneClientConnection {
 public:
  static Result<std::unique_ptr<HboneClientConnection>> create(std::shared_ptr<const TlsContext> ctx,
                                                               const identity::IssuedCertificate* clientCert,
                                                               H2Limits limits = {}, HboneCounters* counters = nullptr,
                                                               std::optional<identity::SpiffeId> expectedPeer = {});
  Status receive(std::span<const std::uint8_t> ciphertext);
  Status receive(std::string_view c) {
    return receive(std::span(reinterpret_cast<const std::uint8_t*>(c.data()), c.size()));
  }
  std::size_t output(std::string& ciphertext);
  bool finished() const;

  TlsSession& tls() { return *tls_; }
  // Usable at once: CONNECTs queue until the handshake completes.
  HboneClient& h2() { return *h2_; }

 private:
  HboneClientConnection() = default;
  std::unique_ptr<TlsSession> tls_;
  std::unique_ptr<HboneClient> h2_;
  bool failed_ = false;
};

}  // namespace nodemesh::proxy::hbone
