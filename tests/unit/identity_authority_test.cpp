// The CA, issuance and peer verification, with real OpenSSL objects. Certs
// the library must never produce (no SAN, two URIs, CA leaves, foreign CAs)
// are built here by hand.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "identity/certificate_authority.h"
#include "identity/peer_verifier.h"
#include "identity/x509_util.h"

namespace nodemesh::identity {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTd = "cluster.local";

SpiffeId workload(std::string_view ns = "shop", std::string_view sa = "checkout", std::string_view td = kTd) {
  return SpiffeId::forWorkload(td, ns, sa).value();
}

// ---- hand-built certificates -------------------------------------------------

struct KeyAndCert {
  EvpPkeyPtr key;
  X509Ptr cert;
};

struct Spec {
  std::string cn = "test";
  bool ca = false;
  bool basicConstraints = true;
  std::vector<std::string> uris = {};
  std::vector<std::string> dnsNames = {};
  TimePoint notBefore = systemNow() - 1h;
  TimePoint notAfter = systemNow() + 24h;
  const KeyAndCert* issuer = nullptr;  // self-signed when null
};

void addExt(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  ASSERT_TRUE(ext) << opensslErrors();
  ASSERT_EQ(X509_add_ext(x, ext.get(), -1), 1);
}

KeyAndCert makeCert(const Spec& s) {
  KeyAndCert out;
  out.key.reset(EVP_EC_gen("P-256"));
  out.cert.reset(X509_new());
  X509* x = out.cert.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(std::rand() % 1000000 + 1));
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1, 0);
  X509* issuerCert = s.issuer ? s.issuer->cert.get() : x;
  EVP_PKEY* issuerKey = s.issuer ? s.issuer->key.get() : out.key.get();
  X509_set_issuer_name(x, X509_get_subject_name(issuerCert));
  X509_set_pubkey(x, out.key.get());
  ASN1_TIME_set(X509_getm_notBefore(x), std::chrono::system_clock::to_time_t(s.notBefore));
  ASN1_TIME_set(X509_getm_notAfter(x), std::chrono::system_clock::to_time_t(s.notAfter));
  if (s.basicConstraints) addExt(x, issuerCert, NID_basic_constraints, s.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  addExt(x, issuerCert, NID_key_usage, s.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  addExt(x, issuerCert, NID_subject_key_identifier, "hash");
  if (s.issuer) addExt(x, issuerCert, NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& u : s.uris) san += (san.empty() ? "" : ",") + std::string("URI:") + u;
  for (const auto& d : s.dnsNames) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  if (!san.empty()) addExt(x, issuerCert, NID_subject_alt_name, san.c_str());
  EXPECT_GT(X509_sign(x, issuerKey, EVP_sha256()), 0) << opensslErrors();
  return out;
}

std::string certPem(X509* x) {
  return detail::certificatePem(x);
}

std::string keyPem(EVP_PKEY* k, const EVP_CIPHER* cipher = nullptr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  static char pass[] = "secret";
  PEM_write_bio_PrivateKey(bio.get(), k, cipher, reinterpret_cast<unsigned char*>(pass), cipher ? 6 : 0, nullptr,
                           nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "nm-identity-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

CertificateAuthority devCa(TimePoint now = systemNow()) {
  auto ca = CertificateAuthority::generateDevelopment(kTd, now);
  EXPECT_TRUE(ca) << ca.error().message;
  return std::move(ca).value();
}

std::vector<std::string> uriSans(X509* x) {
  std::vector<std::string> out;
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    if (gn->type != GEN_URI) {
      out.push_back("non-URI");
      continue;
    }
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier)),
                     ASN1_STRING_length(gn->d.uniformResourceIdentifier));
  }
  return out;
}

std::string groupName(EVP_PKEY* k) {
  char name[64] = {};
  size_t len = 0;
  EVP_PKEY_get_group_name(k, name, sizeof name, &len);
  return name;
}

// ---- development CA --------------------------------------------------------

