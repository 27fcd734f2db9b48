// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * tiering — how fast a two-tier placement policy follows a hot set that
 * moves: node 0 (the CPUs' node) is the fast tier, node 1 (no CPUs,
 * run-vm.sh --numa) the slow one. Two schemes, as a tiering user writes
 * them: migrate_hot to node 0 for memory accessed in at least --hot-min of
 * the 20 samples of an aggregation, migrate_cold to node 1 for memory not
 * accessed for --cold-age aggregations. Each backend runs in turn in one
 * guest, on the same workload. See --help.
 *
 * The workload is a thread of this process (uffd_wp monitors only its own
 * process; the kernel and page_idle watch the same process by its pid)
 * writing one byte per page of a 16 MiB window of a 128 MiB buffer in 4 KiB
 * pages, with a full TLB flush about every millisecond (under TCG qemu sets
 * accessed bits only on a software-TLB miss). It writes, so the writes-only
 * uffd_wp sees what the others see. Before each backend the whole buffer is
 * moved to node 1; the window then visits the eight 16 MiB slots of the
 * buffer in the order 0 3 6 1 4 7 2 5 (then again), --period seconds each.
 *
 * Every 100 ms the node of each page of the window is read, every 500 ms
 * (and at the end of a placement) that of the whole buffer. Per placement:
 *   promote   seconds from the window's move until 90% of it is on node 0
 *             (100 ms resolution)
 *   demote    seconds until 90% of the window it left is on node 1 (500 ms)
 *   wrong     pages that moved and should not have: window pages that went
 *             to node 1 (hot demoted), pages outside the window that went
 *             to node 0 (cold promoted; this includes what is promoted of
 *             the old window after the move, the monitor's lag, and cold
 *             memory a region straddling the window's edge took along)
 * Per backend, over the placements: median and largest promote time, the
 * median demote time, the wrongly moved MiB, what moved in all, the
 * schemes' sz_applied, the wall-clock seconds per aggregation (snapshots
 * over the run), the monitor's CPU (libdamon's "damon-mon" thread, or the
 * kdamond) and the share of the run these readings took.
 *
 * --check exits 1 unless every backend ran, every placement reached 90% on
 * node 0 within --limit seconds, (almost) nothing of the window was demoted
 * and less cold memory was promoted than hot (judge()).
 * Runs only in the test VM (it writes DAMON's sysfs and the idle bitmap,
 * and moves pages between nodes), except with --backends uffd_wp.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "node-map.h"
#include "vm-util.h"

#define MiB	     (1024UL * 1024)
#define PAGE	     4096UL
#define BUF_SZ	     (128 * MiB)
#define WIN_SZ	     (16 * MiB)
#define NR_PAGES     (BUF_SZ / PAGE)
#define WIN_PAGES    (WIN_SZ / PAGE)
#define NR_SLOTS     (BUF_SZ / WIN_SZ)
#define POLL_NS	     100000000ULL
#define FULL_EVERY   5 /* readings: the whole buffer every 500 ms */
#define FAST	     0
#define SLOW	     1
#define MAX_MOVES    32
#define MAX_BACKENDS 8
#define NEVER	     (-1.0)
#define NONE	     (-2.0)
/* --check: at most this much of the hot window demoted per backend */
#define HOT_DEMOTED_MAX MiB

static uint8_t *buf;
static atomic_uint_fast64_t win; /* offset of the window in buf */
static atomic_bool on, stop;

static struct {
	int backends[MAX_BACKENDS];
	int nb;
	unsigned int moves;
	double period_s, limit_s;
	uint32_t budget, hot_min, cold_age;
	bool check, verbose, young;
} opt = {
	.moves = 8,
	.period_s = 10,
	.hot_min = 1,
	.cold_age = 10,
};

static void *workload(void *arg)
{
	struct tlb_flusher fl;

	(void)arg;
	if (tlb_flusher_init(&fl))
		return NULL;
	while (!atomic_load(&stop)) {
		uint64_t w = atomic_load(&win);

		if (!atomic_load(&on)) {
			usleep(1000);
			continue;
		}
		for (size_t off = 0; off < WIN_SZ && w == atomic_load(&win); off += PAGE) {
			buf[w + off]++;
			if ((off & (64 * PAGE - 1)) == 0)
				tlb_flush_tick(&fl);
		}
	}
	tlb_flusher_fini(&fl);
	return NULL;
}

