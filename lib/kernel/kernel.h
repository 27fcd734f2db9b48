/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The kernel backend: kernel DAMON through /sys/kernel/mm/damon. When it
 * runs, lib/core's monitor does not: the kernel is the engine, and this
 * module turns its results into the same snapshot objects (struct
 * damon_snapshot through struct dm_publisher) that every reader uses.
 *
 * Sharing (ARCHITECTURE.md, "Sharing the kernel's DAMON"): libdamon takes
 * DAMON only when no kdamond directory holds anything but libdamon's own
 * records (or the caller allows taking over idle ones), never writes to a
 * kdamond it did not create, serializes libdamon users with an advisory
 * lock, and recognises kdamonds left by a crashed libdamon process.
 */
#ifndef DAMON_KERNEL_KERNEL_H
#define DAMON_KERNEL_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/monitor.h"
#include "../core/schemes.h"
#include "../core/snapshot.h"
#include "../util/alloc.h"
#include "../util/err.h"

struct dm_kernel;

struct dm_kernel_target {
	uint32_t id;                  /* the target's stable id in its context */
	pid_t pid;                    /* real pid (vaddr/fvaddr); 0 for paddr */
	const struct dm_range *fixed; /* fvaddr/paddr regions (paddr: none = System RAM) */
	size_t nr_fixed;
};

struct dm_kernel_cfg {
	const char *sysfs_root;       /* NULL: "/sys" */
	const char *proc_root;        /* NULL: "/proc" */
	const char *run_dir;          /* lock + ownership records; NULL: "/run/libdamon" (owner.h) */
	uint32_t ops;                 /* enum damon_ops */
	struct dm_mon_attrs attrs;
	const struct dm_kernel_target *targets;
	size_t nr_targets;
	struct dm_scheme *const *schemes; /* opts, goals, filters in (kscheme.c); stats and
					     quota.esz written back while it runs */
	size_t nr_schemes;
	struct dm_publisher *pub;     /* where snapshots go */
	const struct dm_alloc *alloc;
	bool allow_takeover;          /* may take idle kdamonds that are not libdamon's */
	uint32_t snapshots;           /* enum dm_kernel_snap: how snapshots are read */
	uint64_t seq_base;            /* snapshots are numbered from seq_base + 1 */
	/* the tracepoint's perf fd joins the epoll set wake_epfd
	 * and wakes it on every record (open only; reopens follow it) */
	bool wake_on_data;
	int wake_epfd;
};

enum dm_kernel_snap {
	DM_KSNAP_AUTO = 0,            /* the tracepoint stream, else tried_regions */
	DM_KSNAP_TRACE = 1,           /* the damon:damon_aggregated tracepoint only */
	DM_KSNAP_TRIED = 2,           /* a match-all stat scheme's tried_regions only */
};

/* Which path snapshots come through (enum dm_kernel_snap, never AUTO). */
uint32_t dm_kernel_snap_path(const struct dm_kernel *k);

/* Snapshots published so far (seq of the newest), and targets still alive. */
uint64_t dm_kernel_nr_published(const struct dm_kernel *k);
size_t dm_kernel_nr_live(const struct dm_kernel *k);
/* The intervals in force: as written, or as the kernel last tuned them
 * (an intervals goal; read by dm_kernel_step()). */
void dm_kernel_intervals(const struct dm_kernel *k, uint64_t *sample_us, uint64_t *aggr_us);
/* Whether the target with @id was found exited (false for an unknown id). */
bool dm_kernel_target_gone(const struct dm_kernel *k, uint32_t id);

/* The kdamond's pid (for tests and status). */
pid_t dm_kernel_kdamond_pid(const struct dm_kernel *k);

/* A sentence on how snapshots are read when it is not what was asked for
 * (the kdamond is not visible from this pid namespace), else "". */
const char *dm_kernel_note(const struct dm_kernel *k);

/* Take DAMON, write the whole context, turn it on, open the snapshot
 * stream. -EBUSY with a sentence naming who holds DAMON; -EOPNOTSUPP when
 * the kernel lacks what is needed; -EPERM without privilege. On failure
 * nothing is left behind (no kdamond, no fd, no lock). */
int dm_kernel_open(struct dm_kernel **ret, const struct dm_kernel_cfg *cfg, struct dm_err *err);

/* Read what the kernel produced and publish snapshots. Sets *next_us to
 * when to call again. -ESRCH when the kdamond stopped because every target
 * exited (err says so). */
int dm_kernel_step(struct dm_kernel *k, uint64_t *next_us, struct dm_err *err);

/* Online update: attributes, added targets, schemes (cfg as for open).
 * cfg->schemes replaces the array passed before at once, even when the
 * commit fails: schemes are only appended, so the old ones are its prefix. */
int dm_kernel_commit(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err);

/*
 * Pause (@pause) or resume the kdamond's context: its pause file, then a
 * commit, after which the kdamond keeps regions, targets and schemes and
 * does nothing until resumed (the kernel checks it at every sample, so no
 * aggregation ends after this returns; what the stream holds from before is
 * published now). Idempotent. -EOPNOTSUPP with a sentence when this
 * kernel's context has no pause file. While paused, dm_kernel_step() reads
 * the state and the stream only: a paused kdamond cancels the walks that
 * tried_regions and the stats updates need.
 */
int dm_kernel_pause(struct dm_kernel *k, bool pause, struct dm_err *err);

/* Refresh the schemes' stats from the kernel (update_schemes_stats). */
int dm_kernel_update_stats(struct dm_kernel *k, struct dm_err *err);

/* Pass the current value of user_input goal @goal of @sc (one of the
 * schemes last written) to the kdamond: its current_value file, then
 * commit_schemes_quota_goals. 0 without writing when @sc or the goal came
 * after the last open or commit, which write it (kscheme.c). */
int dm_kernel_set_goal_current(struct dm_kernel *k, const struct dm_scheme *sc, size_t goal,
			       uint64_t value, struct dm_err *err);

/* Turn the kdamond off, remove libdamon's records, release the lock. In a
 * child after fork() (@forked): close fds and free only. */
void dm_kernel_close(struct dm_kernel *k, bool forked);

#endif
