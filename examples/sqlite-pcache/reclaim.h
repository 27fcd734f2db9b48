// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The reclaimer: libdamon monitors the pool's data part; while the pool
 * holds more than its goal, the page cache module drops the unpinned pages
 * of the coldest regions.
 */
#ifndef SQLITE_PCACHE_RECLAIM_H
#define SQLITE_PCACHE_RECLAIM_H

#include <stddef.h>
#include <stdint.h>

#include <damon/damon.h>

#include "pcache.h"

struct rc_opts {
	int backend;	     /* enum damon_backend */
	uint64_t goal_bytes; /* the pool's resident data should not exceed this */
	uint64_t sample_us, aggr_us;
	uint32_t min_age;	  /* cold: no access seen for this many aggregation intervals */
	uint32_t max_nr_accesses; /* cold: at most this many per aggregation interval */
	uint32_t min_nr_regions, max_nr_regions;
	uint32_t cpu_budget_permille; /* 0: libdamon's default */
};

struct rc_stats {
	uint64_t rounds;	     /* snapshots acted upon */
	uint64_t released_bytes;     /* dropped by this reclaimer */
	uint64_t cold_bytes;	     /* matched the cold pattern in the newest snapshot */
	uint64_t sample_us, aggr_us; /* intervals in force (the overhead budget may stretch them) */
	int backend;		     /* enum damon_backend in use */
	uint32_t sees;		     /* enum damon_sees */
};

struct reclaim;

/*
 * Start monitoring @m's pool and the reclaim thread. On failure returns
 * -errno and writes a sentence to @err.
 */
int reclaim_start(struct reclaim **ret, struct pc_module *m, const struct rc_opts *o, char *err,
		  size_t errlen);
/* Stop both and free; NULL-safe. */
void reclaim_stop(struct reclaim *r);
void reclaim_stats(struct reclaim *r, struct rc_stats *ret);

#endif
