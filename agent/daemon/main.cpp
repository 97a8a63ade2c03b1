// nodemesh-agent: the per-node daemon.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "admin/admin_server.h"
#include "admin/http_server.h"
#include "admin/tcp_listen.h"
#include "config/config_loader.h"
#include "daemon/agent.h"
#include "daemon/event_loop.h"
#include "daemon/kube_wiring.h"
#include "daemon/metrics_http.h"
#include "datapath/socket_lb.h"
#include "common/system_paths.h"

using namespace nodemesh;

namespace {

admin::Response route(const daemon::Agent& agent, std::string_view method, std::string_view path) {
  if (method != "GET") return {405, R"({"error":"only GET is supported"})"};
  // Trim after building large answers (10k services is tens of MB of JSON
  // nodes) so one status call does not raise the agent's RSS for good.
  if (path == "/v1/status") {
    admin::Response r{200, agent.statusJson().dump()};
    ::malloc_trim(0);
    return r;
  }
  if (path == "/v1/services") {
    admin::Response r{200, agent.servicesJson().dump()};
    ::malloc_trim(0);
    return r;
  }
  return {404, nlohmann::json{{"error", "unknown path " + std::string(path) + "; try /v1/status or /v1/services"}}.dump()};
}

int checkConfig(const std::optional<std::string>& path) {
  auto snapshot = path ? config::loadConfigFile(*path)
                       : config::parseConfig(config::embeddedExampleConfig(), "embedded example config");
  if (!snapshot) {
    std::cerr << snapshot.error().message << "\n";
    return 1;
  }
  std::cout << snapshot->source << ": valid (" << snapshot->services.size() << " services, "
            << snapshot->workloads.size() << " workloads)\n";
  return 0;
}

// --check-config --mesh-config PATH without a Kubernetes source: checks the
// file alone (the manifests' ConfigMap is checked this way).
int checkMeshConfig(const std::string& path) {
  auto mesh = config::loadMeshConfigFile(path);
  if (!mesh) {
    std::cerr << mesh.error().message << "\n";
    return 1;
  }
  std::cout << path << ": valid mesh settings (trust domain " << mesh->trustDomain << ", "
            << (mesh->caCertFile.empty() ? std::string("development CA") : "CA " + mesh->caCertFile) << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nodemesh-agent: per-node service-mesh dataplane (eBPF socket load balancing)"};
  daemon::AgentOptions opts;
  std::string config;
  bool cleanup = false, check = false, printExample = false;
  std::string logLevel = "info";
  auto* configOpt =
      app.add_option("-c,--config", config, "YAML config file (default: the embedded example topology)");
  daemon::KubeFlags kube;
  auto* inClusterOpt = app.add_flag("--kubernetes", kube.inCluster,
                                    "take the config from the Kubernetes API, in-cluster (service-account token, "
                                    "KUBERNETES_SERVICE_HOST/PORT)");
  auto* kubeconfigOpt =
      app.add_option("--kubeconfig", kube.kubeconfig, "take the config from the Kubernetes API named in this kubeconfig");
  auto* nodeNameOpt = app.add_option("--node-name", kube.nodeName,
                                     "this node's Kubernetes name (default: $NODE_NAME, else the hostname)");
  // Hidden (empty group): tests point the kubepods lookup at a private
  // subtree of the cgroup2 mount instead of the host's real kubepods tree.
  auto* kubeCgroupOpt = app.add_option("--kube-cgroup-root", kube.kubepodsParent,
                                       "directory inside the cgroup2 mount holding the kubepods tree (tests)")
                            ->group("");
  auto* meshConfigOpt = app.add_option("--mesh-config", kube.meshConfig,
                                       "with --kubernetes/--kubeconfig: YAML file with the config file's `mesh` "
                                       "section (trust domain, CA files, proxy ports, workers, socketRedirect); "
                                       "default: every default (trust domain cluster.local, development CA)");
  configOpt->excludes(inClusterOpt)->excludes(kubeconfigOpt)->excludes(meshConfigOpt);
  inClusterOpt->excludes(kubeconfigOpt);
  app.add_option("--pin-root", opts.pinRoot, "bpffs directory for pinned maps and links")->capture_default_str();
  app.add_option("--admin-socket", opts.adminSocket, "UNIX socket of the admin API")->capture_default_str();
  app.add_option("--metrics-address", opts.metricsAddress,
                 "HOST:PORT of the plain-HTTP /metrics, /healthz and /readyz listener (not root-only: keep it on "
                 "loopback or a pod IP); \"\" or \"off\" disables it; port 0 picks a free port (logged, and in "
                 "the status as agent.metricsAddress)")
      ->capture_default_str();
  app.add_option("--log-level", logLevel, "trace|debug|info|warn|error")->capture_default_str();
  app.add_flag("--cleanup", cleanup, "detach every program and remove every pin this agent installed, then exit");
  app.add_flag("--check-config", check, "validate the config and exit");
  app.add_flag("--print-example-config", printExample, "print the embedded example config and exit");
  app.add_flag_callback("--version", [] { std::cout << "nodemesh-agent " NM_VERSION "\n"; std::exit(0); }, "print the version");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(logLevel));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (!config.empty()) opts.configPath = config;
  const bool kubeMode = kube.inCluster || !kube.kubeconfig.empty();
  if (!kubeMode && (nodeNameOpt->count() || kubeCgroupOpt->count())) {
    std::cerr << "--node-name and --kube-cgroup-root need --kubernetes or --kubeconfig\n";
    return 2;
  }
  if (!kubeMode && meshConfigOpt->count() && !check) {
    std::cerr << "--mesh-config needs --kubernetes or --kubeconfig (with a config file, write the mesh section "
                 "in it; --check-config --mesh-config PATH checks the file alone)\n";
    return 2;
  }

