// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * kernel-test — the kernel backend (lib/kernel) against a real kernel, in the
 * test VM only (it writes DAMON's sysfs; it refuses to run without the VM's
 * marker file). Statically linked against libdamon's objects (white-box: it
 * drives dm_kernel_* directly and reads struct dm_kernel's fields).
 *
 *   kernel-test run [--snap auto|trace|tried]   6.12, 7.2 (damon_stat.enabled=N)
 *   kernel-test damon-stat                      7.2 with DAMON_STAT running
 *   kernel-test no-damon                        6.1
 *
 * "run" checks, one after the other: vaddr hot/cold of a child (hot 32 MiB
 * in 512 MiB), nr_regions within bounds, stats, commit while running (new
 * intervals, an added target), a target that exits, a kdamond made by
 * someone else (left untouched and named), kill -9 of the owning process
 * (the orphan is reclaimed by the next user), paddr and fvaddr.
 * Exit 0 when every check passes, 1 otherwise; each failure says what it
 * expected and what it got.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "kernel/kernel.h"
#include "kernel/kernel_int.h"

#define VM_MARKER "/etc/libdamon-vm"
#define KDS	  "/sys/kernel/mm/damon/admin/kdamonds"
#define MIB	  (1024ull * 1024)
#define WL_SIZE	  (512 * MIB)
#define HOT_OFF	  (256 * MIB)
#define HOT_SIZE  (32 * MIB)

static int failures;
static uint32_t snap_mode = DM_KSNAP_AUTO;

#define FAIL(...)                                          \
	do {                                               \
		printf("kernel-test: FAIL: " __VA_ARGS__); \
		putchar('\n');                             \
		fflush(stdout);                            \
		failures++;                                \
	} while (0)
#define SAY(...)                                     \
	do {                                         \
		printf("kernel-test: " __VA_ARGS__); \
		putchar('\n');                       \
		fflush(stdout);                      \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

/*
 * The workload: 512 MiB touched once, then the hot 32 MiB written over and
 * over, with a full TLB flush about every millisecond (mprotect toggled on
 * 40 touched scratch pages) so qemu sets accessed bits. Reports the
 * mapping's address through @fd.
 */
static void workload(int fd)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, WL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *scratch = mmap(NULL, 40 * (size_t)pg, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t addr = (uint64_t)(uintptr_t)m, last = 0;
	struct timespec ts;

	if (m == MAP_FAILED || scratch == MAP_FAILED)
		_exit(3);
	madvise(m, WL_SIZE, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < WL_SIZE; i += (size_t)pg)
		m[i] = 1;
	for (int i = 0; i < 40; i++)
		scratch[i * pg] = 1;
	if (write(fd, &addr, sizeof(addr)) != sizeof(addr))
		_exit(3);
	close(fd);
	for (;;) {
		for (size_t i = 0; i < HOT_SIZE; i += (size_t)pg) {
			m[HOT_OFF + i]++;
			if ((i / (size_t)pg) % 256)
				continue;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t t = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
			if (t - last < 1000)
				continue;
			last = t;
			mprotect(scratch, 40 * (size_t)pg, PROT_READ);
			mprotect(scratch, 40 * (size_t)pg, PROT_READ | PROT_WRITE);
		}
	}
}

static pid_t spawn(uint64_t *addr)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		workload(p[1]);
	}
	close(p[1]);
	if (read(p[0], addr, sizeof(*addr)) != sizeof(*addr)) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

static void reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static struct dm_mon_attrs attrs(uint64_t sample, uint64_t aggr)
{
	struct dm_mon_attrs a = {.sample_us = sample,
				 .aggr_us = aggr,
				 .update_us = 1000000,
				 .min_nr_regions = 10,
				 .max_nr_regions = 1000};
	return a;
}

