/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * DAMOS in the core: access-pattern matching and stats. This version
 * executes DAMOS_STAT only (the action that changes nothing); the other
 * actions are refused at damon_ctx_add_scheme() with -EOPNOTSUPP.
 */
#ifndef DAMON_CORE_SCHEMES_H
#define DAMON_CORE_SCHEMES_H

#include <stdbool.h>
#include <stdint.h>

#include <damon/damon.h>

#include "region.h"

struct dm_scheme {
	struct damos_opts opts;
	struct damos_stats stats;
	uint64_t next_apply_us; /* when the scheme is next due (apply_interval_us) */
};

/* Does region @r (counters as of the end of an aggregation interval) fit
 * the scheme's access pattern? Kernel meaning of every bound. */
bool dm_scheme_matches(const struct dm_scheme *s, const struct dm_region *r);

/* Is the scheme due at @now_us? Advances its next due time when it is. */
bool dm_scheme_due(struct dm_scheme *s, uint64_t now_us, uint64_t aggr_us);

/* Apply the scheme to one target's regions; counts tried (and applied). */
void dm_scheme_apply(struct dm_scheme *s, const struct dm_region *v, size_t n);

/* One more snapshot the scheme was applied to. */
void dm_scheme_count_round(struct dm_scheme *s);

#endif
