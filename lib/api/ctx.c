// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Public entry points for a context's life and what it is given: new, ref,
 * unref; targets and their ranges; attributes. Running it: run.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../util/proc.h"
#include "internal.h"
#include "../util/fail.h"

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

	if (ctx->be) {
		/* running in the parent: in a child this closes and frees only */
		ctx->be->ops->stop(ctx->be, forked);
		ctx->be = NULL;
	}
	dm_runner_fini(&ctx->runner, forked);
	dm_publisher_fini(&ctx->pub);
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		dm_free(&a, ctx->targets[i]->fixed);
		dm_free(&a, ctx->targets[i]->pending);
		dm_free(&a, ctx->targets[i]);
	}
	dm_free(&a, ctx->targets);
	dm_ctx_cgroups_free(ctx);
	for (size_t i = 0; i < ctx->nr_schemes; i++)
		dm_schemes_free(ctx, ctx->schemes[i]);
	dm_free(&a, ctx->schemes);
	dm_free(&a, ctx->be_schemes);
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
	/* every descriptor the runner may hold: a failure before
	 * dm_runner_init() frees the context through dm_runner_fini() */
	ctx->runner.fd = -1;
	ctx->runner.timer_fd = -1;
	ctx->runner.wait_fd = -1;
	ctx->runner.kick_fd = -1;
	pthread_mutex_init(&ctx->errlock, NULL);

	page = DM_FAIL(ENOMEM) ? MAP_FAILED
			       : mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page != MAP_FAILED) {
		if ((DM_FAIL(EINVAL) ? -1
				     : madvise(page, (size_t)sysconf(_SC_PAGESIZE),
					       MADV_WIPEONFORK)) == 0) {
			ctx->canary = page;
			*ctx->canary = DM_CANARY_MAGIC;
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


_public_ damon_ctx *damon_ctx_unref(damon_ctx *ctx)
{
	if (!ctx)
		return NULL;
	if (atomic_fetch_sub_explicit(&ctx->refcnt, 1, memory_order_acq_rel) != 1)
		return NULL;
	if (!dm_ctx_forked(ctx) && ctx->running)
		dm_ctx_halt(ctx);
	ctx_free(ctx);
	return NULL;
}

_public_ void damon_ctx_unrefp(damon_ctx **p)
{
	if (p)
		*p = damon_ctx_unref(*p);
}

_public_ int damon_ctx_add_target(damon_ctx *ctx, pid_t pid, damon_target **ret)
{
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
	/* with cgroups the library thread appends members too (cgroup.c);
	 * without, only the caller touches the array, and a log callback may
	 * add a target from inside a step */
	if (ctx->nr_cgroups)
		pthread_mutex_lock(&ctx->runner.lock);
	err = dm_ctx_append_target(ctx, ctx->ops == DAMON_OPS_PADDR ? 0 : real, NULL, ret);
	if (ctx->nr_cgroups)
		pthread_mutex_unlock(&ctx->runner.lock);
	if (err)
		return dm_ctx_fail(ctx, err, "out of memory adding a target");
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
	return 0;
}

_public_ int damon_target_pid(const damon_target *t)
{
	if (!t)
		return -EINVAL;
	return t->pid;
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

void dm_ctx_set_ops_override(damon_ctx *ctx, const struct dm_ops *ops, void *model,
			     const struct dm_clock *clock)
{
	ctx->ops_override = ops;
	ctx->ops_model = model;
	ctx->clock_override = clock;
}

