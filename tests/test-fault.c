// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The fault backend, live on this process: reads seen where uffd_wp sees
 * none, reads and writes apart, the CPUs of pinned threads, an application's
 * own SIGSEGV handler (installed before libdamon's, and after it) still
 * getting its own faults, its crash still its own, and no page left
 * inaccessible after stop, unref, pause, fork or exit, as /proc/self/maps
 * shows it (not libdamon's own state).
 *
 * Needs x86-64 and Linux >= 6.11 (PROCMAP_QUERY); skips (77) otherwise,
 * saying why. No privilege needed.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "ops/fault_sig.h"
#include "ops/ops.h"

#define MiB  (1024ULL * 1024)
#define PAGE 4096ULL
#define BUF  (64 * MiB)
#define HOT  (8 * MiB)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t *map_buf(size_t len)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, 1, len);
	return p;
}

/* Pages of [p, p + len) that /proc/self/maps shows without the access the
 * mapping was given (rw-): what libdamon might have left behind. */
static uint64_t inaccessible(const void *p, size_t len)
{
	uint64_t a = (uint64_t)(uintptr_t)p, b = a + len, n = 0;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) != 3 || e <= a || s >= b)
			continue;
		if (strncmp(perms, "rw", 2)) {
			uint64_t os = s > a ? s : a, oe = e < b ? e : b;

			n += (oe - os) / PAGE;
		}
	}
	if (f)
		fclose(f);
	return n;
}

static damon_ctx *fault_ctx(const void *p, size_t len, uint32_t flags)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_FAULT,
		   .sample_us = 5000, .aggr_us = 100000, .cpu_budget_permille = 1000,
		   .flags = flags);
	damon_target *t;
	damon_ctx *ctx;

	if (damon_ctx_new(&ctx, &o))
		return NULL;
	if (damon_ctx_add_target(ctx, 0, &t) ||
	    damon_target_add_range(t, (uintptr_t)p, (uintptr_t)p + len) || damon_ctx_start(ctx)) {
		fprintf(stderr, "\n  fault context: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return NULL;
	}
	return ctx;
}

static void wait_snapshots(damon_ctx *ctx, uint64_t n)
{
	uint64_t t0 = now_ms();

	while (dm_test_snap_seq(ctx) < n && now_ms() - t0 < 30000)
		usleep(20000);
}

/* ---- a workload: threads that read or write a range, maybe pinned ------ */

struct worker {
	volatile uint8_t *p;
	size_t len;
	bool write;
	int cpu; /* -1: not pinned */
	atomic_bool stop;
	pthread_t th;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	volatile uint64_t sink = 0;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed))
		for (size_t off = 0; off < w->len; off += PAGE) {
			if (w->write)
				w->p[off]++;
			else
				sink += w->p[off];
		}
	(void)sink; /* read: clang counts a volatile only added to as unused */
	return NULL;
}

static void worker_start(struct worker *w, void *p, size_t len, bool write, int cpu)
{
	w->p = p;
	w->len = len;
	w->write = write;
	w->cpu = cpu;
	atomic_init(&w->stop, false);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&w->th, NULL, worker_main, w), 0);
}

static void worker_stop(struct worker *w)
{
	atomic_store(&w->stop, true);
	pthread_join(w->th, NULL);
}

/* Bytes read hot (>= 20%) inside [a, b) and in all of [p, p + len). */
static void hot_bytes(damon_ctx *ctx, const void *p, size_t len, uint64_t a, uint64_t b,
		      uint64_t *ret_in, uint64_t *ret_all)
{
	uint64_t lo = (uintptr_t)p, hi = lo + len;
	damon_snapshot *s;

	*ret_in = *ret_all = 0;
	if (damon_ctx_snapshot(ctx, &s))
		return;
	for (size_t i = 0; i < damon_snapshot_nr_regions(s); i++) {
		struct damon_region r = {.sz = sizeof(r)};
		uint64_t os, oe;

		if (damon_snapshot_region(s, i, &r) || r.access_rate_bp < 2000)
			continue;
		os = r.start > lo ? r.start : lo;
		oe = r.end < hi ? r.end : hi;
		if (oe > os)
			*ret_all += oe - os;
		os = r.start > a ? r.start : a;
		oe = r.end < b ? r.end : b;
		if (oe > os)
			*ret_in += oe - os;
	}
	damon_snapshot_unref(s);
}

