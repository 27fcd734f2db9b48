// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * A target process that exits mid-run, through the whole context: a real
 * child is the vaddr target (its real /proc/PID/maps gives the layout), the
 * accesses come from the simulated primitive because no user-space backend
 * of this version samples another process. When the child dies, the
 * library thread must end by itself, the status must say -ESRCH with a
 * sentence, the log callback must hear it, and after unref no thread and no
 * fd may be left.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "api/internal.h"
#include "ops/sim.h"

static bool never(void *arg, pid_t pid, uint64_t addr)
{
	return (addr >> 12) % 3 == 0;
}

static char logged[512];
static int log_calls;

static void on_log(damon_ctx *ctx, int level, const char *msg, void *ud)
{
	log_calls++;
	snprintf(logged, sizeof(logged), "%s", msg);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void test_exit_mid_run(void)
{
	struct dm_sim_model model = { .accessed = never };
	struct damon_ctx_status st = { .sz = sizeof(st) };
	int fds0 = dm_test_count_dir("/proc/self/fd");
	damon_ctx *ctx = NULL;
	pid_t child;
	int wst, i;
	DAMON_OPTS(damon_ctx_opts, o, .sample_us = 1000, .aggr_us = 10000, .update_us = 20000,
		   .log_fn = on_log);

	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (!child) {
		pause();
		_exit(0);
	}
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_add_target(ctx, child, NULL), 0);
	dm_ctx_set_ops_override(ctx, &dm_ops_sim, &model, NULL);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_start(ctx), 0);
	for (i = 0; i < 200 && st.nr_snapshots < 5; i++) {
		sleep_ms(10);
		damon_ctx_status(ctx, &st);
	}
	CU_ASSERT(st.running);
	CU_ASSERT(st.nr_snapshots >= 5);
	CU_ASSERT_EQUAL(dm_test_count_threads("damon-mon"), 1);

	kill(child, SIGKILL);
	waitpid(child, &wst, 0);
	for (i = 0; i < 300; i++) {
		sleep_ms(10);
		damon_ctx_status(ctx, &st);
		if (!st.running && dm_test_count_threads("damon-mon") == 0)
			break;
	}
	if (st.running || st.error != -ESRCH)
		fprintf(stderr, "\n  expected the monitor ended with -ESRCH, got running %u error %d "
			"\"%s\"\n", st.running, st.error, st.message);
	CU_ASSERT_FALSE(st.running);
	CU_ASSERT_EQUAL(st.error, -ESRCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "exited"));
	CU_ASSERT(log_calls >= 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(logged, "exited"));
	/* The library thread has ended by itself. */
	CU_ASSERT_EQUAL(dm_test_count_threads("damon-mon"), 0);
	/* The last snapshot stays readable; stop says it had already ended. */
	{
		damon_snapshot *s = NULL;

		CU_ASSERT_EQUAL(damon_ctx_snapshot(ctx, &s), 0);
		damon_snapshot_unref(s);
	}
	CU_ASSERT_EQUAL(damon_ctx_stop(ctx), -EALREADY);
	damon_ctx_unref(ctx);
	CU_ASSERT_EQUAL(dm_test_count_threads("damon-mon"), 0);
	CU_ASSERT_EQUAL(dm_test_count_dir("/proc/self/fd"), fds0);
}

static pid_t sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

static void wait_ended(damon_ctx *ctx, struct damon_ctx_status *st)
{
	for (int i = 0; i < 300; i++) {
		damon_ctx_status(ctx, st);
		if (!st->running)
			return;
		sleep_ms(10);
	}
}

/* Snapshots published after @seq: the target_idx of their regions, as a
 * bit set (bit 31: no snapshot came within 3 s). */
static uint32_t idx_seen(damon_ctx *ctx, uint64_t seq)
{
	struct damon_snapshot_info info = { .sz = sizeof(info) };
	struct damon_region r = { .sz = sizeof(r) };
	damon_snapshot *s = NULL;
	uint32_t seen = 0;

	for (int i = 0; i < 300; i++) {
		if (damon_ctx_snapshot(ctx, &s) == 0 && damon_snapshot_info(s, &info) == 0 &&
		    info.seq > seq)
			break;
		s = damon_snapshot_unref(s);
		sleep_ms(10);
	}
	if (!s)
		return 1u << 31;
	for (size_t i = 0; i < damon_snapshot_nr_regions(s); i++)
		if (damon_snapshot_region(s, i, &r) == 0)
			seen |= 1u << r.target_idx;
	damon_snapshot_unref(s);
	return seen;
}