TEST(DevelopmentCa, Properties) {
  TimePoint now = systemNow();
  auto ca = devCa(now);
  EXPECT_TRUE(ca.isDevelopment());
  X509* c = ca.certificate();
  EXPECT_EQ(X509_self_signed(c, 1), 1);  // and the signature verifies
  std::uint32_t flags = X509_get_extension_flags(c);
  EXPECT_TRUE(flags & EXFLAG_CA);
  EXPECT_EQ(X509_get_pathlen(c), 0);
  EXPECT_TRUE(X509_get_key_usage(c) & KU_KEY_CERT_SIGN);
  EXPECT_EQ(groupName(X509_get0_pubkey(c)), "prime256v1");
  EXPECT_NE(detail::subjectString(c).find("development CA"), std::string::npos) << detail::subjectString(c);
  EXPECT_EQ(uriSans(c), std::vector<std::string>{"spiffe://cluster.local"});
  auto lifetime = ca.notAfter() - ca.notBefore();
  EXPECT_GE(lifetime, std::chrono::hours(24 * 365));
  EXPECT_LE(ca.notBefore(), now - 4min);
  ASSERT_EQ(ca.trustBundle().certificates().size(), 1u);
  EXPECT_EQ(X509_cmp(ca.trustBundle().certificates()[0].get(), c), 0);

  EXPECT_FALSE(CertificateAuthority::generateDevelopment("Not Valid"));
  auto other = devCa();
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(c), X509_get0_serialNumber(other.certificate())), 0);
}

// ---- issuance --------------------------------------------------------------

TEST(Issue, LeafHasExactlyTheSpiffeSanAndWorkloadProfile) {
  auto ca = devCa();
  TimePoint now = systemNow();
  auto issued = ca.issue(workload(), now, 2h);
  ASSERT_TRUE(issued) << issued.error().message;
  const IssuedCertificate& leaf = **issued;
  X509* x = leaf.cert.get();

  EXPECT_EQ(leaf.id, workload());
  EXPECT_EQ(uriSans(x), std::vector<std::string>{"spiffe://cluster.local/ns/shop/sa/checkout"});
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(x)), 0);  // empty subject
  EXPECT_EQ(X509_get_version(x), X509_VERSION_3);
  int crit = 0;
  GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, &crit, nullptr)));
  EXPECT_EQ(crit, 1);  // critical: the subject is empty
  std::uint32_t flags = X509_get_extension_flags(x);
  EXPECT_TRUE(flags & EXFLAG_BCONS);
  EXPECT_FALSE(flags & EXFLAG_CA);
  EXPECT_EQ(X509_get_key_usage(x), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(x), static_cast<std::uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_NE(X509_get0_authority_key_id(x), nullptr);
  EXPECT_TRUE(leaf.chain.empty());  // the dev CA is the root

  // Fresh P-256 key that matches the certificate.
  EXPECT_EQ(groupName(leaf.key.get()), "prime256v1");
  EXPECT_EQ(X509_check_private_key(x, leaf.key.get()), 1);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(x), leaf.key.get()), 1);

  // Times: backdated 5 minutes, TTL as asked.
  auto secs = [](TimePoint t) { return std::chrono::time_point_cast<std::chrono::seconds>(t); };
  EXPECT_EQ(leaf.notBefore, secs(now - 5min));
  EXPECT_EQ(leaf.notAfter, secs(now + 2h));
  EXPECT_EQ(detail::fromAsn1Time(X509_get0_notBefore(x)).value(), leaf.notBefore);
  EXPECT_EQ(detail::fromAsn1Time(X509_get0_notAfter(x)).value(), leaf.notAfter);

  // Verifies against the CA even under X509_V_FLAG_X509_STRICT.
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), ca.trustBundle().store(), x, nullptr), 1);
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));

  // Another issuance: another key, another serial.
  auto again = ca.issue(workload(), now, 2h);
  ASSERT_TRUE(again);
  EXPECT_NE(EVP_PKEY_eq((*again)->key.get(), leaf.key.get()), 1);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber((*again)->cert.get())), 0);
  EXPECT_NE(leaf.certificateChainPem().find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(leaf.certificateChainPem().find("PRIVATE"), std::string::npos);
}

TEST(Issue, DefaultTtlIs24HoursAndClampsToCaExpiry) {
  TimePoint now = systemNow();
  auto ca = CertificateAuthority::generateDevelopment(kTd, now, 2h).value();
  auto leaf = ca.issue(workload(), now);  // default TTL (24 h) > the CA's remaining 2 h
  ASSERT_TRUE(leaf) << leaf.error().message;
  EXPECT_EQ((*leaf)->notAfter, ca.notAfter());
  auto ca2 = devCa(now);
  EXPECT_EQ(ca2.issue(workload(), now).value()->notAfter - std::chrono::time_point_cast<std::chrono::seconds>(now),
            24h);
}