/* Where the pages are: node-map.h's pagemap reader when it agrees with
 * move_pages, else move_pages. */
static struct node_map nmap;
static bool use_pagemap;

/* The node of pages [first, first + n) of the buffer into @node. */
static int read_nodes(int8_t *node, size_t first, size_t n)
{
	uint8_t *a = buf + first * PAGE;

	return use_pagemap ? node_map_read(&nmap, a, n, node + first)
			   : node_map_read_slow(a, n, node + first);
}

/* Move the pages of [off, off + len) of the buffer to @nid. */
static void move_range(uint64_t off, uint64_t len, int nid)
{
	enum { BATCH = 1024 };
	void *pages[BATCH];
	int nodes[BATCH], status[BATCH];

	for (uint64_t i = off / PAGE; i < (off + len) / PAGE; i += BATCH) {
		unsigned long n = 0;

		for (; n < BATCH && i + n < (off + len) / PAGE; n++) {
			pages[n] = buf + (i + n) * PAGE;
			nodes[n] = nid;
		}
		numa_move_pages(0, n, pages, nodes, status, MPOL_MF_MOVE);
	}
}

/* Pick the reader (@a, @b: scratch); say what a reading of each costs. */
static void choose_reader(int8_t *a, int8_t *b)
{
	uint64_t t0, t1, t2;
	long differ;

	/* every other slot on node 1: both nodes to tell apart */
	for (uint64_t off = WIN_SZ; off < BUF_SZ; off += 2 * WIN_SZ)
		move_range(off, WIN_SZ, SLOW);
	if (node_map_init(&nmap)) {
		printf("tiering: pages' nodes from move_pages (no frame numbers or node spans)\n");
		return;
	}
	t0 = vm_now_ns();
	node_map_read_slow(buf, NR_PAGES, a);
	t1 = vm_now_ns();
	node_map_read(&nmap, buf, NR_PAGES, b);
	t2 = vm_now_ns();
	differ = node_map_agree(&nmap, buf, NR_PAGES, a, b);
	use_pagemap = differ == 0;
	printf("tiering: reading the buffer's nodes: move_pages %.1f ms, pagemap + zoneinfo "
	       "%.1f ms; %ld of %lu pages differ: %s from here on\n",
	       (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, differ, (unsigned long)NR_PAGES,
	       use_pagemap ? "pagemap" : "move_pages");
}

/* Bytes of the window at @off on @nid in @node. */
static uint64_t win_on(const int8_t *node, uint64_t off, int nid)
{
	uint64_t n = 0;

	for (size_t i = off / PAGE; i < off / PAGE + WIN_PAGES; i++)
		n += node[i] == nid;
	return n * PAGE;
}

struct placement {
	uint64_t win;
	double promote_s, demote_s;	     /* NEVER; demote_s NONE for the first */
	uint64_t promoted, demoted;	     /* pages that moved, bytes */
	uint64_t hot_demoted, cold_promoted; /* of those, wrongly */
};

struct run {
	int backend;
	bool ran;
	char why[320];
	struct placement pl[MAX_MOVES];
	struct damos_stats hot, cold;
	uint64_t snapshots;
	double cpu_s, wall_s, read_s;
};

/*
 * Judge what moved between @known (the last node seen of each page) and the
 * reading @cur of pages [first, first + n), window at @w; update @known. A
 * page under migration (-1) is judged when it has landed.
 */
static void account(struct placement *p, int8_t *known, const int8_t *cur, size_t first, size_t n,
		    uint64_t w)
{
	size_t ws = w / PAGE, we = ws + WIN_PAGES;

	for (size_t i = first; i < first + n; i++) {
		bool in = i >= ws && i < we;

		if (cur[i] < 0)
			continue;
		if (known[i] == SLOW && cur[i] == FAST) {
			p->promoted += PAGE;
			p->cold_promoted += in ? 0 : PAGE;
		} else if (known[i] == FAST && cur[i] == SLOW) {
			p->demoted += PAGE;
			p->hot_demoted += in ? PAGE : 0;
		}
		known[i] = cur[i];
	}
}

static double monitor_cpu_s(void)
{
	return cpu_of_comm("/proc/self/task", "damon-mon") + cpu_of_comm("/proc", "kdamond");
}

static uint64_t nr_snapshots(damon_ctx *ctx)
{
	struct damon_ctx_status cs = {.sz = sizeof(cs)};

	return damon_ctx_status(ctx, &cs) ? 0 : cs.nr_snapshots;
}

/*
 * --young: page filters on the young (accessed) bit, as the kernel's tiering
 * example pairs with its schemes: of a region, migrate_hot moves only pages
 * accessed since the last look, migrate_cold only the others. Kernel
 * backend only (the others refuse it at start, saying so).
 */
static int young(damos *hot, damos *cold)
{
	struct damos_filter_opts f = {.sz = sizeof(f), .type = DAMOS_FILTER_YOUNG, .matching = 1};
	int err;

	f.allow = 1;
	err = damos_add_filter(hot, &f);
	f.allow = 0;
	return err ? err : damos_add_filter(cold, &f);
}

static damon_ctx *setup(int backend, damos **hot, damos **cold, char *why, size_t len)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)backend,
		   .sample_us = 5000, .aggr_us = 100000, .min_nr_regions = 10,
		   .max_nr_regions = 1000, .cpu_budget_permille = opt.budget);
	DAMOS_OPTS(h, .action = DAMOS_MIGRATE_HOT, .target_nid = FAST,
		   .min_nr_accesses = opt.hot_min);
	/* uffd_wp sees writes only: the workload only writes */
	DAMOS_OPTS(c, .action = DAMOS_MIGRATE_COLD, .target_nid = SLOW, .max_nr_accesses = 0,
		   .min_age = opt.cold_age, .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	int err;

	if ((err = damon_ctx_new(&ctx, &o)) || (err = damon_ctx_add_target(ctx, 0, &t)) ||
	    (err = damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + BUF_SZ)) ||
	    (err = damon_ctx_add_scheme(ctx, &h, hot)) ||
	    (err = damon_ctx_add_scheme(ctx, &c, cold)) ||
	    (opt.young && (err = young(*hot, *cold))) || (err = damon_ctx_start(ctx))) {
		snprintf(why, len, "%s", ctx ? damon_ctx_errmsg(ctx) : strerror(-err));
		damon_ctx_unref(ctx);
		return NULL;
	}
	return ctx;
}

