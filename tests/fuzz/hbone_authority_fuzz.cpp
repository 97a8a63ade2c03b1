// libFuzzer target: parseTunnelAuthority on arbitrary bytes. Besides "no
// crash", checks that whatever it accepts round-trips through toString().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/hbone/tunnel_authority.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = nodemesh::proxy::hbone::parseTunnelAuthority(in);
  if (r) {
    if (r->port == 0) std::abort();
    auto again = nodemesh::proxy::hbone::parseTunnelAuthority(r->toString());
    if (!again || !(*again == *r)) std::abort();
  }
  return 0;
}
