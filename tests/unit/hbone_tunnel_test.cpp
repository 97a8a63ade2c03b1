// HBONE end to end in memory: HboneClientConnection <-> HboneServerConnection
// with real OpenSSL (TLS 1.3 mTLS, dev CA certificates) and real nghttp2. The
// test moves the bytes itself - deterministic, no sockets, no sleeps.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include <map>
#include <string>
#include <vector>

#include "identity/certificate_authority.h"
#include "identity/peer_verifier.h"
#include "proxy/hbone/hbone_connection.h"

namespace nodemesh::proxy::hbone {
namespace {

using namespace std::chrono_literals;
using identity::CertificateAuthority;
using identity::IssuedCertificate;
using identity::PeerVerifier;
using identity::SpiffeId;

constexpr std::string_view kTd = "cluster.local";

SpiffeId id(std::string_view ns, std::string_view sa) {
  return SpiffeId::forWorkload(kTd, ns, sa).value();
}

TunnelAddress dst(std::string_view s) {
  return parseTunnelAuthority(s).value();
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

struct Endpoints {
  std::unique_ptr<HboneClientConnection> client;
  std::unique_ptr<HboneServerConnection> server;
  Status clientStatus;
  Status serverStatus;

  // Moves bytes both ways until neither side has anything to say.
  void pump(int maxRounds = 100000) {
    for (int i = 0; i < maxRounds; ++i) {
      std::string a, b;
      if (clientStatus) client->output(a);
      if (!a.empty() && serverStatus) serverStatus = server->receive(a);
      if (serverStatus || server->tls().pendingCiphertext() > 0) server->output(b);
      if (!b.empty() && clientStatus) clientStatus = client->receive(b);
      if (a.empty() && b.empty()) return;
    }
    FAIL() << "pump did not settle";
  }
};

class HboneTest : public ::testing::Test {
 protected:
  CertificateAuthority ca = CertificateAuthority::generateDevelopment(kTd).value();
  std::shared_ptr<const PeerVerifier> verifier = PeerVerifier::create(ca.trustBundle(), std::string(kTd)).value();
  std::shared_ptr<const IssuedCertificate> clientCert = ca.issue(id("shop", "checkout")).value();
  std::shared_ptr<const IssuedCertificate> serverCert = ca.issue(id("nodemesh", "node-b")).value();
  HboneCounters clientCounters;
  HboneCounters serverCounters;
  std::vector<std::pair<std::optional<SpiffeId>, TunnelAddress>> asked;
  bool allow = true;

  Authorizer authorizer() {
    return [this](const std::optional<SpiffeId>& peer, const TunnelAddress& d) {
      asked.emplace_back(peer, d);
      return allow;
    };
  }

  Endpoints connect(const IssuedCertificate* cert, std::shared_ptr<const PeerVerifier> clientVerifier = nullptr,
                    H2Limits limits = {}) {
    auto sctx = TlsContext::server(serverCert, verifier).value();
    auto cctx = TlsContext::client(clientVerifier ? clientVerifier : verifier).value();
    Endpoints e;
    e.server = HboneServerConnection::create(sctx, authorizer(), limits, &serverCounters).value();
    e.client = HboneClientConnection::create(cctx, cert, limits, &clientCounters).value();
    e.pump();
    return e;
  }
};

TEST_F(HboneTest, MutualTlsHandshakeShowsBothIdentities) {
  auto e = connect(clientCert.get());
  ASSERT_TRUE(e.clientStatus) << e.clientStatus.error().message;
  ASSERT_TRUE(e.serverStatus) << e.serverStatus.error().message;
  ASSERT_TRUE(e.client->tls().established());
  ASSERT_TRUE(e.server->tls().established());
  EXPECT_EQ(e.server->tls().peerId(), id("shop", "checkout"));
  EXPECT_EQ(e.client->tls().peerId(), id("nodemesh", "node-b"));
  EXPECT_EQ(e.client->tls().alpn(), "h2");
  EXPECT_EQ(e.server->tls().alpn(), "h2");
  EXPECT_STREQ(SSL_get_version(e.server->tls().ssl()), "TLSv1.3");
  ASSERT_NE(e.server->h2(), nullptr);
  EXPECT_EQ(e.server->h2()->peer(), id("shop", "checkout"));
  EXPECT_EQ(serverCounters.handshakes, 1u);
  EXPECT_EQ(clientCounters.handshakes, 1u);
}

TEST_F(HboneTest, ConnectRelaysBytesBothWaysExactly) {
  auto e = connect(clientCert.get());
  auto sid = e.client->h2().connect(dst("10.0.0.7:8080")).value();
  e.pump();
  auto cev = e.client->h2().takeEvents();
  ASSERT_EQ(cev.size(), 1u);
  EXPECT_EQ(cev[0].kind, StreamEvent::Kind::kOpened);
  EXPECT_TRUE(e.client->h2().isOpen(sid));
  auto sev = e.server->h2()->takeEvents();
  ASSERT_EQ(sev.size(), 1u);
  EXPECT_EQ(sev[0].kind, StreamEvent::Kind::kOpened);
  EXPECT_EQ(sev[0].destination, dst("10.0.0.7:8080"));
  std::int32_t rid = sev[0].stream;
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].first, id("shop", "checkout"));
  EXPECT_EQ(asked[0].second, dst("10.0.0.7:8080"));