  if (printExample) {
    std::cout << config::embeddedExampleConfig();
    return 0;
  }
  std::optional<daemon::KubeWiring> wiring;
  if (kubeMode) {
    auto mount = discoverCgroup2Mount();
    if (!mount) {
      spdlog::error("{}", mount.error().message);
      return 1;
    }
    auto w = daemon::kubeWiring(kube, *mount);
    if (!w) {
      if (check) std::cerr << w.error().message << "\n";
      else spdlog::error("kubernetes source: {}", w.error().message);
      return 1;
    }
    wiring = std::move(*w);
    opts.externalSource = wiring->description;
    opts.nodeName = wiring->options.nodeName;
  }
  if (check) {
    if (!wiring) return kube.meshConfig.empty() ? checkConfig(opts.configPath) : checkMeshConfig(kube.meshConfig);
    std::cout << wiring->description << ": valid (server " << wiring->options.client.server << ", node "
              << wiring->options.nodeName << ", trust domain " << wiring->options.mesh.trustDomain << ")\n";
    return 0;
  }
  if (cleanup) {
    if (auto st = datapath::SocketLb::removePins(opts.pinRoot); !st) {
      spdlog::error("cleanup: {}", st.error().message);
      return 1;
    }
    spdlog::info("cleanup: removed every pin under {}; the hooks are detached", opts.pinRoot);
    return 0;
  }

  if (auto st = daemon::blockControlSignals(); !st) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  daemon::Agent agent(opts);
  // The health listener comes up first: /healthz and /readyz (503 while
  // starting) answer during start, and a taken port fails before the
  // datapath is touched.
  std::unique_ptr<admin::HttpServer> metricsServer;
  if (!opts.metricsAddress.empty() && opts.metricsAddress != "off") {
    auto fd = admin::openTcpListener(opts.metricsAddress);
    if (!fd) {
      spdlog::error("metrics listener: {} (choose another with --metrics-address, or \"off\")", fd.error().message);
      return 1;
    }
    const std::string bound = admin::tcpLocalAddress(fd->get());
    // Same hardening as the admin API (head limit, 2 s deadlines, 64
    // clients); anyone who can reach it may ask (no admit rule).
    admin::HttpServerOptions http;
    http.name = "metrics listener";
    http.version = admin::HttpVersion::k11;
    auto server = admin::HttpServer::start(
        std::move(*fd),
        [&agent](std::string_view method, std::string_view path) { return daemon::metricsRoute(agent, method, path); },
        std::move(http));
    if (!server) {
      spdlog::error("metrics listener: {}", server.error().message);
      return 1;
    }
    metricsServer = std::move(*server);
    agent.setMetricsAddress(bound);
    spdlog::info("metrics and health listening on http://{} (/metrics, /healthz, /readyz)", bound);
  } else {
    spdlog::info("metrics and health listener disabled (--metrics-address \"{}\")", opts.metricsAddress);
  }
  if (auto st = agent.start(); !st) {
    spdlog::error("cannot start: {}", st.error().message);
    return 1;
  }
  auto server = admin::AdminServer::start(
      opts.adminSocket, [&agent](std::string_view method, std::string_view path) { return route(agent, method, path); });
  if (!server) {
    spdlog::error("admin API: {}", server.error().message);
    return 1;
  }
  spdlog::info("nodemesh-agent {} serving; admin API on {}", NM_VERSION, opts.adminSocket);

  // The Kubernetes source pushes snapshots from its own thread; it is
  // stopped (threads joined) before the agent goes away.
  std::unique_ptr<kube::KubernetesSource> source;
  if (wiring) {
    const std::string prefix = wiring->cgroupPrefix, description = wiring->description;
    source = std::make_unique<kube::KubernetesSource>(
        wiring->options, [&agent, prefix, description](state::Snapshot s) {
          s.source = description;
          (void)agent.applyFromSource(daemon::rebaseCgroups(std::move(s), prefix));
        });
    if (auto st = source->start(); !st) {
      spdlog::error("{}", st.error().message);
      return 1;
    }
  }
  agent.setLoopState(daemon::LoopState::kRunning);
  auto st = daemon::runEventLoop(wiring ? std::nullopt : opts.configPath, {.reload = [&agent] { (void)agent.reload(); }, .tick = [&agent] { agent.tick(); }});
  agent.setLoopState(daemon::LoopState::kStopped);
  if (source) {
    source->stop();
    spdlog::info("kubernetes source stopped");
  }
  if (!st) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  return 0;
}
