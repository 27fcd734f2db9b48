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
	} else {
		for (int i = 1; i <= DAMON_BACKEND_MAX; i++)
			dm_probe_backend(&in, i, &ctx->status[i]);
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

static const struct dm_ops *backend_ops(int backend)
{
	switch (backend) {
	case DAMON_BACKEND_UFFD_WP:
		return &dm_ops_uffd_wp;
	case DAMON_BACKEND_PAGE_IDLE:
		return &dm_ops_page_idle;
	case DAMON_BACKEND_SOFT_DIRTY:
		return &dm_ops_soft_dirty;
	case DAMON_BACKEND_FAULT:
		return &dm_ops_fault;
	default:
		return NULL;
	}
}

static void hook_published(struct dm_monitor *m, void *arg)
{
	damon_ctx *ctx = arg;

	atomic_fetch_add_explicit(&ctx->nr_snapshots, 1, memory_order_relaxed);
	if (!ctx->runner.manual)
		dm_runner_notify(&ctx->runner);
}

static void hook_target_gone(struct dm_monitor *m, struct dm_mon_target *t,
			     const struct dm_err *why, void *arg)
{
	damon_ctx *ctx = arg;

	ctx->monitor_err = *why;
	if (ctx->log_fn)
		ctx->log_fn(ctx, DAMON_LOG_WARNING, why->msg, ctx->log_userdata);
}

/* Count what the kernel backend published since it had published @before. */
static void kern_count(damon_ctx *ctx, uint64_t before)
{
	uint64_t n = dm_kernel_nr_published(ctx->kern) - before;

	if (n) {
		atomic_fetch_add_explicit(&ctx->nr_snapshots, n, memory_order_relaxed);
		if (!ctx->runner.manual)
			dm_runner_notify(&ctx->runner);
	}
}

static int kern_step(damon_ctx *ctx, uint64_t *next_us)
{
	struct dm_err err = {0};
	uint64_t before = dm_kernel_nr_published(ctx->kern);
	int ret = dm_kernel_step(ctx->kern, next_us, &err);

	kern_count(ctx, before);
	if (ret < 0) {
		ctx->monitor_err = err;
		if (ret == -ESRCH)
			ctx->kern_ended = true;
		if (ctx->log_fn)
			ctx->log_fn(ctx, DAMON_LOG_ERR, err.msg, ctx->log_userdata);
	}
	return ret;
}

static int mon_step(void *arg, uint64_t *next_us)
{
	damon_ctx *ctx = arg;
	int err;

	if (ctx->paused) {
		/* nothing is due until damon_ctx_resume() (or stop) */
		*next_us = DM_RUNNER_IDLE;
		return 0;
	}
	if (ctx->kern)
		return kern_step(ctx, next_us);
	err = dm_monitor_step(&ctx->mon, next_us);

	if (err < 0) {
		ctx->monitor_err = ctx->mon.err;
		if (ctx->log_fn)
			ctx->log_fn(ctx, DAMON_LOG_ERR, ctx->mon.err.msg, ctx->log_userdata);
	}
	return err;
}

/* Give the monitor the current scheme list (a copy it owns). */
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
	dm_free(&ctx->alloc, ctx->mon_schemes);
	ctx->mon_schemes = v;
	ctx->mon.schemes = v;
	ctx->mon.nr_schemes = ctx->nr_schemes;
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

/* The kernel backend's view of the context; @kt has nr_targets slots. */
static void kernel_cfg(damon_ctx *ctx, struct dm_kernel_cfg *cfg, struct dm_kernel_target *kt)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		const struct damon_target *t = ctx->targets[i];

		kt[i].id = t->mt.id;
		kt[i].pid = t->mt.ot.pid;
		kt[i].fixed = t->fixed;
		kt[i].nr_fixed = t->nr_fixed;
	}
	cfg->sysfs_root = ctx->sysfs_root;
	cfg->proc_root = ctx->proc_root;
	cfg->ops = ctx->ops;
	cfg->attrs = mon_attrs(ctx);
	cfg->targets = kt;
	cfg->nr_targets = ctx->nr_targets;
	cfg->schemes = ctx->mon_schemes;
	cfg->nr_schemes = ctx->nr_schemes;
	cfg->pub = &ctx->pub;
	cfg->alloc = &ctx->alloc;
	cfg->seq_base = atomic_load(&ctx->nr_snapshots);
	/* manual mode: damon_ctx_fd() turns readable when records land */
	cfg->wake_on_data = ctx->runner.manual;
	cfg->wake_epfd = ctx->runner.fd;
}

