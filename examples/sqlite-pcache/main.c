// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * sqlite-pcache: SQLite's page cache in one pool monitored by libdamon; cold
 * pages go back to the kernel under a memory goal, hot pages stay.
 *
 * Modes (doc/examples/sqlite-pcache.md has the design and measurements):
 *   --bench   the same workload with SQLite's default page cache, with this
 *             one without libdamon, and with this one, each in a fresh
 *             process, and a table of the three
 *   --check   the test: every cache answers every query the same, and pages
 *             were released and read again
 *   --run default|pool|damon   one run in this process (what --bench and
 *             --check start), results as key=value
 *   --gen     only generate the database
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <damon/damon.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("Usage: sqlite-pcache --bench|--check|--gen|--run default|pool|damon [OPTIONS]\n"
	      "\n"
	      "A SQLite page cache whose pages live in one pool monitored by libdamon:\n"
	      "under a memory goal it gives cold pages back to the kernel and keeps hot ones.\n"
	      "\n"
	      "  --bench             SQLite's default page cache, this one without libdamon and\n"
	      "                      this one, on the same workload, each in a fresh process;\n"
	      "                      prints a table (RSS, cache memory, queries/s, CPU, cache\n"
	      "                      misses, pages released and read again)\n"
	      "  --check             the test: the same operations on a small database give\n"
	      "                      the same answers with SQLite's cache, this one, and the\n"
	      "                      pool alone in a small cache; this one released pages\n"
	      "                      and read them again; exit 0, 1, or 77 if libdamon cannot\n"
	      "                      monitor here (with the reason)\n"
	      "  --run CACHE         one run in this process, on a copy of the database unless\n"
	      "                      --db is given; prints key=value results. CACHE: default\n"
	      "                      (SQLite's), damon (this one), pool (this one without\n"
	      "                      libdamon: nothing released, its own cost alone)\n"
	      "  --gen               only generate the database (kept in the cache directory)\n"
	      "\n"
	      "  --size MiB          database size (bench: 1024, check: 32)\n"
	      "  --cache-dir DIR     where generated databases are kept (" PCACHE_CACHE_DIR ")\n"
	      "  --db PATH           --run: use this database as it is (it gets updated)\n"
	      "  --cache-mib MiB     PRAGMA cache_size of both caches (default: 5/4 of --size,\n"
	      "                      room for every page the workload touches)\n"
	      "  --goal MiB          resident bytes the pool should not exceed (default: 30% of\n"
	      "                      --size; check: 15%)\n"
	      "  --zipf S            popularity skew of rows, P(rank k) ~ k^-S (default 1.1)\n"
	      "  --updates PCT       share of operations that update a row (default 5)\n"
	      "  --seconds S         measured time of each run (bench: 60)\n"
	      "  --warmup S          time before measuring (bench: 60)\n"
	      "  --queries N         run exactly N operations instead (check: 400000)\n"
	      "  --seed N            seed of the operation sequence (default 1)\n"
	      "  --backend NAME      libdamon backend (default uffd_wp)\n"
	      "  --sample-us US      sampling interval (default 5000; check: 1000)\n"
	      "  --aggr-us US        aggregation interval (default 100000; check: 20000)\n"
	      "  --min-age N         cold: no access for N aggregation intervals (default 10)\n"
	      "  --max-accesses N    cold: at most N accesses per aggregation (default 0)\n"
	      "  --regions MIN,MAX   DAMON's region bounds (default 10,1000)\n"
	      "  --budget PERMILLE   libdamon's overhead budget, permille of one CPU (default 20)\n"
	      "  --halfway-wait S    with --queries, the libdamon run waits halfway until pages\n"
	      "                      were released, S seconds at most (check: 30), so that the\n"
	      "                      second half reads released pages again\n"
	      "  --verbose           progress on stderr every second\n"
	      "  --help              this text\n",
	      f);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int parse_double(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0))
		return -EINVAL;
	*ret = v;
	return 0;
}

