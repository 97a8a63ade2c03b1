// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Same-node shortcut. When both ends of a TCP connection live on this host
 * (and in one network namespace), sockops puts each end in a sockhash once it
 * is established, and sk_msg hands every sendmsg() of one end straight to the
 * receive queue of the other (BPF_F_INGRESS): no skb, no loopback device, no
 * netfilter, no TCP segmentation or ACKs for the payload. The handshake and
 * the FIN/RST still go through TCP, so connect-time policy, getpeername and
 * half-close behave as before.
 *
 * Ordering is the subtle part. A receiver in the sockhash reads its redirect
 * queue before its TCP receive queue (tcp_bpf_recvmsg). So bytes that went by
 * TCP and bytes that were redirected later could be read out of order. Two
 * rules make that impossible:
 *   1. sockops skips a socket that has already sent data (TCP Fast Open data
 *      in the SYN, or a Fast Open server that wrote before the final ACK).
 *   2. Once a socket sends one message the normal way (its peer was not, or
 *      no longer, in the sockhash: the peer's established callback has not
 *      run yet, or the peer closed), it stays on TCP for good (nm_redir_tcp).
 * Going from redirected to TCP is always safe (old bytes sit in the queue
 * that is read first), which is also why switching the feature off never
 * removes sockets from the sockhash: removal purges a socket's redirect
 * queue, losing bytes the application has not read yet.
 */
#include "lib/redirect_key.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void nm_count(__u64 *field, __u64 n)
{
	__sync_fetch_and_add(field, n);
}

SEC("sockops")
int nm_redir_sockops(struct bpf_sock_ops *skops)
{
	struct nm_redir_stats *st;
	struct nm_redir_key key;
	struct nm_redir_end end;
	__u32 op = skops->op;

	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (!nm_redir_enabled())
		return 1;

	NM_REDIR_READ_END(skops, &end);
	if (nm_redir_key(&end, bpf_get_netns_cookie(skops), false, &key) != 1)
		return 1;

	st = nm_redir_counters();
	if (!st)
		return 1;
	/* Rule 1: bytes already on the wire would be overtaken by redirected ones. */
	if (skops->data_segs_out) {
		nm_count(&st->sockets_skipped, 1);
		return 1;
	}
	/* BPF_ANY: a closed socket leaves the map by itself, so an existing key
	 * can only be a stale twin of this very tuple; the live socket wins. */
	if (bpf_sock_hash_update(skops, &nm_redir_socks, &key, BPF_ANY))
		nm_count(&st->insert_errors, 1);
	else
		nm_count(&st->sockets_added, 1);
	return 1;
}

SEC("sk_msg")
int nm_redir_msg(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	struct nm_redir_stats *st;
	struct nm_redir_key peer;
	struct nm_redir_end end;
	__u32 size = msg->size;

	st = nm_redir_counters();
	if (!st || !sk)
		return SK_PASS;

	/* Rule 2, and the off switch: this socket's bytes go by TCP from now on. */
	if (!nm_redir_enabled() || bpf_sk_storage_get(&nm_redir_tcp, sk, 0, 0)) {
		nm_count(&st->msgs_pinned_tcp, 1);
		return SK_PASS;
	}

	NM_REDIR_READ_END(msg, &end);
	nm_redir_key(&end, bpf_get_netns_cookie(msg), true, &peer);

	/* The helper returns SK_DROP when the peer is missing: that must mean
	 * "use TCP", never "drop the application's bytes". */
	if (bpf_msg_redirect_hash(msg, &nm_redir_socks, &peer, BPF_F_INGRESS) == SK_PASS) {
		nm_count(&st->msgs_redirected, 1);
		nm_count(&st->bytes_redirected, size);
		return SK_PASS;
	}
	/* If the storage cannot be allocated the socket may redirect later and
	 * reorder; there is no better answer than trying again next message. */
	bpf_sk_storage_get(&nm_redir_tcp, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	nm_count(&st->msgs_passed, 1);
	return SK_PASS;
}
