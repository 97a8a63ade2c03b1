// One workload certificate as minted by a CertificateAuthority: handed out
// as shared_ptr<const IssuedCertificate>, so a rotation swaps the pointer and
// never touches a certificate a connection (or an SSL_CTX) still uses.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "identity/clock.h"
#include "identity/openssl_ptr.h"
#include "identity/spiffe_id.h"

namespace nodemesh::identity {

struct IssuedCertificate {
  SpiffeId id;
  // The private key. It lives in memory only: this library has no function
  // that serializes a private key, and nothing here writes one to disk.
  EvpPkeyPtr key;
  X509Ptr cert;                // the leaf
  std::vector<X509Ptr> chain;  // sent after the leaf (intermediates; no self-signed root)
  TimePoint issuedAt;          // the clock's "now" at issuance
  TimePoint notBefore;         // issuedAt - 5 min (clock skew between nodes)
  TimePoint notAfter;

  // Leaf then chain, PEM (public material only; for logs, admin and tests).
  std::string certificateChainPem() const;
};

// Makes `ctx` present `issued`: certificate, chain and key, and checks that
// the key matches. The ctx takes its own references.
Status useCertificate(SSL_CTX* ctx, const IssuedCertificate& issued);
// The same for one connection (e.g. the HBONE client presenting the client
// workload's identity on a pooled SSL_CTX).
Status useCertificate(SSL* ssl, const IssuedCertificate& issued);

}  // namespace nodemesh::identity
