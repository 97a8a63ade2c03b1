#include "proxy/engine/engine.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <utility>

#include "proxy/engine/socket.h"
#include "proxy/engine/worker.h"
#include "proxy/engine/worker_threads.h"

namespace nodemesh::proxy {

Result<std::unique_ptr<Engine>> Engine::start(EngineOptions options, Router router) {
  if (!router) return Error{"proxy engine needs a router", EINVAL};
  if (options.workers == 0) options.workers = std::max(1u, std::thread::hardware_concurrency());
  if (options.max_buffers_per_direction == 0) options.max_buffers_per_direction = 1;

  std::unique_ptr<Engine> engine(new Engine());
  SocketAddress addr = options.listen;
  for (unsigned i = 0; i < options.workers; ++i) {
    auto listener = makeReusePortListener(addr, options.listen_backlog);
    if (!listener) return listener.error().wrap("proxy worker " + std::to_string(i));
    if (i == 0) {
      // Port 0 resolves on the first bind; the rest join its reuseport group.
      auto bound = localAddress(listener->get());
      if (!bound) return bound.error().wrap("proxy listener");
      addr = bound.value();
      engine->address_ = addr;
    }
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) return Error::sys("eventfd for proxy worker " + std::to_string(i));
    engine->workers_.push_back(
        std::make_unique<Worker>(i, options, router, std::move(listener.value()), std::move(wake)));
  }

  if (Status s = startWorkerThreads(engine->workers_, engine->threads_); !s) {
    engine->stop();
    return s.error();
  }
  return engine;
}

Engine::~Engine() { stop(); }

void Engine::stop() {
  for (auto& w : workers_) w->requestStop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (workers_.empty()) return;
  final_features_ = features();
  final_stats_.clear();
  for (const auto& w : workers_) final_stats_.push_back(w->stats());
  workers_.clear();  // closes listeners and eventfds, tears the rings down
}

WorkerStats Engine::stats(size_t worker) const {
  if (workers_.empty()) return worker < final_stats_.size() ? final_stats_[worker] : WorkerStats{};
  return worker < workers_.size() ? workers_[worker]->stats() : WorkerStats{};
}

WorkerStats Engine::totals() const {
  WorkerStats t;
  for (size_t i = 0; i < workers(); ++i) t += stats(i);
  return t;
}

EngineFeatures Engine::features() const {
  if (workers_.empty()) return final_features_;
  EngineFeatures f;
  for (const auto& w : workers_) {
    EngineFeatures g = w->features();
    f.single_issuer &= g.single_issuer;
    f.defer_taskrun &= g.defer_taskrun;
    f.multishot_accept &= g.multishot_accept;
    f.multishot_recv &= g.multishot_recv;
    f.multishot_recv_cap &= g.multishot_recv_cap;
  }
  return f;
}

}  // namespace nodemesh::proxy