/* ---- the tests ---------------------------------------------------------- */

/* Read-only hot memory: fault finds it, uffd_wp cannot (writes only). */
static void test_reads(void)
{
	uint8_t *buf = map_buf(BUF);
	uint64_t hs = (uintptr_t)buf + 16 * MiB, in, all;
	DAMON_OPTS(damon_ctx_opts, uo, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .cpu_budget_permille = 1000);
	struct damon_hotness h = {.sz = sizeof(h)};
	struct worker w;
	damon_target *t;
	damon_ctx *ctx;
	double prec, rec;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	worker_start(&w, (void *)(uintptr_t)hs, HOT, false, -1);
	ctx = fault_ctx(buf, BUF, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	wait_snapshots(ctx, 25);
	hot_bytes(ctx, buf, BUF, hs, hs + HOT, &in, &all);
	prec = all ? (double)in / (double)all : 0;
	rec = (double)in / (double)HOT;
	EXPECT_EQ(damon_ctx_hotness(ctx, hs, HOT, &h), 0);
	printf("\n    fault, a read-only 8 MiB in 64 MiB: precision %.2f recall %.2f, hot part "
	       "%u bp, write share %u bp",
	       prec, rec, h.access_rate_bp, h.write_bp);
	EXPECT(prec >= 0.9 && rec >= 0.9, "fault finds reads: precision %.2f, recall %.2f", prec,
	       rec);
	EXPECT(h.write_bp != DAMON_UNKNOWN && h.write_bp < 1000, "reads, not writes: %u bp",
	       h.write_bp);
	/* seen in this very aggregation, past two layout updates (libdamon's own
	 * armed pages once looked like stack guards there, and the samples above
	 * them went unknown: nr_accesses stale, nobody seen) */
	EXPECT(h.nr_cpus != DAMON_UNKNOWN && h.nr_cpus >= 1, "accessed by a CPU now: %u",
	       h.nr_cpus);
	damon_ctx_unref(ctx);
	EXPECT_EQ(inaccessible(buf, BUF), 0);

	/* uffd_wp on the same: nothing */
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &uo), 0);
	EXPECT_EQ(damon_ctx_add_target(ctx, 0, &t), 0);
	EXPECT_EQ(damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + BUF), 0);
	if (damon_ctx_start(ctx) == 0) {
		wait_snapshots(ctx, 25);
		hot_bytes(ctx, buf, BUF, hs, hs + HOT, &in, &all);
		printf("; uffd_wp: %llu of %llu hot MiB seen", (unsigned long long)(in / MiB),
		       (unsigned long long)(HOT / MiB));
		EXPECT(in < HOT / 10, "uffd_wp sees no reads: %llu bytes", (unsigned long long)in);
	}
	damon_ctx_unref(ctx);
	worker_stop(&w);
	munmap(buf, BUF);
}

