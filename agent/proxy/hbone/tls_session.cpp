#include "proxy/hbone/tls_session.h"

#include <openssl/bn.h>
#include <openssl/err.h>

#include <cstring>

namespace nodemesh::proxy::hbone {

using identity::opensslErrors;
using identity::SslCtxPtr;
using identity::SslPtr;

namespace {

constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};

int selectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
             void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnH2, sizeof kAlpnH2, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol: not an HBONE client
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

Result<SslCtxPtr> baseContext(bool server) {
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return Error{"SSL_CTX_new: " + opensslErrors()};
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    return Error{"restricting to TLS 1.3: " + opensslErrors()};
  }
  // Idle connections give their record buffers back; no session tickets
  // (no resumption: every connection proves its certificate).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

TlsFailure fromVerifyResult(long v) {
  switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsFailure::kExpired;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return TlsFailure::kUnknownCa;
    default:
      return TlsFailure::kBadCertificate;
  }
}

// The category of a failed handshake from this side's view: our verifier's
// verdict, the alert the peer sent, or "protocol".
TlsFailure classify(const SSL* ssl, unsigned long err) {
  if (ERR_GET_LIB(err) != ERR_LIB_SSL) return TlsFailure::kProtocol;
  switch (ERR_GET_REASON(err)) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return fromVerifyResult(SSL_get_verify_result(ssl));
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return TlsFailure::kNoClientCert;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return TlsFailure::kUnknownCa;
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return TlsFailure::kExpired;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return TlsFailure::kBadCertificate;
    default:
      return TlsFailure::kProtocol;
  }
}

}  // namespace

// The client's certificate check: the PeerVerifier's (chain, SPIFFE ID, trust
// domain, same failure codes as PeerVerifier::attachTo installs), then the
// session's expected server identity. Failing here (not after the handshake)
// means OpenSSL sends the alert and no Finished goes out.
struct TlsVerify {
  static int sessionIndex() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }

  static int codeOf(identity::VerifyFailure why) {
    switch (why) {
      case identity::VerifyFailure::kExpired:
        return X509_V_ERR_CERT_HAS_EXPIRED;
      case identity::VerifyFailure::kNotYetValid:
        return X509_V_ERR_CERT_NOT_YET_VALID;
      case identity::VerifyFailure::kUnknownCa:
        return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
      case identity::VerifyFailure::kBadSignature:
        return X509_V_ERR_CERT_SIGNATURE_FAILURE;
      case identity::VerifyFailure::kChainInvalid:
        return X509_V_ERR_CERT_REJECTED;
      default:
        return X509_V_ERR_APPLICATION_VERIFICATION;
    }
  }

  static int client(X509_STORE_CTX* store, void* arg) {
    const auto* verifier = static_cast<const identity::PeerVerifier*>(arg);
    identity::VerifyFailure why = identity::VerifyFailure::kNone;
    auto id = verifier->verify(X509_STORE_CTX_get0_cert(store), X509_STORE_CTX_get0_untrusted(store), &why);
    if (!id) {
      X509_STORE_CTX_set_error(store, codeOf(why));
      return 0;
    }
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* session = ssl != nullptr ? static_cast<TlsSession*>(SSL_get_ex_data(ssl, sessionIndex())) : nullptr;
    if (session != nullptr && session->expected_ && !(*id == *session->expected_)) {
      session->mismatch_ = true;
      session->presented_ = id->str();
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;
    }
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
};

std::string certificateSerial(X509* cert) {
  if (cert == nullptr) return {};
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) return {};
  char* hex = BN_bn2hex(bn);
  BN_free(bn);
  if (hex == nullptr) return {};
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

std::string TlsSession::peerCertificateSerial() const { return certificateSerial(SSL_get0_peer_certificate(ssl_.get())); }

