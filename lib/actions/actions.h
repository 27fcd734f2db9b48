/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * DAMOS actions in user space: what the kernel's operations sets do in
 * their apply_scheme(), done with the system calls a process has.
 *
 *  - the calling process: madvise() for every advice (cold, pageout,
 *    willneed, hugepage, nohugepage, collapse);
 *  - another process: process_madvise() on a pidfd for cold, pageout,
 *    willneed and collapse (the kernel accepts no other advice for another
 *    process); it needs CAP_SYS_NICE and ptrace read access;
 *  - migrate_hot/migrate_cold: move_pages() through libnuma to a node;
 *  - lru_prio/lru_deprio: no system call does it: kernel backend only.
 *
 * Ops-layer filters (anon, hugepage_size) are judged per page from
 * PAGEMAP_SCAN on /proc/PID/pagemap; the action then goes to the runs of
 * pages that pass.
 *
 * What cannot be done is an error with a sentence, never a silent no-op.
 */
#ifndef DAMON_ACTIONS_ACTIONS_H
#define DAMON_ACTIONS_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <damon/damon.h>

#include "../core/schemes.h"
#include "../util/alloc.h"
#include "../util/err.h"

/* Where actions go: one process. */
struct dm_action_target {
	pid_t pid;
	bool self;              /* the calling process: plain madvise() */
	int pidfd;              /* process_madvise(); -1 until needed */
	int pagemap_fd;         /* ops filters, migration queries; -1 until needed */
	const char *proc_root;  /* borrowed; NULL: "/proc" */
};

void dm_action_target_init(struct dm_action_target *t, pid_t pid, const char *proc_root);
void dm_action_target_fini(struct dm_action_target *t);

/*
 * Can the calling process apply @action to process @pid's memory here
 * (@self: @pid is the calling process)? Looks at the advice the kernel
 * takes for another process, CAP_SYS_NICE, libnuma and the node @nid.
 * Return: 0, -EOPNOTSUPP or -EPERM with a sentence.
 */
int dm_action_check(uint32_t action, bool self, pid_t pid, uint32_t nid, struct dm_err *err);

/*
 * Apply @action to [@start, @end) of @t (page aligned).
 * Return: bytes applied (collapse: bytes now in huge pages made or found
 * there; migrate: bytes moved; pageout of the calling process: bytes that
 * left memory, per mincore(); other advice: bytes of mapped memory
 * advised), or -errno with a sentence (-EPERM, -ESRCH, -EOPNOTSUPP, ...).
 * Unmapped holes in the range are skipped, not errors.
 */
int64_t dm_action_apply(struct dm_action_target *t, uint32_t action, uint64_t start,
			uint64_t end, uint32_t nid, struct dm_err *err);

/* Can the user-space executor judge these filters? 0 or -EOPNOTSUPP. */
int dm_action_filters_check(const struct damos_filter_opts *f, size_t n, struct dm_err *err);

/*
 * dm_action_apply() to the pages of [@start, @end) that pass the ops-layer
 * filters in @f (core-layer ones are ignored here). *@ret_passed: bytes
 * that passed.
 */
int64_t dm_action_apply_filtered(struct dm_action_target *t, uint32_t action, uint64_t start,
				 uint64_t end, uint32_t nid, const struct damos_filter_opts *f,
				 size_t n, uint64_t *ret_passed, struct dm_err *err);

/* ---- the engine's environment on a real system (lib/actions/env.c) ---- */

struct dm_actions_env {
	struct dm_scheme_env env;      /* what the core calls; env.arg = this */
	const char *proc_root;         /* borrowed; NULL: "/proc" */
	const char *sysfs_root;        /* borrowed; NULL: "/sys" */
	const struct dm_alloc *alloc;
	struct dm_action_target *targets; /* one per pid acted on, opened lazily */
	size_t nr_targets, cap_targets;
	/* Let the primitive go of a range before an action (uffd_wp). */
	void (*release)(void *arg, const struct dm_scheme_target *t, uint64_t start, uint64_t end);
	void *release_arg;
};

void dm_actions_env_init(struct dm_actions_env *e, const char *proc_root, const char *sysfs_root,
			 const struct dm_alloc *alloc);
void dm_actions_env_fini(struct dm_actions_env *e);

/* The metrics, also for tests: free memory in permil of MemTotal from
 * @proc_root/meminfo; "some" total of @proc_root/pressure/memory; node
 * memory from @sysfs_root/devices/system/node/nodeN/meminfo. */
int dm_read_free_mem_rate(const char *proc_root, uint32_t *ret);
int dm_read_psi_some_us(const char *proc_root, uint64_t *ret);
int dm_read_node_mem(const char *sysfs_root, uint32_t nid, uint64_t *ret_total,
		     uint64_t *ret_free);

/* The texts behind them. "KEY: N kB" at the start of a line or after a
 * blank ("Node 0 MemTotal: ..."), in bytes: 0, -ENOENT (no such key) or
 * -EINVAL (no number, or more bytes than 64 bits hold). */
int dm_meminfo_field(const char *text, const char *key, uint64_t *ret);
/* Permil of @total that @free is, at most 1000; -EINVAL for a @total of 0. */
int dm_free_rate(uint64_t total, uint64_t free, uint32_t *ret);
/* The "total=" of the "some" line of a pressure file: 0 or -EINVAL. */
int dm_psi_some_total(const char *text, uint64_t *ret);

#endif
