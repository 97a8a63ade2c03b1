/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inbound STRICT: a meshed workload in STRICT mode accepts TCP connections
 * only from the node itself (its proxy delivers what arrived over HBONE);
 * a SYN from anywhere else is dropped. The node's addresses, 127.0.0.0/8 and
 * ::1 are in nm_node_addrs. Consequence, by design: any process of this node
 * outside the served cgroup is trusted like the proxy (the exemption other
 * meshes give kubelet probes). PERMISSIVE workloads are not looked at.
 */
#ifndef NM_INBOUND_BPF_H
#define NM_INBOUND_BPF_H

#include "lib/workload.bpf.h"

#define NM_ETH_P_IP 0x0800
#define NM_ETH_P_IPV6 0x86DD
#define NM_TCP_FLAG_SYN 0x02
#define NM_TCP_FLAG_ACK 0x10

#define NM_SKB_PASS 1
#define NM_SKB_DROP 0

#define NM_IPV6_MAX_EXT_HEADERS 8
/* linux/in6.h's values; vmlinux.h carries no #defines. */
#define NM_IPPROTO_HOPOPTS 0
#define NM_IPPROTO_ROUTING 43
#define NM_IPPROTO_FRAGMENT 44
#define NM_IPPROTO_AH 51
#define NM_IPPROTO_DSTOPTS 60
#define NM_NO_TCP 0xffffffffu
#define NM_UNWALKABLE 0xfffffffeu

/* The offset of the TCP header behind the IPv6 header and its extension
 * headers (hop-by-hop, routing, fragment, destination options, AH), walked up
 * to NM_IPV6_MAX_EXT_HEADERS deep; NM_NO_TCP when the chain ends elsewhere,
 * NM_UNWALKABLE when it is deeper or unreadable. Why walk: a SYN carrying a
 * destination-options header would otherwise not look like TCP and slip past
 * STRICT (a client with CAP_NET_RAW adds one with the IPV6_DSTOPTS socket option).
 * Fragments are reassembled before socket delivery, where this runs. */
static __always_inline __u32 nm_ipv6_tcp_offset(struct __sk_buff *skb, __u8 nexthdr)
{
	__u32 off = sizeof(struct ipv6hdr);
	int i;

	for (i = 0; i < NM_IPV6_MAX_EXT_HEADERS; i++) {
		__u8 hdr[2]; /* next header, length */

		if (nexthdr == IPPROTO_TCP)
			return off;
		if (nexthdr != NM_IPPROTO_HOPOPTS && nexthdr != NM_IPPROTO_ROUTING && nexthdr != NM_IPPROTO_FRAGMENT &&
		    nexthdr != NM_IPPROTO_DSTOPTS && nexthdr != NM_IPPROTO_AH)
			return NM_NO_TCP;
		if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)))
			return NM_UNWALKABLE;
		if (nexthdr == NM_IPPROTO_FRAGMENT)
			off += 8;
		else if (nexthdr == NM_IPPROTO_AH)
			off += ((__u32)hdr[1] + 2) * 4;
		else
			off += ((__u32)hdr[1] + 1) * 8;
		nexthdr = hdr[0];
	}
	return nexthdr == IPPROTO_TCP ? off : NM_UNWALKABLE;
}

/* Fills src (v4-mapped for IPv4) and returns true when skb is a TCP SYN
 * without ACK (a connection attempt). cgroup_skb data starts at the IP header. */
static __always_inline bool nm_skb_tcp_syn(struct __sk_buff *skb, struct nm_node_addr_key *src)
{
	__u32 off;
	__u8 flags;

	if (skb->protocol == bpf_htons(NM_ETH_P_IP)) {
		struct iphdr iph;

		if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)))
			return false;
		if (iph.protocol != IPPROTO_TCP || (iph.frag_off & bpf_htons(0x1fff)))
			return false;
		off = (__u32)iph.ihl * 4;
		src->addr[2] = bpf_htonl(0x0000ffff);
		src->addr[3] = iph.saddr;
	} else if (skb->protocol == bpf_htons(NM_ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return false;
		off = nm_ipv6_tcp_offset(skb, ip6.nexthdr);
		if (off == NM_NO_TCP)
			return false;
		if (off == NM_UNWALKABLE) {
			/* Fail closed: treat it as a connection attempt. This
			 * program only sees packets for TCP sockets, so the
			 * chain does end in TCP; one longer than we walk is
			 * not what a real peer of a STRICT pod sends. */
			__builtin_memcpy(src->addr, &ip6.saddr, sizeof(src->addr));
			src->prefixlen = 128;
			return true;
		}
		__builtin_memcpy(src->addr, &ip6.saddr, sizeof(src->addr));
	} else {
		return false;
	}
	if (bpf_skb_load_bytes(skb, off + 13, &flags, 1))
		return false;
	src->prefixlen = 128;
	return (flags & (NM_TCP_FLAG_SYN | NM_TCP_FLAG_ACK)) == NM_TCP_FLAG_SYN;
}

static __always_inline int nm_inbound_verdict(struct __sk_buff *skb)
{
	const struct nm_mesh_config *cfg = nm_mesh_cfg();
	struct nm_node_addr_key src = {};
	const struct nm_workload *wl;
	__u64 wl_id = 0;

	/* Nothing is STRICT: the one check every packet pays. */
	if (!cfg || !(cfg->flags & NM_MESH_F_STRICT))
		return NM_SKB_PASS;
	if (!nm_skb_tcp_syn(skb, &src))
		return NM_SKB_PASS;
	wl = nm_skb_workload(skb, cfg, &wl_id);
	if (!wl || !(wl->flags & NM_WL_F_STRICT))
		return NM_SKB_PASS;
	if (bpf_map_lookup_elem(&nm_node_addrs, &src))
		return NM_SKB_PASS;
	nm_count_workload(wl_id, NM_WL_COUNT_STRICT_DROP);
	return NM_SKB_DROP;
}

#endif /* NM_INBOUND_BPF_H */
