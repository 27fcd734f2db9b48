// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The public API as an application sees it: <damon/damon.h> and libdamon.so
 * only. Every argument check and error code that damon.h documents, the
 * errmsg rules, the fork rule, clean shutdown (threads, fds), allocator hooks
 * and backend probing on this host (which must leave /sys/kernel/mm/damon
 * exactly as it was: it is only ever read, here as in the library).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include <damon/damon.h>

#define MiB	   (1024ULL * 1024)
#define HOST_DAMON "/sys/kernel/mm/damon"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* @call must fail with -@code. */
#define EXPECT_ERR(call, code)                                                             \
	do {                                                                               \
		int r_ = (call);                                                           \
		if (r_ != -(code))                                                         \
			fprintf(stderr, "\n  %s:%d: %s: expected -%s (%d), got %d (%s)\n", \
				__FILE__, __LINE__, #call, #code, -(code), r_,             \
				r_ < 0 ? strerror(-r_) : "success");                       \
		CU_ASSERT_EQUAL(r_, -(code));                                              \
	} while (0)

/* @call must succeed (>= 0). */
#define EXPECT_OK(call)                                                                   \
	do {                                                                              \
		int r_ = (call);                                                          \
		if (r_ < 0)                                                               \
			fprintf(stderr, "\n  %s:%d: %s: expected success, got %d (%s)\n", \
				__FILE__, __LINE__, #call, r_, strerror(-r_));            \
		CU_ASSERT(r_ >= 0);                                                       \
	} while (0)

/* A sentence: some words, no trailing newline. */
static bool is_sentence(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 8 && s[n - 1] != '\n' && strchr(s, ' ');
}

/*
 * @call on @ctx must fail with -@code and leave its own sentence in errmsg.
 * A marker failure first (a pid no call ever mentions otherwise) makes sure
 * the sentence read afterwards is the new one, not a stale one.
 */
#define MARKER_PID (-424242)
#define EXPECT_FAIL(ctx, call, code)                                             \
	do {                                                                     \
		char marker_[512];                                               \
		const char *m_;                                                  \
		damon_ctx_add_target((ctx), MARKER_PID, NULL);                   \
		snprintf(marker_, sizeof(marker_), "%s", damon_ctx_errmsg(ctx)); \
		EXPECT_ERR(call, code);                                          \
		m_ = damon_ctx_errmsg(ctx);                                      \
		EXPECT(is_sentence(m_) && strcmp(m_, marker_),                   \
		       "errmsg after %s is a new sentence, got \"%s\"", #call,   \
		       m_ ? m_ : "(null)");                                      \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Threaded context: wait until a snapshot with seq >= @min exists. */
static uint64_t wait_seq(damon_ctx *ctx, uint64_t min, unsigned int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms, seq;

	while ((seq = dm_test_snap_seq(ctx)) < min && now_ms() < end)
		sleep_ms(10);
	return seq;
}

#define drive_seq dm_test_drive_seq

/* A context on the uffd_wp backend with short intervals. */
static damon_ctx *new_ctx(uint32_t ops, uint32_t flags)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = ops, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 1000, .aggr_us = 20000, .update_us = 200000, .flags = flags,
		   .cpu_budget_permille = 500);
	damon_ctx *ctx = NULL;
	int r = damon_ctx_new(&ctx, &o);

	if (r < 0)
		fprintf(stderr, "\n  damon_ctx_new: %s\n", strerror(-r));
	return ctx;
}

/* A pid that belonged to a process that is gone (reaped). */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

static void *map_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------------ */
/* version, names                                                           */
/* ------------------------------------------------------------------------ */

static void test_version(void)
{
	char want[32];

	EXPECT_EQ(damon_version(), DAMON_VERSION_NUMBER);
	snprintf(want, sizeof(want), "%d.%d.%d", DAMON_VERSION_MAJOR, DAMON_VERSION_MINOR,
		 DAMON_VERSION_PATCH);
	EXPECT(!strcmp(damon_version_string(), want), "expected \"%s\", got \"%s\"", want,
	       damon_version_string());
	EXPECT(!strcmp(damon_version_string(), DAMON_VERSION_STRING), "got \"%s\"",
	       damon_version_string());
}

static void test_backend_names(void)
{
	static const char *const want[] = {"auto",    "kernel",	    "page_idle",
					   "uffd_wp", "soft_dirty", "fault"};

	for (int b = 0; b <= DAMON_BACKEND_MAX; b++) {
		const char *n = damon_backend_name(b);

		EXPECT(n && !strcmp(n, want[b]), "backend %d: expected \"%s\", got \"%s\"", b,
		       want[b], n ? n : "(null)");
		EXPECT_EQ(damon_backend_from_name(n), b);
	}
	EXPECT(!strcmp(damon_backend_name(-1), "unknown"), "got \"%s\"", damon_backend_name(-1));
	EXPECT(!strcmp(damon_backend_name(DAMON_BACKEND_MAX + 1), "unknown"), "got \"%s\"",
	       damon_backend_name(DAMON_BACKEND_MAX + 1));
	EXPECT(!strcmp(damon_backend_name(1 << 30), "unknown"), "got \"%s\"",
	       damon_backend_name(1 << 30));
	EXPECT_ERR(damon_backend_from_name("unknown"), EINVAL);
	EXPECT_ERR(damon_backend_from_name(""), EINVAL);
	EXPECT_ERR(damon_backend_from_name("uffd_wp "), EINVAL);
	EXPECT_ERR(damon_backend_from_name(NULL), EINVAL);
}

/* ------------------------------------------------------------------------ */
/* NULL handles and out-parameters                                          */
/* ------------------------------------------------------------------------ */

