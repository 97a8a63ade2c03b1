// The Kubernetes source: watches Services, EndpointSlices, Namespaces, Nodes
// and the Pods on this node, keeps the last-known objects, and reports a new
// state::Snapshot (translate.h) whenever the translated state changes,
// debounced. It publishes nothing until every resource has been listed once,
// so the agent never sees a half-known cluster. Pod cgroups are probed on
// disk on every change and every `rescanInterval`, so a pod whose cgroup the
// kubelet creates after the API reports the pod is picked up, and one whose
// cgroup disappears is dropped. See docs/KUBERNETES.md.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "sources/kubernetes/api_client.h"
#include "sources/kubernetes/objects.h"
#include "sources/kubernetes/pod_cgroup.h"
#include "sources/kubernetes/translate.h"
#include "sources/kubernetes/watcher.h"
#include "state/snapshot.h"

namespace nodemesh::kube {

struct KubernetesSourceOptions {
  ClientConfig client;
  std::string nodeName;                       // required; pods are selected by spec.nodeName
  std::string cgroupRoot = "/sys/fs/cgroup";  // the cgroup2 mount (discoverCgroup2Mount())
  std::optional<CgroupDriver> driver;         // nullopt: detect from the kubepods root on disk
  std::chrono::milliseconds debounce{100};
  std::chrono::milliseconds rescanInterval{5000};
  BackoffPolicy backoff;
  WatchTiming timing;
  state::MeshSettings mesh;  // trust domain, CA, proxy ports: the same for every snapshot
};

class KubernetesSource {
 public:
  using Callback = std::function<void(state::Snapshot)>;

  // The callback runs on the source's publisher thread, never concurrently
  // with itself.
  KubernetesSource(KubernetesSourceOptions options, Callback onChange);
  ~KubernetesSource();
  KubernetesSource(const KubernetesSource&) = delete;
  KubernetesSource& operator=(const KubernetesSource&) = delete;

  // Starts the watch threads and the publisher. Fails on a bad option.
  Status start();
  // Stops and joins every thread (in-flight requests are aborted). Idempotent.
  void stop();

  // For status output and tests.
  bool synced() const;                           // every kind listed at least once
  std::string resourceVersion(Kind kind) const;  // "" before the first list
  unsigned listCount(Kind kind) const;           // lists done (relists included)
  std::vector<std::string> pendingPods() const;  // opted-in pods without a cgroup yet

 private:
  void replaceAll(Kind kind, std::vector<nlohmann::json> items);
  void applyEvent(Kind kind, EventType type, const nlohmann::json& object);
  void markDirty();
  void publishLoop();
  std::optional<std::string> lookupCgroup(const PodObject& pod) const;

  KubernetesSourceOptions options_;
  Callback onChange_;
  std::unique_ptr<ApiClient> client_;
  std::map<Kind, std::unique_ptr<ResourceWatcher>> watchers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  ClusterState cluster_;                      // guarded by mu_
  std::map<Kind, bool> listed_;               // guarded by mu_
  bool dirty_ = false;                        // guarded by mu_
  std::vector<std::string> pending_;          // guarded by mu_
  std::vector<std::string> warned_;           // publisher thread only: the warnings last logged
  std::optional<state::Snapshot> published_;  // publisher thread only
};

}  // namespace nodemesh::kube
