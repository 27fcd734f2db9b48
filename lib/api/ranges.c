// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon_target_set_ranges(): the monitored ranges of an fvaddr or paddr
 * target, replaced as a whole, also while the context runs. Memory that
 * comes and goes (an allocator's extents, a buffer pool that grows) is
 * followed this way, as the kernel's DAMON follows new regions written to
 * a target's sysfs directory and committed.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static int cmp_start(const void *a, const void *b)
{
	const struct dm_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Replace the target's ranges with @v (sorted, owned from now on). */
static void install(damon_target *t, struct dm_range *v, size_t n)
{
	dm_free(&t->ctx->alloc, t->fixed);
	t->fixed = v;
	t->nr_fixed = n;
	t->cap_fixed = n;
}

_public_ int damon_target_set_ranges(damon_target *t, const struct damon_addr_range *ranges,
				     size_t nr)
{
	struct dm_range *v;
	damon_ctx *ctx;

	if (!t)
		return -EINVAL;
	ctx = t->ctx;
	if (!ctx)
		return -EINVAL;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	if (ctx->ops == DAMON_OPS_VADDR)
		return dm_ctx_fail(ctx, -EINVAL,
				   "vaddr targets take their ranges from the "
				   "process's mappings; use fvaddr for fixed ranges");
	if (!nr || !ranges)
		return dm_ctx_fail(ctx, -EINVAL, "no range given: a target needs at least one");
	v = dm_calloc(&ctx->alloc, nr, sizeof(*v));
	if (!v)
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory copying %zu ranges", nr);
	for (size_t i = 0; i < nr; i++) {
		if (ranges[i].start >= ranges[i].end) {
			dm_free(&ctx->alloc, v);
			return dm_ctx_fail(ctx, -EINVAL,
					   "range %zu [0x%llx, 0x%llx) is empty or inverted", i,
					   (unsigned long long)ranges[i].start,
					   (unsigned long long)ranges[i].end);
		}
		v[i].start = ranges[i].start;
		v[i].end = ranges[i].end;
	}
	qsort(v, nr, sizeof(*v), cmp_start);
	for (size_t i = 1; i < nr; i++) {
		if (v[i].start < v[i - 1].end) {
			int ret = dm_ctx_fail(
				ctx, -EINVAL, "range [0x%llx, 0x%llx) overlaps [0x%llx, 0x%llx)",
				(unsigned long long)v[i].start, (unsigned long long)v[i].end,
				(unsigned long long)v[i - 1].start,
				(unsigned long long)v[i - 1].end);

			dm_free(&ctx->alloc, v);
			return ret;
		}
	}
	if (!ctx->running) {
		install(t, v, nr);
		return 0;
	}
	/* The backend reads t->fixed at its layout updates, under the runner
	 * lock; what it reads changes only at the commit (run.c), which hands
	 * the new ranges to the backend under the same lock. */
	pthread_mutex_lock(&ctx->runner.lock);
	dm_free(&ctx->alloc, t->pending);
	t->pending = v;
	t->nr_pending = nr;
	pthread_mutex_unlock(&ctx->runner.lock);
	return 0;
}

bool dm_target_commit_ranges(damon_target *t)
{
	if (!t->pending)
		return false;
	install(t, t->pending, t->nr_pending);
	t->pending = NULL;
	t->nr_pending = 0;
	return true;
}
