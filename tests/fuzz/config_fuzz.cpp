// libFuzzer target for the config parser: any input must come back as a
// Snapshot or an Error (never a crash, hang, leak or sanitizer report), and
// an accepted Snapshot must satisfy the invariants the datapath relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config_loader.h"
#include "config/limits.h"

namespace {

using nodemesh::state::Snapshot;

// Aborts (a fuzzer finding) when an accepted snapshot breaks a promise of parseConfig.
void checkInvariants(const Snapshot& s) {
  if (s.version != 0 || s.source != "fuzz" || s.nodeName.empty() || s.servedCgroup.empty()) std::abort();
  std::size_t frontends = 0;
  for (std::size_t i = 0; i < s.services.size(); ++i) {
    const auto& svc = s.services[i];
    if (i > 0 && !(s.services[i - 1].qualifiedName() < svc.qualifiedName())) std::abort();
    if (svc.vips.empty() || svc.vips.size() > nodemesh::config::kMaxVipsPerService || svc.ports.empty()) std::abort();
    if (svc.endpoints.size() > nodemesh::config::kMaxEndpointsPerService) std::abort();
    frontends += svc.vips.size() * svc.ports.size();
    for (const auto& vip : svc.vips)
      if (vip.isUnspecified()) std::abort();
    for (const auto& port : svc.ports)
      if (port.port == 0 || port.targetPort == 0) std::abort();
    for (const auto& ep : svc.endpoints) {
      if (ep.weight < 1 || ep.weight > 65535 || ep.address.isUnspecified()) std::abort();
      if (ep.port && (*ep.port == 0 || svc.ports.size() != 1)) std::abort();
    }
  }
  if (frontends > nodemesh::config::kMaxFrontends) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result = nodemesh::config::parseConfig(text, "fuzz");
  if (result.ok()) {
    checkInvariants(result.value());
  } else if (result.error().message.empty()) {
    std::abort();  // every rejection must say why
  }
  return 0;
}