/* -v: the monitor's regions over the buffer, as MiB offsets. */
static void dump(damon_ctx *ctx)
{
	damon_snapshot *sn = NULL;

	if (damon_ctx_snapshot(ctx, &sn))
		return;
	printf("   regions:");
	for (size_t i = 0; i < damon_snapshot_nr_regions(sn); i++) {
		struct damon_region r = {.sz = sizeof(r)};

		if (damon_snapshot_region(sn, i, &r))
			continue;
		printf(" [%.1f,%.1f) n%u a%u", ((double)r.start - (double)(uintptr_t)buf) / MiB,
		       ((double)r.end - (double)(uintptr_t)buf) / MiB, r.nr_accesses, r.age);
	}
	printf("\n");
	damon_snapshot_unref(sn);
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ULL),
			      .tv_nsec = (long)(ns % 1000000000ULL)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* One placement: the window to @w (@old: the one it left, or -1). */
static void place(damon_ctx *ctx, struct placement *p, uint64_t w, int64_t old, int8_t *known,
		  int8_t *cur, struct run *r)
{
	uint64_t t_move = vm_now_ns(), tick = t_move;
	uint64_t end = t_move + (uint64_t)(opt.period_s * 1e9);

	memset(p, 0, sizeof(*p));
	p->win = w;
	p->promote_s = NEVER;
	p->demote_s = old < 0 ? NONE : NEVER;
	atomic_store(&win, w);
	atomic_store(&on, true);
	for (unsigned int k = 1; vm_now_ns() + POLL_NS <= end; k++) {
		uint64_t t, t_read, in0, up = p->cold_promoted, down = p->hot_demoted;
		bool full;
		size_t first, n;

		tick += POLL_NS;
		sleep_until(tick);
		t = vm_now_ns();
		if (t > tick + POLL_NS)
			tick = t; /* behind: the next reading 100 ms from now */
		full = k % FULL_EVERY == 0 || t + 2 * POLL_NS > end;
		first = full ? 0 : w / PAGE;
		n = full ? NR_PAGES : WIN_PAGES;
		if (read_nodes(cur, first, n))
			continue;
		t_read = vm_now_ns();
		r->read_s += (double)(t_read - t) / 1e9;
		account(p, known, cur, first, n, w);
		in0 = win_on(known, w, FAST);
		if (p->promote_s == NEVER && in0 * 10 >= WIN_SZ * 9)
			p->promote_s = (double)(t - t_move) / 1e9;
		if (full && p->demote_s == NEVER &&
		    win_on(known, (uint64_t)old, FAST) * 10 <= WIN_SZ)
			p->demote_s = (double)(t - t_move) / 1e9;
		if (opt.verbose)
			printf("  %5.1f s  window on node 0 %5.1f MiB, old %s%5.1f; wrongly up "
			       "%.1f down %.1f\n",
			       (double)(t - t_move) / 1e9, (double)in0 / MiB, full ? "" : "~",
			       old < 0 ? 0.0 : (double)win_on(known, (uint64_t)old, FAST) / MiB,
			       (double)(p->cold_promoted - up) / MiB,
			       (double)(p->hot_demoted - down) / MiB);
		if (opt.verbose && full)
			dump(ctx);
	}
}