/* Reads and writes apart: a written range and a read range. */
static void test_read_write_split(void)
{
	uint8_t *buf = map_buf(BUF);
	uint64_t rd = (uintptr_t)buf + 8 * MiB, wr = (uintptr_t)buf + 40 * MiB;
	struct damon_hotness hr = {.sz = sizeof(hr)}, hw = {.sz = sizeof(hw)};
	struct worker r, w;
	damon_snapshot *s;
	damon_ctx *ctx;
	uint32_t max_writes_in_read = 0, min_writes_in_write = UINT32_MAX;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	worker_start(&r, (void *)(uintptr_t)rd, HOT, false, -1);
	worker_start(&w, (void *)(uintptr_t)wr, HOT, true, -1);
	ctx = fault_ctx(buf, BUF, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	wait_snapshots(ctx, 25);
	EXPECT_EQ(damon_ctx_hotness(ctx, rd, HOT, &hr), 0);
	EXPECT_EQ(damon_ctx_hotness(ctx, wr, HOT, &hw), 0);
	if (damon_ctx_snapshot(ctx, &s) == 0) {
		for (size_t i = 0; i < damon_snapshot_nr_regions(s); i++) {
			struct damon_region x = {.sz = sizeof(x)};

			damon_snapshot_region(s, i, &x);
			EXPECT(x.nr_reads != DAMON_UNKNOWN && x.nr_writes != DAMON_UNKNOWN,
			       "fault tells reads and writes");
			if (x.start >= rd && x.end <= rd + HOT && x.nr_writes > max_writes_in_read)
				max_writes_in_read = x.nr_writes;
			if (x.start >= wr && x.end <= wr + HOT && x.nr_accesses > 10 &&
			    x.nr_writes < min_writes_in_write)
				min_writes_in_write = x.nr_writes;
		}
		damon_snapshot_unref(s);
	}
	printf("\n    read range: %u bp, write share %u bp; written range: %u bp, write share "
	       "%u bp",
	       hr.access_rate_bp, hr.write_bp, hw.access_rate_bp, hw.write_bp);
	/* Hot: the two workers share 2 CPUs with the monitor (and, in CI,
	 * with other tests): 4400-4500 bp seen at a load average of 12, the
	 * cold rest reads ~0. The split is what this test is about. */
	EXPECT(hr.access_rate_bp >= 3000 && hr.write_bp < 1000, "read range: %u bp, %u bp writes",
	       hr.access_rate_bp, hr.write_bp);
	EXPECT(hw.access_rate_bp >= 3000 && hw.write_bp > 9000,
	       "written range: %u bp, %u bp writes", hw.access_rate_bp, hw.write_bp);
	EXPECT(max_writes_in_read <= 1, "no writes in the read range's regions: %u",
	       max_writes_in_read);
	damon_ctx_unref(ctx);
	worker_stop(&r);
	worker_stop(&w);
	EXPECT_EQ(inaccessible(buf, BUF), 0);
	munmap(buf, BUF);
}

/* Threads pinned to CPUs show up as those CPUs (and their node). */
static void test_cpus(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint8_t *buf = map_buf(BUF);
	uint64_t a = (uintptr_t)buf + 8 * MiB, b = (uintptr_t)buf + 40 * MiB;
	struct damon_hotness ha = {.sz = sizeof(ha)}, hb = {.sz = sizeof(hb)};
	int cb = ncpu > 1 ? 1 : 0;
	struct worker wa, wb;
	damon_ctx *ctx;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	worker_start(&wa, (void *)(uintptr_t)a, HOT, true, 0);
	worker_start(&wb, (void *)(uintptr_t)b, HOT, true, cb);
	ctx = fault_ctx(buf, BUF, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	wait_snapshots(ctx, 25);
	EXPECT_EQ(damon_ctx_hotness(ctx, a, HOT, &ha), 0);
	EXPECT_EQ(damon_ctx_hotness(ctx, b, HOT, &hb), 0);
	printf("\n    thread on CPU 0: CPUs %#llx (%u), node %d (%u bp); thread on CPU %d: CPUs "
	       "%#llx (%u), node %d (%u bp)",
	       (unsigned long long)ha.cpus, ha.nr_cpus, ha.node, ha.node_bp, cb,
	       (unsigned long long)hb.cpus, hb.nr_cpus, hb.node, hb.node_bp);
	EXPECT_EQ(ha.cpus, 1ULL << 0);
	EXPECT_EQ(ha.nr_cpus, 1);
	EXPECT_EQ(hb.cpus, 1ULL << cb);
	EXPECT(ha.node >= 0 && ha.node_bp >= 9000, "a node for CPU 0: %d, %u bp", ha.node,
	       ha.node_bp);
	damon_ctx_unref(ctx);
	worker_stop(&wa);
	worker_stop(&wb);
	munmap(buf, BUF);
}

/* ---- the application's own SIGSEGV handler ------------------------------ */

static sigjmp_buf guard_jmp;
static volatile void *guard_addr;
static volatile int guard_hits;

static void app_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	guard_addr = si->si_addr;
	guard_hits++;
	siglongjmp(guard_jmp, 1);
}

static void install_app_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = app_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

/* Touch the application's guard page (inside the monitored range) @n
 * times: every fault must reach the application's handler. */
static int touch_guard(volatile uint8_t *guard, int n)
{
	volatile int caught = 0;

	for (int i = 0; i < n; i++) {
		guard_addr = NULL;
		if (sigsetjmp(guard_jmp, 1) == 0)
			guard[i * 8] = 1;
		if (guard_addr == (void *)(guard + i * 8))
			caught++;
		usleep(2000);
	}
	return caught;
}

static void check_app_handler(bool before)
{
	uint8_t *buf = map_buf(BUF);
	volatile uint8_t *guard = buf + 32 * MiB;
	struct dm_fault_sig_stats st0, st1;
	struct sigaction cur;
	struct worker w;
	damon_ctx *ctx;
	volatile int caught;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* the application's guard page, inside what libdamon samples */
	CU_ASSERT_EQUAL_FATAL(mprotect((void *)guard, PAGE, PROT_NONE), 0);
	worker_start(&w, buf, HOT, true, -1);
	if (before)
		install_app_handler();
	dm_fault_sig_stats(&st0);
	ctx = fault_ctx(buf, BUF, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	if (!before) {
		struct dm_fault_sig_stats now;
		uint64_t deadline;

		/* Until libdamon takes SIGSEGV back (at its next sample), a
		 * fault on a page it armed reaches the application's handler,
		 * which knows only its guard page: this one would jump to a
		 * jmp_buf of another thread. So the worker waits meanwhile. */
		usleep(50000);
		worker_stop(&w);
		install_app_handler(); /* replaces libdamon's */
		deadline = (uint64_t)time(NULL) + 10;
		do {
			usleep(5000);
			dm_fault_sig_stats(&now);
		} while (now.retaken == st0.retaken && (uint64_t)time(NULL) < deadline);
		worker_start(&w, buf, HOT, true, -1);
	}
	wait_snapshots(ctx, 10);
	caught = touch_guard(guard, 100);
	dm_fault_sig_stats(&st1);
	printf("\n    application handler installed %s libdamon's: %d of 100 guard faults "
	       "reached it; libdamon handled %llu faults, passed on %llu, took SIGSEGV back %llu "
	       "times",
	       before ? "before" : "after", caught, (unsigned long long)(st1.handled - st0.handled),
	       (unsigned long long)(st1.chained - st0.chained),
	       (unsigned long long)(st1.retaken - st0.retaken));
	EXPECT_EQ(caught, 100);
	EXPECT(st1.handled > st0.handled, "libdamon still sampled meanwhile");
	EXPECT(dm_test_snap_seq(ctx) >= 10, "snapshots go on");
	if (!before)
		EXPECT(st1.retaken > st0.retaken,
		       "SIGSEGV taken back after the application took it");
	/* the guard page is still a guard, and only it */
	EXPECT_EQ(inaccessible(buf, BUF) >= 1, 1);
	damon_ctx_unref(ctx);
	worker_stop(&w);
	EXPECT_EQ(inaccessible(buf, BUF), 1);
	/* after the last context the application's handler is the one in place */
	sigaction(SIGSEGV, NULL, &cur);
	EXPECT((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == app_handler,
	       "the application's handler in place after unref");
	EXPECT_EQ(touch_guard(guard, 3), 3);
	signal(SIGSEGV, SIG_DFL);
	munmap(buf, BUF);
}

static void test_app_handler_before(void)
{
	check_app_handler(true);
}

static void test_app_handler_after(void)
{
	check_app_handler(false);
}

/* A real crash inside a sampled page is the application's own: a write to
 * a read-only page of the monitored range kills the process with SIGSEGV
 * (and the application's handler, if any, sees its own address). */
static void test_crash_is_own(void)
{
	for (int with_handler = 0; with_handler < 2; with_handler++) {
		pid_t pid = fork();
		int st = 0;

		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0) {
			uint8_t *buf = map_buf(BUF);
			volatile uint8_t *ro = buf + 24 * MiB;
			damon_ctx *ctx;

			mprotect((void *)ro, 2 * MiB, PROT_READ);
			if (with_handler)
				install_app_handler();
			ctx = fault_ctx(buf, BUF, 0);
			if (!ctx)
				_exit(3);
			wait_snapshots(ctx, 5);
			/* read it, so that libdamon may have armed and restored pages */
			for (int k = 0; k < 200; k++) {
				for (size_t off = 0; off < 2 * MiB; off += PAGE)
					(void)ro[off];
				usleep(1000);
			}
			if (with_handler && sigsetjmp(guard_jmp, 1)) {
				_exit(guard_addr == (void *)(ro + 4096 * 100) ? 42 : 4);
			}
			ro[4096 * 100] = 1; /* the application's bug */
			_exit(5);
		}
		waitpid(pid, &st, 0);
		if (with_handler)
			EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 42,
			       "the application's handler saw its own fault: status %#x", st);
		else
			EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
			       "killed by its own SIGSEGV: status %#x", st);
	}
}

