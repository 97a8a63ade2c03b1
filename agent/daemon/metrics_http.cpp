#include "daemon/metrics_http.h"

#include <malloc.h>

#include "daemon/metrics.h"
#include "daemon/metrics_health.h"

namespace nodemesh::daemon {
namespace {

constexpr const char* kText = "text/plain; charset=utf-8";

admin::Response text(int status, std::string body) { return {status, std::move(body) + "\n", kText}; }

admin::Response probe(const ProbeResult& r) { return text(r.ok ? 200 : 503, r.reason); }

}  // namespace

admin::Response metricsRoute(const Agent& agent, std::string_view method, std::string_view path) {
  // The query string (e.g. a scraper's ?name[]=...) selects nothing here.
  path = path.substr(0, path.find('?'));
  if (method != "GET") return text(405, "only GET is supported");
  if (path == "/healthz") return probe(liveness(agent.livenessInputs()));
  if (path == "/readyz") return probe(readiness(agent.readinessInputs()));
  if (path == "/metrics") {
    admin::Response r{200, metrics::render(agent.metricsSnapshot()), metrics::kContentType};
    ::malloc_trim(0);  // 10k service ports make a few MB of text; do not keep the peak
    return r;
  }
  return text(404, "unknown path " + std::string(path) + "; try /metrics, /healthz or /readyz");
}

}  // namespace nodemesh::daemon
