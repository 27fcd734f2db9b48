// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Live monitoring of this very process on the uffd_wp backend, through the
 * public API only: a thread keeps writing a hot part of a buffer and the
 * monitor must find it, with the library thread and with DAMON_CTX_MANUAL;
 * the overhead budget must hold. Run as root, the test then runs itself
 * again as uid/gid 65534: the unprivileged run must pass too.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include <damon/damon.h>

#define MiB  (1024ULL * 1024)
#define GiB  (1024 * MiB)
#define PAGE 4096

#define UNPRIV_ENV "DAMON_TEST_LIVE_UNPRIVILEGED"
#define NOBODY	   65534

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/*
 * vaddr splits the address space into three regions around its two biggest
 * gaps. Under ASan the shadow memory dominates them and a 256 MiB buffer
 * is a speck in a middle region of terabytes: monitor the buffer (fvaddr).
 */
#define HOT_OPS (UNDER_ASAN ? DAMON_OPS_FVADDR : DAMON_OPS_VADDR)

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

#define EXPECT_OK(call)                                                                   \
	do {                                                                              \
		int r_ = (call);                                                          \
		if (r_ < 0)                                                               \
			fprintf(stderr, "\n  %s:%d: %s: expected success, got %d (%s)\n", \
				__FILE__, __LINE__, #call, r_, strerror(-r_));            \
		CU_ASSERT(r_ >= 0);                                                       \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void *map_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* one page at a time, as the writer sees them: no huge pages */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* One byte per page, over and over, in [p, p + len); with @stripe, only in
 * the even stripes of that size. */
struct writer {
	volatile uint8_t *p;
	size_t len, stripe;
	atomic_bool stop;
	atomic_int tid;
	pthread_t th;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	atomic_store(&w->tid, gettid_());
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		for (size_t off = 0; off < w->len; off += PAGE) {
			if (w->stripe && (off / w->stripe) % 2)
				continue;
			w->p[off]++;
		}
	}
	return NULL;
}

static void writer_start(struct writer *w, void *p, size_t len, size_t stripe)
{
	w->p = p;
	w->len = len;
	w->stripe = stripe;
	atomic_init(&w->stop, false);
	atomic_init(&w->tid, 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&w->th, NULL, writer_main, w), 0);
	while (!atomic_load(&w->tid))
		sleep_ms(1);
}

static void writer_stop(struct writer *w)
{
	atomic_store(&w->stop, true);
	pthread_join(w->th, NULL);
}

/* Field @n (1-based, as in proc(5)) of /proc/self/task/@tid/stat. */
static long long task_stat_field(pid_t tid, int n)
{
	char path[64], buf[1024], *p;
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 3; field <= n; field++) {
		char *end;

		v = strtoll(p, &end, 10);
		if (field == 3) { /* state: a letter */
			while (*p == ' ')
				p++;
			end = p + 1;
		}
		p = end;
	}
	return v;
}

/* The library thread's tid (named "damon-mon"), 0 if none. */
static pid_t monitor_tid(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	pid_t tid = 0;

	if (!d)
		return 0;
	while (!tid && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "damon-mon", 9))
			tid = atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return tid;
}

