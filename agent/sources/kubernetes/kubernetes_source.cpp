#include "sources/kubernetes/kubernetes_source.h"

#include <spdlog/spdlog.h>

namespace nodemesh::kube {
namespace {

constexpr Kind kKinds[] = {Kind::kNamespace, Kind::kService, Kind::kEndpointSlice, Kind::kPod, Kind::kNode};

std::string path(Kind kind) {
  switch (kind) {
    case Kind::kService:
      return "/api/v1/services";
    case Kind::kEndpointSlice:
      return "/apis/discovery.k8s.io/v1/endpointslices";
    case Kind::kNamespace:
      return "/api/v1/namespaces";
    case Kind::kPod:
      return "/api/v1/pods";
    case Kind::kNode:
      return "/api/v1/nodes";
  }
  return "";
}

// Calls f(cache, decoder) with the cache of `kind` and its decoder, so the
// list and event paths are written once for every kind.
template <typename F>
void withCache(ClusterState& c, Kind kind, F&& f) {
  switch (kind) {
    case Kind::kService:
      return f(c.services, decodeService);
    case Kind::kEndpointSlice:
      return f(c.endpointSlices, decodeEndpointSlice);
    case Kind::kNamespace:
      return f(c.namespaces, decodeNamespace);
    case Kind::kPod:
      return f(c.pods, decodePod);
    case Kind::kNode:
      return f(c.nodes, decodeNode);
  }
}

// The cache key of an object from its metadata alone (deletions need nothing else).
std::optional<std::string> keyOf(const nlohmann::json& object) {
  if (!object.is_object()) return std::nullopt;
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return std::nullopt;
  auto name = md->find("name");
  if (name == md->end() || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  auto ns = md->find("namespace");
  std::string n = ns != md->end() && ns->is_string() ? ns->get<std::string>() : "";
  return n.empty() ? name->get<std::string>() : n + "/" + name->get<std::string>();
}

template <typename T>
using Decoder = Result<T> (*)(const nlohmann::json&);

// Decodes into the map; a malformed object is logged and left out (on a
// modification the last good version stays).
template <typename T>
bool upsert(std::map<std::string, T>& into, const nlohmann::json& object, Decoder<T> decode, const char* context) {
  auto obj = decode(object);
  if (!obj) {
    spdlog::warn("kubernetes: skipping malformed object ({}): {}", context, obj.error().message);
    return false;
  }
  std::string key = obj->meta.key();
  auto it = into.find(key);
  // Unchanged in what we read (e.g. a Node heartbeat): no translation. Every
  // kubelet updates its Node regularly, so without this a large cluster would
  // make every agent retranslate several times a second for nothing.
  if (it != into.end() && it->second == *obj) return false;
  into.insert_or_assign(key, std::move(*obj));
  return true;
}

template <typename T>
std::map<std::string, T> decodeAll(const std::vector<nlohmann::json>& items, Decoder<T> decode) {
  std::map<std::string, T> out;
  for (const auto& item : items) upsert(out, item, decode, "in list");
  return out;
}

}  // namespace

KubernetesSource::KubernetesSource(KubernetesSourceOptions options, Callback onChange)
    : options_(std::move(options)), onChange_(std::move(onChange)) {}

KubernetesSource::~KubernetesSource() {
  stop();
}

Status KubernetesSource::start() {
  if (started_) return Error{"kubernetes source: already started", 0};
  if (options_.nodeName.empty())
    return Error{"kubernetes source: the node name is required (set NODE_NAME from spec.nodeName)", 0};
  if (options_.client.server.empty()) return Error{"kubernetes source: no API server address", 0};
  client_ = std::make_unique<ApiClient>(options_.client);
  for (Kind kind : kKinds) {
    ResourceSpec spec{kind, path(kind), kind == Kind::kPod ? "spec.nodeName=" + options_.nodeName : ""};
    WatchSink sink;
    sink.replaceAll = [this, kind](std::vector<nlohmann::json> items) { replaceAll(kind, std::move(items)); };
    sink.event = [this, kind](EventType type, const nlohmann::json& object) { applyEvent(kind, type, object); };
    watchers_[kind] = std::make_unique<ResourceWatcher>(*client_, std::move(spec), std::move(sink), options_.backoff,
                                                        options_.timing);
  }
  started_ = true;
  spdlog::info("kubernetes source: watching {} as node {}", options_.client.origin, options_.nodeName);
  for (Kind kind : kKinds) threads_.emplace_back([this, kind] { watchers_[kind]->run(stop_); });
  threads_.emplace_back([this] { publishLoop(); });
  return {};
}

void KubernetesSource::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

bool KubernetesSource::synced() const {
  std::lock_guard lock(mu_);
  return listed_.size() == std::size(kKinds);
}

std::string KubernetesSource::resourceVersion(Kind kind) const {
  auto it = watchers_.find(kind);
  return it == watchers_.end() ? "" : it->second->resourceVersion();
}

unsigned KubernetesSource::listCount(Kind kind) const {
  auto it = watchers_.find(kind);
  return it == watchers_.end() ? 0 : it->second->lists();
}

std::vector<std::string> KubernetesSource::pendingPods() const {
  std::lock_guard lock(mu_);
  return pending_;
}

void KubernetesSource::replaceAll(Kind kind, std::vector<nlohmann::json> items) {
  // Decode outside the lock, swap in whole.
  withCache(cluster_, kind, [&](auto& cache, auto decode) {
    auto decoded = decodeAll(items, decode);
    std::lock_guard lock(mu_);
    cache = std::move(decoded);
    listed_[kind] = true;
  });
  markDirty();
}

void KubernetesSource::applyEvent(Kind kind, EventType type, const nlohmann::json& object) {
  const std::string context = std::string(type == EventType::kAdded ? "ADDED" : "MODIFIED") + " event";
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    if (type == EventType::kDeleted) {
      auto key = keyOf(object);
      if (!key) {
        spdlog::warn("kubernetes: skipping DELETED {} event without metadata.name", toString(kind));
        return;
      }
      withCache(cluster_, kind, [&](auto& cache, auto) { cache.erase(*key); });
      changed = true;
    } else {
      withCache(cluster_, kind,
                [&](auto& cache, auto decode) { changed = upsert(cache, object, decode, context.c_str()); });
    }
  }
  if (changed) markDirty();
}

void KubernetesSource::markDirty() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

std::optional<std::string> KubernetesSource::lookupCgroup(const PodObject& pod) const {
  return findPodCgroup(options_.cgroupRoot, pod.meta.uid, pod.qosClass, options_.driver);
}

void KubernetesSource::publishLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    bool woke = cv_.wait_for(lock, options_.rescanInterval, [this] { return stop_ || dirty_; });
    if (stop_) break;
    if (woke) {
      // Debounce: let a burst of events (a relist, a rollout) settle.
      cv_.wait_for(lock, options_.debounce, [this] { return stop_.load(); });
      if (stop_) break;
    }
    dirty_ = false;
    if (listed_.size() != std::size(kKinds)) continue;  // never publish a half-known cluster