static void test_null_args(void)
{
	struct damon_attrs attrs = {.sz = sizeof(attrs)};
	struct damon_ctx_status st = {.sz = sizeof(st)};
	struct damon_backend_status bs = {.sz = sizeof(bs)};
	struct damon_hotness h = {.sz = sizeof(h)};
	struct damon_region reg = {.sz = sizeof(reg)};
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damos_stats ds = {.sz = sizeof(ds)};
	damon_snapshot *s = NULL;
	damon_ctx *ctx = NULL, *null_ctx = NULL;
	damon_snapshot *null_snap = NULL;
	damon_target *t = NULL;
	damos *sc = NULL;
	uint64_t next;

	DAMOS_OPTS(so);

	/* NULL handles */
	EXPECT_ERR(damon_ctx_new(NULL, NULL), EINVAL);
	EXPECT(damon_ctx_ref(NULL) == NULL, "damon_ctx_ref(NULL) is NULL");
	EXPECT(damon_ctx_unref(NULL) == NULL, "damon_ctx_unref(NULL) is NULL");
	damon_ctx_unrefp(NULL);
	damon_ctx_unrefp(&null_ctx);
	EXPECT_ERR(damon_ctx_add_target(NULL, 0, &t), EINVAL);
	EXPECT_ERR(damon_target_add_range(NULL, 0, 4096), EINVAL);
	EXPECT_ERR(damon_target_pid(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_start(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_stop(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_commit(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_set_attrs(NULL, &attrs), EINVAL);
	EXPECT_ERR(damon_ctx_get_attrs(NULL, &attrs), EINVAL);
	EXPECT_ERR(damon_ctx_backend(NULL), EINVAL);
	EXPECT(!strcmp(damon_ctx_errmsg(NULL), "no context"), "got \"%s\"", damon_ctx_errmsg(NULL));
	EXPECT_ERR(damon_ctx_status(NULL, &st), EINVAL);
	EXPECT_ERR(damon_ctx_backend_status(NULL, DAMON_BACKEND_UFFD_WP, &bs), EINVAL);
	EXPECT_ERR(damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_UFFD_WP, NULL), EINVAL);
	EXPECT_ERR(damon_ctx_step(NULL, &next), EINVAL);
	EXPECT_ERR(damon_ctx_pause(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_resume(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_fd(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_snapshot(NULL, &s), EINVAL);
	EXPECT(damon_snapshot_ref(NULL) == NULL, "damon_snapshot_ref(NULL) is NULL");
	EXPECT(damon_snapshot_unref(NULL) == NULL, "damon_snapshot_unref(NULL) is NULL");
	damon_snapshot_unrefp(NULL);
	damon_snapshot_unrefp(&null_snap);
	EXPECT_EQ(damon_snapshot_nr_regions(NULL), 0);
	EXPECT_ERR(damon_snapshot_region(NULL, 0, &reg), EINVAL);
	EXPECT_ERR(damon_snapshot_info(NULL, &info), EINVAL);
	EXPECT_ERR(damon_ctx_hotness(NULL, 4096, 4096, &h), EINVAL);
	EXPECT_ERR(damon_target_hotness(NULL, 4096, 4096, &h), EINVAL);
	EXPECT_ERR(damos_opts_init(NULL), EINVAL);
	EXPECT_ERR(damon_ctx_add_scheme(NULL, &so, &sc), EINVAL);
	EXPECT_ERR(damos_get_stats(NULL, &ds), EINVAL);

	/* NULL out-parameters (and option structs) on a real context */
	ctx = new_ctx(DAMON_OPS_VADDR, DAMON_CTX_MANUAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT(!strcmp(damon_ctx_errmsg(ctx), ""), "no failure yet: got \"%s\"",
	       damon_ctx_errmsg(ctx));
	EXPECT_OK(damon_ctx_add_target(ctx, 0, NULL)); /* @ret may be NULL */
	EXPECT_FAIL(ctx, damon_ctx_set_attrs(ctx, NULL), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_get_attrs(ctx, NULL), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_status(ctx, NULL), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_backend_status(ctx, DAMON_BACKEND_UFFD_WP, NULL), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_snapshot(ctx, NULL), EINVAL);
	EXPECT_ERR(damon_ctx_hotness(ctx, 4096, 4096, NULL), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_add_scheme(ctx, NULL, NULL), EINVAL);
	EXPECT_OK(damon_ctx_add_scheme(ctx, &so, NULL)); /* @ret may be NULL */
	EXPECT_OK(damon_ctx_add_scheme(ctx, &so, &sc));
	EXPECT_ERR(damos_get_stats(sc, NULL), EINVAL);

	/* Snapshot getters with NULL out-parameters need a snapshot. */
	{
		void *buf2 = map_buf(MiB);

		CU_ASSERT_PTR_NOT_NULL_FATAL(buf2);
		EXPECT_OK(damon_ctx_start(ctx));
		EXPECT(drive_seq(ctx, 1, 5000) >= 1, "a first snapshot within 5 s");
		if (damon_ctx_snapshot(ctx, &s) == 0) {
			EXPECT_ERR(damon_snapshot_region(s, 0, NULL), EINVAL);
			EXPECT_ERR(damon_snapshot_info(s, NULL), EINVAL);
			damon_snapshot_unrefp(&s);
			EXPECT(s == NULL, "damon_snapshot_unrefp() clears the pointer");
		}
		munmap(buf2, MiB);
	}
	damon_ctx_unrefp(&ctx);
	EXPECT(ctx == NULL, "damon_ctx_unrefp() clears the pointer");
}

/* ------------------------------------------------------------------------ */
/* damon_ctx_new() options                                                  */
/* ------------------------------------------------------------------------ */

static void *hook_malloc(size_t n, void *ud)
{
	return malloc(n);
}

static void hook_free(void *p, void *ud)
{
	free(p);
}

/* damon_ctx_new(&ctx, @o) must return -@code (0: succeed). */
static void expect_new(const struct damon_ctx_opts *o, int code, int line)
{
	damon_ctx *const sentinel = (damon_ctx *)&sentinel;
	damon_ctx *ctx = sentinel;
	int r = damon_ctx_new(&ctx, o);

	if (r != -code)
		fprintf(stderr, "\n  %s:%d: damon_ctx_new: expected %d, got %d (%s)\n", __FILE__,
			line, -code, r, r < 0 ? strerror(-r) : "success");
	CU_ASSERT_EQUAL(r, -code);
	if (r < 0) {
		/* written only on success */
		EXPECT(ctx == sentinel, "ret untouched on failure (line %d)", line);
	} else {
		EXPECT(ctx != sentinel && ctx != NULL, "ret set on success (line %d)", line);
		damon_ctx_unref(ctx);
	}
}

static void test_ctx_new_opts(void)
{
	struct {
		struct damon_ctx_opts o;
		unsigned char tail[24];
	} big;

	expect_new(NULL, 0, __LINE__);

	/* sz: too small */
	{
		DAMON_OPTS(damon_ctx_opts, x);
		x.sz = 0;
		expect_new(&x, EINVAL, __LINE__);
		x.sz = sizeof(size_t);
		expect_new(&x, EINVAL, __LINE__);
		x.sz = offsetof(struct damon_ctx_opts, sample_us);
		expect_new(&x, EINVAL, __LINE__);
		x.sz = sizeof(x);
		expect_new(&x, 0, __LINE__);
	}
	/* sz: larger than this library knows, zero tail ok, non-zero tail not */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	expect_new(&big.o, 0, __LINE__);
	big.tail[sizeof(big.tail) - 1] = 1;
	expect_new(&big.o, EINVAL, __LINE__);
	big.tail[sizeof(big.tail) - 1] = 0;
	big.tail[0] = 0x80;
	expect_new(&big.o, EINVAL, __LINE__);

	/* unknown ops, backend, flags */
#define NEW_WITH(code, ...)                                  \
	do {                                                 \
		DAMON_OPTS(damon_ctx_opts, x_, __VA_ARGS__); \
		expect_new(&x_, code, __LINE__);             \
	} while (0)
	NEW_WITH(0, .ops = DAMON_OPS_VADDR);
	NEW_WITH(0, .ops = DAMON_OPS_FVADDR);
	NEW_WITH(0, .ops = DAMON_OPS_PADDR);
	NEW_WITH(EINVAL, .ops = DAMON_OPS_PADDR + 1);
	NEW_WITH(EINVAL, .ops = UINT32_MAX);
	for (uint32_t b = 0; b <= DAMON_BACKEND_MAX; b++)
		NEW_WITH(0, .backend = b);
	NEW_WITH(EINVAL, .backend = DAMON_BACKEND_MAX + 1);
	NEW_WITH(EINVAL, .backend = UINT32_MAX);
	NEW_WITH(0, .flags = DAMON_CTX_MANUAL);
	NEW_WITH(EINVAL, .flags = DAMON_CTX_MANUAL << 1);
	NEW_WITH(EINVAL, .flags = 1u << 31);

	/* intervals: 0 takes the default; sample > aggr is wrong */
	NEW_WITH(0, .sample_us = 0, .aggr_us = 0, .update_us = 0);
	NEW_WITH(0, .sample_us = 100000, .aggr_us = 100000);
	NEW_WITH(EINVAL, .sample_us = 100001, .aggr_us = 100000);
	NEW_WITH(EINVAL, .sample_us = 200000); /* above the default aggr_us */
	NEW_WITH(EINVAL, .aggr_us = 1000);     /* below the default sample_us */

	/* region bounds */
	NEW_WITH(EINVAL, .min_nr_regions = 1);
	NEW_WITH(EINVAL, .min_nr_regions = 2);
	NEW_WITH(0, .min_nr_regions = 3);
	NEW_WITH(0, .min_nr_regions = 3, .max_nr_regions = 3);
	NEW_WITH(EINVAL, .min_nr_regions = 20, .max_nr_regions = 10);
	NEW_WITH(EINVAL, .min_nr_regions = 2000); /* above the default max */
	NEW_WITH(EINVAL, .max_nr_regions = 5);	  /* below the default min */

	/* allocator hooks: both or neither */
	NEW_WITH(0, .malloc_fn = hook_malloc, .free_fn = hook_free);
	NEW_WITH(EINVAL, .malloc_fn = hook_malloc);
	NEW_WITH(EINVAL, .free_fn = hook_free);
#undef NEW_WITH

	/* The defaults, as damon_ctx_get_attrs() reports them. */
	{
		struct damon_attrs a = {.sz = sizeof(a)};
		damon_ctx *ctx;

		CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
		EXPECT_OK(damon_ctx_get_attrs(ctx, &a));
		EXPECT_EQ(a.sz, sizeof(a));
		EXPECT_EQ(a.sample_us, 5000);
		EXPECT_EQ(a.aggr_us, 100000);
		EXPECT_EQ(a.update_us, 1000000);
		EXPECT_EQ(a.min_nr_regions, 10);
		EXPECT_EQ(a.max_nr_regions, 1000);
		EXPECT_EQ(damon_ctx_backend(ctx), DAMON_BACKEND_AUTO);
		a.sz = sizeof(size_t);
		EXPECT_FAIL(ctx, damon_ctx_get_attrs(ctx, &a), EINVAL);
		damon_ctx_unref(ctx);
	}
}

static void test_set_attrs(void)
{
	damon_ctx *ctx;
	struct damon_attrs good = {.sz = sizeof(good),
				   .sample_us = 2000,
				   .aggr_us = 40000,
				   .update_us = 400000,
				   .min_nr_regions = 5,
				   .max_nr_regions = 50};
	struct damon_attrs a, got = {.sz = sizeof(got)};
	struct {
		struct damon_attrs a;
		unsigned char tail[8];
	} big;

	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
	EXPECT_OK(damon_ctx_set_attrs(ctx, &good));
	EXPECT_OK(damon_ctx_get_attrs(ctx, &got));
	EXPECT_EQ(got.sample_us, 2000);
	EXPECT_EQ(got.aggr_us, 40000);
	EXPECT_EQ(got.update_us, 400000);
	EXPECT_EQ(got.min_nr_regions, 5);
	EXPECT_EQ(got.max_nr_regions, 50);

#define SET_BAD(field, value)                                           \
	do {                                                            \
		a = good;                                               \
		a.field = value;                                        \
		EXPECT_FAIL(ctx, damon_ctx_set_attrs(ctx, &a), EINVAL); \
	} while (0)
	SET_BAD(sz, 0);
	SET_BAD(sz, sizeof(size_t));
	SET_BAD(sample_us, 0);
	SET_BAD(aggr_us, 0);
	SET_BAD(update_us, 0);
	SET_BAD(sample_us, 40001);
	SET_BAD(min_nr_regions, 2);
	SET_BAD(min_nr_regions, 0);
	SET_BAD(min_nr_regions, 51);
#undef SET_BAD
	/* a failed call leaves the attributes alone */
	EXPECT_OK(damon_ctx_get_attrs(ctx, &got));
	EXPECT_EQ(got.sample_us, 2000);
	EXPECT_EQ(got.min_nr_regions, 5);

	memset(&big, 0, sizeof(big));
	big.a = good;
	big.a.sz = sizeof(big);
	EXPECT_OK(damon_ctx_set_attrs(ctx, &big.a));
	big.tail[3] = 1;
	EXPECT_FAIL(ctx, damon_ctx_set_attrs(ctx, &big.a), EINVAL);
	damon_ctx_unref(ctx);
}

/* ------------------------------------------------------------------------ */
/* targets and ranges                                                       */
/* ------------------------------------------------------------------------ */

static void test_targets(void)
{
	damon_ctx *ctx;
	damon_target *t = NULL, *t2 = NULL;
	damon_target *const sentinel = (damon_target *)&sentinel;
	pid_t gone = dead_pid();

	CU_ASSERT_FATAL(gone > 0);

	/* vaddr */
	ctx = new_ctx(DAMON_OPS_VADDR, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	t = sentinel;
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, -1, &t), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, -12345, &t), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, gone, &t), ESRCH);
	EXPECT(t == sentinel, "ret untouched on failure");
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT(t != sentinel && t != NULL, "target returned");
	EXPECT_EQ(damon_target_pid(t), getpid());
	EXPECT_OK(damon_ctx_add_target(ctx, getpid(), &t2));
	EXPECT_EQ(damon_target_pid(t2), getpid());
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x10000, 0x20000), EINVAL);
	damon_ctx_unref(ctx);

	/* paddr: pid must be 0, one target only */
	ctx = new_ctx(DAMON_OPS_PADDR, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, getpid(), &t), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, 1, &t), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, -1, &t), EINVAL);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, 0, &t2), EINVAL);
	EXPECT_OK(damon_target_add_range(t, 1 * MiB, 2 * MiB));
	EXPECT_FAIL(ctx, damon_target_add_range(t, 1 * MiB + 4096, 3 * MiB), EINVAL);
	damon_ctx_unref(ctx);

	/* fvaddr ranges */
	ctx = new_ctx(DAMON_OPS_FVADDR, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_FAIL(ctx, damon_ctx_add_target(ctx, gone, &t), ESRCH);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x20000, 0x10000), EINVAL); /* inverted */
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x10000, 0x10000), EINVAL); /* empty */
	EXPECT_FAIL(ctx, damon_target_add_range(t, UINT64_MAX, 0), EINVAL);
	EXPECT_OK(damon_target_add_range(t, 0x100000, 0x200000));
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x100000, 0x200000), EINVAL); /* same */
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x80000, 0x100001), EINVAL);	 /* left */
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x1ff000, 0x300000), EINVAL); /* right */
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x140000, 0x150000), EINVAL); /* inside */
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x0, 0x400000), EINVAL);	 /* around */
	EXPECT_OK(damon_target_add_range(t, 0x200000, 0x300000)); /* adjacent is fine */
	EXPECT_OK(damon_target_add_range(t, 0x80000, 0x100000));  /* on both sides */
	EXPECT_OK(damon_target_add_range(t, 0x1000000, 0x2000000));
	EXPECT_FAIL(ctx, damon_target_add_range(t, 0x80000, 0x1000001), EINVAL);
	/* another target has its own ranges */
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t2));
	EXPECT_OK(damon_target_add_range(t2, 0x100000, 0x200000));
	damon_ctx_unref(ctx);
}