  EXPECT_EQ(e.client->h2().write(sid, "GET / HTTP/1.0\r\n\r\n"), 18u);
  e.pump();
  std::string got;
  e.server->h2()->read(rid, got);
  EXPECT_EQ(got, "GET / HTTP/1.0\r\n\r\n");
  e.server->h2()->write(rid, "HTTP/1.0 200 OK\r\n\r\nhi");
  e.server->h2()->closeWrite(rid);
  e.client->h2().closeWrite(sid);
  e.pump();
  std::string back;
  e.client->h2().read(sid, back);
  EXPECT_EQ(back, "HTTP/1.0 200 OK\r\n\r\nhi");
  bool peerEnd = false, closed = false;
  for (auto& ev : e.client->h2().takeEvents()) {
    peerEnd |= ev.kind == StreamEvent::Kind::kPeerEnd;
    if (ev.kind == StreamEvent::Kind::kClosed) {
      closed = true;
      EXPECT_EQ(ev.errorCode, 0u);
    }
  }
  EXPECT_TRUE(peerEnd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(e.client->h2().streamCount(), 0u);
  EXPECT_EQ(e.server->h2()->streamCount(), 0u);
  EXPECT_EQ(serverCounters.streamsOpened, 1u);
  EXPECT_EQ(serverCounters.streamsReset, 0u);
}

// Drives `streams` tunnels, each moving `perStream` bytes each way. Readers
// take at most `readChunk` per round, so the windows, not memory, absorb the
// difference: no receive buffer may exceed the stream window.
void transfer(Endpoints& e, std::vector<std::int32_t> cids, std::size_t perStream, std::size_t readChunk,
              const H2Limits& limits) {
  auto& c = e.client->h2();
  auto& s = *e.server->h2();
  std::map<std::int32_t, std::int32_t> serverOf;  // client id -> server id
  for (auto& ev : s.takeEvents())
    if (ev.kind == StreamEvent::Kind::kOpened) serverOf[static_cast<std::int32_t>(serverOf.size()) * 2 + 1] = ev.stream;
  ASSERT_EQ(serverOf.size(), cids.size());
  struct Dir {
    std::string src;
    std::size_t sent = 0;
    std::string got;
  };
  std::map<std::int32_t, Dir> up, down;
  for (std::size_t i = 0; i < cids.size(); ++i) {
    up[cids[i]].src = pattern(perStream, static_cast<unsigned>(i));
    down[cids[i]].src = pattern(perStream, static_cast<unsigned>(i + 1000));
  }
  std::size_t maxBuffered = 0;
  for (int round = 0; round < 200000; ++round) {
    bool done = true;
    for (auto cid : cids) {
      auto sid = serverOf.at(cid);
      auto& u = up[cid];
      auto& d = down[cid];
      if (u.sent < u.src.size()) {
        u.sent += c.write(cid, std::string_view(u.src).substr(u.sent, c.writable(cid)));
        if (u.sent == u.src.size()) c.closeWrite(cid);
      }
      if (d.sent < d.src.size()) {
        d.sent += s.write(sid, std::string_view(d.src).substr(d.sent, s.writable(sid)));
        if (d.sent == d.src.size()) s.closeWrite(sid);
      }
      maxBuffered = std::max({maxBuffered, s.readable(sid), c.readable(cid)});
      s.read(sid, u.got, readChunk);
      c.read(cid, d.got, readChunk);
      done &= u.got.size() == u.src.size() && d.got.size() == d.src.size();
    }
    if (done) break;
    e.pump();
    ASSERT_TRUE(e.clientStatus && e.serverStatus);
  }
  EXPECT_LE(maxBuffered, limits.streamWindow);
  for (auto cid : cids) {
    EXPECT_TRUE(up[cid].got == up[cid].src) << "upstream bytes differ on stream " << cid;
    EXPECT_TRUE(down[cid].got == down[cid].src) << "downstream bytes differ on stream " << cid;
  }
  e.pump();
}

TEST_F(HboneTest, EightMebibytesEachWayWithFlowControl) {
  H2Limits limits;
  auto e = connect(clientCert.get(), nullptr, limits);
  auto cid = e.client->h2().connect(dst("[fd00::5]:9000")).value();
  e.pump();
  transfer(e, {cid}, 8u << 20, 40 * 1024, limits);
  EXPECT_EQ(clientCounters.bytesOut, 8u << 20);
  EXPECT_EQ(serverCounters.bytesIn, 8u << 20);
  EXPECT_EQ(serverCounters.bytesOut, 8u << 20);
  EXPECT_EQ(e.client->h2().streamCount(), 0u);
  EXPECT_EQ(e.server->h2()->streamCount(), 0u);
}

TEST_F(HboneTest, TenConcurrentStreamsOnOneConnection) {
  H2Limits limits;
  auto e = connect(clientCert.get(), nullptr, limits);
  std::vector<std::int32_t> cids;
  for (int i = 0; i < 10; ++i)
    cids.push_back(e.client->h2().connect(dst("10.0.1." + std::to_string(i + 1) + ":80")).value());
  e.pump();
  int opened = 0;
  for (auto& ev : e.client->h2().takeEvents()) opened += ev.kind == StreamEvent::Kind::kOpened;
  EXPECT_EQ(opened, 10);
  EXPECT_EQ(asked.size(), 10u);
  transfer(e, cids, 300 * 1024, 64 * 1024, limits);
  EXPECT_EQ(serverCounters.handshakes, 1u);  // one connection
  EXPECT_EQ(serverCounters.streamsOpened, 10u);
}

TEST_F(HboneTest, SlowReaderBoundsBufferingAndUnblocksWriter) {
  H2Limits limits;
  auto e = connect(clientCert.get(), nullptr, limits);
  auto cid = e.client->h2().connect(dst("10.0.0.9:80")).value();
  e.pump();
  auto sev = e.server->h2()->takeEvents();
  ASSERT_EQ(sev.size(), 1u);
  auto sid = sev[0].stream;
  e.client->h2().takeEvents();
  // Nobody reads on the server: the client can push one stream window plus its send buffer, then stops.
  std::string blob = pattern(4u << 20, 7);
  std::size_t sent = 0;
  for (int i = 0; i < 100; ++i) {
    sent += e.client->h2().write(cid, std::string_view(blob).substr(sent));
    e.pump();
  }
  EXPECT_EQ(e.server->h2()->readable(sid), limits.streamWindow);
  EXPECT_EQ(sent, limits.streamWindow + limits.streamSendBuffer);
  EXPECT_EQ(e.client->h2().writable(cid), 0u);
  // Reading reopens the window; the writer is told it may write again.
  std::string got;
  e.server->h2()->read(sid, got);
  e.pump();
  bool writable = false;
  for (auto& ev : e.client->h2().takeEvents()) writable |= ev.kind == StreamEvent::Kind::kWritable;
  EXPECT_TRUE(writable);
  EXPECT_GT(e.client->h2().writable(cid), 0u);
  EXPECT_EQ(got, blob.substr(0, got.size()));
}

TEST_F(HboneTest, DeniedByAuthorizationGets403AndIsCounted) {
  allow = false;
  auto e = connect(clientCert.get());
  auto cid = e.client->h2().connect(dst("10.0.0.7:22")).value();
  e.pump();
  auto ev = e.client->h2().takeEvents();
  ASSERT_GE(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, StreamEvent::Kind::kRejected);
  EXPECT_EQ(ev[0].status, 403);
  EXPECT_FALSE(e.client->h2().isOpen(cid));
  EXPECT_EQ(serverCounters.get(StreamReject::kDenied), 1u);
  EXPECT_TRUE(e.server->h2()->takeEvents().empty());  // the owner never hears of it
  EXPECT_EQ(e.server->h2()->streamCount(), 0u);
  EXPECT_EQ(e.client->h2().streamCount(), 0u);
  // The connection keeps serving.
  allow = true;
  e.client->h2().connect(dst("10.0.0.7:80")).value();
  e.pump();
  ev = e.client->h2().takeEvents();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, StreamEvent::Kind::kOpened);
}

TEST_F(HboneTest, ClientFromAnotherCaIsRejectedAtHandshake) {
  auto otherCa = CertificateAuthority::generateDevelopment(kTd).value();
  auto foreign = otherCa.issue(id("shop", "checkout")).value();
  auto e = connect(foreign.get());
  EXPECT_FALSE(e.serverStatus);
  EXPECT_FALSE(e.server->tls().established());
  EXPECT_EQ(e.server->tls().failure(), TlsFailure::kUnknownCa);
  EXPECT_EQ(serverCounters.get(TlsFailure::kUnknownCa), 1u);
  EXPECT_EQ(serverCounters.get(CloseReason::kTlsHandshake), 1u);
  EXPECT_EQ(e.server->h2(), nullptr);
  EXPECT_TRUE(e.server->finished());
  // The client hears the alert.
  EXPECT_FALSE(e.clientStatus);
  EXPECT_EQ(e.client->tls().failure(), TlsFailure::kUnknownCa);
  EXPECT_TRUE(asked.empty());
}

TEST_F(HboneTest, ClientWithoutCertificateIsRejected) {
  auto e = connect(nullptr);
  EXPECT_FALSE(e.serverStatus);
  EXPECT_EQ(e.server->tls().failure(), TlsFailure::kNoClientCert);
  EXPECT_EQ(serverCounters.get(TlsFailure::kNoClientCert), 1u);
  EXPECT_FALSE(e.clientStatus);
  EXPECT_EQ(e.client->tls().failure(), TlsFailure::kNoClientCert);
}

TEST_F(HboneTest, ExpiredClientCertificateIsRejected) {
  auto now = identity::systemNow();
  auto oldCa = CertificateAuthority::generateDevelopment(kTd, now - 72h).value();
  auto expired = oldCa.issue(id("shop", "checkout"), now - 48h, 24h).value();
  auto v = PeerVerifier::create(oldCa.trustBundle(), std::string(kTd)).value();
  auto sctx = TlsContext::server(oldCa.issue(id("nodemesh", "node-b"), now).value(), v).value();
  auto cctx = TlsContext::client(v).value();
  Endpoints e;
  e.server = HboneServerConnection::create(sctx, authorizer(), {}, &serverCounters).value();
  e.client = HboneClientConnection::create(cctx, expired.get(), {}, &clientCounters).value();
  e.pump();
  EXPECT_FALSE(e.serverStatus);
  EXPECT_EQ(e.server->tls().failure(), TlsFailure::kExpired);
  EXPECT_NE(e.server->tls().failureDetail().find("expired"), std::string::npos) << e.server->tls().failureDetail();
  EXPECT_EQ(serverCounters.get(TlsFailure::kExpired), 1u);
  EXPECT_EQ(e.client->tls().failure(), TlsFailure::kExpired);
}

TEST_F(HboneTest, ServerOfAnotherTrustDomainIsRejectedByTheClient) {
  auto otherVerifier = PeerVerifier::create(ca.trustBundle(), "other.domain").value();
  auto e = connect(clientCert.get(), otherVerifier);
  EXPECT_FALSE(e.clientStatus);
  EXPECT_EQ(e.client->tls().failure(), TlsFailure::kBadCertificate);
  EXPECT_EQ(clientCounters.get(TlsFailure::kBadCertificate), 1u);
}

TEST_F(HboneTest, PlaintextIntoTheTlsPortIsClosedAndCounted) {
  auto sctx = TlsContext::server(serverCert, verifier).value();
  auto server = HboneServerConnection::create(sctx, authorizer(), {}, &serverCounters).value();
  // An HTTP/2 client that forgot TLS: the preface is not a TLS record.
  auto st = server->receive(std::string_view(NGHTTP2_CLIENT_MAGIC));
  EXPECT_FALSE(st);
  EXPECT_EQ(server->tls().failure(), TlsFailure::kProtocol);
  EXPECT_EQ(serverCounters.get(TlsFailure::kProtocol), 1u);
  EXPECT_EQ(serverCounters.get(CloseReason::kTlsHandshake), 1u);
  std::string alert;
  server->output(alert);
  EXPECT_TRUE(server->finished());
  EXPECT_FALSE(server->receive("more"));  // dead stays dead

  auto s2 = HboneServerConnection::create(sctx, authorizer(), {}, &serverCounters).value();
  EXPECT_FALSE(s2->receive(pattern(4096, 3)));
  EXPECT_EQ(serverCounters.get(TlsFailure::kProtocol), 2u);
}

TEST_F(HboneTest, ClientWithoutH2AlpnIsRejected) {
  auto sctx = TlsContext::server(serverCert, verifier).value();
  auto server = HboneServerConnection::create(sctx, authorizer(), {}, &serverCounters).value();
  identity::SslCtxPtr raw(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(raw.get(), TLS1_3_VERSION);
  ASSERT_TRUE(identity::useCertificate(raw.get(), *clientCert));
  verifier->attachTo(raw.get());
  SSL_CTX_set_alpn_protos(raw.get(), reinterpret_cast<const unsigned char*>("\x08http/1.1"), 9);
  identity::SslPtr ssl(SSL_new(raw.get()));
  BIO* rb = BIO_new(BIO_s_mem());
  BIO* wb = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rb, wb);
  SSL_set_connect_state(ssl.get());
  SSL_do_handshake(ssl.get());
  char buf[8192];
  int n = BIO_read(wb, buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_FALSE(server->receive(std::string_view(buf, static_cast<std::size_t>(n))));
  EXPECT_EQ(server->tls().failure(), TlsFailure::kProtocol);
  ERR_clear_error();
}

// ---- HTTP/2 hostile input on a plaintext (TLS-less) HboneServer ----

class HboneH2Test : public HboneTest {
 protected:
  std::unique_ptr<HboneServer> server =
      HboneServer::create(id("shop", "checkout"), authorizer(), {}, &serverCounters).value();

  // A raw nghttp2 client session we can make misbehave.
  struct RawClient {
    nghttp2_session* s = nullptr;
    std::string response;  // what the server answered, in frames seen
    std::map<std::int32_t, int> status;
    std::map<std::int32_t, std::uint32_t> resets;
    std::uint32_t goaway = 0xffffffff;
    RawClient() {
      nghttp2_session_callbacks* cb;
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_on_header_callback(
          cb, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl, const uint8_t* v, size_t vl,
                 uint8_t, void* ud) {
            if (std::string_view(reinterpret_cast<const char*>(n), nl) == ":status")
              static_cast<RawClient*>(ud)->status[f->hd.stream_id] =
                  std::stoi(std::string(reinterpret_cast<const char*>(v), vl));
            return 0;
          });
      nghttp2_session_callbacks_set_on_frame_recv_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* ud) {
        auto* self = static_cast<RawClient*>(ud);
        if (f->hd.type == NGHTTP2_RST_STREAM) self->resets[f->hd.stream_id] = f->rst_stream.error_code;
        if (f->hd.type == NGHTTP2_GOAWAY) self->goaway = f->goaway.error_code;
        return 0;
      });
      nghttp2_option* opt;
      nghttp2_option_new(&opt);
      nghttp2_option_set_no_http_messaging(opt, 1);  // let us send what a real client would not
      nghttp2_session_client_new2(&s, cb, this, opt);
      nghttp2_option_del(opt);
      nghttp2_session_callbacks_del(cb);
      nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, nullptr, 0);
    }
    ~RawClient() { nghttp2_session_del(s); }
    std::int32_t request(std::vector<std::pair<std::string, std::string>> hdrs) {
      std::vector<nghttp2_nv> nva;
      for (auto& [n, v] : hdrs) {
        nva.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()), n.size(), v.size(),
                       NGHTTP2_NV_FLAG_NONE});
      }
      return nghttp2_submit_request(s, nullptr, nva.data(), nva.size(), nullptr, nullptr);
    }
  };

  void pumpRaw(RawClient& c) {
    for (int i = 0; i < 1000; ++i) {
      std::string a, b;
      const uint8_t* d;
      ssize_t n;
      while ((n = nghttp2_session_mem_send(c.s, &d)) > 0)
        a.append(reinterpret_cast<const char*>(d), static_cast<size_t>(n));
      if (!a.empty()) (void)server->receive(a);
      server->output(b);
      if (!b.empty()) nghttp2_session_mem_recv(c.s, reinterpret_cast<const uint8_t*>(b.data()), b.size());
      if (a.empty() && b.empty()) return;
    }
  }
};

