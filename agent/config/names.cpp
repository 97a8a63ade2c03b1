#include "config/names.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace nodemesh::config {
namespace {

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Shared body of the label/subdomain checks; `allowDot` is the only difference.
std::string checkDnsName(std::string_view text, std::size_t maxLength, bool allowDot, const char* kind) {
  if (text.empty()) return "must not be empty";
  if (text.size() > maxLength) {
    return "must be at most " + std::to_string(maxLength) + " characters, got " + std::to_string(text.size());
  }
  bool inner = std::all_of(text.begin(), text.end(),
                           [&](char c) { return isLowerAlnum(c) || c == '-' || (allowDot && c == '.'); });
  if (!inner || !isLowerAlnum(text.front()) || !isLowerAlnum(text.back())) {
    return std::string("must be a DNS-1123 ") + kind + " (lowercase letters, digits, '-'" +
           (allowDot ? ", '.'" : "") + "; starting and ending with a letter or digit), got " + quoted(text);
  }
  return {};
}

}  // namespace

std::string checkDnsLabel(std::string_view text) {
  return checkDnsName(text, kMaxLabelLength, false, "label");
}

std::string checkDnsSubdomain(std::string_view text) {
  return checkDnsName(text, kMaxSubdomainLength, true, "subdomain");
}

std::string checkCgroupPath(std::string_view text) {
  if (text.empty()) return "must not be empty";
  if (text.size() > kMaxCgroupPathLength) {
    return "must be at most " + std::to_string(kMaxCgroupPathLength) + " characters";
  }
  if (text.front() != '/') {
    return "must start with '/' (a path relative to the cgroup v2 mount root), got " + quoted(text);
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "must not contain control characters";
  }
  if (text == "/") return {};  // the whole node
  if (text.back() == '/') return "must not end with '/', got " + quoted(text);
  std::size_t start = 1;
  while (start <= text.size()) {
    std::size_t end = text.find('/', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view segment = text.substr(start, end - start);
    if (segment.empty()) return "must not contain '//', got " + quoted(text);
    if (segment == "." || segment == "..") return "must not contain '.' or '..' segments, got " + quoted(text);
    start = end + 1;
  }
  return {};
}

std::string checkAbsoluteFilePath(std::string_view text) {
  if (text.empty()) return "must not be empty";
  if (text.size() > kMaxFilePathLength) return "must be at most " + std::to_string(kMaxFilePathLength) + " characters";
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "must not contain control characters";
  }
  if (text.front() != '/') return "must be an absolute path (starting with '/'), got " + quoted(text);
  if (text.back() == '/') return "must name a file, not a directory, got " + quoted(text);
  return {};
}

bool cgroupWithin(std::string_view inner, std::string_view outer) {
  if (outer == "/") return true;
  if (inner.size() < outer.size() || inner.substr(0, outer.size()) != outer) return false;
  return inner.size() == outer.size() || inner[outer.size()] == '/';
}

std::size_t editDistance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t substitute = prev[j - 1] + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string_view closestMatch(std::string_view word, std::initializer_list<std::string_view> candidates) {
  constexpr std::size_t kMaxSuggestDistance = 2;
  // Long garbage keys cannot be within distance 2 of a short field name; skip the O(n*m) work.
  constexpr std::size_t kMaxWordLength = 64;
  if (word.size() > kMaxWordLength) return {};
  std::string_view best;
  std::size_t bestDistance = kMaxSuggestDistance + 1;
  for (std::string_view candidate : candidates) {
    std::size_t d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out + "'";
}

}  // namespace nodemesh::config
