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

#endif /* NM_MAPS_BPF_H */
