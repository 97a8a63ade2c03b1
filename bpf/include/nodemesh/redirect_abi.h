/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared by the same-node redirect programs (sock_redirect.bpf.c)
 * and the agent (datapath/sock_redirect.cpp). Same conventions as abi.h:
 * addresses are 16 bytes in network order (IPv4 in addr[0], rest zero; a
 * v4-mapped IPv6 socket is keyed as IPv4 so it pairs with its IPv4 peer),
 * ports in network order, family NM_FAMILY_V4/V6. Kept apart from abi.h so
 * the socket-LB ABI and this feature can change independently; the layout
 * asserts below guard the pinned maps the same way.
 */
#ifndef NODEMESH_REDIRECT_ABI_H
#define NODEMESH_REDIRECT_ABI_H

#include "nodemesh/abi.h"

/* Sockets (not pairs) the sockhash can hold: 32k same-node connections. */
#define NM_MAX_REDIR_SOCKETS 65536

/* nm_redir_socks key: one end of a connection, seen from that end. The peer
 * is found under the same key with local and remote swapped. netns_cookie
 * keeps two pods' identical loopback tuples (127.0.0.1:a <-> 127.0.0.1:b in
 * two network namespaces) from pairing with each other. */
struct nm_redir_key {
	__u32 local_addr[4];
	__u32 remote_addr[4];
	__u64 netns_cookie;
	__u16 local_port;
	__u16 remote_port;
	__u8 family;
	__u8 pad[3];
};

/* nm_redir_cfg value (array of one). */
struct nm_redir_config {
	__u32 flags; /* NM_REDIR_F_* */
	__u32 pad;
};
/* Off: sockops inserts nothing and sk_msg passes every message to TCP, also
 * on connections that were redirected so far (safe: see sock_redirect.bpf.c). */
#define NM_REDIR_F_ENABLED 0x1u

/* nm_redir_stats value (per-CPU array of one). */
struct nm_redir_stats {
	__u64 sockets_added;      /* sockops put an established local socket in the sockhash */
	__u64 sockets_skipped;    /* local, but had sent data already (TCP Fast Open): stays on TCP */
	__u64 insert_errors;      /* sockhash full or refused the socket */
	__u64 msgs_redirected;    /* sendmsg calls moved straight to the peer's receive queue */
	__u64 bytes_redirected;
	__u64 msgs_passed;        /* no peer in the sockhash: normal TCP (and the socket stays on TCP) */
	__u64 msgs_pinned_tcp;    /* sent on TCP because the socket passed a message before, or switched off */
	__u64 pad;
};

NM_ASSERT_LAYOUT(nm_redir_key, 48);
NM_ASSERT_LAYOUT(nm_redir_config, 8);
NM_ASSERT_LAYOUT(nm_redir_stats, 64);
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_redir_key, netns_cookie) == 32, "nm_redir_key.netns_cookie moved");
NM_STATIC_ASSERT(NM_OFFSETOF(struct nm_redir_key, family) == 44, "nm_redir_key.family moved");

#endif /* NODEMESH_REDIRECT_ABI_H */
