// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * thp-advisor: transparent huge pages where memory is hot, none where it is
 * cold, decided by DAMON.
 *
 * The workload has a hot part (written over and over, densely) and a large
 * cold part (touched once, sparsely: one 4 KiB page every 64 KiB, like a
 * sparse heap or a hash table mostly empty). Three runs, each in a fresh
 * child process:
 *
 *   always   MADV_HUGEPAGE on everything before it is touched: what THP
 *            "always" does. The hot part gets huge pages; so does every
 *            2 MiB of the cold part that has one touched page: memory waste.
 *   never    MADV_NOHUGEPAGE on everything: no waste, no huge page.
 *   advisor  4 KiB pages at fault (THP "madvise" without the advice), and
 *            two DAMOS schemes: hot regions of 2 MiB or more -> collapse;
 *            regions never accessed for a while -> nohugepage (so neither
 *            khugepaged nor a later THP "always" fills them).
 *
 * Reported per run: huge-page coverage of the hot part (the quantity that
 * turns into fewer TLB misses on bare metal), huge-page bytes and resident
 * bytes of the cold part (the waste), and the hot loop's time per page
 * write. On a machine whose guest page tables are shadowed (PVM) or
 * emulated (qemu TCG), huge pages buy no speed: the time column is then
 * noise, and the report is memory and coverage.
 *
 * Measured on the development machine (Linux 6.18 PVM guest, THP "madvise",
 * uffd_wp backend, defaults: 64 MiB hot, 448 MiB cold, 10 s):
 *   always   hot 100% huge, cold 448 MiB huge, 420 MiB resident beyond the
 *            28 MiB touched
 *   never    hot 0% huge, cold 28 MiB resident
 *   advisor  hot 100% huge (collapsed within ~3 s), cold 0 huge and 28 MiB
 *            resident (the 420 MiB waste gone)
 * ns per write, two runs on an otherwise idle machine (load < 0.6): always
 * 9.5 and 9.9, never 10.5 and 10.5, advisor 8.9 and 10.5 - within noise of
 * each other, as expected with shadow page tables. (Runs under a load of
 * 1-5 had shown huge pages ~30% faster: that was the load, not the TLB.)
 * On bare metal the hot part's huge pages are where the speedup comes from,
 * and the advisor keeps them.
 *
 * Usage: thp-advisor [--hot MiB] [--cold MiB] [--seconds S] [--backend NAME]
 *                    [--mode always|never|advisor]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define HPAGE (2 * MiB)
#define SPARSE (64 * KiB)

struct cfg {
	uint64_t hot, cold;
	unsigned int seconds;
	int backend;
};

struct result {
	uint64_t hot_huge, cold_huge, cold_rss, cold_touched;
	double ns_per_write;
	uint64_t collapsed, nohuge, cold_tried; /* bytes the schemes applied / tried */
	int err;
	char msg[256];
};

/* @sz bytes at a 2 MiB boundary between two inaccessible 2 MiB guards, so
 * that the kernel never merges it with a neighbouring mapping (smaps then
 * reports it alone). */
