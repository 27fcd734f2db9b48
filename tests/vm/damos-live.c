// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damos-live — DAMOS executed by libdamon's core (uffd_wp backend) on a real
 * kernel in the VM. Statically linked against libdamon.a (and libnuma.a).
 *
 *   damos-live pageout     needs swap (run-vm.sh --zram): a pageout scheme on
 *                          never-written memory of a 96 MiB anonymous buffer
 *                          lowers its resident size; the hot 16 MiB stays;
 *                          sz_applied matches what left memory; with a bytes
 *                          quota, no reset interval charges more than it
 *   damos-live migrate     needs two nodes (run-vm.sh --numa): migrate_cold
 *                          to node 1 moves the cold pages there and none of
 *                          the hot ones
 *
 * Exit 0 when everything held, 1 otherwise, 77 when the VM lacks swap or a
 * second node (said in a sentence).
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#define MiB (1024UL * 1024)
#define SIZE (96 * MiB)
#define HOT (16 * MiB)

static char *buf;
static atomic_bool stop;

static void *writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		for (size_t off = 0; off < HOT; off += 4096)
			buf[off]++;
	return NULL;
}

static uint64_t resident(const char *p, size_t sz)
{
	static unsigned char vec[SIZE / 4096];
	uint64_t n = 0;

	if (mincore((void *)p, sz, vec))
		return 0;
	for (size_t i = 0; i < sz / 4096; i++)
		n += vec[i] & 1;
	return n * 4096;
}

/* Pages of [p, p + sz) on node @nid. */
static uint64_t on_node(char *p, size_t sz, int nid)
{
	enum { BATCH = 512 };
	void *pages[BATCH];
	int status[BATCH];
	uint64_t n = 0;

	for (size_t off = 0; off < sz; off += BATCH * 4096) {
		size_t k = 0;

		for (; k < BATCH && off + k * 4096 < sz; k++)
			pages[k] = p + off + k * 4096;
		if (numa_move_pages(0, k, pages, NULL, status, 0))
			continue;
		for (size_t i = 0; i < k; i++)
			n += status[i] == nid;
	}
	return n * 4096;
}

/* What the monitor saw, for the log. */
static void dump(damon_ctx *ctx, damos *s)
{
	struct damon_ctx_status cs = { .sz = sizeof(cs) };
	struct damos_stats st = { .sz = sizeof(st) };
	damon_snapshot *sn = NULL;

	damon_ctx_status(ctx, &cs);
	damos_get_stats(s, &st);
	printf("  %lu snapshots, aggr %lu us; scheme: %lu rounds, tried %lu regions / %lu MiB; "
	       "status \"%s\"\n", (unsigned long)cs.nr_snapshots, (unsigned long)cs.aggr_us,
	       (unsigned long)st.nr_snapshots, (unsigned long)st.nr_tried,
	       (unsigned long)(st.sz_tried / MiB), cs.message);
	if (damon_ctx_snapshot(ctx, &sn))
		return;
	for (size_t i = 0; i < damon_snapshot_nr_regions(sn); i++) {
		struct damon_region r = { .sz = sizeof(r) };

		damon_snapshot_region(sn, i, &r);
		printf("  [%+7.2f, %+7.2f) MiB nr_accesses %u age %u\n",
		       ((double)r.start - (double)(uintptr_t)buf) / MiB,
		       ((double)r.end - (double)(uintptr_t)buf) / MiB, r.nr_accesses, r.age);
	}
	damon_snapshot_unref(sn);
}

static damon_ctx *new_ctx(void)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_UFFD_WP,
		   .sample_us = 5000, .aggr_us = 100000, .min_nr_regions = 10,
		   .cpu_budget_permille = 1000);
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;

	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, 0, &t) ||
	    damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + SIZE)) {
		printf("damos-live: FAIL: context setup: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return NULL;
	}
	return ctx;
}

