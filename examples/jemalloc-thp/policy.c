// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The THP policy of the DAMON roadmap, as libdamon DAMOS schemes over the
 * arena's extents:
 *   hot regions of 2 MiB or more  -> MADV_HUGEPAGE, then MADV_COLLAPSE
 *                                    (extents are mapped MADV_NOHUGEPAGE in
 *                                    this mode, and collapse refuses such
 *                                    memory: the first scheme lifts that)
 *   regions not accessed for a while -> MADV_NOHUGEPAGE (neither khugepaged
 *                                    nor a fault gives them huge pages
 *                                    again), and with --madv-cold MADV_COLD
 * The monitor starts before the store is loaded, so that it follows the
 * heap as it grows; the schemes come once the load is done (a bulk load
 * writes every page once, which says nothing about what is hot). One
 * fvaddr target holds the extents. A thread of ours looks at the
 * extents' generation every 50 ms and, when jemalloc mapped or unmapped
 * something, hands the whole set to damon_target_set_ranges() and commits:
 * regions of memory that stayed keep their history, new extents start as
 * new regions, unmapped ones leave.
 *
 * DAMON watches the extents at the granularity of the decision: one region
 * per 2 MiB block. DAMOS's collapse, like MADV_COLLAPSE, acts on the blocks
 * that lie wholly in one region, and DAMON's own regions fall anywhere: a
 * hot part kept in regions a few MiB long (sampling noise keeps neighbours
 * from merging), or a block part of which is much hotter than the rest (cut
 * in two regions that never merge), leaves blocks astride region boundaries
 * that no collapse reaches. Measured with 256 MiB: 70-97% of the hot bytes
 * collapsed after 20 s with DAMON's own regions (over several interval
 * settings), 99.6% in three runs out of three with one region per block.
 * It costs a region per 2 MiB (300 for 600 MiB of extents), each sampled
 * one page at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jthp.h"

#define MAX_RANGES 4096
#define MAX_BLOCKS 65536 /* 128 GiB of extents */

struct policy {
	damon_ctx *ctx;
	damon_target *t;
	damos *hugepage, *collapse, *nohuge, *cold;
	struct extents *x;
	pthread_t th;
	bool th_started;
	/* one thread at a time on the context: the follower and policy_arm() */
	pthread_mutex_t lock;
	atomic_bool stop;
	uint64_t gen; /* the extents' generation last handed to libdamon */
	uint64_t commits;
	struct damon_addr_range v[MAX_RANGES];
	struct damon_addr_range blocks[MAX_BLOCKS]; /* v cut at 2 MiB boundaries */
};

/*
 * One region per block, neither merged nor split: min_nr_regions = blocks
 * keeps DAMON from merging regions beyond total / min_nr_regions (one
 * block), max_nr_regions = blocks from splitting them (it splits only while
 * it has fewer than half its maximum).
 */
static int set_nr_regions(struct policy *p, size_t k)
{
	struct damon_attrs a = {.sz = sizeof(a)};
	int err = damon_ctx_get_attrs(p->ctx, &a);

	if (err < 0)
		return err;
	a.min_nr_regions = k < 3 ? 3 : (uint32_t)k;
	a.max_nr_regions = a.min_nr_regions;
	return damon_ctx_set_attrs(p->ctx, &a);
}

/*
 * Hand the extents to the target, one range per 2 MiB block (the layout
 * cuts regions at range boundaries, so none straddles two blocks), and set
 * the number of regions to match.
 * Return: 1 if the extents had changed, 0, -errno.
 */
static int sync_ranges(struct policy *p)
{
	uint64_t gen = 0;
	size_t k = 0;
	int n, err;

	if (ext_generation(p->x) == p->gen)
		return 0;
	n = ext_ranges(p->x, p->v, MAX_RANGES, &gen);
	if (n <= 0)
		return n;
	for (int i = 0; i < n; i++) {
		for (uint64_t a = p->v[i].start; a < p->v[i].end;) {
			uint64_t e = (a & ~(HPAGE_SZ - 1)) + HPAGE_SZ;

			if (e > p->v[i].end)
				e = p->v[i].end;
			if (k == MAX_BLOCKS)
				return -ENOSPC;
			p->blocks[k++] = (struct damon_addr_range){a, e};
			a = e;
		}
	}
	err = damon_target_set_ranges(p->t, p->blocks, k);
	if (!err)
		err = set_nr_regions(p, k);
	if (err < 0)
		return err;
	p->gen = gen;
	return 1;
}