static char *map_aligned(uint64_t sz)
{
	char *p = mmap(NULL, sz + 3 * HPAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = (((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1)) + HPAGE;
	if (mprotect((char *)a, sz, PROT_READ | PROT_WRITE))
		return NULL;
	return (char *)a;
}

/* Sum an smaps field (kB) over the mappings inside [start, end), in bytes. */
static uint64_t smaps_sum(const void *start, uint64_t len, const char *field)
{
	uintptr_t s0 = (uintptr_t)start, e0 = s0 + len;
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	uint64_t sum = 0;
	size_t fl = strlen(field);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');

		if (dash && sp && dash < sp && sscanf(line, "%lx-%lx", &s, &e) == 2) {
			in = s >= s0 && e <= e0;
			continue;
		}
		if (in && !strncmp(line, field, fl) && line[fl] == ':')
			sum += strtoull(line + fl + 1, NULL, 10) * KiB;
	}
	fclose(f);
	return sum;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

struct hot_loop {
	volatile char *p;
	uint64_t sz;
	atomic_int stop;
	uint64_t writes, ns;
};

/* Write one byte per page of the hot part, pass after pass, in a scattered
 * order (a page stride that is not a power of two) so that each write is a
 * TLB lookup of its own. */
static void *hot_fn(void *arg)
{
	struct hot_loop *h = arg;
	uint64_t pages = h->sz / 4096, t0 = now_ns(), n = 0, i = 0;

	while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
		for (uint64_t k = 0; k < pages; k++) {
			i = (i + 1031) % pages;
			h->p[i * 4096]++;
		}
		n += pages;
	}
	h->writes = n;
	h->ns = now_ns() - t0;
	return NULL;
}

static int advisor(const struct cfg *c, char *hot, char *cold, struct result *r)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)c->backend,
		   .min_nr_regions = 20);
	/* Hot: 2 MiB or more, written in a quarter of the samples or more. */
	DAMOS_OPTS(hot_o, .action = DAMOS_COLLAPSE, .min_sz = HPAGE, .min_nr_accesses = 5);
	/* Cold: not accessed for 5 aggregation intervals (0.5 s, more when the
	 * overhead budget stretches the intervals). On a writes-only backend (uffd_wp) memory
	 * that is only read looks cold too: this workload reads nothing, so the
	 * example opts in. */
	DAMOS_OPTS(cold_o, .action = DAMOS_NOHUGEPAGE, .max_nr_accesses = 0, .min_age = 5,
		   .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	struct damos_stats st = { .sz = sizeof(st) };
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	damos *sh = NULL, *sc = NULL;
	int ret;

	ret = damon_ctx_new(&ctx, &o);
	if (ret < 0)
		return ret;
	ret = damon_ctx_add_target(ctx, 0, &t);
	if (!ret)
		ret = damon_target_add_range(t, (uintptr_t)hot, (uintptr_t)hot + c->hot);
	if (!ret)
		ret = damon_target_add_range(t, (uintptr_t)cold, (uintptr_t)cold + c->cold);
	if (!ret)
		ret = damon_ctx_add_scheme(ctx, &hot_o, &sh);
	if (!ret)
		ret = damon_ctx_add_scheme(ctx, &cold_o, &sc);
	if (!ret)
		ret = damon_ctx_start(ctx);
	if (ret < 0) {
		snprintf(r->msg, sizeof(r->msg), "%s", damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return ret;
	}
	snprintf(r->msg, sizeof(r->msg), "backend %s",
		 damon_backend_name(damon_ctx_backend(ctx)));
	sleep(c->seconds);
	if (getenv("THP_ADVISOR_DEBUG")) {
		damon_snapshot *sn = NULL;

		if (!damon_ctx_snapshot(ctx, &sn)) {
			for (size_t i = 0; i < damon_snapshot_nr_regions(sn); i++) {
				struct damon_region rg = { .sz = sizeof(rg) };

				damon_snapshot_region(sn, i, &rg);
				fprintf(stderr, "  %#" PRIx64 "-%#" PRIx64 " nr_accesses %u age %u\n",
					rg.start, rg.end, rg.nr_accesses, rg.age);
			}
			damon_snapshot_unref(sn);
		}
	}
	if (!damos_get_stats(sh, &st))
		r->collapsed = st.sz_applied;
	if (!damos_get_stats(sc, &st)) {
		r->nohuge = st.sz_applied;
		r->cold_tried = st.sz_tried;
	}
	damon_ctx_unref(ctx);
	return 0;
}

static void run_mode(const struct cfg *c, const char *mode, struct result *r)
{
	char *hot = map_aligned(c->hot), *cold = map_aligned(c->cold);
	struct hot_loop h = { 0 };
	pthread_t th;

	memset(r, 0, sizeof(*r));
	if (!hot || !cold) {
		r->err = -ENOMEM;
		return;
	}
	if (!strcmp(mode, "always")) {
		madvise(hot, c->hot, MADV_HUGEPAGE);
		madvise(cold, c->cold, MADV_HUGEPAGE);
	} else if (!strcmp(mode, "never")) {
		madvise(hot, c->hot, MADV_NOHUGEPAGE);
		madvise(cold, c->cold, MADV_NOHUGEPAGE);
	}
	memset(hot, 1, c->hot);
	for (uint64_t off = 0; off < c->cold; off += SPARSE)
		cold[off] = 1;
	r->cold_touched = c->cold / SPARSE * 4096;
	h.p = hot;
	h.sz = c->hot;
	pthread_create(&th, NULL, hot_fn, &h);
	if (!strcmp(mode, "advisor"))
		r->err = advisor(c, hot, cold, r);
	else
		sleep(c->seconds);
	atomic_store(&h.stop, 1);
	pthread_join(th, NULL);
	r->ns_per_write = h.writes ? (double)h.ns / (double)h.writes : 0;
	r->hot_huge = smaps_sum(hot, c->hot, "AnonHugePages");
	r->cold_huge = smaps_sum(cold, c->cold, "AnonHugePages");
	r->cold_rss = smaps_sum(cold, c->cold, "Rss");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "hot", required_argument, NULL, 'h' },  { "cold", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "backend", required_argument, NULL, 'b' },
		{ "mode", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 },
	};
	static const char *const modes[] = { "always", "never", "advisor" };
	struct cfg c = { 64 * MiB, 448 * MiB, 10, DAMON_BACKEND_AUTO };
	const char *only = NULL;
	int opt, status = 0;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'h':
			c.hot = strtoull(optarg, NULL, 0) * MiB;
			break;
		case 'c':
			c.cold = strtoull(optarg, NULL, 0) * MiB;
			break;
		case 's':
			c.seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			c.backend = damon_backend_from_name(optarg);
			if (c.backend < 0) {
				fprintf(stderr, "unknown backend %s\n", optarg);
				return 2;
			}
			break;
		case 'm':
			only = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [--hot MiB] [--cold MiB] [--seconds S] "
				"[--backend NAME] [--mode always|never|advisor]\n", argv[0]);
			return 2;
		}
	}
	c.hot = (c.hot + HPAGE - 1) & ~(HPAGE - 1);
	c.cold = (c.cold + HPAGE - 1) & ~(HPAGE - 1);
	printf("hot %" PRIu64 " MiB written densely, cold %" PRIu64 " MiB touched every %" PRIu64
	       " KiB, %u s per run\n", c.hot / MiB, c.cold / MiB, (uint64_t)(SPARSE / KiB),
	       c.seconds);
	printf("%-8s %10s %12s %12s %12s %9s  %s\n", "mode", "hot-THP", "cold-THP", "cold-RSS",
	       "cold-waste", "ns/write", "notes");
	for (size_t i = 0; i < 3; i++) {
		struct result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		pid_t pid;
		int ws;

		if (only && strcmp(only, modes[i]))
			continue;
		pid = fork();
		if (pid == 0) {
			run_mode(&c, modes[i], r);
			_exit(0);
		}
		waitpid(pid, &ws, 0);
		if (r->err) {
			printf("%-8s failed: %s (%s)\n", modes[i], strerror(-r->err), r->msg);
			status = 1;
			continue;
		}
		printf("%-8s %9.1f%% %9" PRIu64 " MiB %8" PRIu64 " MiB %8" PRIu64 " MiB %9.1f  %s",
		       modes[i], 100.0 * (double)r->hot_huge / (double)c.hot, r->cold_huge / MiB,
		       r->cold_rss / MiB,
		       (r->cold_rss > r->cold_touched ? r->cold_rss - r->cold_touched : 0) / MiB,
		       r->ns_per_write, r->msg);
		if (!strcmp(modes[i], "advisor"))
			printf("; collapse applied %" PRIu64 " MiB, nohugepage applied %" PRIu64
			       " MiB", r->collapsed / MiB, r->nohuge / MiB);
		printf("\n");
		munmap(r, sizeof(*r));
	}
	printf("hot-THP: share of the hot part in huge pages; cold-waste: resident cold memory "
	       "beyond the pages touched.\nOn shadowed or emulated page tables (PVM guests, "
	       "qemu TCG) huge pages buy no speed, so ns/write there is noise.\n");
	return status;
}
