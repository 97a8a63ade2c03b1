// Syntax rules for the names and paths a config may contain. Each check
// returns an empty string when the text is fine, else what is wrong, phrased
// to follow "<field path>: ".
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace nodemesh::config {

inline constexpr std::size_t kMaxLabelLength = 63;
inline constexpr std::size_t kMaxSubdomainLength = 253;
inline constexpr std::size_t kMaxCgroupPathLength = 4095;
inline constexpr std::size_t kMaxFilePathLength = 4095;  // PATH_MAX - 1

// DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
std::string checkDnsLabel(std::string_view text);
// DNS-1123 subdomain as Kubernetes names use it: [a-z0-9]([-a-z0-9.]*[a-z0-9])?, at most 253.
std::string checkDnsSubdomain(std::string_view text);
// A cgroup v2 path relative to the mount root: "/" or "/a/b", no empty, "." or ".." segments.
std::string checkCgroupPath(std::string_view text);
// An absolute file path (the CA files): starts with '/', no control characters, at most 4095.
std::string checkAbsoluteFilePath(std::string_view text);
// True when `inner` is `outer` or lies below it.
bool cgroupWithin(std::string_view inner, std::string_view outer);

// Case-insensitive Levenshtein distance, for "did you mean" hints.
std::size_t editDistance(std::string_view a, std::string_view b);
// The closest of `candidates` within distance 2, or empty.
std::string_view closestMatch(std::string_view word, std::initializer_list<std::string_view> candidates);

// Quotes text for a message, escaping control bytes so binary input stays on one line.
std::string quoted(std::string_view text);

}  // namespace nodemesh::config
