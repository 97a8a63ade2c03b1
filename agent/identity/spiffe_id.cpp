#include "identity/spiffe_id.h"

#include <array>
#include <cstdio>

namespace nodemesh::identity {
namespace {

constexpr std::string_view kScheme = "spiffe://";

bool isTrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}
bool isPathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

// Printable form of one byte for messages.
std::string describeChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", u);
  return buf;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string checkTrustDomainText(std::string_view td) {
  if (td.empty()) return "trust domain is empty";
  if (td.size() > kMaxTrustDomainLength) {
    return "trust domain is " + std::to_string(td.size()) + " bytes, at most " + std::to_string(kMaxTrustDomainLength) +
           " allowed";
  }
  for (char c : td) {
    if (isTrustDomainChar(c)) continue;
    std::string hint;
    if (c >= 'A' && c <= 'Z') hint = " (trust domains are lowercase)";
    if (c == ':') hint = " (a trust domain has no port)";
    if (c == '@') hint = " (a trust domain has no user info)";
    return "trust domain " + quote(td) + " contains " + describeChar(c) + hint +
           "; allowed: lowercase letters, digits, '.', '-', '_'";
  }
  return {};
}

std::string checkSegment(std::string_view seg, std::string_view what = "path segment") {
  if (seg.empty()) return "path has an empty segment (\"//\" or a trailing '/')";
  if (seg == "." || seg == "..") return std::string(what) + " " + quote(seg) + " is not allowed";
  for (char c : seg) {
    if (isPathChar(c)) continue;
    std::string hint;
    if (c == '%') hint = " (percent-encoding is not allowed)";
    return std::string(what) + " " + quote(seg) + " contains " + describeChar(c) + hint +
           "; allowed: letters, digits, '.', '-', '_'";
  }
  return {};
}

}  // namespace

Status checkTrustDomain(std::string_view td) {
  if (auto why = checkTrustDomainText(td); !why.empty()) return Error{why};
  return {};
}

Result<SpiffeId> SpiffeId::parse(std::string_view text) {
  auto fail = [&](const std::string& why) { return Error{"invalid SPIFFE ID " + quote(text) + ": " + why}; };
  if (text.empty()) return fail("empty");
  if (text.size() > kMaxSpiffeIdLength) {
    return Error{"invalid SPIFFE ID: " + std::to_string(text.size()) + " bytes, at most " +
                 std::to_string(kMaxSpiffeIdLength) + " allowed"};
  }
  if (text.substr(0, kScheme.size()) != kScheme) {
    std::size_t colon = text.find("://");
    if (colon != std::string_view::npos) {
      return fail("scheme must be \"spiffe\" (lowercase), got " + quote(text.substr(0, colon)));
    }
    return fail("must start with \"spiffe://\"");
  }
  std::string_view rest = text.substr(kScheme.size());
  if (std::size_t q = rest.find_first_of("?#"); q != std::string_view::npos) {
    return fail(rest[q] == '?' ? "query is not allowed" : "fragment is not allowed");
  }
  std::size_t slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  if (auto why = checkTrustDomainText(td); !why.empty()) return fail(why);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);  // starts with '/'
    std::size_t start = 1;
    while (true) {
      std::size_t end = path.find('/', start);
      std::string_view seg = path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      if (auto why = checkSegment(seg); !why.empty()) return fail(why);
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
  }
  return SpiffeId(std::string(text), td.size());
}

Result<SpiffeId> SpiffeId::forWorkload(std::string_view trustDomain, std::string_view ns,
                                       std::string_view serviceAccount) {
  if (auto why = checkTrustDomainText(trustDomain); !why.empty()) return Error{"SPIFFE ID: " + why};
  if (ns.empty()) return Error{"SPIFFE ID: namespace is empty"};
  if (auto why = checkSegment(ns, "namespace"); !why.empty()) return Error{"SPIFFE ID: " + why};
  if (serviceAccount.empty()) return Error{"SPIFFE ID: service account is empty"};
  if (auto why = checkSegment(serviceAccount, "service account"); !why.empty()) return Error{"SPIFFE ID: " + why};
  std::string uri = std::string(kScheme);
  uri.append(trustDomain).append("/ns/").append(ns).append("/sa/").append(serviceAccount);
  if (uri.size() > kMaxSpiffeIdLength) return Error{"SPIFFE ID: longer than 2048 bytes"};
  return SpiffeId(std::move(uri), trustDomain.size());
}

std::string_view SpiffeId::trustDomain() const {
  return std::string_view(uri_).substr(kScheme.size(), tdLength_);
}

std::string_view SpiffeId::path() const {
  return std::string_view(uri_).substr(kScheme.size() + tdLength_);
}

namespace {
// Splits "/ns/<a>/sa/<b>" into {a, b}.
std::optional<std::array<std::string_view, 2>> workloadParts(std::string_view path) {
  std::array<std::string_view, 4> seg;
  std::size_t n = 0, start = 1;
  if (path.empty()) return std::nullopt;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (n == seg.size()) return std::nullopt;
    seg[n++] = path.substr(start, end - start);
    start = end + 1;
  }
  if (n != 4 || seg[0] != "ns" || seg[2] != "sa") return std::nullopt;
  return std::array<std::string_view, 2>{seg[1], seg[3]};
}
}  // namespace

std::optional<std::string_view> SpiffeId::workloadNamespace() const {
  auto parts = workloadParts(path());
  if (!parts) return std::nullopt;
  return (*parts)[0];
}

std::optional<std::string_view> SpiffeId::serviceAccount() const {
  auto parts = workloadParts(path());
  if (!parts) return std::nullopt;
  return (*parts)[1];
}

}  // namespace nodemesh::identity
