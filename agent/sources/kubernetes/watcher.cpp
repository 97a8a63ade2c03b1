#include "sources/kubernetes/watcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <thread>

namespace nodemesh::kube {
namespace {

void defaultSleep(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!stop.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

// The code of a Kubernetes Status object, or 0.
long statusCode(const nlohmann::json& status) {
  if (!status.is_object()) return 0;
  auto it = status.find("code");
  return it != status.end() && it->is_number_integer() ? it->get<long>() : 0;
}

std::string statusMessage(const nlohmann::json& status) {
  if (!status.is_object()) return "";
  auto it = status.find("message");
  return it != status.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string metaVersion(const nlohmann::json& object) {
  if (!object.is_object()) return "";
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return "";
  auto rv = md->find("resourceVersion");
  return rv != md->end() && rv->is_string() ? rv->get<std::string>() : "";
}

}  // namespace

std::chrono::milliseconds BackoffPolicy::base(unsigned failures) const {
  auto d = initial;
  for (unsigned i = 1; i < failures && d < max; ++i) d *= 2;
  return std::min(d, max);
}

ResourceWatcher::ResourceWatcher(const ApiClient& client, ResourceSpec spec, WatchSink sink, BackoffPolicy backoff,
                                 WatchTiming timing)
    : client_(client), spec_(std::move(spec)), sink_(std::move(sink)), backoff_(std::move(backoff)), timing_(timing) {
  if (!backoff_.sleep) backoff_.sleep = defaultSleep;
  if (!backoff_.random) {
    auto gen = std::make_shared<std::mt19937_64>(std::random_device{}());
    backoff_.random = [gen] { return std::uniform_real_distribution<double>(0.0, 1.0)(*gen); };
  }
}

std::string ResourceWatcher::resourceVersion() const {
  std::lock_guard lock(rvMu_);
  return rv_;
}

void ResourceWatcher::setVersion(std::string rv) {
  std::lock_guard lock(rvMu_);
  rv_ = std::move(rv);
}

std::string ResourceWatcher::query(bool watch, const std::string& cont) const {
  std::string q = spec_.path + "?";
  if (watch) {
    q += "watch=1&resourceVersion=" + urlEncode(resourceVersion()) +
         "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timing_.watchTimeoutSeconds);
  } else {
    q += "limit=" + std::to_string(timing_.pageSize);
    if (!cont.empty()) q += "&continue=" + urlEncode(cont);
  }
  if (!spec_.fieldSelector.empty()) q += "&fieldSelector=" + urlEncode(spec_.fieldSelector);
  return q;
}

void ResourceWatcher::backoff(const std::atomic<bool>& stop) {
  ++failures_;
  auto base = backoff_.base(failures_);
  double factor = 1.0 + backoff_.jitter * (2.0 * backoff_.random() - 1.0);
  auto delay = std::chrono::milliseconds(static_cast<long long>(static_cast<double>(base.count()) * factor));
  spdlog::debug("kubernetes {}: retrying in {} ms (attempt {})", toString(spec_.kind), delay.count(), failures_);
  backoff_.sleep(delay, stop);
}

bool ResourceWatcher::list(const std::atomic<bool>& stop) {
  std::vector<nlohmann::json> items;
  std::string cont;
  std::string rv;
  do {
    auto resp = client_.get(query(false, cont), timing_.listTimeout, &stop);
    if (!resp) {
      spdlog::warn("kubernetes {}: list failed: {}", toString(spec_.kind), resp.error().message);
      return false;
    }
    auto body = nlohmann::json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
    if (resp->status == 410 && !cont.empty()) {
      // The continue token expired between pages: start the list over.
      spdlog::info("kubernetes {}: list continuation expired (410), listing again", toString(spec_.kind));
      items.clear();
      cont.clear();
      continue;
    }
    if (resp->status != 200) {
      spdlog::warn("kubernetes {}: list {} returned HTTP {}: {}", toString(spec_.kind), spec_.path, resp->status,
                   body.is_discarded() ? resp->body.substr(0, 200) : statusMessage(body));
      return false;
    }
    if (body.is_discarded() || !body.is_object() || !body.contains("items") ||
        !(body["items"].is_array() || body["items"].is_null())) {
      spdlog::warn("kubernetes {}: list {} returned a body that is not a {}List", toString(spec_.kind), spec_.path,
                   toString(spec_.kind));
      return false;
    }
    if (body["items"].is_array())
      for (auto& item : body["items"]) items.push_back(std::move(item));
    cont.clear();
    if (auto md = body.find("metadata"); md != body.end() && md->is_object()) {
      if (auto c = md->find("continue"); c != md->end() && c->is_string()) cont = c->get<std::string>();
      if (auto v = md->find("resourceVersion"); v != md->end() && v->is_string()) rv = v->get<std::string>();
    }
  } while (!cont.empty() && !stop.load());
  if (stop.load()) return false;
  if (rv.empty()) {
    spdlog::warn("kubernetes {}: list has no metadata.resourceVersion; cannot watch from it", toString(spec_.kind));
    return false;
  }
  spdlog::debug("kubernetes {}: listed {} objects at resourceVersion {}", toString(spec_.kind), items.size(), rv);
  sink_.replaceAll(std::move(items));
  setVersion(rv);
  ++lists_;
  return true;
}

// One complete line of a watch stream. Returns false to end the stream.
bool ResourceWatcher::handleLine(std::string_view line, WatchOutcome& outcome) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
  auto ev = nlohmann::json::parse(line, nullptr, false);
  if (ev.is_discarded() || !ev.is_object() || !ev.contains("type") || !ev["type"].is_string() ||
      !ev.contains("object")) {
    spdlog::warn("kubernetes {}: skipping a watch event that is not {{\"type\",\"object\"}} JSON: {:.200}",
                 toString(spec_.kind), line);
    return true;
  }
  const std::string type = ev["type"].get<std::string>();
  const nlohmann::json& object = ev["object"];
  if (type == "ERROR") {
    long code = statusCode(object);
    if (code == 410) {
      spdlog::info("kubernetes {}: resourceVersion {} is gone (410: {}), listing again", toString(spec_.kind),
                   resourceVersion(), statusMessage(object));
      outcome = WatchOutcome::kRelist;
    } else {
      spdlog::warn("kubernetes {}: watch error {}: {}", toString(spec_.kind), code, statusMessage(object));
      outcome = WatchOutcome::kBackoff;
    }
    return false;
  }
  std::string rv = metaVersion(object);
  if (type == "BOOKMARK") {
    if (!rv.empty()) setVersion(rv);
    return true;
  }
  EventType et;
  if (type == "ADDED") {
    et = EventType::kAdded;
  } else if (type == "MODIFIED") {
    et = EventType::kModified;
  } else if (type == "DELETED") {
    et = EventType::kDeleted;
  } else {
    spdlog::warn("kubernetes {}: skipping watch event of unknown type \"{}\"", toString(spec_.kind), type);
    return true;
  }
  sink_.event(et, object);
  if (!rv.empty()) setVersion(rv);
  return true;
}

ResourceWatcher::WatchOutcome ResourceWatcher::watch(const std::atomic<bool>& stop) {
  std::string buffer;
  WatchOutcome outcome = WatchOutcome::kReconnect;
  bool delivered = false;
  auto onData = [&](std::string_view data) {
    buffer.append(data);
    std::size_t start = 0;
    for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      delivered = true;
      if (!handleLine(std::string_view(buffer).substr(start, nl - start), outcome)) {
        buffer.clear();
        return false;
      }
    }
    buffer.erase(0, start);
    return true;
  };
  auto started = std::chrono::steady_clock::now();
  auto end = client_.stream(query(true, ""), std::chrono::seconds(timing_.watchTimeoutSeconds + 60), onData, &stop);
  if (!end) {
    spdlog::warn("kubernetes {}: watch: {}", toString(spec_.kind), end.error().message);
    return WatchOutcome::kBackoff;
  }
  if (end->status == 410) {
    spdlog::info("kubernetes {}: resourceVersion {} is gone (HTTP 410), listing again", toString(spec_.kind),
                 resourceVersion());
    return WatchOutcome::kRelist;
  }
  if (end->status != 200 && end->status != 0) {
    auto body = nlohmann::json::parse(end->errorBody, nullptr, false);
    if (statusCode(body) == 410) return WatchOutcome::kRelist;
    spdlog::warn("kubernetes {}: watch returned HTTP {}: {}", toString(spec_.kind), end->status,
                 body.is_discarded() ? end->errorBody.substr(0, 200) : statusMessage(body));
    return WatchOutcome::kBackoff;
  }
  if (end->aborted) return outcome;  // an ERROR event, or stop
  if (!end->clean) {
    if (delivered) failures_ = 0;  // it was working: start the backoff over
    spdlog::warn("kubernetes {}: watch stream broke off at resourceVersion {}: {}", toString(spec_.kind),
                 resourceVersion(), end->transportError);
    return WatchOutcome::kBackoff;
  }
  // A clean end: the server's timeoutSeconds. Reopen at once unless the
  // stream was empty and short (a server closing at once must not spin us).
  bool longEnough = std::chrono::steady_clock::now() - started >= std::chrono::seconds(1);
  return delivered || longEnough ? WatchOutcome::kReconnect : WatchOutcome::kBackoff;
}

void ResourceWatcher::run(const std::atomic<bool>& stop) {
  bool needList = true;
  while (!stop.load()) {
    if (needList) {
      if (!list(stop)) {
        if (!stop.load()) backoff(stop);
        continue;
      }
      failures_ = 0;
      needList = false;
    }
    WatchOutcome outcome = watch(stop);
    if (stop.load()) break;
    switch (outcome) {
      case WatchOutcome::kRelist:
        needList = true;
        break;
      case WatchOutcome::kReconnect:
        failures_ = 0;
        break;
      case WatchOutcome::kBackoff:
        backoff(stop);
        break;
    }
  }
}

}  // namespace nodemesh::kube
