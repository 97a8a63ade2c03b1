#include "admin/http_message.h"

#include <nlohmann/json.hpp>

namespace nodemesh::admin {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kHeadTerminator = "\r\n\r\n";

bool isMethodChar(char c) { return c >= 'A' && c <= 'Z'; }
// Visible ASCII only: no spaces, controls or bytes >= 0x80 in the target.
bool isTargetChar(char c) { return c > 0x20 && c < 0x7f; }

bool validVersion(std::string_view v) {
  return v.size() == 8 && v.substr(0, 7) == "HTTP/1." && v[7] >= '0' && v[7] <= '9';
}

Response badRequest(std::string_view why) { return errorResponse(400, why); }

}  // namespace

std::size_t findHeadEnd(std::string_view buf) {
  const auto pos = buf.find(kHeadTerminator);
  return pos == std::string_view::npos ? pos : pos + kHeadTerminator.size();
}

std::variant<Request, Response> parseRequestHead(std::string_view head) {
  const auto lineEnd = head.find(kCrlf);
  const std::string_view line = head.substr(0, lineEnd);

  // Strictly "METHOD SP TARGET SP HTTP/1.x": exactly two single spaces.
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return badRequest("malformed request line");
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return badRequest("malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);

  if (method.empty() || method.size() > 16) return badRequest("malformed request method");
  for (char c : method) {
    if (!isMethodChar(c)) return badRequest("malformed request method");
  }
  if (target.empty() || target.front() != '/') return badRequest("request path must start with '/'");
  for (char c : target) {
    if (!isTargetChar(c)) return badRequest("request path contains invalid characters");
  }
  if (!validVersion(version)) return badRequest("unsupported protocol version (want HTTP/1.x)");

  // Header values are ignored, but lines must still look like headers so
  // that garbage after a valid-looking first line is not silently accepted.
  if (lineEnd != std::string_view::npos) {
    std::string_view rest = head.substr(lineEnd + kCrlf.size());
    while (!rest.empty()) {
      const auto end = rest.find(kCrlf);
      const std::string_view header = rest.substr(0, end);
      if (!header.empty()) {
        const auto colon = header.find(':');
        if (colon == std::string_view::npos || colon == 0) return badRequest("malformed header line");
      }
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + kCrlf.size());
    }
  }
  return Request{std::string(method), std::string(target)};
}

std::string errorBody(std::string_view message) {
  nlohmann::json j = {{"error", std::string(message)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response errorResponse(int status, std::string_view message) { return {status, errorBody(message)}; }

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status >= 200 && status < 300 ? "OK" : "Error";
  }
}

std::string formatResponse(const Response& response, HttpVersion version) {
  // A handler bug must not put an invalid status line on the wire.
  const int status = response.status >= 100 && response.status <= 599 ? response.status : 500;
  std::string out;
  out.reserve(128 + response.body.size());
  out += version == HttpVersion::k11 ? "HTTP/1.1 " : "HTTP/1.0 ";
  out += std::to_string(status);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\nContent-Type: ";
  // Content types are constants of ours, but never let one split the head.
  const bool cleanType = response.contentType.find_first_of("\r\n") == std::string::npos && !response.contentType.empty();
  out += cleanType ? response.contentType : std::string(kJsonContentType);
  if (status == 405) out += "\r\nAllow: GET";
  out += "\r\nContent-Length: ";
  out += std::to_string(response.body.size());
  out += "\r\nConnection: close\r\n\r\n";
  out += response.body;
  return out;
}

}  // namespace nodemesh::admin