/* ------------------------------------------------------------------------ */
/* lifecycle: start, stop, commit, step, snapshot, hotness                  */
/* ------------------------------------------------------------------------ */

static void test_lifecycle(void)
{
	const size_t len = 8 * MiB;
	uint8_t *buf = map_buf(len + MiB); /* one MiB mapped but not monitored */
	uint64_t b, next = 0;
	struct damon_hotness h = {.sz = sizeof(h)};
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damon_ctx_status st = {.sz = sizeof(st)};
	struct damon_region reg;
	damon_snapshot *s = NULL;
	damon_target *t;
	damon_ctx *ctx;
	size_t n;
	int fd0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	b = (uint64_t)(uintptr_t)buf;
	ctx = new_ctx(DAMON_OPS_FVADDR, DAMON_CTX_MANUAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);

	/* nothing to run yet */
	EXPECT_FAIL(ctx, damon_ctx_start(ctx), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_stop(ctx), EALREADY);
	EXPECT_FAIL(ctx, damon_ctx_commit(ctx), EALREADY);
	EXPECT_FAIL(ctx, damon_ctx_step(ctx, &next), EALREADY);
	EXPECT_FAIL(ctx, damon_ctx_pause(ctx), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_resume(ctx), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_snapshot(ctx, &s), EAGAIN);
	EXPECT_ERR(damon_ctx_hotness(ctx, b, len, &h), EAGAIN);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_FAIL(ctx, damon_ctx_start(ctx), EINVAL); /* fvaddr without ranges */
	EXPECT_ERR(damon_target_hotness(t, b, len, &h), EAGAIN);
	EXPECT_OK(damon_target_add_range(t, b, b + len));
	EXPECT_EQ(damon_ctx_backend(ctx), DAMON_BACKEND_AUTO);
	EXPECT(damon_ctx_fd(ctx) >= 0, "an fd before start: %d", damon_ctx_fd(ctx));
	fd0 = damon_ctx_fd(ctx);

	/* hotness argument checks come first */
	EXPECT_ERR(damon_ctx_hotness(ctx, b, 0, &h), EINVAL);
	EXPECT_ERR(damon_ctx_hotness(ctx, UINT64_MAX - 4095, 8192, &h), EINVAL);
	EXPECT_ERR(damon_ctx_hotness(ctx, 1, UINT64_MAX, &h), EINVAL);
	h.sz = offsetof(struct damon_hotness, snapshot_seq);
	EXPECT_ERR(damon_ctx_hotness(ctx, b, len, &h), EINVAL);
	h.sz = 0;
	EXPECT_ERR(damon_target_hotness(t, b, len, &h), EINVAL);
	h.sz = sizeof(h);

	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT_EQ(damon_ctx_backend(ctx), DAMON_BACKEND_UFFD_WP);
	EXPECT_FAIL(ctx, damon_ctx_start(ctx), EBUSY);
	EXPECT_FAIL(ctx, damon_target_add_range(t, b + len, b + 2 * len), EBUSY);
	/* running, but no aggregation has ended yet */
	EXPECT_FAIL(ctx, damon_ctx_snapshot(ctx, &s), EAGAIN);
	EXPECT_ERR(damon_ctx_hotness(ctx, b, len, &h), EAGAIN);
	EXPECT_ERR(damon_ctx_hotness(ctx, b, 0, &h), EINVAL);
	EXPECT_OK(damon_ctx_status(ctx, &st));
	EXPECT_EQ(st.running, 1);
	EXPECT_EQ(st.backend, DAMON_BACKEND_UFFD_WP);

	EXPECT(drive_seq(ctx, 2, 5000) >= 2, "two snapshots within 5 s");
	CU_ASSERT_EQUAL_FATAL(damon_ctx_snapshot(ctx, &s), 0);
	EXPECT_OK(damon_snapshot_info(s, &info));
	EXPECT(info.seq >= 2, "seq %llu", (unsigned long long)info.seq);
	EXPECT_EQ(info.backend, DAMON_BACKEND_UFFD_WP);
	EXPECT_EQ(info.nr_targets, 1);
	EXPECT(info.sees & DAMON_SEES_WRITES, "uffd_wp sees writes: 0x%x", info.sees);
	info.sz = 4;
	EXPECT_ERR(damon_snapshot_info(s, &info), EINVAL);
	EXPECT(damon_snapshot_ref(s) == s, "damon_snapshot_ref() returns its argument");
	EXPECT(damon_snapshot_unref(s) == NULL, "damon_snapshot_unref() returns NULL");

	/* regions cover exactly the fvaddr range, in order */
	n = damon_snapshot_nr_regions(s);
	EXPECT(n >= 3, "nr_regions %zu >= min_nr_regions", n);
	{
		uint64_t at = b;

		for (size_t i = 0; i < n; i++) {
			memset(&reg, 0, sizeof(reg));
			reg.sz = sizeof(reg);
			if (damon_snapshot_region(s, i, &reg)) {
				CU_FAIL("damon_snapshot_region");
				break;
			}
			EXPECT(reg.start == at, "region %zu starts at 0x%llx, expected 0x%llx", i,
			       (unsigned long long)reg.start, (unsigned long long)at);
			EXPECT(reg.end > reg.start, "region %zu not empty", i);
			EXPECT(reg.access_rate_bp <= 10000, "rate %u", reg.access_rate_bp);
			EXPECT_EQ(reg.target_idx, 0);
			at = reg.end;
		}
		EXPECT(at == b + len, "regions end at 0x%llx, expected 0x%llx",
		       (unsigned long long)at, (unsigned long long)(b + len));
	}
	reg.sz = sizeof(reg);
	EXPECT_ERR(damon_snapshot_region(s, n, &reg), ERANGE);
	EXPECT_ERR(damon_snapshot_region(s, n + 1000, &reg), ERANGE);
	EXPECT_ERR(damon_snapshot_region(s, SIZE_MAX, &reg), ERANGE);
	reg.sz = offsetof(struct damon_region, target_idx);
	EXPECT_ERR(damon_snapshot_region(s, 0, &reg), EINVAL);
	reg.sz = 0;
	EXPECT_ERR(damon_snapshot_region(s, 0, &reg), EINVAL);

	/* hotness: covered, partly covered, not covered */
	EXPECT_OK(damon_ctx_hotness(ctx, b, len, &h));
	EXPECT_EQ(h.bytes_covered, len);
	EXPECT(h.snapshot_seq >= info.seq, "hotness seq %llu >= %llu",
	       (unsigned long long)h.snapshot_seq, (unsigned long long)info.seq);
	EXPECT(h.access_rate_bp <= 10000, "rate %u", h.access_rate_bp);
	EXPECT_OK(damon_target_hotness(t, b - MiB, 2 * MiB, &h));
	EXPECT_EQ(h.bytes_covered, MiB);
	EXPECT_ERR(damon_ctx_hotness(ctx, b + len, MiB, &h), ENOENT);
	EXPECT_ERR(damon_ctx_hotness(ctx, b - MiB, MiB, &h), ENOENT);
	EXPECT_ERR(damon_target_hotness(t, b + 2 * len, 4096, &h), ENOENT);
	EXPECT_ERR(damon_ctx_hotness(ctx, 4096, 4096, &h), ENOENT);
	damon_snapshot_unrefp(&s);

	EXPECT_OK(damon_ctx_commit(ctx));
	EXPECT(drive_seq(ctx, info.seq + 1, 5000) > info.seq, "a snapshot after commit");
	EXPECT_OK(damon_ctx_stop(ctx));
	EXPECT_FAIL(ctx, damon_ctx_stop(ctx), EALREADY);
	EXPECT_FAIL(ctx, damon_ctx_commit(ctx), EALREADY);
	EXPECT_FAIL(ctx, damon_ctx_step(ctx, &next), EALREADY);
	EXPECT_FAIL(ctx, damon_ctx_pause(ctx), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_resume(ctx), EINVAL);
	/* the newest snapshot stays readable */
	EXPECT_OK(damon_ctx_snapshot(ctx, &s));
	damon_snapshot_unrefp(&s);
	EXPECT_OK(damon_ctx_hotness(ctx, b, len, &h));
	/* ranges may be added again once stopped, and it starts again */
	EXPECT_OK(damon_target_add_range(t, b + len, b + len + 4096));
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT(drive_seq(ctx, info.seq + 2, 5000) > info.seq + 1, "snapshots after a restart");
	/* the manual fd: one epoll set, the same number from new to unref (a
	 * backend adds and removes its own fds behind it) */
	{
		char path[64], link[64] = "";

		EXPECT_EQ(damon_ctx_fd(ctx), fd0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd0);
		EXPECT(readlink(path, link, sizeof(link) - 1) > 0 &&
			       !strcmp(link, "anon_inode:[eventpoll]"),
		       "the manual fd is an epoll set: %s", link);
	}
	/* unref while running (manual) */
	damon_ctx_unref(ctx);
	munmap(buf, len + MiB);
}

