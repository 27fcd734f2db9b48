// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The reclaimer (reclaim.h).
 *
 * One libdamon context monitors the pool's data part (fvaddr, this
 * process). After each snapshot this thread compares the pool's resident
 * data R with the goal G and, when R > G, takes the snapshot's cold regions
 * (at most max_nr_accesses accesses per aggregation for at least min_age
 * aggregations, the kernel's DAMOS access pattern), coldest first (oldest,
 * then least accessed), and asks the page cache module to drop the unpinned
 * pages inside them, R - G bytes at most (and RELEASE_MAX per round).
 *
 * Why not a DAMOS action: it runs on raw address ranges and cannot know
 * which pages SQLite holds pinned, nor take them out of the cache's hash
 * table. pc_release_range() does both under the module's lock.
 *
 * Why not a DAMOS quota goal to set the pace: the kernel's feedback loop,
 * which libdamon follows, starts from a one-byte quota and grows it by a
 * factor that depends on how far the goal is from being met. Tried here
 * (a DAMOS_STAT scheme with a user_input goal fed with the pool's headroom
 * below the goal, esz read back as the bytes to release per reset
 * interval): on the 1 GiB benchmark the pool went 30% past the goal and the
 * quota needed ~30 s to reach a few MiB per interval. The module knows its
 * resident bytes exactly, so it releases exactly the excess; what is cold is
 * still DAMON's answer.
 *
 * Cold regions with fewer pages to drop than the excess simply leave the
 * pool above the goal: hot pages are never released to meet it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#include "reclaim.h"

/* Bytes released per round at most: a round holds the module's lock in
 * short stretches, but the madvise() calls still cost the workload TLB
 * flushes; spread a large excess over a few snapshots. */
#define RELEASE_MAX (64ULL << 20)

struct reclaim {
	struct pc_module *m;
	struct rc_opts o;
	damon_ctx *ctx;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	pthread_mutex_t lock; /* st */
	struct rc_stats st;
	struct damon_region *regions;
	size_t regions_cap;
};

static int colder_first(const void *a, const void *b)
{
	const struct damon_region *x = a, *y = b;

	if (x->age != y->age)
		return x->age > y->age ? -1 : 1;
	if (x->nr_accesses != y->nr_accesses)
		return x->nr_accesses < y->nr_accesses ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The regions of @snap that match the cold pattern, coldest first. */
static size_t cold_regions(struct reclaim *r, const damon_snapshot *snap, uint64_t *ret_bytes)
{
	size_t n = damon_snapshot_nr_regions(snap), k = 0;
	uint64_t bytes = 0;

	if (n > r->regions_cap) {
		struct damon_region *v = realloc(r->regions, n * sizeof(*v));

		if (!v)
			return 0;
		r->regions = v;
		r->regions_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct damon_region *reg = &r->regions[k];

		reg->sz = sizeof(*reg);
		if (damon_snapshot_region(snap, i, reg) < 0)
			continue;
		if (reg->nr_accesses > r->o.max_nr_accesses || reg->age < r->o.min_age)
			continue;
		bytes += reg->end - reg->start;
		k++;
	}
	qsort(r->regions, k, sizeof(*r->regions), colder_first);
	*ret_bytes = bytes;
	return k;
}

static void round_once(struct reclaim *r)
{
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	uint64_t page = pc_module_page_size(r->m), excess = 0, done = 0, cold = 0;
	damon_snapshot *snap = NULL;
	struct pc_stats st;
	size_t n = 0;

	if (damon_ctx_snapshot(r->ctx, &snap) < 0)
		return;
	damon_snapshot_info(snap, &info);
	n = cold_regions(r, snap, &cold);
	pc_module_stats(r->m, &st);
	if (st.resident_bytes > r->o.goal_bytes)
		excess = st.resident_bytes - r->o.goal_bytes;
	if (excess > RELEASE_MAX)
		excess = RELEASE_MAX;
	for (size_t i = 0; i < n && done < excess / page; i++)
		done += pc_release_range(r->m, r->regions[i].start, r->regions[i].end,
					 excess / page - done);
	damon_snapshot_unref(snap);
	pthread_mutex_lock(&r->lock);
	r->st.rounds++;
	r->st.released_bytes += done * page;
	r->st.cold_bytes = cold;
	r->st.sample_us = info.sample_us;
	r->st.aggr_us = info.aggr_us;
	pthread_mutex_unlock(&r->lock);
}

static void *run(void *arg)
{
	struct reclaim *r = arg;
	struct pollfd pfd = {.fd = damon_ctx_fd(r->ctx), .events = POLLIN};

	while (!atomic_load(&r->stop)) {
		uint64_t cnt;

		/* Readable after each new snapshot; the timeout only bounds how
		 * long a stop waits. */
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (read(pfd.fd, &cnt, sizeof(cnt)) != sizeof(cnt))
			continue;
		round_once(r);
	}
	return NULL;
}

static int fail(struct reclaim *r, int err, char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s: %s (%s)", what, r->ctx ? damon_ctx_errmsg(r->ctx) : "",
		 strerror(-err));
	reclaim_stop(r);
	return err;
}

int reclaim_start(struct reclaim **ret, struct pc_module *m, const struct rc_opts *o, char *err,
		  size_t errlen)
{
	DAMON_OPTS(damon_ctx_opts, co, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)o->backend,
		   .sample_us = o->sample_us, .aggr_us = o->aggr_us,
		   .min_nr_regions = o->min_nr_regions, .max_nr_regions = o->max_nr_regions,
		   .cpu_budget_permille = o->cpu_budget_permille);
	struct damon_backend_status bs = {.sz = sizeof(bs)};
	uint64_t start, end;
	damon_target *t;
	struct reclaim *r;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->m = m;
	r->o = *o;
	pthread_mutex_init(&r->lock, NULL);
	pc_module_data_range(m, &start, &end);
	rc = damon_ctx_new(&r->ctx, &co);
	if (rc < 0)
		return fail(r, rc, err, errlen, "damon_ctx_new");
	rc = damon_ctx_add_target(r->ctx, 0, &t);
	if (rc >= 0)
		rc = damon_target_add_range(t, start, end);
	if (rc < 0)
		return fail(r, rc, err, errlen, "monitoring the pool");
	rc = damon_ctx_start(r->ctx);
	if (rc < 0)
		return fail(r, rc, err, errlen, "damon_ctx_start");
	r->st.backend = damon_ctx_backend(r->ctx);
	if (damon_ctx_backend_status(r->ctx, r->st.backend, &bs) == 0)
		r->st.sees = bs.sees;
	/* A backend blind to reads would take every page that is only read
	 * for cold: make each cache hit a write it can see (pcache.c). */
	pc_module_set_touch(m, !(r->st.sees & DAMON_SEES_READS));
	rc = -pthread_create(&r->thread, NULL, run, r);
	if (rc < 0)
		return fail(r, rc, err, errlen, "pthread_create");
	r->thread_started = true;
	*ret = r;
	return 0;
}

void reclaim_stop(struct reclaim *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, true);
	if (r->thread_started)
		pthread_join(r->thread, NULL);
	damon_ctx_unref(r->ctx);
	pthread_mutex_destroy(&r->lock);
	free(r->regions);
	free(r);
}

void reclaim_stats(struct reclaim *r, struct rc_stats *ret)
{
	pthread_mutex_lock(&r->lock);
	*ret = r->st;
	pthread_mutex_unlock(&r->lock);
}
