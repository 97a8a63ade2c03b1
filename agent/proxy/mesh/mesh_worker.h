// One thread's share of the mesh proxy: one io_uring, one provided-buffer
// ring, its listeners (capture and HBONE, SO_REUSEPORT), its HBONE pool, its
// tunnels and relays. Shared-nothing: only counters, the stop flag and the
// table pointer cross threads.
//
// Two tables of slot records, both addressed by op records in user_data:
// - Relay: one proxied connection, two sides. A side is a socket (fd) or an
//   HBONE stream (at most one side). Direction d carries bytes from side d to
//   side 1-d: socket -> socket is the engine's zero-copy path (provided
//   buffers sent as they are); socket -> stream writes into the stream's
//   bounded send buffer; stream -> socket reads at most one chunk and sends it.
// - Tunnel: one HBONE connection (client: pooled, to a peer node; server:
//   accepted on the inbound listener), a socket whose bytes go through the
//   sans-IO HboneClientConnection / HboneServerConnection.
// Relays and tunnels are split by job across relay.cpp, tunnel.cpp,
// outbound.cpp and inbound.cpp; this file's .cpp has the loop and dispatch.
#pragma once

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proxy/engine/connection.h"
#include "proxy/engine/counters.h"
#include "proxy/engine/ring.h"
#include "proxy/hbone/hbone_connection.h"
#include "proxy/mesh/mesh_op.h"
#include "proxy/mesh/mesh_proxy.h"
#include "proxy/mesh/tenancy.h"

namespace nodemesh::proxy::mesh {

// What every worker shares (owned by MeshProxy, outlives the workers).
struct MeshShared {
  MeshProxyOptions options;
  CaptureLookup capture;
  IdentityProvider identity;
  std::atomic<std::shared_ptr<const MeshTable>> table;
  std::atomic<std::uint64_t> tableVersion{0};  // bumped by update(): workers reload only on change
  std::unique_ptr<NamespaceRegistry> namespaces;
};

struct Listener {
  UniqueFd fd;
  bool inbound = false;  // HBONE (else capture)
  bool armed = false;
};

class MeshWorker {
 public:
  MeshWorker(unsigned index, MeshShared& shared, std::vector<Listener> listeners, UniqueFd wake);
  MeshWorker(const MeshWorker&) = delete;
  MeshWorker& operator=(const MeshWorker&) = delete;
  ~MeshWorker();

  Status init();  // on the worker thread
  void run();
  void requestStop();

  WorkerStats engineStats() const { return counters_.snapshot(); }
  MeshCounterValues meshStats() const { return mesh_.snapshot(); }
  // The HBONE codec counters as last published by the worker.
  void hboneStats(hbone::HboneCounters& outbound, hbone::HboneCounters& inbound) const;
  EngineFeatures features() const;

 private:
  using Clock = std::chrono::steady_clock;

  struct BufferLink {
    std::uint32_t len = 0;
    std::uint32_t off = 0;
    std::int32_t next = kNoBuffer;
  };

  struct RelayDir {  // bytes from side d to side 1-d
    // Source is a socket: received provided buffers not yet passed on.
    std::int32_t head = kNoBuffer, tail = kNoBuffer;
    std::uint16_t queued = 0;
    std::uint32_t bytes = 0;
    // Source is a stream: one chunk read from it, being sent to the sink socket.
    std::string pulled;
    std::uint32_t pulledOff = 0;
    bool recvArmed = false;
    bool sendInflight = false;
    bool stalled = false;  // -ENOBUFS: on the stall list
    bool paused = false;   // namespace over its buffer share: on its paused list
    bool eof = false;      // the source ended
    bool done = false;     // the end was passed on to the sink
  };

  static constexpr unsigned kMaxAttempts = 8;

