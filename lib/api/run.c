// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Running a context: the backend chosen and started, its steps on the
 * library thread or through damon_ctx_step(), commit, pause, stop.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../probe/probe.h"
#include "../util/proc.h"
#include "internal.h"

static bool monitor_ended(damon_ctx *ctx);

/* Judge every backend; return the one to run or -EOPNOTSUPP with errmsg. */
static int choose_backend(damon_ctx *ctx)
{
	struct dm_probe_in in;
	char msg[DM_CTX_ERRMSG_MAX];
	size_t len = 0;
	int b;

	dm_ctx_probe_input(ctx, &in);
	for (int i = 0; i <= DAMON_BACKEND_MAX; i++) {
		memset(&ctx->status[i], 0, sizeof(ctx->status[i]));
		ctx->status[i].sz = sizeof(ctx->status[i]);
	}
	if (ctx->backend_req == DAMON_BACKEND_AUTO) {
		b = dm_probe_auto(&in, ctx->status);
		if (ctx->nr_cgroups) {
			dm_ctx_cgroup_judge(ctx, ctx->status);
			b = dm_probe_auto_pick(ctx->status);
		}
	} else {
		for (int i = 1; i <= DAMON_BACKEND_MAX; i++)
			dm_probe_backend(&in, i, &ctx->status[i]);
		dm_ctx_cgroup_judge(ctx, ctx->status);
		b = ctx->status[ctx->backend_req].usable ? (int)ctx->backend_req : -EOPNOTSUPP;
	}
	ctx->judged = true;
	if (b >= 0)
		return b;
	if (ctx->backend_req != DAMON_BACKEND_AUTO)
		return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s", ctx->status[ctx->backend_req].reason);
	len = (size_t)snprintf(msg, sizeof(msg), "no backend can monitor this here");
	for (int i = 1; i <= DAMON_BACKEND_MAX && len < sizeof(msg); i++)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len, "; %s",
					ctx->status[i].reason);
	return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s", msg);
}

/*
 * The chosen backend could not be started after all (the probe only reads:
 * a lock, a race, the kernel's own EBUSY). AUTO keeps the sentence as that
 * backend's verdict and takes the next usable one; -EOPNOTSUPP when there
 * is none.
 */
static int fallback(damon_ctx *ctx, int failed, const struct dm_err *err)
{
	struct damon_backend_status *st = &ctx->status[failed];
	char msg[DM_CTX_ERRMSG_MAX];
	size_t len;
	int b;

	st->usable = 0;
	snprintf(st->reason, sizeof(st->reason), "%.*s", (int)sizeof(st->reason) - 1, err->msg);
	b = dm_probe_auto_pick(ctx->status);
	if (b >= 0)
		return b;
	len = (size_t)snprintf(msg, sizeof(msg), "no backend can monitor this here; %s", err->msg);
	for (int i = 1; i <= DAMON_BACKEND_MAX && len < sizeof(msg); i++)
		if (i != failed)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, "; %s",
						ctx->status[i].reason);
	return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s", msg);
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The backend published @n snapshots: count them, wake the fd's poller. */
static void on_published(void *arg, uint64_t n)
{
	damon_ctx *ctx = arg;

	atomic_fetch_add_explicit(&ctx->nr_snapshots, n, memory_order_relaxed);
	if (!ctx->runner.manual)
		dm_runner_notify(&ctx->runner);
}

static void on_target_gone(void *arg, uint32_t id, const struct dm_err *why)
{
	damon_ctx *ctx = arg;

	/* dropped for good: no call removes a target, and a start or a commit
	 * that handed it on again would fail with -ESRCH for ever */
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		damon_target *t = ctx->targets[i];

		if (t->id != id)
			continue;
		if (t->cg) {
			/* a member that exits is news, not trouble */
			dm_ctx_cgroup_member_gone(ctx, t, why);
			return;
		}
		t->gone = true;
	}
	if (!why)
		return;
	ctx->monitor_err = *why;
	if (ctx->log_fn)
		ctx->log_fn(ctx, DAMON_LOG_WARNING, why->msg, ctx->log_userdata);
}

static void log_warning(damon_ctx *ctx, const char *msg)
{
	if (ctx->log_fn)
		ctx->log_fn(ctx, DAMON_LOG_WARNING, msg, ctx->log_userdata);
}

/* Hand the new member set to the running backend: targets only, with the
 * attributes and schemes it already runs (a pending damon_ctx_set_attrs()
 * or damon_ctx_add_scheme() waits for the caller's commit). */
