// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * libdamon benchmarks; prints tables, asserts nothing about speed.
 *
 *  1. damon_ctx_hotness() latency (median, p99) and allocations, with about
 *     1k and 10k regions, while the monitor runs and publishes. The regions
 *     come from the real monitor thread on the simulated primitive (so that
 *     10k regions exist at all); the hotness path is the same for every
 *     backend.
 *  2. uffd_wp on this process: monitor CPU per second and the application's
 *     extra CPU (write faults on armed pages) for a 1 GiB vs an 8 GiB
 *     target at the same number of regions. Cost must follow regions, not
 *     memory size.
 *
 * Usage: bench [hotness|cost|all] [seconds per cost run]
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
#include "ops/sim.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
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

/* ---- 1. hotness latency ----------------------------------------------- */

static bool stripes(void *arg, pid_t pid, uint64_t addr)
{
	/* Every 64 KiB block has its own rate: many regions survive merging. */
	uint64_t block = addr >> 16, h = block * 0x9e3779b97f4a7c15ULL;
	static _Thread_local uint64_t coin = 88172645463325252ULL;

	coin ^= coin << 13;
	coin ^= coin >> 7;
	coin ^= coin << 17;
	return (coin % 100) < ((h >> 40) % 100);
}

static double tsc_ns_per_tick(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc();
	struct timespec ts = { 0, 100000000 };

	nanosleep(&ts, NULL);
	return (double)(now_ns() - t0) / (double)(__rdtsc() - c0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void bench_hotness(uint32_t max_regions, double ns_per_tick)
{
	enum { CALLS = 1 << 24 };
	struct dm_sim_model model = { .accessed = stripes };
	static uint64_t lat[CALLS];
	damon_ctx *ctx = NULL;
	damon_target *t;
	damon_snapshot *s;
	uint64_t base = 0x200000000000ULL, size = 4 * GiB, allocs;
	struct damon_hotness h = { .sz = sizeof(h) };
	size_t nr = 0;
	int misses = 0;
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .sample_us = 1000, .aggr_us = 20000,
		   .min_nr_regions = max_regions * 9 / 10, .max_nr_regions = max_regions,
		   .cpu_budget_permille = 1000, .malloc_fn = count_malloc, .free_fn = count_free,
		   .seed = 1);

	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, 0, &t) ||
	    damon_target_add_range(t, base, base + size)) {
		fprintf(stderr, "bench: setup failed: %s\n", damon_ctx_errmsg(ctx));
		exit(1);
	}
	dm_ctx_set_ops_override(ctx, &dm_ops_sim, &model, NULL);
	if (damon_ctx_start(ctx)) {
		fprintf(stderr, "bench: start failed: %s\n", damon_ctx_errmsg(ctx));
		exit(1);
	}
	/* Let regions grow towards the maximum. */
	for (int i = 0; i < 300 && nr < max_regions * 8 / 10; i++) {
		struct timespec ts = { 0, 10000000 };

		nanosleep(&ts, NULL);
		if (!damon_ctx_snapshot(ctx, &s)) {
			nr = damon_snapshot_nr_regions(s);
			damon_snapshot_unref(s);
		}
	}
	uint64_t seq0 = 0, seq1 = 0;

	is_reader = true;
	allocs = atomic_load(&nr_allocs);

	/* Two seconds of questions, so that the monitor publishes many
	 * snapshots meanwhile; every call is timed. */
	size_t calls = 0;
	uint64_t until = now_ns() + 2000000000ULL;

	while (calls < CALLS && (calls % 1024 || now_ns() < until)) {
		uint64_t addr = base + ((uint64_t)rand() % (size / 4096)) * 4096, c0, c1;
		unsigned int aux;
		int err;

		c0 = __rdtscp(&aux);
		err = damon_ctx_hotness(ctx, addr, 4096, &h);
		c1 = __rdtscp(&aux);
		lat[calls] = c1 - c0;
		misses += err != 0;
		if (!calls)
			seq0 = h.snapshot_seq;
		calls++;
	}
	seq1 = h.snapshot_seq;
	allocs = atomic_load(&nr_allocs) - allocs;
	is_reader = false;
	/* What rdtscp itself costs, to subtract. */
	{
		static uint64_t empty[10001];
		unsigned int aux;

		for (int i = 0; i < 10001; i++) {
			uint64_t c0 = __rdtscp(&aux);

			empty[i] = __rdtscp(&aux) - c0;
		}
		qsort(empty, 10001, sizeof(empty[0]), cmp_u64);
		for (size_t i = 0; i < calls; i++)
			lat[i] = lat[i] > empty[5000] ? lat[i] - empty[5000] : 0;
	}
	/* Back to back, timed as a batch: no per-call timer in the way. */
	double batch_ns;
	{
		uint64_t t0 = now_ns();

		for (int i = 0; i < 1000000; i++)
			damon_ctx_hotness(ctx, base + ((uint64_t)i * 7919 % (size / 4096)) * 4096,
					  4096, &h);
		batch_ns = (double)(now_ns() - t0) / 1000000;
	}
	qsort(lat, calls, sizeof(lat[0]), cmp_u64);
	damon_ctx_snapshot(ctx, &s);
	nr = damon_snapshot_nr_regions(s);
	damon_snapshot_unref(s);
	printf("| %7zu | %9.1f | %9.1f | %9.1f | %9.1f | %9" PRIu64 " | %6d | %6" PRIu64 " |\n", nr,
	       batch_ns, lat[calls / 2] * ns_per_tick, lat[calls * 99 / 100] * ns_per_tick,
	       lat[calls - 1] * ns_per_tick, seq1 - seq0, misses, allocs);
	damon_ctx_unref(ctx);
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
	unsigned int secs = argc > 2 ? (unsigned int)atoi(argv[2]) : 5;

	if (!strcmp(what, "hotness") || !strcmp(what, "all")) {
		double npt = tsc_ns_per_tick();

		printf("\ndamon_ctx_hotness() on a 4 KiB range, monitor publishing meanwhile\n");
		printf("| regions | mean ns   | median ns | p99 ns    | max ns    | snapshots | errors | allocs |\n");
		printf("|---------|-----------|-----------|-----------|-----------|-----------|--------|--------|\n");
		bench_hotness(1000, npt);
		bench_hotness(10000, npt);
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
