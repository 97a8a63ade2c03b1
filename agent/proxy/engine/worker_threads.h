// Starting a proxy's workers, shared by the L4 Engine and the MeshProxy:
// each worker initialises its ring on its own thread (SINGLE_ISSUER binds
// the ring to the thread that creates it), and start-up waits for each one
// so that a failing ring is reported before anything serves.
#pragma once

#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "common/result.h"

namespace nodemesh::proxy {

// W has `Status init()` (on the worker thread) and `void run()`. Returns the
// first worker's error; the threads already started keep running until the
// caller stops them.
template <typename W>
Status startWorkerThreads(const std::vector<std::unique_ptr<W>>& workers, std::vector<std::thread>& threads) {
  for (const auto& w : workers) {
    std::promise<Status> ready;
    std::future<Status> started = ready.get_future();
    W* worker = w.get();
    threads.emplace_back([worker, ready = std::move(ready)]() mutable {
      Status s = worker->init();
      const bool ok = s.ok();
      ready.set_value(std::move(s));
      if (ok) worker->run();
    });
    if (Status s = started.get(); !s) return s;
  }
  return {};
}

}  // namespace nodemesh::proxy
