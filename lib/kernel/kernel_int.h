/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Inside the kernel backend: struct dm_kernel, shared by its files. Calls
 * go one way: kernel.c (open, commit, pause, close) uses claim.c (who holds
 * DAMON), kwrite.c (writing the context) and trace.c; kstep.c (a step) uses
 * trace.c and tried.c (the two snapshot sources), which both end in
 * ksnap.c (publishing).
 */
#ifndef DAMON_KERNEL_KERNEL_INT_H
#define DAMON_KERNEL_KERNEL_INT_H

#include <time.h>

#include "kernel.h"
#include "owner.h"
#include "sysfs.h"

/* libdamon's one kdamond is number 0, with one context. */
#define DM_KDS	"kernel/mm/damon/admin/kdamonds"
#define DM_KCTX DM_KDS "/0/contexts/0"

/* kdamond directories looked at when judging who holds DAMON */
#define MAX_KDAMONDS 64

static inline uint64_t dm_kernel_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct dm_ktarget {
	uint32_t id;
	pid_t pid;
	bool gone;
};

/* One region as read from the kernel, before it becomes a snapshot's. */
struct dm_kreg {
	uint64_t start, end;
	uint32_t nr_accesses, age;
	uint32_t tpos; /* the target's position in the kernel's list */
	uint32_t pad;
};

/* A scheme's stats before the kdamond last restarted (the kernel's start at 0). */
struct dm_kstat_base {
	const struct dm_scheme *sc;
	struct damos_stats st;
};

/* Where the fields of a damon_aggregated record are (from its format file). */
struct dm_kfield {
	uint32_t off, size;
};

struct dm_kernel {
	const struct dm_alloc *alloc;
	struct dm_sysfs fs;
	char *run_dir, *proc_root;
	int lock_fd;
	bool recorded, created;
	unsigned int reclaimed;	    /* orphans turned off at open */
	unsigned int tried_retries; /* tried_regions read again (regions vanished) */
	uint32_t ops;
	struct dm_mon_attrs attrs;
	struct dm_ktarget *targets; /* in the kernel's order */
	size_t nr_targets;
	struct dm_scheme *const *schemes;
	size_t nr_schemes; /* the caller's; the match-all one follows */
	struct dm_publisher *pub;
	pid_t kdamond_pid;
	struct dm_owner_rec rec; /* ours, rewritten when the kdamond's pid changes */
	/*
	 * The kdamond is not visible from this process's pid namespace: no
	 * tracepoint stream (perf_event_open takes pids of our namespace),
	 * and changes go through off + on, never "commit" (the kdamond looks
	 * the targets' pids up itself, in the initial pid namespace).
	 */
	bool pidns_foreign;
	char note[256]; /* why snapshots take the path they take, or "" */
	struct dm_kstat_base *stat_base; /* stats carried over a restart */
	size_t nr_stat_base;
	uint32_t path; /* enum dm_kernel_snap */
	bool paused;   /* the context's pause file says Y (dm_kernel_pause) */
	uint64_t seq, next_due_us, next_stats_us, next_state_us;
	uint64_t next_tuned_us; /* when to read the intervals the kernel tuned */
	struct dm_kreg *regbuf;
	size_t regcap;
	uint32_t *idxbuf; /* tried_regions directory names */
	size_t idxcap;

	/* trace.c */
	int wake_epfd; /* the perf fd joins this epoll set, or -1 */
	int trace_fd;
	uint64_t trace_id;
	void *ring;
	size_t ring_sz;
	struct dm_kfield f_target, f_nr_regions, f_start, f_end, f_nr_accesses, f_age;
	size_t nr_pending;	/* regions of the aggregation being received */
	uint32_t pending_tpos;	/* target position the stream is at */
	uint32_t pending_left;	/* regions of that target still to come */
	uint64_t lost;		/* records the ring dropped */
	bool resync;		/* drop records until an aggregation starts */
	uint64_t last_ev_ns;	/* CLOCK_MONOTONIC of the last event */
	uint64_t last_agg_ns;	/* ... of the last event of the last published aggregation */
	uint64_t agg_period_us; /* smoothed time between aggregations as kdamond keeps it */
};

/* claim.c: -EBUSY naming an exclusive module that runs, else 0. */
int dm_kernel_check_modules(const struct dm_sysfs *fs, struct dm_err *err);
/* claim.c: can DAMON be taken (-EBUSY with who holds it); @reclaim: turn
 * orphans off and drop stale records too (under the lock only). */
int dm_kernel_judge_kdamonds(struct dm_kernel *k, bool allow_takeover, bool reclaim,
			     struct dm_err *err);

/* kwrite.c: the intervals; targets and schemes (nr_* writes recreate their
 * directories); the whole context (operations set first). */
int dm_kernel_write_attrs(struct dm_kernel *k, const struct dm_mon_attrs *a, struct dm_err *err);
/* With an intervals goal: the intervals the kernel tuned, into k->attrs. */
int dm_kernel_read_tuned(struct dm_kernel *k, struct dm_err *err);
int dm_kernel_write_body(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err);
int dm_kernel_write_ctx(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err);

/* ksnap.c: room for @n regions in k->regbuf; publish k->regbuf[0..n). */
int dm_kernel_regbuf(struct dm_kernel *k, size_t n);
int dm_kernel_publish(struct dm_kernel *k, size_t n, struct dm_err *err);

/* tried.c: ask for the match-all scheme's tried_regions, read, publish. */
int dm_kernel_read_tried(struct dm_kernel *k, struct dm_err *err);
/* The regions listed under tried_regions directory @dir into k->regbuf
 * (positions guessed from addresses going back). Return: 0 and *ret_n, or
 * -errno with a sentence (-ENOENT: a region vanished while being read). */
int dm_kernel_read_tried_dir(struct dm_kernel *k, const char *dir, size_t *ret_n,
			     struct dm_err *err);

bool dm_ktrace_available(struct dm_kernel *k);
/* The damon_aggregated record's layout from the text of its format file
 * (@text is cut into lines in place; @path names it in sentences) into
 * k->f_*. -EINVAL with a sentence when a field is missing or unreadable. */
int dm_ktrace_parse_format(struct dm_kernel *k, char *text, const char *path, struct dm_err *err);
/* Is @pid (from kdamonds/N/pid: the initial pid namespace's number) a
 * kdamond kthread as this process sees it through @proc_root? */
bool dm_ktrace_kdamond_visible(const char *proc_root, pid_t pid);
int dm_ktrace_open(struct dm_kernel *k, struct dm_err *err);
int dm_ktrace_read(struct dm_kernel *k, struct dm_err *err);
void dm_ktrace_committed(struct dm_kernel *k);
void dm_ktrace_close(struct dm_kernel *k);

#endif
