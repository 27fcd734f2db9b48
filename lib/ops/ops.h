/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Operations sets: an access-check primitive plus the address-space layout
 * it monitors. lib/core drives one through this vtable and knows nothing
 * else about it; an ops set knows nothing of the core beyond region.h.
 *
 * Calls on one instance come from one thread at a time (the monitor).
 */
#ifndef DAMON_OPS_OPS_H
#define DAMON_OPS_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/region.h"
#include "../util/alloc.h"
#include "../util/err.h"

struct dm_ops_inst; /* an ops set's per-context state, opaque to the core */

/* What an ops instance is configured with (copied by open()). */
struct dm_ops_cfg {
	uint32_t ops;              /* enum damon_ops */
	const char *proc_root;     /* "/proc" unless a test says otherwise */
	const char *sysfs_root;    /* "/sys" unless a test says otherwise */
	const struct dm_alloc *alloc;
	uint64_t seed;
	void *model;               /* simulated primitive only: its access model */
};

/* One target as an ops set sees it. */
struct dm_ops_target {
	pid_t pid;                       /* real pid (0 was translated at add time) */
	const struct dm_range *fixed;    /* fvaddr/paddr ranges given by the caller */
	size_t nr_fixed;
	void *priv;                      /* the ops set's per-target state */
};

/* What check() can tell about an access besides that it happened. */
#define DM_TELLS_RW  1u /* reads from writes (region acc_how) */
#define DM_TELLS_CPU 2u /* the CPU and node (region acc_cpu, acc_node) */

struct dm_ops {
	const char *name;
	uint32_t sees;	/* enum damon_sees */
	uint32_t tells; /* DM_TELLS_* */

	int (*open)(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg, struct dm_err *err);
	void (*close)(struct dm_ops_inst *inst);

	/* Prepare a target (open files, check permissions). -ESRCH: gone. */
	int (*target_init)(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_err *err);
	/* Undo everything done for the target: disarm every page, free priv.
	 * In a child after fork() (an inherited instance), free memory only:
	 * an inherited userfaultfd still acts on the parent's memory. */
	void (*target_fini)(struct dm_ops_inst *inst, struct dm_ops_target *t);

	/*
	 * Layout: the ranges to monitor now, sorted, non-overlapping, aligned to
	 * DM_MIN_REGION (vaddr: the kernel's three regions; fvaddr/paddr: the
	 * fixed ranges). Called at start and every update interval; also where
	 * a primitive registers mappings that appeared. At most @cap ranges.
	 * Return: number of ranges, or -errno (-ESRCH when the process is gone).
	 */
	int (*update)(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_range *ret,
		      size_t cap, struct dm_err *err);

	/* Arm v[i].sampling_addr of every region so that check() can tell
	 * whether it was accessed after this call. */
	void (*prepare)(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_region *v,
			size_t n);

	/* Set v[i].accessed (0, 1, DM_ACCESS_UNKNOWN or DM_ACCESS_EARLIER)
	 * and v[i].since (region.h). Return: how many were accessed, or -errno
	 * (-ESRCH when the target is gone). Memory that vanished reads as not
	 * accessed. */
	int (*check)(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_region *v,
		     size_t n);

	/* Optional. An aggregation interval ended: the next prepare() begins a
	 * new one (soft_dirty clears the process's bits then). */
	void (*aggregated)(struct dm_ops_inst *inst, struct dm_ops_target *t);

	/* Nanoseconds the application pays per access this primitive catches
	 * (uffd_wp: a write fault on an armed page), measured by open(); 0 when
	 * the application pays nothing. Used by the overhead budget. */
	uint64_t (*app_cost_ns)(struct dm_ops_inst *inst);

	/* Optional. A DAMOS action is about to change [@start, @end): undo what
	 * sampling left there (uffd_wp: disarm the sample pages, whose
	 * write-protect markers make MADV_COLLAPSE fail). The next prepare()
	 * may arm again; a primitive that would split a huge page by arming
	 * reports such samples as DM_ACCESS_UNKNOWN instead (see region.h).
	 * Also called over [0, UINT64_MAX) when the monitor pauses: nothing
	 * armed may cost the application while nobody samples. */
	void (*release)(struct dm_ops_inst *inst, struct dm_ops_target *t, uint64_t start,
			uint64_t end);
};

/* The ops sets built into this version. */
extern const struct dm_ops dm_ops_uffd_wp;
extern const struct dm_ops dm_ops_sim;
extern const struct dm_ops dm_ops_page_idle;   /* page_idle.c */
extern const struct dm_ops dm_ops_soft_dirty;  /* soft_dirty.c */
extern const struct dm_ops dm_ops_fault;       /* fault.c, fault_sig.c */

/* Can the calling process use the fault backend here (x86-64, PROCMAP_QUERY)?
 * 0, or -EOPNOTSUPP/... with a sentence. Leaves nothing behind. */
int dm_fault_probe(struct dm_err *err);

/* Can the calling process use uffd_wp here? Tries userfaultfd with
 * UFFD_USER_MODE_ONLY + WP_ASYNC and PAGEMAP_SCAN on its own pagemap, leaving
 * nothing behind. Return: 0, or -EOPNOTSUPP/-EPERM/... with a sentence saying
 * what is missing. */
int dm_uffd_wp_probe(const char *proc_root, struct dm_err *err);

/* Layout helpers shared by the primitives (lib/ops/layout.c). */

/* Read @proc_root/@pid/maps and compute the kernel's three regions
 * (the two biggest gaps between mappings cut out; [vsyscall] ignored).
 * Return: number of ranges written to @ret (at most 3, fewer for tiny
 * address spaces), -ESRCH when the process is gone, or -errno. */
int dm_layout_vaddr(const char *proc_root, pid_t pid, struct dm_range *ret, size_t cap,
		    struct dm_err *err);

/* Compute the three regions from an already-parsed sorted mapping list
 * (pure; exposed for tests and fuzzing). */
int dm_layout_three_regions(const struct dm_range *maps, size_t nr, struct dm_range *ret,
			    size_t cap);

/* Copy fixed ranges, aligned inward to DM_MIN_REGION. */
int dm_layout_fixed(const struct dm_range *fixed, size_t nr, struct dm_range *ret, size_t cap);

#endif