/*
 * A target that exited is dropped: a later start leaves it out (keeping
 * the others' target_idx) instead of failing with -ESRCH for ever, since
 * no call removes a target. Both ways: after the monitor ended (every
 * target gone, a new one added, started again without a stop) and after
 * a stop with one of two targets gone. With every target gone and none
 * added, start says -ESRCH.
 */
static void test_restart_without_the_dead(void)
{
	struct dm_sim_model model = { .accessed = never };
	struct damon_ctx_status st = { .sz = sizeof(st) };
	pid_t a = sleeper(), b, c;
	damon_ctx *ctx = NULL;
	uint32_t seen;
	DAMON_OPTS(damon_ctx_opts, o, .sample_us = 1000, .aggr_us = 10000, .update_us = 20000);

	CU_ASSERT_FATAL(a > 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	dm_ctx_set_ops_override(ctx, &dm_ops_sim, &model, NULL);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_add_target(ctx, a, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_start(ctx), 0);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	wait_ended(ctx, &st);
	CU_ASSERT_FALSE(st.running);

	/* ended, nothing added: nothing to start */
	EXPECT_INT(damon_ctx_start(ctx), -ESRCH);
	/* ended, a new target: starts without a stop, the dead one left out */
	b = sleeper();
	c = sleeper();
	CU_ASSERT_FATAL(b > 0 && c > 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_add_target(ctx, b, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_add_target(ctx, c, NULL), 0);
	EXPECT_INT(damon_ctx_start(ctx), 0);
	damon_ctx_status(ctx, &st);
	seen = idx_seen(ctx, st.nr_snapshots);
	if (seen != 6)
		fprintf(stderr, "\n  expected regions of targets 1 and 2 (0x6), got 0x%x\n", seen);
	CU_ASSERT_EQUAL(seen, 6);

	/* stopped with one of two gone: starts again with the other */
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	for (int i = 0; i < 300 && st.nr_targets != 1; i++) {
		sleep_ms(10);
		damon_ctx_status(ctx, &st);
	}
	EXPECT_INT(st.nr_targets, 1);
	EXPECT_INT(damon_ctx_stop(ctx), 0);
	EXPECT_INT(damon_ctx_start(ctx), 0);
	damon_ctx_status(ctx, &st);
	EXPECT_INT(st.nr_targets, 1);
	seen = idx_seen(ctx, st.nr_snapshots);
	if (seen != 4)
		fprintf(stderr, "\n  expected regions of target 2 only (0x4), got 0x%x\n", seen);
	CU_ASSERT_EQUAL(seen, 4);
	/* and a commit does not bring the dead back */
	EXPECT_INT(damon_ctx_commit(ctx), 0);
	damon_ctx_unref(ctx);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
}

/* A pid that is gone before start: -ESRCH at add_target, nothing made. */
static void test_dead_before_add(void)
{
	damon_ctx *ctx = NULL;
	pid_t child = fork();
	int wst;

	CU_ASSERT_FATAL(child >= 0);
	if (!child)
		_exit(0);
	waitpid(child, &wst, 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
	CU_ASSERT_EQUAL(damon_ctx_add_target(ctx, child, NULL), -ESRCH);
	CU_ASSERT(strlen(damon_ctx_errmsg(ctx)) > 0);
	damon_ctx_unref(ctx);
}

/*
 * A target whose process is gone before start (never monitored, so not
 * dropped): -ESRCH naming it, not a backend refused for a pid it cannot
 * read (AUTO used to answer -EOPNOTSUPP with every backend's reason).
 */
static void test_dead_before_start(void)
{
	damon_ctx *ctx = NULL;
	pid_t child = sleeper();

	CU_ASSERT_FATAL(child > 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(damon_ctx_add_target(ctx, child, NULL), 0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	EXPECT_INT(damon_ctx_start(ctx), -ESRCH);
	if (!strstr(damon_ctx_errmsg(ctx), "is gone"))
		fprintf(stderr, "\n  expected \"... is gone\", got \"%s\"\n", damon_ctx_errmsg(ctx));
	CU_ASSERT_PTR_NOT_NULL(strstr(damon_ctx_errmsg(ctx), "is gone"));
	damon_ctx_unref(ctx);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "target exits mid-run: thread ends, -ESRCH, nothing left", test_exit_mid_run },
		{ "target gone before add_target", test_dead_before_add },
		{ "a start leaves the targets that exited out", test_restart_without_the_dead },
		{ "target gone before start: -ESRCH, no backend blamed", test_dead_before_start },
		{ NULL, NULL },
	};

	return dm_test_run("target-exit", tests);
}