  // Outbound, until the upstream answered: what a retry needs. The table
  // pointer keeps `service`, `source` and `endpoint` alive across updates
  // (the connection keeps its route); dropped once the relay is ready.
  struct Route {
    MeshTablePtr table;
    const MeshService* service = nullptr;
    const MeshWorkload* source = nullptr;
    const MeshEndpoint* endpoint = nullptr;  // the current attempt's
    std::uint32_t tried[kMaxAttempts] = {};  // endpoint indices in service->endpoints
    std::uint8_t attempts = 0;
  };

  struct Relay {
    UniqueFd fd[2];
    std::uint32_t slot = 0, gen = 0;
    std::uint16_t ops = 0;
    bool inUse = false, closing = false;
    bool connectInflight = false;
    bool connectTimedOut = false;  // the tick cancelled the connect (expireConnects)
    std::uint8_t connects = 0;     // connects started (retries start more): tells PendingConnects apart
    bool ready = false;         // every side connected / opened: bytes may flow
    std::int8_t streamSide = -1;  // the side that is an HBONE stream, if any
    std::int8_t connectSide = -1; // the side whose socket is connecting
    std::uint32_t tunnelSlot = 0, tunnelGen = 0;
    std::int32_t stream = 0;
    std::uint32_t ns = 0;       // worker-local namespace index
    bool holdsConnection = false;  // counted in the namespace's active connections
    bool streamGone = false;       // the stream was reset/refused: nothing to reset on close
    SocketAddress connectAddr;     // stable memory for the async connect
    Route route;                   // outbound only (route.service set) until ready
    RelayDir dir[2];
  };

  struct Tunnel {
    UniqueFd fd;
    std::uint32_t slot = 0, gen = 0;
    std::uint16_t ops = 0;
    bool inUse = false, closing = false;
    bool server = false;
    bool connected = false, connectInflight = false;
    bool recvArmed = false, stalled = false;
    bool sendInflight = false;
    bool established = false;
    bool draining = false;     // no new streams; closed when its last stream ends
    bool failed = false;       // receive() failed: flush the alert/GOAWAY, then close
    bool dirty = false;        // on the dirty list
    std::unique_ptr<hbone::HboneClientConnection> client;
    std::unique_ptr<hbone::HboneServerConnection> serverConn;
    std::shared_ptr<const identity::IssuedCertificate> cert;  // client: what it presented (kept until close)
    std::string poolKey;
    SocketAddress peerAddr;
    std::string out;
    std::size_t outOff = 0;
    std::unordered_map<std::int32_t, std::uint32_t> streams;  // stream id -> relay slot
    Clock::time_point deadline;  // handshake
    Clock::time_point idleSince; // client: when its last stream went (or it was opened)
    std::uint32_t ns = 0;        // client: the source namespace (handshake failures)
    std::uint64_t bytesIn = 0, bytesOut = 0, streamCount = 0;
    std::string peer;            // verified peer SPIFFE ID, for the close log
  };

  struct DirRef {
    std::uint32_t slot, gen;
    std::uint8_t dir;
  };

  struct NsLocal {
    NamespaceCell* cell = nullptr;
    std::uint64_t buffered = 0;
    std::uint32_t relays = 0;
    const MeshTable* limitsFrom = nullptr;
    state::TenancyLimits limits;
    std::vector<DirRef> paused;
    bool reviveQueued = false;
  };

  // ---- mesh_worker.cpp: loop, dispatch, worker-level ops, buffers
  void submit(io_uring_sqe& sqe, std::uint64_t userData);
  void dispatch(const io_uring_cqe& cqe);
  void armAccept(std::uint32_t listener);
  void armWake();
  void armTimer();
  void cancelOp(std::uint64_t userData);
  void onAccept(std::uint32_t listener, int res, bool more);
  void onTimer();
  void expireConnects(Clock::time_point now);
  void beginStop();
  void reloadTable();
  bool publish(bool force);
  void takeBuffer(Relay& r, int d, std::uint16_t bid, std::uint32_t len);
  void dropBuffer(std::uint16_t bid, std::uint32_t unsent);
  void notePeak();
  void reviveStalled();
  void growBuffers();  // on ENOBUFS: more buffers if the ring may grow
  void afterBatch();

