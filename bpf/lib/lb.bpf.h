/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Backend selection: one slot of the service's live table. */
#ifndef NM_LB_BPF_H
#define NM_LB_BPF_H

#include "lib/maps.bpf.h"

/* 64-bit mix (SplitMix64 finaliser): cheap and well distributed. */
static __always_inline __u64 nm_mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/*
 * Maglev key. At connect time the source port is usually not bound yet, so
 * the stable facts about the client are its cgroup (the workload) and its
 * network namespace (the pod). Hashing them gives per-client affinity that
 * survives backend churn except for the ~1/N of clients whose backend left.
 */
static __always_inline __u32 nm_client_hash(void *ctx)
{
	__u64 cg = bpf_get_current_cgroup_id();
	__u64 ns = bpf_get_netns_cookie(ctx);

	return (__u32)nm_mix64(cg ^ nm_mix64(ns));
}

/* Returns the chosen backend, or NULL when the table is empty or stale. */
static __always_inline const struct nm_backend *
nm_select_backend(void *ctx, const struct nm_service *svc)
{
	struct nm_slot_key sk = { .service_id = svc->id };
	__u32 *backend_id;
	__u32 pick;

	if (!svc->slot_count)
		return NULL;
	if (svc->algo == NM_LB_MAGLEV)
		pick = nm_client_hash(ctx);
	else
		pick = bpf_get_prandom_u32();
	sk.slot = pick % svc->slot_count;
	if (svc->generation)
		sk.slot |= NM_SLOT_GEN_BIT;

	backend_id = bpf_map_lookup_elem(&nm_slots, &sk);
	if (!backend_id)
		return NULL;
	return bpf_map_lookup_elem(&nm_backends, backend_id);
}

static __always_inline void nm_count(__u32 service_id, int field)
{
	struct nm_service_stats *st = bpf_map_lookup_elem(&nm_svc_stats, &service_id);

	if (!st)
		return;
	/* Per-CPU slot and preemption is off in these hooks: plain adds suffice. */
	if (field == 0)
		st->connections++;
	else if (field == 1)
		st->datagrams++;
	else if (field == 2)
		st->no_backend++;
	else
		st->captured++;
}

#define NM_COUNT_CONNECT 0
#define NM_COUNT_DATAGRAM 1
#define NM_COUNT_NO_BACKEND 2
#define NM_COUNT_CAPTURED 3

#endif /* NM_LB_BPF_H */
