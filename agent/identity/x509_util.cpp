#include "identity/x509_util.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "common/unique_fd.h"

namespace nodemesh::identity {

std::string opensslErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  unsigned long e;
  while ((e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    if (!out.empty()) out += "; ";
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    if (lib != nullptr) out += std::string(lib) + ": ";
    out += reason != nullptr ? std::string(reason) : "error " + std::to_string(ERR_GET_REASON(e));
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') out += " (" + std::string(data) + ")";
  }
  return out.empty() ? "no OpenSSL detail" : out;
}

std::string formatUtc(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace detail {

Result<TimePoint> fromAsn1Time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return Error{"unreadable certificate time: " + opensslErrors()};
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Status setAsn1Time(ASN1_TIME* out, TimePoint t) {
  // ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280 asks.
  if (ASN1_TIME_set(out, std::chrono::system_clock::to_time_t(t)) == nullptr) {
    return Error{"setting certificate time " + formatUtc(t) + ": " + opensslErrors()};
  }
  return {};
}

Result<std::string> readSmallFile(const std::string& path, std::size_t maxBytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Error::sys("opening " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::sys("stat " + path);
  if (!S_ISREG(st.st_mode)) return Error{path + ": not a regular file"};
  if (static_cast<std::size_t>(st.st_size) > maxBytes) {
    return Error{path + ": too large (" + std::to_string(st.st_size) + " bytes, at most " + std::to_string(maxBytes) +
                 " expected for PEM)"};
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("reading " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > maxBytes) return Error{path + ": too large for PEM"};
  }
  OPENSSL_cleanse(buf, sizeof buf);  // may have held key bytes
  return out;
}

Result<std::vector<X509Ptr>> parseCertificates(std::string_view pem, const std::string& what) {
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Error{what + ": " + opensslErrors()};
  std::vector<X509Ptr> certs;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();  // the normal end of input
        break;
      }
      return Error{what + ": certificate " + std::to_string(certs.size() + 1) +
                   " is not a valid PEM X.509 certificate: " + opensslErrors()};
    }
    certs.push_back(std::move(cert));
  }
  if (certs.empty()) {
    return Error{what + ": no PEM certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)"};
  }
  return certs;
}

std::string certificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<Asn1IntegerPtr> randomSerial() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Error{"random serial: " + opensslErrors()};
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x40;  // and never zero / never short
  BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn) return Error{"random serial: " + opensslErrors()};
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return Error{"random serial: " + opensslErrors()};
  return serial;
}

Status addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Error{std::string("adding extension ") + OBJ_nid2sn(nid) + " \"" + value + "\": " + opensslErrors()};
  }
  return {};
}

const EVP_MD* signingDigest(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) return nullptr;
  return EVP_sha256();
}

Result<X509Ptr> reparse(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return Error{"encoding certificate: " + opensslErrors()};
  const unsigned char* p = der;
  X509Ptr out(d2i_X509(nullptr, &p, len));
  OPENSSL_free(der);
  if (!out) return Error{"re-reading certificate: " + opensslErrors()};
  return out;
}

std::string subjectString(const X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::string s(data, static_cast<std::size_t>(n));
  return s.empty() ? "(empty subject)" : s;
}

}  // namespace detail
}  // namespace nodemesh::identity
