/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one definition of every structure shared between the BPF programs and
 * the agent. BPF code includes it after vmlinux.h; C++ includes it directly.
 * Every layout is pinned by NM_ASSERT_LAYOUT below: a change that moves a
 * field breaks the build on both sides instead of corrupting live maps.
 *
 * Conventions: addresses are 16 bytes in network order (IPv4 uses addr[0]
 * only, the rest is zero); ports are in network order; family is
 * NM_FAMILY_V4 or NM_FAMILY_V6 so keys never depend on the host's AF_* values.
 */
#ifndef NODEMESH_ABI_H
#define NODEMESH_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define NM_FAMILY_V4 4
#define NM_FAMILY_V6 6

/* Load-balancing algorithm, chosen per service. */
#define NM_LB_RANDOM 0 /* uniform over the weighted slot table */
#define NM_LB_MAGLEV 1 /* consistent hash of the client (cgroup, netns) */

/* Capacities. The agent refuses a config that would exceed them. */
#define NM_MAX_SERVICES 65536      /* (VIP, port, protocol) triples */
#define NM_MAX_BACKENDS 65536      /* distinct (address, port) pairs */
#define NM_MAX_SLOTS 524288        /* both generations of every table */
#define NM_MAX_SLOTS_PER_SERVICE 16381
#define NM_MAX_UDP_REVNAT 65536

/* Slot index bit that selects one of the two table generations. */
#define NM_SLOT_GEN_BIT 0x80000000u

/* nm_services key: what the application dialed. */
struct nm_service_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;
};

/*
 * nm_services value. The agent replaces it whole, so a reader sees either
 * the old (generation, slot_count) pair or the new one, never a mix: that
 * single update is the switch-over point of every backend change.
 */
struct nm_service {
	__u32 id;         /* index into nm_svc_stats, stable for the service's life */
	__u16 slot_count; /* 0: no ready backend, connect() fails ECONNREFUSED */
	__u8 algo;        /* NM_LB_* */
	__u8 generation;  /* 0 or 1: which half of nm_slots is live */
	__u32 flags;      /* reserved for service modes; 0 today */
};

/* nm_slots key: one entry of a service's backend table. */
struct nm_slot_key {
	__u32 service_id;
	__u32 slot; /* index, with NM_SLOT_GEN_BIT set for generation 1 */
};

/* nm_backends value, keyed by a __u32 backend id. */
struct nm_backend {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 flags; /* reserved; 0 today */
};

/* A socket's original destination, for getpeername and recvmsg. */
struct nm_orig_dst {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 pad;
	/* The backend it was rewritten to: getpeername only answers with the VIP
	 * while the socket still points at this backend. */
	__u32 backend_addr[4];
	__u16 backend_port;
	__u16 pad2;
};

/* nm_udp_revnat key: an unconnected UDP socket may talk to many services. */
struct nm_udp_revnat_key {
	__u64 cookie; /* socket cookie */
	__u32 addr[4]; /* backend the datagram went to */
	__u16 port;
	__u8 family;
	__u8 pad;
	__u32 pad2;
};

/* nm_svc_stats value (per CPU), indexed by nm_service.id. */
struct nm_service_stats {
	__u64 connections;  /* connect() rewrites (TCP, connected UDP) */
	__u64 datagrams;    /* sendmsg() rewrites (unconnected UDP) */
	__u64 no_backend;   /* refused: the service had no ready backend */
};

#ifdef __cplusplus
#define NM_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define NM_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
#define NM_OFFSETOF(t, m) __builtin_offsetof(t, m)

#define NM_ASSERT_LAYOUT(type, size) NM_STATIC_ASSERT(sizeof(struct type) == (size), #type " size changed: update both sides and bump the pin layout")
NM_ASSERT_LAYOUT(nm_service_key, 20);
NM_ASSERT_LAYOUT(nm_service, 12);
NM_ASSERT_LAYOUT(nm_slot_key, 8);
NM_ASSERT_LAYOUT(nm_backend, 20);
NM_ASSERT_LAYOUT(nm_orig_dst, 40);
NM_ASSERT_LAYOUT(nm_udp_revnat_key, 32);
NM_ASSERT_LAYOUT(nm_service_stats, 24);
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_service_key, port) == 16, "nm_service_key.port moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_service, slot_count) == 4, "nm_service.slot_count moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_backend, port) == 16, "nm_backend.port moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_orig_dst, backend_addr) == 20, "nm_orig_dst.backend_addr moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_udp_revnat_key, addr) == 8, "nm_udp_revnat_key.addr moved");

#endif /* NODEMESH_ABI_H */
