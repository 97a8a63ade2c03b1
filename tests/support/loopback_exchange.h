// One raw request/response exchange with a TCP server on 127.0.0.1, for
// tests that speak HTTP by hand (to send malformed requests too).
#pragma once

#include <cstdint>
#include <string>

namespace nodemesh::testing {

// Sends request, then reads until the server closes or nothing arrives for
// timeoutMs. Returns everything received, or "CONNECT FAILED".
std::string loopbackExchange(std::uint16_t port, const std::string& request, int timeoutMs = 5000);

}  // namespace nodemesh::testing
