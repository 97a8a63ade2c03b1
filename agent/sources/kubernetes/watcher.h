// List-then-watch for one resource, the way client-go's reflector does it:
//  1. LIST (paged with limit/continue); only when every page has been read and
//     parsed is the whole item list handed over, so a half-read list never
//     replaces the cache;
//  2. WATCH from the list's resourceVersion with allowWatchBookmarks, reading
//     the chunked body as newline-delimited JSON events; every event and
//     BOOKMARK advances the resourceVersion;
//  3. a stream that ends after timeoutSeconds is reopened at once from the
//     last resourceVersion; one that breaks off (or an HTTP/transport error) is
//     reopened after exponential backoff with jitter; "410 Gone" (an ERROR
//     event or the HTTP status) means the version is too old: relist.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sources/kubernetes/api_client.h"
#include "sources/kubernetes/objects.h"

namespace nodemesh::kube {

enum class EventType { kAdded, kModified, kDeleted };

// Where a watcher delivers; called on the watcher's thread.
struct WatchSink {
  // A complete list: replaces everything known about the kind.
  std::function<void(std::vector<nlohmann::json> items)> replaceAll;
  std::function<void(EventType type, const nlohmann::json& object)> event;
};

struct BackoffPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30000};
  double jitter = 0.2;  // delay is scaled by a factor in [1 - jitter, 1 + jitter]
  // Waits, returning early when stop is set; injectable so tests run fast and
  // record the delays.
  std::function<void(std::chrono::milliseconds, const std::atomic<bool>& stop)> sleep;
  std::function<double()> random;  // uniform in [0, 1)

  // The delay before attempt `failures` (1-based), before jitter is applied.
  std::chrono::milliseconds base(unsigned failures) const;
};

struct ResourceSpec {
  Kind kind;
  std::string path;           // "/api/v1/services"
  std::string fieldSelector;  // "spec.nodeName=node-a" or empty
};

struct WatchTiming {
  int watchTimeoutSeconds = 300;  // asked of the server; the client waits 60 s longer
  std::chrono::seconds listTimeout{60};
  unsigned pageSize = 500;
};

class ResourceWatcher {
 public:
  ResourceWatcher(const ApiClient& client, ResourceSpec spec, WatchSink sink, BackoffPolicy backoff,
                  WatchTiming timing);

  // Runs until stop is set.
  void run(const std::atomic<bool>& stop);

  // The resourceVersion the next watch would resume from ("" before the first list).
  std::string resourceVersion() const;
  unsigned lists() const { return lists_.load(); }

 private:
  enum class WatchOutcome { kReconnect, kBackoff, kRelist };
  bool list(const std::atomic<bool>& stop);
  WatchOutcome watch(const std::atomic<bool>& stop);
  bool handleLine(std::string_view line, WatchOutcome& outcome);
  void backoff(const std::atomic<bool>& stop);
  std::string query(bool watch, const std::string& cont) const;
  void setVersion(std::string rv);

  const ApiClient& client_;
  ResourceSpec spec_;
  WatchSink sink_;
  BackoffPolicy backoff_;
  WatchTiming timing_;
  unsigned failures_ = 0;
  std::atomic<unsigned> lists_{0};
  std::string rv_;  // guarded by rvMu_
  mutable std::mutex rvMu_;
};

}  // namespace nodemesh::kube
