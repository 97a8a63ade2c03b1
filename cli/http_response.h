// Parsing the agent's HTTP/1.0 answer: status line, headers, body. Pure, so
// truncated or garbled answers are unit-testable.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace nodemesh::cli {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// raw: everything read until EOF. Honors Content-Length when present (and
// rejects a body shorter than it); otherwise the body runs to EOF.
Result<HttpResponse> parseHttpResponse(std::string_view raw);

// The text for a non-200 answer: the body's JSON "error" string when there
// is one, else a generic description of the status.
std::string describeHttpError(const HttpResponse& response);

}  // namespace nodemesh::cli
