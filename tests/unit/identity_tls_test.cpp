// Proof that issued certificates work for mTLS: a real TLS 1.3 handshake
// between two SSL objects over a BIO pair, each side presenting its
// workload certificate and verifying the other with PeerVerifier.
#include <gtest/gtest.h>
#include <openssl/err.h>

#include "identity/certificate_authority.h"
#include "identity/peer_verifier.h"

namespace nodemesh::identity {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTd = "cluster.local";

SpiffeId id(std::string_view ns, std::string_view sa) {
  return SpiffeId::forWorkload(kTd, ns, sa).value();
}

SslCtxPtr makeCtx(bool server, const IssuedCertificate* cert, const PeerVerifier& verifier) {
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  EXPECT_TRUE(ctx);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  if (cert != nullptr) {
    EXPECT_TRUE(useCertificate(ctx.get(), *cert));
  }
  verifier.attachTo(ctx.get());
  return ctx;
}

struct Outcome {
  bool clientOk = false;
  bool serverOk = false;
  long clientVerify = X509_V_OK;
  long serverVerify = X509_V_OK;
  std::string echoed;
};

// Drives both ends until each finished its handshake or one failed, then has
// the client send a message through the tunnel.
Outcome handshake(SSL_CTX* clientCtx, SSL_CTX* serverCtx, SslPtr* clientOut = nullptr, SslPtr* serverOut = nullptr,
                  const IssuedCertificate* clientConnCert = nullptr) {
  SslPtr client(SSL_new(clientCtx));
  if (clientConnCert != nullptr) {
    EXPECT_TRUE(useCertificate(client.get(), *clientConnCert));
  }
  SslPtr server(SSL_new(serverCtx));
  BIO* cb = nullptr;
  BIO* sb = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
  SSL_set_bio(client.get(), cb, cb);
  SSL_set_bio(server.get(), sb, sb);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  Outcome o;
  bool clientDone = false, serverDone = false, failed = false;
  for (int round = 0; round < 50 && !failed && !(clientDone && serverDone); ++round) {
    if (!clientDone) {
      int r = SSL_do_handshake(client.get());
      if (r == 1)
        clientDone = true;
      else if (int e = SSL_get_error(client.get(), r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        failed = true;
    }
    if (!serverDone) {
      int r = SSL_do_handshake(server.get());
      if (r == 1)
        serverDone = true;
      else if (int e = SSL_get_error(server.get(), r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        failed = true;
    }
  }
  o.clientVerify = SSL_get_verify_result(client.get());
  o.serverVerify = SSL_get_verify_result(server.get());
  if (clientDone && serverDone && !failed) {
    // TLS 1.3: the server checks the client's certificate after the client
    // considers itself done, so only a round trip proves both accepted.
    const char msg[] = "hello over mTLS";
    EXPECT_EQ(SSL_write(client.get(), msg, sizeof msg - 1), static_cast<int>(sizeof msg - 1));
    char buf[64] = {};
    int n = SSL_read(server.get(), buf, sizeof buf);
    if (n > 0) {
      SSL_write(server.get(), buf, n);
      char back[64] = {};
      int m = SSL_read(client.get(), back, sizeof back);
      if (m > 0) o.echoed.assign(back, static_cast<std::size_t>(m));
    }
  }
  o.clientOk = clientDone && !failed;
  o.serverOk = serverDone && !failed;
  ERR_clear_error();
  if (clientOut) *clientOut = std::move(client);
  if (serverOut) *serverOut = std::move(server);
  return o;
}

class MtlsTest : public ::testing::Test {
 protected:
  CertificateAuthority ca = CertificateAuthority::generateDevelopment(kTd).value();
  std::shared_ptr<const PeerVerifier> verifier = PeerVerifier::create(ca.trustBundle(), std::string(kTd)).value();
  std::shared_ptr<const IssuedCertificate> clientCert = ca.issue(id("shop", "checkout")).value();
  std::shared_ptr<const IssuedCertificate> serverCert = ca.issue(id("billing", "api")).value();
};

TEST_F(MtlsTest, BothSidesPresentAndVerifySpiffeCertificates) {
  auto clientCtx = makeCtx(false, clientCert.get(), *verifier);
  auto serverCtx = makeCtx(true, serverCert.get(), *verifier);
  SslPtr client, server;
  Outcome o = handshake(clientCtx.get(), serverCtx.get(), &client, &server);
  ASSERT_TRUE(o.clientOk && o.serverOk) << X509_verify_cert_error_string(o.clientVerify) << " / "
                                        << X509_verify_cert_error_string(o.serverVerify);
  EXPECT_EQ(o.echoed, "hello over mTLS");
  EXPECT_STREQ(SSL_get_version(client.get()), "TLSv1.3");

  // Each side knows who the other is.
  EXPECT_EQ(peerIdentity(server.get()).value(), id("shop", "checkout"));
  EXPECT_EQ(peerIdentity(client.get()).value(), id("billing", "api"));
  EXPECT_EQ(verifier->verify(server.get()).value(), id("shop", "checkout"));
  EXPECT_EQ(verifier->verify(client.get()).value(), id("billing", "api"));
}

TEST_F(MtlsTest, PerConnectionCertificateOnASharedContext) {
  auto clientCtx = makeCtx(false, nullptr, *verifier);  // the identity is chosen per connection
  auto serverCtx = makeCtx(true, serverCert.get(), *verifier);
  SslPtr client, server;
  Outcome o = handshake(clientCtx.get(), serverCtx.get(), &client, &server, clientCert.get());
  ASSERT_TRUE(o.clientOk && o.serverOk);
  EXPECT_EQ(o.echoed, "hello over mTLS");
  EXPECT_EQ(peerIdentity(server.get()).value(), id("shop", "checkout"));
}

TEST_F(MtlsTest, ServerRejectsClientFromAnotherCa) {
  auto otherCa = CertificateAuthority::generateDevelopment(kTd).value();
  auto foreign = otherCa.issue(id("shop", "checkout")).value();
  auto clientCtx = makeCtx(false, foreign.get(), *verifier);
  auto serverCtx = makeCtx(true, serverCert.get(), *verifier);
  Outcome o = handshake(clientCtx.get(), serverCtx.get());
  EXPECT_FALSE(o.serverOk);
  EXPECT_TRUE(o.echoed.empty());
  EXPECT_EQ(o.serverVerify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_F(MtlsTest, ClientRejectsServerOfAnotherTrustDomain) {
  auto evil = ca.issue(SpiffeId::forWorkload("evil.example", "billing", "api").value()).value();
  auto clientCtx = makeCtx(false, clientCert.get(), *verifier);
  auto serverCtx = makeCtx(true, evil.get(), *verifier);
  Outcome o = handshake(clientCtx.get(), serverCtx.get());
  EXPECT_FALSE(o.clientOk);
  EXPECT_EQ(o.clientVerify, X509_V_ERR_APPLICATION_VERIFICATION);
}

TEST_F(MtlsTest, ServerRejectsClientWithoutCertificate) {
  auto clientCtx = makeCtx(false, nullptr, *verifier);
  auto serverCtx = makeCtx(true, serverCert.get(), *verifier);
  Outcome o = handshake(clientCtx.get(), serverCtx.get());
  EXPECT_FALSE(o.serverOk);
  EXPECT_TRUE(o.echoed.empty());
}

TEST_F(MtlsTest, ExpiredClientCertificateIsRefused) {
  TimePoint now = systemNow();
  auto oldCa = CertificateAuthority::generateDevelopment(kTd, now - 72h).value();
  auto expired = oldCa.issue(id("shop", "checkout"), now - 48h, 24h).value();
  auto v = PeerVerifier::create(oldCa.trustBundle(), std::string(kTd)).value();
  auto serverCert2 = oldCa.issue(id("billing", "api"), now).value();
  auto clientCtx = makeCtx(false, expired.get(), *v);
  auto serverCtx = makeCtx(true, serverCert2.get(), *v);
  Outcome o = handshake(clientCtx.get(), serverCtx.get());
  EXPECT_FALSE(o.serverOk);
  EXPECT_EQ(o.serverVerify, X509_V_ERR_CERT_HAS_EXPIRED);
}

}  // namespace
}  // namespace nodemesh::identity
