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
 *   damos-live migrate [page_idle [PERMILLE]]
 *                          needs two nodes (run-vm.sh --numa): migrate_cold
 *                          to node 1 moves the cold pages there and none of
 *                          the hot ones; with page_idle (root, the suite's own
 *                          kernel), the scheme of a tiering user, nr_accesses 0
 *                          and age >= 10, must have moved most of the cold part
 *                          within 25 s, at the overhead budget given (default
 *                          1000 permille)
 *   damos-live watermarks  free_mem_rate watermarks just under the free memory:
 *                          inactive (and monitoring idle: no snapshot, no
 *                          region tried) until a hog takes a fifth of memory,
 *                          active while it holds it, inactive after
 *   damos-live psi         needs swap and PSI (--zram; Debian has PSI on): a
 *                          some_mem_psi_us quota goal; the effective quota
 *                          grows while nothing stalls, shrinks while a hog
 *                          under a cgroup's memory.high stalls, grows after
 *
 * Exit 0 when everything held, 1 otherwise, 77 when the VM lacks swap, PSI or
 * a second node (said in a sentence).
 */
#include <dirent.h>
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "vm-util.h"

#define MiB (1024UL * 1024)
#define SIZE (96 * MiB)
#define HOT (16 * MiB)

static char *buf;
static atomic_bool stop;

static void *writer(void *arg)
{
	struct tlb_flusher fl = { 0 };
	bool flush = tlb_flusher_init(&fl) == 0;

	(void)arg;
	/* page_idle reads accessed bits: flush the TLB (vm-util.h) */
	while (!atomic_load(&stop))
		for (size_t off = 0; off < HOT; off += 4096) {
			buf[off]++;
			if (flush && (off & (64 * 4096 - 1)) == 0)
				tlb_flush_tick(&fl);
		}
	if (flush)
		tlb_flusher_fini(&fl);
	return NULL;
}

/* damos-live migrate page_idle [PERMILLE]: the backend and its budget */
static int backend = DAMON_BACKEND_UFFD_WP;
static uint32_t budget = 1000;

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
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)backend,
		   .sample_us = 5000, .aggr_us = 100000, .min_nr_regions = 10,
		   .cpu_budget_permille = budget);
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
	int secs = 15;
	struct damos_stats st = { .sz = sizeof(st) };
	uint64_t cold1_before, cold1, hot1;
	damon_ctx *ctx = new_ctx();
	damos *s = NULL;
	int fail = 0;

	if (!ctx)
		return 1;
	if (backend == DAMON_BACKEND_PAGE_IDLE) {
		/* a tiering user's scheme, as kernel DAMON runs it */
		o.min_age = 10;
		o.flags = 0;
		secs = 25;
	}
	cold1_before = on_node(0, (uintptr_t)buf + HOT, SIZE - HOT, 1);
	if (damon_ctx_add_scheme(ctx, &o, &s) || damon_ctx_start(ctx)) {
		printf("damos-live: FAIL: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return 1;
	}
	sleep((unsigned int)secs);
	damos_get_stats(s, &st);
	dump(ctx, s);
	damon_ctx_unref(ctx);
	cold1 = on_node(0, (uintptr_t)buf + HOT, SIZE - HOT, 1);
	hot1 = on_node(0, (uintptr_t)buf, HOT, 1);
	printf("migrate_cold on %s (budget %u permille), %d s: cold on node 1 %lu -> %lu of %lu "
	       "MiB, hot on node 1 %lu MiB, applied %lu MiB\n",
	       damon_backend_name(backend), budget, secs, cold1_before / MiB, cold1 / MiB,
	       (SIZE - HOT) / MiB, hot1 / MiB, st.sz_applied / MiB);
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

/* CPU time of this process's "damon-mon" thread, ms (0 when not found). */
static uint64_t monitor_cpu_ms(void)
{
	char path[300], line[512];
	uint64_t ms = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		unsigned long ut, st;
		const char *p;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && strstr(line, "(damon-mon)") &&
		    (p = strrchr(line, ')')) &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			   &st) == 2)
			ms = (uint64_t)(ut + st) * 1000 / (uint64_t)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	if (d)
		closedir(d);
	return ms;
}

