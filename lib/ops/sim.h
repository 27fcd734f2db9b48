/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The simulated primitive: accesses come from a model function instead of
 * page tables, so the core's algorithm can be tested deterministically.
 * Its layout is the model's, the target's fixed ranges, or (vaddr without a
 * model layout) the real /proc/PID/maps of the target process — so a test
 * can watch a real child exit under a simulated access pattern.
 */
#ifndef DAMON_OPS_SIM_H
#define DAMON_OPS_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ops.h"

struct dm_sim_model {
	/* Was the page at @addr of process @pid accessed since it was armed? */
	bool (*accessed)(void *arg, pid_t pid, uint64_t addr);
	/* Ranges to monitor; NULL: fixed ranges, else the real vaddr layout.
	 * Return the number of ranges or -errno (-ESRCH: gone). */
	int (*layout)(void *arg, pid_t pid, struct dm_range *ret, size_t cap);
	/* Application cost per caught access, ns (budget tests). */
	uint64_t app_cost_ns;
	void *arg;
	/* Counters the tests read. */
	uint64_t nr_prepared, nr_checked;
};

#endif