static void test_step_threaded(void)
{
	damon_ctx *ctx = new_ctx(DAMON_OPS_VADDR, 0);
	uint64_t next = 12345;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_FAIL(ctx, damon_ctx_step(ctx, &next), EINVAL);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, NULL));
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT_FAIL(ctx, damon_ctx_step(ctx, &next), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_step(ctx, NULL), EINVAL);
	EXPECT_EQ(next, 12345); /* written only on success */
	EXPECT_FAIL(ctx, damon_ctx_start(ctx), EBUSY);
	EXPECT(wait_seq(ctx, 1, 5000) >= 1, "a snapshot from the library thread within 5 s");
	EXPECT_OK(damon_ctx_stop(ctx));
	EXPECT_FAIL(ctx, damon_ctx_stop(ctx), EALREADY);
	damon_ctx_unref(ctx);
}

/* ------------------------------------------------------------------------ */
/* pause and resume                                                         */
/* ------------------------------------------------------------------------ */

static bool fd_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

static uint32_t status_paused(damon_ctx *ctx)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};

	return damon_ctx_status(ctx, &st) == 0 ? st.paused : UINT32_MAX;
}

/*
 * Paused: no snapshot while 15 aggregation intervals pass, hotness answers
 * from the newest one, pause and resume idempotent, commit keeps it paused,
 * stop ends the pause; resumed: snapshots again. @manual: driven by
 * damon_ctx_step(), whose fd stays unreadable while paused.
 */