static void commit_members(damon_ctx *ctx)
{
	struct dm_backend_cfg cfg;
	struct dm_err err = { 0 };
	int rc;

	if (dm_ctx_backend_cfg(ctx, ctx->backend, &cfg)) {
		log_warning(ctx, "out of memory passing cgroup members on");
		return;
	}
	cfg.attrs = ctx->be_attrs;
	cfg.nr_schemes = ctx->nr_be_schemes;
	cfg.targets_only = true;
	rc = ctx->be->ops->commit(ctx->be, &cfg, &err);
	dm_ctx_backend_cfg_free(ctx, &cfg);
	if (rc)
		log_warning(ctx, err.msg);
}

/* The runner's step (lib/runner), and damon_ctx_step()'s. */
static int run_step(void *arg, uint64_t *next_us)
{
	damon_ctx *ctx = arg;
	struct dm_err err = {0};
	uint64_t now = 0;
	int ret;

	if (ctx->paused) {
		/* nothing is due until damon_ctx_resume() (or stop) */
		*next_us = DM_RUNNER_IDLE;
		return 0;
	}
	if (ctx->nr_cgroups) {
		now = mono_us();
		if (now >= ctx->cg_next_us) {
			if (dm_ctx_cgroup_sync(ctx))
				commit_members(ctx);
			ctx->cg_next_us = now + ctx->be_attrs.update_us;
		}
	}
	ret = ctx->be->ops->step(ctx->be, next_us, &err);
	if (ret >= 0 && ctx->nr_cgroups) {
		/* the next read of cgroup.procs is due work too */
		uint64_t left = ctx->cg_next_us > now ? ctx->cg_next_us - now : 1;

		if (*next_us > left)
			*next_us = left;
	}
	if (ret < 0) {
		ctx->monitor_err = err;
		if (ctx->log_fn)
			ctx->log_fn(ctx, DAMON_LOG_ERR, err.msg, ctx->log_userdata);
	}
	return ret;
}

/* The scheme list the backend gets (a copy the context owns; the backend
 * takes the new one at its start or commit, see backend.h). */
static int sync_schemes(damon_ctx *ctx)
{
	struct dm_scheme **v = NULL;

	if (ctx->nr_schemes) {
		v = dm_calloc(&ctx->alloc, ctx->nr_schemes, sizeof(*v));
		if (!v)
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory passing schemes on");
		for (size_t i = 0; i < ctx->nr_schemes; i++)
			v[i] = &ctx->schemes[i]->sc;
	}
	dm_free(&ctx->alloc, ctx->be_schemes);
	ctx->be_schemes = v;
	ctx->nr_be_schemes = ctx->nr_schemes;
	return 0;
}

static struct dm_mon_attrs mon_attrs(const damon_ctx *ctx)
{
	struct dm_mon_attrs a = {
		.sample_us = ctx->attrs.sample_us,
		.aggr_us = ctx->attrs.aggr_us,
		.update_us = ctx->attrs.update_us,
		.min_nr_regions = ctx->attrs.min_nr_regions,
		.max_nr_regions = ctx->attrs.max_nr_regions,
		.cpu_budget_permille = ctx->cpu_budget_permille,
		.goal = {
			.access_bp = ctx->attrs.intervals_goal.access_bp,
			.aggrs = ctx->attrs.intervals_goal.aggrs,
			.min_sample_us = ctx->attrs.intervals_goal.min_sample_us,
			.max_sample_us = ctx->attrs.intervals_goal.max_sample_us,
		},
	};
	return a;
}

static uint64_t pick_seed(const damon_ctx *ctx)
{
	struct timespec ts;

	if (ctx->seed)
		return ctx->seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
}

