/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket-LB maps. Pinned by name under the agent's pin root, so a restarted
 * agent (or a newly loaded program) sees the same state. */
#ifndef NM_MAPS_BPF_H
#define NM_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "nodemesh/abi.h"

/* key: what the app dialed (VIP, port, proto); value: nm_service.
 * Written by the agent's datapath syncer; read by connect/sendmsg. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct nm_service_key);
	__type(value, struct nm_service);
} nm_services SEC(".maps");

/* key: (service id, generation|slot); value: backend id. A service's table
 * has slot_count slots, filled by weight (random) or by Maglev population.
 * Written by the agent; read by connect/sendmsg. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct nm_slot_key);
	__type(value, __u32);
} nm_slots SEC(".maps");

/* key: backend id; value: nm_backend (address, port). Written by the agent
 * before any slot points at the id and deleted after none does. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_BACKENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, struct nm_backend);
} nm_backends SEC(".maps");

/* key: service id; value: per-CPU counters. Written by the hooks; summed
 * by the agent for meshctl. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NM_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, struct nm_service_stats);
} nm_svc_stats SEC(".maps");

/* Per-socket storage: the VIP a connected socket dialed, written by connect
 * and read by getpeername/recvmsg. Freed with the socket, so it never fills. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, int);
	__type(value, struct nm_orig_dst);
} nm_sock_orig SEC(".maps");

/* key: (socket cookie, backend); value: the VIP an unconnected UDP socket
 * sent to, so recvmsg can show the reply as coming from the VIP. LRU: there
 * is no hook when a UDP socket closes. Written by sendmsg, read by recvmsg. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NM_MAX_UDP_REVNAT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct nm_udp_revnat_key);
	__type(value, struct nm_orig_dst);
} nm_udp_revnat SEC(".maps");

/* key: workload cgroup id (__u64); value: nm_workload (meshed, strict).
 * Only workloads with something to do are listed (meshed or STRICT).
 * Written by the agent from the snapshot's workloads; read by connect
 * (capture) and cgroup_skb/ingress (STRICT). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_MAX_WORKLOADS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u64);
	__type(value, struct nm_workload);
} nm_workloads SEC(".maps");

/* key: workload cgroup id; value: per-CPU counters. The agent creates the
 * entry (zeroed) with the nm_workloads entry and deletes it with it; the
 * hooks only update existing entries, so nothing here outlives a workload. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, NM_MAX_WORKLOADS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u64);
	__type(value, struct nm_workload_stats);
} nm_workload_stats SEC(".maps");

/* key: 0; value: nm_mesh_config (proxy port, node addresses, host netns).
 * Written by the agent; read by connect. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, struct nm_mesh_config);
} nm_mesh_config SEC(".maps");

/* key: the captured client socket (family, address, port) as the proxy's
 * accept() sees its peer; value: the VIP it dialed and its workload cgroup.
 * Written by sockops at ACTIVE_ESTABLISHED (before the final ACK leaves, so
 * before the proxy can accept); read-and-deleted by the proxy.
 * LRU, not HASH: an entry whose accept never comes (the proxy died, the
 * client gave up, a foreign listener on the port) must not stay forever and
 * fill the map; with LRU the oldest such entries are evicted first, and an
 * entry normally lives for microseconds, so eviction of a live one needs
 * NM_MAX_CAPTURES handshakes to finish while the proxy accepts none. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NM_MAX_CAPTURES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct nm_capture_key);
	__type(value, struct nm_capture);
} nm_capture SEC(".maps");

/* key: prefix (LPM, IPv4 v4-mapped); value: unused (1). The sources that
 * inbound STRICT lets through: the node's own addresses, 127.0.0.0/8, ::1.
 * Written by the agent; read by cgroup_skb/ingress. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NM_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct nm_node_addr_key);
	__type(value, __u32);
} nm_node_addrs SEC(".maps");

#endif /* NM_MAPS_BPF_H */
