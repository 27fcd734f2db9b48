// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * libdamon benchmarks; prints tables, asserts nothing about speed.
 *
 *  1. damon_ctx_hotness() latency (median, p90, p99, p99.9 of calls timed
 *     one by one, and the mean of a batch) and allocations, at 1 000 and
 *     10 000 regions, while a thread publishes snapshots into the
 *     context's latch the way the monitor does at the end of each
 *     aggregation interval: 10 a second (DAMON's default 100 ms interval)
 *     and 100 a second. A publish rewrites the memory readers read, so
 *     the calls after it miss the cache; so do calls whose records other
 *     work evicted: a last row asks over a tenth of the range only.
 *  2. uffd_wp on this process: monitor CPU per second and the application's
 *     extra CPU (write faults on armed pages) for a 1 GiB vs an 8 GiB
 *     target at the same number of regions. Cost must follow regions, not
 *     memory size.
 *
 * Usage: bench [hotness|cost|all] [seconds per hotness row or cost run]
 *   (defaults: 2 s a hotness row, 5 s a cost run)
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <damon/damon.h>

#include "api/internal.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* ---- allocation counting hooks ---------------------------------------- */

/* Allocations made by the thread that asks hotness questions: the
 * monitor thread allocates snapshots meanwhile and is not counted. */
static _Thread_local bool is_reader;
static atomic_ulong nr_allocs;

static void *count_malloc(size_t sz, void *ud)
{
	if (is_reader)
		atomic_fetch_add(&nr_allocs, 1);
	return malloc(sz);
}

static void count_free(void *p, void *ud)
{
	free(p);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- 1. hotness latency ----------------------------------------------- */

static double tsc_ns_per_tick(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc();
	struct timespec ts = { 0, 100000000 };

	nanosleep(&ts, NULL);
	return (double)(now_ns() - t0) / (double)(__rdtsc() - c0);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

#define HOT_BASE 0x200000000000ULL

/* @nr contiguous regions as a monitor ends up with: sizes log-uniform
 * from 4 KiB to 8 MiB, random rates and ages, writes known and the rest
 * not (as uffd_wp tells). */
static struct damon_snapshot *hot_regions(size_t nr, uint32_t target_id, uint64_t *span)
{
	struct damon_snapshot *s = dm_snapshot_new(NULL, 1, nr);
	uint64_t x = 0x9e3779b97f4a7c15ULL, at = HOT_BASE;

	if (!s)
		exit(1);
	s->targets[0] = (struct dm_snap_target){ .id = target_id, .first = 0, .nr = (uint32_t)nr };
	for (size_t i = 0; i < nr; i++) {
		struct dm_snap_region *r = &s->regions[i];
		uint64_t pages = 1ULL << (xorshift(&x) % 12);

		pages += xorshift(&x) % pages;
		r->start = at;
		r->end = at += pages * 4096;
		r->nr_accesses = (uint32_t)(xorshift(&x) % 21);
		r->access_rate_bp = r->nr_accesses * 500;
		r->age = (uint32_t)(xorshift(&x) % 100);
		dm_snap_region_who_unknown(r);
		r->nr_writes = r->nr_accesses;
		r->write_bp = 10000;
	}
	*span = at - HOT_BASE;
	return s;
}

struct publisher {
	damon_ctx *ctx;
	const struct damon_snapshot *model;
	unsigned int per_s;
	atomic_bool stop;
	atomic_ulong published;
};

/* What the monitor does at the end of every aggregation interval: a new
 * snapshot (ages one older, some rates changed) into the latch. */
static void *publish_loop(void *arg)
{
	struct publisher *p = arg;
	const struct damon_snapshot *m = p->model;
	uint64_t seq = 1, x = 12345, period = 1000000000ULL / p->per_s;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&p->stop)) {
		struct damon_snapshot *s = dm_snapshot_new(NULL, m->nr_targets, m->nr_regions);

		if (!s)
			exit(1);
		memcpy(s->targets, m->targets, m->nr_targets * sizeof(*s->targets));
		memcpy(s->regions, m->regions, m->nr_regions * sizeof(*s->regions));
		s->info.seq = ++seq;
		for (size_t i = 0; i < s->nr_regions; i++) {
			s->regions[i].age += (uint32_t)seq;
			if (xorshift(&x) % 4 == 0)
				s->regions[i].access_rate_bp = (uint32_t)(x % 10001);
		}
		dm_publisher_publish(&p->ctx->pub, s);
		atomic_fetch_add(&p->published, 1);
		next.tv_nsec += (long)period;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return NULL;
}

/* Latencies in TSC ticks, one bin each; the TSC of this machine moves in
 * steps of about 10 ns anyway. */
#define HIST_BINS 65536
static uint32_t hist[HIST_BINS];

static double hist_pct(uint64_t n, double pct, double ns_per_tick, uint64_t overhead)
{
	uint64_t want = (uint64_t)((double)n * pct / 100.0), seen = 0;

	for (size_t i = 0; i < HIST_BINS; i++) {
		seen += hist[i];
		if (seen > want)
			return (double)(i > overhead ? i - overhead : 0) * ns_per_tick;
	}
	return (double)(HIST_BINS - overhead) * ns_per_tick;
}

/* The smallest step the TSC is seen to take, in ticks. */
static uint64_t tsc_step(void)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 1000; i++) {
		uint64_t c0 = __rdtsc(), c1;

		while ((c1 = __rdtsc()) == c0)
			;
		if (c1 - c0 < best)
			best = c1 - c0;
	}
	return best;
}