static void fmt_s(char *s, size_t len, double v)
{
	if (v == NONE)
		snprintf(s, len, "-");
	else if (v == NEVER)
		snprintf(s, len, "never");
	else
		snprintf(s, len, "%.1f", v);
}

static int run_backend(struct run *r, int8_t *known, int8_t *cur)
{
	const char *name = damon_backend_name(r->backend);
	struct damon_ctx_status cs = {.sz = sizeof(cs)};
	damos *hot = NULL, *cold = NULL;
	uint64_t t0, s0, on_slow = 0;
	damon_ctx *ctx;
	int64_t old = -1;
	double cpu0;

	atomic_store(&on, false);
	move_range(0, BUF_SZ, SLOW);
	if (!read_nodes(known, 0, NR_PAGES))
		for (size_t i = 0; i < NR_PAGES; i++)
			on_slow += known[i] == SLOW;
	if (on_slow < NR_PAGES * 99 / 100)
		printf("%-9s note: only %lu of %lu pages could be moved to node 1\n", name,
		       (unsigned long)on_slow, (unsigned long)NR_PAGES);
	ctx = setup(r->backend, &hot, &cold, r->why, sizeof(r->why));
	if (!ctx) {
		printf("%-9s cannot run here: %s\n", name, r->why);
		return -1;
	}
	/* a few aggregations on the idle buffer first, as accuracy.c does */
	s0 = nr_snapshots(ctx);
	t0 = vm_now_ns();
	while (nr_snapshots(ctx) < s0 + 3 && vm_now_ns() - t0 < 60 * 1000000000ULL)
		usleep(10000);
	cpu0 = monitor_cpu_s();
	s0 = nr_snapshots(ctx);
	t0 = vm_now_ns();
	for (unsigned int i = 0; i < opt.moves; i++) {
		struct placement *p = &r->pl[i];
		uint64_t w = (uint64_t)((i * 3) % NR_SLOTS) * WIN_SZ;
		char pr[16], de[16];

		place(ctx, p, w, old, known, cur, r);
		fmt_s(pr, sizeof(pr), p->promote_s);
		fmt_s(de, sizeof(de), p->demote_s);
		printf("%-9s move %2u: window at %3lu MiB: 90%% on node 0 after %5s s, the old "
		       "one on node 1 after %5s s; moved %5.1f MiB up, %5.1f down; wrongly "
		       "%4.1f up, %4.1f down\n",
		       name, i, (unsigned long)(w / MiB), pr, de, (double)p->promoted / MiB,
		       (double)p->demoted / MiB, (double)p->cold_promoted / MiB,
		       (double)p->hot_demoted / MiB);
		old = (int64_t)w;
	}
	r->wall_s = (double)(vm_now_ns() - t0) / 1e9;
	r->cpu_s = monitor_cpu_s() - cpu0;
	r->snapshots = nr_snapshots(ctx) - s0;
	atomic_store(&on, false);
	r->hot.sz = sizeof(r->hot);
	r->cold.sz = sizeof(r->cold);
	damos_get_stats(hot, &r->hot);
	damos_get_stats(cold, &r->cold);
	if (!damon_ctx_status(ctx, &cs) && cs.error)
		printf("%-9s note: the monitor reported: %s\n", name, cs.message);
	damon_ctx_unref(ctx);
	r->ran = true;
	return 0;
}

