// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Public entry points for contexts and targets: argument checks, option
 * handling, backend choice, start/stop/commit, manual drive.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../probe/probe.h"
#include "../util/proc.h"
#include "internal.h"

#define CANARY_MAGIC 0x64616d6f6e2d6f6bULL /* "damon-ok" */

/* The fields of struct damon_ctx_opts this version knows. */
#define CTX_OPTS_MIN_SZ offsetofend(struct damon_ctx_opts, cpu_budget_permille)
#define offsetofend(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))
/* struct damon_attrs as of 0.1 */
#define ATTRS_MIN_SZ offsetofend(struct damon_attrs, max_nr_regions)

static const struct damon_attrs default_attrs = {
	.sz = sizeof(struct damon_attrs),
	.sample_us = 5000,
	.aggr_us = 100000,
	.update_us = 1000000,
	.min_nr_regions = 10,
	.max_nr_regions = 1000,
};

bool dm_ctx_forked(const damon_ctx *ctx)
{
	if (ctx->canary)
		return *ctx->canary != CANARY_MAGIC;
	return getpid() != ctx->owner_pid;
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static struct dm_errslot *errslot(damon_ctx *ctx, pid_t tid)
{
	for (unsigned int i = 0; i < DM_ERRSLOTS; i++)
		if (ctx->errslots[i].tid == tid)
			return &ctx->errslots[i];
	return NULL;
}

static void set_msg(const damon_ctx *cctx, const char *msg)
{
	/* The error slots are bookkeeping, not state the caller sees change:
	 * errmsg reporting works on const contexts too. */
	damon_ctx *ctx = (damon_ctx *)cctx;
	pid_t tid = gettid_();
	struct dm_errslot *s;

	pthread_mutex_lock(&ctx->errlock);
	s = errslot(ctx, tid);
	if (!s) {
		s = &ctx->errslots[ctx->errnext++ % DM_ERRSLOTS];
		s->tid = tid;
	}
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	pthread_mutex_unlock(&ctx->errlock);
}

int dm_ctx_fail(const damon_ctx *ctx, int code, const char *fmt, ...)
{
	char msg[DM_CTX_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_msg(ctx, msg);
	return code;
}

int dm_ctx_fail_err(const damon_ctx *ctx, const struct dm_err *err)
{
	set_msg(ctx, err->msg[0] ? err->msg : strerror(-err->code));
	return err->code;
}

int dm_copy_out(void *dst, const void *src, size_t src_sz, size_t min_sz)
{
	size_t dst_sz;

	if (!dst)
		return -EINVAL;
	memcpy(&dst_sz, dst, sizeof(dst_sz));
	if (dst_sz < min_sz)
		return -EINVAL;
	/* Fill no more than the caller's struct holds; keep its sz. */
	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       (dst_sz < src_sz ? dst_sz : src_sz) - sizeof(size_t));
	return 0;
}

bool dm_opts_ok(const void *opts, size_t user_sz, size_t known_sz)
{
	const unsigned char *p = opts;

	for (size_t i = known_sz; i < user_sz; i++)
		if (p[i])
			return false;
	return true;
}

_public_ const char *damon_ctx_errmsg(const damon_ctx *cctx)
{
	/* The answer is copied out of the context's slot into storage of the
	 * calling thread, so another thread's failure (which may reuse the
	 * slot when more than DM_ERRSLOTS threads fail on one context) can
	 * never change a string this thread is reading. */
	static __thread char copy[DM_CTX_ERRMSG_MAX];
	damon_ctx *ctx = (damon_ctx *)cctx;
	struct dm_errslot *s;

	if (!ctx)
		return "no context";
	pthread_mutex_lock(&ctx->errlock);
	s = errslot(ctx, gettid_());
	memcpy(copy, s ? s->msg : "", s ? sizeof(copy) : 1);
	pthread_mutex_unlock(&ctx->errlock);
	return copy;
}

/* The kernel's damon_valid_intervals_goal(), and a goal that means something. */
static int check_intervals_goal(const damon_ctx *ctx, const struct damon_attrs *a)
{
	const struct damon_intervals_goal *g = &a->intervals_goal;

	if (!g->aggrs)
		return 0;
	if (!g->access_bp || g->access_bp > 10000)
		return dm_ctx_fail(ctx, -EINVAL, "intervals goal: access_bp must be 1..10000 (got %u)",
				   g->access_bp);
	if (g->min_sample_us > g->max_sample_us || !g->max_sample_us)
		return dm_ctx_fail(ctx, -EINVAL,
				   "intervals goal: min_sample_us (%llu) must not exceed max_sample_us "
				   "(%llu), which must be > 0",
				   (unsigned long long)g->min_sample_us,
				   (unsigned long long)g->max_sample_us);
	if (a->sample_us < g->min_sample_us || a->sample_us > g->max_sample_us)
		return dm_ctx_fail(ctx, -EINVAL,
				   "intervals goal: sample_us (%llu) must lie within [%llu, %llu]",
				   (unsigned long long)a->sample_us,
				   (unsigned long long)g->min_sample_us,
				   (unsigned long long)g->max_sample_us);
	return 0;
}

static int check_attrs(const damon_ctx *ctx, const struct damon_attrs *a)
{
	if (!a->sample_us || !a->aggr_us || !a->update_us)
		return dm_ctx_fail(ctx, -EINVAL, "intervals must be > 0 (sample_us %llu, "
				   "aggr_us %llu, update_us %llu)",
				   (unsigned long long)a->sample_us, (unsigned long long)a->aggr_us,
				   (unsigned long long)a->update_us);
	if (a->sample_us > a->aggr_us)
		return dm_ctx_fail(ctx, -EINVAL, "sample_us (%llu) must not exceed aggr_us (%llu)",
				   (unsigned long long)a->sample_us, (unsigned long long)a->aggr_us);
	if (a->min_nr_regions < 3)
		return dm_ctx_fail(ctx, -EINVAL, "min_nr_regions must be at least 3 (got %u)",
				   a->min_nr_regions);
	if (a->min_nr_regions > a->max_nr_regions)
		return dm_ctx_fail(ctx, -EINVAL,
				   "min_nr_regions (%u) must not exceed max_nr_regions (%u)",
				   a->min_nr_regions, a->max_nr_regions);
	return check_intervals_goal(ctx, a);
}

static char *strdup_a(const struct dm_alloc *a, const char *s)
{
	size_t n;
	char *d;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	d = dm_malloc(a, n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static void ctx_free(damon_ctx *ctx)
{
	bool forked = dm_ctx_forked(ctx);
	struct dm_alloc a = ctx->alloc;

	if (ctx->mon_open) {
		/* In a child this only frees: the ops set knows its instance
		 * was inherited and touches nothing of the parent's. */
		dm_monitor_fini(&ctx->mon);
		ctx->mon_open = false;
	}
	dm_runner_fini(&ctx->runner, forked);
	/* In a child: close fds and free only, never touch the parent's kdamond. */
	dm_kernel_close(ctx->kern, forked);
	ctx->kern = NULL;
	dm_publisher_fini(&ctx->pub);
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		dm_free(&a, ctx->targets[i]->fixed);
		dm_free(&a, ctx->targets[i]);
	}
	dm_free(&a, ctx->targets);
	dm_ctx_schemes_stop(ctx);
	for (size_t i = 0; i < ctx->nr_schemes; i++)
		dm_schemes_free(ctx, ctx->schemes[i]);
	dm_free(&a, ctx->schemes);
	dm_free(&a, ctx->mon_schemes);
	dm_free(&a, ctx->sysfs_root);
	dm_free(&a, ctx->proc_root);
	if (!forked)
		pthread_mutex_destroy(&ctx->errlock);
	if (ctx->canary)
		munmap((void *)ctx->canary, (size_t)sysconf(_SC_PAGESIZE));
	dm_free(&a, ctx);
}

_public_ int damon_ctx_new(damon_ctx **ret, const struct damon_ctx_opts *opts)
{
	struct damon_ctx_opts o;
	struct dm_alloc a = { 0 };
	damon_ctx *ctx;
	void *page;
	int err;

	if (!ret)
		return -EINVAL;
	memset(&o, 0, sizeof(o));
	if (opts) {
		if (opts->sz < CTX_OPTS_MIN_SZ || !dm_opts_ok(opts, opts->sz, sizeof(o)))
			return -EINVAL;
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	}
	if (o.ops > DAMON_OPS_PADDR || o.backend > DAMON_BACKEND_MAX ||
	    (o.flags & ~(uint32_t)DAMON_CTX_MANUAL))
		return -EINVAL;
	if (!o.malloc_fn != !o.free_fn)
		return -EINVAL;
	a.malloc_fn = o.malloc_fn;
	a.free_fn = o.free_fn;
	a.userdata = o.alloc_userdata;

	ctx = dm_calloc(&a, 1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->alloc = a;
	atomic_init(&ctx->refcnt, 1);
	atomic_init(&ctx->first_target_id, UINT32_MAX);
	atomic_init(&ctx->nr_snapshots, 0);
	ctx->owner_pid = getpid();
	ctx->runner.fd = -1;
	ctx->runner.timer_fd = -1;
	pthread_mutex_init(&ctx->errlock, NULL);

	page = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page != MAP_FAILED) {
		if (madvise(page, (size_t)sysconf(_SC_PAGESIZE), MADV_WIPEONFORK) == 0) {
			ctx->canary = page;
			*ctx->canary = CANARY_MAGIC;
		} else {
			munmap(page, (size_t)sysconf(_SC_PAGESIZE));
		}
	}

	ctx->ops = o.ops;
	ctx->backend_req = o.backend;
	ctx->flags = o.flags;
	ctx->attrs = default_attrs;
	if (o.sample_us)
		ctx->attrs.sample_us = o.sample_us;
	if (o.aggr_us)
		ctx->attrs.aggr_us = o.aggr_us;
	if (o.update_us)
		ctx->attrs.update_us = o.update_us;
	if (o.min_nr_regions)
		ctx->attrs.min_nr_regions = o.min_nr_regions;
	if (o.max_nr_regions)
		ctx->attrs.max_nr_regions = o.max_nr_regions;
	ctx->attrs.intervals_goal = o.intervals_goal;
	ctx->cpu_budget_permille = o.cpu_budget_permille ? o.cpu_budget_permille : 20;
	ctx->log_fn = o.log_fn;
	ctx->log_userdata = o.log_userdata;
	ctx->seed = o.seed;
	ctx->backend = DAMON_BACKEND_AUTO;

	err = check_attrs(ctx, &ctx->attrs);
	if (err)
		goto fail;
	err = -ENOMEM;
	if (o.sysfs_root && !(ctx->sysfs_root = strdup_a(&a, o.sysfs_root)))
		goto fail;
	if (o.proc_root && !(ctx->proc_root = strdup_a(&a, o.proc_root)))
		goto fail;
	err = dm_publisher_init(&ctx->pub, &a);
	if (err)
		goto fail;
	err = dm_runner_init(&ctx->runner, o.flags & DAMON_CTX_MANUAL);
	if (err)
		goto fail;
	*ret = ctx;
	return 0;
fail:
	ctx_free(ctx);
	return err;
}

_public_ damon_ctx *damon_ctx_ref(damon_ctx *ctx)
{
	if (ctx)
		atomic_fetch_add_explicit(&ctx->refcnt, 1, memory_order_relaxed);
	return ctx;
}

static void ctx_stop(damon_ctx *ctx);
static bool monitor_ended(damon_ctx *ctx);

_public_ damon_ctx *damon_ctx_unref(damon_ctx *ctx)
{
	if (!ctx)
		return NULL;
	if (atomic_fetch_sub_explicit(&ctx->refcnt, 1, memory_order_acq_rel) != 1)
		return NULL;
	if (!dm_ctx_forked(ctx) && ctx->running)
		ctx_stop(ctx);
	ctx_free(ctx);
	return NULL;
}

_public_ void damon_ctx_unrefp(damon_ctx **p)
{
	if (p)
		*p = damon_ctx_unref(*p);
}

/* Common entry check: NULL and fork. */
#define CHECK_CTX(ctx)                                                                     \
	do {                                                                               \
		if (!(ctx))                                                                \
			return -EINVAL;                                                    \
		if (dm_ctx_forked(ctx))                                                    \
			return -ECHILD;                                                    \
	} while (0)

_public_ int damon_ctx_add_target(damon_ctx *ctx, pid_t pid, damon_target **ret)
{
	struct damon_target *t;
	pid_t real;
	int err;

	CHECK_CTX(ctx);
	if (pid < 0)
		return dm_ctx_fail(ctx, -EINVAL, "pid must be >= 0 (got %d)", (int)pid);
	if (ctx->ops == DAMON_OPS_PADDR) {
		if (pid != 0)
			return dm_ctx_fail(ctx, -EINVAL,
					   "paddr monitors physical memory: pid must be 0 (got %d)",
					   (int)pid);
		if (ctx->nr_targets)
			return dm_ctx_fail(ctx, -EINVAL, "paddr takes one target");
	}
	real = pid ? pid : getpid();
	if (pid && ctx->ops != DAMON_OPS_PADDR) {
		err = dm_proc_pid_alive(ctx->proc_root, real);
		if (err)
			return dm_ctx_fail(ctx, err, "no process %d", (int)real);
	}
	if (ctx->nr_targets == ctx->cap_targets) {
		size_t cap = ctx->cap_targets ? ctx->cap_targets * 2 : 4;
		struct damon_target **v = dm_realloc(&ctx->alloc, ctx->targets,
						     ctx->cap_targets * sizeof(*v),
						     cap * sizeof(*v));

		if (!v)
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a target");
		ctx->targets = v;
		ctx->cap_targets = cap;
	}
	t = dm_calloc(&ctx->alloc, 1, sizeof(*t));
	if (!t)
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a target");
	t->ctx = ctx;
	t->mt.id = ctx->next_target_id++;
	t->mt.ot.pid = ctx->ops == DAMON_OPS_PADDR ? 0 : real;
	ctx->targets[ctx->nr_targets++] = t;
	if (ctx->nr_targets == 1)
		atomic_store(&ctx->first_target_id, t->mt.id);
	if (ret)
		*ret = t;
	return 0;
}

_public_ int damon_target_add_range(damon_target *t, uint64_t start, uint64_t end)
{
	damon_ctx *ctx;

	if (!t)
		return -EINVAL;
	ctx = t->ctx;
	CHECK_CTX(ctx);
	if (ctx->ops == DAMON_OPS_VADDR)
		return dm_ctx_fail(ctx, -EINVAL, "vaddr targets take their ranges from the "
				   "process's mappings; use fvaddr for fixed ranges");
	if (start >= end)
		return dm_ctx_fail(ctx, -EINVAL, "range [0x%llx, 0x%llx) is empty or inverted",
				   (unsigned long long)start, (unsigned long long)end);
	if (ctx->running)
		return dm_ctx_fail(ctx, -EBUSY, "add ranges before damon_ctx_start()");
	for (size_t i = 0; i < t->nr_fixed; i++)
		if (start < t->fixed[i].end && t->fixed[i].start < end)
			return dm_ctx_fail(ctx, -EINVAL,
					   "range [0x%llx, 0x%llx) overlaps [0x%llx, 0x%llx)",
					   (unsigned long long)start, (unsigned long long)end,
					   (unsigned long long)t->fixed[i].start,
					   (unsigned long long)t->fixed[i].end);
	if (t->nr_fixed == t->cap_fixed) {
		size_t cap = t->cap_fixed ? t->cap_fixed * 2 : 4;
		struct dm_range *v = dm_realloc(&ctx->alloc, t->fixed, t->cap_fixed * sizeof(*v),
						cap * sizeof(*v));

		if (!v)
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a range");
		t->fixed = v;
		t->cap_fixed = cap;
	}
	/* Keep them sorted: layouts and region lists are. */
	{
		size_t i = t->nr_fixed;

		while (i > 0 && t->fixed[i - 1].start > start) {
			t->fixed[i] = t->fixed[i - 1];
			i--;
		}
		t->fixed[i].start = start;
		t->fixed[i].end = end;
		t->nr_fixed++;
	}
	t->mt.ot.fixed = t->fixed;
	t->mt.ot.nr_fixed = t->nr_fixed;
	return 0;
}

_public_ int damon_target_pid(const damon_target *t)
{
	if (!t)
		return -EINVAL;
	return t->mt.ot.pid;
}

_public_ int damon_ctx_set_attrs(damon_ctx *ctx, const struct damon_attrs *attrs)
{
	struct damon_attrs a = default_attrs;
	int err;

	CHECK_CTX(ctx);
	if (!attrs || attrs->sz < ATTRS_MIN_SZ || !dm_opts_ok(attrs, attrs->sz, sizeof(a)))
		return dm_ctx_fail(ctx, -EINVAL, "attrs NULL or attrs->sz wrong");
	memset(&a.intervals_goal, 0, sizeof(a.intervals_goal)); /* older callers: off */
	memcpy(&a, attrs, attrs->sz < sizeof(a) ? attrs->sz : sizeof(a));
	a.sz = sizeof(a);
	err = check_attrs(ctx, &a);
	if (err)
		return err;
	ctx->attrs = a;
	return 0;
}

_public_ int damon_ctx_get_attrs(const damon_ctx *ctx, struct damon_attrs *ret)
{
	CHECK_CTX(ctx);
	if (dm_copy_out(ret, &ctx->attrs, sizeof(ctx->attrs), ATTRS_MIN_SZ))
		return dm_ctx_fail(ctx, -EINVAL, "ret NULL or ret->sz too small");
	return 0;
}

_public_ const char *damon_backend_name(int backend)
{
	static const char *const names[] = { "auto", "kernel", "page_idle",
					     "uffd_wp", "soft_dirty", "fault" };

	if (backend < 0 || backend > DAMON_BACKEND_MAX)
		return "unknown";
	return names[backend];
}

_public_ int damon_backend_from_name(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int b = 0; b <= DAMON_BACKEND_MAX; b++)
		if (!strcmp(name, damon_backend_name(b)))
			return b;
	return -EINVAL;
}

_public_ int damon_ctx_backend(const damon_ctx *ctx)
{
	CHECK_CTX(ctx);
	return ctx->backend;
}

void dm_ctx_set_ops_override(damon_ctx *ctx, const struct dm_ops *ops, void *model,
			     const struct dm_clock *clock)
{
	ctx->ops_override = ops;
	ctx->ops_model = model;
	ctx->clock_override = clock;
}

static void probe_input(const damon_ctx *ctx, struct dm_probe_in *in)
{
	pid_t self = getpid();

	memset(in, 0, sizeof(*in));
	in->ops = ctx->ops;
	in->pid = ctx->nr_targets ? ctx->targets[0]->mt.ot.pid : self;
	in->self = true;
	for (size_t i = 0; i < ctx->nr_targets; i++)
		if (ctx->ops == DAMON_OPS_PADDR || ctx->targets[i]->mt.ot.pid != self)
			in->self = false;
	if (!ctx->nr_targets && ctx->ops == DAMON_OPS_PADDR)
		in->self = false;
	in->nr_targets = (unsigned int)ctx->nr_targets;
	in->sysfs_root = ctx->sysfs_root;
	in->proc_root = ctx->proc_root;
}

/* Judge every backend; return the one to run or -EOPNOTSUPP with errmsg. */
static int choose_backend(damon_ctx *ctx)
{
	struct dm_probe_in in;
	char msg[DM_CTX_ERRMSG_MAX];
	size_t len = 0;
	int b;

	probe_input(ctx, &in);
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
		return dm_ctx_fail(ctx, -EOPNOTSUPP, "%s",
				   ctx->status[ctx->backend_req].reason);
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
	struct dm_err err = { 0 };
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
	static const int order[] = { DAMON_BACKEND_PAGE_IDLE, DAMON_BACKEND_UFFD_WP,
				     DAMON_BACKEND_SOFT_DIRTY };

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
	struct dm_err err = { 0 };
	int backend, ret;

	CHECK_CTX(ctx);
	if (ctx->running && monitor_ended(ctx))
		ctx_stop(ctx); /* every target exited: start afresh */
	if (ctx->running)
		return dm_ctx_fail(ctx, -EBUSY, "the context is already running");
	if (!ctx->nr_targets)
		return dm_ctx_fail(ctx, -EINVAL, "no target: call damon_ctx_add_target() first");
	for (size_t i = 0; i < ctx->nr_targets; i++)
		if (ctx->ops == DAMON_OPS_FVADDR && !ctx->targets[i]->nr_fixed)
			return dm_ctx_fail(ctx, -EINVAL, "fvaddr target %zu has no range: call "
					   "damon_target_add_range()", i);
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

static void ctx_stop(damon_ctx *ctx)
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
		ctx_stop(ctx);
		return dm_ctx_fail(ctx, -EALREADY, "the monitor had already ended: %s",
				   ctx->monitor_err.msg);
	}
	ctx_stop(ctx);
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
	struct dm_err err = { 0 };
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
	struct dm_err err = { 0 };
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
		return dm_ctx_fail(ctx, -EINVAL, "the context has its own thread; "
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
	struct dm_err err = { 0 };
	int ret = 0;

	CHECK_CTX(ctx);
	if (!ctx->running)
		return dm_ctx_fail(ctx, -EINVAL, "the context is not running: only a started "
				   "context can %s", verb);
	if (monitor_ended(ctx))
		return dm_ctx_fail(ctx, -EINVAL, "the monitor has ended, there is nothing to "
				   "%s: %s", verb, ctx->monitor_err.msg);
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

_public_ int damon_ctx_status(damon_ctx *ctx, struct damon_ctx_status *ret)
{
	struct damon_ctx_status st;

	CHECK_CTX(ctx);
	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	pthread_mutex_lock(&ctx->runner.lock);
	st.running = ctx->running &&
		     (ctx->kern ? !ctx->kern_ended : ctx->mon_open && ctx->mon.running);
	{
		/* What ended the monitor, else what troubles it (out of memory
		 * for a snapshot, a layout it could not read). */
		const struct dm_err *e = ctx->monitor_err.code || !ctx->mon_open
						 ? &ctx->monitor_err : &ctx->mon.err;

		st.error = e->code;
		snprintf(st.message, sizeof(st.message), "%.*s", (int)sizeof(st.message) - 1,
			 e->msg);
	}
	if (ctx->kern) {
		st.nr_targets = (uint32_t)dm_kernel_nr_live(ctx->kern);
		st.sample_us = ctx->attrs.sample_us;
		st.aggr_us = ctx->attrs.aggr_us;
	} else if (ctx->mon_open) {
		for (size_t i = 0; i < ctx->mon.nr_targets; i++)
			st.nr_targets += ctx->mon.targets[i]->live;
		st.sample_us = ctx->mon.sample_us;
		st.aggr_us = ctx->mon.aggr_us;
	} else {
		st.sample_us = ctx->attrs.sample_us;
		st.aggr_us = ctx->attrs.aggr_us;
	}
	st.paused = st.running && ctx->paused;
	pthread_mutex_unlock(&ctx->runner.lock);
	st.nr_snapshots = atomic_load(&ctx->nr_snapshots);
	st.backend = (uint32_t)ctx->backend;
	if (dm_copy_out(ret, &st, sizeof(st), offsetofend(struct damon_ctx_status, message)))
		return dm_ctx_fail(ctx, -EINVAL, "ret NULL or ret->sz too small");
	return 0;
}

_public_ int damon_ctx_backend_status(damon_ctx *ctx, int backend,
				      struct damon_backend_status *ret)
{
	struct damon_backend_status st;

	CHECK_CTX(ctx);
	if (backend < DAMON_BACKEND_KERNEL || backend > DAMON_BACKEND_MAX)
		return dm_ctx_fail(ctx, -EINVAL, "backend %d is not one of 1..%d", backend,
				   DAMON_BACKEND_MAX);
	if (ctx->judged) {
		st = ctx->status[backend];
	} else {
		struct dm_probe_in in;

		memset(&st, 0, sizeof(st));
		st.sz = sizeof(st);
		probe_input(ctx, &in);
		dm_probe_backend(&in, backend, &st);
	}
	if (dm_copy_out(ret, &st, sizeof(st), sizeof(st)))
		return dm_ctx_fail(ctx, -EINVAL, "ret NULL or ret->sz too small");
	return 0;
}

_public_ int damon_probe(uint32_t ops, pid_t pid, int backend, struct damon_backend_status *ret)
{
	struct damon_backend_status st;
	struct dm_probe_in in;

	if (ops > DAMON_OPS_PADDR || pid < 0 || backend < DAMON_BACKEND_KERNEL ||
	    backend > DAMON_BACKEND_MAX || !ret)
		return -EINVAL;
	memset(&in, 0, sizeof(in));
	in.ops = ops;
	in.pid = pid ? pid : getpid();
	in.self = ops != DAMON_OPS_PADDR && (pid == 0 || pid == getpid());
	in.nr_targets = 1;
	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	dm_probe_backend(&in, backend, &st);
	return dm_copy_out(ret, &st, sizeof(st), sizeof(st));
}