/* Free memory in permil of the total, as the free_mem_rate watermark reads it. */
static uint32_t free_permil(void)
{
	unsigned long total = 0, fr = 0, v;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %lu kB", &v) == 1)
			total = v;
		else if (sscanf(line, "MemFree: %lu kB", &v) == 1)
			fr = v;
	}
	if (f)
		fclose(f);
	return total ? (uint32_t)(fr * 1000 / total) : 0;
}

struct phase {
	const char *name;
	uint32_t free_permil, active;
	uint64_t snapshots, tried, cpu_ms;
};

/* Watch @ctx / @s for @secs; the phase's growth of snapshots, nr_tried, CPU. */
static void watch(damon_ctx *ctx, damos *s, int secs, struct phase *ph)
{
	struct damon_ctx_status c0 = { .sz = sizeof(c0) }, c1 = { .sz = sizeof(c1) };
	struct damos_stats s0 = { .sz = sizeof(s0) }, s1 = { .sz = sizeof(s1) };
	struct damos_quota_state q = { .sz = sizeof(q) };
	uint64_t cpu0;

	usleep(500000); /* a few watermark checks (100 ms) to settle */
	damon_ctx_status(ctx, &c0);
	damos_get_stats(s, &s0);
	cpu0 = monitor_cpu_ms();
	sleep((unsigned int)secs);
	damon_ctx_status(ctx, &c1);
	damos_get_stats(s, &s1);
	damos_get_quota(s, &q);
	ph->free_permil = free_permil();
	ph->active = q.active;
	ph->snapshots = c1.nr_snapshots - c0.nr_snapshots;
	ph->tried = s1.nr_tried - s0.nr_tried;
	ph->cpu_ms = monitor_cpu_ms() - cpu0;
	printf("  %-10s free %3u permil, active %u: +%lu snapshots, +%lu regions tried, "
	       "monitor CPU %lu ms in %d s\n", ph->name, ph->free_permil, ph->active,
	       (unsigned long)ph->snapshots, (unsigned long)ph->tried,
	       (unsigned long)ph->cpu_ms, secs);
}

/*
 * free_mem_rate watermarks: high/mid just under the free memory now, so the
 * scheme starts inactive (free > high: monitoring idles), turns active when
 * a hog takes a fifth of memory (free < mid), inactive again when it is
 * given back (free > high).
 */
static int test_watermarks(void)
{
	uint32_t free0 = free_permil();
	DAMOS_OPTS(o, .action = DAMOS_STAT, .wmarks_metric = DAMOS_WMARK_FREE_MEM_RATE,
		   .wmarks_interval_us = 100000, .wmarks_high = free0 - 40,
		   .wmarks_mid = free0 - 80, .wmarks_low = 10);
	struct phase ph[3] = {{.name = "before"}, {.name = "hog"}, {.name = "after"}};
	size_t hog_sz = (size_t)sysconf(_SC_PHYS_PAGES) * 4096 / 5;
	damon_ctx *ctx = new_ctx();
	damos *s = NULL;
	char *hog;
	int fail = 0;

	if (!ctx)
		return 1;
	printf("watermarks: free_mem_rate high %u mid %u low %u permil, free now %u\n",
	       o.wmarks_high, o.wmarks_mid, o.wmarks_low, free0);
	if (damon_ctx_add_scheme(ctx, &o, &s) || damon_ctx_start(ctx)) {
		printf("damos-live: FAIL: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return 1;
	}
	watch(ctx, s, 3, &ph[0]);
	hog = mmap(NULL, hog_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hog == MAP_FAILED) {
		damon_ctx_unref(ctx);
		return 1;
	}
	memset(hog, 1, hog_sz);
	watch(ctx, s, 3, &ph[1]);
	munmap(hog, hog_sz);
	watch(ctx, s, 3, &ph[2]);
	dump(ctx, s);
	damon_ctx_unref(ctx);
	for (int i = 0; i < 3; i += 2)
		if (ph[i].active || ph[i].tried || ph[i].snapshots > 1) {
			printf("damos-live: FAIL: %s the hog (free above high) the scheme ran or "
			       "monitoring went on\n", ph[i].name);
			fail = 1;
		}
	if (!ph[1].active || !ph[1].tried || ph[1].snapshots < 10) {
		printf("damos-live: FAIL: the hog (free below mid) did not activate the scheme\n");
		fail = 1;
	}
	return fail;
}

/* Put @pid into a new cgroup v2 group whose memory.high is @high bytes. */
static int cgroup_cap(pid_t pid, unsigned long high)
{
	char v[32];
	FILE *f;

	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.procs", F_OK) &&
	    mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL))
		return -errno;
	mkdir("/sys/fs/cgroup/hog", 0755);
	if (!(f = fopen("/sys/fs/cgroup/cgroup.subtree_control", "we")))
		return -errno;
	fputs("+memory", f);
	if (fclose(f))
		return -errno;
	snprintf(v, sizeof(v), "%lu", high);
	if (!(f = fopen("/sys/fs/cgroup/hog/memory.high", "we")))
		return -errno;
	fputs(v, f);
	if (fclose(f))
		return -errno;
	snprintf(v, sizeof(v), "%d", (int)pid);
	if (!(f = fopen("/sys/fs/cgroup/hog/cgroup.procs", "we")))
		return -errno;
	fputs(v, f);
	return fclose(f) ? -errno : 0;
}

