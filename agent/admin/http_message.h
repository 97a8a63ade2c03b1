// The small slice of HTTP/1.0 the admin API speaks: parsing one request head
// and formatting one response. Pure functions, so every malformed-input path
// is unit-testable without sockets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace nodemesh::admin {

struct Response {
  int status = 200;
  std::string body;  // JSON
};

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

// The full wire form: status line, fixed headers, body.
std::string formatResponse(const Response& response);

}  // namespace nodemesh::admin
