// The node's mesh proxy: what the agent runs for services in mtls mode.
//
//   outbound  captured app connection (127.0.0.1/[::1]/node address :15001)
//             -> CaptureLookup (original VIP:port, client cgroup)
//             -> workload, service, endpoint
//             -> same node: authorization, plain TCP to the endpoint
//             -> peer node: HBONE (HTTP/2 CONNECT over TLS 1.3 mTLS with the
//                client workload's certificate), pooled per (identity, peer)
//   inbound   HBONE on nodeAddress:15008, node certificate, client verified;
//             per CONNECT: local destination only, authorization, tenancy,
//             plain TCP to the workload
//
// N shared-nothing io_uring workers (MeshWorker), each with its own listeners
// (SO_REUSEPORT), pool, tunnels and connections. See docs/PROXY-ENGINE.md
// ("Mesh proxy") and docs/HBONE.md ("Driven by the mesh proxy").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "identity/issued_certificate.h"
#include "identity/peer_verifier.h"
#include "identity/spiffe_id.h"
#include "proxy/engine/options.h"
#include "proxy/hbone/h2_session.h"
#include "proxy/mesh/mesh_stats.h"
#include "proxy/mesh/mesh_table.h"

namespace nodemesh::proxy::mesh {

// What the BPF connect hook recorded for a captured connection.
struct CaptureRecord {
  SocketAddress originalDestination;  // the VIP:port the app dialed
  std::uint64_t cgroupId = 0;         // the connecting process's cgroup
};

// Called on a worker thread for every accepted outbound connection with the
// client's address (the proxy-side peer address); must not block and must be
// safe to call from all workers at once. An error means "not captured by our
// hook": the connection is closed and counted `uncaptured`.
using CaptureLookup = std::function<Result<CaptureRecord>(const SocketAddress& clientPeerAddress)>;

// Where certificates come from. Called on worker threads (must be cheap and
// thread-safe: CertificateCache::get is an atomic load).
struct IdentityProvider {
  // The current certificate of a workload identity; nullptr when none.
  std::function<std::shared_ptr<const identity::IssuedCertificate>(const identity::SpiffeId&)> workloadCertificate;
  // The node's own certificate (spiffe://<td>/ns/nodemesh-system/sa/nodemesh-agent) for the inbound listener.
  std::function<std::shared_ptr<const identity::IssuedCertificate>()> nodeCertificate;
  std::shared_ptr<const identity::PeerVerifier> verifier;
};

// The identity every node's HBONE listener presents (the daemon's
// kNodeNamespace / kNodeServiceAccount): the client side of a tunnel accepts
// spiffe://<trust domain>/ns/<kPeerNodeNamespace>/sa/<kPeerNodeServiceAccount> only.
inline constexpr std::string_view kPeerNodeNamespace = "nodemesh-system";
inline constexpr std::string_view kPeerNodeServiceAccount = "nodemesh-agent";

// What MeshProxyOptions::onTunnelEstablished reports.
struct TunnelInfo {
  bool inbound = false;           // accepted on the HBONE listener (else opened to a peer node)
  SocketAddress peerAddress;
  std::string peerId;             // the verified SPIFFE ID of the other end
  std::string peerCertificateSerial;  // upper-case hex, the certificate the other end presented
};

struct MeshProxyOptions {
  // Capture listeners (port 0: the kernel picks per address; see outboundAddresses()).
  std::vector<SocketAddress> outbound;
  // The HBONE listener; none: this node accepts no tunnels.
  std::optional<SocketAddress> inbound;
  unsigned workers = 0;  // 0: one per core
  // Ring and buffer knobs (listen and workers are ignored).
  EngineOptions engine;
  hbone::H2Limits h2;
  // An HBONE connection (either role) that has not completed its TLS handshake
  // by then is closed and counted (handshake_timeouts).
  std::chrono::milliseconds handshakeTimeout{10000};
  // A TCP connect to a workload (outbound to a same-node endpoint, inbound
  // for a tunnel request) that has no answer by then is cancelled and
  // counted (connect_timeouts): the outbound side tries another endpoint, a
  // tunnel request is answered 503. Without it a silent (blackholed)
  // destination holds the client for the kernel's SYN retries (~2 min).
  std::chrono::milliseconds connectTimeout{5000};
  // What a peer node must present on its HBONE listener; nullopt: the node
  // identity in the verifier's trust domain (kPeerNodeNamespace /
  // kPeerNodeServiceAccount). Anything else fails the client handshake
  // (outbound bad_certificate, mesh peer_identity_mismatch).
  std::optional<identity::SpiffeId> peerNodeIdentity;
  // A pooled client tunnel without streams for this long is closed with
  // GOAWAY (tunnels_idle_closed); 0: never.
  std::chrono::milliseconds idleTunnelTimeout{60000};
  // Outbound attempts per client connection: the first endpoint, then others
  // of the service (never one tried already) when the attempt fails before
  // the upstream answered: local connect refused/unreachable, the peer
  // answered 5xx, the tunnel failed. 1..8.
  unsigned connectAttempts = 3;
  // Passive outlier ejection, per worker: an endpoint whose attempt failed is
  // not picked for ejectionTime, doubled on each further failure up to
  // maxEjectionTime, reset by a success; when every endpoint is ejected they
  // are tried anyway.
  std::chrono::milliseconds ejectionTime{5000};
  std::chrono::milliseconds maxEjectionTime{60000};
  // Called on a worker thread whenever a tunnel's TLS handshake completes
  // (both roles); must be cheap and thread-safe. For logs and tests.
  std::function<void(const TunnelInfo&)> onTunnelEstablished;
};

class MeshWorker;
struct MeshShared;

class MeshProxy {
 public:
  // Binds every listener (per worker, SO_REUSEPORT), starts the workers and
  // returns once each serves, or the first error (nothing left running).
  static Result<std::unique_ptr<MeshProxy>> start(MeshProxyOptions options, CaptureLookup capture,
                                                  IdentityProvider identity, MeshTablePtr table);
  MeshProxy(const MeshProxy&) = delete;
  MeshProxy& operator=(const MeshProxy&) = delete;
  ~MeshProxy();  // stop()

  // Any thread: workers use `table` for connections accepted from now on
  // (existing connections keep their route). No lock on the request path.
  void update(MeshTablePtr table);
  // Closes every connection, tunnel and listener and joins the workers. Idempotent.
  void stop();

  // The bound capture listeners, in MeshProxyOptions::outbound order.
  const std::vector<SocketAddress>& outboundAddresses() const { return outbound_; }
  const std::optional<SocketAddress>& inboundAddress() const { return inbound_; }
  std::size_t workers() const;

  // Live while running; the last values after stop(). The HBONE codec
  // counters are plain integers on the worker thread, copied out at the end
  // of every completion batch in which they changed (so a worker that goes
  // idle has published everything it counted).
  MeshStats stats() const;
  std::vector<NamespaceStats> namespaceStats() const;
  EngineFeatures features() const;

 private:
  MeshProxy();

  std::unique_ptr<MeshShared> shared_;
  std::vector<std::unique_ptr<MeshWorker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<SocketAddress> outbound_;
  std::optional<SocketAddress> inbound_;
  MeshStats final_;
  EngineFeatures finalFeatures_;
  bool stopped_ = false;
};

}  // namespace nodemesh::proxy::mesh