TEST(Issue, RefusesBadRequests) {
  TimePoint now = systemNow();
  auto ca = CertificateAuthority::generateDevelopment(kTd, now, 2h).value();
  auto r = ca.issue(SpiffeId::parse("spiffe://cluster.local").value(), now);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("needs a path"), std::string::npos);
  EXPECT_FALSE(ca.issue(workload(), now, 0s));
  r = ca.issue(workload(), now + 3h);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("expired"), std::string::npos) << r.error().message;
  r = ca.issue(workload(), now - 1h);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not valid before"), std::string::npos) << r.error().message;
}

// ---- verification ----------------------------------------------------------

TEST(Verify, AcceptsOwnLeaf) {
  auto ca = devCa();
  auto leaf = ca.issue(workload()).value();
  VerifyFailure why = VerifyFailure::kChainInvalid;
  auto id = verifyPeerCertificate(leaf->cert.get(), nullptr, ca.trustBundle(), kTd, systemNow(), &why);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(*id, workload());
  EXPECT_EQ(why, VerifyFailure::kNone);
  auto verifier = PeerVerifier::create(ca.trustBundle(), std::string(kTd)).value();
  EXPECT_EQ(verifier->verify(leaf->cert.get(), nullptr).value(), workload());
}

void expectRejected(X509* leaf, STACK_OF(X509) * chain, const TrustBundle& bundle, VerifyFailure expected,
                    const std::string& inMessage, TimePoint now = systemNow()) {
  VerifyFailure why = VerifyFailure::kNone;
  auto id = verifyPeerCertificate(leaf, chain, bundle, kTd, now, &why);
  ASSERT_FALSE(id) << "accepted " << id->str();
  EXPECT_EQ(why, expected) << toString(why) << ": " << id.error().message;
  EXPECT_NE(id.error().message.find(inMessage), std::string::npos) << id.error().message;
  EXPECT_NE(id.error().message.find(toString(expected)), std::string::npos) << id.error().message;
}

TEST(Verify, RejectsLeafOfAnotherCa) {
  auto ours = devCa();
  auto theirs = devCa();  // same name, other key
  auto leaf = theirs.issue(workload()).value();
  expectRejected(leaf->cert.get(), nullptr, ours.trustBundle(), VerifyFailure::kUnknownCa, "issuer");
}

TEST(Verify, RejectsExpiredAndNotYetValidLeaves) {
  TimePoint now = systemNow();
  // Issued with a clock two days back, for one day.
  auto ca = devCa(now - 72h);
  auto old = ca.issue(workload(), now - 48h, 24h).value();
  expectRejected(old->cert.get(), nullptr, ca.trustBundle(), VerifyFailure::kExpired, "expired", now);
  // A short TTL checked after it ran out.
  auto shortLived = ca.issue(workload(), now, 60s).value();
  EXPECT_TRUE(verifyPeerCertificate(shortLived->cert.get(), nullptr, ca.trustBundle(), kTd, now + 30s));
  expectRejected(shortLived->cert.get(), nullptr, ca.trustBundle(), VerifyFailure::kExpired, "expired", now + 2min);
  // Before notBefore (now - 5 min), e.g. a peer whose clock is far behind.
  expectRejected(shortLived->cert.get(), nullptr, ca.trustBundle(), VerifyFailure::kNotYetValid, "not yet valid",
                 now - 10min);
  // Within the 5-minute skew allowance it is fine.
  EXPECT_TRUE(verifyPeerCertificate(shortLived->cert.get(), nullptr, ca.trustBundle(), kTd, now - 4min));
}

TEST(Verify, RejectsWrongTrustDomain) {
  auto ca = devCa();
  auto leaf = ca.issue(workload("shop", "checkout", "evil.example")).value();
  expectRejected(leaf->cert.get(), nullptr, ca.trustBundle(), VerifyFailure::kWrongTrustDomain, "evil.example");
}