static int cmp_time(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	if (x < 0 || y < 0) /* NEVER sorts last */
		return (x < 0) - (y < 0);
	return x < y ? -1 : x > y;
}

/* Median and largest of @n times (NEVER counts as the longest; NONE is left
 * out). */
static void time_stats(const double *v, unsigned int n, double *med, double *max)
{
	double s[MAX_MOVES];
	unsigned int k = 0;

	for (unsigned int i = 0; i < n; i++)
		if (v[i] != NONE)
			s[k++] = v[i];
	*med = *max = NONE;
	if (!k)
		return;
	qsort(s, k, sizeof(*s), cmp_time);
	if (k % 2)
		*med = s[k / 2];
	else if (s[k / 2 - 1] < 0 || s[k / 2] < 0)
		*med = NEVER;
	else
		*med = (s[k / 2 - 1] + s[k / 2]) / 2;
	*max = s[k - 1];
}

static void print_header(void)
{
	printf("%-9s %5s %7s %7s %7s %7s %7s %6s %6s %7s %7s %6s %7s %5s\n", "backend", "moves",
	       "pro-med", "pro-max", "dem-med", "wrongUp", "wrongDn", "up", "down", "applHot",
	       "applCld", "s/aggr", "monCPU", "read");
}

static void print_row(const struct run *r)
{
	double pro[MAX_MOVES], dem[MAX_MOVES], pmed, pmax, dmed, dmax;
	uint64_t up = 0, down = 0, wup = 0, wdown = 0;
	char a[16], b[16], c[16];

	for (unsigned int i = 0; i < opt.moves; i++) {
		pro[i] = r->pl[i].promote_s;
		dem[i] = r->pl[i].demote_s;
		up += r->pl[i].promoted;
		down += r->pl[i].demoted;
		wup += r->pl[i].cold_promoted;
		wdown += r->pl[i].hot_demoted;
	}
	time_stats(pro, opt.moves, &pmed, &pmax);
	time_stats(dem, opt.moves, &dmed, &dmax);
	fmt_s(a, sizeof(a), pmed);
	fmt_s(b, sizeof(b), pmax);
	fmt_s(c, sizeof(c), dmed);
	printf("%-9s %5u %7s %7s %7s %7.1f %7.1f %6.1f %6.1f %7.1f %7.1f %6.2f %6.1f%% %4.0f%%\n",
	       damon_backend_name(r->backend), opt.moves, a, b, c, (double)wup / MiB,
	       (double)wdown / MiB, (double)up / MiB, (double)down / MiB,
	       (double)r->hot.sz_applied / MiB, (double)r->cold.sz_applied / MiB,
	       r->snapshots ? r->wall_s / (double)r->snapshots : 0,
	       r->wall_s > 0 ? 100 * r->cpu_s / r->wall_s : 0,
	       r->wall_s > 0 ? 100 * r->read_s / r->wall_s : 0);
}