/* CPU time of thread @tid of this process, in ns (a thread CPU clock). */
static uint64_t thread_cpu_ns(pid_t tid)
{
	/* The clockid pthread_getcpuclockid() makes: CPUCLOCK_SCHED | PERTHREAD. */
	clockid_t cid = (clockid_t)((~(unsigned int)tid) << 3) | 6;
	struct timespec ts;

	if (clock_gettime(cid, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* the hot set                                                              */
/* ------------------------------------------------------------------------ */

struct rates {
	double hot_bp, rest_bp;		  /* damon_ctx_hotness() */
	double walk_hot_bp, walk_rest_bp; /* walking the snapshot */
	uint64_t seq, sample_us, aggr_us;
	size_t nr_regions;
};

/* Size-weighted rate over the monitored parts of @n ranges. */
static int hot_of(damon_ctx *ctx, const uint64_t (*r)[2], int n, double *ret)
{
	double sum = 0, bytes = 0;

	for (int i = 0; i < n; i++) {
		struct damon_hotness h = {.sz = sizeof(h)};
		int err = damon_ctx_hotness(ctx, r[i][0], r[i][1] - r[i][0], &h);

		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		sum += (double)h.access_rate_bp * (double)h.bytes_covered;
		bytes += (double)h.bytes_covered;
	}
	*ret = bytes ? sum / bytes : 0;
	return bytes ? 0 : -ENOENT;
}

static uint64_t overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	uint64_t s = a0 > b0 ? a0 : b0, e = a1 < b1 ? a1 : b1;

	return e > s ? e - s : 0;
}

static int measure(damon_ctx *ctx, uint64_t buf, uint64_t len, uint64_t hot, uint64_t hot_len,
		   struct rates *ret)
{
	const uint64_t hot_r[1][2] = {{hot, hot + hot_len}};
	const uint64_t rest_r[2][2] = {{buf, hot}, {hot + hot_len, buf + len}};
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	double hs = 0, hb = 0, rs = 0, rb = 0;
	damon_snapshot *s;
	int err;

	err = hot_of(ctx, hot_r, 1, &ret->hot_bp);
	if (!err)
		err = hot_of(ctx, rest_r, 2, &ret->rest_bp);
	if (err)
		return err;
	err = damon_ctx_snapshot(ctx, &s);
	if (err)
		return err;
	damon_snapshot_info(s, &info);
	ret->seq = info.seq;
	ret->sample_us = info.sample_us;
	ret->aggr_us = info.aggr_us;
	ret->nr_regions = damon_snapshot_nr_regions(s);
	for (size_t i = 0; i < ret->nr_regions; i++) {
		struct damon_region r = {.sz = sizeof(r)};
		uint64_t o;

		if (damon_snapshot_region(s, i, &r) || r.target_idx != 0)
			continue;
		o = overlap(r.start, r.end, hot, hot + hot_len);
		hs += (double)o * r.access_rate_bp;
		hb += (double)o;
		o = overlap(r.start, r.end, buf, hot) +
		    overlap(r.start, r.end, hot + hot_len, buf + len);
		rs += (double)o * r.access_rate_bp;
		rb += (double)o;
	}
	damon_snapshot_unref(s);
	ret->walk_hot_bp = hb ? hs / hb : 0;
	ret->walk_rest_bp = rb ? rs / rb : 0;
	return 0;
}

static bool hot_found(const struct rates *r)
{
	return r->hot_bp >= 1000 && r->hot_bp >= 5 * r->rest_bp && r->walk_hot_bp >= 1000 &&
	       r->walk_hot_bp >= 5 * r->walk_rest_bp;
}

static void print_rates(const char *what, const struct rates *r)
{
	printf("\n    %s: seq %llu, %zu regions, sample %llu us, aggr %llu us: hot %.0f bp, "
	       "rest %.0f bp (snapshot walk: hot %.0f bp, rest %.0f bp)\n",
	       what, (unsigned long long)r->seq, r->nr_regions, (unsigned long long)r->sample_us,
	       (unsigned long long)r->aggr_us, r->hot_bp, r->rest_bp, r->walk_hot_bp,
	       r->walk_rest_bp);
}

/* 256 MiB, the hot 16 MiB at 96 MiB. */
#define HOT_LEN (256 * MiB)
#define HOT_AT	(96 * MiB)
#define HOT_SZ	(16 * MiB)

static damon_ctx *hot_ctx(uint8_t *buf, uint32_t ops, uint32_t flags)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = ops, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 5000, .aggr_us = 100000, .flags = flags,
		   .cpu_budget_permille = 200);
	damon_target *t;
	damon_ctx *ctx;
	int err = damon_ctx_new(&ctx, &o);

	if (err) {
		fprintf(stderr, "\n  damon_ctx_new: %s\n", strerror(-err));
		return NULL;
	}
	err = damon_ctx_add_target(ctx, 0, &t);
	if (!err && ops == DAMON_OPS_FVADDR)
		err = damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + HOT_LEN);
	if (!err)
		err = damon_ctx_start(ctx);
	if (err) {
		fprintf(stderr, "\n  setting up: %s (%s)\n", strerror(-err), damon_ctx_errmsg(ctx));
		return damon_ctx_unref(ctx);
	}
	return ctx;
}

/* Wait (or drive) until 15 snapshots, then until the hot set shows (at most
 * 15 more): the regions need a few aggregations to split around it. */
static void check_hot(damon_ctx *ctx, uint8_t *buf, bool manual, const char *what)
{
	uint64_t b = (uintptr_t)buf, deadline = now_ns() + 60 * 1000000000ULL;
	struct pollfd pfd = {.fd = damon_ctx_fd(ctx), .events = POLLIN};
	struct rates r = {0};
	uint64_t seq = 0, checked = 0;
	bool found = false;
	int steps = 0;

	while (now_ns() < deadline) {
		if (manual) {
			uint64_t next = 0;

			if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
				break;
			if (damon_ctx_step(ctx, &next) < 0)
				break;
			steps++;
		} else {
			sleep_ms(20);
		}
		seq = dm_test_snap_seq(ctx);
		if (seq < 15 || seq == checked)
			continue;
		checked = seq;
		if (measure(ctx, b, HOT_LEN, b + HOT_AT, HOT_SZ, &r))
			continue;
		if (hot_found(&r) || seq >= 30) {
			found = hot_found(&r);
			break;
		}
	}
	print_rates(what, &r);
	if (manual)
		printf("    %d damon_ctx_step() calls\n", steps);
	EXPECT(seq >= 15, "15 snapshots within 60 s, got %llu", (unsigned long long)seq);
	EXPECT(found,
	       "hot range >= 1000 bp and >= 5x the rest of the buffer by seq 30: "
	       "hot %.0f bp vs rest %.0f bp (walk: %.0f vs %.0f)",
	       r.hot_bp, r.rest_bp, r.walk_hot_bp, r.walk_rest_bp);
}