/* What rdtscp itself costs, to subtract: the median of empty pairs. */
static uint64_t rdtscp_overhead(void)
{
	static uint64_t empty[10001];
	unsigned int aux;

	for (int i = 0; i < 10001; i++) {
		uint64_t c0 = __rdtscp(&aux);

		empty[i] = __rdtscp(&aux) - c0;
	}
	qsort(empty, 10001, sizeof(empty[0]), cmp_u64);
	return empty[5000];
}

/* @part: ask over 1 / @part of the regions' address range only (fewer
 * records to keep in the cache). */
static void bench_hotness(size_t nr, unsigned int per_s, unsigned int part, double secs,
			  double ns_per_tick)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .malloc_fn = count_malloc,
		   .free_fn = count_free);
	struct publisher p = { .per_s = per_s };
	struct damon_hotness h = { .sz = sizeof(h) };
	struct damon_snapshot *model;
	damon_target *t;
	pthread_t th;
	uint64_t span, calls = 0, errors = 0, allocs, x = 88172645463325252ULL, seq0, seq1;
	uint64_t overhead = rdtscp_overhead(), until;
	double batch_ns;

	/* A context that never starts: the publisher thread stands in for
	 * its monitor, so that every row gets the same regions and rate. */
	if (damon_ctx_new(&p.ctx, &o) || damon_ctx_add_target(p.ctx, 0, &t)) {
		fprintf(stderr, "bench: setup failed: %s\n", damon_ctx_errmsg(p.ctx));
		exit(1);
	}
	model = hot_regions(nr, t->id, &span);
	p.model = model;
	dm_publisher_publish(&p.ctx->pub, damon_snapshot_ref(model));
	pthread_create(&th, NULL, publish_loop, &p);
	memset(hist, 0, sizeof(hist));

	is_reader = true;
	allocs = atomic_load(&nr_allocs);
	damon_ctx_hotness(p.ctx, HOT_BASE, 4096, &h);
	seq0 = h.snapshot_seq;
	until = now_ns() + (uint64_t)(secs * 1e9);
	while (calls % 4096 || now_ns() < until) {
		uint64_t addr = HOT_BASE + xorshift(&x) % (span / 4096 / part) * 4096, c0, c1;
		unsigned int aux;
		int err;

		c0 = __rdtscp(&aux);
		err = damon_ctx_hotness(p.ctx, addr, 4096, &h);
		c1 = __rdtscp(&aux);
		hist[c1 - c0 < HIST_BINS ? c1 - c0 : HIST_BINS - 1]++;
		errors += err != 0;
		calls++;
	}
	seq1 = h.snapshot_seq;
	/* Back to back, timed as a batch: no per-call timer in the way. In
	 * this thread's CPU time: on a shared machine the wall clock would
	 * count the time other work had the CPU. */
	{
		uint64_t t0 = cpu_ns();

		for (int i = 0; i < 1000000; i++)
			errors += damon_ctx_hotness(p.ctx,
						    HOT_BASE + xorshift(&x) % (span / 4096 / part) * 4096,
						    4096, &h) != 0;
		batch_ns = (double)(cpu_ns() - t0) / 1000000;
	}
	allocs = atomic_load(&nr_allocs) - allocs;
	is_reader = false;
	atomic_store(&p.stop, true);
	pthread_join(th, NULL);

	printf("| %7zu | %5u | 1/%-3u | %6.1f | %6.1f | %6.1f | %6.1f | %6.1f | %9" PRIu64
	       " | %6" PRIu64 " | %6" PRIu64 " |\n",
	       nr, per_s, part, hist_pct(calls, 50, ns_per_tick, overhead),
	       hist_pct(calls, 90, ns_per_tick, overhead), hist_pct(calls, 99, ns_per_tick, overhead),
	       hist_pct(calls, 99.9, ns_per_tick, overhead), batch_ns, seq1 - seq0, errors, allocs);
	damon_snapshot_unref(model);
	damon_ctx_unref(p.ctx);
}