TEST(Verify, RejectsCertificatesWithoutExactlyOneSpiffeUri) {
  KeyAndCert root = makeCert({.cn = "test root", .ca = true});
  auto bundle = TrustBundle::fromCertificates({root.cert.get()}).value();
  {
    auto good = makeCert({.uris = {"spiffe://cluster.local/ns/a/sa/b"}, .issuer = &root});
    EXPECT_TRUE(verifyPeerCertificate(good.cert.get(), nullptr, bundle, kTd, systemNow()));
  }
  auto noSan = makeCert({.cn = "no-san", .issuer = &root});
  expectRejected(noSan.cert.get(), nullptr, bundle, VerifyFailure::kNoSpiffeSan, "no subjectAltName");
  auto dnsOnly = makeCert({.dnsNames = {"a.example"}, .issuer = &root});
  expectRejected(dnsOnly.cert.get(), nullptr, bundle, VerifyFailure::kNoSpiffeSan, "no URI");
  auto two =
      makeCert({.uris = {"spiffe://cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns/a/sa/c"}, .issuer = &root});
  expectRejected(two.cert.get(), nullptr, bundle, VerifyFailure::kMultipleUriSans, "2 URI SANs");
  auto notSpiffe = makeCert({.uris = {"https://cluster.local/ns/a/sa/b"}, .issuer = &root});
  expectRejected(notSpiffe.cert.get(), nullptr, bundle, VerifyFailure::kInvalidSpiffeId, "spiffe");
  auto tdOnly = makeCert({.uris = {"spiffe://cluster.local"}, .issuer = &root});
  expectRejected(tdOnly.cert.get(), nullptr, bundle, VerifyFailure::kInvalidSpiffeId, "trust domain");
  // A DNS SAN next to the one URI is allowed (SPIFFE X509-SVID).
  auto mixed = makeCert({.uris = {"spiffe://cluster.local/ns/a/sa/b"}, .dnsNames = {"x"}, .issuer = &root});
  EXPECT_TRUE(verifyPeerCertificate(mixed.cert.get(), nullptr, bundle, kTd, systemNow()));
  // A CA certificate is not a workload certificate, even with a SPIFFE ID.
  auto caLeaf = makeCert({.ca = true, .uris = {"spiffe://cluster.local/ns/a/sa/b"}, .issuer = &root});
  expectRejected(caLeaf.cert.get(), nullptr, bundle, VerifyFailure::kNotWorkloadCert, "CA certificate");
  // Self-signed with the right SAN: unknown CA.
  auto self = makeCert({.uris = {"spiffe://cluster.local/ns/a/sa/b"}});
  expectRejected(self.cert.get(), nullptr, bundle, VerifyFailure::kUnknownCa, "self-signed");
  expectRejected(nullptr, nullptr, bundle, VerifyFailure::kNoCertificate, "no certificate");
}

// ---- loading a CA from files --------------------------------------------------

TEST(LoadCa, GoodRootCa) {
  TempDir dir;
  auto root = makeCert({.cn = "Example Root", .ca = true});
  auto ca = CertificateAuthority::loadFromFiles(dir.write("ca.crt", certPem(root.cert.get())),
                                                dir.write("ca.key", keyPem(root.key.get())));
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_FALSE(ca->isDevelopment());
  auto leaf = ca->issue(workload());
  ASSERT_TRUE(leaf) << leaf.error().message;
  EXPECT_TRUE((*leaf)->chain.empty());
  // Peers holding only the root certificate accept it.
  auto bundle = TrustBundle::fromCertificates({root.cert.get()}).value();
  EXPECT_EQ(verifyPeerCertificate((*leaf)->cert.get(), nullptr, bundle, kTd, systemNow()).value(), workload());
}

TEST(LoadCa, IntermediateWithChainSendsTheChain) {
  TempDir dir;
  auto root = makeCert({.cn = "Example Root", .ca = true});
  auto inter = makeCert({.cn = "Example Intermediate", .ca = true, .issuer = &root});
  auto ca =
      CertificateAuthority::loadFromFiles(dir.write("ca.crt", certPem(inter.cert.get()) + certPem(root.cert.get())),
                                          dir.write("ca.key", keyPem(inter.key.get())));
  ASSERT_TRUE(ca) << ca.error().message;
  auto leaf = ca->issue(workload()).value();
  ASSERT_EQ(leaf->chain.size(), 1u);
  EXPECT_EQ(X509_cmp(leaf->chain[0].get(), inter.cert.get()), 0);
  ASSERT_EQ(ca->trustBundle().certificates().size(), 1u);
  EXPECT_EQ(X509_cmp(ca->trustBundle().certificates()[0].get(), root.cert.get()), 0);

  X509BorrowedStackPtr chain(sk_X509_new_null());
  sk_X509_push(chain.get(), leaf->chain[0].get());
  EXPECT_TRUE(verifyPeerCertificate(leaf->cert.get(), chain.get(), ca->trustBundle(), kTd, systemNow()));
  // Without the intermediate the root alone cannot vouch for the leaf.
  expectRejected(leaf->cert.get(), nullptr, ca->trustBundle(), VerifyFailure::kUnknownCa, "issuer");
}

