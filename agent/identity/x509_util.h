// Internal helpers shared by the identity sources (not part of the public
// API): ASN.1 time conversion, PEM parsing, serials, extensions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "identity/clock.h"
#include "identity/openssl_ptr.h"

namespace nodemesh::identity::detail {

Result<TimePoint> fromAsn1Time(const ASN1_TIME* t);
Status setAsn1Time(ASN1_TIME* out, TimePoint t);

// Reads a whole regular file of at most maxBytes; the error names the path.
Result<std::string> readSmallFile(const std::string& path, std::size_t maxBytes);

// Every CERTIFICATE block in `pem`, in order; an error when there is none or
// one does not parse. `what` names the source for messages.
Result<std::vector<X509Ptr>> parseCertificates(std::string_view pem, const std::string& what);
std::string certificatePem(X509* cert);

// A random positive 127-bit serial (RFC 5280: at most 20 octets, positive).
Result<Asn1IntegerPtr> randomSerial();

// Adds an extension given in openssl.cnf syntax ("critical,CA:FALSE").
Status addExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value);

// The digest X509_sign wants for this key type (nullptr for EdDSA).
const EVP_MD* signingDigest(EVP_PKEY* key);

// Serializes and re-parses a freshly built certificate, so the object handed
// out has the exact encoding that was signed and fresh extension caches.
Result<X509Ptr> reparse(X509* cert);

std::string subjectString(const X509* cert);

}  // namespace nodemesh::identity::detail
