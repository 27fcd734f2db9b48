// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "budget.h"

void dm_budget_set_regions(struct dm_budget *b, uint32_t min_nr_regions, uint32_t max_nr_regions)
{
	uint64_t floor = (uint64_t)min_nr_regions * 3;

	b->cap_max = max_nr_regions;
	b->cap_min = floor < max_nr_regions ? (uint32_t)floor : max_nr_regions;
	if (!b->cap || b->cap > b->cap_max)
		b->cap = b->cap_max;
	if (b->cap < b->cap_min)
		b->cap = b->cap_min;
}

void dm_budget_init(struct dm_budget *b, uint32_t permille, uint64_t app_cost_ns, uint64_t now_us,
		    uint64_t cpu_ns, uint32_t min_nr_regions, uint32_t max_nr_regions)
{
	b->permille = permille;
	b->app_cost_ns = app_cost_ns;
	b->stretch = 1.0;
	b->cap = 0;
	dm_budget_set_regions(b, min_nr_regions, max_nr_regions);
	b->win_start_us = now_us;
	b->win_cpu_ns = cpu_ns;
	b->win_caught = 0;
	b->last_cost_ns = b->last_allowed_ns = 0;
}

double dm_budget_update(struct dm_budget *b, uint64_t now_us, uint64_t cpu_ns, size_t nr_regions)
{
	uint64_t wall_ns = (now_us - b->win_start_us) * 1000;
	/* a clock behind the window's start is another thread's: count none */
	uint64_t cpu = cpu_ns > b->win_cpu_ns ? cpu_ns - b->win_cpu_ns : 0;
	uint64_t cost = cpu + b->win_caught * b->app_cost_ns;
	uint64_t allowed = wall_ns / 1000 * b->permille;
	double ratio;

	b->win_start_us = now_us;
	b->win_cpu_ns = cpu_ns;
	b->win_caught = 0;
	b->last_cost_ns = cost;
	b->last_allowed_ns = allowed;
	if (!b->permille || !allowed)
		return b->stretch;

	ratio = (double)cost / (double)allowed;
	if (ratio > 1.0) {
		/* Over: cut the cost past the overshoot, aiming at 80% of the
		 * budget (the per-fault cost is an estimate and the region count
		 * may still grow): fewer regions first, as far as they go, the
		 * rest by stretching, at most 8x a window so that one noisy window
		 * cannot throw the intervals far off. */
		double f = ratio / 0.8;

		if (nr_regions > b->cap_min) {
			double want = (double)nr_regions / f;
			uint32_t cap = want > b->cap_min ? (uint32_t)want : b->cap_min;

			if (cap < b->cap)
				b->cap = cap;
			f *= (double)cap / (double)nr_regions;
		}
		if (f > 1.0)
			b->stretch *= f < 8.0 ? f : 8.0;
	} else if (ratio < 0.5) {
		/* Well under: aiming at 70% of the budget, undo the stretch
		 * first (at most halving it per window), then let the regions
		 * grow (at most doubling). */
		double f = ratio / 0.7;

		if (b->stretch > 1.0) {
			b->stretch *= f > 0.5 ? f : 0.5;
		} else if (b->cap < b->cap_max && nr_regions * 10 >= (size_t)b->cap * 9) {
			/* only when the regions press against the cap */
			double want = (double)b->cap / (f > 0.5 ? f : 0.5);

			b->cap = want < b->cap_max ? (uint32_t)want : b->cap_max;
		}
	}
	if (b->stretch < 1.0)
		b->stretch = 1.0;
	if (b->stretch > DM_BUDGET_MAX_STRETCH)
		b->stretch = DM_BUDGET_MAX_STRETCH;
	return b->stretch;
}