/* Nothing stays inaccessible: pause, stop, unref, fork (both sides). */
static void test_nothing_left(void)
{
	uint8_t *buf = map_buf(BUF);
	uint64_t armed_seen = 0;
	struct worker w;
	damon_ctx *ctx;
	pid_t pid;
	int st = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	worker_start(&w, buf, HOT, true, -1);
	ctx = fault_ctx(buf, BUF, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	wait_snapshots(ctx, 3);
	for (int i = 0; i < 20 && !armed_seen; i++) {
		armed_seen = inaccessible(buf, BUF);
		usleep(1000);
	}
	EXPECT(armed_seen > 0, "pages are armed while running (seen %llu)",
	       (unsigned long long)armed_seen);

	EXPECT_EQ(damon_ctx_pause(ctx), 0);
	EXPECT_EQ(inaccessible(buf, BUF), 0);
	EXPECT_EQ(damon_ctx_resume(ctx), 0);
	wait_snapshots(ctx, dm_test_snap_seq(ctx) + 2);

	/* fork: the child's copy has nothing armed, at once */
	pid = fork();
	if (pid == 0) {
		uint64_t n = inaccessible(buf, BUF);

		/* and every page is usable */
		for (size_t off = 0; off < BUF; off += PAGE)
			buf[off]++;
		_exit(n == 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork child: nothing armed (%#x)", st);
	wait_snapshots(ctx, dm_test_snap_seq(ctx) + 2);
	EXPECT(dm_test_snap_seq(ctx) > 5, "the parent goes on sampling");

	EXPECT_EQ(damon_ctx_stop(ctx), 0);
	EXPECT_EQ(inaccessible(buf, BUF), 0);
	EXPECT_EQ(damon_ctx_start(ctx), 0);
	wait_snapshots(ctx, dm_test_snap_seq(ctx) + 2);
	damon_ctx_unref(ctx);
	EXPECT_EQ(inaccessible(buf, BUF), 0);
	worker_stop(&w);

	/* exit while monitoring: exit handlers may touch every page */
	pid = fork();
	if (pid == 0) {
		ctx = fault_ctx(buf, BUF, 0);
		if (!ctx)
			_exit(3);
		wait_snapshots(ctx, 3);
		for (size_t off = 0; off < BUF; off += PAGE)
			buf[off]++;
		exit(0);
	}
	waitpid(pid, &st, 0);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit while monitoring: %#x", st);
	munmap(buf, BUF);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{"reads seen, where uffd_wp sees none", test_reads},
		{"reads and writes apart", test_read_write_split},
		{"pinned threads show as their CPUs", test_cpus},
		{"application's handler installed before keeps its faults",
		 test_app_handler_before},
		{"application's handler installed after keeps its faults", test_app_handler_after},
		{"a crash in a sampled page is the application's own", test_crash_is_own},
		{"nothing left inaccessible: pause, fork, stop, unref, exit", test_nothing_left},
		{NULL, NULL},
	};
	struct dm_err err = {0};

	if (dm_fault_probe(&err)) {
		printf("test-fault: SKIP: %s\n", err.msg);
		return 77;
	}
	return dm_test_run("fault", tests);
}
