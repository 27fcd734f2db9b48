// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * What the command line (main.c) and the comparisons (compare.c) share.
 */
#ifndef SQLITE_PCACHE_CLI_H
#define SQLITE_PCACHE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pcache.h"
#include "reclaim.h"
#include "workload.h"

#ifndef PCACHE_CACHE_DIR
#define PCACHE_CACHE_DIR "cache"
#endif

#define MiB	  (1024.0 * 1024.0)
#define EXIT_SKIP 77

enum mode { MODE_BENCH, MODE_CHECK, MODE_RUN, MODE_GEN };

/* The page cache of a run (--run NAME). */
enum cache_kind {
	CACHE_DEFAULT, /* SQLite's own */
	CACHE_POOL,    /* this module alone: no monitoring, nothing released */
	CACHE_DAMON,   /* this module, monitored by libdamon, cold pages released */
};

struct cfg {
	enum mode mode;
	enum cache_kind cache; /* --run */
	const char *db;	       /* --run: the database to use as it is */
	const char *cache_dir;
	uint64_t size_mib, cache_mib, goal_mib, queries, seed;
	double zipf_s, seconds, warmup;
	uint32_t updates;
	const char *backend;
	uint64_t sample_us, aggr_us;
	uint32_t min_age, max_accesses, min_regions, max_regions, budget;
	double halfway_wait; /* --halfway-wait: see usage() */
	bool verbose;
};

/* One run's results, as --run prints them and the parent reads them. */
struct result {
	struct wl_result wl;
	struct pc_stats pc;
	struct rc_stats rc;
	uint64_t pool_data, pool_meta; /* mincore() of the pool at the end */
};

/* One run in this process (main.c), with the page cache c->cache. */
int run_one(const struct cfg *c, const char *db, struct result *out, char *err, size_t errlen);

/* compare.c */
void print_result(FILE *f, const struct result *r);
/* --bench and --check: exit codes. */
int bench(const struct cfg *c);
int check(const struct cfg *c);

#endif
