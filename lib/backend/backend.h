/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The one interface between lib/api and what monitors: a table of
 * operations (struct dm_backend_ops) and its two implementations,
 *  - the engine (engine.c): lib/core's monitor over one lib/ops primitive
 *    (page_idle, uffd_wp, soft_dirty, fault), DAMOS executed by lib/actions;
 *  - the kernel (kernel.c): kernel DAMON through lib/kernel, the kdamond
 *    being the engine.
 * The API finds the table of a backend number with dm_backend_get(),
 * starts an instance and from then on calls only through the table: it
 * never asks which implementation runs. Both publish snapshots into the
 * struct dm_publisher they are given and tell the API through
 * struct dm_backend_events; the schemes they are given are the API's, and
 * they write stats back into them.
 *
 * Threads: the API calls every operation of a started instance with its
 * runner's lock held (the lock its library thread steps under), except
 * start and stop, which run when no step can.
 */
#ifndef DAMON_BACKEND_BACKEND_H
#define DAMON_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <damon/damon.h>

#include "../core/monitor.h"
#include "../core/schemes.h"
#include "../core/snapshot.h"
#include "../util/alloc.h"
#include "../util/err.h"

/* One target of the context. */
struct dm_backend_target {
	uint32_t id;		      /* stable within the context */
	pid_t pid;		      /* real pid (vaddr, fvaddr); 0 for paddr */
	const struct dm_range *fixed; /* fvaddr/paddr ranges, sorted; the API's */
	size_t nr_fixed;
	bool member;		      /* a cgroup's process: one that exited by the time
					 it is handed on is dropped, not a failure */
};

/* What an instance tells the API while it runs (called under the lock). */
struct dm_backend_events {
	/* @n more snapshots were published. */
	void (*published)(void *arg, uint64_t n);
	/* A target went away while the instance goes on; @why says which. */
	/* Target @id went away; @why says how (NULL: found at stop, nothing to
	 * log). The API leaves it out of later starts and commits. */
	void (*target_gone)(void *arg, uint32_t id, const struct dm_err *why);
	void *arg;
};

/* The context as a backend gets it, at start and at every commit. */
struct dm_backend_cfg {
	int backend;		/* enum damon_backend this runs as */
	uint32_t ops;		/* enum damon_ops */
	const char *sysfs_root; /* NULL: "/sys" */
	const char *proc_root;	/* NULL: "/proc" */
	const struct dm_alloc *alloc;
	struct dm_mon_attrs attrs;
	const struct dm_backend_target *targets; /* copied: may be freed after the call */
	size_t nr_targets;
	/*
	 * The API's schemes, in the order added. The array is kept until the
	 * next commit or stop, and taken by a commit before anything in it can
	 * fail (schemes are only ever appended, so what ran before is a prefix
	 * of it); the schemes themselves outlive the instance.
	 */
	struct dm_scheme *const *schemes;
	size_t nr_schemes;
	struct dm_publisher *pub; /* where snapshots go */
	uint64_t seq_base;	  /* snapshots are numbered from seq_base + 1 */
	uint64_t seed;
	/* The epoll set whoever steps sleeps on (the library thread's, or
	 * manual mode's damon_ctx_fd()), which fds that signal work may join
	 * (dm_runner_wait_set()). */
	int wake_epfd;
	struct dm_backend_events ev;
	/* The context follows a cgroup (damon_ctx_add_cgroup()): targets come
	 * and go, so having none alive for a while is not the end. */
	bool hold;
	/* A commit of cgroup membership: only the target list changed;
	 * attributes and schemes are those the instance runs. Targets it
	 * monitors that the list lacks are dropped (they left the cgroup). */
	bool targets_only;
	/* White-box tests: the engine on this primitive, model and clock. */
	const struct dm_ops *sim_ops;
	void *sim_model;
	const struct dm_clock *sim_clock;
};