static void test_hot_threaded(void)
{
	uint8_t *buf = map_buf(HOT_LEN);
	struct writer w;
	damon_ctx *ctx;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	writer_start(&w, buf + HOT_AT, HOT_SZ, 0);
	ctx = hot_ctx(buf, HOT_OPS, 0);
	if (ctx) {
		EXPECT_EQ(damon_ctx_backend(ctx), DAMON_BACKEND_UFFD_WP);
		check_hot(ctx, buf, false, UNDER_ASAN ? "threaded, fvaddr" : "threaded, vaddr");
		EXPECT_OK(damon_ctx_stop(ctx));
		damon_ctx_unref(ctx);
	} else {
		CU_FAIL("context");
	}
	writer_stop(&w);
	munmap(buf, HOT_LEN);
}

static void test_hot_manual(void)
{
	uint8_t *buf = map_buf(HOT_LEN);
	struct writer w;
	damon_ctx *ctx;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	writer_start(&w, buf + HOT_AT, HOT_SZ, 0);
	ctx = hot_ctx(buf, HOT_OPS, DAMON_CTX_MANUAL);
	if (ctx) {
		EXPECT(monitor_tid() == 0, "no library thread in manual mode");
		check_hot(ctx, buf, true, UNDER_ASAN ? "manual, fvaddr" : "manual, vaddr");
		damon_ctx_unref(ctx);
	} else {
		CU_FAIL("context");
	}
	writer_stop(&w);
	munmap(buf, HOT_LEN);
}

/*
 * A manual context started on one thread and stepped on another: the
 * overhead budget reads the CPU clock of the thread that drives the
 * monitor. The first budget window compared the stepping thread's clock
 * with the starting thread's: a stepping thread that had used 0.5 s of CPU
 * before stretched the intervals at once (40 ms samples on an idle host, at
 * any budget). Now the window starts again on the new thread.
 */
struct stepper {
	damon_ctx *ctx;
	uint64_t until_ns, max_sample_us;
	int steps, errors;
};

static void *stepper_main(void *arg)
{
	struct stepper *st = arg;
	uint64_t spin_until = now_ns() + 500 * 1000000ULL;
	volatile uint64_t spin = 0;

	while (now_ns() < spin_until) /* this thread's CPU clock runs ahead */
		spin++;
	st->until_ns = now_ns() + 3 * 1000000000ULL;
	while (now_ns() < st->until_ns) {
		struct damon_ctx_status cs = {.sz = sizeof(cs)};
		uint64_t next = 0;

		if (damon_ctx_step(st->ctx, &next) < 0)
			st->errors++;
		st->steps++;
		if (damon_ctx_status(st->ctx, &cs) == 0 && cs.sample_us > st->max_sample_us)
			st->max_sample_us = cs.sample_us;
		sleep_ms((unsigned int)(next / 1000 > 20 ? 20 : next / 1000 + 1));
	}
	return NULL;
}

static void test_manual_other_thread(void)
{
	const size_t len = 32 * MiB;
	uint8_t *buf = map_buf(len);
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .flags = DAMON_CTX_MANUAL, .cpu_budget_permille = 1000);
	struct damon_ctx_status cs = {.sz = sizeof(cs)};
	struct stepper st = { 0 };
	uint64_t b = (uintptr_t)buf;
	damon_target *t;
	pthread_t th;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&st.ctx, &o), 0);
	EXPECT_OK(damon_ctx_add_target(st.ctx, 0, &t));
	EXPECT_OK(damon_target_add_range(t, b, b + len));
	EXPECT_OK(damon_ctx_start(st.ctx));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, stepper_main, &st), 0);
	pthread_join(th, NULL);
	EXPECT_OK(damon_ctx_status(st.ctx, &cs));
	EXPECT(st.errors == 0, "%d failed steps of %d", st.errors, st.steps);
	EXPECT(cs.nr_snapshots >= 5, "%llu snapshots in 3 s", (unsigned long long)cs.nr_snapshots);
	EXPECT(st.max_sample_us == 5000 && cs.aggr_us == 100000,
	       "a budget of a whole CPU keeps the intervals of an idle monitor: sampling at "
	       "up to %llu us, aggregation %llu us at the end",
	       (unsigned long long)st.max_sample_us, (unsigned long long)cs.aggr_us);
	damon_ctx_unref(st.ctx);
	munmap(buf, len);
}

/* ------------------------------------------------------------------------ */
/* pause and resume                                                         */
/* ------------------------------------------------------------------------ */

/* Written only while the context is paused: the half of the buffer past the
 * hot set's neighbourhood. */
#define PAUSED_AT (128 * MiB)
#define PAUSED_SZ (128 * MiB)

/* utime + stime of thread @tid in clock ticks (proc(5) fields 14, 15). */
static long long task_ticks(pid_t tid)
{
	long long u = task_stat_field(tid, 14), st = task_stat_field(tid, 15);

	return u < 0 || st < 0 ? -1 : u + st;
}

/* Rate of [addr, addr + len) in the newest snapshot, and its seq. */
static uint32_t range_bp(damon_ctx *ctx, uint64_t addr, uint64_t len, uint64_t *ret_seq)
{
	struct damon_hotness h = {.sz = sizeof(h)};

	if (damon_ctx_hotness(ctx, addr, len, &h))
		return UINT32_MAX;
	if (ret_seq)
		*ret_seq = h.snapshot_seq;
	return h.access_rate_bp;
}

