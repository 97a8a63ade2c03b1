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
#define NM_MAX_WORKLOADS 16384     /* meshed or strict workload cgroups on one node */
#define NM_MAX_CAPTURES 65536      /* captured connections the proxy has not accepted yet */
#define NM_MAX_NODE_ADDRS 64       /* prefixes STRICT mode trusts as "from this node" */
/* Deepest cgroup level the hooks search for a workload (kubepods/qos/pod/container is 4). */
#define NM_MAX_CGROUP_LEVEL 32

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
	__u32 flags;      /* NM_SVC_F_* */
};

/* nm_service.flags */
#define NM_SVC_F_MTLS 0x1u /* TCP from meshed workloads is captured to the node proxy */

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

/* A socket's original destination, for getpeername and recvmsg (and, when
 * captured, for the sockops program that publishes it to the proxy). */
struct nm_orig_dst {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 flags; /* NM_ORIG_F_* */
	/* Where it was rewritten to (a backend, or the node proxy when captured):
	 * getpeername only answers with the VIP while the socket still points there. */
	__u32 backend_addr[4];
	__u16 backend_port;
	__u16 pad2;
	__u64 cgroup_id; /* captured: the client's workload cgroup (its nm_workloads key) */
};

/* nm_orig_dst.flags */
#define NM_ORIG_F_CAPTURED 0x1u /* steered to the node proxy, not to a backend */

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
	__u64 connections;  /* connect() rewrites to a backend (TCP, connected UDP) */
	__u64 datagrams;    /* sendmsg() rewrites (unconnected UDP) */
	__u64 no_backend;   /* refused: no ready backend, or a capture with nowhere to go */
	__u64 captured;     /* connect() steered to the node proxy (mtls, meshed client) */
};

/* nm_workloads value, keyed by the workload's cgroup id (__u64, the cgroup
 * directory's inode number). A socket belongs to the deepest registered
 * cgroup among its own and its ancestors (a pod's containers sit below it). */
struct nm_workload {
	__u32 flags; /* NM_WL_F_* */
	__u32 pad;
};

/* nm_workload.flags */
#define NM_WL_F_MESHED 0x1u /* its connects to mtls services are captured */
#define NM_WL_F_STRICT 0x2u /* inbound STRICT: SYNs from outside the node are dropped */

/* nm_workload_stats value (per CPU), keyed by the workload's cgroup id. */
struct nm_workload_stats {
	__u64 captured;     /* connects steered to the node proxy */
	__u64 strict_drops; /* SYNs dropped by inbound STRICT */
};

/* nm_mesh_config: a one-entry array (key 0). All zero until the agent writes it;
 * outbound_port 0 means "no proxy": captures are refused with ECONNREFUSED. */
struct nm_mesh_config {
	__u64 host_netns_cookie; /* sockets in this netns reach the proxy on loopback */
	__u32 node_addr4;        /* steering target for pods in their own netns (v4) */
	__u32 node_addr6[4];     /* ... and v6; valid when the NM_MESH_F_NODE* flag is set */
	__u16 outbound_port;     /* network order: the proxy's capture listener */
	__u8 flags;              /* NM_MESH_F_* */
	__u8 pad;
	__u8 wl_min_level;       /* cgroup levels that hold registered workloads, */
	__u8 wl_max_level;       /* so the ancestor search touches only those */
	__u16 pad2;
	__u32 pad3;
};

/* nm_mesh_config.flags */
#define NM_MESH_F_NODE4 0x1u  /* node_addr4 is set */
#define NM_MESH_F_NODE6 0x2u  /* node_addr6 is set */
#define NM_MESH_F_STRICT 0x4u /* some workload is STRICT: the ingress hook has work to do */

/* nm_capture key: the captured client socket as the proxy sees its peer.
 * IPv4 (also a v4-mapped dual-stack socket) uses addr[0] only. */
struct nm_capture_key {
	__u32 addr[4];
	__u16 port; /* network order */
	__u8 family;
	__u8 pad;
};

/* nm_capture value: what the client dialed and who it is. */
struct nm_capture {
	__u32 addr[4]; /* the service VIP */
	__u16 port;    /* network order */
	__u8 family;
	__u8 pad;
	__u32 pad2;
	__u64 cgroup_id; /* the client's workload cgroup (nm_workloads key) */
};

/* nm_node_addrs key (LPM trie): addresses STRICT mode treats as this node.
 * IPv4 is stored v4-mapped (::ffff:a.b.c.d, prefix + 96). */
struct nm_node_addr_key {
	__u32 prefixlen;
	__u32 addr[4];
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
NM_ASSERT_LAYOUT(nm_orig_dst, 48);
NM_ASSERT_LAYOUT(nm_udp_revnat_key, 32);
NM_ASSERT_LAYOUT(nm_service_stats, 32);
NM_ASSERT_LAYOUT(nm_workload, 8);
NM_ASSERT_LAYOUT(nm_workload_stats, 16);
NM_ASSERT_LAYOUT(nm_mesh_config, 40);
NM_ASSERT_LAYOUT(nm_capture_key, 20);
NM_ASSERT_LAYOUT(nm_capture, 32);
NM_ASSERT_LAYOUT(nm_node_addr_key, 20);
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_service_key, port) == 16, "nm_service_key.port moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_service, slot_count) == 4, "nm_service.slot_count moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_backend, port) == 16, "nm_backend.port moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_orig_dst, backend_addr) == 20, "nm_orig_dst.backend_addr moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_udp_revnat_key, addr) == 8, "nm_udp_revnat_key.addr moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_service, flags) == 8, "nm_service.flags moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_orig_dst, flags) == 19, "nm_orig_dst.flags moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_orig_dst, cgroup_id) == 40, "nm_orig_dst.cgroup_id moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_mesh_config, node_addr6) == 12, "nm_mesh_config.node_addr6 moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_mesh_config, outbound_port) == 28, "nm_mesh_config.outbound_port moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_mesh_config, wl_max_level) == 33, "nm_mesh_config.wl_max_level moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_capture_key, port) == 16, "nm_capture_key.port moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_capture, cgroup_id) == 24, "nm_capture.cgroup_id moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_node_addr_key, addr) == 4, "nm_node_addr_key.addr moved");

#endif /* NODEMESH_ABI_H */
