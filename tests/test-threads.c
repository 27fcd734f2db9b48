// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Every public call that may run beside the monitor, from several threads
 * at once, on a live context of this process (fvaddr over a buffer a thread
 * keeps writing, the uffd_wp backend): readers of hotness, snapshots and
 * status; a thread feeding a quota goal and reading stats and quotas; the
 * main thread changing attributes and committing, pausing and resuming,
 * stopping and starting again; the allocator hooks and the log callback,
 * called from the library thread and the callers' threads alike. The same
 * with DAMON_CTX_MANUAL, where a thread of ours steps the context (and,
 * as doc/threading.md asks, steps and configuration calls are serialised
 * by a lock of ours; the readers and the goal thread take none).
 *
 * Built plain it checks what every answer says (rates within 10000 bp,
 * snapshots never going back, no error but the documented ones); built
 * with -fsanitize=thread (scripts/test.sh's build-tsan) it is the test
 * ThreadSanitizer judges the library's locking by.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include <damon/damon.h>

#define BUF_SZ	(16u << 20)
#define PAGE	4096
#define READERS 2

static uint8_t *buf;
static const char *skip_reason; /* no backend could monitor this process */

struct shared {
	damon_ctx *ctx;
	damos *scheme;
	atomic_bool stop;
	atomic_ulong reads, snapshots, goals, unexpected;
	atomic_ulong allocs, frees, logs;
	bool manual;
	/* manual mode: configuration calls and damon_ctx_step() are the
	 * caller's to serialise (doc/threading.md); this is ours */
	pthread_mutex_t cfg;
};

static void cfg_lock(struct shared *sh)
{
	if (sh->manual)
		pthread_mutex_lock(&sh->cfg);
}

static void cfg_unlock(struct shared *sh)
{
	if (sh->manual)
		pthread_mutex_unlock(&sh->cfg);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void unexpected(struct shared *sh, const char *what, int err)
{
	fprintf(stderr, "\n  %s: %d (%s)\n", what, err, strerror(err < 0 ? -err : err));
	atomic_fetch_add(&sh->unexpected, 1);
}

/* The allocator hooks and the log callback: counted from any thread. */
static void *hook_malloc(size_t size, void *ud)
{
	atomic_fetch_add(&((struct shared *)ud)->allocs, 1);
	return malloc(size);
}

static void hook_free(void *p, void *ud)
{
	if (p)
		atomic_fetch_add(&((struct shared *)ud)->frees, 1);
	free(p);
}

static void hook_log(damon_ctx *ctx, int level, const char *msg, void *ud)
{
	atomic_fetch_add(&((struct shared *)ud)->logs, 1);
	if (!msg || !*msg)
		atomic_fetch_add(&((struct shared *)ud)->unexpected, 1);
}

/* The application: the first half of the buffer is hot. */
static void *writer_main(void *arg)
{
	struct shared *sh = arg;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed))
		for (size_t off = 0; off < BUF_SZ / 2; off += PAGE)
			((volatile uint8_t *)buf)[off]++;
	return NULL;
}

static void *reader_main(void *arg)
{
	struct shared *sh = arg;
	uint64_t last_seq = 0;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		struct damon_hotness h = {.sz = sizeof(h)};
		struct damon_ctx_status st = {.sz = sizeof(st)};
		struct damon_snapshot_info info = {.sz = sizeof(info)};
		damon_snapshot *s;
		int r;

		r = damon_ctx_hotness(sh->ctx, (uintptr_t)buf, BUF_SZ, &h);
		if (r == 0 && h.access_rate_bp > 10000)
			unexpected(sh, "hotness above 10000 bp", (int)h.access_rate_bp);
		else if (r && r != -EAGAIN && r != -ENOENT)
			unexpected(sh, "damon_ctx_hotness", r);
		atomic_fetch_add(&sh->reads, 1);

		r = damon_ctx_snapshot(sh->ctx, &s);
		if (r == 0) {
			if (damon_snapshot_info(s, &info) < 0 || info.seq < last_seq)
				unexpected(sh, "snapshot went back", (int)info.seq);
			last_seq = info.seq;
			for (size_t i = 0; i < damon_snapshot_nr_regions(s) && i < 8; i++) {
				struct damon_region reg = {.sz = sizeof(reg)};

				if (damon_snapshot_region(s, i, &reg) < 0 || reg.start >= reg.end)
					unexpected(sh, "snapshot region", (int)i);
			}
			damon_snapshot_unref(s);
			atomic_fetch_add(&sh->snapshots, 1);
		} else if (r != -EAGAIN) {
			unexpected(sh, "damon_ctx_snapshot", r);
		}
		r = damon_ctx_status(sh->ctx, &st);
		if (r < 0 || st.error)
			unexpected(sh, "damon_ctx_status", r < 0 ? r : st.error);
	}
	return NULL;
}