/* Step @k for @ms milliseconds, checking every snapshot's region count. */
static int drive(struct dm_kernel *k, struct dm_publisher *pub, uint64_t ms,
		 const struct dm_mon_attrs *a, unsigned int *ret_snaps, struct dm_err *err)
{
	uint64_t end = now_ms() + ms, last_seq = 0;
	unsigned int snaps = 0;

	while (now_ms() < end) {
		uint64_t next = 0;
		struct damon_snapshot *s;
		int rc = dm_kernel_step(k, &next, err);

		if (rc)
			return rc;
		s = dm_publisher_get(pub);
		if (s && s->info.seq != last_seq) {
			last_seq = s->info.seq;
			snaps++;
			/* both bounds are the context's, over all targets;
			 * min_nr_regions bounds merging: the kernel reaches
			 * it by splitting, within ~10 aggregations */
			if (s->nr_regions > a->max_nr_regions ||
			    (snaps > 10 && s->nr_regions < a->min_nr_regions))
				FAIL("snapshot %llu: %zu regions, bounds %u..%u",
				     (unsigned long long)s->info.seq, s->nr_regions,
				     a->min_nr_regions, a->max_nr_regions);
		}
		damon_snapshot_unref(s);
		if (next > 20000)
			next = 20000;
		usleep((useconds_t)next);
	}
	if (ret_snaps)
		*ret_snaps = snaps;
	return 0;
}

/* Size-weighted access_rate_bp inside and outside [lo, hi) within [base, base+len). */
static void rates(struct damon_snapshot *s, uint32_t tpos, uint64_t base, uint64_t lo, uint64_t hi,
		  double *hot, double *rest)
{
	double hs = 0, hw = 0, rs = 0, rw = 0;
	const struct dm_snap_target *t = &s->targets[tpos];

	for (uint32_t i = t->first; i < t->first + t->nr; i++) {
		const struct dm_snap_region *r = &s->regions[i];
		uint64_t a = r->start > base ? r->start : base;
		uint64_t b = r->end < base + WL_SIZE ? r->end : base + WL_SIZE;
		uint64_t ha, hb;

		if (a >= b)
			continue;
		ha = a > lo ? a : lo;
		hb = b < hi ? b : hi;
		if (ha < hb) {
			hs += (double)(hb - ha) * r->access_rate_bp;
			hw += (double)(hb - ha);
		}
		if (b - a > (ha < hb ? hb - ha : 0)) {
			double w = (double)(b - a) - (ha < hb ? (double)(hb - ha) : 0);

			rs += w * r->access_rate_bp;
			rw += w;
		}
	}
	*hot = hw ? hs / hw : 0;
	*rest = rw ? rs / rw : 0;
}

static struct dm_kernel_cfg base_cfg(struct dm_publisher *pub, const struct dm_kernel_target *t,
				     size_t nt, struct dm_mon_attrs a)
{
	struct dm_kernel_cfg c = {0};

	c.ops = DAMON_OPS_VADDR;
	c.attrs = a;
	c.targets = t;
	c.nr_targets = nt;
	c.pub = pub;
	c.snapshots = snap_mode;
	return c;
}

static bool has(const char *msg, const char *what)
{
	return strstr(msg, what) != NULL;
}

/* ------------------------------------------------------------------------ */