static void check_pause(bool manual)
{
	const size_t len = 4 * MiB;
	uint8_t *buf = map_buf(len);
	uint64_t b = (uint64_t)(uintptr_t)buf, seq, next = 0;
	struct damon_hotness h = {.sz = sizeof(h)};
	damon_ctx *ctx = new_ctx(DAMON_OPS_FVADDR, manual ? DAMON_CTX_MANUAL : 0);
	damon_target *t;
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	fd = damon_ctx_fd(ctx);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	EXPECT_OK(damon_target_add_range(t, b, b + len));
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT_EQ(status_paused(ctx), 0);
	seq = manual ? drive_seq(ctx, 2, 5000) : wait_seq(ctx, 2, 5000);
	EXPECT(seq >= 2, "two snapshots before the pause: %llu", (unsigned long long)seq);

	EXPECT_OK(damon_ctx_pause(ctx));
	EXPECT_OK(damon_ctx_pause(ctx)); /* idempotent */
	EXPECT_EQ(status_paused(ctx), 1);
	seq = dm_test_snap_seq(ctx);
	if (manual) {
		uint64_t end = now_ms() + 300;

		EXPECT(!fd_readable(fd, 300), "the manual fd stays unreadable while paused");
		while (now_ms() < end) {
			next = 0;
			EXPECT_OK(damon_ctx_step(ctx, &next));
			EXPECT_EQ(next, 200000); /* the update interval: nothing is due */
			memset(buf, 1, len);
			sleep_ms(20);
		}
	} else {
		for (int i = 0; i < 15; i++) { /* 15 aggregation intervals of 20 ms */
			memset(buf, 1, len);
			sleep_ms(20);
		}
	}
	EXPECT_EQ(dm_test_snap_seq(ctx), seq);
	EXPECT_OK(damon_ctx_hotness(ctx, b, len, &h)); /* the newest snapshot answers */
	EXPECT_EQ(h.snapshot_seq, seq);
	/* a commit keeps it paused */
	EXPECT_OK(damon_ctx_commit(ctx));
	if (manual)
		EXPECT(!fd_readable(fd, 100), "a commit does not wake a paused manual context");
	else
		sleep_ms(100);
	EXPECT_EQ(dm_test_snap_seq(ctx), seq);
	EXPECT_EQ(status_paused(ctx), 1);

	EXPECT_OK(damon_ctx_resume(ctx));
	EXPECT_OK(damon_ctx_resume(ctx)); /* idempotent */
	EXPECT_EQ(status_paused(ctx), 0);
	if (manual)
		EXPECT(fd_readable(fd, 0), "the manual fd is readable at once after resume");
	EXPECT((manual ? drive_seq(ctx, seq + 2, 5000) : wait_seq(ctx, seq + 2, 5000)) >= seq + 2,
	       "snapshots again after resume (seq was %llu)", (unsigned long long)seq);

	/* stopped while paused: the next start runs */
	EXPECT_OK(damon_ctx_pause(ctx));
	EXPECT_OK(damon_ctx_stop(ctx));
	EXPECT_EQ(status_paused(ctx), 0);
	EXPECT_FAIL(ctx, damon_ctx_resume(ctx), EINVAL);
	seq = dm_test_snap_seq(ctx);
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT_EQ(status_paused(ctx), 0);
	EXPECT((manual ? drive_seq(ctx, seq + 1, 5000) : wait_seq(ctx, seq + 1, 5000)) > seq,
	       "a restart after a paused stop runs");
	damon_ctx_unref(ctx);
	munmap(buf, len);
}

static void test_pause_threaded(void)
{
	check_pause(false);
}

static void test_pause_manual(void)
{
	check_pause(true);
}

static void test_ctx_ref(void)
{
	damon_ctx *ctx;

	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
	EXPECT(damon_ctx_ref(ctx) == ctx, "damon_ctx_ref() returns its argument");
	EXPECT(damon_ctx_unref(ctx) == NULL, "damon_ctx_unref() returns NULL");
	/* still alive: one reference left */
	EXPECT_OK(damon_ctx_add_target(ctx, 0, NULL));
	EXPECT(damon_ctx_unref(ctx) == NULL, "damon_ctx_unref() returns NULL");
}

/* ------------------------------------------------------------------------ */
/* schemes                                                                  */
/* ------------------------------------------------------------------------ */

static void test_damos_opts(void)
{
	struct damos_opts want, got;

	memset(&want, 0, sizeof(want));
	want.sz = sizeof(want);
	want.max_sz = UINT64_MAX;
	want.max_nr_accesses = UINT32_MAX;
	want.max_age = UINT32_MAX;

	memset(&got, 0xa5, sizeof(got));
	EXPECT_OK(damos_opts_init(&got));
	EXPECT_EQ(got.sz, sizeof(got));
	EXPECT(got.max_sz == UINT64_MAX, "max_sz 0x%llx", (unsigned long long)got.max_sz);
	EXPECT(got.max_nr_accesses == UINT32_MAX, "max_nr_accesses %u", got.max_nr_accesses);
	EXPECT(got.max_age == UINT32_MAX, "max_age %u", got.max_age);
	EXPECT_EQ(got.action, DAMOS_STAT);
	EXPECT_EQ(got.min_sz, 0);
	EXPECT_EQ(got.quota_bytes, 0);
	EXPECT_EQ(got.flags, 0);
	EXPECT(!memcmp(&got, &want, sizeof(got)), "every other byte zero");

	{
		DAMOS_OPTS(m);
		EXPECT(!memcmp(&m, &want, sizeof(m)), "DAMOS_OPTS() = damos_opts_init()");
	}
	{
		DAMOS_OPTS(m, .action = DAMOS_PAGEOUT, .min_nr_accesses = 5, .max_age = 10,
			   .quota_bytes = 1 << 20);
		EXPECT_EQ(m.sz, sizeof(m));
		EXPECT_EQ(m.action, DAMOS_PAGEOUT);
		EXPECT_EQ(m.min_nr_accesses, 5);
		EXPECT(m.max_nr_accesses == UINT32_MAX, "unset max stays unbounded: %u",
		       m.max_nr_accesses);
		EXPECT_EQ(m.max_age, 10);
		EXPECT(m.max_sz == UINT64_MAX, "max_sz 0x%llx", (unsigned long long)m.max_sz);
		EXPECT_EQ(m.quota_bytes, 1 << 20);
	}
}

