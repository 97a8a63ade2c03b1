#include "identity/certificate_authority.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstring>

#include "identity/x509_util.h"

namespace nodemesh::identity {
namespace {

constexpr std::size_t kMaxPemFile = 1 << 20;

// PEM password callback: nodemesh takes unencrypted keys only, never prompts.
int noPassphrase(char*, int, int, void*) {
  return -1;
}

Result<EvpPkeyPtr> generateP256() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Error{"generating an ECDSA P-256 key: " + opensslErrors()};
  return key;
}

Result<EvpPkeyPtr> parseKey(std::string& pem, const std::string& path) {
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr) : nullptr);
  bool encrypted = pem.find("ENCRYPTED") != std::string::npos;
  bool hasKeyBlock = pem.find("PRIVATE KEY-----") != std::string::npos;
  bool hasCertBlock = pem.find("BEGIN CERTIFICATE") != std::string::npos;
  OPENSSL_cleanse(pem.data(), pem.size());
  if (key) return key;
  std::string detail = opensslErrors();
  if (encrypted) {
    return Error{"CA key " + path +
                 ": the key is encrypted; nodemesh needs an unencrypted PEM key (protect the file "
                 "with permissions instead)"};
  }
  if (!hasKeyBlock && hasCertBlock) {
    return Error{"CA key " + path + ": holds a certificate, not a private key (are the cert and key files swapped?)"};
  }
  if (!hasKeyBlock) {
    return Error{"CA key " + path + ": no PEM private key found (expected a \"-----BEGIN PRIVATE KEY-----\" block)"};
  }
  return Error{"CA key " + path + ": not a valid PEM private key: " + detail};
}

}  // namespace

CertificateAuthority::CertificateAuthority(X509Ptr cert, EvpPkeyPtr key, std::vector<X509Ptr> chain, TrustBundle bundle,
                                           bool dev, std::string source, TimePoint notBefore, TimePoint notAfter)
    : cert_(std::move(cert)),
      key_(std::move(key)),
      chain_(std::move(chain)),
      bundle_(std::move(bundle)),
      development_(dev),
      source_(std::move(source)),
      notBefore_(notBefore),
      notAfter_(notAfter) {}

Result<CertificateAuthority> CertificateAuthority::loadFromFiles(const std::string& certPath,
                                                                 const std::string& keyPath, TimePoint now) {
  auto certText = detail::readSmallFile(certPath, kMaxPemFile);
  if (!certText) return certText.error().wrap("CA certificate");
  auto certs = detail::parseCertificates(*certText, "CA certificate " + certPath);
  if (!certs) return certs.error();
  X509* ca = certs->front().get();
  const std::string what = "CA certificate " + certPath;

  ERR_clear_error();
  std::uint32_t flags = X509_get_extension_flags(ca);
  if ((flags & EXFLAG_INVALID) != 0) return Error{what + ": has malformed extensions: " + opensslErrors()};
  if ((flags & EXFLAG_CA) == 0 || (flags & EXFLAG_BCONS) == 0) {
    return Error{what + ": is not a CA certificate (basicConstraints CA:TRUE is missing); subject " +
                 detail::subjectString(ca)};
  }
  if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(ca) & KU_KEY_CERT_SIGN) == 0) {
    return Error{what + ": keyUsage does not allow keyCertSign, so it cannot sign certificates"};
  }
  auto nb = detail::fromAsn1Time(X509_get0_notBefore(ca));
  auto na = detail::fromAsn1Time(X509_get0_notAfter(ca));
  if (!nb || !na) return Error{what + ": unreadable validity period"};
  if (now < *nb) return Error{what + ": is not valid before " + formatUtc(*nb) + " (now " + formatUtc(now) + ")"};
  if (now >= *na) return Error{what + ": expired at " + formatUtc(*na) + " (now " + formatUtc(now) + ")"};

  auto keyText = detail::readSmallFile(keyPath, kMaxPemFile);
  if (!keyText) return keyText.error().wrap("CA key");
  auto key = parseKey(*keyText, keyPath);
  if (!key) return key.error();
  if (EVP_PKEY_eq(X509_get0_pubkey(ca), key->get()) != 1) {
    ERR_clear_error();
    return Error{"CA key " + keyPath + ": does not match the certificate in " + certPath};
  }

  // The certificates after the first are its chain. What is not self-signed
  // is sent with every leaf; the last one is the trust anchor peers need.
  std::vector<X509Ptr> chain;
  for (auto& c : *certs) {
    if (X509_self_signed(c.get(), 0) != 1) chain.push_back(shareX509(c.get()));
  }
  ERR_clear_error();
  auto bundle = TrustBundle::fromCertificates({certs->back().get()});
  if (!bundle) return bundle.error().wrap(what);

  // The file's chain must lead from the CA to its anchor.
  X509BorrowedStackPtr untrusted(sk_X509_new_null());
  if (!untrusted) return Error{what + ": " + opensslErrors()};
  for (auto& c : *certs) sk_X509_push(untrusted.get(), c.get());
  X509StoreCtxPtr vctx(X509_STORE_CTX_new());
  bool verified = false;
  std::string why;
  if (vctx && X509_STORE_CTX_init(vctx.get(), bundle->store(), ca, untrusted.get()) == 1) {
    X509_STORE_CTX_set_flags(vctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_time(vctx.get(), 0, std::chrono::system_clock::to_time_t(now));
    verified = X509_verify_cert(vctx.get()) == 1;
    if (!verified) why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx.get()));
  } else {
    why = opensslErrors();
  }
  ERR_clear_error();
  if (!verified) return Error{what + ": the certificates in the file do not form a valid chain: " + why};

  return CertificateAuthority(std::move(certs->front()), std::move(key).value(), std::move(chain),
                              std::move(bundle).value(), false, certPath, *nb, *na);
}

