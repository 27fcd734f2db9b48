// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * --bench and --check: the same workload with SQLite's default page cache
 * and with the libdamon one, each run in a fresh process (this program with
 * --run, on its own copy of the database), so that neither run's memory
 * counts in the other's RSS.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

/* ------------------------------------------------------------------------ */
/* Results as key=value                                                     */
/* ------------------------------------------------------------------------ */

struct field {
	const char *name;
	char type; /* u: uint64_t, i: int64_t, d: double, x: uint64_t in hex, n: int */
	size_t off;
};

#define F(n, t, m)                               \
	{                                        \
		n, t, offsetof(struct result, m) \
	}
static const struct field fields[] = {
	F("ops", 'u', wl.ops),
	F("lookups", 'u', wl.lookups),
	F("updates", 'u', wl.updates),
	F("found", 'u', wl.found),
	F("checksum", 'x', wl.checksum),
	F("seconds", 'd', wl.seconds),
	F("ops_per_s", 'd', wl.ops_per_s),
	F("cpu_s", 'd', wl.cpu_s),
	F("thread_cpu_s", 'd', wl.thread_cpu_s),
	F("sqlite_miss", 'i', wl.cache_miss),
	F("sqlite_hit", 'i', wl.cache_hit),
	F("cache_used", 'i', wl.cache_used),
	F("rss", 'u', wl.rss),
	F("rows", 'u', wl.rows),
	F("pool_data", 'u', pool_data),
	F("pool_meta", 'u', pool_meta),
	F("hits", 'u', pc.hits),
	F("misses", 'u', pc.misses),
	F("refused", 'u', pc.refused),
	F("evicted", 'u', pc.evicted),
	F("released", 'u', pc.released),
	F("reread", 'u', pc.reread),
	F("resident", 'u', pc.resident_bytes),
	F("rounds", 'u', rc.rounds),
	F("cold", 'u', rc.cold_bytes),
	F("sample_us", 'u', rc.sample_us),
	F("aggr_us", 'u', rc.aggr_us),
	F("backend", 'n', rc.backend),
};

void print_result(FILE *f, const struct result *r)
{
	fputs("result", f);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const void *p = (const char *)r + fields[i].off;

		fprintf(f, " %s=", fields[i].name);
		switch (fields[i].type) {
		case 'u':
			fprintf(f, "%" PRIu64, *(const uint64_t *)p);
			break;
		case 'i':
			fprintf(f, "%" PRId64, *(const int64_t *)p);
			break;
		case 'd':
			fprintf(f, "%.6f", *(const double *)p);
			break;
		case 'x':
			fprintf(f, "%016" PRIx64, *(const uint64_t *)p);
			break;
		case 'n':
			fprintf(f, "%d", *(const int *)p);
			break;
		}
	}
	fputc('\n', f);
}

