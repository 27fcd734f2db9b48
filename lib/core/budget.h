/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The overhead budget of user-space backends: the monitor's CPU time plus
 * what the application pays for the accesses the primitive catches (a write
 * fault on an armed page for uffd_wp), kept under a share of one CPU by
 * stretching the sampling and aggregation intervals together (so that
 * nr_accesses keeps its range and access_rate_bp its meaning).
 */
#ifndef DAMON_CORE_BUDGET_H
#define DAMON_CORE_BUDGET_H

#include <stdint.h>

/* Never stretch beyond this: a 5 ms sampling interval becomes 5 s at most. */
#define DM_BUDGET_MAX_STRETCH 1000.0

struct dm_budget {
	uint32_t permille;     /* 0: no budget */
	uint64_t app_cost_ns;  /* per access caught */
	double stretch;        /* >= 1: multiplier of both intervals */
	uint64_t win_start_us; /* current measuring window */
	uint64_t win_cpu_ns;
	uint64_t win_caught;   /* accesses caught in the window */
	/* The last closed window, for reports and tests. */
	uint64_t last_cost_ns, last_allowed_ns;
};

void dm_budget_init(struct dm_budget *b, uint32_t permille, uint64_t app_cost_ns, uint64_t now_us,
		    uint64_t cpu_ns);

/* Accesses the primitive caught (each cost the application one fault). */
static inline void dm_budget_caught(struct dm_budget *b, uint64_t n)
{
	b->win_caught += n;
}

/* Close the window at @now_us with the monitor's CPU clock at @cpu_ns and
 * return the new stretch. */
double dm_budget_update(struct dm_budget *b, uint64_t now_us, uint64_t cpu_ns);

#endif
