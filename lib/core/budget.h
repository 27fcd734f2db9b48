/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The overhead budget of user-space backends: the monitor's CPU time plus
 * what the application pays for the accesses the primitive catches (a write
 * fault on an armed page for uffd_wp), kept under a share of one CPU. The
 * time DAMOS actions take is not monitoring: like the kernel, libdamon
 * bounds it with each scheme's quota_ms, and leaves it out of this budget.
 *
 * Both costs grow with the number of regions (one sample page each per
 * sampling interval), which is how kernel DAMON bounds its own overhead
 * (max_nr_regions). So an over-budget monitor first lowers the number of
 * regions it may keep, down to 3 x min_nr_regions (below that the adaptive
 * split has no room left), keeping the kernel's intervals and with them the
 * meaning of nr_accesses, age and every interval in time. Only when that is
 * not enough does it stretch the sampling and aggregation intervals together
 * (so that nr_accesses keeps its range and access_rate_bp its meaning; the
 * snapshots say which intervals were in force). Back under budget, it undoes
 * the stretch first, then lets the regions grow again.
 */
#ifndef DAMON_CORE_BUDGET_H
#define DAMON_CORE_BUDGET_H

#include <stddef.h>
#include <stdint.h>

/* Never stretch beyond this: a 5 ms sampling interval becomes 5 s at most. */
#define DM_BUDGET_MAX_STRETCH 1000.0

struct dm_budget {
	uint32_t permille;     /* 0: no budget */
	uint64_t app_cost_ns;  /* per access caught */
	double stretch;        /* >= 1: multiplier of both intervals */
	uint32_t cap;          /* regions the monitor may keep now */
	uint32_t cap_min, cap_max;
	uint64_t win_start_us; /* current measuring window */
	uint64_t win_cpu_ns;
	uint64_t win_caught;   /* accesses caught in the window */
	/* The last closed window, for reports and tests. */
	uint64_t last_cost_ns, last_allowed_ns;
};

/* @min_nr_regions, @max_nr_regions: the context's bounds (the cap moves
 * between min(3 x min, max) and max). */
void dm_budget_init(struct dm_budget *b, uint32_t permille, uint64_t app_cost_ns, uint64_t now_us,
		    uint64_t cpu_ns, uint32_t min_nr_regions, uint32_t max_nr_regions);

/* New region bounds (a commit); the cap is clipped to them. */
void dm_budget_set_regions(struct dm_budget *b, uint32_t min_nr_regions, uint32_t max_nr_regions);

/* Start a new measuring window at @now_us, the monitor's CPU clock at
 * @cpu_ns (another thread took over driving the monitor: its CPU clock is
 * not the one the window started with). */
static inline void dm_budget_restart(struct dm_budget *b, uint64_t now_us, uint64_t cpu_ns)
{
	b->win_start_us = now_us;
	b->win_cpu_ns = cpu_ns;
	b->win_caught = 0;
}

/* Accesses the primitive caught (each cost the application one fault). */
static inline void dm_budget_caught(struct dm_budget *b, uint64_t n)
{
	b->win_caught += n;
}

/* Close the window at @now_us with the monitor's CPU clock at @cpu_ns, the
 * monitor holding @nr_regions regions; update b->cap and return the new
 * stretch. */
double dm_budget_update(struct dm_budget *b, uint64_t now_us, uint64_t cpu_ns, size_t nr_regions);

#endif