/* The "some" total of /proc/pressure/memory, us. Return: 0 or -errno. */
static int psi_some_us(uint64_t *ret)
{
	char line[256];
	unsigned long long v;
	int rc = -ENOENT;
	FILE *f = fopen("/proc/pressure/memory", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "some ", 5) && strstr(line, "total=") &&
		    sscanf(strstr(line, "total=") + 6, "%llu", &v) == 1) {
			*ret = v;
			rc = 0;
		}
	if (f)
		fclose(f);
	return rc;
}

/* esz at the end of @secs, sampled every 100 ms (the lowest and highest tuned
 * value too). */
static uint64_t esz_after(damos *s, int secs, uint64_t *lo, uint64_t *hi)
{
	struct damos_quota_state q = { .sz = sizeof(q) };

	*lo = UINT64_MAX;
	*hi = 0;
	for (int i = 0; i < secs * 10; i++) {
		usleep(100000);
		damos_get_quota(s, &q);
		if (q.esz == UINT64_MAX)
			continue; /* before the first reset interval: not tuned yet */
		*lo = q.esz < *lo ? q.esz : *lo;
		*hi = q.esz > *hi ? q.esz : *hi;
	}
	return q.esz;
}

/*
 * A some_mem_psi_us goal: the effective quota grows while memory stalls stay
 * under the target (nothing stalls), shrinks while a hog squeezed under a
 * cgroup's memory.high stalls far above it, grows again after.
 */
