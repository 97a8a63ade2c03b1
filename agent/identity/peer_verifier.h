// What the receiving proxy does with a presented certificate chain: verify
// it against the trust bundle, then take the peer's identity from its single
// URI SAN and check the trust domain. Failures carry a reason for counters.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "identity/clock.h"
#include "identity/openssl_ptr.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace nodemesh::identity {

enum class VerifyFailure {
  kNone,
  kNoCertificate,     // the peer presented none
  kExpired,           // a certificate in the chain is past notAfter
  kNotYetValid,       // ... or before notBefore
  kUnknownCa,         // the chain does not lead to the trust bundle
  kBadSignature,      // a signature in the chain does not verify
  kChainInvalid,      // any other chain fault (extensions, depth, purpose)
  kNotWorkloadCert,   // the leaf is a CA / may sign certificates
  kNoSpiffeSan,       // no URI SAN
  kMultipleUriSans,   // more than one URI SAN (SPIFFE allows exactly one)
  kInvalidSpiffeId,   // the URI SAN is not a valid workload SPIFFE ID
  kWrongTrustDomain,  // valid SPIFFE ID of another trust domain
};
// Stable snake_case name, for metric labels and logs.
const char* toString(VerifyFailure f);

// The SPIFFE ID in `cert`'s single URI SAN (no chain verification).
Result<SpiffeId> spiffeIdOf(X509* cert, VerifyFailure* failure = nullptr);

// Verifies `leaf` (with `untrusted` intermediates, may be null) against
// `bundle` at time `now`, then its SPIFFE ID and trust domain.
Result<SpiffeId> verifyPeerCertificate(X509* leaf, STACK_OF(X509) * untrusted, const TrustBundle& bundle,
                                       std::string_view trustDomain, TimePoint now, VerifyFailure* failure = nullptr);

class PeerVerifier {
 public:
  static Result<std::shared_ptr<const PeerVerifier>> create(TrustBundle bundle, std::string trustDomain,
                                                            Clock clock = systemNow);

  Result<SpiffeId> verify(X509* leaf, STACK_OF(X509) * untrusted, VerifyFailure* failure = nullptr) const;
  // Re-verifies the peer of a handshaken connection (client or server side).
  Result<SpiffeId> verify(const SSL* ssl, VerifyFailure* failure = nullptr) const;

  // Makes every handshake on `ctx` require a peer certificate (both client
  // and server side) and verify it with this verifier instead of OpenSSL's
  // default path check. A rejected peer fails the handshake; the reason is in
  // SSL_get_verify_result() (X509_V_ERR_APPLICATION_VERIFICATION for SPIFFE
  // faults). This verifier must outlive `ctx`.
  void attachTo(SSL_CTX* ctx) const;

  const TrustBundle& bundle() const { return bundle_; }
  const std::string& trustDomain() const { return trustDomain_; }

 private:
  PeerVerifier(TrustBundle bundle, std::string trustDomain, Clock clock)
      : bundle_(std::move(bundle)), trustDomain_(std::move(trustDomain)), clock_(std::move(clock)) {}
  static int verifyCallback(X509_STORE_CTX* ctx, void* arg);

  TrustBundle bundle_;
  std::string trustDomain_;
  Clock clock_;
};

// The SPIFFE ID of the peer of a connection whose handshake succeeded with a
// PeerVerifier attached (reads the leaf's SAN; no re-verification).
Result<SpiffeId> peerIdentity(const SSL* ssl);

}  // namespace nodemesh::identity