int dm_ctx_backend_cfg(damon_ctx *ctx, int backend, struct dm_backend_cfg *cfg)
{
	struct dm_backend_target *v = NULL;
	size_t n = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (ctx->nr_targets) {
		v = dm_calloc(&ctx->alloc, ctx->nr_targets, sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		const struct damon_target *t = ctx->targets[i];

		if (t->gone)
			continue; /* they keep their place: target_idx is the id */
		v[n].id = t->id;
		v[n].pid = t->pid;
		v[n].fixed = t->fixed;
		v[n].nr_fixed = t->nr_fixed;
		v[n].member = t->cg != NULL;
		n++;
	}
	cfg->backend = backend;
	cfg->ops = ctx->ops;
	cfg->sysfs_root = ctx->sysfs_root;
	cfg->proc_root = ctx->proc_root;
	cfg->alloc = &ctx->alloc;
	cfg->attrs = mon_attrs(ctx);
	cfg->targets = v;
	cfg->nr_targets = n;
	cfg->schemes = ctx->be_schemes;
	cfg->nr_schemes = ctx->nr_schemes;
	cfg->pub = &ctx->pub;
	cfg->seq_base = atomic_load(&ctx->nr_snapshots);
	cfg->seed = pick_seed(ctx);
	cfg->wake_epfd = dm_runner_wait_set(&ctx->runner);
	cfg->ev.published = on_published;
	cfg->ev.target_gone = on_target_gone;
	cfg->ev.arg = ctx;
	cfg->hold = ctx->nr_cgroups > 0;
	cfg->sim_ops = ctx->ops_override;
	cfg->sim_model = ctx->ops_model;
	cfg->sim_clock = ctx->clock_override;
	return 0;
}

void dm_ctx_backend_cfg_free(damon_ctx *ctx, struct dm_backend_cfg *cfg)
{
	dm_free(&ctx->alloc, (void *)cfg->targets);
	cfg->targets = NULL;
}

/* Start backend @backend (AUTO: the next usable one when it cannot be
 * taken after all); the backend number that runs, or -errno with errmsg.
 * Called with runner.lock held: ctx->be is read under it by calls from
 * other threads (damon_ctx_status(), damos_set_goal_current()). */
static int start_backend(damon_ctx *ctx, int backend, uint64_t *ret_first_us)
{
	for (;;) {
		const struct dm_backend_ops *ops =
			dm_backend_get(backend, ctx->ops_override != NULL);
		struct dm_backend *be = NULL;
		struct dm_backend_cfg cfg;
		struct dm_err err = {0};
		int ret;

		if (!ops)
			return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s: not implemented in this version",
					   damon_backend_name(backend));
		if (dm_ctx_backend_cfg(ctx, backend, &cfg))
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory");
		ret = ops->start(&be, &cfg, ret_first_us, &err);
		dm_ctx_backend_cfg_free(ctx, &cfg);
		if (!ret) {
			ctx->be = be;
			return backend;
		}
		if (ctx->backend_req != DAMON_BACKEND_AUTO || !ops->auto_fallback)
			return dm_ctx_fail_err(ctx, &err);
		backend = fallback(ctx, backend, &err);
		if (backend < 0)
			return backend;
	}
}

/* Targets a start would monitor: those not dropped because they exited. */
static size_t nr_alive(const damon_ctx *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < ctx->nr_targets; i++)
		n += !ctx->targets[i]->gone;
	return n;
}

/*
 * A target not dropped whose process is gone (or exiting) fails the start
 * with -ESRCH: judging a backend by a pid it can no longer read blamed the
 * backend ("cannot read /proc/PID/pagemap") with -EOPNOTSUPP.
 */
static int targets_exist(const damon_ctx *ctx)
{
	pid_t self = getpid();

	if (ctx->ops == DAMON_OPS_PADDR)
		return 0;
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		const struct damon_target *t = ctx->targets[i];

		/* a cgroup's member that exited is dropped at start */
		if (t->gone || t->pid == self || t->cg)
			continue;
		if (dm_proc_pid_alive(ctx->proc_root, t->pid) == -ESRCH)
			return dm_ctx_fail(ctx, -ESRCH, "target %zu: process %d is gone", i,
					   (int)t->pid);
	}
	return 0;
}

/* damon_ctx_start() past its checks and the probe, with runner.lock held. */
static int start_locked(damon_ctx *ctx, int backend)
{
	uint64_t first_us = 0;
	const char *note;
	int ret;

	ret = sync_schemes(ctx);
	if (ret)
		return ret;
	backend = start_backend(ctx, backend, &first_us);
	if (backend < 0)
		return backend;
	memset(&ctx->monitor_err, 0, sizeof(ctx->monitor_err));
	ctx->backend = backend;
	ctx->be_attrs = mon_attrs(ctx);
	ctx->cg_next_us = mono_us() + ctx->attrs.update_us;
	/* how it runs, when it is not what the probe expected (a pid namespace
	 * that cannot see the kdamond): damon_ctx_backend_status() */
	note = ctx->be->ops->note(ctx->be);
	if (*note)
		snprintf(ctx->status[backend].reason, sizeof(ctx->status[backend].reason), "%s",
			 note);
	if (ctx->runner.manual) {
		dm_runner_arm(&ctx->runner, first_us);
	} else {
		/* the new thread waits for the lock before its first step */
		ret = dm_runner_start(&ctx->runner, run_step, ctx);
		if (ret) {
			struct dm_backend *be = ctx->be;

			ctx->be = NULL;
			be->ops->stop(be, false);
			return dm_ctx_fail(ctx, ret, "could not start the monitoring thread: %s",
					   strerror(-ret));
		}
	}
	ctx->running = true;
	return 0;
}