/* Start on the kernel backend. */
static int kernel_start(damon_ctx *ctx, struct dm_err *err)
{
	struct dm_kernel_target *kt;
	struct dm_kernel_cfg cfg;
	int ret;

	ret = sync_schemes(ctx);
	if (ret)
		return dm_err_set(err, ret, "out of memory passing schemes on");
	kt = dm_calloc(&ctx->alloc, ctx->nr_targets, sizeof(*kt));
	if (!kt)
		return dm_err_set(err, -ENOMEM, "out of memory");
	kernel_cfg(ctx, &cfg, kt);
	ret = dm_kernel_open(&ctx->kern, &cfg, err);
	dm_free(&ctx->alloc, kt);
	if (ret)
		return ret;
	ctx->kern_ended = false;
	memset(&ctx->monitor_err, 0, sizeof(ctx->monitor_err));
	ctx->backend = DAMON_BACKEND_KERNEL;
	/* how snapshots come, when it is not what the probe expected (a pid
	 * namespace that cannot see the kdamond): damon_ctx_backend_status() */
	if (*dm_kernel_note(ctx->kern))
		snprintf(ctx->status[DAMON_BACKEND_KERNEL].reason,
			 sizeof(ctx->status[DAMON_BACKEND_KERNEL].reason), "%s",
			 dm_kernel_note(ctx->kern));
	if (ctx->runner.manual) {
		dm_runner_arm(&ctx->runner, 1);
	} else {
		ret = dm_runner_start(&ctx->runner, mon_step, ctx);
		if (ret) {
			dm_kernel_close(ctx->kern, false);
			ctx->kern = NULL;
			return dm_err_set(err, ret, "could not start the monitoring thread: %s",
					  strerror(-ret));
		}
	}
	for (size_t i = 0; i < ctx->nr_targets; i++)
		ctx->targets[i]->in_monitor = true;
	ctx->running = true;
	return 0;
}

/*
 * The kernel could not be taken after all (the probe only reads: a lock, a
 * race, the kernel's own EBUSY). AUTO keeps the sentence as the kernel's
 * verdict and takes the next usable backend; -EOPNOTSUPP when there is none.
 */
static int kernel_fallback(damon_ctx *ctx, const struct dm_err *err)
{
	struct damon_backend_status *st = &ctx->status[DAMON_BACKEND_KERNEL];
	static const int order[] = {DAMON_BACKEND_PAGE_IDLE, DAMON_BACKEND_UFFD_WP,
				    DAMON_BACKEND_SOFT_DIRTY};

	char msg[DM_CTX_ERRMSG_MAX];
	size_t len;

	st->usable = 0;
	snprintf(st->reason, sizeof(st->reason), "%.*s", (int)sizeof(st->reason) - 1, err->msg);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (ctx->status[order[i]].usable)
			return order[i];
	len = (size_t)snprintf(msg, sizeof(msg), "no backend can monitor this here; %s", err->msg);
	for (int i = 2; i <= DAMON_BACKEND_MAX && len < sizeof(msg); i++)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len, "; %s",
					ctx->status[i].reason);
	return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s", msg);
}

