// TLS 1.3 mTLS as a sans-IO transport: ciphertext in, plaintext out and vice
// versa, over two memory BIOs. No sockets: the io_uring engine owns the fd and
// moves the bytes. ALPN is "h2" only. Both sides verify the other with the
// identity library's PeerVerifier (chain to the trust bundle, SPIFFE ID, trust
// domain); a failed handshake has a counted TlsFailure category and a detail.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "identity/issued_certificate.h"
#include "identity/openssl_ptr.h"
#include "identity/peer_verifier.h"
#include "identity/spiffe_id.h"
#include "proxy/hbone/counters.h"

namespace nodemesh::proxy::hbone {

enum class TlsRole : std::uint8_t { kClient, kServer };

// One SSL_CTX per role (share it across connections of a worker).
class TlsContext {
 public:
  // The 15008 listener: presents `cert`, requires a client certificate and
  // verifies it with `verifier`; selects ALPN "h2" or fails the handshake.
  static Result<std::shared_ptr<const TlsContext>> server(std::shared_ptr<const identity::IssuedCertificate> cert,
                                                          std::shared_ptr<const identity::PeerVerifier> verifier);
  // The outbound side: the certificate is chosen per session (the client
  // workload's); verifies the server with `verifier`; offers ALPN "h2".
  static Result<std::shared_ptr<const TlsContext>> client(std::shared_ptr<const identity::PeerVerifier> verifier);

  SSL_CTX* get() const { return ctx_.get(); }
  TlsRole role() const { return role_; }

 private:
  TlsContext(identity::SslCtxPtr ctx, TlsRole role, std::shared_ptr<const identity::PeerVerifier> v,
             std::shared_ptr<const identity::IssuedCertificate> c)
      : ctx_(std::move(ctx)), role_(role), verifier_(std::move(v)), cert_(std::move(c)) {}
  identity::SslCtxPtr ctx_;
  TlsRole role_;
  std::shared_ptr<const identity::PeerVerifier> verifier_;  // the ctx's verify callback points at it
  std::shared_ptr<const identity::IssuedCertificate> cert_;
};

class TlsSession {
 public:
  enum class State : std::uint8_t {
    kHandshaking,
    kEstablished,  // both directions usable; peerId() is set
    kClosed,       // the peer sent close_notify (or close() was called)
    kFailed,       // fatal: failure()/failureDetail() say why; send the pending ciphertext (the alert), then close
  };

  // `clientCert` is presented to the server (nullptr: none, which a nodemesh server refuses).
  // `expectedPeer`: besides the verifier's checks the server's SPIFFE ID must
  // be exactly this one; another fails the handshake during certificate
  // verification (bad_certificate, the alert goes to the server) and
  // peerMismatch() is true.
  static Result<std::unique_ptr<TlsSession>> client(std::shared_ptr<const TlsContext> ctx,
                                                    const identity::IssuedCertificate* clientCert,
                                                    HboneCounters* counters = nullptr,
                                                    std::optional<identity::SpiffeId> expectedPeer = {});
  static Result<std::unique_ptr<TlsSession>> server(std::shared_ptr<const TlsContext> ctx,
                                                    HboneCounters* counters = nullptr);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the network: advances the handshake and appends any
  // decrypted application bytes to `plaintext`. An error means the session
  // failed (state() == kFailed); ciphertext (an alert) may still be pending.
  Status receive(std::span<const std::uint8_t> ciphertext, std::string& plaintext);
  // Application bytes to encrypt. Before the handshake completes they are
  // held and flushed when it does.
  Status send(std::span<const std::uint8_t> plaintext);
  Status send(std::string_view plaintext) {
    return send(std::span(reinterpret_cast<const std::uint8_t*>(plaintext.data()), plaintext.size()));
  }
  // Moves the ciphertext to write to the network into `out` (appends); returns bytes moved.
  std::size_t takeCiphertext(std::string& out);
  std::size_t pendingCiphertext() const;
  // Sends close_notify (queued as ciphertext).
  void close();

  State state() const { return state_; }
  bool established() const { return state_ == State::kEstablished; }
  TlsFailure failure() const { return failure_; }
  const std::string& failureDetail() const { return detail_; }
  // The verified peer identity, once established.
  const std::optional<identity::SpiffeId>& peerId() const { return peer_; }
  std::string_view alpn() const;
  // The client refused a verified server identity that is not `expectedPeer`.
  bool peerMismatch() const { return mismatch_; }
  const std::optional<identity::SpiffeId>& expectedPeer() const { return expected_; }
  // The serial number of the certificate the peer presented (upper-case hex;
  // empty before the certificate arrived). For logs and tests.
  std::string peerCertificateSerial() const;
  TlsRole role() const { return role_; }
  SSL* ssl() const { return ssl_.get(); }

 private:
  TlsSession(std::shared_ptr<const TlsContext> ctx, TlsRole role, HboneCounters* counters);
  Status advance(std::string& plaintext);
  Status attachMemoryBios();
  Status fail(TlsFailure why, std::string detail);
  Status failFromSsl(int ret, const char* what);
  Status flushPending();

  std::shared_ptr<const TlsContext> ctx_;
  identity::SslPtr ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  TlsRole role_;
  HboneCounters* counters_;
  State state_ = State::kHandshaking;
  TlsFailure failure_ = TlsFailure::kNone;
  std::string detail_;
  std::optional<identity::SpiffeId> peer_;
  std::string pendingPlain_;  // written before the handshake completed
  std::optional<identity::SpiffeId> expected_;
  std::string presented_;  // the verified identity that was not expected_
  bool mismatch_ = false;

  friend struct TlsVerify;
};

// The upper-case hex serial number of `cert` ("" when null).
std::string certificateSerial(X509* cert);

}  // namespace nodemesh::proxy::hbone