static void test_hot_cold_commit_exit(void)
{
	struct dm_publisher pub;
	struct dm_err err = {0};
	struct dm_kernel *k = NULL;
	struct dm_kernel_target t[2] = {{.id = 7}, {.id = 9}};
	struct dm_mon_attrs a = attrs(5000, 100000);
	struct dm_scheme sc = {0}, *scp = &sc;
	struct damon_snapshot *s;
	uint64_t addr, addr2;
	unsigned int snaps = 0;
	double hot = 0, rest = 0;
	char val[64];
	int rc;

	t[0].pid = spawn(&addr);
	if (t[0].pid < 0) {
		FAIL("cannot start the workload");
		return;
	}
	dm_publisher_init(&pub, NULL);
	struct dm_kernel_cfg c = base_cfg(&pub, t, 1, a);
	/* a stat scheme of the caller's, for stats: everything */
	sc.opts.sz = sizeof(sc.opts);
	sc.opts.action = DAMOS_STAT;
	sc.opts.max_sz = UINT64_MAX;
	sc.opts.max_nr_accesses = UINT32_MAX;
	sc.opts.max_age = UINT32_MAX;
	c.schemes = &scp;
	c.nr_schemes = 1;
	rc = dm_kernel_open(&k, &c, &err);
	if (rc) {
		FAIL("dm_kernel_open: %d %s", rc, err.msg);
		goto out;
	}
	SAY("open: kdamond pid %d, snapshots via %s", (int)dm_kernel_kdamond_pid(k),
	    dm_kernel_snap_path(k) == DM_KSNAP_TRACE ? "tracepoint" : "tried_regions");
	rc = drive(k, &pub, 4000, &a, &snaps, &err);
	if (rc)
		FAIL("step: %d %s", rc, err.msg);
	s = dm_publisher_get(&pub);
	if (!s) {
		FAIL("no snapshot after 4 s");
		goto out;
	}
	rates(s, 0, addr, addr + HOT_OFF, addr + HOT_OFF + HOT_SIZE, &hot, &rest);
	SAY("hot/cold: %u snapshots in 4 s; last: %zu regions, hot %.0f bp, rest %.0f bp "
	    "(tried_regions read again %u times)",
	    snaps, s->nr_regions, hot, rest, k->tried_retries);
	if (!(hot >= 1000 && hot >= 5 * rest))
		FAIL("hot access_rate_bp %.0f should be >= 1000 and >= 5x the rest (%.0f)", hot,
		     rest);
	if (s->info.backend != DAMON_BACKEND_KERNEL || s->info.max_nr_accesses != 20 ||
	    s->targets[0].id != 7)
		FAIL("snapshot info: backend %u max_nr_accesses %u target id %u; want 1, 20, 7",
		     s->info.backend, s->info.max_nr_accesses, s->targets[0].id);
	damon_snapshot_unref(s);
	if (snaps < 10)
		FAIL("%u snapshots in 4 s with aggr 100 ms, want >= 10", snaps);

	rc = dm_kernel_update_stats(k, &err);
	if (rc)
		FAIL("update_stats: %d %s", rc, err.msg);
	SAY("stats: nr_tried %llu sz_tried %llu nr_applied %llu",
	    (unsigned long long)sc.stats.nr_tried, (unsigned long long)sc.stats.sz_tried,
	    (unsigned long long)sc.stats.nr_applied);
	if (!sc.stats.nr_tried || !sc.stats.sz_tried)
		FAIL("a match-all stat scheme tried nothing (nr_tried %llu)",
		     (unsigned long long)sc.stats.nr_tried);

	/* commit: new intervals and a second target */
	t[1].pid = spawn(&addr2);
	a = attrs(10000, 200000);
	c = base_cfg(&pub, t, 2, a);
	c.schemes = &scp;
	c.nr_schemes = 1;
	rc = dm_kernel_commit(k, &c, &err);
	if (rc) {
		FAIL("commit: %d %s", rc, err.msg);
	} else {
		read_file(KDS "/0/contexts/0/monitoring_attrs/intervals/aggr_us", val, sizeof(val));
		if (strcmp(val, "200000"))
			FAIL("after commit aggr_us reads %s, want 200000", val);
		rc = drive(k, &pub, 3000, &a, &snaps, &err);
		if (rc)
			FAIL("step after commit: %d %s", rc, err.msg);
		s = dm_publisher_get(&pub);
		if (!s || s->info.aggr_us != 200000 || s->info.max_nr_accesses != 20 ||
		    s->nr_targets != 2)
			FAIL("after commit: snapshot aggr_us %llu, max_nr_accesses %u, %u targets; "
			     "want 200000, 20, 2",
			     s ? (unsigned long long)s->info.aggr_us : 0ull,
			     s ? s->info.max_nr_accesses : 0, s ? s->nr_targets : 0);
		else {
			rates(s, 1, addr2, addr2 + HOT_OFF, addr2 + HOT_OFF + HOT_SIZE, &hot,
			      &rest);
			SAY("commit: %u snapshots in 3 s at 200 ms; target 2: hot %.0f bp, rest "
			    "%.0f bp",
			    snaps, hot, rest);
			if (s->targets[1].id != 9 || !s->targets[1].nr)
				FAIL("the added target: id %u with %u regions, want 9 with some",
				     s->targets[1].id, s->targets[1].nr);
		}
		damon_snapshot_unref(s);
	}

	/* targets that exit: the kdamond stops, step says so */
	reap(t[0].pid);
	reap(t[1].pid);
	t[0].pid = t[1].pid = 0;
	uint64_t end = now_ms() + 10000;
	rc = 0;
	while (now_ms() < end && !rc) {
		uint64_t next;

		rc = dm_kernel_step(k, &next, &err);
		usleep(50000);
	}
	if (rc != -ESRCH)
		FAIL("after every target exited, step returned %d (%s), want -ESRCH", rc, err.msg);
	else
		SAY("targets exited: %s", err.msg);
out:
	dm_kernel_close(k, false);
	reap(t[0].pid);
	reap(t[1].pid);
	dm_publisher_fini(&pub);
	if (!read_file(KDS "/nr_kdamonds", val, sizeof(val)) && strcmp(val, "0"))
		FAIL("after close nr_kdamonds reads %s, want 0", val);
	if (!access("/run/libdamon/kdamond-0.owner", F_OK))
		FAIL("after close the owner record is still there");
}

