/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Which workload a socket belongs to: the deepest cgroup among the socket's
 * own and its ancestors that the agent registered in nm_workloads (a pod's
 * containers sit in child cgroups of the pod's cgroup). */
#ifndef NM_WORKLOAD_BPF_H
#define NM_WORKLOAD_BPF_H

#include "lib/maps.bpf.h"

static __always_inline const struct nm_mesh_config *nm_mesh_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nm_mesh_config, &zero);
}

/*
 * The ancestor search visits only the levels the agent says hold workloads
 * (wl_min_level..wl_max_level), deepest first, after one exact lookup that
 * serves the common case of a process directly in its workload's cgroup.
 * The two variants differ only in where the cgroup ids come from: the
 * current task (connect) or the skb's socket (ingress, in softirq).
 */
#define NM_DEFINE_WORKLOAD_LOOKUP(name, ctx_type, self_id, ancestor_id)                        \
	static __always_inline const struct nm_workload *name(ctx_type ctx,                   \
							      const struct nm_mesh_config *cfg, \
							      __u64 *wl_id)                     \
	{                                                                                      \
		__u64 id = self_id;                                                            \
		const struct nm_workload *wl = bpf_map_lookup_elem(&nm_workloads, &id);       \
		int i;                                                                         \
                                                                                               \
		if (wl) {                                                                      \
			*wl_id = id;                                                           \
			return wl;                                                             \
		}                                                                              \
		for (i = 0; i < NM_MAX_CGROUP_LEVEL; i++) {                                    \
			int level = (int)cfg->wl_max_level - i;                                \
			if (level < (int)cfg->wl_min_level || level < 0)                       \
				break;                                                         \
			id = ancestor_id;                                                      \
			if (!id)                                                               \
				continue; /* the socket's cgroup is not that deep */           \
			wl = bpf_map_lookup_elem(&nm_workloads, &id);                          \
			if (wl) {                                                              \
				*wl_id = id;                                                   \
				return wl;                                                     \
			}                                                                      \
		}                                                                              \
		return NULL;                                                                   \
	}

NM_DEFINE_WORKLOAD_LOOKUP(nm_current_workload, void *, bpf_get_current_cgroup_id(),
			  bpf_get_current_ancestor_cgroup_id(level))
NM_DEFINE_WORKLOAD_LOOKUP(nm_skb_workload, struct __sk_buff *, bpf_skb_cgroup_id(ctx),
			  bpf_skb_ancestor_cgroup_id(ctx, level))

#define NM_WL_COUNT_CAPTURED 0
#define NM_WL_COUNT_STRICT_DROP 1

static __always_inline void nm_count_workload(__u64 wl_id, int field)
{
	struct nm_workload_stats *st = bpf_map_lookup_elem(&nm_workload_stats, &wl_id);

	if (!st)
		return; /* the agent creates the entry; the hooks never do */
	if (field == NM_WL_COUNT_CAPTURED)
		st->captured++;
	else
		st->strict_drops++;
}

#endif /* NM_WORKLOAD_BPF_H */