  // ---- tenancy (relay.cpp)
  std::uint32_t nsIndex(std::string_view name);
  NamespaceWorkerCounters& nsCounters(std::uint32_t ns) { return ns_[ns].cell->perWorker[index_]; }
  bool nsMayBuffer(std::uint32_t ns);
  void nsBuffered(std::uint32_t ns, std::int64_t delta);
  void pauseForNamespace(Relay& r, int d);
  const state::TenancyLimits& nsLimits(std::uint32_t ns);

  // ---- relay.cpp
  Relay& newRelay(std::uint32_t ns);
  void relayConnect(Relay& r, int side, const SocketAddress& to);
  // Connections to local workloads leave from the node address (STRICT trusts it).
  void bindToNodeAddress(int fd, const SocketAddress& to);
  void onRelayConnect(Relay& r, int res);
  void relayReady(Relay& r);
  void armRelayRecv(Relay& r, int d);
  void maybeArmRelayRecv(Relay& r, int d);
  void onRelayRecv(Relay& r, int d, int res, std::uint32_t flags);
  void onRelaySent(Relay& r, int d, int res);
  void pump(Relay& r, int d);
  void sendHead(Relay& r, int d);
  void sendPulled(Relay& r, int d);
  void popHead(Relay& r, int d);
  void pushToStream(Relay& r, int d);
  void pullFromStream(Relay& r, int d);
  void maybeFinish(Relay& r, int d);
  void closeRelay(Relay& r, bool clean);
  void releaseRelay(Relay& r);
  Relay* relayFor(const DirRef& ref);

  // ---- tunnel.cpp
  Tunnel& newTunnel();
  hbone::H2Session* h2(Tunnel& t);
  Tunnel* tunnelOf(Relay& r);
  void markDirty(Tunnel& t);
  void serviceDirty();
  void serviceTunnel(Tunnel& t);
  void flushTunnel(Tunnel& t);
  void armTunnelRecv(Tunnel& t);
  void onTunnelConnect(Tunnel& t, int res);
  void onTunnelRecv(Tunnel& t, int res, std::uint32_t flags);
  void feedTunnel(Tunnel& t, std::span<const std::uint8_t> bytes);
  void onTunnelSent(Tunnel& t, int res);
  void closeIdleTunnels(Clock::time_point now);
  void handleStreamEvent(Tunnel& t, const hbone::StreamEvent& e);
  void detachStream(Relay& r, bool reset);
  void closeTunnel(Tunnel& t);
  void releaseTunnel(Tunnel& t);
  Tunnel* pooledTunnel(const MeshWorkload& source, const SocketAddress& peer,
                       const std::shared_ptr<const identity::IssuedCertificate>& cert);
  Tunnel* openTunnel(const MeshWorkload& source, const SocketAddress& peer,
                     std::shared_ptr<const identity::IssuedCertificate> cert, std::uint32_t ns);

  // ---- outbound.cpp
  void onOutboundAccept(UniqueFd client);
  bool allowLocal(const MeshWorkload& source, const MeshService& service, const MeshEndpoint& ep, std::uint32_t ns);
  void startUpstream(Relay& r, const MeshEndpoint& ep);
  void startLocal(Relay& r, const MeshEndpoint& ep);
  void startTunnelled(Relay& r, const MeshWorkload& source, const MeshEndpoint& ep);
  // The attempt on r.route.endpoint failed before the upstream answered:
  // eject it (when the failure says it is unhealthy) and start the next
  // attempt, or close the relay (bumping `giveUp` first, if given). True
  // when a new attempt started.
  bool retryOrClose(Relay& r, bool unhealthy, std::atomic<std::uint64_t>* giveUp = nullptr);
  const MeshEndpoint* pickEndpoint(const MeshService& service, const Route* route);
  std::uint32_t nextRandom();

