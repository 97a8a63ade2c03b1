#include "http_response.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <nlohmann/json.hpp>

namespace nodemesh::cli {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

template <typename T>
bool parseNumber(std::string_view s, T& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

Error malformed(std::string_view why) {
  return Error{"the agent sent a malformed answer (" + std::string(why) + ")", EPROTO};
}

}  // namespace

Result<HttpResponse> parseHttpResponse(std::string_view raw) {
  // The agent always sends CRLF; a bare-LF head is accepted so meshctl also
  // works through simple proxies or a hand-rolled test server.
  std::size_t headEnd = raw.find("\r\n\r\n");
  std::size_t bodyStart = headEnd == std::string_view::npos ? headEnd : headEnd + 4;
  if (headEnd == std::string_view::npos) {
    headEnd = raw.find("\n\n");
    bodyStart = headEnd == std::string_view::npos ? headEnd : headEnd + 2;
  }
  if (headEnd == std::string_view::npos) {
    return raw.empty() ? malformed("empty answer") : malformed("incomplete head");
  }
  std::string_view head = raw.substr(0, headEnd);
  std::string_view body = raw.substr(bodyStart);

  const auto lineEnd = head.find('\n');
  const std::string_view statusLine = trim(head.substr(0, lineEnd));
  // "HTTP/1.x NNN reason"
  if (statusLine.size() < 12 || statusLine.substr(0, 7) != "HTTP/1." || statusLine[8] != ' ') {
    return malformed("bad status line");
  }
  HttpResponse response;
  if (!parseNumber(statusLine.substr(9, 3), response.status) || response.status < 100 ||
      response.status > 599 || (statusLine.size() > 12 && statusLine[12] != ' ')) {
    return malformed("bad status code");
  }

  std::string_view headers = lineEnd == std::string_view::npos ? std::string_view{} : head.substr(lineEnd + 1);
  while (!headers.empty()) {
    const auto end = headers.find('\n');
    const std::string_view line = headers.substr(0, end);
    headers = end == std::string_view::npos ? std::string_view{} : headers.substr(end + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !iequals(trim(line.substr(0, colon)), "content-length")) continue;
    std::size_t length = 0;
    if (!parseNumber(trim(line.substr(colon + 1)), length)) return malformed("bad Content-Length");
    if (body.size() < length) return malformed("answer truncated");
    body = body.substr(0, length);
  }
  response.body = std::string(body);
  return response;
}

std::string describeHttpError(const HttpResponse& response) {
  const auto j = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (auto it = j.find("error"); it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      return it->get<std::string>() + " (HTTP " + std::to_string(response.status) + ")";
    }
  }
  return "the agent answered HTTP " + std::to_string(response.status);
}

}  // namespace nodemesh::cli