Result<std::shared_ptr<const TlsContext>> TlsContext::server(std::shared_ptr<const identity::IssuedCertificate> cert,
                                                             std::shared_ptr<const identity::PeerVerifier> verifier) {
  if (!cert || !verifier) return Error{"HBONE server TLS context needs a certificate and a peer verifier"};
  auto ctx = baseContext(true);
  if (!ctx) return ctx.error();
  if (auto st = identity::useCertificate(ctx->get(), *cert); !st) return st.error().wrap("HBONE server certificate");
  verifier->attachTo(ctx->get());  // SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT + SPIFFE verification
  SSL_CTX_set_alpn_select_cb(ctx->get(), &selectH2, nullptr);
  return std::shared_ptr<const TlsContext>(
      new TlsContext(std::move(ctx).value(), TlsRole::kServer, std::move(verifier), std::move(cert)));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::client(std::shared_ptr<const identity::PeerVerifier> verifier) {
  if (!verifier) return Error{"HBONE client TLS context needs a peer verifier"};
  auto ctx = baseContext(false);
  if (!ctx) return ctx.error();
  verifier->attachTo(ctx->get());
  // The same checks plus the per-session expected server identity.
  SSL_CTX_set_cert_verify_callback(ctx->get(), &TlsVerify::client, const_cast<identity::PeerVerifier*>(verifier.get()));
  if (SSL_CTX_set_alpn_protos(ctx->get(), kAlpnH2, sizeof kAlpnH2) != 0) {
    return Error{"setting ALPN: " + opensslErrors()};
  }
  return std::shared_ptr<const TlsContext>(
      new TlsContext(std::move(ctx).value(), TlsRole::kClient, std::move(verifier), nullptr));
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> ctx, TlsRole role, HboneCounters* counters)
    : ctx_(std::move(ctx)), role_(role), counters_(counters) {}

TlsSession::~TlsSession() = default;

// The owner moves ciphertext in and out of these two memory BIOs; the SSL
// object owns them once attached.
Status TlsSession::attachMemoryBios() {
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (rbio_ == nullptr || wbio_ == nullptr) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    return Error{"BIO_new: " + opensslErrors()};
  }
  BIO_set_mem_eof_return(rbio_, -1);  // empty = "want more", not EOF
  SSL_set_bio(ssl_.get(), rbio_, wbio_);
  return {};
}

Result<std::unique_ptr<TlsSession>> TlsSession::client(std::shared_ptr<const TlsContext> ctx,
                                                       const identity::IssuedCertificate* clientCert,
                                                       HboneCounters* counters,
                                                       std::optional<identity::SpiffeId> expectedPeer) {
  if (!ctx || ctx->role() != TlsRole::kClient) return Error{"TlsSession::client needs a client TlsContext"};
  std::unique_ptr<TlsSession> s(new TlsSession(ctx, TlsRole::kClient, counters));
  s->ssl_.reset(SSL_new(ctx->get()));
  if (!s->ssl_) return Error{"SSL_new: " + opensslErrors()};
  s->expected_ = std::move(expectedPeer);
  if (SSL_set_ex_data(s->ssl_.get(), TlsVerify::sessionIndex(), s.get()) != 1) {
    return Error{"SSL_set_ex_data: " + opensslErrors()};
  }
  if (clientCert != nullptr) {
    if (auto st = identity::useCertificate(s->ssl_.get(), *clientCert); !st) {
      return st.error().wrap("HBONE client certificate");
    }
  }
  if (auto st = s->attachMemoryBios(); !st) return st.error();
  SSL_set_connect_state(s->ssl_.get());
  std::string none;
  if (auto st = s->advance(none); !st) return st.error();  // ClientHello
  return s;
}

Result<std::unique_ptr<TlsSession>> TlsSession::server(std::shared_ptr<const TlsContext> ctx, HboneCounters* counters) {
  if (!ctx || ctx->role() != TlsRole::kServer) return Error{"TlsSession::server needs a server TlsContext"};
  std::unique_ptr<TlsSession> s(new TlsSession(ctx, TlsRole::kServer, counters));
  s->ssl_.reset(SSL_new(ctx->get()));
  if (!s->ssl_) return Error{"SSL_new: " + opensslErrors()};
  if (auto st = s->attachMemoryBios(); !st) return st.error();
  SSL_set_accept_state(s->ssl_.get());
  return s;
}

Status TlsSession::fail(TlsFailure why, std::string detail) {
  bool handshaking = state_ == State::kHandshaking;
  state_ = State::kFailed;
  failure_ = why;
  detail_ = std::move(detail);
  if (counters_ != nullptr) {
    if (handshaking) counters_->of(why)++;
    counters_->of(handshaking ? CloseReason::kTlsHandshake : CloseReason::kTlsError)++;
  }
  return Error{std::string(handshaking ? "TLS handshake failed (" : "TLS failed (") + toString(why) + "): " + detail_};
}

