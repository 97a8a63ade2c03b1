#include "proxy/mesh/mesh_proxy.h"

#include <sys/eventfd.h>

#include <algorithm>

#include "proxy/engine/socket.h"
#include "proxy/engine/worker_threads.h"
#include "proxy/mesh/mesh_worker.h"

namespace nodemesh::proxy::mesh {

MeshProxy::MeshProxy() = default;

MeshProxy::~MeshProxy() { stop(); }

Result<std::unique_ptr<MeshProxy>> MeshProxy::start(MeshProxyOptions options, CaptureLookup capture,
                                                    IdentityProvider identity, MeshTablePtr table) {
  if (!capture) return Error{"mesh proxy needs a capture lookup", EINVAL};
  if (!identity.verifier) return Error{"mesh proxy needs a peer verifier", EINVAL};
  if (options.outbound.empty() && !options.inbound) return Error{"mesh proxy has no listener to serve", EINVAL};
  if (options.workers == 0) options.workers = std::max(1u, std::thread::hardware_concurrency());
  if (options.engine.max_buffers_per_direction == 0) options.engine.max_buffers_per_direction = 1;

  std::unique_ptr<MeshProxy> proxy(new MeshProxy());
  auto shared = std::make_unique<MeshShared>();
  shared->options = options;
  shared->capture = std::move(capture);
  shared->identity = std::move(identity);
  shared->table.store(std::move(table));
  shared->tableVersion.store(1);
  shared->namespaces = std::make_unique<NamespaceRegistry>(options.workers);
  proxy->shared_ = std::move(shared);

  // Every worker binds each address; port 0 resolves on the first bind and
  // the other workers join that reuseport group.
  std::vector<SocketAddress> addrs = options.outbound;
  if (options.inbound) addrs.push_back(*options.inbound);
  std::vector<std::vector<Listener>> perWorker(options.workers);
  for (unsigned w = 0; w < options.workers; ++w) {
    for (std::size_t j = 0; j < addrs.size(); ++j) {
      const bool inbound = options.inbound && j == addrs.size() - 1;
      auto fd = makeReusePortListener(addrs[j], options.engine.listen_backlog);
      if (!fd) return fd.error().wrap(inbound ? "mesh proxy HBONE listener" : "mesh proxy capture listener");
      if (w == 0) {
        auto bound = localAddress(fd->get());
        if (!bound) return bound.error().wrap("mesh proxy listener");
        addrs[j] = bound.value();
      }
      perWorker[w].push_back(Listener{std::move(fd).value(), inbound, false});
    }
  }
  proxy->outbound_.assign(addrs.begin(), addrs.begin() + std::ptrdiff_t(options.outbound.size()));
  if (options.inbound) proxy->inbound_ = addrs.back();

  for (unsigned w = 0; w < options.workers; ++w) {
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) return Error::sys("eventfd for mesh worker " + std::to_string(w));
    proxy->workers_.push_back(
        std::make_unique<MeshWorker>(w, *proxy->shared_, std::move(perWorker[w]), std::move(wake)));
  }
  if (Status s = startWorkerThreads(proxy->workers_, proxy->threads_); !s) {
    proxy->stop();
    return s.error();
  }
  return proxy;
}

void MeshProxy::update(MeshTablePtr table) {
  shared_->table.store(std::move(table), std::memory_order_release);
  shared_->tableVersion.fetch_add(1, std::memory_order_acq_rel);
}

void MeshProxy::stop() {
  if (stopped_) return;
  for (auto& w : workers_) w->requestStop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  final_ = stats();
  finalFeatures_ = features();
  stopped_ = true;
  workers_.clear();  // closes listeners and eventfds, tears the rings down
}

std::size_t MeshProxy::workers() const { return shared_ ? shared_->options.workers : 0; }

MeshStats MeshProxy::stats() const {
  if (stopped_) return final_;
  MeshStats s;
  for (const auto& w : workers_) {
    s.mesh += w->meshStats();
    s.engine += w->engineStats();
    w->hboneStats(s.outbound, s.inbound);
  }
  s.featuresMissing = features().missing();
  return s;
}

std::vector<NamespaceStats> MeshProxy::namespaceStats() const {
  return shared_ ? shared_->namespaces->snapshot() : std::vector<NamespaceStats>{};
}

EngineFeatures MeshProxy::features() const {
  if (stopped_) return finalFeatures_;
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

}  // namespace nodemesh::proxy::mesh
