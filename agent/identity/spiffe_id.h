// SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md):
//   spiffe://<trust-domain>/<path>
// trust domain: [a-z0-9._-]+, at most 255 bytes; path: "/"-separated
// segments of [A-Za-z0-9._-], none empty, "." or ".."; no trailing '/', no
// query, fragment, port, user info or percent-encoding; whole ID at most
// 2048 bytes. nodemesh workload IDs are spiffe://<td>/ns/<ns>/sa/<sa>.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace nodemesh::identity {

inline constexpr std::size_t kMaxTrustDomainLength = 255;
inline constexpr std::size_t kMaxSpiffeIdLength = 2048;

// Ok when `td` is a valid SPIFFE trust domain name; else says what is wrong.
Status checkTrustDomain(std::string_view td);

class SpiffeId {
 public:
  // Parses and validates any SPIFFE ID (a trust-domain ID such as
  // "spiffe://example.org" has an empty path).
  static Result<SpiffeId> parse(std::string_view text);
  // spiffe://<trustDomain>/ns/<ns>/sa/<serviceAccount>; each part validated.
  static Result<SpiffeId> forWorkload(std::string_view trustDomain, std::string_view ns,
                                      std::string_view serviceAccount);

  const std::string& str() const { return uri_; }
  std::string_view trustDomain() const;
  std::string_view path() const;  // "" or "/seg/seg..."
  bool isTrustDomainId() const { return path().empty(); }
  // The <ns> and <sa> of a path of exactly the form /ns/<ns>/sa/<sa>.
  std::optional<std::string_view> workloadNamespace() const;
  std::optional<std::string_view> serviceAccount() const;

  friend bool operator==(const SpiffeId& a, const SpiffeId& b) { return a.uri_ == b.uri_; }
  friend std::strong_ordering operator<=>(const SpiffeId& a, const SpiffeId& b) { return a.uri_ <=> b.uri_; }

 private:
  SpiffeId(std::string uri, std::size_t tdLength) : uri_(std::move(uri)), tdLength_(tdLength) {}
  std::string uri_;
  std::size_t tdLength_ = 0;  // bytes of the trust domain after "spiffe://"
};

}  // namespace nodemesh::identity