static void test_add_scheme(void)
{
	struct damos_stats ds;
	struct {
		struct damos_opts o;
		unsigned char tail[16];
	} big;
	damos *const sentinel = (damos *)&sentinel;
	damos *sc = sentinel;
	struct damos_opts o;
	damon_ctx *ctx = new_ctx(DAMON_OPS_VADDR, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);

	/* sz */
	damos_opts_init(&o);
	o.sz = 0;
	EXPECT_FAIL(ctx, damon_ctx_add_scheme(ctx, &o, &sc), EINVAL);
	o.sz = offsetof(struct damos_opts, flags);
	EXPECT_FAIL(ctx, damon_ctx_add_scheme(ctx, &o, &sc), EINVAL);
	memset(&big, 0, sizeof(big));
	damos_opts_init(&big.o);
	big.o.sz = sizeof(big);
	EXPECT_OK(damon_ctx_add_scheme(ctx, &big.o, NULL));
	big.tail[5] = 7;
	EXPECT_FAIL(ctx, damon_ctx_add_scheme(ctx, &big.o, &sc), EINVAL);
	EXPECT(sc == sentinel, "ret untouched on failure");

	/* pattern: min > max */
#define SCHEME_BAD(code, ...)                                                \
	do {                                                                 \
		DAMOS_OPTS(x_, __VA_ARGS__);                                 \
		EXPECT_FAIL(ctx, damon_ctx_add_scheme(ctx, &x_, &sc), code); \
	} while (0)
	SCHEME_BAD(EINVAL, .min_sz = 8192, .max_sz = 4096);
	SCHEME_BAD(EINVAL, .min_nr_accesses = 3, .max_nr_accesses = 2);
	SCHEME_BAD(EINVAL, .min_age = 10, .max_age = 9);
	/* an unset maximum in a hand-zeroed struct is 0, so min > max */
	memset(&o, 0, sizeof(o));
	o.sz = sizeof(o);
	o.min_nr_accesses = 1;
	EXPECT_FAIL(ctx, damon_ctx_add_scheme(ctx, &o, &sc), EINVAL);
	/* ... while max 0 with min 0 is the kernel's "never accessed" */
	memset(&o, 0, sizeof(o));
	o.sz = sizeof(o);
	EXPECT_OK(damon_ctx_add_scheme(ctx, &o, NULL));

	/* watermarks not high >= mid >= low */
	SCHEME_BAD(EINVAL, .wmarks_metric = DAMOS_WMARK_FREE_MEM_RATE, .wmarks_high = 100,
		   .wmarks_mid = 200, .wmarks_low = 50);
	SCHEME_BAD(EINVAL, .wmarks_metric = DAMOS_WMARK_FREE_MEM_RATE, .wmarks_high = 500,
		   .wmarks_mid = 200, .wmarks_low = 300);

	/* actions */
	SCHEME_BAD(EINVAL, .action = DAMOS_LRU_DEPRIO + 1);
	SCHEME_BAD(EINVAL, .action = UINT32_MAX);
	SCHEME_BAD(EINVAL, .flags = 1u << 7);
	EXPECT(sc == sentinel, "ret untouched on failure");
	/* With AUTO every action is accepted here and judged at start. */
	{
		damon_ctx *actx = NULL;

		EXPECT_OK(damon_ctx_new(&actx, NULL));
		for (uint32_t a = DAMOS_STAT; a <= DAMOS_LRU_DEPRIO && actx; a++) {
			DAMOS_OPTS(x, .action = a);

			EXPECT_OK(damon_ctx_add_scheme(actx, &x, NULL));
		}
		damon_ctx_unref(actx);
	}
	/* An explicit writes-only backend refuses cold-side actions unless the
	 * scheme opts in, and LRU sorting always. */
	{
		DAMON_OPTS(damon_ctx_opts, co, .backend = DAMON_BACKEND_UFFD_WP);
		damon_ctx *wctx = NULL;
		damon_ctx *keep = ctx;

		EXPECT_OK(damon_ctx_new(&wctx, &co));
		ctx = wctx;
		for (uint32_t a = DAMOS_STAT; a <= DAMOS_LRU_DEPRIO; a++) {
			bool cold = a == DAMOS_COLD || a == DAMOS_PAGEOUT || a == DAMOS_NOHUGEPAGE ||
				    a == DAMOS_MIGRATE_COLD || a == DAMOS_LRU_DEPRIO;
			bool lru = a == DAMOS_LRU_PRIO || a == DAMOS_LRU_DEPRIO;
			DAMOS_OPTS(x, .action = a);

			if (cold)
				SCHEME_BAD(EOPNOTSUPP, .action = a);
			if (lru)
				SCHEME_BAD(EOPNOTSUPP, .action = a, .flags = DAMOS_F_ALLOW_WRITES_ONLY);
			else if (cold) {
				x.flags = DAMOS_F_ALLOW_WRITES_ONLY;
				EXPECT_OK(damon_ctx_add_scheme(ctx, &x, NULL));
			} else {
				EXPECT_OK(damon_ctx_add_scheme(ctx, &x, NULL));
			}
		}
		EXPECT(strstr(damon_ctx_errmsg(ctx), "kernel backend") != NULL,
		       "lru sentence names the kernel backend: \"%s\"", damon_ctx_errmsg(ctx));
		damon_ctx_unref(wctx);
		ctx = keep;
	}
#undef SCHEME_BAD
	EXPECT(sc == sentinel, "ret untouched on failure");

	{
		DAMOS_OPTS(ok, .min_nr_accesses = 1);
		EXPECT_OK(damon_ctx_add_scheme(ctx, &ok, &sc));
		EXPECT(sc != sentinel && sc != NULL, "scheme returned");
	}
	memset(&ds, 0xff, sizeof(ds));
	ds.sz = sizeof(ds);
	EXPECT_OK(damos_get_stats(sc, &ds));
	EXPECT_EQ(ds.sz, sizeof(ds));
	EXPECT_EQ(ds.nr_tried, 0);
	EXPECT_EQ(ds.nr_snapshots, 0);
	ds.sz = offsetof(struct damos_stats, nr_snapshots);
	EXPECT_ERR(damos_get_stats(sc, &ds), EINVAL);
	damon_ctx_unref(ctx);
}

/* ------------------------------------------------------------------------ */
/* errmsg is per thread                                                     */
/* ------------------------------------------------------------------------ */

struct errmsg_arg {
	damon_ctx *ctx;
	int rc;
	char msg[512];
	char before[512];
};

static void *errmsg_thread(void *p)
{
	struct errmsg_arg *a = p;

	snprintf(a->before, sizeof(a->before), "%s", damon_ctx_errmsg(a->ctx));
	a->rc = damon_ctx_add_target(a->ctx, -7, NULL);
	snprintf(a->msg, sizeof(a->msg), "%s", damon_ctx_errmsg(a->ctx));
	return NULL;
}

static void test_errmsg_per_thread(void)
{
	struct damon_attrs bad = {.sz = sizeof(bad),
				  .sample_us = 10,
				  .aggr_us = 5,
				  .update_us = 100,
				  .min_nr_regions = 10,
				  .max_nr_regions = 100};
	struct errmsg_arg b = {0};
	char mine[512];
	damon_ctx *ctx;
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
	EXPECT_FAIL(ctx, damon_ctx_set_attrs(ctx, &bad), EINVAL);
	snprintf(mine, sizeof(mine), "%s", damon_ctx_errmsg(ctx));

	b.ctx = ctx;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, errmsg_thread, &b), 0);
	pthread_join(th, NULL);
	EXPECT_EQ(b.rc, -EINVAL);
	EXPECT(!strcmp(b.before, ""), "a thread without failures reads \"\", got \"%s\"", b.before);
	EXPECT(is_sentence(b.msg), "thread B reads its own sentence, got \"%s\"", b.msg);
	EXPECT(strcmp(b.msg, mine), "thread B's sentence differs from A's: \"%s\"", b.msg);
	EXPECT(!strcmp(damon_ctx_errmsg(ctx), mine), "thread A still reads \"%s\", got \"%s\"",
	       mine, damon_ctx_errmsg(ctx));
	/* and a later failure in A replaces A's */
	EXPECT_FAIL(ctx, damon_ctx_stop(ctx), EALREADY);
	EXPECT(strcmp(damon_ctx_errmsg(ctx), mine), "A's sentence was replaced: \"%s\"",
	       damon_ctx_errmsg(ctx));
	damon_ctx_unref(ctx);
}

/* ------------------------------------------------------------------------ */
/* probing the host; /sys/kernel/mm/damon is never written                  */
/* ------------------------------------------------------------------------ */

struct sysfs_file {
	char *path;
	char *text;
	int err;
};

static struct {
	struct sysfs_file *v;
	size_t n, cap;
} walk;

static int walk_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	struct sysfs_file *f;
	char text[4096];
	ssize_t got = 0;
	int fd;

	if (type != FTW_F)
		return 0;
	if (walk.n == walk.cap) {
		size_t cap = walk.cap ? walk.cap * 2 : 64;
		struct sysfs_file *v = realloc(walk.v, cap * sizeof(*v));

		if (!v)
			return -1;
		walk.v = v;
		walk.cap = cap;
	}
	f = &walk.v[walk.n++];
	f->path = strdup(path);
	f->err = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		f->err = errno;
	} else {
		got = read(fd, text, sizeof(text) - 1);
		if (got < 0) {
			f->err = errno;
			got = 0;
		}
		close(fd);
	}
	text[got] = '\0';
	f->text = strdup(text);
	return 0;
}

static void walk_free(void)
{
	for (size_t i = 0; i < walk.n; i++) {
		free(walk.v[i].path);
		free(walk.v[i].text);
	}
	free(walk.v);
	memset(&walk, 0, sizeof(walk));
}