Status TlsSession::failFromSsl(int ret, const char* what) {
  int e = SSL_get_error(ssl_.get(), ret);
  unsigned long err = ERR_peek_error();
  TlsFailure why = TlsFailure::kProtocol;
  if (e == SSL_ERROR_SSL) why = classify(ssl_.get(), err);
  std::string detail = std::string(what) + ": ";
  if (why != TlsFailure::kProtocol && why != TlsFailure::kNoClientCert &&
      SSL_get_verify_result(ssl_.get()) != X509_V_OK) {
    detail += std::string(X509_verify_cert_error_string(SSL_get_verify_result(ssl_.get()))) + "; ";
  }
  if (mismatch_) detail += "server is " + presented_ + ", expected " + expected_->str() + "; ";
  detail += e == SSL_ERROR_SYSCALL ? std::string("unexpected end of TLS stream") : opensslErrors();
  ERR_clear_error();
  return fail(why, std::move(detail));
}

Status TlsSession::advance(std::string& plaintext) {
  if (state_ == State::kHandshaking) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_.get());
    if (r != 1) {
      int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return {};
      return failFromSsl(r, "handshake");
    }
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl_.get(), &proto, &len);
    if (len != 2 || std::memcmp(proto, "h2", 2) != 0) {
      return fail(TlsFailure::kProtocol, "peer did not negotiate ALPN h2");
    }
    auto id = identity::peerIdentity(ssl_.get());
    if (!id) return fail(TlsFailure::kBadCertificate, id.error().message);
    peer_ = std::move(id).value();
    state_ = State::kEstablished;
    if (counters_ != nullptr) counters_->handshakes++;
    if (auto st = flushPending(); !st) return st;
  }
  if (state_ != State::kEstablished) return {};
  char buf[16384];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_.get(), buf, sizeof buf);
    if (n > 0) {
      plaintext.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    int e = SSL_get_error(ssl_.get(), n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return {};
    if (e == SSL_ERROR_ZERO_RETURN) {
      state_ = State::kClosed;
      return {};
    }
    // TLS 1.3: a client learns that the server refused its certificate here,
    // from the alert that follows the client's Finished.
    return failFromSsl(n, "read");
  }
}

Status TlsSession::receive(std::span<const std::uint8_t> ciphertext, std::string& plaintext) {
  if (state_ == State::kFailed) return Error{"TLS session already failed: " + detail_};
  if (state_ == State::kClosed) return {};
  std::size_t off = 0;
  while (off < ciphertext.size()) {
    // Feed in bounded slices so one call cannot grow the read BIO without bound.
    std::size_t chunk = std::min<std::size_t>(ciphertext.size() - off, 64 * 1024);
    int w = BIO_write(rbio_, ciphertext.data() + off, static_cast<int>(chunk));
    if (w <= 0) return fail(TlsFailure::kProtocol, "BIO_write: " + opensslErrors());
    off += static_cast<std::size_t>(w);
    if (auto st = advance(plaintext); !st) return st;
    if (state_ != State::kHandshaking && state_ != State::kEstablished) break;
  }
  if (ciphertext.empty()) return advance(plaintext);
  return {};
}

Status TlsSession::flushPending() {
  if (pendingPlain_.empty()) return {};
  std::string p;
  p.swap(pendingPlain_);
  return send(std::span(reinterpret_cast<const std::uint8_t*>(p.data()), p.size()));
}

Status TlsSession::send(std::span<const std::uint8_t> plaintext) {
  if (state_ == State::kFailed) return Error{"TLS session failed: " + detail_};
  if (state_ == State::kClosed) return Error{"TLS session closed"};
  if (state_ == State::kHandshaking) {
    pendingPlain_.append(reinterpret_cast<const char*>(plaintext.data()), plaintext.size());
    return {};
  }
  std::size_t off = 0;
  while (off < plaintext.size()) {
    ERR_clear_error();
    std::size_t chunk = std::min<std::size_t>(plaintext.size() - off, 1 << 20);
    int n = SSL_write(ssl_.get(), plaintext.data() + off, static_cast<int>(chunk));
    if (n <= 0) return failFromSsl(n, "write");  // memory BIOs never say "want write"
    off += static_cast<std::size_t>(n);
  }
  return {};
}

std::size_t TlsSession::takeCiphertext(std::string& out) {
  std::size_t total = 0;
  char buf[16384];
  for (;;) {
    int n = BIO_read(wbio_, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    total += static_cast<std::size_t>(n);
  }
  return total;
}

std::size_t TlsSession::pendingCiphertext() const {
  return BIO_ctrl_pending(wbio_);
}

void TlsSession::close() {
  if (state_ == State::kEstablished) {
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
    state_ = State::kClosed;
  }
}

std::string_view TlsSession::alpn() const {
  const unsigned char* proto = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &proto, &len);
  return proto == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(proto), len);
}

}  // namespace nodemesh::proxy::hbone
