// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Where both snapshot sources end (trace.c: the tracepoint stream;
 * tried.c: tried_regions): the regions they read, in k->regbuf, become one
 * snapshot published to the context's readers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernel_int.h"

int dm_kernel_regbuf(struct dm_kernel *k, size_t n)
{
	if (n <= k->regcap)
		return 0;
	size_t cap = n < 64 ? 64 : n * 2;
	struct dm_kreg *v =
		dm_realloc(k->alloc, k->regbuf, k->regcap * sizeof(*v), cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	k->regbuf = v;
	k->regcap = cap;
	return 0;
}

/*
 * Does region @g of target @t go in the snapshot? A target's regions ascend
 * without overlap in what the kernel writes; a region that goes back
 * (records lost or reordered, tried_regions of targets told apart wrongly)
 * is left out, since hotness lookups rely on the order and their byte
 * counts on regions not counting twice.
 */
static bool in_order(const struct dm_kreg *g, size_t t, uint64_t *prev_end)
{
	if (g->tpos != t || g->start < *prev_end)
		return false;
	*prev_end = g->end;
	return true;
}

/* Publish k->regbuf[0..n) (sorted by target position, then address). */
int dm_kernel_publish(struct dm_kernel *k, size_t n, struct dm_err *err)
{
	uint32_t max_acc =
		(uint32_t)(k->attrs.aggr_us / (k->attrs.sample_us ? k->attrs.sample_us : 1));
	uint32_t nr_t = 0, ti = 0;
	struct damon_snapshot *s;
	size_t kept = 0, r = 0;

	if (!max_acc)
		max_acc = 1;
	for (size_t i = 0; i < k->nr_targets; i++) {
		uint64_t prev_end = 0;

		if (k->targets[i].gone)
			continue;
		nr_t++;
		for (size_t j = 0; j < n; j++)
			kept += in_order(&k->regbuf[j], i, &prev_end);
	}
	s = dm_snapshot_new(k->alloc, nr_t, kept);
	if (!s)
		return dm_err_set(err, -ENOMEM, "kernel: out of memory building a snapshot");
	s->info.seq = ++k->seq;
	s->info.time_ns = dm_kernel_now_us() * 1000;
	s->info.sample_us = k->attrs.sample_us;
	s->info.aggr_us = k->attrs.aggr_us;
	s->info.backend = DAMON_BACKEND_KERNEL;
	s->info.sees = DAMON_SEES_READS | DAMON_SEES_WRITES;
	s->info.max_nr_accesses = max_acc;
	s->info.nr_samples = max_acc;
	for (size_t i = 0; i < k->nr_targets; i++) {
		uint64_t prev_end = 0;

		if (k->targets[i].gone)
			continue;
		s->targets[ti].id = k->targets[i].id;
		s->targets[ti].first = (uint32_t)r;
		for (size_t j = 0; j < n; j++) {
			const struct dm_kreg *g = &k->regbuf[j];
			struct dm_snap_region *o;
			uint32_t acc;

			if (!in_order(g, i, &prev_end))
				continue;
			o = &s->regions[r++];
			acc = g->nr_accesses > max_acc ? max_acc : g->nr_accesses;
			o->start = g->start;
			o->end = g->end;
			o->nr_accesses = acc;
			o->age = g->age;
			o->access_rate_bp = (uint32_t)((uint64_t)acc * 10000 / max_acc);
			/* the target's id, its place in the context (struct
			 * damon_region), not its place in the kernel's list: a
			 * target dropped before it moves the later ones up */
			o->target_idx = k->targets[i].id;
			dm_snap_region_who_unknown(o); /* the accessed bit tells nobody */
		}
		s->targets[ti].nr = (uint32_t)r - s->targets[ti].first;
		ti++;
	}
	if (dm_publisher_publish(k->pub, s))
		return dm_err_set(err, -ENOMEM, "kernel: out of memory publishing hotness");
	return 0;
}