Result<CertificateAuthority> CertificateAuthority::generateDevelopment(std::string_view trustDomain, TimePoint now,
                                                                       std::chrono::seconds validity) {
  const std::string what = "generating the development CA";
  if (auto st = checkTrustDomain(trustDomain); !st) return st.error().wrap(what);
  if (validity < std::chrono::hours(1)) return Error{what + ": validity must be at least 1 hour"};
  ERR_clear_error();
  auto key = generateP256();
  if (!key) return key.error().wrap(what);
  X509Ptr x(X509_new());
  if (!x) return Error{what + ": " + opensslErrors()};
  auto serial = detail::randomSerial();
  if (!serial) return serial.error().wrap(what);

  X509_NAME* name = X509_get_subject_name(x.get());
  auto addName = [&](const char* field, const char* value) {
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value), -1, -1,
                                      0) == 1;
  };
  TimePoint notBefore = std::chrono::time_point_cast<std::chrono::seconds>(now - kClockSkewAllowance);
  TimePoint notAfter = std::chrono::time_point_cast<std::chrono::seconds>(now + validity);
  if (X509_set_version(x.get(), X509_VERSION_3) != 1 || X509_set_serialNumber(x.get(), serial->get()) != 1 ||
      !addName("O", "nodemesh") || !addName("CN", kDevCaCommonName) || X509_set_issuer_name(x.get(), name) != 1 ||
      X509_set_pubkey(x.get(), key->get()) != 1) {
    return Error{what + ": " + opensslErrors()};
  }
  if (auto st = detail::setAsn1Time(X509_getm_notBefore(x.get()), notBefore); !st) return st.error().wrap(what);
  if (auto st = detail::setAsn1Time(X509_getm_notAfter(x.get()), notAfter); !st) return st.error().wrap(what);

  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"}, std::pair{NID_subject_key_identifier, "hash"}}) {
    if (auto st = detail::addExtension(x.get(), &v3, nid, value); !st) return st.error().wrap(what);
  }
  // SPIFFE: a signing certificate may carry its trust domain's ID as URI SAN.
  std::string tdUri = "spiffe://" + std::string(trustDomain);
  GeneralNamesPtr sans(GENERAL_NAMES_new());
  GeneralNamePtr uri(GENERAL_NAME_new());
  Asn1StringPtr ia5(ASN1_IA5STRING_new());
  if (!sans || !uri || !ia5 || ASN1_STRING_set(ia5.get(), tdUri.data(), static_cast<int>(tdUri.size())) != 1) {
    return Error{what + ": " + opensslErrors()};
  }
  GENERAL_NAME_set0_value(uri.get(), GEN_URI, ia5.release());
  if (sk_GENERAL_NAME_push(sans.get(), uri.get()) <= 0) return Error{what + ": " + opensslErrors()};
  uri.release();  // owned by sans now
  if (X509_add1_ext_i2d(x.get(), NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      X509_sign(x.get(), key->get(), EVP_sha256()) <= 0) {
    return Error{what + ": " + opensslErrors()};
  }
  auto cert = detail::reparse(x.get());
  if (!cert) return cert.error().wrap(what);
  auto bundle = TrustBundle::fromCertificates({cert->get()});
  if (!bundle) return bundle.error().wrap(what);
  return CertificateAuthority(std::move(cert).value(), std::move(key).value(), {}, std::move(bundle).value(), true,
                              "generated in memory", notBefore, notAfter);
}