TEST_F(HboneH2Test, NonConnectMethodGets405AndReset) {
  RawClient c;
  auto sid = c.request({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "10.0.0.1:80"}});
  pumpRaw(c);
  EXPECT_EQ(c.status[sid], 405);
  EXPECT_EQ(c.resets.count(sid), 1u);
  EXPECT_EQ(serverCounters.get(StreamReject::kMethodNotAllowed), 1u);
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(server->streamCount(), 0u);
  EXPECT_FALSE(server->finished());
}

TEST_F(HboneH2Test, BadAuthorityGets400) {
  RawClient c;
  auto a = c.request({{":method", "CONNECT"}, {":authority", "db.internal:5432"}});
  auto b = c.request({{":method", "CONNECT"}, {":authority", "10.0.0.1:0"}});
  pumpRaw(c);
  EXPECT_EQ(c.status[a], 400);
  EXPECT_EQ(c.status[b], 400);
  EXPECT_EQ(serverCounters.get(StreamReject::kBadAuthority), 2u);
  EXPECT_TRUE(asked.empty());
}

TEST_F(HboneH2Test, ConnectWithPathIsMalformed) {
  RawClient c;
  auto sid = c.request({{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}, {":path", "/x"}, {":scheme", "https"}});
  pumpRaw(c);
  EXPECT_EQ(c.status.count(sid), 0u);
  ASSERT_EQ(c.resets.count(sid), 1u);
  EXPECT_EQ(c.resets[sid], static_cast<std::uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_EQ(serverCounters.get(StreamReject::kMalformed), 1u);
  EXPECT_TRUE(asked.empty());
}

TEST_F(HboneH2Test, ConnectWithoutAuthorityIsMalformed) {
  RawClient c;
  auto sid = c.request({{":method", "CONNECT"}});
  pumpRaw(c);
  EXPECT_EQ(c.resets.count(sid), 1u);
  EXPECT_EQ(serverCounters.get(StreamReject::kMalformed), 1u);
}

TEST_F(HboneH2Test, BadPrefaceClosesTheConnection) {
  auto st = server->receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(st);
  EXPECT_EQ(server->closeReason(), CloseReason::kBadPreface);
  EXPECT_EQ(serverCounters.get(CloseReason::kBadPreface), 1u);
  std::string out;
  server->output(out);
  EXPECT_TRUE(server->finished());
}

std::string frameHeader(std::uint32_t len, std::uint8_t type, std::uint8_t flags, std::uint32_t stream) {
  std::string h(9, '\0');
  h[0] = static_cast<char>(len >> 16);
  h[1] = static_cast<char>(len >> 8);
  h[2] = static_cast<char>(len);
  h[3] = static_cast<char>(type);
  h[4] = static_cast<char>(flags);
  h[5] = static_cast<char>(stream >> 24);
  h[6] = static_cast<char>(stream >> 16);
  h[7] = static_cast<char>(stream >> 8);
  h[8] = static_cast<char>(stream);
  return h;
}

TEST_F(HboneH2Test, OversizedFrameClosesTheConnectionWithGoaway) {
  std::string in(NGHTTP2_CLIENT_MAGIC);
  in += frameHeader(0, NGHTTP2_SETTINGS, 0, 0);
  in += frameHeader(1 << 20, NGHTTP2_DATA, 0, 1) + std::string(100, 'x');  // 1 MiB > SETTINGS_MAX_FRAME_SIZE
  auto st = server->receive(in);
  EXPECT_FALSE(st);
  EXPECT_EQ(server->closeReason(), CloseReason::kFrameSize);
  EXPECT_EQ(serverCounters.get(CloseReason::kFrameSize), 1u);
  std::string out;
  server->output(out);
  EXPECT_NE(out.find(frameHeader(8, NGHTTP2_GOAWAY, 0, 0).substr(3, 6)), std::string::npos);
  EXPECT_TRUE(server->finished());
}

TEST_F(HboneH2Test, ProtocolViolationClosesTheConnection) {
  std::string in(NGHTTP2_CLIENT_MAGIC);
  in += frameHeader(0, NGHTTP2_SETTINGS, 0, 0);
  in += frameHeader(4, NGHTTP2_WINDOW_UPDATE, 0, 0) + std::string("\0\0\0\0", 4);  // increment 0 on the connection
  EXPECT_FALSE(server->receive(in));
  EXPECT_EQ(server->closeReason(), CloseReason::kProtocol);
  EXPECT_EQ(serverCounters.get(CloseReason::kProtocol), 1u);
}

TEST_F(HboneH2Test, HeaderListTooLargeClosesTheConnection) {
  RawClient c;
  c.request({{":method", "CONNECT"}, {":authority", "10.0.0.1:80"}, {"x-junk", std::string(9000, 'a')}});
  pumpRaw(c);
  EXPECT_EQ(server->closeReason(), CloseReason::kHeaderListTooLarge);
  EXPECT_EQ(serverCounters.get(CloseReason::kHeaderListTooLarge), 1u);
  EXPECT_EQ(c.goaway, static_cast<std::uint32_t>(NGHTTP2_PROTOCOL_ERROR));
  EXPECT_TRUE(server->finished());
  EXPECT_TRUE(asked.empty());
}

TEST_F(HboneH2Test, GarbageAfterAGoodPrefaceNeverCrashes) {
  for (unsigned seed = 0; seed < 200; ++seed) {
    auto s = HboneServer::create(std::nullopt, authorizer(), {}, &serverCounters).value();
    std::string in(NGHTTP2_CLIENT_MAGIC);
    in += frameHeader(0, NGHTTP2_SETTINGS, 0, 0);
    in += pattern(64 + seed * 7, seed);
    (void)s->receive(in);
    std::string out;
    s->output(out);
    (void)s->receive(pattern(100, seed + 1));
    s->output(out);
  }
  std::uint64_t closes = 0;
  for (auto v : serverCounters.closes) closes += v;
  EXPECT_GT(closes, 100u);
}

}  // namespace
}  // namespace nodemesh::proxy::hbone