struct LoadCase {
  const char* name;
  std::string cert;
  std::string key;
  std::string expect;  // substring of the error
};

TEST(LoadCa, RejectsBadFilesNamingFileAndFault) {
  TempDir dir;
  auto root = makeCert({.cn = "Root", .ca = true});
  auto other = makeCert({.cn = "Other", .ca = true});
  auto notCa = makeCert({.cn = "Not a CA", .ca = false});
  auto noBc = makeCert({.cn = "No basicConstraints", .basicConstraints = false});
  auto expired = makeCert({.cn = "Old", .ca = true, .notBefore = systemNow() - 48h, .notAfter = systemNow() - 24h});
  auto inter = makeCert({.cn = "Inter", .ca = true, .issuer = &root});
  std::string rootPem = certPem(root.cert.get());
  std::string rootKey = keyPem(root.key.get());
  const LoadCase cases[] = {
      {"mismatch", rootPem, keyPem(other.key.get()), "does not match the certificate in"},
      {"notca", certPem(notCa.cert.get()), keyPem(notCa.key.get()), "is not a CA certificate"},
      {"nobc", certPem(noBc.cert.get()), keyPem(noBc.key.get()), "basicConstraints CA:TRUE is missing"},
      {"expired", certPem(expired.cert.get()), keyPem(expired.key.get()), "expired at"},
      {"garbagecert", "this is not PEM\n", rootKey, "no PEM certificate found"},
      {"truncatedcert", rootPem.substr(0, rootPem.size() / 2), rootKey, "not a valid PEM X.509 certificate"},
      {"garbagekey", rootPem, "garbage\n", "no PEM private key found"},
      {"swapped", rootKey, rootPem, "no PEM certificate found"},
      {"keyiscert", rootPem, rootPem, "holds a certificate, not a private key"},
      {"encrypted", rootPem, keyPem(root.key.get(), EVP_aes_256_cbc()), "encrypted"},
      {"brokenchain", certPem(inter.cert.get()) + certPem(other.cert.get()), keyPem(inter.key.get()),
       "do not form a valid chain"},
  };
  for (const auto& c : cases) {
    std::string certPath = dir.write(std::string(c.name) + ".crt", c.cert);
    std::string keyPath = dir.write(std::string(c.name) + ".key", c.key);
    auto ca = CertificateAuthority::loadFromFiles(certPath, keyPath);
    ASSERT_FALSE(ca) << c.name;
    const std::string& m = ca.error().message;
    EXPECT_NE(m.find(c.expect), std::string::npos) << c.name << ": " << m;
    EXPECT_TRUE(m.find(certPath) != std::string::npos || m.find(keyPath) != std::string::npos) << c.name << ": " << m;
  }
  auto missing = CertificateAuthority::loadFromFiles("/nonexistent/ca.crt", "/nonexistent/ca.key");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find("/nonexistent/ca.crt"), std::string::npos) << missing.error().message;
  // Loading at a time before the CA's notBefore.
  auto early =
      CertificateAuthority::loadFromFiles(dir.write("e.crt", rootPem), dir.write("e.key", rootKey), systemNow() - 48h);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message.find("is not valid before"), std::string::npos) << early.error().message;
  // The OpenSSL error queue is left clean.
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TrustBundle, LoadsPemFileAndCopiesShareTheStore) {
  TempDir dir;
  auto a = makeCert({.cn = "A", .ca = true});
  auto b = makeCert({.cn = "B", .ca = true});
  auto bundle = TrustBundle::loadPemFile(dir.write("bundle.pem", certPem(a.cert.get()) + certPem(b.cert.get())));
  ASSERT_TRUE(bundle) << bundle.error().message;
  EXPECT_EQ(bundle->certificates().size(), 2u);
  TrustBundle copy = *bundle;
  EXPECT_EQ(copy.store(), bundle->store());
  auto leaf = makeCert({.uris = {"spiffe://cluster.local/ns/x/sa/y"}, .issuer = &b});
  EXPECT_TRUE(verifyPeerCertificate(leaf.cert.get(), nullptr, copy, kTd, systemNow()));
  EXPECT_FALSE(TrustBundle::loadPemFile(dir.write("empty.pem", "")));
}

}  // namespace
}  // namespace nodemesh::identity