/* ---- 2. cost against memory size -------------------------------------- */

struct writer {
	uint8_t *buf;
	uint64_t hot;
	atomic_bool stop;
	pid_t tid;
	uint64_t passes;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		for (uint64_t off = 0; off < w->hot; off += 4096)
			w->buf[off]++;
		w->passes++;
	}
	return NULL;
}

/* Nanoseconds thread @tid has run (schedstat's first field). */
static uint64_t thread_cpu_ns(pid_t tid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

static pid_t find_thread(const char *name)
{
	char path[96], comm[32];
	pid_t found = 0;

	for (pid_t tid = getpid(); tid < getpid() + 4096 && !found; tid++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, name, strlen(name)))
			found = tid;
		fclose(f);
	}
	return found;
}

struct cost {
	double mon_ms_per_s, app_us_per_pass;
};

static struct cost bench_cost(uint64_t size, unsigned int seconds, bool monitor)
{
	struct writer w = { 0 };
	pthread_t th;
	damon_ctx *ctx = NULL;
	damon_target *t;
	damon_snapshot *s = NULL;
	struct damon_snapshot_info info = { .sz = sizeof(info) };
	uint64_t t0, w0, m0 = 0, wall, wcpu, mcpu = 0;
	pid_t mon = 0;
	size_t nr = 0;
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .min_nr_regions = 500, .max_nr_regions = 500, .sample_us = 5000,
		   .aggr_us = 100000, .cpu_budget_permille = 1000);

	w.hot = 64 * MiB;
	w.buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		     -1, 0);
	if (w.buf == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(w.buf, 1, w.hot);
	if (monitor) {
		if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, 0, &t) ||
		    damon_target_add_range(t, (uint64_t)(uintptr_t)w.buf,
					   (uint64_t)(uintptr_t)w.buf + size) ||
		    damon_ctx_start(ctx)) {
			printf("| %5llu GiB | uffd_wp refused: %s |\n", size / GiB,
			       damon_ctx_errmsg(ctx));
			damon_ctx_unref(ctx);
			munmap(w.buf, size);
			return (struct cost){ 0, 0 };
		}
		mon = find_thread("damon-mon");
	}
	pthread_create(&th, NULL, write_loop, &w);
	while (!w.tid)
		sched_yield();
	{
		struct timespec ts = { 1, 0 }; /* settle */

		nanosleep(&ts, NULL);
	}
	t0 = now_ns();
	w0 = thread_cpu_ns(w.tid);
	uint64_t p0 = w.passes;

	if (mon)
		m0 = thread_cpu_ns(mon);
	{
		struct timespec ts = { seconds, 0 };

		nanosleep(&ts, NULL);
	}
	wall = now_ns() - t0;
	wcpu = thread_cpu_ns(w.tid) - w0;
	uint64_t passes = w.passes - p0;

	if (mon)
		mcpu = thread_cpu_ns(mon) - m0;
	if (ctx && !damon_ctx_snapshot(ctx, &s)) {
		nr = damon_snapshot_nr_regions(s);
		damon_snapshot_info(s, &info);
		damon_snapshot_unref(s);
	}
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	damon_ctx_unref(ctx);
	munmap(w.buf, size);
	printf("| %5llu GiB | %-7s | %7zu | %11.1f | %13.1f | %11.1f |\n", size / GiB,
	       monitor ? "uffd_wp" : "none", nr, mcpu / 1e6 / (wall / 1e9),
	       (double)wcpu / (double)passes / 1e3, passes / (wall / 1e9));
	return (struct cost){ mcpu / 1e6 / (wall / 1e9), (double)wcpu / (double)passes / 1e3 };
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	unsigned int secs = argc > 2 && atoi(argv[2]) > 0 ? (unsigned int)atoi(argv[2]) : 5;

	if (!strcmp(what, "hotness") || !strcmp(what, "all")) {
		double npt = tsc_ns_per_tick(), hsecs = argc > 2 ? atof(argv[2]) : 2;
		static const size_t sizes[] = { 1000, 10000 };
		static const unsigned int rates[] = { 10, 100 };

		if (hsecs <= 0)
			hsecs = 2;
		printf("\ndamon_ctx_hotness() on a random 4 KiB range while a thread publishes "
		       "snapshots; %.1f s a row;\nns per call (timed one by one: steps of %.1f ns; "
		       "batch: CPU time of 10^6 back to back / 10^6)\n",
		       hsecs, (double)tsc_step() * npt);
		printf("| regions | pub/s | range | median | p90    | p99    | p99.9  | batch  "
		       "| snapshots | errors | allocs |\n");
		printf("|---------|-------|-------|--------|--------|--------|--------|--------"
		       "|-----------|--------|--------|\n");
		for (size_t i = 0; i < 2; i++)
			for (size_t j = 0; j < 2; j++)
				bench_hotness(sizes[i], rates[j], 1, hsecs, npt);
		/* the tail's part in cache misses: a tenth of the records */
		bench_hotness(10000, 10, 10, hsecs, npt);
	}
	if (!strcmp(what, "cost") || !strcmp(what, "all")) {
		printf("\nuffd_wp, 500 regions, a thread writing a 64 MiB hot set; %u s each\n", secs);
		printf("| target    | monitor | regions | monitor ms/s | app us/pass | passes/s    |\n");
		printf("|-----------|---------|---------|--------------|---------------|-------------|\n");
		struct cost b1 = bench_cost(1 * GiB, secs, false);
		struct cost m1 = bench_cost(1 * GiB, secs, true);
		struct cost b8 = bench_cost(8 * GiB, secs, false);
		struct cost m8 = bench_cost(8 * GiB, secs, true);

		printf("\n8 GiB / 1 GiB: monitor CPU ratio %.2f; application cost per pass with "
		       "monitoring vs without: 1 GiB %+.1f%%, 8 GiB %+.1f%%\n",
		       m1.mon_ms_per_s > 0 ? m8.mon_ms_per_s / m1.mon_ms_per_s : 0.0,
		       b1.app_us_per_pass > 0 ? 100 * (m1.app_us_per_pass / b1.app_us_per_pass - 1) : 0.0,
		       b8.app_us_per_pass > 0 ? 100 * (m8.app_us_per_pass / b8.app_us_per_pass - 1) : 0.0);
	}
	return 0;
}