/*
 * Wait (library thread: on the fd) or drive (manual) until @nr snapshots
 * newer than @seq, and return the highest rate of the paused-only range in
 * them. A pause that counted as one access window would show there: its
 * sample pages were all written while paused, so one sample each would read
 * them accessed (500 bp of the 20 samples per aggregation).
 */
static uint32_t paused_range_after(damon_ctx *ctx, uint8_t *buf, bool manual, uint64_t seq,
				   unsigned int nr, uint64_t *ret_seq)
{
	struct pollfd pfd = {.fd = damon_ctx_fd(ctx), .events = POLLIN};
	uint64_t deadline = now_ns() + 30 * 1000000000ULL, at = seq;
	uint32_t max_bp = 0;

	while (at < seq + nr && now_ns() < deadline) {
		uint64_t next = 0, cur = 0;
		uint32_t bp;

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		if (manual) {
			if (damon_ctx_step(ctx, &next) < 0)
				break;
		} else if (pfd.revents & POLLIN) {
			uint64_t cnt;

			if (read(pfd.fd, &cnt, sizeof(cnt)) < 0)
				break;
		}
		bp = range_bp(ctx, (uintptr_t)buf + PAUSED_AT, PAUSED_SZ, &cur);
		if (cur <= at || bp == UINT32_MAX)
			continue;
		if (cur > at + 1)
			printf("\n    (missed %llu snapshot(s) before seq %llu)",
			       (unsigned long long)(cur - at - 1), (unsigned long long)cur);
		at = cur;
		printf("\n    after resume: seq %llu, written-while-paused range %u bp",
		       (unsigned long long)cur, bp);
		if (bp > max_bp)
			max_bp = bp;
	}
	*ret_seq = at;
	return max_bp;
}

/*
 * Find the hot set; pause; for 1 s keep writing the hot set and write
 * another 128 MiB that nobody writes otherwise: no snapshot, the monitor
 * sleeps (library thread: its CPU time; manual: the fd never becomes
 * readable and the steps cost nothing); resume: snapshots again, the range
 * written only while paused reads cold, the hot set hot. fvaddr over the
 * buffer, so that many regions have their sample pages in that range.
 */
static void check_pause_live(bool manual)
{
	uint8_t *buf = map_buf(HOT_LEN);
	const char *what = manual ? "manual" : "threaded";
	struct writer w, pw;
	struct rates r = {0};
	uint64_t seq0, seq1, seq2 = 0, t0, cpu0 = 0, cpu1 = 0, step_ns = 0;
	long long ticks0 = -1, ticks1 = -1;
	uint32_t before_bp, after_bp, nr_steps = 0;
	bool readable = false;
	damon_ctx *ctx;
	pid_t mon = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	writer_start(&w, buf + HOT_AT, HOT_SZ, 0);
	ctx = hot_ctx(buf, DAMON_OPS_FVADDR, manual ? DAMON_CTX_MANUAL : 0);
	if (!ctx) {
		CU_FAIL("context");
		writer_stop(&w);
		munmap(buf, HOT_LEN);
		return;
	}
	check_hot(ctx, buf, manual,
		  manual ? "manual, before the pause" : "threaded, before the pause");
	before_bp = range_bp(ctx, (uintptr_t)buf + PAUSED_AT, PAUSED_SZ, NULL);

	EXPECT_OK(damon_ctx_pause(ctx));
	EXPECT_OK(damon_ctx_pause(ctx));
	seq0 = dm_test_snap_seq(ctx);
	if (!manual) {
		mon = monitor_tid();
		EXPECT(mon > 0, "a thread named damon-mon");
		cpu0 = thread_cpu_ns(mon);
		ticks0 = task_ticks(mon);
	}
	writer_start(&pw, buf + PAUSED_AT, PAUSED_SZ, 0);
	t0 = now_ns();
	if (manual) {
		struct pollfd pfd = {.fd = damon_ctx_fd(ctx), .events = POLLIN};
		uint64_t next = 0;

		while (now_ns() - t0 < 1000000000ULL) {
			uint64_t c = thread_cpu_ns(gettid_());

			EXPECT_OK(damon_ctx_step(ctx, &next));
			step_ns += thread_cpu_ns(gettid_()) - c;
			nr_steps++;
			EXPECT(next >= 1000000, "paused: next due in %llu us, the update interval",
			       (unsigned long long)next);
			if (poll(&pfd, 1, (int)(next / 1000 < 1000 ? next / 1000 : 1000)) > 0)
				readable = true;
		}
	} else {
		sleep_ms(1000);
		cpu1 = thread_cpu_ns(mon);
		ticks1 = task_ticks(mon);
	}
	seq1 = dm_test_snap_seq(ctx);
	writer_stop(&pw);
	if (manual) {
		printf("\n    %s, paused 1 s: %u damon_ctx_step() calls, %.3f ms CPU in them, fd "
		       "%s; snapshots %llu -> %llu\n",
		       what, nr_steps, (double)step_ns / 1e6,
		       readable ? "READABLE" : "never readable", (unsigned long long)seq0,
		       (unsigned long long)seq1);
		EXPECT(!readable, "the fd stays unreadable while paused");
		EXPECT(step_ns < 5000000, "steps while paused cost < 5 ms: %.3f ms",
		       (double)step_ns / 1e6);
	} else {
		printf("\n    %s, paused 1 s: damon-mon used %.3f ms CPU (%lld ticks in "
		       "/proc/self/task/%d/stat); snapshots %llu -> %llu\n",
		       what, (double)(cpu1 - cpu0) / 1e6, ticks1 - ticks0, (int)mon,
		       (unsigned long long)seq0, (unsigned long long)seq1);
		EXPECT(cpu1 - cpu0 < 5000000, "damon-mon sleeps while paused: %.3f ms CPU in 1 s",
		       (double)(cpu1 - cpu0) / 1e6);
		EXPECT(ticks0 >= 0 && ticks1 - ticks0 <= 1, "stat ticks %lld -> %lld", ticks0,
		       ticks1);
	}
	EXPECT_EQ(seq1, seq0);
	{
		uint64_t hs = 0;

		EXPECT(range_bp(ctx, (uintptr_t)buf + HOT_AT, HOT_SZ, &hs) != UINT32_MAX &&
			       hs == seq0,
		       "hotness answers from snapshot %llu while paused (got %llu)",
		       (unsigned long long)seq0, (unsigned long long)hs);
	}

	EXPECT_OK(damon_ctx_resume(ctx));
	after_bp = paused_range_after(ctx, buf, manual, seq0, 3, &seq2);
	printf("\n    %s: written-while-paused range %u bp before the pause, at most %u bp "
	       "in the 3 snapshots after resume\n",
	       what, before_bp, after_bp);
	EXPECT(seq2 >= seq0 + 3, "3 snapshots after resume: seq %llu -> %llu",
	       (unsigned long long)seq0, (unsigned long long)seq2);
	EXPECT(after_bp < 250,
	       "memory written only while paused does not read accessed after "
	       "resume: %u bp (one inflated sample of 20 would be 500)",
	       after_bp);
	EXPECT_OK(measure(ctx, (uintptr_t)buf, HOT_LEN, (uintptr_t)buf + HOT_AT, HOT_SZ, &r));
	print_rates(manual ? "manual, after resume" : "threaded, after resume", &r);
	EXPECT(hot_found(&r), "the hot set reads hot after resume: hot %.0f bp vs rest %.0f bp",
	       r.hot_bp, r.rest_bp);
	damon_ctx_unref(ctx);
	writer_stop(&w);
	munmap(buf, HOT_LEN);
}