/* Someone else's kdamond, off and then running: left untouched and named. */
static void test_foreign(void)
{
	struct dm_publisher pub;
	struct dm_err err = {0};
	struct dm_kernel *k = NULL;
	struct dm_kernel_target t = {.id = 1};
	uint64_t addr;
	char val[64], pidtxt[16];
	int rc;

	t.pid = spawn(&addr);
	dm_publisher_init(&pub, NULL);
	struct dm_kernel_cfg c = base_cfg(&pub, &t, 1, attrs(5000, 100000));

	write_file(KDS "/nr_kdamonds", "1");
	write_file(KDS "/0/contexts/nr_contexts", "1");
	write_file(KDS "/0/contexts/0/operations", "vaddr");
	write_file(KDS "/0/contexts/0/targets/nr_targets", "1");
	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)t.pid);
	write_file(KDS "/0/contexts/0/targets/0/pid_target", pidtxt);

	rc = dm_kernel_open(&k, &c, &err);
	if (rc != -EBUSY || !has(err.msg, "kdamond 0 exists (off) and is not libdamon's"))
		FAIL("someone's idle kdamond: open returned %d \"%s\", want -EBUSY naming it", rc,
		     err.msg);
	else
		SAY("foreign (off): %s", err.msg);
	dm_kernel_close(k, false);
	k = NULL;
	read_file(KDS "/0/contexts/0/targets/0/pid_target", val, sizeof(val));
	if (strcmp(val, pidtxt))
		FAIL("the foreign kdamond was touched: pid_target %s, want %s", val, pidtxt);

	if (write_file(KDS "/0/state", "on"))
		FAIL("cannot turn the foreign kdamond on");
	rc = dm_kernel_open(&k, &c, &err);
	if (rc != -EBUSY || !has(err.msg, "is running and is not libdamon's"))
		FAIL("someone's running kdamond: open returned %d \"%s\", want -EBUSY naming it",
		     rc, err.msg);
	else
		SAY("foreign (on): %s", err.msg);
	dm_kernel_close(k, false);
	read_file(KDS "/0/state", val, sizeof(val));
	if (strcmp(val, "on"))
		FAIL("the foreign kdamond was touched: state %s, want on", val);

	/* allow_takeover takes idle ones only */
	c.allow_takeover = true;
	k = NULL;
	rc = dm_kernel_open(&k, &c, &err);
	if (rc != -EBUSY)
		FAIL("allow_takeover took a running kdamond: %d", rc);
	dm_kernel_close(k, false);
	write_file(KDS "/0/state", "off");
	k = NULL;
	rc = dm_kernel_open(&k, &c, &err);
	if (rc)
		FAIL("allow_takeover of an idle kdamond: %d %s", rc, err.msg);
	else
		SAY("allow_takeover: an idle foreign kdamond was taken over");
	dm_kernel_close(k, false);
	write_file(KDS "/nr_kdamonds", "0");
	reap(t.pid);
	dm_publisher_fini(&pub);
}

