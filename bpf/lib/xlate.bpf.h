/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service translation on a bpf_sock_addr context: VIP -> backend on the way
 * out (connect, sendmsg), backend -> VIP on the way back (getpeername,
 * recvmsg). Helpers return 0 or -errno; the hooks map that to a verdict. */
#ifndef NM_XLATE_BPF_H
#define NM_XLATE_BPF_H

#include "lib/lb.bpf.h"
#include "lib/capture.bpf.h"

#define SYS_REJECT 0
#define SYS_PROCEED 1

/* ctx->user_port is a 32-bit field holding a network-order port in its low
 * half; the verifier only allows full-width loads of it, hence volatile. */
static __always_inline __u16 nm_ctx_port(const struct bpf_sock_addr *ctx)
{
	volatile __u32 port = ctx->user_port;

	return (__u16)port;
}

/* Fills the service key from what the app dialed. A v4-mapped IPv6 address
 * (::ffff:a.b.c.d on a dual-stack socket) is looked up as the IPv4 service. */
static __always_inline void nm_dialed_key(const struct bpf_sock_addr *ctx, struct nm_service_key *key,
					  bool v6, bool *v4mapped)
{
	*v4mapped = false;
	key->port = nm_ctx_port(ctx);
	key->proto = (__u8)ctx->protocol;
	if (!v6) {
		key->family = NM_FAMILY_V4;
		key->addr[0] = ctx->user_ip4;
		return;
	}
	key->addr[0] = ctx->user_ip6[0];
	key->addr[1] = ctx->user_ip6[1];
	key->addr[2] = ctx->user_ip6[2];
	key->addr[3] = ctx->user_ip6[3];
	key->family = NM_FAMILY_V6;
	if (key->addr[0] == 0 && key->addr[1] == 0 && key->addr[2] == bpf_htonl(0x0000ffff)) {
		*v4mapped = true;
		key->family = NM_FAMILY_V4;
		key->addr[0] = key->addr[3];
		key->addr[2] = 0;
		key->addr[3] = 0;
	}
}

/* Points the socket address at (addr, port) in the socket's own family. */
static __always_inline int nm_write_dst(struct bpf_sock_addr *ctx, const __u32 *addr, __u8 family, __u16 port,
					bool v6, bool v4mapped)
{
	if (!v6) {
		if (family != NM_FAMILY_V4)
			return -NM_ECONNREFUSED;
		ctx->user_ip4 = addr[0];
	} else if (v4mapped) {
		if (family != NM_FAMILY_V4)
			return -NM_ECONNREFUSED;
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = addr[0];
	} else {
		if (family != NM_FAMILY_V6)
			return -NM_ECONNREFUSED;
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	}
	ctx->user_port = port;
	return 0;
}

/* True when the socket address currently equals (addr, port). */
static __always_inline bool nm_ctx_is(const struct bpf_sock_addr *ctx, const __u32 *addr, __u16 port, bool v6,
				      bool v4mapped)
{
	if (nm_ctx_port(ctx) != port)
		return false;
	if (!v6)
		return ctx->user_ip4 == addr[0];
	if (v4mapped)
		return ctx->user_ip6[3] == addr[0];
	return ctx->user_ip6[0] == addr[0] && ctx->user_ip6[1] == addr[1] && ctx->user_ip6[2] == addr[2] &&
	       ctx->user_ip6[3] == addr[3];
}

static __always_inline void nm_fill_orig(struct nm_orig_dst *od, const struct nm_service_key *key,
					 const struct nm_backend *be)
{
	__builtin_memcpy(od->addr, key->addr, sizeof(od->addr));
	od->port = key->port;
	od->family = key->family;
	__builtin_memcpy(od->backend_addr, be->addr, sizeof(od->backend_addr));
	od->backend_port = be->port;
	od->flags = 0;
	od->cgroup_id = 0;
}

/*
 * The mesh path of a connect: a meshed workload dialing an mtls service is
 * steered to the node proxy without resolving the VIP. Returns 1 when the
 * client is not meshed (the caller goes on with plain L4), else 0 or -errno.
 */
