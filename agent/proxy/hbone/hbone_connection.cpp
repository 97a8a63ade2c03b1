#include "proxy/hbone/hbone_connection.h"

namespace nodemesh::proxy::hbone {

namespace {
std::span<const std::uint8_t> bytesOf(const std::string& s) {
  return std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
}  // namespace

Result<std::unique_ptr<HboneServerConnection>> HboneServerConnection::create(std::shared_ptr<const TlsContext> ctx,
                                                                             Authorizer authorize, H2Limits limits,
                                                                             HboneCounters* counters, AnswerMode mode) {
  if (!authorize) return Error{"HBONE server connection needs an authorization callback"};
  auto tls = TlsSession::server(std::move(ctx), counters);
  if (!tls) return tls.error();
  std::unique_ptr<HboneServerConnection> c(new HboneServerConnection());
  c->tls_ = std::move(tls).value();
  c->authorize_ = std::move(authorize);
  c->limits_ = limits;
  c->counters_ = counters;
  c->mode_ = mode;
  return c;
}

Status HboneServerConnection::receive(std::span<const std::uint8_t> ciphertext) {
  if (failed_) return Error{"HBONE connection already failed"};
  std::string plain;
  if (auto st = tls_->receive(ciphertext, plain); !st) {
    failed_ = true;
    return st;
  }
  if (!h2_ && tls_->established()) {
    auto h2 = HboneServer::create(tls_->peerId(), authorize_, limits_, counters_, mode_);
    if (!h2) {
      failed_ = true;
      return h2.error();
    }
    h2_ = std::move(h2).value();
  }
  if (h2_ && !plain.empty()) {
    if (auto st = h2_->receive(bytesOf(plain)); !st) {
      failed_ = true;
      return st;
    }
  }
  return {};
}

std::size_t HboneServerConnection::output(std::string& ciphertext) {
  if (h2_ && tls_->established()) {
    std::string plain;
    h2_->output(plain);
    if (!plain.empty() && !tls_->send(bytesOf(plain))) failed_ = true;
  }
  return tls_->takeCiphertext(ciphertext);
}

bool HboneServerConnection::finished() const {
  if (tls_->pendingCiphertext() > 0) return false;
  if (failed_ || tls_->state() == TlsSession::State::kFailed || tls_->state() == TlsSession::State::kClosed) {
    return true;
  }
  return h2_ && h2_->finished();
}

Result<std::unique_ptr<HboneClientConnection>> HboneClientConnection::create(
    std::shared_ptr<const TlsContext> ctx, const identity::IssuedCertificate* clientCert, H2Limits limits,
    HboneCounters* counters, std::optional<identity::SpiffeId> expectedPeer) {
  auto tls = TlsSession::client(std::move(ctx), clientCert, counters, std::move(expectedPeer));
  if (!tls) return tls.error();
  auto h2 = HboneClient::create(limits, counters);
  if (!h2) return h2.error();
  std::unique_ptr<HboneClientConnection> c(new HboneClientConnection());
  c->tls_ = std::move(tls).value();
  c->h2_ = std::move(h2).value();
  return c;
}

Status HboneClientConnection::receive(std::span<const std::uint8_t> ciphertext) {
  if (failed_) return Error{"HBONE connection already failed"};
  std::string plain;
  if (auto st = tls_->receive(ciphertext, plain); !st) {
    failed_ = true;
    return st;
  }
  if (!plain.empty()) {
    if (auto st = h2_->receive(bytesOf(plain)); !st) {
      failed_ = true;
      return st;
    }
  }
  return {};
}

std::size_t HboneClientConnection::output(std::string& ciphertext) {
  auto state = tls_->state();
  if (state == TlsSession::State::kHandshaking || state == TlsSession::State::kEstablished) {
    std::string plain;
    h2_->output(plain);  // before the handshake: held by the TLS session, flushed when it completes
    if (!plain.empty() && !tls_->send(bytesOf(plain))) failed_ = true;
  }
  return tls_->takeCiphertext(ciphertext);
}

bool HboneClientConnection::finished() const {
  if (tls_->pendingCiphertext() > 0) return false;
  if (failed_ || tls_->state() == TlsSession::State::kFailed || tls_->state() == TlsSession::State::kClosed) {
    return true;
  }
  return h2_->finished();
}

}  // namespace nodemesh::proxy::hbone