/* kill -9 of the owner: the next user reclaims the orphan. */
static void test_orphan(void)
{
	struct dm_publisher pub;
	struct dm_err err = {0};
	struct dm_kernel *k = NULL;
	struct dm_kernel_target t = {.id = 1};
	uint64_t addr;
	int p[2];
	char val[64];
	pid_t owner;
	int rc;

	t.pid = spawn(&addr);
	dm_publisher_init(&pub, NULL);
	struct dm_kernel_cfg c = base_cfg(&pub, &t, 1, attrs(5000, 100000));

	if (pipe(p) < 0)
		return;
	owner = fork();
	if (owner == 0) {
		struct dm_kernel *ok = NULL;
		char r = dm_kernel_open(&ok, &c, &err) ? 'n' : 'y';

		if (write(p[1], &r, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	char r = 0;
	if (read(p[0], &r, 1) != 1 || r != 'y') {
		FAIL("the owner process could not open the kernel backend");
		goto out;
	}
	close(p[0]);
	/* while it lives: refused, naming it */
	rc = dm_kernel_open(&k, &c, &err);
	if (rc != -EBUSY || !has(err.msg, "libdamon process"))
		FAIL("a live libdamon owner: open returned %d \"%s\", want -EBUSY naming it", rc,
		     err.msg);
	else
		SAY("live owner: %s", err.msg);
	dm_kernel_close(k, false);
	k = NULL;
	kill(owner, SIGKILL);
	waitpid(owner, NULL, 0);
	read_file(KDS "/0/state", val, sizeof(val));
	SAY("owner killed; its kdamond reads %s", val);
	rc = dm_kernel_open(&k, &c, &err);
	if (rc)
		FAIL("after kill -9 of the owner: open returned %d \"%s\", want success", rc,
		     err.msg);
	else if (k->reclaimed != 1)
		FAIL("after kill -9 of the owner: %u orphans reclaimed, want 1", k->reclaimed);
	else
		SAY("orphan reclaimed");
	dm_kernel_close(k, false);
out:
	reap(t.pid);
	dm_publisher_fini(&pub);
}

/* paddr (System RAM) and fvaddr (one fixed range) give snapshots too. */
static void test_paddr_fvaddr(void)
{
	for (int ops = DAMON_OPS_FVADDR; ops <= DAMON_OPS_PADDR; ops++) {
		struct dm_publisher pub;
		struct dm_err err = {0};
		struct dm_kernel *k = NULL;
		struct dm_kernel_target t = {.id = 3};
		struct dm_range rg;
		struct dm_mon_attrs a = attrs(5000, 100000);
		struct damon_snapshot *s;
		uint64_t addr;
		unsigned int snaps = 0;
		int rc;

		if (ops == DAMON_OPS_FVADDR) {
			t.pid = spawn(&addr);
			rg.start = addr;
			rg.end = addr + WL_SIZE;
			t.fixed = &rg;
			t.nr_fixed = 1;
		}
		dm_publisher_init(&pub, NULL);
		struct dm_kernel_cfg c = base_cfg(&pub, &t, 1, a);
		c.ops = (uint32_t)ops;
		rc = dm_kernel_open(&k, &c, &err);
		if (rc) {
			FAIL("%s: open %d %s", ops == DAMON_OPS_PADDR ? "paddr" : "fvaddr", rc,
			     err.msg);
		} else {
			rc = drive(k, &pub, 2500, &a, &snaps, &err);
			s = dm_publisher_get(&pub);
			if (rc || !s || !s->nr_regions)
				FAIL("%s: step %d %s; %u snapshots",
				     ops == DAMON_OPS_PADDR ? "paddr" : "fvaddr", rc, err.msg,
				     snaps);
			else
				SAY("%s: %u snapshots, %zu regions, %llx..%llx",
				    ops == DAMON_OPS_PADDR ? "paddr" : "fvaddr", snaps,
				    s->nr_regions, (unsigned long long)s->regions[0].start,
				    (unsigned long long)s->regions[s->nr_regions - 1].end);
			if (s && ops == DAMON_OPS_FVADDR &&
			    (s->regions[0].start < addr ||
			     s->regions[s->nr_regions - 1].end > addr + WL_SIZE))
				FAIL("fvaddr regions leave the fixed range");
			if (s && ops == DAMON_OPS_FVADDR) {
				double hot, rest;

				rates(s, 0, addr, addr + HOT_OFF, addr + HOT_OFF + HOT_SIZE, &hot,
				      &rest);
				SAY("fvaddr: hot %.0f bp, rest %.0f bp", hot, rest);
				if (!(hot >= 1000 && hot >= 5 * rest))
					FAIL("fvaddr hot %.0f bp should be >= 1000 and >= 5x the "
					     "rest (%.0f)",
					     hot, rest);
			}
			damon_snapshot_unref(s);
		}
		dm_kernel_close(k, false);
		reap(t.pid);
		dm_publisher_fini(&pub);
	}
}

/*
 * The tracepoint stream and tried_regions agree: with a match-all stat
 * scheme of the caller's, ask for tried_regions (kdamond fills them while
 * applying schemes, right before it emits that aggregation's events), drain
 * the stream at once, and compare its newest snapshot with the tried list.
 */
static void test_agree(void)
{
	struct dm_publisher pub;
	struct dm_err err = {0};
	struct dm_kernel *k = NULL;
	struct dm_kernel_target t = {.id = 1};
	struct dm_mon_attrs a = attrs(5000, 100000);
	struct dm_scheme sc = {0}, *scp = &sc;
	unsigned int same = 0, tries = 0;
	uint64_t addr;

	t.pid = spawn(&addr);
	dm_publisher_init(&pub, NULL);
	struct dm_kernel_cfg c = base_cfg(&pub, &t, 1, a);
	sc.opts.sz = sizeof(sc.opts);
	sc.opts.max_sz = UINT64_MAX;
	sc.opts.max_nr_accesses = UINT32_MAX;
	sc.opts.max_age = UINT32_MAX;
	c.schemes = &scp;
	c.nr_schemes = 1;
	c.snapshots = DM_KSNAP_TRACE;
	if (dm_kernel_open(&k, &c, &err)) {
		FAIL("agree: open: %s", err.msg);
		goto out;
	}
	drive(k, &pub, 1500, &a, NULL, &err);
	for (tries = 0; tries < 8; tries++) {
		char path[256], val[64];
		struct damon_snapshot *s;
		uint64_t next;
		size_t n = 0, match = 0;

		if (write_file(KDS "/0/state", "update_schemes_tried_regions")) {
			FAIL("agree: update_schemes_tried_regions failed");
			break;
		}
		dm_kernel_step(k, &next, &err);
		s = dm_publisher_get(&pub);
		if (!s)
			continue;
		for (;; n++) {
			unsigned long long st, en, acc;

			snprintf(path, sizeof(path),
				 KDS "/0/contexts/0/schemes/0/tried_regions/%zu/start", n);
			if (read_file(path, val, sizeof(val)))
				break;
			st = strtoull(val, NULL, 10);
			snprintf(path, sizeof(path),
				 KDS "/0/contexts/0/schemes/0/tried_regions/%zu/end", n);
			read_file(path, val, sizeof(val));
			en = strtoull(val, NULL, 10);
			snprintf(path, sizeof(path),
				 KDS "/0/contexts/0/schemes/0/tried_regions/%zu/nr_accesses", n);
			read_file(path, val, sizeof(val));
			acc = strtoull(val, NULL, 10);
			if (n < s->nr_regions && s->regions[n].start == st &&
			    s->regions[n].end == en && s->regions[n].nr_accesses == acc)
				match++;
		}
		if (n && n == s->nr_regions && match == n)
			same++;
		else
			SAY("agree: try %u: tried_regions %zu regions, stream %zu, %zu equal",
			    tries, n, s->nr_regions, match);
		damon_snapshot_unref(s);
		usleep(150000);
	}
	SAY("agree: tracepoint snapshot == tried_regions in %u of %u tries", same, tries);
	if (same < tries / 2)
		FAIL("agree: the stream and tried_regions matched in %u of %u tries, want >= half",
		     same, tries);
out:
	dm_kernel_close(k, false);
	reap(t.pid);
	dm_publisher_fini(&pub);
}

static void test_refused(const char *want)
{
	struct dm_publisher pub;
	struct dm_err err = {0};
	struct dm_kernel *k = NULL;
	struct dm_kernel_target t = {.id = 1, .pid = getpid()};
	char val[64];
	int rc;

	dm_publisher_init(&pub, NULL);
	struct dm_kernel_cfg c = base_cfg(&pub, &t, 1, attrs(5000, 100000));
	rc = dm_kernel_open(&k, &c, &err);
	if (!rc || !has(err.msg, want))
		FAIL("open returned %d \"%s\", want a refusal saying \"%s\"", rc, err.msg, want);
	else
		SAY("refused: %s", err.msg);
	dm_kernel_close(k, false);
	dm_publisher_fini(&pub);
	if (!read_file(KDS "/nr_kdamonds", val, sizeof(val)) && strcmp(val, "0"))
		FAIL("a refusal left nr_kdamonds at %s", val);
}

/* The public API on the kernel backend: AUTO picks it, snapshots, hotness, stats. */
static void test_api(void)
{
	DAMON_OPTS(damon_ctx_opts, o, .min_nr_regions = 10, .max_nr_regions = 1000);
	DAMOS_OPTS(so, .action = DAMOS_STAT);
	struct damon_hotness h = {.sz = sizeof(h)}, hc = {.sz = sizeof(hc)};
	struct damos_stats st = {.sz = sizeof(st)};
	damon_target *t = NULL;
	damon_snapshot *snap = NULL;
	damon_ctx *ctx = NULL;
	damos *sc = NULL;
	uint64_t addr;
	pid_t pid = spawn(&addr);
	char val[32];
	int rc;

	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, pid, &t) ||
	    damon_ctx_add_scheme(ctx, &so, &sc)) {
		FAIL("api: setting up a context: %s", ctx ? damon_ctx_errmsg(ctx) : "no context");
		goto out;
	}
	rc = damon_ctx_start(ctx);
	if (rc) {
		FAIL("api: start %d: %s", rc, damon_ctx_errmsg(ctx));
		goto out;
	}
	if (damon_ctx_backend(ctx) != DAMON_BACKEND_KERNEL)
		FAIL("api: AUTO picked %s, want kernel",
		     damon_backend_name(damon_ctx_backend(ctx)));
	sleep(4);
	rc = damon_ctx_snapshot(ctx, &snap);
	if (rc)
		FAIL("api: damon_ctx_snapshot %d: %s", rc, damon_ctx_errmsg(ctx));
	damon_snapshot_unref(snap);
	if (damon_target_hotness(t, addr + HOT_OFF, HOT_SIZE, &h) ||
	    damon_target_hotness(t, addr, HOT_OFF, &hc))
		FAIL("api: damon_target_hotness failed");
	else
		SAY("api: kernel backend, hotness hot %u bp, cold %u bp (seq %llu)",
		    h.access_rate_bp, hc.access_rate_bp, (unsigned long long)h.snapshot_seq);
	if (h.access_rate_bp < 1000 || h.access_rate_bp < 5 * hc.access_rate_bp)
		FAIL("api: hot %u bp should be >= 1000 and >= 5x cold %u bp", h.access_rate_bp,
		     hc.access_rate_bp);
	damos_get_stats(sc, &st);
	SAY("api: stats nr_tried %llu", (unsigned long long)st.nr_tried);
	if (!st.nr_tried)
		FAIL("api: the stat scheme's stats stayed 0");
	rc = damon_ctx_stop(ctx);
	if (rc)
		FAIL("api: stop %d: %s", rc, damon_ctx_errmsg(ctx));
	if (!read_file(KDS "/nr_kdamonds", val, sizeof(val)) && strcmp(val, "0"))
		FAIL("api: after stop nr_kdamonds reads %s, want 0", val);
out:
	damon_ctx_unref(ctx);
	reap(pid);
}

/* DAMON_STAT holds DAMON: explicit KERNEL fails with the sentence, AUTO falls back. */
static void test_api_damon_stat(void)
{
	struct damon_backend_status bs = {.sz = sizeof(bs)};
	damon_ctx *ctx = NULL;
	DAMON_OPTS(damon_ctx_opts, o, .backend = DAMON_BACKEND_KERNEL);
	int rc;

	damon_ctx_new(&ctx, &o);
	damon_ctx_add_target(ctx, 0, NULL);
	rc = damon_ctx_start(ctx);
	if (rc != -EOPNOTSUPP || !has(damon_ctx_errmsg(ctx), "DAMON_STAT is running"))
		FAIL("api: explicit KERNEL with DAMON_STAT running: %d \"%s\"", rc,
		     damon_ctx_errmsg(ctx));
	else
		SAY("api: explicit KERNEL refused: %s", damon_ctx_errmsg(ctx));
	damon_ctx_unref(ctx);
	ctx = NULL;
	damon_ctx_new(&ctx, NULL);
	damon_ctx_add_target(ctx, 0, NULL);
	rc = damon_ctx_start(ctx);
	damon_ctx_backend_status(ctx, DAMON_BACKEND_KERNEL, &bs);
	if (rc || damon_ctx_backend(ctx) == DAMON_BACKEND_KERNEL ||
	    !has(bs.reason, "DAMON_STAT is running"))
		FAIL("api: AUTO with DAMON_STAT running: %d, backend %d, kernel said \"%s\"", rc,
		     damon_ctx_backend(ctx), bs.reason);
	else
		SAY("api: AUTO fell back to %s; kernel: %s",
		    damon_backend_name(damon_ctx_backend(ctx)), bs.reason);
	damon_ctx_unref(ctx);
}

/* The public API's AUTO choice on a kernel without DAMON. */
static void test_auto_no_damon(void)
{
	damon_ctx *ctx = NULL;
	int rc = damon_ctx_new(&ctx, NULL);
	const char *msg;

	if (rc) {
		FAIL("damon_ctx_new: %d", rc);
		return;
	}
	damon_ctx_add_target(ctx, 0, NULL);
	rc = damon_ctx_start(ctx);
	msg = damon_ctx_errmsg(ctx);
	SAY("AUTO on this kernel: start returned %d: %s", rc, msg);
	if (rc == 0) {
		if (damon_ctx_backend(ctx) == DAMON_BACKEND_KERNEL)
			FAIL("AUTO picked the kernel backend on a kernel without DAMON");
		damon_ctx_stop(ctx);
	} else if (!has(msg, "kernel: this kernel has no DAMON sysfs interface") ||
		   !has(msg, "uffd_wp: ")) {
		FAIL("AUTO failed without naming every backend's reason: %s", msg);
	}
	damon_ctx_unref(ctx);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "run";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (access(VM_MARKER, F_OK)) {
		fprintf(stderr,
			"kernel-test: %s is missing: this is not the test VM, and this "
			"program writes DAMON's sysfs; refusing to run\n",
			VM_MARKER);
		return 77;
	}
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--snap"))
			snap_mode = !strcmp(argv[i + 1], "trace")   ? DM_KSNAP_TRACE
				    : !strcmp(argv[i + 1], "tried") ? DM_KSNAP_TRIED
								    : DM_KSNAP_AUTO;
	if (!strcmp(what, "run")) {
		test_hot_cold_commit_exit();
		test_foreign();
		test_orphan();
		test_paddr_fvaddr();
		test_api();
		if (snap_mode != DM_KSNAP_TRIED)
			test_agree();
	} else if (!strcmp(what, "damon-stat")) {
		test_refused("DAMON_STAT is running");
		test_api_damon_stat();
	} else if (!strcmp(what, "no-damon")) {
		test_refused("this kernel has no DAMON");
		test_auto_no_damon();
	} else {
		fprintf(stderr, "usage: kernel-test run [--snap auto|trace|tried] | damon-stat | "
				"no-damon\n");
		return 2;
	}
	SAY("%s: %d failure(s)", what, failures);
	return failures ? 1 : 0;
}