static const struct option long_opts[] = {
	{"bench", no_argument, NULL, 'B'},
	{"check", no_argument, NULL, 'C'},
	{"run", required_argument, NULL, 'R'},
	{"gen", no_argument, NULL, 'G'},
	{"size", required_argument, NULL, 's'},
	{"cache-dir", required_argument, NULL, 'd'},
	{"db", required_argument, NULL, 'D'},
	{"cache-mib", required_argument, NULL, 'c'},
	{"goal", required_argument, NULL, 'g'},
	{"zipf", required_argument, NULL, 'z'},
	{"updates", required_argument, NULL, 'u'},
	{"seconds", required_argument, NULL, 't'},
	{"warmup", required_argument, NULL, 'w'},
	{"queries", required_argument, NULL, 'q'},
	{"seed", required_argument, NULL, 'S'},
	{"backend", required_argument, NULL, 'b'},
	{"sample-us", required_argument, NULL, 'a'},
	{"aggr-us", required_argument, NULL, 'A'},
	{"min-age", required_argument, NULL, 'm'},
	{"max-accesses", required_argument, NULL, 'x'},
	{"regions", required_argument, NULL, 'r'},
	{"budget", required_argument, NULL, 'P'},
	{"halfway-wait", required_argument, NULL, 'H'},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static int parse_args(int argc, char **argv, struct cfg *c)
{
	bool have_mode = false;
	int o, idx = 0, bad = 0;

	while ((o = getopt_long(argc, argv, "", long_opts, &idx)) != -1) {
		switch (o) {
		case 'B':
		case 'C':
		case 'G':
		case 'R':
			if (have_mode) {
				fprintf(stderr, "sqlite-pcache: give one mode only\n");
				return -EINVAL;
			}
			have_mode = true;
			c->mode = o == 'B'   ? MODE_BENCH
				  : o == 'C' ? MODE_CHECK
				  : o == 'G' ? MODE_GEN
					     : MODE_RUN;
			if (o == 'R') {
				c->cache = !strcmp(optarg, "damon")  ? CACHE_DAMON
					   : !strcmp(optarg, "pool") ? CACHE_POOL
								     : CACHE_DEFAULT;
				bad = c->cache == CACHE_DEFAULT && strcmp(optarg, "default");
			}
			break;
		case 's':
			bad = parse_u64(optarg, &c->size_mib) || !c->size_mib;
			break;
		case 'd':
			c->cache_dir = optarg;
			break;
		case 'D':
			c->db = optarg;
			break;
		case 'c':
			bad = parse_u64(optarg, &c->cache_mib) || !c->cache_mib;
			break;
		case 'g':
			bad = parse_u64(optarg, &c->goal_mib) || !c->goal_mib;
			break;
		case 'z':
			bad = parse_double(optarg, &c->zipf_s) || c->zipf_s <= 0;
			break;
		case 'u':
			bad = parse_u32(optarg, &c->updates) || c->updates > 100;
			break;
		case 't':
			bad = parse_double(optarg, &c->seconds) || c->seconds <= 0;
			break;
		case 'w':
			bad = parse_double(optarg, &c->warmup);
			break;
		case 'q':
			bad = parse_u64(optarg, &c->queries);
			break;
		case 'S':
			bad = parse_u64(optarg, &c->seed);
			break;
		case 'b':
			bad = damon_backend_from_name(optarg) < 0;
			c->backend = optarg;
			break;
		case 'a':
			bad = parse_u64(optarg, &c->sample_us) || !c->sample_us;
			break;
		case 'A':
			bad = parse_u64(optarg, &c->aggr_us) || !c->aggr_us;
			break;
		case 'm':
			bad = parse_u32(optarg, &c->min_age);
			break;
		case 'x':
			bad = parse_u32(optarg, &c->max_accesses);
			break;
		case 'r':
			bad = sscanf(optarg, "%u,%u", &c->min_regions, &c->max_regions) != 2 ||
			      c->min_regions < 3 || c->min_regions > c->max_regions;
			break;
		case 'P':
			bad = parse_u32(optarg, &c->budget) || !c->budget || c->budget > 1000;
			break;
		case 'H':
			bad = parse_double(optarg, &c->halfway_wait);
			break;
		case 'v':
			c->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (bad) {
			fprintf(stderr, "sqlite-pcache: bad value for --%s: %s\n",
				long_opts[idx].name, optarg ? optarg : "");
			return -EINVAL;
		}
	}
	if (optind < argc || !have_mode) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Fill what the options left unset: bench and check differ. */
static void defaults(struct cfg *c)
{
	bool check = c->mode == MODE_CHECK;

	if (!c->size_mib)
		c->size_mib = check ? 32 : 1024;
	if (!c->cache_dir)
		c->cache_dir = PCACHE_CACHE_DIR;
	if (!c->cache_mib)
		c->cache_mib = c->size_mib * 5 / 4;
	if (c->goal_mib == UINT64_MAX)
		c->goal_mib = c->size_mib * (check ? 15 : 30) / 100;
	if (c->zipf_s == 0)
		c->zipf_s = 1.1;
	if (c->updates == UINT32_MAX)
		c->updates = 5;
	if (c->seconds == 0)
		c->seconds = 60;
	if (c->warmup < 0)
		c->warmup = 60;
	if (c->queries == UINT64_MAX)
		c->queries = check ? 400000 : 0;
	if (c->seed == UINT64_MAX)
		c->seed = 1;
	if (!c->backend)
		c->backend = "uffd_wp";
	if (!c->sample_us)
		c->sample_us = check ? 1000 : 5000;
	if (!c->aggr_us)
		c->aggr_us = check ? 20000 : 100000;
	if (c->min_age == UINT32_MAX)
		c->min_age = 10;
	if (c->max_accesses == UINT32_MAX)
		c->max_accesses = 0;
	if (!c->min_regions) {
		c->min_regions = 10;
		c->max_regions = 1000;
	}
	if (!c->budget)
		c->budget = 20;
	if (c->halfway_wait < 0)
		c->halfway_wait = check ? 30 : 0;
}

/* ------------------------------------------------------------------------ */
/* One run                                                                  */
/* ------------------------------------------------------------------------ */

struct run_ctx {
	const struct cfg *c;
	struct pc_module *m;
	struct reclaim *rc;
	struct result *out;
};

static void at_end(void *arg)
{
	struct run_ctx *x = arg;

	if (!x->m)
		return;
	pc_module_measure(x->m, &x->out->pool_data, &x->out->pool_meta);
	pc_module_stats(x->m, &x->out->pc);
	if (x->rc)
		reclaim_stats(x->rc, &x->out->rc);
}

static void progress(void *arg, double t, uint64_t ops, double ops_per_s)
{
	struct run_ctx *x = arg;
	static const char *const name[] = {"default", "pool", "damon"};
	struct pc_stats ps;
	struct rc_stats rs = {0};

	fprintf(stderr, "%-7s %6.1f s %9.0f ops/s  RSS %7.1f MiB", name[x->c->cache], t, ops_per_s,
		(double)self_rss() / MiB);
	if (x->m) {
		pc_module_stats(x->m, &ps);
		if (x->rc)
			reclaim_stats(x->rc, &rs);
		fprintf(stderr,
			"  pool %7.1f MiB  released %" PRIu64 " reread %" PRIu64
			"  cold %.1f MiB  intervals %.1f/%.0f ms",
			(double)ps.resident_bytes / MiB, ps.released, ps.reread,
			(double)rs.cold_bytes / MiB, (double)rs.sample_us / 1000,
			(double)rs.aggr_us / 1000);
	}
	fputc('\n', stderr);
}

/* Give the reclaimer time to release pages (see --halfway-wait). */
static void halfway(void *arg)
{
	struct run_ctx *x = arg;
	struct pc_stats ps;

	for (int i = 0; i < x->c->halfway_wait * 20; i++) {
		pc_module_stats(x->m, &ps);
		if (ps.released)
			break;
		usleep(50000);
	}
}

int run_one(const struct cfg *c, const char *db, struct result *out, char *err, size_t errlen)
{
	struct run_ctx x = {.c = c, .out = out};
	struct rc_opts ro = {
		.backend = damon_backend_from_name(c->backend),
		.goal_bytes = c->goal_mib << 20,
		.sample_us = c->sample_us,
		.aggr_us = c->aggr_us,
		.min_age = c->min_age,
		.max_nr_accesses = c->max_accesses,
		.min_nr_regions = c->min_regions,
		.max_nr_regions = c->max_regions,
		.cpu_budget_permille = c->budget,
	};
	struct wl_opts wo = {
		.db_path = db,
		.zipf_s = c->zipf_s,
		.update_pct = c->updates,
		.seed = c->seed,
		.queries = c->queries,
		.warm_s = c->warmup,
		.run_s = c->seconds,
		.cache_kib = (int64_t)(c->cache_mib << 10),
		.progress = c->verbose ? progress : NULL,
		.halfway = c->cache == CACHE_DAMON && c->halfway_wait > 0 ? halfway : NULL,
		.arg = &x,
	};
	int rc;

	memset(out, 0, sizeof(*out));
	/* A page cache is configured before SQLite initialises: undo what
	 * opening the cached database (gen.c) did. No connection is open. */
	sqlite3_shutdown();
	if (c->cache != CACHE_DEFAULT) {
		/* Room for the cache size SQLite is told, and a little for other
		 * caches (a temporary database). */
		rc = pc_module_new(&x.m, 4096, (uint32_t)((c->cache_mib << 8) + 1024));
		if (rc) {
			snprintf(err, errlen, "cannot map the pool: %s", strerror(-rc));
			return rc;
		}
		if (pc_module_install(x.m) != SQLITE_OK) {
			snprintf(err, errlen,
				 "SQLite refused the page cache (SQLITE_CONFIG_PCACHE2)");
			pc_module_free(x.m);
			return -EINVAL;
		}
	}
	rc = sqlite3_initialize() == SQLITE_OK ? 0 : -EIO;
	if (rc)
		snprintf(err, errlen, "sqlite3_initialize failed");
	if (!rc && c->cache == CACHE_DAMON)
		rc = reclaim_start(&x.rc, x.m, &ro, err, errlen);
	if (!rc)
		rc = wl_run(&wo, at_end, &x, &out->wl, err, errlen);
	reclaim_stop(x.rc);
	sqlite3_shutdown();
	pc_module_free(x.m);
	return rc;
}

/* --run: one run in this process, on a private copy of the database unless
 * --db names one. */
static int run_mode(const struct cfg *c)
{
	char err[512] = "", path[4200], copy[4300];
	struct result res;
	const char *db = c->db;
	uint64_t rows;
	int rc;

	if (!db) {
		rc = gen_database(c->cache_dir, c->size_mib, c->verbose, path, sizeof(path), &rows,
				  err, sizeof(err));
		snprintf(copy, sizeof(copy), "%s/run-%d.db", c->cache_dir, (int)getpid());
		if (!rc)
			rc = gen_copy(path, copy, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "sqlite-pcache: %s\n", err);
			return 1;
		}
		db = copy;
	}
	rc = run_one(c, db, &res, err, sizeof(err));
	if (!c->db)
		gen_remove(copy);
	if (rc == -EOPNOTSUPP || rc == -EPERM) {
		/* libdamon cannot monitor here: a skip, with its reason. */
		printf("skip %s\n", err);
		return EXIT_SKIP;
	}
	if (rc) {
		fprintf(stderr, "sqlite-pcache: %s\n", err);
		return 1;
	}
	print_result(stdout, &res);
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.goal_mib = UINT64_MAX,
		.updates = UINT32_MAX,
		.queries = UINT64_MAX,
		.seed = UINT64_MAX,
		.warmup = -1,
		.min_age = UINT32_MAX,
		.max_accesses = UINT32_MAX,
		.halfway_wait = -1,
	};
	char err[512] = "", path[4200];
	uint64_t rows;

	if (parse_args(argc, argv, &c))
		return 2;
	defaults(&c);
	switch (c.mode) {
	case MODE_BENCH:
		return bench(&c);
	case MODE_CHECK:
		return check(&c);
	case MODE_RUN:
		return run_mode(&c);
	case MODE_GEN:
		break;
	}
	if (gen_database(c.cache_dir, c.size_mib, true, path, sizeof(path), &rows, err,
			 sizeof(err))) {
		fprintf(stderr, "sqlite-pcache: %s\n", err);
		return 1;
	}
	printf("%s: %" PRIu64 " rows\n", path, rows);
	return 0;
}