static void test_pause_threaded(void)
{
	check_pause_live(false);
}

static void test_pause_manual(void)
{
	check_pause_live(true);
}

/* ------------------------------------------------------------------------ */
/* the overhead budget                                                      */
/* ------------------------------------------------------------------------ */

static void test_budget(void)
{
	const size_t len = GiB;
	uint8_t *buf = map_buf(len);
	long tick = sysconf(_SC_CLK_TCK);
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 5000, .aggr_us = 100000, .max_nr_regions = 1000,
		   .cpu_budget_permille = 20);
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damon_ctx_status st = {.sz = sizeof(st)};
	uint64_t t0, t1, mon_ns = 0, fault_ns, wall_ns;
	long long stime0, stime1;
	damon_snapshot *s;
	damon_target *t;
	struct writer w;
	damon_ctx *ctx;
	size_t nr_regions = 0;
	pid_t mon;
	double share;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_OK(damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + len));
	/* every other 4 MiB written: 128 hot stripes keep many regions busy */
	writer_start(&w, buf, len, 4 * MiB);
	sleep_ms(200);
	stime0 = task_stat_field(atomic_load(&w.tid), 15);
	t0 = now_ns();
	EXPECT_OK(damon_ctx_start(ctx));
	mon = monitor_tid();
	EXPECT(mon > 0, "a thread named damon-mon");
	sleep_ms(10000);
	if (mon > 0)
		mon_ns = thread_cpu_ns(mon);
	t1 = now_ns();
	stime1 = task_stat_field(atomic_load(&w.tid), 15);
	EXPECT_OK(damon_ctx_status(ctx, &st));
	EXPECT_OK(damon_ctx_snapshot(ctx, &s));
	EXPECT_OK(damon_snapshot_info(s, &info));
	nr_regions = damon_snapshot_nr_regions(s);
	damon_snapshot_unref(s);
	damon_ctx_unref(ctx);
	writer_stop(&w);
	munmap(buf, len);

	/* The faults of the writer on armed pages are its system time: the
	 * writer does nothing else in the kernel. */
	wall_ns = t1 - t0;
	fault_ns = stime0 >= 0 && stime1 >= stime0
			   ? (uint64_t)(stime1 - stime0) * (1000000000ULL / (uint64_t)tick)
			   : 0;
	share = (double)(mon_ns + fault_ns) / (double)wall_ns;
	printf("\n    budget 20 permille over %.1f s: monitor thread %.1f ms CPU, writer faults "
	       "%.1f ms system time: %.2f%% of one CPU (limit 2 x 2%%); %llu snapshots, "
	       "%zu regions, intervals in force: sample %llu us, aggr %llu us\n",
	       (double)wall_ns / 1e9, (double)mon_ns / 1e6, (double)fault_ns / 1e6, share * 100,
	       (unsigned long long)info.seq, nr_regions, (unsigned long long)info.sample_us,
	       (unsigned long long)info.aggr_us);
	EXPECT(share <= 2 * 0.020, "monitor + faults within 2x the 2%% budget: %.2f%%",
	       share * 100);
	EXPECT(info.sample_us > 5000, "sample_us stretched: %llu",
	       (unsigned long long)info.sample_us);
	EXPECT(info.aggr_us / info.sample_us == 20, "aggr_us stretched alike: %llu / %llu",
	       (unsigned long long)info.aggr_us, (unsigned long long)info.sample_us);
	/* the status has the intervals in force now, maybe stretched again since */
	EXPECT(st.sample_us > 5000 && st.aggr_us / st.sample_us == 20, "status: %llu / %llu us",
	       (unsigned long long)st.sample_us, (unsigned long long)st.aggr_us);
	EXPECT_EQ(st.error, 0);
}

