/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The objects behind the public handles. Only lib/api and white-box tests
 * include this.
 */
#ifndef DAMON_API_INTERNAL_H
#define DAMON_API_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <damon/damon.h>

#include "../backend/backend.h"
#include "../core/schemes.h"
#include "../core/snapshot.h"
#include "../runner/runner.h"
#include "../util/alloc.h"
#include "../util/err.h"

/* Exported symbols carry this; everything else stays hidden. */
#define _public_ __attribute__((visibility("default")))

struct damon_target {
	struct damon_ctx *ctx;
	uint32_t id;               /* stable within the context */
	pid_t pid;                 /* real pid (vaddr, fvaddr); 0 for paddr */
	struct dm_range *fixed;    /* sorted */
	size_t nr_fixed, cap_fixed;
	bool gone;                 /* its process exited: left out of starts and commits */
	/* damon_target_set_ranges() on a running context: in force at the
	 * next commit (dm_target_commit_ranges()). */
	struct dm_range *pending;
	size_t nr_pending;
	struct damon_cgroup *cg;   /* the cgroup it is a member of, or NULL */
};

/* A followed cgroup (cgroup.c): its members are targets with cg == it. */
struct damon_cgroup {
	struct damon_ctx *ctx;
	int dirfd;                 /* the cgroup's directory */
	char *path;                /* for sentences: the path given, or "fd N" */
	uint64_t nr_joined, nr_left;
};

struct damos {
	struct damon_ctx *ctx;
	struct dm_scheme sc;
	size_t cap_goals, cap_filters; /* sc.goals, sc.filters */
};

#define DM_ERRSLOTS 8
/* Room for "no backend can run" followed by every backend's reason. */
#define DM_CTX_ERRMSG_MAX (DM_ERRMSG_MAX + (DAMON_BACKEND_MAX + 1) * 256)

/* The sentence of the last failed call, per calling thread. */
struct dm_errslot {
	pid_t tid;
	char msg[DM_CTX_ERRMSG_MAX];
};

struct damon_ctx {
	atomic_uint refcnt;
	/* A page that reads 0 in a child after fork() (MADV_WIPEONFORK): fork
	 * detection without a syscall on the hotness path. */
	volatile uint64_t *canary;
	pid_t owner_pid;           /* fallback when MADV_WIPEONFORK is missing */

	struct dm_alloc alloc;
	uint32_t ops, backend_req, flags;
	struct damon_attrs attrs;
	uint32_t cpu_budget_permille;
	char *sysfs_root, *proc_root;
	damon_log_fn log_fn;
	void *log_userdata;
	uint64_t seed;

	struct damon_target **targets;
	size_t nr_targets, cap_targets;
	uint32_t next_target_id;
	atomic_uint first_target_id; /* UINT32_MAX until the first target */
	struct damos **schemes;
	size_t nr_schemes, cap_schemes;
	struct damon_cgroup **cgroups;
	size_t nr_cgroups, cap_cgroups;
	uint64_t cg_next_us;       /* CLOCK_MONOTONIC of the next cgroup.procs read */

	int backend;               /* in use (AUTO before the first start) */
	bool judged;               /* status[] filled by a start */
	struct damon_backend_status status[DAMON_BACKEND_MAX + 1];

	/* White-box tests run the context on the simulated primitive. */
	const struct dm_ops *ops_override;
	void *ops_model;
	const struct dm_clock *clock_override;

	struct dm_publisher pub;
	/* The running backend, whichever it is (lib/backend/backend.h): set
	 * while running, detached under runner.lock. */
	struct dm_backend *be;
	bool running;              /* started and not stopped by the caller */
	bool paused;               /* damon_ctx_pause(); protected by runner.lock */
	struct dm_runner runner;
	struct dm_scheme **be_schemes; /* the scheme list the backend holds */
	size_t nr_be_schemes;
	struct dm_mon_attrs be_attrs;  /* the attributes the backend holds */
	atomic_ulong nr_snapshots;
	struct dm_err monitor_err; /* protected by runner.lock */

	pthread_mutex_t errlock;
	struct dm_errslot errslots[DM_ERRSLOTS];
	unsigned int errnext;
};

/* ctx->canary holds this until a fork() child's copy reads 0 (entry.c). */
#define DM_CANARY_MAGIC 0x64616d6f6e2d6f6bULL /* "damon-ok" */

/* Has this context been inherited through fork()? */
bool dm_ctx_forked(const damon_ctx *ctx);

/* Common entry check: NULL and fork. */
#define CHECK_CTX(ctx)                                                                     \
	do {                                                                               \
		if (!(ctx))                                                                \
			return -EINVAL;                                                    \
		if (dm_ctx_forked(ctx))                                                    \
			return -ECHILD;                                                    \
	} while (0)

/* Stop a running context: its thread, its backend (run.c). */
void dm_ctx_halt(damon_ctx *ctx);

/* What the probe needs to judge backends for this context (status.c). */
struct dm_probe_in;
void dm_ctx_probe_input(const damon_ctx *ctx, struct dm_probe_in *in);

/* Record the calling thread's sentence and return @code. */
int dm_ctx_fail(const damon_ctx *ctx, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int dm_ctx_fail_err(const damon_ctx *ctx, const struct dm_err *err);

/* Copy @src_sz bytes of an output struct into the caller's, which says its
 * own size in its first field. -EINVAL when it is smaller than @min_sz. */
int dm_copy_out(void *dst, const void *src, size_t src_sz, size_t min_sz);

/* Is an options struct of @user_sz bytes acceptable for one we know as
 * @known_sz bytes (unknown tail bytes must be zero)? */
bool dm_opts_ok(const void *opts, size_t user_sz, size_t known_sz);

/* Free a scheme with its goals and filters (scheme.c). */
void dm_schemes_free(damon_ctx *ctx, struct damos *s);

/* The context as backend @backend gets it (run.c); cfg->targets is
 * allocated: -ENOMEM, else free it with dm_ctx_backend_cfg_free(). */
int dm_ctx_backend_cfg(damon_ctx *ctx, int backend, struct dm_backend_cfg *cfg);
void dm_ctx_backend_cfg_free(damon_ctx *ctx, struct dm_backend_cfg *cfg);

/* Put the ranges damon_target_set_ranges() left pending in force (the
 * caller holds runner.lock). Return: true when there were some. */
bool dm_target_commit_ranges(damon_target *t);

/* Append a target for @pid (the real pid) with the next id (targets.c).
 * While the library thread may follow cgroups, the caller holds
 * runner.lock. 0 or -ENOMEM. */
int dm_ctx_append_target(damon_ctx *ctx, pid_t pid, struct damon_cgroup *cg,
			 damon_target **ret);

/* cgroup.c: read every followed cgroup's members and add or drop targets
 * (the caller holds runner.lock while running, and hands a change to the
 * backend). Return: whether anything changed. */
bool dm_ctx_cgroup_sync(damon_ctx *ctx);
/* A member the backend found exited (on_target_gone, runner.lock held). */
void dm_ctx_cgroup_member_gone(damon_ctx *ctx, damon_target *t, const struct dm_err *why);
/* Free the context's cgroups (ctx_free). */
void dm_ctx_cgroups_free(damon_ctx *ctx);
/* The backends that cannot follow a cgroup, refused in @st (choose_backend). */
void dm_ctx_cgroup_judge(const damon_ctx *ctx, struct damon_backend_status *st);

/* White-box hooks (tests): run the context on @ops with @model and @clock. */
void dm_ctx_set_ops_override(damon_ctx *ctx, const struct dm_ops *ops, void *model,
			     const struct dm_clock *clock);

#endif