    TranslateOptions topts;
    topts.nodeName = options_.nodeName;
    topts.mesh = options_.mesh;
    auto driver = options_.driver ? options_.driver : detectCgroupDriver(options_.cgroupRoot);
    topts.servedCgroup = kubepodsRoot(driver.value_or(CgroupDriver::kSystemd));
    Translation t = translate(cluster_, topts, [this](const PodObject& p) { return lookupCgroup(p); });
    if (t.pendingPods != pending_) {
      for (const auto& p : t.pendingPods)
        spdlog::debug("kubernetes: pod {} has no cgroup under {} yet; waiting for the kubelet", p, options_.cgroupRoot);
    }
    pending_ = t.pendingPods;
    // Warnings repeat on every translation until the cluster is fixed: say each set once.
    if (t.warnings != warned_)
      for (const auto& w : t.warnings) spdlog::warn("kubernetes: {}", w);
    warned_ = t.warnings;
    if (published_ && sameState(*published_, t.snapshot)) continue;
    for (const auto& s : t.skipped) spdlog::debug("kubernetes: {}", s);
    published_ = t.snapshot;
    spdlog::info("kubernetes: state changed: {} services, {} workloads ({} pods pending), {} peer nodes, node address {}",
                 t.snapshot.services.size(), t.snapshot.workloads.size(), t.pendingPods.size(), t.snapshot.peers.size(),
                 t.snapshot.nodeAddress ? t.snapshot.nodeAddress->toString() : std::string("none"));
    lock.unlock();
    onChange_(std::move(t.snapshot));
    lock.lock();
  }
}

}  // namespace nodemesh::kube
