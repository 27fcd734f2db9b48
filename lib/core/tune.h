/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Monitoring intervals auto-tuning with the kernel's meaning (Linux 6.15's
 * intervals goal, mm/damon/core.c): every @aggrs aggregation intervals the
 * sampling interval is scaled so that the access events observed in the
 * last aggregation (the sum over regions of size x nr_accesses) come to
 * @access_bp of the most that could be observed (size x samples per
 * aggregation). The number of samples per aggregation never changes, so
 * nr_accesses keeps its range; the aggregation interval follows the
 * sampling interval. The sampling interval stays within
 * [@min_sample_us, @max_sample_us].
 *
 * The goal scales the intervals as configured; the overhead budget of the
 * user-space backends (budget.h) may still stretch them on top, and a
 * snapshot tells the intervals in force.
 */
#ifndef DAMON_CORE_TUNE_H
#define DAMON_CORE_TUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dm_intervals_goal {
	uint32_t access_bp; /* target share of the observable access events */
	uint32_t aggrs;	    /* tune every this many aggregations; 0: off */
	uint64_t min_sample_us, max_sample_us;
};

static inline bool dm_intervals_goal_on(const struct dm_intervals_goal *g)
{
	return g->aggrs != 0;
}

/*
 * How far the last aggregation is from the goal, in bp of it (10000: on
 * the goal, more: too many accesses seen, so the intervals should shrink).
 * @events: sum of size x nr_accesses; @max_events: sum of size x samples
 * per aggregation.
 */
uint64_t dm_tune_score_bp(const struct dm_intervals_goal *g, uint64_t events, uint64_t max_events);

/*
 * The next sampling interval for @score_bp, from @sample_us: the kernel's
 * feedback loop, whose adaptation (1 to 20000 bp of the current interval)
 * is rescaled below 10000 to [5000, 10000] so that intervals never drop
 * faster than by half; clamped to the goal's bounds. Equal to @sample_us
 * when on the goal.
 */
uint64_t dm_tune_next_sample_us(const struct dm_intervals_goal *g, uint64_t sample_us,
				uint64_t score_bp);

/* The score of the aggregation just done (before the counters are reset)
 * over the live ones of @n targets, @per samples per aggregation. */
struct dm_mon_target;
uint64_t dm_tune_score_targets(const struct dm_intervals_goal *g, struct dm_mon_target *const *t,
			       size_t n, uint32_t per);

#endif
