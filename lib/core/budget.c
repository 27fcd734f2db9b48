// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "budget.h"

void dm_budget_init(struct dm_budget *b, uint32_t permille, uint64_t app_cost_ns, uint64_t now_us,
		    uint64_t cpu_ns)
{
	b->permille = permille;
	b->app_cost_ns = app_cost_ns;
	b->stretch = 1.0;
	b->win_start_us = now_us;
	b->win_cpu_ns = cpu_ns;
	b->win_caught = 0;
	b->last_cost_ns = b->last_allowed_ns = 0;
}

double dm_budget_update(struct dm_budget *b, uint64_t now_us, uint64_t cpu_ns)
{
	uint64_t wall_ns = (now_us - b->win_start_us) * 1000;
	uint64_t cost = (cpu_ns - b->win_cpu_ns) + b->win_caught * b->app_cost_ns;
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
		/* Over: stretch at once past the overshoot, aiming at 80% of the
		 * budget (the per-fault cost is an estimate and the region count
		 * may still grow), at most 8x a window so that one noisy window
		 * cannot throw the intervals far off. */
		double f = ratio / 0.8;

		b->stretch *= f < 8.0 ? f : 8.0;
	} else if (ratio < 0.5 && b->stretch > 1.0) {
		/* Well under: come back towards the configured intervals, aiming
		 * at 70% of the budget, at most halving per window. */
		double f = ratio / 0.7;

		b->stretch *= f > 0.5 ? f : 0.5;
	}
	if (b->stretch < 1.0)
		b->stretch = 1.0;
	if (b->stretch > DM_BUDGET_MAX_STRETCH)
		b->stretch = DM_BUDGET_MAX_STRETCH;
	return b->stretch;
}