/* Read every file under /sys/kernel/mm/damon (reading only). */
static int sysfs_read(struct sysfs_file **v, size_t *n)
{
	memset(&walk, 0, sizeof(walk));
	if (access(HOST_DAMON, F_OK) == 0 && nftw(HOST_DAMON, walk_cb, 16, FTW_PHYS) < 0)
		return -1;
	*v = walk.v;
	*n = walk.n;
	memset(&walk, 0, sizeof(walk));
	return 0;
}

static void sysfs_free(struct sysfs_file *v, size_t n)
{
	walk.v = v;
	walk.n = n;
	walk_free();
}

static void test_probe(void)
{
	struct sysfs_file *before = NULL, *after = NULL;
	size_t nb = 0, na = 0;
	struct damon_backend_status st;
	damon_ctx *ctx;

	CU_ASSERT_EQUAL_FATAL(sysfs_read(&before, &nb), 0);
	printf("\n    %zu files under %s\n", nb, HOST_DAMON);

	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		memset(&st, 0xee, sizeof(st));
		st.sz = sizeof(st);
		EXPECT_OK(damon_probe(DAMON_OPS_VADDR, 0, b, &st));
		EXPECT_EQ(st.sz, sizeof(st));
		EXPECT_EQ(st.backend, b);
		EXPECT(st.usable <= 1, "usable %u", st.usable);
		EXPECT(memchr(st.reason, '\0', sizeof(st.reason)) != NULL, "reason terminated");
		EXPECT(is_sentence(st.reason), "%s: reason \"%.256s\"", damon_backend_name(b),
		       st.reason);
		EXPECT(!strncmp(st.reason, damon_backend_name(b), strlen(damon_backend_name(b))),
		       "reason names the backend: \"%.256s\"", st.reason);
		EXPECT(st.sees && !(st.sees & ~(uint32_t)(DAMON_SEES_READS | DAMON_SEES_WRITES)),
		       "sees 0x%x", st.sees);
		printf("    vaddr self %-10s usable=%u: %.256s\n", damon_backend_name(b), st.usable,
		       st.reason);
		if (b == DAMON_BACKEND_UFFD_WP) {
			EXPECT_EQ(st.usable, 1);
			EXPECT_EQ(st.sees, DAMON_SEES_WRITES);
		}
		if (b == DAMON_BACKEND_KERNEL)
			EXPECT_EQ(st.usable, 0);
		for (uint32_t ops = DAMON_OPS_VADDR; ops <= DAMON_OPS_PADDR; ops++) {
			st.sz = sizeof(st);
			EXPECT_OK(damon_probe(ops, 0, b, &st));
			EXPECT(is_sentence(st.reason), "ops %u %s: \"%.256s\"", ops,
			       damon_backend_name(b), st.reason);
		}
		/* uffd_wp monitors only the calling process */
		st.sz = sizeof(st);
		EXPECT_OK(damon_probe(DAMON_OPS_VADDR, 1, b, &st));
		if (b == DAMON_BACKEND_UFFD_WP)
			EXPECT_EQ(st.usable, 0);
		st.sz = sizeof(st);
		EXPECT_OK(damon_probe(DAMON_OPS_PADDR, 0, b, &st));
		if (b == DAMON_BACKEND_UFFD_WP)
			EXPECT_EQ(st.usable, 0);
	}
	st.sz = sizeof(st);
	EXPECT_ERR(damon_probe(DAMON_OPS_PADDR + 1, 0, DAMON_BACKEND_UFFD_WP, &st), EINVAL);
	EXPECT_ERR(damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_AUTO, &st), EINVAL);
	EXPECT_ERR(damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_MAX + 1, &st), EINVAL);
	EXPECT_ERR(damon_probe(DAMON_OPS_VADDR, -1, DAMON_BACKEND_UFFD_WP, &st), EINVAL);
	st.sz = 0;
	EXPECT_ERR(damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_UFFD_WP, &st), EINVAL);

	/* A context judged before and at start; AUTO picks uffd_wp here. */
	CU_ASSERT_EQUAL_FATAL(
		damon_ctx_new(&ctx, &(struct damon_ctx_opts){.sz = sizeof(struct damon_ctx_opts),
							     .flags = DAMON_CTX_MANUAL}),
		0);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, NULL));
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		st.sz = sizeof(st);
		EXPECT_OK(damon_ctx_backend_status(ctx, b, &st));
		EXPECT(is_sentence(st.reason), "\"%.256s\"", st.reason);
	}
	EXPECT_FAIL(ctx, damon_ctx_backend_status(ctx, DAMON_BACKEND_AUTO, &st), EINVAL);
	EXPECT_FAIL(ctx, damon_ctx_backend_status(ctx, DAMON_BACKEND_MAX + 1, &st), EINVAL);
	st.sz = 8;
	EXPECT_FAIL(ctx, damon_ctx_backend_status(ctx, DAMON_BACKEND_KERNEL, &st), EINVAL);
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT_EQ(damon_ctx_backend(ctx), DAMON_BACKEND_UFFD_WP);
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		st.sz = sizeof(st);
		EXPECT_OK(damon_ctx_backend_status(ctx, b, &st));
		/* fault can run here too, but only when asked for */
		EXPECT_EQ(st.usable, b == DAMON_BACKEND_UFFD_WP || b == DAMON_BACKEND_FAULT);
	}
	EXPECT(drive_seq(ctx, 1, 5000) >= 1, "a snapshot within 5 s");
	damon_ctx_unref(ctx);

	/* The fault backend, explicitly on another process: refused, with its
	 * reason (on this process it runs: test-fault). */
	{
		DAMON_OPTS(damon_ctx_opts, fo, .backend = DAMON_BACKEND_FAULT,
			   .flags = DAMON_CTX_MANUAL);

		CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &fo), 0);
		EXPECT_OK(damon_ctx_add_target(ctx, 1, NULL));
		EXPECT_FAIL(ctx, damon_ctx_start(ctx), EOPNOTSUPP);
		EXPECT(strstr(damon_ctx_errmsg(ctx), "fault") != NULL, "errmsg names it: \"%s\"",
		       damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
	}

	CU_ASSERT_EQUAL_FATAL(sysfs_read(&after, &na), 0);
	EXPECT_EQ(na, nb);
	for (size_t i = 0; i < nb && i < na; i++) {
		EXPECT(!strcmp(before[i].path, after[i].path), "same file: %s vs %s",
		       before[i].path, after[i].path);
		EXPECT(!strcmp(before[i].text, after[i].text) && before[i].err == after[i].err,
		       "%s unchanged: \"%s\" (err %d) then \"%s\" (err %d)", before[i].path,
		       before[i].text, before[i].err, after[i].text, after[i].err);
	}
	sysfs_free(before, nb);
	sysfs_free(after, na);
}

/* ------------------------------------------------------------------------ */
/* fork rule                                                                */
/* ------------------------------------------------------------------------ */

static int child_fails;

