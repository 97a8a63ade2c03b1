#include "identity/peer_verifier.h"

#include <openssl/err.h>

#include <cstring>

#include "identity/x509_util.h"

namespace nodemesh::identity {
namespace {

Error fail(VerifyFailure* out, VerifyFailure why, std::string message) {
  if (out != nullptr) *out = why;
  return Error{"peer certificate rejected (" + std::string(toString(why)) + "): " + std::move(message)};
}

VerifyFailure classify(int x509Error) {
  switch (x509Error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return VerifyFailure::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return VerifyFailure::kNotYetValid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return VerifyFailure::kUnknownCa;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return VerifyFailure::kBadSignature;
    default:
      return VerifyFailure::kChainInvalid;
  }
}

std::string issuerString(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

const char* toString(VerifyFailure f) {
  switch (f) {
    case VerifyFailure::kNone:
      return "none";
    case VerifyFailure::kNoCertificate:
      return "no_certificate";
    case VerifyFailure::kExpired:
      return "expired";
    case VerifyFailure::kNotYetValid:
      return "not_yet_valid";
    case VerifyFailure::kUnknownCa:
      return "unknown_ca";
    case VerifyFailure::kBadSignature:
      return "bad_signature";
    case VerifyFailure::kChainInvalid:
      return "chain_invalid";
    case VerifyFailure::kNotWorkloadCert:
      return "not_workload_certificate";
    case VerifyFailure::kNoSpiffeSan:
      return "no_spiffe_san";
    case VerifyFailure::kMultipleUriSans:
      return "multiple_uri_sans";
    case VerifyFailure::kInvalidSpiffeId:
      return "invalid_spiffe_id";
    case VerifyFailure::kWrongTrustDomain:
      return "wrong_trust_domain";
  }
  return "unknown";
}

Result<SpiffeId> spiffeIdOf(X509* cert, VerifyFailure* failure) {
  if (cert == nullptr) return fail(failure, VerifyFailure::kNoCertificate, "no certificate presented");
  int critical = -1;
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (!sans) {
    ERR_clear_error();
    if (critical == -2) return fail(failure, VerifyFailure::kMultipleUriSans, "more than one subjectAltName extension");
    return fail(failure, VerifyFailure::kNoSpiffeSan,
                "no subjectAltName extension (subject " + detail::subjectString(cert) + ")");
  }
  const ASN1_IA5STRING* uri = nullptr;
  int uris = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    if (gn->type != GEN_URI) continue;
    ++uris;
    uri = gn->d.uniformResourceIdentifier;
  }
  if (uris == 0) return fail(failure, VerifyFailure::kNoSpiffeSan, "subjectAltName has no URI (no SPIFFE ID)");
  if (uris > 1) {
    return fail(failure, VerifyFailure::kMultipleUriSans,
                std::to_string(uris) + " URI SANs; a SPIFFE certificate has exactly one");
  }
  std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                        static_cast<std::size_t>(ASN1_STRING_length(uri)));
  if (text.find('\0') != std::string_view::npos) {
    return fail(failure, VerifyFailure::kInvalidSpiffeId, "URI SAN contains a NUL byte");
  }
  auto id = SpiffeId::parse(text);
  if (!id) return fail(failure, VerifyFailure::kInvalidSpiffeId, id.error().message);
  if (id->isTrustDomainId()) {
    return fail(failure, VerifyFailure::kInvalidSpiffeId, id->str() + " names a trust domain, not a workload");
  }
  return id;
}

Result<SpiffeId> verifyPeerCertificate(X509* leaf, STACK_OF(X509) * untrusted, const TrustBundle& bundle,
                                       std::string_view trustDomain, TimePoint now, VerifyFailure* failure) {
  if (failure != nullptr) *failure = VerifyFailure::kNone;
  if (leaf == nullptr) return fail(failure, VerifyFailure::kNoCertificate, "no certificate presented");
  ERR_clear_error();
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), bundle.store(), leaf, untrusted) != 1) {
    return fail(failure, VerifyFailure::kChainInvalid, "cannot set up verification: " + opensslErrors());
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string where = depth == 0 ? "the leaf" : "chain certificate " + std::to_string(depth);
    std::string msg = std::string(X509_verify_cert_error_string(err)) + " at " + where;
    if (bad != nullptr && (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID)) {
      auto nb = detail::fromAsn1Time(X509_get0_notBefore(bad));
      auto na = detail::fromAsn1Time(X509_get0_notAfter(bad));
      if (nb && na) msg += " (valid " + formatUtc(*nb) + " to " + formatUtc(*na) + ", now " + formatUtc(now) + ")";
    } else if (bad != nullptr && classify(err) == VerifyFailure::kUnknownCa) {
      msg += " (issuer \"" + issuerString(bad) + "\": no matching CA in the trust bundle)";
    } else if (bad != nullptr && depth > 0) {
      msg += " (" + detail::subjectString(bad) + ")";
    }
    ERR_clear_error();
    return fail(failure, classify(err), msg);
  }
  std::uint32_t flags = X509_get_extension_flags(leaf);
  if ((flags & EXFLAG_CA) != 0 ||
      ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(leaf) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != 0)) {
    return fail(failure, VerifyFailure::kNotWorkloadCert, "the leaf is a CA certificate, not a workload certificate");
  }
  auto id = spiffeIdOf(leaf, failure);
  if (!id) return id.error();
  if (id->trustDomain() != trustDomain) {
    return fail(failure, VerifyFailure::kWrongTrustDomain,
                id->str() + " is in trust domain \"" + std::string(id->trustDomain()) + "\", expected \"" +
                    std::string(trustDomain) + "\"");
  }
  return id;
}

