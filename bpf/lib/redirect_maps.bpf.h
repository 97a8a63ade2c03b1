/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Same-node redirect maps. The sockhash, switch and counters are pinned by
 * name: the sk_msg program is attached to the sockhash itself, so the pinned
 * map is what keeps it attached while no agent runs. */
#ifndef NM_REDIRECT_MAPS_BPF_H
#define NM_REDIRECT_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "nodemesh/redirect_abi.h"

/* key: nm_redir_key (one connection end); value: the socket. Written by the
 * sockops program when a local connection is established; the kernel drops a
 * socket when it closes. Read by sk_msg (peer lookup) and by the agent (count). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, NM_MAX_REDIR_SOCKETS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, struct nm_redir_key);
	__type(value, __u64);
} nm_redir_socks SEC(".maps");

/* key: 0; value: nm_redir_config. Written by the agent (enable/disable);
 * read by both programs, including programs of an earlier agent that still
 * serve connections redirected before a restart. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, struct nm_redir_config);
} nm_redir_cfg SEC(".maps");

/* key: 0; value: per-CPU nm_redir_stats. Written by both programs; summed
 * by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, struct nm_redir_stats);
} nm_redir_stats SEC(".maps");

/* Socket storage: present on a socket that must stay on TCP for the rest of
 * its life (it sent a message the normal way). Written and read by sk_msg;
 * freed with the socket. Not pinned: each socket keeps the sk_msg program
 * (and so the map) it was inserted with. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} nm_redir_tcp SEC(".maps");

static __always_inline struct nm_redir_stats *nm_redir_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nm_redir_stats, &zero);
}

static __always_inline bool nm_redir_enabled(void)
{
	__u32 zero = 0;
	struct nm_redir_config *cfg = bpf_map_lookup_elem(&nm_redir_cfg, &zero);

	return cfg && (cfg->flags & NM_REDIR_F_ENABLED);
}

#endif /* NM_REDIRECT_MAPS_BPF_H */