static int test_pageout(void)
{
	DAMOS_OPTS(o, .action = DAMOS_PAGEOUT, .max_nr_accesses = 0, .min_age = 5,
		   .quota_bytes = 8 * MiB, .quota_reset_interval_ms = 500, .weight_age = 1,
		   .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	struct damos_stats st = { .sz = sizeof(st) };
	struct damos_quota_state q = { .sz = sizeof(q) };
	uint64_t before, after, hot_after, max_charged = 0;
	damon_ctx *ctx = new_ctx();
	damos *s = NULL;
	int fail = 0;

	if (!ctx)
		return 1;
	if (damon_ctx_add_scheme(ctx, &o, &s) || damon_ctx_start(ctx)) {
		printf("damos-live: FAIL: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return 1;
	}
	before = resident(buf, SIZE);
	for (int i = 0; i < 150; i++) { /* 15 s */
		usleep(100000);
		if (!damos_get_quota(s, &q) && q.charged_sz > max_charged)
			max_charged = q.charged_sz;
	}
	damos_get_stats(s, &st);
	after = resident(buf, SIZE);
	hot_after = resident(buf, HOT);
	dump(ctx, s);
	damon_ctx_unref(ctx);
	printf("pageout: resident %lu -> %lu MiB (hot %lu of %lu MiB), applied %lu MiB in %lu "
	       "regions, qt_exceeds %lu, most charged in one reset interval %lu KiB\n",
	       before / MiB, after / MiB, hot_after / MiB, HOT / MiB, st.sz_applied / MiB,
	       st.nr_applied, st.qt_exceeds, max_charged / 1024);
	if (after > before - 32 * MiB) {
		printf("damos-live: FAIL: cold memory was not paged out\n");
		fail = 1;
	}
	if (hot_after < HOT * 9 / 10) {
		printf("damos-live: FAIL: the hot part was paged out\n");
		fail = 1;
	}
	if (max_charged > 8 * MiB) {
		printf("damos-live: FAIL: a reset interval charged more than the 8 MiB quota\n");
		fail = 1;
	}
	if (st.sz_applied + 4 * MiB < before - after || st.sz_applied > before - after + 4 * MiB)
		printf("damos-live: note: sz_applied %lu MiB, resident drop %lu MiB\n",
		       st.sz_applied / MiB, (before - after) / MiB);
	return fail;
}

static int test_migrate(void)
{
	DAMOS_OPTS(o, .action = DAMOS_MIGRATE_COLD, .target_nid = 1, .max_nr_accesses = 0,
		   .min_age = 5, .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	struct damos_stats st = { .sz = sizeof(st) };
	uint64_t cold1_before, cold1, hot1;
	damon_ctx *ctx = new_ctx();
	damos *s = NULL;
	int fail = 0;

	if (!ctx)
		return 1;
	cold1_before = on_node(buf + HOT, SIZE - HOT, 1);
	if (damon_ctx_add_scheme(ctx, &o, &s) || damon_ctx_start(ctx)) {
		printf("damos-live: FAIL: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return 1;
	}
	sleep(15);
	damos_get_stats(s, &st);
	dump(ctx, s);
	damon_ctx_unref(ctx);
	cold1 = on_node(buf + HOT, SIZE - HOT, 1);
	hot1 = on_node(buf, HOT, 1);
	printf("migrate_cold: cold on node 1 %lu -> %lu of %lu MiB, hot on node 1 %lu MiB, "
	       "applied %lu MiB\n", cold1_before / MiB, cold1 / MiB, (SIZE - HOT) / MiB,
	       hot1 / MiB, st.sz_applied / MiB);
	if (cold1 < (SIZE - HOT) / 2) {
		printf("damos-live: FAIL: cold pages did not move to node 1\n");
		fail = 1;
	}
	if (hot1 > HOT / 10) {
		printf("damos-live: FAIL: hot pages moved to node 1\n");
		fail = 1;
	}
	return fail;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	pthread_t th;
	int ret;

	if (!strcmp(what, "migrate") && (numa_available() < 0 || numa_max_node() < 1)) {
		printf("damos-live: SKIP: needs two NUMA nodes (run-vm.sh --numa)\n");
		return 77;
	}
	if (!strcmp(what, "pageout") && access("/dev/zram0", F_OK)) {
		printf("damos-live: SKIP: needs swap (run-vm.sh --zram)\n");
		return 77;
	}
	if (strcmp(what, "migrate") && strcmp(what, "pageout")) {
		fprintf(stderr, "usage: damos-live pageout|migrate\n");
		return 2;
	}
	{
		/* uffd_wp never arms a page inside a transparent huge page (that
		 * would split it): under THP "always" a THP-backed buffer is unseen.
		 * This test is about the actions, so the buffer gets 4 KiB pages. */
		FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
		char mode[128] = "";

		if (f && fgets(mode, sizeof(mode), f))
			printf("THP: %s", mode);
		if (f)
			fclose(f);
	}
	buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	madvise(buf, SIZE, MADV_NOHUGEPAGE);
	if (!strcmp(what, "migrate"))
		numa_setlocal_memory(buf, SIZE); /* node 0: the CPUs' node */
	memset(buf, 1, SIZE);
	pthread_create(&th, NULL, writer, NULL);
	ret = !strcmp(what, "pageout") ? test_pageout() : test_migrate();
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	printf("damos-live: %s\n", ret ? "FAIL" : "PASS");
	return ret;
}