#define CHILD_EXPECT_ERR(call, code)                                                             \
	do {                                                                                     \
		int r_ = (call);                                                                 \
		if (r_ != -(code)) {                                                             \
			fprintf(stderr, "\n  child %s:%d: %s: expected -%s, got %d\n", __FILE__, \
				__LINE__, #call, #code, r_);                                     \
			child_fails++;                                                           \
		}                                                                                \
	} while (0)

static void test_fork(void)
{
	const size_t len = 4 * MiB;
	uint8_t *buf = map_buf(len);
	uint64_t b = (uint64_t)(uintptr_t)buf, seq;
	struct damon_hotness h = {.sz = sizeof(h)};
	struct damon_attrs a = {.sz = sizeof(a)};
	damon_ctx *ctx = new_ctx(DAMON_OPS_VADDR, 0);
	damon_target *t;
	damos *sc;
	int status = -1;
	pid_t pid;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	{
		DAMOS_OPTS(so);
		EXPECT_OK(damon_ctx_add_scheme(ctx, &so, &sc));
	}
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT(wait_seq(ctx, 2, 5000) >= 2, "two snapshots before fork");
	EXPECT_OK(damon_ctx_get_attrs(ctx, &a));

	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct damon_ctx_status st = {.sz = sizeof(st)};
		struct damon_backend_status bs = {.sz = sizeof(bs)};
		struct damos_stats ds = {.sz = sizeof(ds)};
		damon_snapshot *s = NULL;
		uint64_t next;
		DAMOS_OPTS(so);

		/* The child writes too: its copy of buf must not fault into
		 * the parent's userfaultfd. */
		memset(buf, 1, len);
		CHILD_EXPECT_ERR(damon_ctx_add_target(ctx, 0, NULL), ECHILD);
		CHILD_EXPECT_ERR(damon_target_add_range(t, b, b + len), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_start(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_stop(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_commit(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_set_attrs(ctx, &a), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_get_attrs(ctx, &a), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_backend(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_status(ctx, &st), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_backend_status(ctx, DAMON_BACKEND_UFFD_WP, &bs), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_step(ctx, &next), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_pause(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_resume(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_fd(ctx), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_snapshot(ctx, &s), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_hotness(ctx, b, len, &h), ECHILD);
		CHILD_EXPECT_ERR(damon_target_hotness(t, b, len, &h), ECHILD);
		CHILD_EXPECT_ERR(damon_ctx_add_scheme(ctx, &so, NULL), ECHILD);
		CHILD_EXPECT_ERR(damos_get_stats(sc, &ds), ECHILD);
		if (s) {
			fprintf(stderr, "\n  child: ret written on failure\n");
			child_fails++;
		}
		if (damon_ctx_unref(ctx) != NULL)
			child_fails++;
		_exit(child_fails ? 1 : 0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "child: every call -ECHILD and unref fine; status 0x%x", status);

	/* the parent's context goes on */
	seq = dm_test_snap_seq(ctx);
	EXPECT(wait_seq(ctx, seq + 2, 5000) >= seq + 2,
	       "new snapshots after the child left: "
	       "seq %llu then %llu",
	       (unsigned long long)seq, (unsigned long long)dm_test_snap_seq(ctx));
	memset(buf, 2, len);
	EXPECT_OK(damon_ctx_hotness(ctx, b, len, &h));
	{
		struct damon_ctx_status st = {.sz = sizeof(st)};

		EXPECT_OK(damon_ctx_status(ctx, &st));
		EXPECT_EQ(st.running, 1);
		EXPECT_EQ(st.error, 0);
	}
	EXPECT_OK(damon_ctx_stop(ctx));
	damon_ctx_unref(ctx);
	munmap(buf, len);
}

/* ------------------------------------------------------------------------ */
/* unref while running leaves no thread, no fd                              */
/* ------------------------------------------------------------------------ */

static void test_unref_running(void)
{
	int fds0 = dm_test_count_dir("/proc/self/fd"), threads1, fds1;
	damon_ctx *ctx = new_ctx(DAMON_OPS_VADDR, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, NULL));
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT(wait_seq(ctx, 1, 5000) >= 1, "a snapshot within 5 s");
	threads1 = dm_test_count_threads("damon-mon");
	EXPECT(threads1 == 1, "one library thread while running: %d", threads1);
	fds1 = dm_test_count_dir("/proc/self/fd");
	EXPECT(fds1 > fds0, "fds while running: %d then %d", fds0, fds1);
	damon_ctx_unref(ctx);
	EXPECT_EQ(dm_test_count_threads("damon-mon"), 0);
	EXPECT_EQ(dm_test_count_dir("/proc/self/fd"), fds0);

	/* the same with a manual context */
	ctx = new_ctx(DAMON_OPS_VADDR, DAMON_CTX_MANUAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_OK(damon_ctx_add_target(ctx, 0, NULL));
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT(drive_seq(ctx, 1, 5000) >= 1, "a snapshot within 5 s");
	EXPECT_EQ(dm_test_count_threads("damon-mon"), 0);
	damon_ctx_unref(ctx);
	EXPECT_EQ(dm_test_count_threads("damon-mon"), 0);
	EXPECT_EQ(dm_test_count_dir("/proc/self/fd"), fds0);
}

/* ------------------------------------------------------------------------ */
/* allocator hooks                                                          */
/* ------------------------------------------------------------------------ */

struct alloc_count {
	atomic_ulong allocs, frees;
};

static _Thread_local unsigned long my_allocs;

static void *count_malloc(size_t n, void *ud)
{
	struct alloc_count *c = ud;

	atomic_fetch_add(&c->allocs, 1);
	my_allocs++;
	return malloc(n);
}

static void count_free(void *p, void *ud)
{
	struct alloc_count *c = ud;

	atomic_fetch_add(&c->frees, 1);
	free(p);
}

static void test_alloc_hooks(void)
{
	struct alloc_count c;
	const size_t len = 4 * MiB;
	uint8_t *buf = map_buf(len);
	uint64_t b = (uint64_t)(uintptr_t)buf;
	struct damon_hotness h = {.sz = sizeof(h)};
	damon_target *t;
	damon_ctx *ctx;
	unsigned long mine;
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	atomic_init(&c.allocs, 0);
	atomic_init(&c.frees, 0);
	{
		DAMON_OPTS(damon_ctx_opts, o, .backend = DAMON_BACKEND_UFFD_WP, .sample_us = 1000,
			   .aggr_us = 20000, .update_us = 200000, .cpu_budget_permille = 500,
			   .malloc_fn = count_malloc, .free_fn = count_free, .alloc_userdata = &c);

		CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	}
	EXPECT_OK(damon_ctx_add_target(ctx, 0, &t));
	{
		DAMOS_OPTS(so);
		EXPECT_OK(damon_ctx_add_scheme(ctx, &so, NULL));
	}
	EXPECT_OK(damon_ctx_start(ctx));
	EXPECT(wait_seq(ctx, 3, 5000) >= 3, "three snapshots within 5 s");

	mine = my_allocs;
	for (int i = 0; i < 10000; i++) {
		buf[(size_t)(i % 1024) * 4096] = (uint8_t)i;
		if (damon_ctx_hotness(ctx, b, len, &h) != 0)
			bad++;
		if (damon_target_hotness(t, b + 4096, 4096, &h) != 0)
			bad++;
	}
	EXPECT_EQ(bad, 0);
	EXPECT(my_allocs == mine, "hotness allocated %lu times in 10000 calls", my_allocs - mine);
	damon_ctx_unref(ctx);
	EXPECT(atomic_load(&c.allocs) > 0, "the hooks saw allocations: %lu",
	       (unsigned long)atomic_load(&c.allocs));
	EXPECT(atomic_load(&c.allocs) == atomic_load(&c.frees),
	       "every allocation freed: %lu allocs, %lu frees",
	       (unsigned long)atomic_load(&c.allocs), (unsigned long)atomic_load(&c.frees));
	printf("\n    hooks: %lu allocations, %lu frees\n", (unsigned long)atomic_load(&c.allocs),
	       (unsigned long)atomic_load(&c.frees));
	munmap(buf, len);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "version", test_version },
		{ "backend names round trip", test_backend_names },
		{ "NULL handles and out-parameters", test_null_args },
		{ "damon_ctx_new options", test_ctx_new_opts },
		{ "set_attrs / get_attrs", test_set_attrs },
		{ "targets and ranges", test_targets },
		{ "lifecycle: start, stop, commit, step, snapshot, hotness", test_lifecycle },
		{ "step on a threaded context", test_step_threaded },
		{ "pause and resume, library thread", test_pause_threaded },
		{ "pause and resume, manual drive", test_pause_manual },
		{ "ref / unref", test_ctx_ref },
		{ "damos_opts_init and DAMOS_OPTS", test_damos_opts },
		{ "add_scheme errors", test_add_scheme },
		{ "errmsg per thread", test_errmsg_per_thread },
		{ "probe every backend, sysfs untouched", test_probe },
		{ "fork: -ECHILD in the child, parent goes on", test_fork },
		{ "unref while running: no thread, no fd left", test_unref_running },
		{ "allocator hooks; hotness never allocates", test_alloc_hooks },
		{ NULL, NULL },
	};

	return dm_test_run("api", tests);
}
