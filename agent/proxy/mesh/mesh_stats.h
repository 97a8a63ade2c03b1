// Counters of the mesh proxy, declared once per list (adding one is one
// line): the node-wide reasons connections end up refused or closed, and the
// per-namespace accounting of the shared proxy. Worker-local, single writer
// (relaxed atomics), summed on read.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/engine/counters.h"
#include "proxy/hbone/counters.h"

namespace nodemesh::proxy::mesh {

// X(name, help)
#define NM_MESH_COUNTERS(X)                                                                        \
  X(uncaptured, "outbound connections without a capture record (not steered by our hook): closed") \
  X(unknown_workload, "captured connections from a cgroup that is no known workload: closed")      \
  X(no_route, "captured connections to a VIP:port that is no mtls TCP service: closed")            \
  X(no_endpoint, "connections to a service without a ready endpoint: closed")                      \
  X(no_certificate, "outbound connections whose workload has no certificate yet: closed")          \
  X(policy_denials, "connections and tunnel requests refused by authorization")                    \
  X(tenancy_rejects, "connections refused because their namespace was at its connection cap")     \
  X(not_local, "tunnel requests for an address that is no workload of this node: refused (403)")   \
  X(tunnels_opened, "HBONE connections opened to peer nodes")                                      \
  X(tunnels_accepted, "HBONE connections accepted from peer nodes")                                \
  X(tunnels_closed, "HBONE connections closed (both roles)")                                       \
  X(tunnel_connect_failures, "TCP connects to a peer node's HBONE port that failed")               \
  X(handshake_timeouts, "HBONE connections closed for not finishing the TLS handshake in time")    \
  X(tunnel_streams, "tunnelled connections (CONNECT streams) opened, both roles")                  \
  X(tunnel_rejected, "CONNECTs a peer node refused (403 and friends)")                             \
  X(tunnel_resets, "tunnelled connections aborted (RST_STREAM, dying tunnel)")                     \
  X(tunnel_bytes_in, "tunnel payload received from peer nodes")                                    \
  X(tunnel_bytes_out, "tunnel payload sent to peer nodes")                                         \
  X(endpoint_retries, "outbound connections retried on another endpoint after a failed attempt")   \
  X(endpoints_ejected, "endpoints a worker skipped for a while after a failed attempt (outliers)")  \
  X(backend_unavailable, "tunnel requests answered 503: the local destination refused the connect") \
  X(connect_timeouts, "connects to a workload with no answer within connectTimeout: cancelled")    \
  X(peer_identity_mismatch, "HBONE connections refused: the peer presented no node identity")      \
  X(tunnels_idle_closed, "pooled HBONE connections closed (GOAWAY) after idleTunnelTimeout unused")

// X(name, help); connections_active and buffered_bytes are gauges.
#define NM_NAMESPACE_COUNTERS(X)                                                         \
  X(connections_total, "connections attributed to the namespace")                        \
  X(connections_active, "gauge: connections attributed to the namespace open now")       \
  X(bytes_in, "bytes from the connection's source to its destination")                   \
  X(bytes_out, "bytes from the destination back to the source")                          \
  X(handshake_failures, "HBONE handshakes that failed for the namespace's connections")   \
  X(policy_denials, "connections refused by authorization")                              \
  X(tenancy_rejects, "connections refused at the namespace's connection cap")            \
  X(buffer_pauses, "reads paused because the namespace held its share of proxy buffers") \
  X(buffered_bytes, "gauge: proxy buffer bytes held for the namespace's connections")

struct MeshCounterValues {
#define NM_FIELD(name, help) std::uint64_t name = 0;
  NM_MESH_COUNTERS(NM_FIELD)
#undef NM_FIELD
  MeshCounterValues& operator+=(const MeshCounterValues& o) {
#define NM_ADD(name, help) name += o.name;
    NM_MESH_COUNTERS(NM_ADD)
#undef NM_ADD
    return *this;
  }
  template <typename Fn>
  void forEach(Fn&& fn) const {
#define NM_VISIT(name, help) fn(#name, help, name);
    NM_MESH_COUNTERS(NM_VISIT)
#undef NM_VISIT
  }
};

struct MeshCounters {
#define NM_ATOMIC(name, help) std::atomic<std::uint64_t> name{0};
  NM_MESH_COUNTERS(NM_ATOMIC)
#undef NM_ATOMIC
  MeshCounterValues snapshot() const {
    MeshCounterValues v;
#define NM_LOAD(name, help) v.name = name.load(std::memory_order_relaxed);
    NM_MESH_COUNTERS(NM_LOAD)
#undef NM_LOAD
    return v;
  }
};

struct NamespaceStats {
  std::string name;
#define NM_FIELD(name, help) std::uint64_t name = 0;
  NM_NAMESPACE_COUNTERS(NM_FIELD)
#undef NM_FIELD
  template <typename Fn>
  void forEach(Fn&& fn) const {
#define NM_VISIT(name, help) fn(#name, help, name);
    NM_NAMESPACE_COUNTERS(NM_VISIT)
#undef NM_VISIT
  }
};

// Everything the agent shows in status and metrics, summed over workers.
struct MeshStats {
  MeshCounterValues mesh;
  WorkerStats engine;
  hbone::HboneCounters outbound;  // HBONE client side (tunnels we open)
  hbone::HboneCounters inbound;   // HBONE server side (the inbound listener)
  std::vector<std::string> featuresMissing;
};

hbone::HboneCounters& operator+=(hbone::HboneCounters& a, const hbone::HboneCounters& b);

}  // namespace nodemesh::proxy::mesh
