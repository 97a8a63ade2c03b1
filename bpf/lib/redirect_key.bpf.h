/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Sockhash keys for the same-node redirect: one function builds the key of a
 * connection end from what sockops and sk_msg both expose, so the two
 * programs cannot disagree on a byte of it. */
#ifndef NM_REDIRECT_KEY_BPF_H
#define NM_REDIRECT_KEY_BPF_H

#include "lib/redirect_maps.bpf.h"

#define NM_AF_INET 2
#define NM_AF_INET6 10

/* Context fields are read whole: the verifier refuses narrow loads of some
 * sockops/sk_msg fields, and clang narrows "x->remote_port >> 16" on its own. */
#define NM_CTX_READ(x) (*(volatile __u32 *)&(x))

/* A connection end as read from the context. Ports are in network order. */
struct nm_redir_end {
	__u32 family; /* AF_INET or AF_INET6, as the socket was created */
	__u32 local4, remote4;
	__u32 local6[4], remote6[4];
	__u16 local_port, remote_port;
};

/* Both contexts give local_port in host order and remote_port in network
 * order shifted into the upper half of the u32 (on little endian); ntohl of
 * the whole word yields the host-order port on either endianness. */
#define NM_REDIR_READ_END(ctx, end)                                                   \
	do {                                                                          \
		(end)->family = NM_CTX_READ((ctx)->family);                            \
		(end)->local4 = NM_CTX_READ((ctx)->local_ip4);                         \
		(end)->remote4 = NM_CTX_READ((ctx)->remote_ip4);                       \
		/* Constant indexes: the verifier refuses a ctx pointer moved by a loop. */ \
		(end)->local6[0] = NM_CTX_READ((ctx)->local_ip6[0]);                   \
		(end)->local6[1] = NM_CTX_READ((ctx)->local_ip6[1]);                   \
		(end)->local6[2] = NM_CTX_READ((ctx)->local_ip6[2]);                   \
		(end)->local6[3] = NM_CTX_READ((ctx)->local_ip6[3]);                   \
		(end)->remote6[0] = NM_CTX_READ((ctx)->remote_ip6[0]);                 \
		(end)->remote6[1] = NM_CTX_READ((ctx)->remote_ip6[1]);                 \
		(end)->remote6[2] = NM_CTX_READ((ctx)->remote_ip6[2]);                 \
		(end)->remote6[3] = NM_CTX_READ((ctx)->remote_ip6[3]);                 \
		(end)->local_port = bpf_htons((__u16)NM_CTX_READ((ctx)->local_port));  \
		(end)->remote_port = bpf_htons((__u16)bpf_ntohl(NM_CTX_READ((ctx)->remote_port))); \
	} while (0)

static __always_inline bool nm_v4mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

static __always_inline bool nm_v6_eq(const __u32 a[4], const __u32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/*
 * Fills key for this end (reverse: for its peer, i.e. local and remote
 * swapped). Returns 1 when both ends are on this host and in one network
 * namespace: the remote address is loopback or equal to the local one
 * (a connection to the node's own address takes the loopback device too).
 * Pod-to-pod over veth is not covered: that needs the node's pod addresses
 * and a key without the netns cookie. Returns 0 for anything else, -1 for a
 * family this code does not know.
 */
static __always_inline int nm_redir_key(const struct nm_redir_end *end, __u64 netns_cookie, bool reverse,
					struct nm_redir_key *key)
{
	const __u32 *l6 = end->local6, *r6 = end->remote6;
	__u32 l4 = end->local4, r4 = end->remote4;
	bool v4 = end->family == NM_AF_INET;
	int local;

	__builtin_memset(key, 0, sizeof(*key));
	if (end->family == NM_AF_INET6 && nm_v4mapped(l6) && nm_v4mapped(r6)) {
		/* ::ffff:a.b.c.d talks IPv4 on the wire; its peer may be an
		 * AF_INET socket, so both must produce the same key. */
		v4 = true;
		l4 = l6[3];
		r4 = r6[3];
	} else if (!v4 && end->family != NM_AF_INET6) {
		return -1;
	}

	if (v4) {
		key->family = NM_FAMILY_V4;
		key->local_addr[0] = reverse ? r4 : l4;
		key->remote_addr[0] = reverse ? l4 : r4;
		local = (bpf_ntohl(r4) >> 24) == 127 || r4 == l4;
	} else {
		key->family = NM_FAMILY_V6;
		for (int i = 0; i < 4; i++) {
			key->local_addr[i] = reverse ? r6[i] : l6[i];
			key->remote_addr[i] = reverse ? l6[i] : r6[i];
		}
		local = (r6[0] == 0 && r6[1] == 0 && r6[2] == 0 && r6[3] == bpf_htonl(1)) || nm_v6_eq(l6, r6);
	}
	key->local_port = reverse ? end->remote_port : end->local_port;
	key->remote_port = reverse ? end->local_port : end->remote_port;
	key->netns_cookie = netns_cookie;
	return local;
}

#endif /* NM_REDIRECT_KEY_BPF_H */