/*
 * --check: why @r fails, printed. Return: the number of failures. The hot
 * set must never be demoted (at most HOT_DEMOTED_MAX, for a page a sample
 * missed); cold memory promoted is the price of regions larger than the hot
 * set (a region straddling its edge moves whole) and of the monitor's lag,
 * and must stay below what was rightly promoted: a policy promoting
 * everything it saw once moves 112 MiB of cold memory at the first move.
 */
static int judge(const struct run *r)
{
	const char *name = damon_backend_name(r->backend);
	uint64_t up = 0, cold_up = 0, hot_down = 0;
	int fail = 0;

	if (!r->ran) {
		printf("%-9s FAIL: did not run: %s\n", name, r->why);
		return 1;
	}
	for (unsigned int i = 0; i < opt.moves; i++) {
		const struct placement *p = &r->pl[i];

		up += p->promoted;
		cold_up += p->cold_promoted;
		hot_down += p->hot_demoted;
		if (p->promote_s == NEVER || p->promote_s > opt.limit_s) {
			printf("%-9s FAIL: move %u: the window was not 90%% on node 0 within %.1f "
			       "s\n",
			       name, i, opt.limit_s);
			fail++;
		}
	}
	if (hot_down > HOT_DEMOTED_MAX) {
		printf("%-9s FAIL: %.1f MiB of the hot window demoted\n", name,
		       (double)hot_down / MiB);
		fail++;
	}
	if (cold_up > up - cold_up) {
		printf("%-9s FAIL: %.1f MiB of cold memory promoted, more than the %.1f MiB of "
		       "hot\n",
		       name, (double)cold_up / MiB, (double)(up - cold_up) / MiB);
		fail++;
	}
	return fail;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tiering [--backends LIST] [--moves N] [--period S] [--budget PERMILLE]\n"
		"               [--hot-min NR] [--cold-age N] [--young] [--check [--limit S]]\n"
		"               [-v]\n"
		"  Promotion responsiveness: a written 16 MiB window moving through a 128 MiB\n"
		"  buffer that starts on node 1; migrate_hot to node 0 and migrate_cold to\n"
		"  node 1, by each backend in turn; a table of the time until 90%% of the\n"
		"  window is on node 0 and of the bytes moved wrongly. Needs two NUMA nodes\n"
		"  (run-vm.sh --numa); kernel and page_idle only in the test VM.\n"
		"  --backends LIST  comma-separated (default kernel,page_idle,uffd_wp)\n"
		"  --moves N        placements of the window, 1..%d (default 8)\n"
		"  --period S       seconds at each place, >= 1 (default 10)\n"
		"  --budget P       cpu_budget_permille of the user-space backends\n"
		"                   (default: the library's)\n"
		"  --hot-min NR     migrate_hot's min_nr_accesses, 1..20 (default 1)\n"
		"  --cold-age N     migrate_cold's min_age in aggregations (default 10)\n"
		"  --young          page filters: migrate_hot allows young pages only,\n"
		"                   migrate_cold rejects them (kernel backend only)\n"
		"  --check          exit 1 unless every backend ran, every placement was\n"
		"                   90%% on node 0 within --limit S (default: the period),\n"
		"                   at most %lu MiB of the window was demoted and less\n"
		"                   cold memory was promoted than hot\n"
		"  -v               a line per reading, the regions every 500 ms\n",
		MAX_MOVES, HOT_DEMOTED_MAX / MiB);
}

static int parse_backends(const char *v)
{
	char list[128], *tok, *save = NULL;

	snprintf(list, sizeof(list), "%s", v);
	opt.nb = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int b = damon_backend_from_name(tok);

		if (b <= 0 || opt.nb == MAX_BACKENDS) {
			fprintf(stderr, "tiering: no backend \"%s\" (or more than %d)\n", tok,
				MAX_BACKENDS);
			return -1;
		}
		opt.backends[opt.nb++] = b;
	}
	return opt.nb ? 0 : -1;
}

