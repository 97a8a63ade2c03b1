// The proxy engine: N shared-nothing workers, each with its own io_uring and
// SO_REUSEPORT listener on one address, forwarding TCP byte streams between
// accepted clients and the upstreams a Router picks. This is the L4 core;
// TLS and HTTP layer on top of it later.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "common/result.h"
#include "proxy/engine/counters.h"
#include "proxy/engine/options.h"

namespace nodemesh::proxy {

class Worker;

class Engine {
 public:
  // Binds the listeners (port 0: the kernel picks one, shared by every
  // worker), starts the workers and returns once each one is serving, or the
  // first worker's error (the others are stopped again).
  static Result<std::unique_ptr<Engine>> start(EngineOptions options, Router router);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();  // stop()

  // Closes every connection and listener, drains the rings and joins the
  // workers. Idempotent; call from any thread but a worker.
  void stop();

  const SocketAddress& address() const { return address_; }  // with the bound port
  uint16_t port() const { return address_.port(); }
  size_t workers() const { return workers_.empty() ? final_stats_.size() : workers_.size(); }

  // Live while running; the last values after stop().
  WorkerStats stats(size_t worker) const;
  WorkerStats totals() const;
  // What the rings run with: a feature counts only if every worker has it.
  EngineFeatures features() const;

 private:
  Engine() = default;

  SocketAddress address_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<WorkerStats> final_stats_;  // kept by stop() so stats outlive workers
  EngineFeatures final_features_;
};

}  // namespace nodemesh::proxy
