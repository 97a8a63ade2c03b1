// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level load balancing: services are resolved once, when the socket
 * is connected (or a datagram is sent), so the packets themselves are never
 * translated and conntrack never sees the VIP. The entry points are thin;
 * the work is in lib/xlate.bpf.h (L4), lib/capture.bpf.h (mesh capture) and
 * lib/inbound.bpf.h (inbound STRICT).
 *
 * One object for every hook: the capture spans connect (steer, remember)
 * and sockops (publish), which share the nm_sock_orig storage, and one
 * object keeps one load, one set of pinned maps and one adopt path.
 */
#include "lib/xlate.bpf.h"
#include "lib/inbound.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int nm_fwd_verdict(struct bpf_sock_addr *ctx, int err)
{
	if (!err)
		return SYS_PROCEED;
	/* Fail the syscall with this errno instead of the default EPERM. */
	bpf_set_retval(err);
	return SYS_REJECT;
}

SEC("cgroup/connect4")
int nm_connect4(struct bpf_sock_addr *ctx)
{
	return nm_fwd_verdict(ctx, __nm_xlate_fwd(ctx, false, false));
}

SEC("cgroup/connect6")
int nm_connect6(struct bpf_sock_addr *ctx)
{
	return nm_fwd_verdict(ctx, __nm_xlate_fwd(ctx, true, false));
}

SEC("cgroup/sendmsg4")
int nm_sendmsg4(struct bpf_sock_addr *ctx)
{
	return nm_fwd_verdict(ctx, __nm_xlate_fwd(ctx, false, true));
}

SEC("cgroup/sendmsg6")
int nm_sendmsg6(struct bpf_sock_addr *ctx)
{
	return nm_fwd_verdict(ctx, __nm_xlate_fwd(ctx, true, true));
}

/* recvmsg and getpeername hooks must always return 1. */
SEC("cgroup/recvmsg4")
int nm_recvmsg4(struct bpf_sock_addr *ctx)
{
	__nm_xlate_rev(ctx, false, true);
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg6")
int nm_recvmsg6(struct bpf_sock_addr *ctx)
{
	__nm_xlate_rev(ctx, true, true);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int nm_getpeername4(struct bpf_sock_addr *ctx)
{
	__nm_xlate_rev(ctx, false, false);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername6")
int nm_getpeername6(struct bpf_sock_addr *ctx)
{
	__nm_xlate_rev(ctx, true, false);
	return SYS_PROCEED;
}

/* Publishes captured connections to nm_capture once their client port is known. */
SEC("sockops")
int nm_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		nm_publish_capture(skops);
	return 1;
}

/* Inbound STRICT: 1 lets the packet in, 0 drops it. */
SEC("cgroup_skb/ingress")
int nm_ingress(struct __sk_buff *skb)
{
	return nm_inbound_verdict(skb);
}