Result<std::shared_ptr<const IssuedCertificate>> CertificateAuthority::issue(const SpiffeId& id, TimePoint now,
                                                                             std::chrono::seconds ttl) const {
  const std::string what = "issuing a certificate for " + id.str();
  if (id.isTrustDomainId()) return Error{what + ": a workload SPIFFE ID needs a path"};
  if (ttl < std::chrono::seconds(1)) return Error{what + ": TTL must be at least 1 second"};
  if (now >= notAfter_) return Error{what + ": the CA (" + source_ + ") expired at " + formatUtc(notAfter_)};
  if (now < notBefore_) return Error{what + ": the CA (" + source_ + ") is not valid before " + formatUtc(notBefore_)};

  ERR_clear_error();
  auto issued = std::make_shared<IssuedCertificate>(IssuedCertificate{id, {}, {}, {}, {}, {}, {}});
  auto key = generateP256();
  if (!key) return key.error().wrap(what);
  issued->key = std::move(key).value();
  issued->issuedAt = now;
  issued->notBefore = std::chrono::time_point_cast<std::chrono::seconds>(now - kClockSkewAllowance);
  issued->notAfter = std::min<TimePoint>(std::chrono::time_point_cast<std::chrono::seconds>(now + ttl), notAfter_);

  X509Ptr x(X509_new());
  auto serial = detail::randomSerial();
  if (!serial) return serial.error().wrap(what);
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1 || X509_set_serialNumber(x.get(), serial->get()) != 1 ||
      X509_set_issuer_name(x.get(), X509_get_subject_name(cert_.get())) != 1 ||
      X509_set_pubkey(x.get(), issued->key.get()) != 1) {
    return Error{what + ": " + opensslErrors()};
  }
  // The subject stays empty: the identity is the URI SAN, marked critical as
  // RFC 5280 requires for a certificate with an empty subject.
  if (auto st = detail::setAsn1Time(X509_getm_notBefore(x.get()), issued->notBefore); !st) {
    return st.error().wrap(what);
  }
  if (auto st = detail::setAsn1Time(X509_getm_notAfter(x.get()), issued->notAfter); !st) {
    return st.error().wrap(what);
  }
  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, cert_.get(), x.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, const char*>> exts = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                   {NID_key_usage, "critical,digitalSignature"},
                                                   {NID_ext_key_usage, "serverAuth,clientAuth"},
                                                   {NID_subject_key_identifier, "hash"}};
  if (X509_get0_subject_key_id(cert_.get()) != nullptr) exts.emplace_back(NID_authority_key_identifier, "keyid:always");
  for (auto [nid, value] : exts) {
    if (auto st = detail::addExtension(x.get(), &v3, nid, value); !st) return st.error().wrap(what);
  }
  GeneralNamesPtr sans(GENERAL_NAMES_new());
  GeneralNamePtr uri(GENERAL_NAME_new());
  Asn1StringPtr ia5(ASN1_IA5STRING_new());
  if (!sans || !uri || !ia5 || ASN1_STRING_set(ia5.get(), id.str().data(), static_cast<int>(id.str().size())) != 1) {
    return Error{what + ": " + opensslErrors()};
  }
  GENERAL_NAME_set0_value(uri.get(), GEN_URI, ia5.release());
  if (sk_GENERAL_NAME_push(sans.get(), uri.get()) <= 0) return Error{what + ": " + opensslErrors()};
  uri.release();
  if (X509_add1_ext_i2d(x.get(), NID_subject_alt_name, sans.get(), 1, X509V3_ADD_DEFAULT) != 1) {
    return Error{what + ": " + opensslErrors()};
  }
  if (X509_sign(x.get(), key_.get(), detail::signingDigest(key_.get())) <= 0) {
    return Error{what + ": signing: " + opensslErrors()};
  }
  auto cert = detail::reparse(x.get());
  if (!cert) return cert.error().wrap(what);
  issued->cert = std::move(cert).value();
  for (const auto& c : chain_) issued->chain.push_back(shareX509(c.get()));
  return std::shared_ptr<const IssuedCertificate>(std::move(issued));
}

}  // namespace nodemesh::identity