Result<std::shared_ptr<const PeerVerifier>> PeerVerifier::create(TrustBundle bundle, std::string trustDomain,
                                                                 Clock clock) {
  if (auto st = checkTrustDomain(trustDomain); !st) return st.error().wrap("peer verifier");
  if (!clock) return Error{"peer verifier: no clock"};
  return std::shared_ptr<const PeerVerifier>(
      new PeerVerifier(std::move(bundle), std::move(trustDomain), std::move(clock)));
}

Result<SpiffeId> PeerVerifier::verify(X509* leaf, STACK_OF(X509) * untrusted, VerifyFailure* failure) const {
  return verifyPeerCertificate(leaf, untrusted, bundle_, trustDomain_, clock_(), failure);
}

Result<SpiffeId> PeerVerifier::verify(const SSL* ssl, VerifyFailure* failure) const {
  // On the client side the peer chain includes the leaf; on the server side
  // it does not. Either way it is only a source of intermediates.
  return verify(SSL_get0_peer_certificate(ssl), SSL_get_peer_cert_chain(ssl), failure);
}

int PeerVerifier::verifyCallback(X509_STORE_CTX* ctx, void* arg) {
  const auto* self = static_cast<const PeerVerifier*>(arg);
  VerifyFailure why = VerifyFailure::kNone;
  auto id = self->verify(X509_STORE_CTX_get0_cert(ctx), X509_STORE_CTX_get0_untrusted(ctx), &why);
  if (id) {
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
  }
  int code = X509_V_ERR_APPLICATION_VERIFICATION;
  switch (why) {
    case VerifyFailure::kExpired:
      code = X509_V_ERR_CERT_HAS_EXPIRED;
      break;
    case VerifyFailure::kNotYetValid:
      code = X509_V_ERR_CERT_NOT_YET_VALID;
      break;
    case VerifyFailure::kUnknownCa:
      code = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
      break;
    case VerifyFailure::kBadSignature:
      code = X509_V_ERR_CERT_SIGNATURE_FAILURE;
      break;
    case VerifyFailure::kChainInvalid:
      code = X509_V_ERR_CERT_REJECTED;
      break;
    default:
      break;
  }
  X509_STORE_CTX_set_error(ctx, code);
  return 0;
}

void PeerVerifier::attachTo(SSL_CTX* ctx) const {
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, &PeerVerifier::verifyCallback, const_cast<PeerVerifier*>(this));
}

Result<SpiffeId> peerIdentity(const SSL* ssl) {
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    return Error{std::string("peer not verified: ") + X509_verify_cert_error_string(SSL_get_verify_result(ssl))};
  }
  return spiffeIdOf(SSL_get0_peer_certificate(ssl));
}

}  // namespace nodemesh::identity