static int test_psi(void)
{
	DAMOS_OPTS(o, .action = DAMOS_STAT, .quota_reset_interval_ms = 200);
	struct damos_goal_opts g = { .sz = sizeof(g), .metric = DAMOS_GOAL_SOME_MEM_PSI_US,
				     .target_value = 2000 };
	uint64_t e[3], lo[3], hi[3], psi0 = 0, psi1 = 0;
	damon_ctx *ctx = new_ctx();
	damos *s = NULL;
	int rc, fail = 0;
	pid_t hog;

	if (!ctx)
		return 1;
	if (damon_ctx_add_scheme(ctx, &o, &s) || damos_add_goal(s, &g) < 0 ||
	    damon_ctx_start(ctx)) {
		printf("damos-live: FAIL: %s\n", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return 1;
	}
	e[0] = esz_after(s, 3, &lo[0], &hi[0]);
	hog = fork();
	if (hog == 0) {
		/* 192 MiB written over and over under a 32 MiB memory.high */
		size_t sz = 192 * MiB;
		char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		raise(SIGSTOP); /* until it is in its cgroup */
		for (;;)
			for (size_t off = 0; p != MAP_FAILED && off < sz; off += 4096)
				p[off]++;
	}
	waitpid(hog, NULL, WUNTRACED);
	rc = cgroup_cap(hog, 32 * MiB);
	if (rc) {
		printf("damos-live: FAIL: cgroup v2 memory.high: %s\n", strerror(-rc));
		kill(hog, SIGKILL);
		damon_ctx_unref(ctx);
		return 1;
	}
	kill(hog, SIGCONT);
	psi_some_us(&psi0);
	e[1] = esz_after(s, 5, &lo[1], &hi[1]);
	psi_some_us(&psi1);
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	e[2] = esz_after(s, 4, &lo[2], &hi[2]);
	damon_ctx_unref(ctx);
	printf("psi goal (some_mem_psi_us %lu us per %lu ms):\n", (unsigned long)g.target_value,
	       (unsigned long)o.quota_reset_interval_ms);
	printf("  no stall   esz %lu B at the end (range %lu .. %lu)\n", (unsigned long)e[0],
	       (unsigned long)lo[0], (unsigned long)hi[0]);
	printf("  hog        esz %lu B at the end (range %lu .. %lu); PSI some +%lu ms in 5 s\n",
	       (unsigned long)e[1], (unsigned long)lo[1], (unsigned long)hi[1],
	       (unsigned long)((psi1 - psi0) / 1000));
	printf("  after      esz %lu B at the end (range %lu .. %lu)\n", (unsigned long)e[2],
	       (unsigned long)lo[2], (unsigned long)hi[2]);
	if (!(e[0] > lo[0])) {
		printf("damos-live: FAIL: the quota did not grow without stalls\n");
		fail = 1;
	}
	if (!(e[1] < hi[1] && e[1] < e[0])) {
		printf("damos-live: FAIL: the quota did not shrink under stalls\n");
		fail = 1;
	}
	if (!(e[2] > lo[2])) {
		printf("damos-live: FAIL: the quota did not grow again after the stalls\n");
		fail = 1;
	}
	if (psi1 - psi0 < 5 * g.target_value) {
		printf("damos-live: FAIL: the hog did not stall enough to tell\n");
		fail = 1;
	}
	return fail;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(void);
	} cmds[] = {
		{"pageout", test_pageout},
		{"migrate", test_migrate},
		{"watermarks", test_watermarks},
		{"psi", test_psi},
	};
	const char *what = argc > 1 ? argv[1] : "";
	int (*fn)(void) = NULL;
	uint64_t psi;
	pthread_t th;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(what, cmds[i].name))
			fn = cmds[i].fn;
	if (fn == test_migrate && argc > 2) {
		backend = damon_backend_from_name(argv[2]);
		if (argc > 3)
			budget = (uint32_t)atoi(argv[3]);
	}
	if (!fn || backend < 0) {
		fprintf(stderr, "usage: damos-live pageout|migrate [page_idle [PERMILLE]]|"
				"watermarks|psi\n");
		return 2;
	}
	if (fn == test_migrate && (numa_available() < 0 || numa_max_node() < 1)) {
		printf("damos-live: SKIP: needs two NUMA nodes (run-vm.sh --numa)\n");
		return 77;
	}
	if ((fn == test_pageout || fn == test_psi) && access("/dev/zram0", F_OK)) {
		printf("damos-live: SKIP: needs swap (run-vm.sh --zram)\n");
		return 77;
	}
	if (fn == test_psi && psi_some_us(&psi)) {
		printf("damos-live: SKIP: no /proc/pressure/memory (a kernel without "
		       "CONFIG_PSI, or booted with psi=0)\n");
		return 77;
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
	if (fn == test_migrate)
		numa_setlocal_memory(buf, SIZE); /* node 0: the CPUs' node */
	memset(buf, 1, SIZE);
	pthread_create(&th, NULL, writer, NULL);
	ret = fn();
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	printf("damos-live: %s\n", ret ? "FAIL" : "PASS");
	return ret;
}