/* ------------------------------------------------------------------------ */
/* ages and a min_age scheme                                                */
/* ------------------------------------------------------------------------ */

/*
 * A range written without pause keeps its access pattern, so it grows old,
 * one year per aggregation interval, as kernel regions do; a scheme selecting
 * by age (the kernel selftests' working set: nr_accesses >= 5 of 20 and
 * age >= 2) finds it. (When aggregation intervals were timed rather than
 * counted in samples, such a range read 17-20 of 20 samples, varying with
 * the monitor's lateness, and its age kept falling back to 0-1; test-core
 * holds that rule with a late clock.) 20 ms samples: a writer descheduled
 * for a few milliseconds on a busy machine (CI) misses no sample, where at
 * 5 ms its nr_accesses moved and, rightly, its age restarted.
 */
static void test_ages(void)
{
	const size_t len = 64 * MiB, hot_at = 16 * MiB, hot_sz = 16 * MiB;
	uint8_t *buf = map_buf(len);
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 20000, .aggr_us = 400000, .cpu_budget_permille = 200);
	DAMOS_OPTS(wss_opts, .action = DAMOS_STAT, .min_nr_accesses = 5, .min_age = 2);
	struct damos_stats st0 = {.sz = sizeof(st0)}, st1 = {.sz = sizeof(st1)};
	uint64_t b = (uintptr_t)buf, deadline = now_ns() + 60 * 1000000000ULL, seq = 0;
	uint64_t young = 0, old = 0, hot_seen = 0;
	uint32_t max_age = 0;
	damon_snapshot *s = NULL;
	struct writer w;
	damon_target *t;
	damon_ctx *ctx;
	damos *wss;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	writer_start(&w, buf + hot_at, hot_sz, 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_OK(damon_target_add_range(t, b, b + len));
	EXPECT_OK(damon_ctx_add_scheme(ctx, &wss_opts, &wss));
	EXPECT_OK(damon_ctx_start(ctx));
	/* 15 intervals to find and settle on it, then 20 to grow old */
	while (now_ns() < deadline && (seq = dm_test_snap_seq(ctx)) < 15)
		sleep_ms(20);
	EXPECT_OK(damos_get_stats(wss, &st0));
	while (now_ns() < deadline && (seq = dm_test_snap_seq(ctx)) < 35)
		sleep_ms(20);
	EXPECT_OK(damos_get_stats(wss, &st1));
	EXPECT(seq >= 35, "35 snapshots within 60 s, got %llu", (unsigned long long)seq);
	if (damon_ctx_snapshot(ctx, &s) == 0) {
		for (size_t i = 0; i < damon_snapshot_nr_regions(s); i++) {
			struct damon_region r = {.sz = sizeof(r)};
			uint64_t in;

			if (damon_snapshot_region(s, i, &r))
				continue;
			in = overlap(r.start, r.end, b + hot_at, b + hot_at + hot_sz);
			if (!in || r.access_rate_bp < 5000)
				continue;
			hot_seen += in;
			if (r.age >= 10)
				old += in;
			else
				young += in;
			if (r.age > max_age)
				max_age = r.age;
		}
		damon_snapshot_unref(s);
	}
	damon_ctx_unref(ctx);
	writer_stop(&w);
	munmap(buf, len);
	printf("\n    hot range after 35 aggregations: %llu MiB seen hot, %llu MiB aged >= 10, "
	       "%llu MiB younger, oldest %u; working-set scheme: %.1f MiB per round\n",
	       (unsigned long long)(hot_seen / MiB), (unsigned long long)(old / MiB),
	       (unsigned long long)(young / MiB), max_age,
	       st1.nr_snapshots > st0.nr_snapshots
		       ? (double)(st1.sz_tried - st0.sz_tried) /
				 (double)(st1.nr_snapshots - st0.nr_snapshots) / MiB
		       : 0.0);
	EXPECT(hot_seen >= hot_sz * 9 / 10, "the written range reads hot: %llu of %llu MiB",
	       (unsigned long long)(hot_seen / MiB), (unsigned long long)(hot_sz / MiB));
	EXPECT(old >= hot_seen * 3 / 4, "it grows old: %llu of %llu MiB aged >= 10",
	       (unsigned long long)(old / MiB), (unsigned long long)(hot_seen / MiB));
	EXPECT(st1.nr_snapshots > st0.nr_snapshots &&
		       st1.sz_tried - st0.sz_tried >=
			       (st1.nr_snapshots - st0.nr_snapshots) * hot_sz * 3 / 4,
	       "the working-set scheme (>= 5 of 20, age >= 2) selects it: %llu bytes in %llu "
	       "rounds",
	       (unsigned long long)(st1.sz_tried - st0.sz_tried),
	       (unsigned long long)(st1.nr_snapshots - st0.nr_snapshots));
}