/* A user_input goal fed while the monitor runs; stats and quota read. */
static void *goal_main(void *arg)
{
	struct shared *sh = arg;
	uint64_t v = 0, last_tried = 0;

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		struct damos_stats st = {.sz = sizeof(st)};
		struct damos_quota_state q = {.sz = sizeof(q)};
		int r = damos_set_goal_current(sh->scheme, 0, v++ % 200);

		if (r < 0)
			unexpected(sh, "damos_set_goal_current", r);
		r = damos_get_stats(sh->scheme, &st);
		if (r < 0 || st.nr_tried < last_tried)
			unexpected(sh, "damos_get_stats", r);
		last_tried = st.nr_tried;
		if ((r = damos_get_quota(sh->scheme, &q)) < 0)
			unexpected(sh, "damos_get_quota", r);
		atomic_fetch_add(&sh->goals, 1);
		sleep_ms(1);
	}
	return NULL;
}

/* DAMON_CTX_MANUAL: our thread does the monitor's work when it is due. */
static void *stepper_main(void *arg)
{
	struct shared *sh = arg;
	struct pollfd pfd = {.fd = damon_ctx_fd(sh->ctx), .events = POLLIN};

	while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
		uint64_t next = 0;
		int r;

		cfg_lock(sh);
		r = damon_ctx_step(sh->ctx, &next);
		cfg_unlock(sh);

		if (r < 0)
			unexpected(sh, "damon_ctx_step", r);
		poll(&pfd, 1, next > 20000 ? 20 : (int)(next / 1000) + 1);
	}
	return NULL;
}