_public_ int damon_ctx_start(damon_ctx *ctx)
{
	struct dm_mon_cfg cfg;
	struct dm_err err = {0};
	int backend, ret;

	CHECK_CTX(ctx);
	if (ctx->running && monitor_ended(ctx))
		dm_ctx_halt(ctx); /* every target exited: start afresh */
	if (ctx->running)
		return dm_ctx_fail(ctx, -EBUSY, "the context is already running");
	if (!ctx->nr_targets)
		return dm_ctx_fail(ctx, -EINVAL, "no target: call damon_ctx_add_target() first");
	for (size_t i = 0; i < ctx->nr_targets; i++)
		if (ctx->ops == DAMON_OPS_FVADDR && !ctx->targets[i]->nr_fixed)
			return dm_ctx_fail(ctx, -EINVAL,
					   "fvaddr target %zu has no range: call "
					   "damon_target_add_range()",
					   i);
	memset(&cfg, 0, sizeof(cfg));
	if (ctx->ops_override) {
		backend = ctx->backend_req ? (int)ctx->backend_req : DAMON_BACKEND_UFFD_WP;
		cfg.ops = ctx->ops_override;
	} else {
		backend = choose_backend(ctx);
		if (backend < 0)
			return backend;
		if (backend == DAMON_BACKEND_KERNEL) {
			ret = kernel_start(ctx, &err);
			if (!ret)
				return 0;
			if (ctx->backend_req != DAMON_BACKEND_AUTO)
				return dm_ctx_fail_err(ctx, &err);
			backend = kernel_fallback(ctx, &err);
			if (backend < 0)
				return backend;
		}
		cfg.ops = backend_ops(backend);
		if (!cfg.ops)
			return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s: not implemented in this version",
					   damon_backend_name(backend));
	}
	ret = dm_ctx_schemes_check(ctx, backend, cfg.ops->sees);
	if (ret)
		return ret;
	cfg.env = dm_ctx_schemes_env(ctx);
	cfg.attrs = mon_attrs(ctx);
	cfg.backend = (uint32_t)backend;
	cfg.ops_cfg.ops = ctx->ops;
	cfg.ops_cfg.proc_root = ctx->proc_root;
	cfg.ops_cfg.sysfs_root = ctx->sysfs_root;
	cfg.ops_cfg.alloc = &ctx->alloc;
	cfg.ops_cfg.seed = pick_seed(ctx);
	cfg.ops_cfg.model = ctx->ops_model;
	cfg.clock = ctx->clock_override;
	cfg.alloc = &ctx->alloc;
	cfg.pub = &ctx->pub;
	cfg.hooks.published = hook_published;
	cfg.hooks.target_gone = hook_target_gone;
	cfg.hooks.arg = ctx;
	cfg.seed = cfg.ops_cfg.seed;

	ret = dm_monitor_init(&ctx->mon, &cfg, &err);
	if (ret)
		return dm_ctx_fail_err(ctx, &err);
	ctx->mon_open = true;
	ctx->mon.seq = atomic_load(&ctx->nr_snapshots);
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		struct damon_target *t = ctx->targets[i];

		ret = dm_monitor_add_target(&ctx->mon, &t->mt, &err);
		if (ret)
			goto fail;
		t->in_monitor = true;
	}
	ret = sync_schemes(ctx);
	if (ret)
		goto fail_quiet;
	ret = dm_monitor_start(&ctx->mon, &err);
	if (ret)
		goto fail;
	memset(&ctx->monitor_err, 0, sizeof(ctx->monitor_err));
	ctx->backend = backend;
	if (ctx->runner.manual) {
		dm_runner_arm(&ctx->runner, ctx->mon.sample_us);
	} else {
		ret = dm_runner_start(&ctx->runner, mon_step, ctx);
		if (ret) {
			dm_err_set(&err, ret, "could not start the monitoring thread: %s",
				   strerror(-ret));
			goto fail;
		}
	}
	ctx->running = true;
	return 0;
fail:
	dm_ctx_fail_err(ctx, &err);
