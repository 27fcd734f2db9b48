// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon_target_set_ranges() through the public API: its argument checks,
 * and on a live uffd_wp context of this process that the monitored set
 * follows the ranges at each commit (and only then), that regions of memory
 * kept across a commit keep their ages, and that ranges set while running
 * but never committed are in force at the next start.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "test-util.h"

#define MiB (1024ULL * 1024)

#define EXPECT_RET(call, want)                                                                 \
	do {                                                                                   \
		int r_ = (call);                                                               \
		if (r_ != (want))                                                              \
			fprintf(stderr, "\n  %s:%d: %s: expected %d, got %d (%s)\n", __FILE__, \
				__LINE__, #call, (want), r_, r_ < 0 ? strerror(-r_) : "ok");   \
		CU_ASSERT_EQUAL(r_, (want));                                                   \
	} while (0)

static damon_ctx *new_ctx(uint32_t ops)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = ops, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 1000, .aggr_us = 20000, .update_us = 200000,
		   .flags = DAMON_CTX_MANUAL, .cpu_budget_permille = 500);
	damon_ctx *ctx = NULL;

	if (damon_ctx_new(&ctx, &o) < 0)
		return NULL;
	return ctx;
}

static void test_args(void)
{
	struct damon_addr_range r[3] = {
		{0x300000, 0x400000},
		{0x100000, 0x200000},
		{0x200000, 0x280000},
	};
	damon_ctx *ctx = new_ctx(DAMON_OPS_VADDR);
	damon_target *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_RET(damon_target_set_ranges(NULL, r, 1), -EINVAL);
	EXPECT_RET(damon_ctx_add_target(ctx, 0, &t), 0);
	EXPECT_RET(damon_target_set_ranges(t, r, 1), -EINVAL); /* vaddr: from the maps */
	EXPECT(strstr(damon_ctx_errmsg(ctx), "vaddr") != NULL, "errmsg names vaddr: %s",
	       damon_ctx_errmsg(ctx));
	damon_ctx_unref(ctx);

	ctx = new_ctx(DAMON_OPS_FVADDR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	EXPECT_RET(damon_ctx_add_target(ctx, 0, &t), 0);
	EXPECT_RET(damon_target_set_ranges(t, NULL, 1), -EINVAL);
	EXPECT_RET(damon_target_set_ranges(t, r, 0), -EINVAL);
	{
		struct damon_addr_range bad[2] = {{0x100000, 0x100000}, {0x300000, 0x200000}};

		EXPECT_RET(damon_target_set_ranges(t, bad, 1), -EINVAL);     /* empty */
		EXPECT_RET(damon_target_set_ranges(t, bad + 1, 1), -EINVAL); /* inverted */
	}
	{
		/* out of order and overlapping: refused, whatever the order */
		struct damon_addr_range ov[3] = {
			{0x500000, 0x600000},
			{0x100000, 0x200000},
			{0x1ff000, 0x300000},
		};

		EXPECT_RET(damon_target_set_ranges(t, ov, 3), -EINVAL);
		EXPECT(strstr(damon_ctx_errmsg(ctx), "overlaps") != NULL, "errmsg: %s",
		       damon_ctx_errmsg(ctx));
	}
	/* a failed call left nothing: the target still has no range */
	EXPECT_RET(damon_ctx_start(ctx), -EINVAL);
	/* out of order, adjacent: fine; they replace what was there */
	EXPECT_RET(damon_target_add_range(t, 0x10000000, 0x20000000), 0);
	EXPECT_RET(damon_target_set_ranges(t, r, 3), 0);
	/* the replaced range is gone, the new ones are there */
	EXPECT_RET(damon_target_add_range(t, 0x10000000, 0x20000000), 0);
	EXPECT_RET(damon_target_add_range(t, 0x180000, 0x190000), -EINVAL);
	EXPECT_RET(damon_target_add_range(t, 0x400000, 0x500000), 0);
	damon_ctx_unref(ctx);
}

/* Step a manual context until a snapshot with seq >= @min (or 5 s). */
static uint64_t drive(damon_ctx *ctx, uint64_t min)
{
	return dm_test_drive_seq(ctx, min, 5000);
}

/* What the newest snapshot covers, as maximal runs of adjacent regions
 * (ranges separated by a gap stay apart); the oldest and youngest region
 * of each run. */
struct run {
	uint64_t start, end;
	uint32_t min_age, max_age;
};

static size_t snapshot_runs(damon_ctx *ctx, struct run *v, size_t cap)
{
	damon_snapshot *s = NULL;
	size_t n = 0;

	if (damon_ctx_snapshot(ctx, &s) < 0)
		return 0;
	for (size_t i = 0; i < damon_snapshot_nr_regions(s); i++) {
		struct damon_region r = {.sz = sizeof(r)};

		if (damon_snapshot_region(s, i, &r) < 0)
			break;
		if (n && v[n - 1].end == r.start) {
			v[n - 1].end = r.end;
			if (r.age < v[n - 1].min_age)
				v[n - 1].min_age = r.age;
			if (r.age > v[n - 1].max_age)
				v[n - 1].max_age = r.age;
			continue;
		}
		if (n == cap)
			break;
		v[n++] = (struct run){r.start, r.end, r.age, r.age};
	}
	damon_snapshot_unref(s);
	return n;
}

/* The snapshot covers exactly @want (sorted, separated by gaps). */
static void expect_covers(damon_ctx *ctx, const struct damon_addr_range *want, size_t nr,
			  const char *when)
{
	struct run v[8];
	size_t n = snapshot_runs(ctx, v, 8);

	EXPECT(n == nr, "%s: %zu separate runs of regions, got %zu", when, nr, n);
	for (size_t i = 0; i < n && i < nr; i++)
		EXPECT(v[i].start == want[i].start && v[i].end == want[i].end,
		       "%s: run %zu is [0x%llx, 0x%llx), expected [0x%llx, 0x%llx)", when, i,
		       (unsigned long long)v[i].start, (unsigned long long)v[i].end,
		       (unsigned long long)want[i].start, (unsigned long long)want[i].end);
}

static void test_live(void)
{
	struct damon_backend_status st = {.sz = sizeof(st)};
	const uint64_t part = 4 * MiB;
	uint8_t *buf;
	uint64_t b, seq;
	damon_target *t;
	damon_ctx *ctx;

	if (damon_probe(DAMON_OPS_FVADDR, 0, DAMON_BACKEND_UFFD_WP, &st) < 0 || !st.usable) {
		printf("\n    skipped: uffd_wp cannot run here: %s\n", st.reason);
		return;
	}
	/* Three parts A, B, C with unmonitored 2 MiB gaps between them, so
	 * that regions of different parts never touch (nor merge). */
	buf = mmap(NULL, 3 * part + 4 * MiB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	CU_ASSERT_FATAL(buf != MAP_FAILED);
	b = (uint64_t)(uintptr_t)buf;
	{
		const struct damon_addr_range A = {b, b + part};
		const struct damon_addr_range B = {b + part + 2 * MiB, b + 2 * part + 2 * MiB};
		const struct damon_addr_range C = {b + 2 * part + 4 * MiB, b + 3 * part + 4 * MiB};
		const struct damon_addr_range ab[2] = {A, B}, bc[2] = {B, C}, cb[2] = {C, B};
		struct run before[8], after[8];

		ctx = new_ctx(DAMON_OPS_FVADDR);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
		EXPECT_RET(damon_ctx_add_target(ctx, 0, &t), 0);
		EXPECT_RET(damon_target_set_ranges(t, ab, 2), 0);
		EXPECT_RET(damon_ctx_start(ctx), 0);
		seq = drive(ctx, 5);
		EXPECT(seq >= 5, "five snapshots within 5 s, got %llu", (unsigned long long)seq);
		expect_covers(ctx, ab, 2, "after start with A, B");

		/* set, not yet committed: nothing changes */
		EXPECT_RET(damon_target_set_ranges(t, cb, 2), 0);
		seq = drive(ctx, seq + 2);
		expect_covers(ctx, ab, 2, "set but not committed");
		EXPECT(snapshot_runs(ctx, before, 8) == 2, "two runs before the commit");

		/* committed: B stays with its ages, A leaves, C comes new */
		EXPECT_RET(damon_ctx_commit(ctx), 0);
		seq = drive(ctx, seq + 1);
		expect_covers(ctx, bc, 2, "after the commit");
		if (snapshot_runs(ctx, after, 8) == 2) {
			EXPECT(after[0].min_age >= before[1].min_age,
			       "B keeps its regions' ages: youngest %u before, %u after",
			       before[1].min_age, after[0].min_age);
			EXPECT(after[1].max_age < after[0].min_age,
			       "C is new: its oldest region (age %u) is younger than B's "
			       "youngest (%u)",
			       after[1].max_age, after[0].min_age);
		}

		/* set while running, stopped before any commit: in force at the
		 * next start */
		EXPECT_RET(damon_target_set_ranges(t, &A, 1), 0);
		EXPECT_RET(damon_ctx_stop(ctx), 0);
		EXPECT_RET(damon_ctx_start(ctx), 0);
		drive(ctx, dm_test_snap_seq(ctx) + 2);
		expect_covers(ctx, &A, 1, "set while running, then stop and start");
		damon_ctx_unref(ctx);
	}
	munmap(buf, 3 * part + 4 * MiB);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{"set_ranges argument checks", test_args},
		{"set_ranges on a running context follows each commit", test_live},
		{NULL, NULL},
	};

	return dm_test_run("ranges", tests);
}
