/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the CUnit test executables share: assertions that print what they
 * expected and what they got, counting a directory's entries (threads in
 * /proc/self/task, fds in /proc/self/fd), and the run-and-report main().
 * Header-only: every test area is one small executable.
 */
#ifndef DAMON_TEST_UTIL_H
#define DAMON_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <damon/damon.h>

/* Integers (errnos, sizes, counts) compared exactly; printed on mismatch. */
#define EXPECT_EQ(got, want)                                                                  \
	do {                                                                                  \
		long long g_ = (long long)(got), w_ = (long long)(want);                      \
		if (g_ != w_)                                                                 \
			fprintf(stderr, "\n  %s:%d: %s: expected %lld, got %lld\n", __FILE__, \
				__LINE__, #got, w_, g_);                                      \
		CU_ASSERT_EQUAL(g_, w_);                                                      \
	} while (0)
#define EXPECT_INT EXPECT_EQ

/* A condition, evaluated once, with a printf-style account of what was seen. */
#define EXPECT(cond, ...)                                                                       \
	do {                                                                                    \
		bool c_ = (cond);                                                               \
		if (!c_) {                                                                      \
			fprintf(stderr, "\n  %s:%d: expected %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                           \
			fputc('\n', stderr);                                                    \
		}                                                                               \
		CU_assertImplementation(c_, __LINE__, #cond, __FILE__, "", CU_FALSE);           \
	} while (0)

/* Entries of a directory, "." and ".." aside; -1 when it cannot be read. */
static inline int dm_test_count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Is this test running under valgrind? Valgrind 3.19 implements neither the
 * userfaultfd system call nor the PAGEMAP_SCAN ioctl: tests of the uffd_wp
 * backend say so and skip there (scripts/test.sh runs the unit suite under
 * memcheck) rather than have its reports suppressed.
 */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define DM_TEST_HAVE_VALGRIND_H 1
#endif
#endif
static inline bool dm_test_on_valgrind(void)
{
#ifdef DM_TEST_HAVE_VALGRIND_H
	return RUNNING_ON_VALGRIND != 0;
#else
	const char *pre = getenv("LD_PRELOAD");

	return pre && strstr(pre, "vgpreload");
#endif
}

/* Threads of this process named @comm ("damon-mon": library threads);
 * counting them, not all threads, leaves a sanitizer's own threads out. */
static inline int dm_test_count_threads(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], name[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
		n += !strcmp(name, comm);
	}
	closedir(d);
	return n;
}

/* Sequence number of the context's newest snapshot, 0 if none. */
static inline uint64_t dm_test_snap_seq(damon_ctx *ctx)
{
	struct damon_snapshot_info info = { .sz = sizeof(info) };
	damon_snapshot *s;
	uint64_t seq = 0;

	if (damon_ctx_snapshot(ctx, &s) < 0)
		return 0;
	if (damon_snapshot_info(s, &info) == 0)
		seq = info.seq;
	damon_snapshot_unref(s);
	return seq;
}

static inline uint64_t dm_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Manual context: poll its fd and step until a snapshot with seq >= @min
 * (or @timeout_ms); the newest seq. */
static inline uint64_t dm_test_drive_seq(damon_ctx *ctx, uint64_t min, unsigned int timeout_ms)
{
	uint64_t end = dm_test_now_ms() + timeout_ms, seq;
	struct pollfd pfd = { .fd = damon_ctx_fd(ctx), .events = POLLIN };

	while ((seq = dm_test_snap_seq(ctx)) < min && dm_test_now_ms() < end) {
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			break;
		if (damon_ctx_step(ctx, NULL) < 0)
			break;
	}
	return seq;
}

struct dm_test {
	const char *name;
	CU_TestFunc fn;
};

/* Run @tests (ended by a { NULL } entry) as one suite; the exit status. */
static inline int dm_test_run(const char *suite, const struct dm_test *tests)
{
	unsigned int failures;
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite(suite, NULL, NULL);
	for (const struct dm_test *t = tests; t->name; t++)
		CU_add_test(s, t->name, t->fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures ? 1 : 0;
}

#endif
