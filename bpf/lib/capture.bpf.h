/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Mesh capture. connect4/6 steers a meshed workload's TCP connect to an mtls
 * service to the node proxy instead of a backend (the proxy must see the
 * service to route it), and remembers the VIP in the socket's nm_sock_orig
 * storage with NM_ORIG_F_CAPTURED. Once the handshake completes, sockops
 * publishes {VIP, workload cgroup} in nm_capture under the client's own
 * (address, port), which is what the proxy's accept() returns as the peer.
 */
#ifndef NM_CAPTURE_BPF_H
#define NM_CAPTURE_BPF_H

#include "lib/workload.bpf.h"

#define NM_AF_INET 2
#define NM_AF_INET6 10
#define NM_ENOBUFS 105
#define NM_ECONNREFUSED 111

/*
 * Where a captured connect goes, for a client in the mesh. Returns 1 when
 * the client is not meshed (plain L4 for it), 0 with the target (dst, family, port) set,
 * or -errno when it must fail: a meshed client is never let past the proxy,
 * so "nowhere to steer to" refuses the connect instead of bypassing mTLS.
 *
 * Host network namespace: the proxy's loopback listener (127.0.0.1 or ::1).
 * Any other netns (a pod) cannot reach the host's loopback, so it is sent
 * to the node address, where the proxy listens too.
 */
static __always_inline int nm_capture_target(struct bpf_sock_addr *ctx, bool v4, __u32 *dst, __u8 *family,
					     __u16 *port, __u64 *wl_id)
{
	const struct nm_mesh_config *cfg = nm_mesh_cfg();
	const struct nm_workload *wl;

	if (!cfg)
		return 1;
	wl = nm_current_workload(ctx, cfg, wl_id);
	if (!wl || !(wl->flags & NM_WL_F_MESHED))
		return 1;
	if (!cfg->outbound_port)
		return -NM_ECONNREFUSED;
	*port = cfg->outbound_port;
	if (bpf_get_netns_cookie(ctx) == cfg->host_netns_cookie) {
		if (v4) {
			dst[0] = bpf_htonl(0x7f000001); /* 127.0.0.1 */
			*family = NM_FAMILY_V4;
		} else {
			dst[3] = bpf_htonl(1); /* ::1 */
			*family = NM_FAMILY_V6;
		}
		return 0;
	}
	if (v4) {
		if (!(cfg->flags & NM_MESH_F_NODE4))
			return -NM_ECONNREFUSED;
		dst[0] = cfg->node_addr4;
		*family = NM_FAMILY_V4;
		return 0;
	}
	if (!(cfg->flags & NM_MESH_F_NODE6))
		return -NM_ECONNREFUSED;
	dst[0] = cfg->node_addr6[0];
	dst[1] = cfg->node_addr6[1];
	dst[2] = cfg->node_addr6[2];
	dst[3] = cfg->node_addr6[3];
	*family = NM_FAMILY_V6;
	return 0;
}

/* (family, address) of a sock_ops endpoint in nm_* form; a v4-mapped IPv6
 * address is IPv4, as the proxy's IPv4 listener sees it. */
static __always_inline void nm_sockops_addr(__u32 sk_family, __u32 ip4, const __u32 *ip6, __u32 *addr,
					    __u8 *family)
{
	if (sk_family == NM_AF_INET) {
		addr[0] = ip4;
		*family = NM_FAMILY_V4;
		return;
	}
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff)) {
		addr[0] = ip6[3];
		*family = NM_FAMILY_V4;
		return;
	}
	addr[0] = ip6[0];
	addr[1] = ip6[1];
	addr[2] = ip6[2];
	addr[3] = ip6[3];
	*family = NM_FAMILY_V6;
}

/*
 * ACTIVE_ESTABLISHED runs in tcp_finish_connect(), before the client sends
 * the handshake's final ACK: the server side cannot complete the connection
 * (so the proxy cannot accept it) before this write is visible.
 */
static __always_inline void nm_publish_capture(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct nm_capture_key key = {};
	struct nm_capture val = {};
	struct nm_orig_dst *od;
	__u32 local6[4], remote6[4], remote[4] = {};
	__u8 remote_family;
	__u16 remote_port;

	if (!sk)
		return;
	od = bpf_sk_storage_get(&nm_sock_orig, sk, 0, 0);
	if (!od || !(od->flags & NM_ORIG_F_CAPTURED))
		return;

	remote6[0] = skops->remote_ip6[0];
	remote6[1] = skops->remote_ip6[1];
	remote6[2] = skops->remote_ip6[2];
	remote6[3] = skops->remote_ip6[3];
	nm_sockops_addr(skops->family, skops->remote_ip4, remote6, remote, &remote_family);
	/* sock_ops keeps remote_port in network order in the upper half. */
	remote_port = bpf_htons((__u16)bpf_ntohl(skops->remote_port));
	/* Only while the socket still points at the proxy it was steered to (a
	 * socket that failed and was reconnected elsewhere keeps its storage). */
	if (remote_port != od->backend_port || remote[0] != od->backend_addr[0] || remote[1] != od->backend_addr[1] ||
	    remote[2] != od->backend_addr[2] || remote[3] != od->backend_addr[3])
		return;

	local6[0] = skops->local_ip6[0];
	local6[1] = skops->local_ip6[1];
	local6[2] = skops->local_ip6[2];
	local6[3] = skops->local_ip6[3];
	nm_sockops_addr(skops->family, skops->local_ip4, local6, key.addr, &key.family);
	key.port = bpf_htons((__u16)skops->local_port); /* host order in sock_ops */

	__builtin_memcpy(val.addr, od->addr, sizeof(val.addr));
	val.port = od->port;
	val.family = od->family;
	val.cgroup_id = od->cgroup_id;
	bpf_map_update_elem(&nm_capture, &key, &val, BPF_ANY);
}

#endif /* NM_CAPTURE_BPF_H */
