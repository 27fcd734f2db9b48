// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * kernel-bench — the kernel backend's two snapshot paths compared in the
 * test VM: the damon:damon_aggregated tracepoint stream and a match-all
 * stat scheme's tried_regions. For a child with 512 MiB (hot 32 MiB) and
 * min_nr_regions 1000: CPU time libdamon spends per snapshot, the delay
 * from the end of an aggregation to the snapshot being readable, and the
 * CPU per second of libdamon beside kdamond's. Refuses to run outside the
 * VM (it writes DAMON's sysfs).
 *
 *   kernel-bench [SECONDS]     (default 5 per path)
 *
 * Delay: tracepoint — the time of the aggregation's last event (perf clock =
 * CLOCK_MONOTONIC) to its publication; tried_regions — the aggregation end is
 * not visible, so the time from the request to the publication is given (an
 * upper bound; kdamond answers at the next aggregation).
 * Numbers under TCG are not bare-metal numbers: compare the two paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "kernel/kernel.h"
#include "kernel/kernel_int.h"

#define VM_MARKER "/etc/libdamon-vm"
#define MIB	  (1024ull * 1024)
#define WL_SIZE	  (512 * MIB)
#define HOT_OFF	  (256 * MIB)
#define HOT_SIZE  (32 * MIB)

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void workload(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, WL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *scratch = mmap(NULL, 40 * (size_t)pg, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t last = 0;

	if (m == MAP_FAILED || scratch == MAP_FAILED)
		_exit(3);
	madvise(m, WL_SIZE, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < WL_SIZE; i += (size_t)pg)
		m[i] = 1;
	for (int i = 0; i < 40; i++)
		scratch[i * pg] = 1;
	for (;;) {
		for (size_t i = 0; i < HOT_SIZE; i += (size_t)pg) {
			m[HOT_OFF + i]++;
			if ((i / (size_t)pg) % 256)
				continue;
			uint64_t t = clock_ns(CLOCK_MONOTONIC) / 1000;
			if (t - last < 1000)
				continue;
			last = t;
			mprotect(scratch, 40 * (size_t)pg, PROT_READ);
			mprotect(scratch, 40 * (size_t)pg, PROT_READ | PROT_WRITE);
		}
	}
}

/* utime + stime of @pid in ns. */
static uint64_t task_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int bench(uint32_t mode, pid_t child, unsigned int secs)
{
	struct dm_kernel_target t = {.id = 1, .pid = child};
	struct dm_publisher pub;
	struct dm_kernel_cfg c = {0};
	struct dm_err err = {0};
	struct dm_kernel *k = NULL;
	static uint64_t delay[100000];
	size_t nd = 0, regions = 0;
	uint64_t cpu0, kd0, t0, end, snaps = 0, seq;
	const char *name = mode == DM_KSNAP_TRACE ? "tracepoint" : "tried_regions";
	int rc;

	dm_publisher_init(&pub, NULL);
	c.ops = DAMON_OPS_VADDR;
	c.attrs = (struct dm_mon_attrs){.sample_us = 5000,
					.aggr_us = 100000,
					.update_us = 1000000,
					.min_nr_regions = 1000,
					.max_nr_regions = 2000};
	c.targets = &t;
	c.nr_targets = 1;
	c.pub = &pub;
	c.snapshots = mode;
	rc = dm_kernel_open(&k, &c, &err);
	if (rc) {
		printf("kernel-bench: %s: open: %s\n", name, err.msg);
		dm_publisher_fini(&pub);
		return 1;
	}
	/* warm up: let the regions split to ~1000 */
	end = clock_ns(CLOCK_MONOTONIC) + 3000000000ull;
	while (clock_ns(CLOCK_MONOTONIC) < end) {
		uint64_t next = 0;

		if (dm_kernel_step(k, &next, &err))
			break;
		usleep((useconds_t)(next > 50000 ? 50000 : next));
	}
	seq = k->seq;
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	kd0 = task_cpu_ns(k->kdamond_pid);
	t0 = clock_ns(CLOCK_MONOTONIC);
	end = t0 + (uint64_t)secs * 1000000000ull;
	while (clock_ns(CLOCK_MONOTONIC) < end) {
		uint64_t next = 0, before = clock_ns(CLOCK_MONOTONIC);

		rc = dm_kernel_step(k, &next, &err);
		if (rc) {
			printf("kernel-bench: %s: step: %s\n", name, err.msg);
			break;
		}
		if (k->seq != seq) {
			uint64_t now = clock_ns(CLOCK_MONOTONIC);
			struct damon_snapshot *s = dm_publisher_get(&pub);

			snaps += k->seq - seq;
			seq = k->seq;
			if (s)
				regions += s->nr_regions;
			damon_snapshot_unref(s);
			if (nd < sizeof(delay) / sizeof(delay[0]))
				delay[nd++] = mode == DM_KSNAP_TRACE ? now - k->last_agg_ns
								     : now - before;
		}
		usleep((useconds_t)next);
	}
	uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	uint64_t kd = task_cpu_ns(k->kdamond_pid) - kd0;
	double wall = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / 1e9;

	qsort(delay, nd, sizeof(delay[0]), cmp_u64);
	printf("kernel-bench: %-13s %3llu snapshots of %4zu regions (avg) in %.1f s: "
	       "CPU %7.1f us/snapshot; delay median %6.2f ms, max %6.2f ms; "
	       "CPU/s libdamon %6.2f ms, kdamond %6.2f ms; lost records %llu\n",
	       name, (unsigned long long)snaps, snaps ? regions / (size_t)snaps : 0, wall,
	       snaps ? (double)cpu / 1e3 / (double)snaps : 0, nd ? (double)delay[nd / 2] / 1e6 : 0,
	       nd ? (double)delay[nd - 1] / 1e6 : 0, (double)cpu / 1e6 / wall,
	       (double)kd / 1e6 / wall, (unsigned long long)k->lost);
	dm_kernel_close(k, false);
	dm_publisher_fini(&pub);
	return snaps ? 0 : 1;
}

int main(int argc, char **argv)
{
	unsigned int secs = argc > 1 ? (unsigned int)atoi(argv[1]) : 5;
	pid_t child;
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (access(VM_MARKER, F_OK)) {
		fprintf(stderr, "kernel-bench: not in the test VM (%s missing); refusing to run\n",
			VM_MARKER);
		return 77;
	}
	child = fork();
	if (child == 0)
		workload();
	sleep(2); /* the child touches its 512 MiB */
	rc |= bench(DM_KSNAP_TRACE, child, secs);
	rc |= bench(DM_KSNAP_TRIED, child, secs);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return rc;
}