/* Wait until the status says sampling runs at @want_us; the intervals in
 * force then (a snapshot's must agree: 20 samples per aggregation). */
static bool wait_sample_us(damon_ctx *ctx, uint64_t want_us, uint64_t deadline,
			   uint64_t *ret_seen)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};

	while (now_ns() < deadline) {
		if (damon_ctx_status(ctx, &st) == 0) {
			*ret_seen = st.sample_us;
			if (st.sample_us == want_us)
				return true;
		}
		sleep_ms(20);
	}
	return false;
}

/*
 * The intervals goal (Linux 6.15's meaning) on libdamon's engine: a quarter
 * of the buffer written without pause shows ~2500 bp of the most observable
 * access events at any interval. A goal of 5000 bp cannot be met: sampling
 * slows to max_sample_us; one of 500 bp is met too often: sampling speeds up
 * to min_sample_us, after a commit. Samples per aggregation stay 20.
 */
static void test_intervals_goal(void)
{
	const size_t len = 64 * MiB;
	uint8_t *buf = map_buf(len);
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 5000, .aggr_us = 100000, .cpu_budget_permille = 1000,
		   .intervals_goal = { .access_bp = 5000, .aggrs = 1, .min_sample_us = 2000,
				       .max_sample_us = 20000 });
	struct damon_attrs a = {.sz = sizeof(a)};
	uint64_t b = (uintptr_t)buf, seen = 0;
	damon_snapshot *s = NULL;
	struct writer w;
	damon_target *t;
	damon_ctx *ctx;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	writer_start(&w, buf + 16 * MiB, 16 * MiB, 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_OK(damon_target_add_range(t, b, b + len));
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT(wait_sample_us(ctx, 20000, now_ns() + 30 * 1000000000ULL, &seen),
	       "a goal above what is seen slows sampling to max_sample_us 20000: at %llu us",
	       (unsigned long long)seen);
	sleep_ms(1000);
	if (damon_ctx_snapshot(ctx, &s) == 0) {
		struct damon_snapshot_info si = {.sz = sizeof(si)};

		EXPECT_OK(damon_snapshot_info(s, &si));
		EXPECT(si.sample_us == 20000 && si.aggr_us == 400000 && si.max_nr_accesses == 20,
		       "snapshot intervals %llu/%llu us, max_nr_accesses %u",
		       (unsigned long long)si.sample_us, (unsigned long long)si.aggr_us,
		       si.max_nr_accesses);
		damon_snapshot_unref(s);
	}
	/* the attributes as set do not move */
	EXPECT_OK(damon_ctx_get_attrs(ctx, &a));
	EXPECT(a.sample_us == 5000 && a.aggr_us == 100000, "attrs as set %llu/%llu",
	       (unsigned long long)a.sample_us, (unsigned long long)a.aggr_us);
	a.intervals_goal.access_bp = 500;
	EXPECT_OK(damon_ctx_set_attrs(ctx, &a));
	EXPECT_OK(damon_ctx_commit(ctx));
	EXPECT(wait_sample_us(ctx, 2000, now_ns() + 30 * 1000000000ULL, &seen),
	       "a goal below what is seen speeds sampling up to min_sample_us 2000: at %llu us",
	       (unsigned long long)seen);
	damon_ctx_unref(ctx);
	writer_stop(&w);
	munmap(buf, len);
}

/*
 * A scheme's apply interval shorter than the aggregation interval: the
 * kernel tries it at its own interval (10 ms: ten rounds per 100 ms
 * aggregation), judging regions by nr_accesses_bp between aggregations. It
 * was tried once per aggregation, as often as one without an apply interval.
 */