static void *follow(void *arg)
{
	struct policy *p = arg;
	struct timespec ts = {0, 50 * 1000 * 1000};

	while (!atomic_load(&p->stop)) {
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&p->lock);
		if (sync_ranges(p) == 1 && damon_ctx_commit(p->ctx) == 0)
			p->commits++;
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

int policy_start(struct policy **ret, struct extents *x, const struct cfg *c, char *msg,
		 size_t msg_sz)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)c->backend,
		   .sample_us = c->sample_us, .aggr_us = c->aggr_us);
	struct policy *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	p->x = x;
	pthread_mutex_init(&p->lock, NULL);
	err = damon_ctx_new(&p->ctx, &o);
	if (err < 0) {
		snprintf(msg, msg_sz, "damon_ctx_new: %s", strerror(-err));
		free(p);
		return err;
	}
	err = damon_ctx_add_target(p->ctx, 0, &p->t);
	if (!err) {
		err = sync_ranges(p);
		if (!err)
			err = -EINVAL; /* the arena maps its metadata when created */
		else if (err == 1)
			err = 0;
	}
	if (!err)
		err = damon_ctx_start(p->ctx);
	if (!err) {
		err = -pthread_create(&p->th, NULL, follow, p);
		p->th_started = !err;
	}
	if (err) {
		snprintf(msg, msg_sz, "%s", damon_ctx_errmsg(p->ctx));
		damon_ctx_unref(p->ctx);
		free(p);
		return err;
	}
	*ret = p;
	return 0;
}

int policy_arm(struct policy *p, const struct cfg *c, char *msg, size_t msg_sz)
{
	uint32_t samples = (uint32_t)(c->aggr_us / c->sample_us);
	uint32_t hot = (samples * c->hot_min_pct + 99) / 100;
	/* Cold: not one access seen for 5 s (DAMON's ages count aggregations),
	 * and for two aggregations at least. */
	uint32_t cold_age = (uint32_t)(5000000 / c->aggr_us);
	/* No minimum age for the hot pair: applying an action resets a
	 * region's age (kernel semantics), so a collapse scheme that waited for
	 * age would never follow the hugepage one in the same round. The two
	 * run in the order added. Writes-only backends (uffd_wp, soft_dirty)
	 * see the stamp every get writes (kvstore.c), so their "cold" is
	 * cold. */
	DAMOS_OPTS(hp, .action = DAMOS_HUGEPAGE, .min_sz = HPAGE_SZ,
		   .min_nr_accesses = hot ? hot : 1);
	DAMOS_OPTS(co, .action = DAMOS_COLLAPSE, .min_sz = HPAGE_SZ,
		   .min_nr_accesses = hot ? hot : 1);
	DAMOS_OPTS(nh, .action = DAMOS_NOHUGEPAGE, .max_nr_accesses = 0,
		   .min_age = cold_age < 2 ? 2 : cold_age, .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	DAMOS_OPTS(cd, .action = DAMOS_COLD, .max_nr_accesses = 0,
		   .min_age = cold_age < 2 ? 2 : cold_age, .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	int err;

	/* The kernel's DAMOS has no collapse action (it is on the DAMON
	 * roadmap; Linux 6.12 refuses it): there MADV_HUGEPAGE alone, and
	 * khugepaged collapses the memory so advised at its own pace. */
	bool kernel = damon_ctx_backend(p->ctx) == DAMON_BACKEND_KERNEL;

	pthread_mutex_lock(&p->lock);
	err = damon_ctx_add_scheme(p->ctx, &hp, &p->hugepage);
	if (!err && !kernel)
		err = damon_ctx_add_scheme(p->ctx, &co, &p->collapse);
	if (!err)
		err = damon_ctx_add_scheme(p->ctx, &nh, &p->nohuge);
	if (!err && c->madv_cold)
		err = damon_ctx_add_scheme(p->ctx, &cd, &p->cold);
	if (!err)
		err = damon_ctx_commit(p->ctx);
	snprintf(msg, msg_sz, "%s", err ? damon_ctx_errmsg(p->ctx) : "");
	pthread_mutex_unlock(&p->lock);
	return err;
}

size_t policy_regions(struct policy *p, struct damon_region **ret)
{
	damon_snapshot *s = NULL;
	size_t n = 0;

	*ret = NULL;
	if (damon_ctx_snapshot(p->ctx, &s) < 0)
		return 0;
	*ret = calloc(damon_snapshot_nr_regions(s) + 1, sizeof(**ret));
	for (size_t i = 0; *ret && i < damon_snapshot_nr_regions(s); i++) {
		(*ret)[n].sz = sizeof(**ret);
		if (damon_snapshot_region(s, i, &(*ret)[n]) == 0)
			n++;
	}
	damon_snapshot_unref(s);
	return n;
}

static uint64_t applied(const damos *s)
{
	struct damos_stats st = {.sz = sizeof(st)};

	return s && !damos_get_stats(s, &st) ? st.sz_applied : 0;
}

void policy_stop(struct policy *p, struct policy_stats *ret)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};

	memset(ret, 0, sizeof(*ret));
	atomic_store(&p->stop, true);
	if (p->th_started)
		pthread_join(p->th, NULL);
	ret->monitor_cpu_sec = thread_cpu_sec("damon-mon");
	ret->commits = p->commits;
	ret->hugepage_bytes = applied(p->hugepage);
	ret->collapse_bytes = applied(p->collapse);
	ret->nohuge_bytes = applied(p->nohuge);
	ret->cold_bytes = applied(p->cold);
	if (!damon_ctx_status(p->ctx, &st))
		ret->nr_snapshots = st.nr_snapshots;
	snprintf(ret->backend, sizeof(ret->backend), "%s",
		 damon_backend_name(damon_ctx_backend(p->ctx)));
	damon_ctx_unref(p->ctx);
	free(p);
}