static int parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--check")) {
			opt.check = true;
			continue;
		} else if (!strcmp(a, "--young")) {
			opt.young = true;
			continue;
		} else if (!strcmp(a, "-v")) {
			opt.verbose = true;
			continue;
		} else if (!v) {
			fprintf(stderr, "tiering: %s: unknown, or without its value\n", a);
			return -1;
		} else if (!strcmp(a, "--moves")) {
			opt.moves = (unsigned int)atoi(v);
		} else if (!strcmp(a, "--period")) {
			opt.period_s = atof(v);
		} else if (!strcmp(a, "--limit")) {
			opt.limit_s = atof(v);
		} else if (!strcmp(a, "--budget")) {
			opt.budget = (uint32_t)atoi(v);
		} else if (!strcmp(a, "--hot-min")) {
			opt.hot_min = (uint32_t)atoi(v);
		} else if (!strcmp(a, "--cold-age")) {
			opt.cold_age = (uint32_t)atoi(v);
		} else if (!strcmp(a, "--backends")) {
			if (parse_backends(v))
				return -1;
		} else {
			fprintf(stderr, "tiering: unknown option %s\n", a);
			return -1;
		}
		i++;
	}
	if (!opt.moves || opt.moves > MAX_MOVES || !(opt.period_s >= 1) || !opt.hot_min ||
	    opt.hot_min > 20) {
		fprintf(stderr, "tiering: --moves, --period or --hot-min out of range\n");
		return -1;
	}
	if (opt.limit_s <= 0)
		opt.limit_s = opt.period_s;
	return 0;
}

int main(int argc, char **argv)
{
	static const int defaults[] = {DAMON_BACKEND_KERNEL, DAMON_BACKEND_PAGE_IDLE,
				       DAMON_BACKEND_UFFD_WP};
	bool in_vm = access("/etc/libdamon-vm", F_OK) == 0;
	static struct run runs[MAX_BACKENDS];
	int8_t *known, *cur;
	int failures = 0;
	pthread_t th;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse(argc, argv)) {
		usage(stderr);
		return 2;
	}
	if (!opt.nb)
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
			opt.backends[opt.nb++] = defaults[i];
	for (int i = 0; i < opt.nb; i++)
		if (!in_vm && opt.backends[i] != DAMON_BACKEND_UFFD_WP) {
			printf("tiering: SKIP: %s runs only in the test VM (/etc/libdamon-vm)\n",
			       damon_backend_name(opt.backends[i]));
			return 77;
		}
	if (numa_available() < 0 || numa_max_node() < 1) {
		printf("tiering: SKIP: needs two NUMA nodes (run-vm.sh --numa)\n");
		return 77;
	}
	known = malloc(NR_PAGES);
	cur = malloc(NR_PAGES);
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!known || !cur || buf == MAP_FAILED)
		return 1;
	/* 4 KiB pages: uffd_wp never arms a page inside a huge page */
	madvise(buf, BUF_SZ, MADV_NOHUGEPAGE);
	memset(buf, 1, BUF_SZ);
	choose_reader(known, cur);
	if (pthread_create(&th, NULL, workload, NULL))
		return 1;
	printf("tiering: %lu MiB window written in a %lu MiB buffer (4 KiB pages), %u places of "
	       "%.0f s; migrate_hot to node 0 at nr_accesses >= %u of 20, migrate_cold to node "
	       "1 at 0 for %u aggregations; sample 5 ms, aggregation 100 ms; budget %u permille"
	       "%s\n",
	       WIN_SZ / MiB, BUF_SZ / MiB, opt.moves, opt.period_s, opt.hot_min, opt.cold_age,
	       opt.budget, opt.budget ? "" : " (the library's default)");
	for (int b = 0; b < opt.nb; b++) {
		runs[b].backend = opt.backends[b];
		run_backend(&runs[b], known, cur);
	}
	atomic_store(&stop, true);
	pthread_join(th, NULL);

	/* times in s; moved MiB; aggrMs: the aggregation interval in force at
	 * the end; monCPU: of one CPU; read: this program's readings of nodes */
	print_header();
	for (int b = 0; b < opt.nb; b++)
		if (runs[b].ran)
			print_row(&runs[b]);
	if (!opt.check)
		return 0;
	for (int b = 0; b < opt.nb; b++)
		failures += judge(&runs[b]);
	printf("tiering: %s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
