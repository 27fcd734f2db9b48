// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The intervals goal's arithmetic (tune.h). The monitor gathers the access
 * events at an aggregation and applies the new intervals with the same
 * rules as a commit (dm_monitor_set_attrs()).
 */
#include "monitor.h"
#include "schemes.h"
#include "tune.h"

uint64_t dm_tune_score_bp(const struct dm_intervals_goal *g, uint64_t events, uint64_t max_events)
{
	/* The kernel computes in unsigned long: size x samples fits in 64
	 * bits for any address space (2^47 x 2^16), and so does the product
	 * with a goal of at most 10000 bp once divided first. */
	uint64_t target =
		max_events / 10000 * g->access_bp + max_events % 10000 * g->access_bp / 10000;

	if (!target)
		target = 1;
	if (events > UINT64_MAX / 10000)
		return events / target * 10000;
	return events * 10000 / target;
}

uint64_t dm_tune_next_sample_us(const struct dm_intervals_goal *g, uint64_t sample_us,
				uint64_t score_bp)
{
	/* dm_feed_loop_next() answers an input that should reach a score
	 * of 10000; from 10^8 it yields the adaptation in units of 10^-8. */
	uint64_t adapt_bp = dm_feed_loop_next(100000000ULL, score_bp) / 10000;
	uint64_t next;

	if (adapt_bp <= 10000)
		adapt_bp = 5000 + adapt_bp / 2;
	if (adapt_bp == 10000)
		return sample_us;
	next = sample_us * adapt_bp / 10000;
	if (next > g->max_sample_us)
		next = g->max_sample_us;
	if (next < g->min_sample_us)
		next = g->min_sample_us;
	return next ? next : 1;
}

uint64_t dm_tune_score_targets(const struct dm_intervals_goal *g, struct dm_mon_target *const *t,
			       size_t n, uint32_t per)
{
	uint64_t events = 0, max_events = 0;

	for (size_t i = 0; i < n; i++) {
		const struct dm_regions *rs = &t[i]->regions;

		if (!t[i]->live)
			continue;
		for (size_t j = 0; j < rs->n; j++) {
			uint64_t sz = rs->v[j].end - rs->v[j].start;

			events += sz * rs->v[j].nr_accesses;
			max_events += sz * per;
		}
	}
	return dm_tune_score_bp(g, events, max_events);
}