fail_quiet:
	dm_monitor_fini(&ctx->mon);
	ctx->mon_open = false;
	dm_ctx_schemes_stop(ctx);
	for (size_t i = 0; i < ctx->nr_targets; i++)
		ctx->targets[i]->in_monitor = false;
	return ret;
}

void dm_ctx_halt(damon_ctx *ctx)
{
	struct dm_kernel *k;

	dm_runner_stop(&ctx->runner);
	/* detached under the lock: damos_set_goal_current() may be writing
	 * to it from another thread */
	pthread_mutex_lock(&ctx->runner.lock);
	k = ctx->kern;
	ctx->kern = NULL;
	pthread_mutex_unlock(&ctx->runner.lock);
	dm_kernel_close(k, false);
	if (ctx->mon_open) {
		dm_monitor_fini(&ctx->mon);
		ctx->mon_open = false;
	}
	dm_ctx_schemes_stop(ctx);
	for (size_t i = 0; i < ctx->nr_targets; i++)
		ctx->targets[i]->in_monitor = false;
	ctx->paused = false; /* the next start runs */
	ctx->running = false;
}

/* Did the monitor end by itself (every target gone)? */
static bool monitor_ended(damon_ctx *ctx)
{
	bool ended;

	pthread_mutex_lock(&ctx->runner.lock);
	ended = ctx->kern ? ctx->kern_ended : ctx->mon_open && !ctx->mon.running;
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

static int kernel_commit(damon_ctx *ctx)
{
	struct dm_kernel_target *kt;
	struct dm_kernel_cfg cfg;
	struct dm_err err = {0};
	int ret;

	kt = dm_calloc(&ctx->alloc, ctx->nr_targets, sizeof(*kt));
	if (!kt)
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory");
	pthread_mutex_lock(&ctx->runner.lock);
	ret = sync_schemes(ctx);
	if (!ret) {
		kernel_cfg(ctx, &cfg, kt);
		ret = dm_kernel_commit(ctx->kern, &cfg, &err);
	}
	if (!ret)
		for (size_t i = 0; i < ctx->nr_targets; i++)
			ctx->targets[i]->in_monitor = true;
	wake_runner(ctx);
	pthread_mutex_unlock(&ctx->runner.lock);
	dm_free(&ctx->alloc, kt);
	if (ret && err.code)
		return dm_ctx_fail_err(ctx, &err);
	return ret;
}

_public_ int damon_ctx_commit(damon_ctx *ctx)
{
	struct dm_mon_attrs a;
	struct dm_err err = {0};
	int ret = 0;

	CHECK_CTX(ctx);
	if (!ctx->running || monitor_ended(ctx))
		return dm_ctx_fail(ctx, -EALREADY, "the context is not running");
	if (ctx->kern)
		return kernel_commit(ctx);
	a = mon_attrs(ctx);
	pthread_mutex_lock(&ctx->runner.lock);
	dm_monitor_set_attrs(&ctx->mon, &a);
	for (size_t i = 0; i < ctx->nr_targets && !ret; i++) {
		struct damon_target *t = ctx->targets[i];

		if (t->in_monitor)
			continue;
		ret = dm_monitor_add_target(&ctx->mon, &t->mt, &err);
		if (!ret)
			t->in_monitor = true;
	}
	if (!ret)
		ret = sync_schemes(ctx);
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
	if (!ctx->running || (ctx->kern ? ctx->kern_ended : !ctx->mon.running))
		return dm_ctx_fail(ctx, -EALREADY, "the context is not running%s%s",
				   ctx->monitor_err.code ? ": " : "", ctx->monitor_err.msg);
	pthread_mutex_lock(&ctx->runner.lock);
	ret = mon_step(ctx, &next);
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
		if (ctx->kern) {
			uint64_t before = dm_kernel_nr_published(ctx->kern);

			ret = dm_kernel_pause(ctx->kern, pause, &err);
			kern_count(ctx, before);
		} else if (pause) {
			dm_monitor_pause(&ctx->mon);
		} else {
			dm_monitor_resume(&ctx->mon);
		}
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