static __always_inline int nm_capture_connect(struct bpf_sock_addr *ctx, const struct nm_service_key *key,
					      const struct nm_service *svc, bool v6, bool v4mapped)
{
	__u32 dst[4] = {};
	struct nm_orig_dst *od;
	__u8 family = 0;
	__u16 port = 0;
	__u64 wl_id = 0;
	int err;

	err = nm_capture_target(ctx, !v6 || v4mapped, dst, &family, &port, &wl_id);
	if (err > 0)
		return 1;
	if (!err) {
		/* Storage first: a capture the proxy cannot look up must not happen. */
		od = bpf_sk_storage_get(&nm_sock_orig, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!od)
			err = -NM_ENOBUFS;
	}
	if (!err)
		err = nm_write_dst(ctx, dst, family, port, v6, v4mapped);
	if (err) {
		nm_count(svc->id, NM_COUNT_NO_BACKEND);
		return err;
	}
	__builtin_memcpy(od->addr, key->addr, sizeof(od->addr));
	od->port = key->port;
	od->family = key->family;
	od->flags = NM_ORIG_F_CAPTURED;
	__builtin_memcpy(od->backend_addr, dst, sizeof(od->backend_addr));
	od->backend_port = port;
	od->cgroup_id = wl_id;
	nm_count(svc->id, NM_COUNT_CAPTURED);
	nm_count_workload(wl_id, NM_WL_COUNT_CAPTURED);
	return 0;
}

/*
 * Rewrites a connect()/sendmsg() to a service VIP into one of its backends
 * (or, for a meshed client of an mtls service, into the node proxy).
 * Returns 0 when the address is not a service or was rewritten, -errno when
 * the call must fail (no ready backend).
 */
static __always_inline int __nm_xlate_fwd(struct bpf_sock_addr *ctx, bool v6, bool udp_unconnected)
{
	struct nm_service_key key = {};
	const struct nm_service *svc;
	const struct nm_backend *be;
	struct nm_orig_dst *od;
	bool v4mapped;
	int err;

	nm_dialed_key(ctx, &key, v6, &v4mapped);
	svc = bpf_map_lookup_elem(&nm_services, &key);
	if (!svc)
		return 0;

	if ((svc->flags & NM_SVC_F_MTLS) && key.proto == IPPROTO_TCP && !udp_unconnected) {
		err = nm_capture_connect(ctx, &key, svc, v6, v4mapped);
		if (err <= 0)
			return err;
	}

	be = nm_select_backend(ctx, svc);
	if (!be) {
		nm_count(svc->id, NM_COUNT_NO_BACKEND);
		return -NM_ECONNREFUSED;
	}

	err = nm_write_dst(ctx, be->addr, be->family, be->port, v6, v4mapped);
	if (err) {
		nm_count(svc->id, NM_COUNT_NO_BACKEND);
		return err;
	}

	if (udp_unconnected) {
		struct nm_udp_revnat_key rk = {
			.cookie = bpf_get_socket_cookie(ctx),
			.port = be->port,
			.family = be->family,
		};
		struct nm_orig_dst orig = {};

		__builtin_memcpy(rk.addr, be->addr, sizeof(rk.addr));
		nm_fill_orig(&orig, &key, be);
		bpf_map_update_elem(&nm_udp_revnat, &rk, &orig, BPF_ANY);
		nm_count(svc->id, NM_COUNT_DATAGRAM);
		return 0;
	}

	od = bpf_sk_storage_get(&nm_sock_orig, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (od)
		nm_fill_orig(od, &key, be);
	nm_count(svc->id, NM_COUNT_CONNECT);
	return 0;
}

/* Shows the VIP instead of the backend to getpeername()/recvmsg(). */
static __always_inline void __nm_xlate_rev(struct bpf_sock_addr *ctx, bool v6, bool udp_lookup)
{
	struct nm_orig_dst *od;
	bool v4mapped = false;

	if (v6)
		v4mapped = ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
			   ctx->user_ip6[2] == bpf_htonl(0x0000ffff);

	od = bpf_sk_storage_get(&nm_sock_orig, ctx->sk, 0, 0);
	if (od && nm_ctx_is(ctx, od->backend_addr, od->backend_port, v6, v4mapped)) {
		nm_write_dst(ctx, od->addr, od->family, od->port, v6, v4mapped);
		return;
	}
	if (!udp_lookup)
		return;

	struct nm_udp_revnat_key rk = {
		.cookie = bpf_get_socket_cookie(ctx),
		.port = nm_ctx_port(ctx),
		.family = (v6 && !v4mapped) ? NM_FAMILY_V6 : NM_FAMILY_V4,
	};
	if (!v6) {
		rk.addr[0] = ctx->user_ip4;
	} else if (v4mapped) {
		rk.addr[0] = ctx->user_ip6[3];
	} else {
		rk.addr[0] = ctx->user_ip6[0];
		rk.addr[1] = ctx->user_ip6[1];
		rk.addr[2] = ctx->user_ip6[2];
		rk.addr[3] = ctx->user_ip6[3];
	}
	od = bpf_map_lookup_elem(&nm_udp_revnat, &rk);
	if (od)
		nm_write_dst(ctx, od->addr, od->family, od->port, v6, v4mapped);
}

#endif /* NM_XLATE_BPF_H */