_public_ int damon_ctx_start(damon_ctx *ctx)
{
	int backend, ret;

	CHECK_CTX(ctx);
	if (ctx->running && monitor_ended(ctx))
		dm_ctx_halt(ctx); /* every target exited: start afresh */
	if (ctx->running)
		return dm_ctx_fail(ctx, -EBUSY, "the context is already running");
	/* the members as they are now */
	dm_ctx_cgroup_sync(ctx);
	if (ctx->nr_cgroups && !nr_alive(ctx))
		return dm_ctx_fail(ctx, -ESRCH, "no target: the cgroup%s %s no process and no "
				   "other target lives", ctx->nr_cgroups > 1 ? "s" : "",
				   ctx->nr_cgroups > 1 ? "have" : "has");
	if (!ctx->nr_targets)
		return dm_ctx_fail(ctx, -EINVAL, "no target: call damon_ctx_add_target() first");
	/* ranges set during the last run and never committed */
	for (size_t i = 0; i < ctx->nr_targets; i++)
		dm_target_commit_ranges(ctx->targets[i]);
	for (size_t i = 0; i < ctx->nr_targets; i++)
		if (ctx->ops == DAMON_OPS_FVADDR && !ctx->targets[i]->nr_fixed)
			return dm_ctx_fail(ctx, -EINVAL,
					   "fvaddr target %zu has no range: call "
					   "damon_target_add_range()",
					   i);
	if (!nr_alive(ctx))
		return dm_ctx_fail(ctx, -ESRCH, "every target exited (and was dropped): add a "
				   "target before starting again");
	ret = targets_exist(ctx);
	if (ret)
		return ret;
	if (ctx->ops_override) {
		backend = ctx->backend_req ? (int)ctx->backend_req : DAMON_BACKEND_UFFD_WP;
	} else {
		backend = choose_backend(ctx);
		/* a target that exited while the probe ran: that, not the backend */
		if (backend < 0 && targets_exist(ctx))
			return -ESRCH;
		if (backend < 0)
			return backend;
	}
	/*
	 * Under the lock: damon_ctx_status(), damos_get_stats(),
	 * damos_get_quota() and damos_set_goal_current() may run in other
	 * threads meanwhile and read what this sets up (the backend, the
	 * schemes' state the monitor resets, running; found by
	 * ThreadSanitizer on tests/test-threads.c).
	 */
	pthread_mutex_lock(&ctx->runner.lock);
	ret = start_locked(ctx, backend);
	pthread_mutex_unlock(&ctx->runner.lock);
	return ret;
}

void dm_ctx_halt(damon_ctx *ctx)
{
	dm_runner_stop(&ctx->runner);
	/* torn down under the lock, as damon_ctx_start() sets up: the
	 * readers of status, stats and quotas and damos_set_goal_current()
	 * may run in other threads */
	pthread_mutex_lock(&ctx->runner.lock);
	if (ctx->be)
		ctx->be->ops->stop(ctx->be, false);
	ctx->be = NULL;
	ctx->paused = false; /* the next start runs */
	ctx->running = false;
	pthread_mutex_unlock(&ctx->runner.lock);
}

/* Did the monitor end by itself (every target gone)? */
static bool monitor_ended(damon_ctx *ctx)
{
	bool ended;

	pthread_mutex_lock(&ctx->runner.lock);
	ended = ctx->be && ctx->be->ops->ended(ctx->be);
	pthread_mutex_unlock(&ctx->runner.lock);
	return ended;
}

_public_ int damon_ctx_stop(damon_ctx *ctx)
{
	CHECK_CTX(ctx);
	if (!ctx->running)
		return dm_ctx_fail(ctx, -EALREADY, "the context is not running");
	if (monitor_ended(ctx)) {
		dm_ctx_halt(ctx);
		return dm_ctx_fail(ctx, -EALREADY, "the monitor had already ended: %s",
				   ctx->monitor_err.msg);
	}
	dm_ctx_halt(ctx);
	return 0;
}

