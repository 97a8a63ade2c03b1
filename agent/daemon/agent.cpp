#include "daemon/agent.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/system_paths.h"
#include "config/config_loader.h"
#include "datapath/sync_plan.h"

namespace nodemesh::daemon {

Agent::Agent(AgentOptions options) : options_(std::move(options)), started_(std::chrono::steady_clock::now()) {}

Agent::~Agent() = default;

Result<state::Snapshot> Agent::readConfig() const {
  if (options_.configPath) return config::loadConfigFile(*options_.configPath);
  return config::parseConfig(config::embeddedExampleConfig(), "embedded example config");
}

namespace {

// yaml-cpp builds a node tree of many small allocations (about 17 KB per
// service); freed, they stay in glibc's heap and the agent would keep the
// peak of its largest config as RSS forever. Hand them back after each parse.
void releaseParserMemory() { ::malloc_trim(0); }

}  // namespace

Agent::OperationGuard::OperationGuard(const Agent& agent) : agent_(agent) {
  std::lock_guard lock(agent_.healthMu_);
  it_ = agent_.operations_.emplace(std::chrono::steady_clock::now(), 0);
}

Agent::OperationGuard::~OperationGuard() {
  std::lock_guard lock(agent_.healthMu_);
  agent_.operations_.erase(it_);
}

LivenessInputs Agent::livenessInputs() const {
  LivenessInputs in;
  in.loop = loopState_.load();
  std::lock_guard lock(healthMu_);
  if (!operations_.empty()) in.oldestOperation = std::chrono::steady_clock::now() - operations_.begin()->first;
  return in;
}

ReadinessInputs Agent::readinessInputs() const {
  ReadinessInputs in;
  in.datapathLoaded = datapathLoaded_.load();
  in.firstSnapshotApplied = firstSnapshotApplied_.load();
  in.externalSource = options_.externalSource;
  std::lock_guard lock(healthMu_);
  in.lastError = lastErrorForProbe_;
  return in;
}

void Agent::setMetricsAddress(std::optional<std::string> address) {
  std::lock_guard lock(mu_);
  metricsAddress_ = std::move(address);
}

Status Agent::start() {
  OperationGuard busy(*this);
  return startImpl();
}

Status Agent::startImpl() {
  kernel_ = probeKernel();
  auto mount = discoverCgroup2Mount();
  if (!mount) return mount.error();
  cgroupMount_ = *mount;
  if (auto st = ensureBpffs(bpffs_); !st) return st;
  if (options_.pinRoot.rfind(bpffs_ + "/", 0) != 0)
    return Error{"--pin-root " + options_.pinRoot + " must be inside the bpffs at " + bpffs_};

  std::optional<state::Snapshot> initial;
  if (!options_.externalSource) {
    auto snapshot = readConfig();
    releaseParserMemory();
    if (!snapshot) return snapshot.error().wrap("initial config rejected");
    initial = std::move(*snapshot);
  }

  auto lb = datapath::SocketLb::load(options_.pinRoot);
  if (!lb) return lb.error();
  auto redirect = datapath::SockRedirect::load(options_.pinRoot);
  if (!redirect) return redirect.error().wrap("loading the socket-redirect programs");
  {
    std::lock_guard lock(mu_);
    lb_ = std::move(*lb);
    redirect_ = std::move(*redirect);
    mesh_ = std::make_unique<MeshRuntime>(options_.pinRoot, cgroupMount_);
  }
  datapathLoaded_ = true;
  spdlog::info("datapath loaded; maps and links pinned under {}", options_.pinRoot);
  if (!initial) {
    spdlog::info("config comes from {}; nothing applied until its first snapshot", *options_.externalSource);
    return {};
  }
  return applySnapshot(std::move(*initial));
}

Status Agent::reload() {
  OperationGuard busy(*this);
  if (options_.externalSource) {
    spdlog::info("no config file to reload: the config comes from {}, which pushes every change itself",
                 *options_.externalSource);
    return {};
  }
  auto snapshot = readConfig();
  releaseParserMemory();
  return recordOutcome(snapshot ? applySnapshot(std::move(*snapshot)) : Status(snapshot.error()));
}

Status Agent::applyFromSource(state::Snapshot snapshot) {
  OperationGuard busy(*this);
  {
    std::lock_guard lock(mu_);
    if (!lb_) return Error{"applyFromSource before start()", 0};
  }
  return recordOutcome(applySnapshot(std::move(snapshot)));
}

void Agent::tick() {
  std::lock_guard lock(mu_);
  if (mesh_) mesh_->tick();
  // Meshed workloads whose cgroup did not exist at the last apply (a pod
  // that is still starting): register them once it appears.
  if (meshCgroupsMissing_ && lb_ && snapshot_) {
    auto mesh = lb_->syncMesh(*snapshot_, cgroupMount_);
    if (!mesh) {
      spdlog::warn("mesh maps: {}", mesh.error().message);
      return;
    }
    if (!mesh->ops.empty()) spdlog::info("mesh maps: {}", datapath::summary(*mesh));
    meshCgroupsMissing_ = !mesh->missingCgroups.empty();
  }
}

Status Agent::recordOutcome(Status st) {
  std::lock_guard lock(mu_);
  {
    std::lock_guard healthLock(healthMu_);
    if (st) lastErrorForProbe_.reset();
    else lastErrorForProbe_ = st.error().message;
  }
  if (!st) {
    ++reloadFailures_;
    lastReloadError_ = st.error().message;
    spdlog::error("config rejected, still serving config version {}:\n{}", snapshot_ ? snapshot_->version : 0,
                  st.error().message);
  } else {
    lastReloadError_.reset();
  }
  return st;
}

Status Agent::applySnapshot(state::Snapshot snapshot) {
  auto desired = datapath::desiredFromSnapshot(snapshot);
  if (!desired) return desired.error().wrap(snapshot.source);

  std::lock_guard lock(mu_);
  // The proxy (and its certificates) first: capture must never steer a
  // connection to a proxy that does not know the service yet.
  if (auto st = mesh_->apply(snapshot); !st) return st.error().wrap(snapshot.source);
  const std::string cgroupPath = cgroupMount_ + (snapshot.servedCgroup == "/" ? "" : snapshot.servedCgroup);
  if (attachedCgroup_ != cgroupPath) {
    std::error_code ec;
    if (std::filesystem::create_directories(cgroupPath, ec))
      spdlog::info("created served cgroup {}", cgroupPath);
    if (ec) return Error{"creating served cgroup " + cgroupPath + ": " + ec.message(), ec.value()};
    if (auto st = lb_->attach(cgroupPath, snapshot.servedCgroup); !st) return st;
    attachedCgroup_ = cgroupPath;
    spdlog::info("socket-LB hooks attached to cgroup {}", cgroupPath);
  }

  // Mesh maps (workloads, node addresses, capture settings) before the
  // services: a service flips to mtls only once its clients are known.
  auto mesh = lb_->syncMesh(snapshot, cgroupMount_);
  if (!mesh) return mesh.error().wrap("applying " + snapshot.source + " to the mesh maps");
  if (!mesh->ops.empty() || !mesh->missingCgroups.empty())
    spdlog::info("mesh maps: {}", datapath::summary(*mesh));
  meshCgroupsMissing_ = !mesh->missingCgroups.empty();

  auto installed = lb_->readInstalled();
  if (!installed) return installed.error();
  auto plan = datapath::planSync(*installed, *desired);
  if (!plan) return plan.error();
  if (auto st = lb_->apply(*plan); !st) return st.error().wrap("applying " + snapshot.source + " to the maps");

  // After the maps: a switch flip never races a half-applied config. disable()
  // keeps the sockhash until its sockets are gone (their unread bytes live
  // there), so calling it on every apply finishes the removal over time.
  const bool redirectWas = redirect_->status().enabled;
  if (snapshot.mesh.socketRedirect) {
    if (auto st = redirect_->enable(cgroupPath); !st) return st.error().wrap("enabling mesh.socketRedirect");
    if (!redirectWas) spdlog::info("same-node socket redirection (sockops + sk_msg) enabled on {}", cgroupPath);
  } else {
    if (auto st = redirect_->disable(); !st) return st.error().wrap("disabling mesh.socketRedirect");
    if (redirectWas) spdlog::info("same-node socket redirection disabled; open redirected sockets drain first");
  }

  snapshot.version = nextVersion_++;
  spdlog::info("config version {} from {} applied: {} map writes; services +{} ~{} -{}; backends +{} -{}",
               snapshot.version, snapshot.source, plan->ops.size(), plan->servicesAdded, plan->servicesChanged,
               plan->servicesRemoved, plan->backendsAdded, plan->backendsRemoved);
  snapshot_ = std::make_shared<const state::Snapshot>(std::move(snapshot));
  desired_ = std::move(*desired);
  firstSnapshotApplied_ = true;  // the hooks were attached above, before the maps
  return {};
}

}  // namespace nodemesh::daemon