static void test_apply_interval(void)
{
	const size_t len = 64 * MiB;
	uint8_t *buf = map_buf(len);
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 5000, .aggr_us = 100000, .cpu_budget_permille = 200);
	DAMOS_OPTS(fast_opts, .action = DAMOS_STAT, .min_nr_accesses = 10,
		   .apply_interval_us = 10000);
	DAMOS_OPTS(slow_opts, .action = DAMOS_STAT, .min_nr_accesses = 10);
	struct damos_stats f0 = {.sz = sizeof(f0)}, f1 = {.sz = sizeof(f1)};
	struct damos_stats s0 = {.sz = sizeof(s0)}, s1 = {.sz = sizeof(s1)};
	uint64_t b = (uintptr_t)buf, deadline = now_ns() + 60 * 1000000000ULL, seq0, seq1;
	double per_aggr_fast, per_aggr_slow, mib_fast;
	struct writer w;
	damon_target *t;
	damon_ctx *ctx;
	damos *fast, *slow;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	writer_start(&w, buf + 16 * MiB, 16 * MiB, 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_OK(damon_target_add_range(t, b, b + len));
	EXPECT_OK(damon_ctx_add_scheme(ctx, &fast_opts, &fast));
	EXPECT_OK(damon_ctx_add_scheme(ctx, &slow_opts, &slow));
	EXPECT_OK(damon_ctx_start(ctx));
	while (now_ns() < deadline && dm_test_snap_seq(ctx) < 10)
		sleep_ms(5);
	seq0 = dm_test_snap_seq(ctx);
	EXPECT_OK(damos_get_stats(fast, &f0));
	EXPECT_OK(damos_get_stats(slow, &s0));
	while (now_ns() < deadline && dm_test_snap_seq(ctx) < seq0 + 20)
		sleep_ms(5);
	seq1 = dm_test_snap_seq(ctx);
	EXPECT_OK(damos_get_stats(fast, &f1));
	EXPECT_OK(damos_get_stats(slow, &s1));
	damon_ctx_unref(ctx);
	writer_stop(&w);
	munmap(buf, len);
	per_aggr_fast = (double)(f1.nr_snapshots - f0.nr_snapshots) / (double)(seq1 - seq0);
	per_aggr_slow = (double)(s1.nr_snapshots - s0.nr_snapshots) / (double)(seq1 - seq0);
	mib_fast = f1.nr_snapshots > f0.nr_snapshots
			   ? (double)(f1.sz_tried - f0.sz_tried) /
				     (double)(f1.nr_snapshots - f0.nr_snapshots) / MiB
			   : 0;
	printf("\n    over %llu aggregations: 10 ms apply interval %.1f rounds each (%.1f MiB "
	       "matched per round), default %.1f\n",
	       (unsigned long long)(seq1 - seq0), per_aggr_fast, mib_fast, per_aggr_slow);
	EXPECT(per_aggr_fast >= 9 && per_aggr_fast <= 11,
	       "ten rounds per aggregation at a 10 ms apply interval: %.1f", per_aggr_fast);
	EXPECT(per_aggr_slow >= 0.9 && per_aggr_slow <= 1.1, "one at the default: %.1f",
	       per_aggr_slow);
	EXPECT(mib_fast >= 12, "every round finds the written 16 MiB: %.1f MiB", mib_fast);
}

/* ------------------------------------------------------------------------ */
/* the same, unprivileged                                                   */
/* ------------------------------------------------------------------------ */

/* The file libdamon.so was loaded from, from /proc/self/maps. */
static bool libdamon_path(char *buf, size_t sz)
{
	char line[PATH_MAX + 128];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');

		if (p && strstr(p, "/libdamon.so")) {
			char *del;

			p[strcspn(p, "\n")] = '\0';
			/* replaced on disk since (a rebuild): the path is still the one */
			del = strstr(p, " (deleted)");
			if (del)
				*del = '\0';
			snprintf(buf, sz, "%s", p);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static void test_unprivileged(void)
{
	char exe[PATH_MAX], lib[PATH_MAX];
	ssize_t n;
	int status = -1;
	pid_t pid;

	if (geteuid() != 0) {
		printf("\n    already unprivileged (uid %d): nothing to re-run\n", (int)geteuid());
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CU_ASSERT_FATAL(n > 0);
	exe[n] = '\0';
	CU_ASSERT_FATAL(libdamon_path(lib, sizeof(lib)));
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0) {
			fprintf(stderr, "dropping privileges: %s\n", strerror(errno));
			_exit(1);
		}
		/* The test and the library must be reachable for nobody. */
		if (access(exe, X_OK) < 0 || access(lib, R_OK) < 0) {
			printf("    SKIP: uid %d cannot reach %s or %s (%s); the unprivileged run "
			       "needs a build directory others may traverse\n",
			       NOBODY, exe, lib, strerror(errno));
			fflush(stdout);
			_exit(77);
		}
		setenv(UNPRIV_ENV, "1", 1);
		execl("/proc/self/exe", exe, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("\n    unprivileged run skipped (exit 77); the root run counts alone\n");
		return;
	}
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the run as uid/gid %d passes: status 0x%x", NOBODY, status);
}

int main(void)
{
	bool unpriv = getenv(UNPRIV_ENV) != NULL;
	CU_pSuite s;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite(unpriv ? "live (uid 65534)" : "live", NULL, NULL);
	CU_add_test(s, "hot set found, library thread", test_hot_threaded);
	CU_add_test(s, "hot set found, manual drive", test_hot_manual);
	CU_add_test(s, "manual drive from another thread than start", test_manual_other_thread);
	CU_add_test(s, "pause and resume, library thread", test_pause_threaded);
	CU_add_test(s, "pause and resume, manual drive", test_pause_manual);
	CU_add_test(s, "overhead budget holds", test_budget);
	CU_add_test(s, "a range written without pause grows old", test_ages);
	CU_add_test(s, "a scheme's apply interval shorter than aggregation", test_apply_interval);
	CU_add_test(s, "intervals goal tunes sampling", test_intervals_goal);
	if (!unpriv)
		CU_add_test(s, "unprivileged re-run", test_unprivileged);
	printf("%s: uid %d, %s%s\n", unpriv ? "unprivileged run" : "live", (int)getuid(),
	       HOT_OPS == DAMON_OPS_VADDR ? "vaddr" : "fvaddr", UNDER_ASAN ? " (ASan)" : "");
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}