/* After a change: the thread re-reads what is due; the manual fd is
 * readable at once, or disarmed while paused. Call with runner.lock held. */
static void wake_runner(damon_ctx *ctx)
{
	if (ctx->runner.manual)
		dm_runner_arm(&ctx->runner, ctx->paused ? DM_RUNNER_IDLE : 1);
	else
		dm_runner_kick(&ctx->runner);
}

_public_ int damon_ctx_commit(damon_ctx *ctx)
{
	struct dm_backend_cfg cfg;
	struct dm_err err = {0};
	int ret;

	CHECK_CTX(ctx);
	if (!ctx->running || monitor_ended(ctx))
		return dm_ctx_fail(ctx, -EALREADY, "the context is not running");
	pthread_mutex_lock(&ctx->runner.lock);
	/* damon_target_set_ranges() while running: the backend lays such a
	 * target out again from the new ranges (the old array is freed here,
	 * the backend takes the new one in the same locked section) */
	for (size_t i = 0; i < ctx->nr_targets; i++)
		dm_target_commit_ranges(ctx->targets[i]);
	ret = sync_schemes(ctx);
	if (!ret && dm_ctx_backend_cfg(ctx, ctx->backend, &cfg))
		ret = dm_ctx_fail(ctx, -ENOMEM, "out of memory");
	if (!ret) {
		ret = ctx->be->ops->commit(ctx->be, &cfg, &err);
		if (!ret)
			ctx->be_attrs = cfg.attrs;
		dm_ctx_backend_cfg_free(ctx, &cfg);
	}
	wake_runner(ctx);
	pthread_mutex_unlock(&ctx->runner.lock);
	if (ret && err.code)
		return dm_ctx_fail_err(ctx, &err);
	return ret;
}

_public_ int damon_ctx_step(damon_ctx *ctx, uint64_t *ret_next_us)
{
	uint64_t next = 0;
	int ret;

	CHECK_CTX(ctx);
	if (!ctx->runner.manual)
		return dm_ctx_fail(ctx, -EINVAL,
				   "the context has its own thread; "
				   "damon_ctx_step() needs DAMON_CTX_MANUAL");
	if (!ctx->running || ctx->be->ops->ended(ctx->be))
		return dm_ctx_fail(ctx, -EALREADY, "the context is not running%s%s",
				   ctx->monitor_err.code ? ": " : "", ctx->monitor_err.msg);
	pthread_mutex_lock(&ctx->runner.lock);
	ret = run_step(ctx, &next);
	pthread_mutex_unlock(&ctx->runner.lock);
	if (ret < 0)
		return dm_ctx_fail_err(ctx, &ctx->monitor_err);
	dm_runner_arm(&ctx->runner, next); /* paused: disarmed until resumed */
	if (next == DM_RUNNER_IDLE)
		next = ctx->attrs.update_us; /* paused: nothing due; a bounded wait */
	if (ret_next_us)
		*ret_next_us = next;
	return 0;
}

/* damon_ctx_pause() (@pause) and damon_ctx_resume(). */
static int set_paused(damon_ctx *ctx, bool pause)
{
	const char *verb = pause ? "pause" : "resume";
	struct dm_err err = {0};
	int ret = 0;

	CHECK_CTX(ctx);
	if (!ctx->running)
		return dm_ctx_fail(ctx, -EINVAL,
				   "the context is not running: only a started "
				   "context can %s",
				   verb);
	if (monitor_ended(ctx))
		return dm_ctx_fail(ctx, -EINVAL,
				   "the monitor has ended, there is nothing to "
				   "%s: %s",
				   verb, ctx->monitor_err.msg);
	pthread_mutex_lock(&ctx->runner.lock);
	if (ctx->paused != pause) {
		ret = ctx->be->ops->pause(ctx->be, pause, &err);
		if (!ret)
			ctx->paused = pause;
	}
	/* paused: the thread goes to sleep with no timer; resumed: work is due */
	wake_runner(ctx);
	pthread_mutex_unlock(&ctx->runner.lock);
	if (ret)
		return dm_ctx_fail_err(ctx, &err);
	return 0;
}

_public_ int damon_ctx_pause(damon_ctx *ctx)
{
	return set_paused(ctx, true);
}

_public_ int damon_ctx_resume(damon_ctx *ctx)
{
	return set_paused(ctx, false);
}

_public_ int damon_ctx_fd(const damon_ctx *ctx)
{
	CHECK_CTX(ctx);
	return ctx->runner.fd;
}