static int parse_result(char *line, struct result *r)
{
	memset(r, 0, sizeof(*r));
	for (char *save = NULL, *tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq++ = 0;
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			void *p = (char *)r + fields[i].off;

			if (strcmp(tok, fields[i].name))
				continue;
			switch (fields[i].type) {
			case 'u':
				*(uint64_t *)p = strtoull(eq, NULL, 10);
				break;
			case 'i':
				*(int64_t *)p = strtoll(eq, NULL, 10);
				break;
			case 'd':
				*(double *)p = strtod(eq, NULL);
				break;
			case 'x':
				*(uint64_t *)p = strtoull(eq, NULL, 16);
				break;
			case 'n':
				*(int *)p = atoi(eq);
				break;
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* A run in a child process                                                 */
/* ------------------------------------------------------------------------ */

/* --run's names of enum cache_kind. */
static const char *const cache_name[] = {"default", "pool", "damon"};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One run of a comparison: which cache, and its size. */
struct spec {
	enum cache_kind cache;
	uint64_t cache_mib;
};

/* The arguments that make a child run what @c and @sp describe. */
static void child_args(const struct cfg *c, const struct spec *sp, const char *db, char buf[][48],
		       const char **argv)
{
	size_t n = 0, b = 0;

#define ARG(s)	    (argv[n++] = (s))
#define NUM(f, ...) (snprintf(buf[b], 48, f, __VA_ARGS__), argv[n++] = buf[b++])
	ARG("sqlite-pcache");
	ARG("--run");
	ARG(cache_name[sp->cache]);
	ARG("--db");
	ARG(db);
	ARG("--cache-mib");
	NUM("%" PRIu64, sp->cache_mib);
	ARG("--goal");
	NUM("%" PRIu64, c->goal_mib);
	ARG("--zipf");
	NUM("%.17g", c->zipf_s);
	ARG("--updates");
	NUM("%u", c->updates);
	ARG("--seed");
	NUM("%" PRIu64, c->seed);
	ARG("--backend");
	ARG(c->backend);
	ARG("--sample-us");
	NUM("%" PRIu64, c->sample_us);
	ARG("--aggr-us");
	NUM("%" PRIu64, c->aggr_us);
	ARG("--min-age");
	NUM("%u", c->min_age);
	ARG("--max-accesses");
	NUM("%u", c->max_accesses);
	ARG("--regions");
	NUM("%u,%u", c->min_regions, c->max_regions);
	ARG("--budget");
	NUM("%u", c->budget);
	ARG("--halfway-wait");
	NUM("%.17g", c->halfway_wait);
	if (c->queries) {
		ARG("--queries");
		NUM("%" PRIu64, c->queries);
	} else {
		ARG("--seconds");
		NUM("%.17g", c->seconds);
		ARG("--warmup");
		NUM("%.17g", c->warmup);
	}
	if (c->verbose)
		ARG("--verbose");
	argv[n] = NULL;
#undef ARG
#undef NUM
}

/*
 * Run @db with the page cache of @sp in a child.
 * 0 with @out filled; -EOPNOTSUPP when the child could not monitor (the
 * reason in @why); -EIO when it failed.
 */
static int spawn_run(const struct cfg *c, const struct spec *sp, const char *db, struct result *out,
		     char *why, size_t whylen)
{
	char args[24][48], buf[65536], *line;
	const char *argv[64];
	size_t len = 0;
	ssize_t n;
	int fd[2], st;
	pid_t pid;

	child_args(c, sp, db, args, argv);
	if (pipe2(fd, O_CLOEXEC)) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -EIO;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		execv("/proc/self/exe", (char *const *)argv);
		perror("sqlite-pcache: exec");
		_exit(127);
	}
	close(fd[1]);
	while (len < sizeof(buf) - 1 && (n = read(fd[0], buf + len, sizeof(buf) - 1 - len)) != 0)
		if (n > 0)
			len += (size_t)n;
		else if (errno != EINTR)
			break;
	buf[len] = 0;
	close(fd[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid) {
		snprintf(why, whylen, "cannot run a child: %s", strerror(errno));
		return -EIO;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SKIP && (line = strstr(buf, "skip "))) {
		line[strcspn(line, "\n")] = 0;
		snprintf(why, whylen, "%s", line + 5);
		return -EOPNOTSUPP;
	}
	line = strstr(buf, "result ");
	if (!WIFEXITED(st) || WEXITSTATUS(st) || !line) {
		snprintf(why, whylen, "the %s run failed (%s %d)", cache_name[sp->cache],
			 WIFEXITED(st) ? "exit" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return -EIO;
	}
	return parse_result(line, out);
}

/* Both runs, each on a fresh copy of the database at @src. */

/* Each run of @specs, each on a fresh copy of the database at @src. */
static int run_set(const struct cfg *c, const char *src, const struct spec *specs, int n,
		   struct result *res, double *secs, char *why, size_t whylen)
{
	char copy[4300];
	int rc = 0;

	snprintf(copy, sizeof(copy), "%s/run-%d.db", c->cache_dir, (int)getpid());
	for (int i = 0; i < n && !rc; i++) {
		double t0 = now_s();

		rc = gen_copy(src, copy, why, whylen);
		if (!rc)
			rc = spawn_run(c, &specs[i], copy, &res[i], why, whylen);
		gen_remove(copy);
		secs[i] = now_s() - t0;
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* --bench                                                                  */
/* ------------------------------------------------------------------------ */

static double pct(double now, double before)
{
	return before > 0 ? (now - before) * 100 / before : 0;
}

static double per_cpu(const struct result *r)
{
	return r->wl.cpu_s > 0 ? r->wl.ops_per_s * r->wl.seconds / r->wl.cpu_s : 0;
}

static double us_per_op(const struct result *r, double cpu)
{
	double q = r->wl.ops_per_s * r->wl.seconds;

	return q > 0 ? cpu * 1e6 / q : 0;
}

static void print_row(const char *name, const struct result *r, uint64_t cache_bytes, bool damon)
{
	double q = r->wl.ops_per_s * r->wl.seconds;

	printf("| %-18s | %8.1f MiB | %8.1f MiB | %9.0f | %9.0f | %12" PRId64 " | %12.4f |", name,
	       (double)r->wl.rss / MiB, (double)cache_bytes / MiB, r->wl.ops_per_s, per_cpu(r),
	       r->wl.cache_miss, q > 0 ? (double)r->wl.cache_miss / q : 0);
	if (damon)
		printf(" %9" PRIu64 " | %9" PRIu64 " |\n", r->pc.released, r->pc.reread);
	else
		printf(" %9s | %9s |\n", "-", "-");
}

int bench(const struct cfg *c)
{
	const struct spec specs[3] = {
		{CACHE_DEFAULT, c->cache_mib},
		{CACHE_POOL, c->cache_mib},
		{CACHE_DAMON, c->cache_mib},
	};
	char err[512] = "", path[4200], name[64];
	struct result res[3];
	double secs[3], gen_t0 = now_s();
	uint64_t rows;
	struct stat sb;
	int rc;

	rc = gen_database(c->cache_dir, c->size_mib, true, path, sizeof(path), &rows, err,
			  sizeof(err));
	if (rc || stat(path, &sb)) {
		fprintf(stderr, "sqlite-pcache: %s\n", err[0] ? err : strerror(errno));
		return 1;
	}
	printf("database   %s: %" PRIu64 " rows, %.0f MiB (ready in %.1f s)\n", path, rows,
	       (double)sb.st_size / MiB, now_s() - gen_t0);
	printf("workload   zipf %.2f over rows, %u%% updates, seed %" PRIu64
	       "; PRAGMA cache_size %" PRIu64 " MiB for every cache\n",
	       c->zipf_s, c->updates, c->seed, c->cache_mib);
	if (c->queries)
		printf("runs       %" PRIu64 " operations each, each in a fresh process\n",
		       c->queries);
	else
		printf("runs       %.0f s warm-up + %.0f s measured each, each in a fresh "
		       "process\n",
		       c->warmup, c->seconds);
	printf("libdamon   backend %s, goal %" PRIu64 " MiB resident in the pool, cold = at most "
	       "%u accesses for %u aggregations, overhead budget %u permille of a CPU\n\n",
	       c->backend, c->goal_mib, c->max_accesses, c->min_age, c->budget);
	fflush(stdout);
	rc = run_set(c, path, specs, 3, res, secs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "sqlite-pcache: %s\n", err);
		return rc == -EOPNOTSUPP ? EXIT_SKIP : 1;
	}
	snprintf(name, sizeof(name), "libdamon (%s)", damon_backend_name(res[2].rc.backend));
	printf("| %-18s | %12s | %12s | %9s | %9s | %12s | %12s | %9s | %9s |\n", "page cache",
	       "process RSS", "cache memory", "queries/s", "per CPU-s", "cache misses",
	       "misses/query", "released", "re-read");
	printf("|%s|%s:|%s:|%s:|%s:|%s:|%s:|%s:|%s:|\n", "--------------------", "-------------",
	       "-------------", "----------", "----------", "-------------", "-------------",
	       "----------", "----------");
	print_row("SQLite default", &res[0], (uint64_t)res[0].wl.cache_used, false);
	print_row("pool, no libdamon", &res[1], res[1].pool_data + res[1].pool_meta, false);
	print_row(name, &res[2], res[2].pool_data + res[2].pool_meta, true);
	printf("\nlibdamon vs default: RSS %+.1f%%, queries/s %+.1f%%, queries per CPU-second "
	       "%+.1f%% (the aim: RSS -50%% or less, queries/s -5%% or better)\n",
	       pct((double)res[2].wl.rss, (double)res[0].wl.rss),
	       pct(res[2].wl.ops_per_s, res[0].wl.ops_per_s),
	       pct(per_cpu(&res[2]), per_cpu(&res[0])));
	printf("pool without libdamon vs default (the module's own cost): queries/s %+.1f%%, "
	       "queries per CPU-second %+.1f%%\n",
	       pct(res[1].wl.ops_per_s, res[0].wl.ops_per_s),
	       pct(per_cpu(&res[1]), per_cpu(&res[0])));
	printf("per CPU-s: operations per second of CPU time of the whole process (every thread: "
	       "SQLite's, libdamon's monitor, the reclaimer) in the measured part: %.1f, %.1f and "
	       "%.1f s of CPU in %.1f, %.1f and %.1f s\n",
	       res[0].wl.cpu_s, res[1].wl.cpu_s, res[2].wl.cpu_s, res[0].wl.seconds,
	       res[1].wl.seconds, res[2].wl.seconds);
	printf("CPU per operation, measured part: %.2f, %.2f and %.2f us in the thread running "
	       "them, %.2f, %.2f and %.2f us in the whole process\n",
	       us_per_op(&res[0], res[0].wl.thread_cpu_s),
	       us_per_op(&res[1], res[1].wl.thread_cpu_s),
	       us_per_op(&res[2], res[2].wl.thread_cpu_s), us_per_op(&res[0], res[0].wl.cpu_s),
	       us_per_op(&res[1], res[1].wl.cpu_s), us_per_op(&res[2], res[2].wl.cpu_s));
	printf("cache memory: SQLITE_DBSTATUS_CACHE_USED for the default cache; the pool's "
	       "resident data + meta (mincore) for the others: %.1f + %.1f MiB with libdamon\n",
	       (double)res[2].pool_data / MiB, (double)res[2].pool_meta / MiB);
	printf("cache misses: SQLITE_DBSTATUS_CACHE_MISS over the measured part; the libdamon "
	       "cache's own count over the whole run: %" PRIu64 " misses, %" PRIu64 " hits\n",
	       res[2].pc.misses, res[2].pc.hits);
	printf("libdamon: intervals in force %.1f / %.1f ms, cold in the last snapshot %.1f MiB, "
	       "%" PRIu64 " rounds\n",
	       (double)res[2].rc.sample_us / 1000, (double)res[2].rc.aggr_us / 1000,
	       (double)res[2].rc.cold_bytes / MiB, res[2].rc.rounds);
	printf("time: %.1f, %.1f and %.1f s (each with the copy of the database)\n", secs[0],
	       secs[1], secs[2]);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* --check                                                                  */
/* ------------------------------------------------------------------------ */

static int expect(bool ok, const char *what, const char *detail)
{
	printf("%s: %s%s%s\n", ok ? "ok" : "FAIL", what, detail[0] ? ": " : "", detail);
	return ok ? 0 : 1;
}

int check(const struct cfg *c)
{
	/* The default cache, the libdamon one, and the pool alone in a cache
	 * an eighth of the database (its own eviction at work). */
	const struct spec specs[3] = {
		{CACHE_DEFAULT, c->cache_mib},
		{CACHE_DAMON, c->cache_mib},
		{CACHE_POOL, c->size_mib / 8 ? c->size_mib / 8 : 1},
	};
	char err[512] = "", path[4200], d[256];
	struct result res[3];
	double secs[3];
	uint64_t rows;
	int rc, failed = 0;

	if (!c->queries) {
		fprintf(stderr, "sqlite-pcache: --check runs a number of operations (--queries)\n");
		return 1;
	}
	rc = gen_database(c->cache_dir, c->size_mib, c->verbose, path, sizeof(path), &rows, err,
			  sizeof(err));
	if (!rc)
		rc = run_set(c, path, specs, 3, res, secs, err, sizeof(err));
	if (rc == -EOPNOTSUPP) {
		printf("skipped: libdamon cannot monitor the pool here: %s\n", err);
		return EXIT_SKIP;
	}
	if (rc) {
		fprintf(stderr, "sqlite-pcache: %s\n", err);
		return 1;
	}
	printf("%s: %" PRIu64 " rows; %" PRIu64 " operations with each cache (%.1f, %.1f and "
	       "%.1f s)\n",
	       path, rows, c->queries, secs[0], secs[1], secs[2]);
	snprintf(d, sizeof(d), "%" PRIu64 ", %" PRIu64 " and %" PRIu64, res[0].wl.ops,
		 res[1].wl.ops, res[2].wl.ops);
	failed += expect(res[0].wl.ops == c->queries && res[1].wl.ops == c->queries &&
				 res[2].wl.ops == c->queries,
			 "every run did every operation", d);
	snprintf(d, sizeof(d), "default %016" PRIx64 ", libdamon %016" PRIx64, res[0].wl.checksum,
		 res[1].wl.checksum);
	failed += expect(res[0].wl.checksum == res[1].wl.checksum,
			 "every answer is the same with the default and libdamon caches", d);
	snprintf(d, sizeof(d), "%016" PRIx64 ", %" PRIu64 " pages evicted", res[2].wl.checksum,
		 res[2].pc.evicted);
	failed += expect(res[0].wl.checksum == res[2].wl.checksum && res[2].pc.evicted > 0,
			 "and with the pool in a cache an eighth of the database", d);
	snprintf(d, sizeof(d), "default %" PRIu64 ", libdamon %" PRIu64 " of %" PRIu64 " lookups",
		 res[0].wl.found, res[1].wl.found, res[0].wl.lookups);
	failed += expect(res[0].wl.found == res[1].wl.found && res[0].wl.found == res[0].wl.lookups,
			 "every lookup found its row", d);
	snprintf(d, sizeof(d), "%" PRIu64 " pages (goal %" PRIu64 " MiB, %s backend)",
		 res[1].pc.released, c->goal_mib, damon_backend_name(res[1].rc.backend));
	failed += expect(res[1].pc.released > 0, "the libdamon cache released pages", d);
	snprintf(d, sizeof(d), "%" PRIu64 " pages", res[1].pc.reread);
	failed += expect(res[1].pc.reread > 0, "released pages were read again from the file", d);
	snprintf(d, sizeof(d), "mincore %.1f MiB, the cache's count %.1f MiB",
		 (double)res[1].pool_data / MiB, (double)res[1].pc.resident_bytes / MiB);
	failed += expect(res[1].pool_data <= res[1].pc.resident_bytes,
			 "released memory went back to the kernel", d);
	printf("check: %d of 7 held\n", 7 - failed);
	return failed ? 1 : 0;
}
