// The small slice of HTTP/1.x the admin API (HTTP/1.0) and the metrics and
// health listener (HTTP/1.1) speak: parsing one request head and formatting
// one response, always with Connection: close. Pure functions, so every malformed-input path
// is unit-testable without sockets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace nodemesh::admin {

inline constexpr const char* kJsonContentType = "application/json";

struct Response {
  int status = 200;
  std::string body;  // JSON unless contentType says otherwise
  std::string contentType = kJsonContentType;
};

// The version written on status lines. Both servers answer one request per
// connection and close it, which HTTP/1.1 allows with "Connection: close".
enum class HttpVersion { k10, k11 };

struct Request {
  std::string method;
  std::string path;  // raw request target, starts with '/'
};

// The head ends with the first CRLFCRLF; a head longer than this is refused
// with 431 so a client cannot make the agent buffer without bound.
inline constexpr std::size_t kMaxRequestHead = 8 * 1024;

// Where the head ends in buf (index just past CRLFCRLF), or npos if it has
// not fully arrived yet.
std::size_t findHeadEnd(std::string_view buf);

// Parses a complete head (request line plus header lines, CRLFCRLF included
// or not). Either the request or the error response (400) to send back.
std::variant<Request, Response> parseRequestHead(std::string_view head);

// {"error": message} as a JSON body; never throws, even on invalid UTF-8.
std::string errorBody(std::string_view message);
Response errorResponse(int status, std::string_view message);

const char* reasonPhrase(int status);

// The full wire form: status line, fixed headers, body. A 405 also carries
// "Allow: GET" (both servers are read-only).
std::string formatResponse(const Response& response, HttpVersion version = HttpVersion::k10);

}  // namespace nodemesh::admin