  // ---- passive outlier ejection (outbound.cpp)
  using EndpointKey = std::pair<state::IpAddress, std::uint16_t>;
  struct Ejection {
    Clock::time_point until;
    std::chrono::milliseconds backoff{0};
  };
  bool ejected(const MeshEndpoint& ep, Clock::time_point now) const;
  void eject(const MeshEndpoint& ep);
  void endpointHealthy(const MeshEndpoint& ep);
  void pruneEjections(Clock::time_point now);

  // ---- inbound.cpp
  void onInboundAccept(UniqueFd fd);
  void answerInbound(Relay& r, bool connected, int connectError);
  bool authorizeInbound(const std::optional<identity::SpiffeId>& peer, const hbone::TunnelAddress& dst);
  void onInboundStream(Tunnel& t, std::int32_t stream, const hbone::TunnelAddress& dst);
  Result<std::shared_ptr<const hbone::TlsContext>> serverContext();

  const unsigned index_;
  MeshShared& shared_;
  const MeshProxyOptions& options_;
  std::vector<Listener> listeners_;
  UniqueFd wakeFd_;
  std::uint64_t wakeValue_ = 0;
  __kernel_timespec tick_{};
  std::atomic<bool> stopRequested_{false};
  bool stopping_ = false;
  std::uint64_t inflight_ = 0;
  std::uint32_t rng_ = 0x9e3779b9u;

  EngineFeatures features_;
  std::atomic<bool> multishotAccept_{true};
  std::atomic<bool> multishotRecv_{true};
  std::atomic<bool> recvCap_{true};
  bool recvProven_ = false;
  WorkerCounters counters_;
  MeshCounters mesh_;
  hbone::HboneCounters hboneOut_;  // worker-thread only
  hbone::HboneCounters hboneIn_;
  mutable std::mutex publishedMu_;
  hbone::HboneCounters publishedOut_, publishedIn_;
  bool publishPending_ = false;  // counters changed but a reader held the lock: publish soon

  MeshTablePtr table_;
  std::uint64_t tableVersion_ = ~std::uint64_t(0);
  std::shared_ptr<const hbone::TlsContext> clientCtx_;
  std::optional<identity::SpiffeId> expectedPeer_;  // what peer nodes must present
  std::map<EndpointKey, Ejection> ejections_;      // bounded: kMaxEjections
  std::shared_ptr<const hbone::TlsContext> serverCtx_;
  const identity::IssuedCertificate* serverCert_ = nullptr;  // what serverCtx_ presents
  std::shared_ptr<const identity::IssuedCertificate> serverCertRef_;

  // Declared before ring_ so the ring is torn down before buffer memory.
  BufferRing buffers_;
  std::vector<BufferLink> links_;
  Ring ring_;

  std::deque<Relay> relays_;  // deque: addresses stay put as it grows
  std::vector<std::uint32_t> freeRelays_;
  std::deque<Tunnel> tunnels_;
  std::vector<std::uint32_t> freeTunnels_;
  std::unordered_map<std::string, std::vector<std::uint32_t>> pool_;  // poolKey -> client tunnel slots
  std::vector<std::uint32_t> dirty_;                                  // tunnel slots
  std::vector<DirRef> stalled_;
  // Relays with a connect in flight, oldest first (one connect timeout for
  // all): the tick cancels those past their deadline. Entries of relays that
  // connected or closed meanwhile are skipped by generation and flag.
  struct PendingConnect {
    std::uint32_t slot, gen;
    std::uint8_t connect;  // Relay::connects when it started
    Clock::time_point deadline;
  };
  std::deque<PendingConnect> connecting_;
  std::vector<std::uint32_t> revive_;  // namespace indices with paused relays and room again
  std::vector<NsLocal> ns_;
  std::unordered_map<std::string, std::uint32_t> nsIndex_;
  std::uint32_t activeNs_ = 0;  // namespaces with relays on this worker (fair buffer share)
};

}  // namespace nodemesh::proxy::mesh
