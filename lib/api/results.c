// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Public entry points for results: snapshots and hotness. Everything here
 * is safe from any thread; the hotness calls are also lock-free,
 * allocation-free and async-signal-safe (so they never touch errmsg, which
 * takes a lock).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define offsetofend(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

_public_ int damon_ctx_snapshot(damon_ctx *ctx, damon_snapshot **ret)
{
	damon_snapshot *s;

	if (!ctx)
		return -EINVAL;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	/* Not a hotness call: it may take the errmsg lock like the others. */
	if (!ret)
		return dm_ctx_fail(ctx, -EINVAL, "ret is NULL");
	s = dm_publisher_get(&ctx->pub);
	if (!s)
		return dm_ctx_fail(ctx, -EAGAIN, "no snapshot yet: the first aggregation "
				   "interval has not ended");
	*ret = s;
	return 0;
}

_public_ damon_snapshot *damon_snapshot_ref(damon_snapshot *s)
{
	if (s)
		atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
	return s;
}

_public_ damon_snapshot *damon_snapshot_unref(damon_snapshot *s)
{
	dm_snapshot_unref(s);
	return NULL;
}

_public_ void damon_snapshot_unrefp(damon_snapshot **p)
{
	if (p)
		*p = damon_snapshot_unref(*p);
}

_public_ size_t damon_snapshot_nr_regions(const damon_snapshot *s)
{
	return s ? s->nr_regions : 0;
}

_public_ int damon_snapshot_region(const damon_snapshot *s, size_t idx, struct damon_region *ret)
{
	struct damon_region r;
	const struct dm_snap_region *x;

	if (!s || !ret)
		return -EINVAL;
	if (idx >= s->nr_regions)
		return -ERANGE;
	x = &s->regions[idx];
	memset(&r, 0, sizeof(r));
	r.sz = sizeof(r);
	r.start = x->start;
	r.end = x->end;
	r.nr_accesses = x->nr_accesses;
	r.age = x->age;
	r.access_rate_bp = x->access_rate_bp;
	r.target_idx = x->target_idx;
	r.nr_reads = x->nr_reads;
	r.nr_writes = x->nr_writes;
	r.write_bp = x->write_bp;
	r.node = x->node;
	r.node_bp = x->node_bp;
	r.nr_cpus = x->nr_cpus;
	r.cpus = x->cpus;
	return dm_copy_out(ret, &r, sizeof(r), offsetofend(struct damon_region, target_idx));
}

_public_ int damon_snapshot_info(const damon_snapshot *s, struct damon_snapshot_info *ret)
{
	if (!s || !ret)
		return -EINVAL;
	return dm_copy_out(ret, &s->info, sizeof(s->info),
			   offsetofend(struct damon_snapshot_info, max_nr_accesses));
}

static int hotness(damon_ctx *ctx, uint32_t target_id, uint64_t addr, uint64_t len,
		   struct damon_hotness *ret)
{
	struct damon_hotness h;
	size_t sz;
	int err;

	if (!ctx || !ret || !len || addr + len < addr)
		return -EINVAL;
	memcpy(&sz, ret, sizeof(sz));
	if (sz < offsetofend(struct damon_hotness, snapshot_seq))
		return -EINVAL;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	/* A caller's struct as big as ours (most): written in place, field
	 * by field and only on success, its sz kept. Copying an answer just
	 * written field by field would stall: the wide loads of the copy
	 * wait for the narrow stores (no store-to-load forwarding). */
	if (sz >= sizeof(h))
		return dm_publisher_hotness(&ctx->pub, target_id, addr, len, ret);
	err = dm_publisher_hotness(&ctx->pub, target_id, addr, len, &h);
	if (err)
		return err;
	h.sz = sizeof(h);
	return dm_copy_out(ret, &h, sizeof(h), sizeof(h));
}

_public_ int damon_ctx_hotness(damon_ctx *ctx, uint64_t addr, uint64_t len,
			       struct damon_hotness *ret)
{
	if (!ctx)
		return -EINVAL;
	return hotness(ctx, atomic_load_explicit(&ctx->first_target_id, memory_order_relaxed),
		       addr, len, ret);
}

_public_ int damon_target_hotness(damon_target *t, uint64_t addr, uint64_t len,
				  struct damon_hotness *ret)
{
	if (!t)
		return -EINVAL;
	return hotness(t->ctx, t->id, addr, len, ret);
}
