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
		/* Extension headers before TCP are not walked: such a SYN passes. */
		if (ip6.nexthdr != IPPROTO_TCP)
			return false;
		off = sizeof(ip6);
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