static void run(bool manual)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .sample_us = 2000, .aggr_us = 20000,
		   .update_us = 200000, .flags = manual ? DAMON_CTX_MANUAL : 0,
		   .malloc_fn = hook_malloc, .free_fn = hook_free, .log_fn = hook_log);
	struct shared sh = {.manual = manual, .cfg = PTHREAD_MUTEX_INITIALIZER};
	struct damos_opts so;
	struct damos_goal_opts g = {
		.sz = sizeof(g), .metric = DAMOS_GOAL_USER_INPUT, .target_value = 100};
	pthread_t writer, readers[READERS], goal, stepper;
	damon_target *t;
	int r;

	o.alloc_userdata = &sh;
	o.log_userdata = &sh;
	EXPECT_EQ(damon_ctx_new(&sh.ctx, &o), 0);
	if (!sh.ctx)
		return;
	EXPECT_EQ(damon_ctx_add_target(sh.ctx, 0, &t), 0);
	EXPECT_EQ(damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + BUF_SZ), 0);
	damos_opts_init(&so);
	so.action = DAMOS_STAT;
	so.quota_ms = 10;
	EXPECT_EQ(damon_ctx_add_scheme(sh.ctx, &so, &sh.scheme), 0);
	EXPECT_EQ(damos_add_goal(sh.scheme, &g), 0);
	r = damon_ctx_start(sh.ctx);
	if (r == -EOPNOTSUPP || r == -EPERM || r == -ENOSYS) {
		/* no backend can monitor this process here: nothing to race */
		static char why[512];

		snprintf(why, sizeof(why), "%s", damon_ctx_errmsg(sh.ctx));
		skip_reason = why;
		damon_ctx_unref(sh.ctx);
		return;
	}
	EXPECT_EQ(r, 0);

	pthread_create(&writer, NULL, writer_main, &sh);
	for (int i = 0; i < READERS; i++)
		pthread_create(&readers[i], NULL, reader_main, &sh);
	pthread_create(&goal, NULL, goal_main, &sh);
	if (manual)
		pthread_create(&stepper, NULL, stepper_main, &sh);

	/* the main thread changes everything a running context takes */
	for (int round = 0; round < 6; round++) {
		DAMON_OPTS(damon_attrs, a, .sample_us = 2000, .aggr_us = round % 2 ? 30000 : 20000,
			   .update_us = 200000, .min_nr_regions = 10, .max_nr_regions = 200);

		sleep_ms(60);
		cfg_lock(&sh);
		EXPECT_EQ(damon_ctx_set_attrs(sh.ctx, &a), 0);
		EXPECT_EQ(damon_ctx_commit(sh.ctx), 0);
		cfg_unlock(&sh);
		sleep_ms(40);
		cfg_lock(&sh);
		EXPECT_EQ(damon_ctx_pause(sh.ctx), 0);
		cfg_unlock(&sh);
		sleep_ms(20);
		cfg_lock(&sh);
		EXPECT_EQ(damon_ctx_resume(sh.ctx), 0);
		if (round == 3) {
			/* stop and start again under the readers' feet */
			EXPECT_EQ(damon_ctx_stop(sh.ctx), 0);
			EXPECT_EQ(damon_ctx_start(sh.ctx), 0);
		}
		cfg_unlock(&sh);
	}
	sleep_ms(100);
	atomic_store(&sh.stop, true);
	pthread_join(writer, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(readers[i], NULL);
	pthread_join(goal, NULL);
	if (manual)
		pthread_join(stepper, NULL);
	EXPECT_EQ(damon_ctx_stop(sh.ctx), 0);
	EXPECT_EQ(damon_ctx_unref(sh.ctx), NULL);

	EXPECT_EQ(atomic_load(&sh.unexpected), 0);
	EXPECT(atomic_load(&sh.reads) > 10, "%lu hotness reads", atomic_load(&sh.reads));
	EXPECT(atomic_load(&sh.snapshots) > 0, "no snapshot read in %lu tries",
	       atomic_load(&sh.reads));
	EXPECT(atomic_load(&sh.goals) > 10, "%lu goal updates", atomic_load(&sh.goals));
	/* every allocation through the hooks was given back through them */
	EXPECT_EQ(atomic_load(&sh.allocs), atomic_load(&sh.frees));
}

static void test_threaded(void)
{
	run(false);
}

static void test_manual(void)
{
	run(true);
}

/* Contexts made and dropped in several threads at once (no shared state). */
static void *churn_main(void *arg)
{
	for (int i = 0; i < 20; i++) {
		DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .flags = DAMON_CTX_MANUAL);
		damon_ctx *ctx;
		damon_target *t;

		if (damon_ctx_new(&ctx, &o) < 0)
			return (void *)1;
		if (damon_ctx_add_target(ctx, 0, &t) < 0 ||
		    damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + BUF_SZ) < 0)
			return (void *)1;
		damon_ctx_unref(ctx);
	}
	return NULL;
}

static void test_churn(void)
{
	pthread_t th[4];
	void *ret;

	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, churn_main, NULL);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], &ret);
		EXPECT(ret == NULL, "thread %d could not make a context", i);
	}
}

int main(void)
{
	static const struct dm_test tests[] = {
		{"library thread: readers, goals, commits, pause, restart", test_threaded},
		{"manual: our stepper, readers, goals, commits, pause, restart", test_manual},
		{"contexts made and dropped in parallel", test_churn},
		{NULL, NULL},
	};
	int rc;

	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	madvise(buf, BUF_SZ, MADV_NOHUGEPAGE);
	rc = dm_test_run("threads", tests);
	if (!rc && skip_reason) {
		printf("test-threads: skipped: no backend can monitor this process here: %s\n",
		       skip_reason);
		return 77;
	}
	return rc;
}