/* How a started instance is doing (damon_ctx_status()). */
struct dm_backend_state {
	bool running;		      /* has not ended by itself */
	uint32_t nr_targets;	      /* targets alive */
	uint64_t sample_us, aggr_us;  /* intervals in force; 0: as configured */
	const struct dm_err *trouble; /* what troubles it while it runs, or NULL */
};

/* A started instance; each implementation embeds it first. */
struct dm_backend {
	const struct dm_backend_ops *ops;
};

struct dm_backend_ops {
	const char *name;
	/*
	 * Backends judged usable may still fail to start: the probe only
	 * reads, and another user may take kernel DAMON in between. AUTO then
	 * moves on to the next usable backend when this is set.
	 */
	bool auto_fallback;

	/*
	 * Can this backend run scheme @s, number @idx of the context? @be: the
	 * running instance, or NULL when the scheme is judged before a start
	 * (@cfg then has no targets). 0, or -EOPNOTSUPP/-EPERM with a sentence.
	 */
	int (*scheme_check)(const struct dm_backend_cfg *cfg, const struct dm_backend *be,
			    const struct dm_scheme *s, size_t idx, struct dm_err *err);
	/* Can the running instance judge filter @f, added to one of its
	 * schemes? 0, or -EOPNOTSUPP with a sentence. */
	int (*filter_check)(const struct dm_backend *be, const struct damos_filter_opts *f,
			    struct dm_err *err);

	/* Start monitoring what @cfg says. *@ret_first_us: when the first step
	 * is due. On failure nothing is left behind. */
	int (*start)(struct dm_backend **ret, const struct dm_backend_cfg *cfg,
		     uint64_t *ret_first_us, struct dm_err *err);
	/* Do what is due; *@next_us: when more is. < 0 with @err: the step
	 * failed (-ESRCH: every target is gone, the instance has ended). */
	int (*step)(struct dm_backend *be, uint64_t *next_us, struct dm_err *err);
	/* Take new attributes, targets (those not yet monitored are added,
	 * those monitored and no longer listed are dropped without a
	 * target_gone event: the API dropped them) and schemes while running. */
	int (*commit)(struct dm_backend *be, const struct dm_backend_cfg *cfg, struct dm_err *err);
	/* Pause (@pause) or resume: regions, ages and schemes are kept. */
	int (*pause)(struct dm_backend *be, bool pause, struct dm_err *err);
	/* The current value of user_input goal @goal of @sc changed (the API
	 * wrote it into @sc): pass it on where the engine does not read @sc. */
	int (*goal_current)(struct dm_backend *be, const struct dm_scheme *sc, size_t goal,
			    uint64_t value, struct dm_err *err);
	/* Has it ended by itself (every target gone)? */
	bool (*ended)(const struct dm_backend *be);
	void (*status)(const struct dm_backend *be, struct dm_backend_state *ret);
	/* A sentence on how it runs when that is not what the probe expected
	 * (damon_ctx_backend_status()), else "". */
	const char *(*note)(const struct dm_backend *be);
	/* Stop and free. @forked: in a child after fork(), free memory and
	 * close fds only, never touch what the parent still runs. */
	void (*stop)(struct dm_backend *be, bool forked);
};

extern const struct dm_backend_ops dm_backend_engine;
extern const struct dm_backend_ops dm_backend_kernel;

/*
 * The table of backend @backend (DAMON_BACKEND_KERNEL ..
 * DAMON_BACKEND_MAX), or NULL for AUTO and unknown numbers. @sim: a
 * white-box test runs the engine on a simulated primitive, whatever the
 * number.
 */
const struct dm_backend_ops *dm_backend_get(int backend, bool sim);

/* Can backend @backend monitor processes other than the caller (a
 * cgroup's members)? AUTO: true (it picks one that can). */
bool dm_backend_sees_others(int backend);

/* White-box tests: the kdamond handle of a kernel instance, else NULL. */
struct dm_kernel;
struct dm_kernel *dm_backend_kdamond(const struct dm_backend *be);

#endif
