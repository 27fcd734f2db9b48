// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * idle-live — libdamon's page_idle and soft_dirty backends judged by a real
 * kernel in the VM. Statically linked against libdamon.a.
 *
 *   idle-live vaddr BACKEND [--reads] [--thp] [--hot MIB]  a child with a hot
 *                        16 MiB (or MIB) in
 *                        256 MiB (TLB flushed about every ms): BACKEND
 *                        (page_idle, soft_dirty) monitoring the child reads
 *                        the hot part >= 5x hotter than the rest. --reads:
 *                        the child only reads; soft_dirty must then see
 *                        nothing hot. --thp: the memory in transparent huge
 *                        pages (page_idle tracks their head pages)
 *   idle-live paddr      page_idle on physical memory: the frames backing the
 *                        child's hot part read hotter than those of its cold part
 *   idle-live unpriv     as uid 65534, soft_dirty on an own-uid child works
 *                        (AUTO picks it: kernel and page_idle need root,
 *                        uffd_wp is self-only), page_idle is refused naming
 *                        what is missing, and soft_dirty on a child of another
 *                        uid (65533) is refused with -EPERM
 *   idle-live exit BACKEND  the child exits while monitored: the context ends
 *                        with -ESRCH and a sentence
 *   idle-live auto EXPECT   AUTO's pick for another process (no-damon: a sysfs
 *                           view without DAMON but with idle page tracking
 *                           must give page_idle): EXPECT is
 *                        kernel, page_idle or soft_dirty; "busy-kernel" first
 *                        starts a kdamond of its own through sysfs (someone
 *                        else's, for libdamon) and expects page_idle, with the
 *                        probe saying kernel DAMON is running
 *   idle-live clear-cost soft_dirty's clear_refs cost against the RSS of the
 *                        target (a table; 4K pages and THP), and the
 *                        application's cost per page of its next pass of
 *                        writes (write-protect faults) beside a pass without
 *                        a clear
 *   idle-live refuse BACKEND  the backend is refused on this kernel (e.g.
 *                        page_idle without CONFIG_IDLE_PAGE_TRACKING, soft_dirty
 *                        without CONFIG_MEM_SOFT_DIRTY), with a sentence
 *
 * Exit 0 when the kernel behaved as expected, 1 otherwise, 77 to skip.
 * Everything but "refuse" runs only in the test VM (it writes the idle
 * bitmap and DAMON's sysfs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <damon/damon.h>

#include "vm-util.h"

#define MiB	(1024UL * 1024)
#define PAGE	4096UL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The workload: touch all of @buf, then keep accessing the first @hot bytes
 * (writes, or reads with @reads), forcing a full TLB flush about every
 * millisecond (vm-util.h). Never returns.
 */
static void __attribute__((noreturn)) workload(uint8_t *buf, size_t size, size_t hot, bool reads)
{
	volatile uint64_t sink = 0;
	struct tlb_flusher fl;

	if (tlb_flusher_init(&fl))
		_exit(3);
	memset(buf, 1, size);
	for (;;) {
		for (size_t off = 0; off < hot; off += PAGE) {
			if (reads)
				sink += buf[off];
			else
				buf[off]++;
			if ((off & (64 * PAGE - 1)) == 0)
				tlb_flush_tick(&fl);
		}
	}
}

/* A child running workload() on a fresh mapping whose address it shares. */
static bool use_thp; /* --thp: the child's memory in transparent huge pages */

static pid_t spawn(uint8_t **ret_buf, size_t size, size_t hot, bool reads, uid_t uid)
{
	uint8_t *buf = mmap(NULL, size + 2 * MiB, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (buf == MAP_FAILED)
		return -1;
	buf = (uint8_t *)(((uintptr_t)buf + 2 * MiB - 1) & ~(2 * MiB - 1));
	/* 4K pages unless --thp (then page_idle must go through head pages) */
	madvise(buf, size, use_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	pid = fork();
	if (pid == 0) {
		if (uid && (setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
			_exit(4);
		/* after setuid, which clears it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* setuid made us non-dumpable: /proc/PID would be root's */
		prctl(PR_SET_DUMPABLE, 1);
		workload(buf, size, hot, reads);
	}
	*ret_buf = buf;
	return pid;
}

/* How much of the child is in huge pages (smaps_rollup). */
static void print_thp(pid_t pid)
{
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "AnonHugePages:", 14))
			printf("child %s", line);
	if (f)
		fclose(f);
}

static void reap(pid_t pid)
{
	/* a child of another uid cannot be killed after setuid: it dies with
	 * us (PR_SET_PDEATHSIG) */
	if (pid > 0 && kill(pid, SIGKILL) == 0)
		waitpid(pid, NULL, 0);
}

static void print_backends(damon_ctx *ctx)
{
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		struct damon_backend_status st = {.sz = sizeof(st)};

		if (damon_ctx_backend_status(ctx, b, &st) == 0)
			printf("  %-10s %s: %s\n", damon_backend_name(b),
			       st.usable ? "usable" : "refused", st.reason);
	}
}

/* Wait for @n snapshots (emulated CPUs are slow: count snapshots, not
 * seconds), at most @max_s seconds. Return: snapshots seen. */
static uint64_t wait_snapshots(damon_ctx *ctx, uint64_t n, int max_s)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};

	for (int i = 0; i < max_s * 20; i++) {
		usleep(50000);
		if (damon_ctx_status(ctx, &st) || !st.running || st.nr_snapshots >= n)
			break;
	}
	return st.nr_snapshots;
}

/* A sysfs view for libdamon other than /sys (see cmd_auto's no-damon). */
static const char *sysfs_root;

static damon_ctx *start(uint32_t ops, int backend, pid_t pid, damon_target **ret_t)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = ops, .backend = (uint32_t)backend, .sample_us = 5000,
		   .aggr_us = 100000, .cpu_budget_permille = 1000, .sysfs_root = sysfs_root);
	damon_ctx *ctx = NULL;
	int err;

	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, pid, ret_t)) {
		printf("idle-live: FAIL: context: %s\n", ctx ? damon_ctx_errmsg(ctx) : "new");
		damon_ctx_unref(ctx);
		return NULL;
	}
	err = damon_ctx_start(ctx);
	print_backends(ctx);
	if (err) {
		printf("idle-live: start: %d %s\n", err, damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return NULL;
	}
	printf("running on %s\n", damon_backend_name(damon_ctx_backend(ctx)));
	return ctx;
}

/*
 * The least a hot set written every ~1 ms must read. soft_dirty sees only the
 * first write to a page after each clear, and the clear itself slows those
 * first writes (a write-protect fault each): measured ~2100 bp where
 * page_idle reads ~9100 (doc/backends.md).
 */
static unsigned int min_hot_bp(int backend)
{
	return backend == DAMON_BACKEND_SOFT_DIRTY ? 1000 : 3000;
}

/* ------------------------------------------------------------------------ */

static size_t hot_mib = 16; /* --hot MIB */

static int cmd_vaddr(const char *backend_name, bool reads)
{
	const size_t size = 256 * MiB, hot = hot_mib * MiB;
	struct damon_hotness h = {.sz = sizeof(h)}, c = {.sz = sizeof(c)};
	int backend = damon_backend_from_name(backend_name), status = 1;
	damon_target *t = NULL;
	damon_ctx *ctx;
	uint8_t *buf;
	pid_t pid;

	if (backend < 0)
		return 2;
	pid = spawn(&buf, size, hot, reads, 0);
	if (pid < 0)
		return 1;
	sleep(2); /* populated (TCG: ~1 s per 256 MiB) */
	print_thp(pid);
	ctx = start(DAMON_OPS_VADDR, backend, pid, &t);
	if (!ctx)
		goto out;
	if (damon_ctx_backend(ctx) != backend) {
		printf("idle-live: FAIL: expected %s\n", backend_name);
		goto out;
	}
	printf("snapshots: %llu\n", (unsigned long long)wait_snapshots(ctx, 30, 120));
	if (damon_target_hotness(t, (uintptr_t)buf, hot, &h) ||
	    damon_target_hotness(t, (uintptr_t)buf + hot, size - hot, &c)) {
		printf("idle-live: FAIL: no hotness: %s\n", damon_ctx_errmsg(ctx));
		goto out;
	}
	printf("%s, %s: hot %zu MiB %u bp (ages %u-%u), cold %zu MiB %u bp (ages %u-%u)\n",
	       backend_name, reads ? "reads" : "writes", hot / MiB, h.access_rate_bp, h.min_age,
	       h.max_age, (size - hot) / MiB, c.access_rate_bp, c.min_age, c.max_age);
	if (reads && backend == DAMON_BACKEND_SOFT_DIRTY) {
		/* writes only: the read-hot part must not look hot */
		if (h.access_rate_bp > 1000) {
			printf("idle-live: FAIL: soft_dirty saw reads (%u bp)\n", h.access_rate_bp);
			goto out;
		}
	} else if (h.access_rate_bp < min_hot_bp(backend) ||
		   h.access_rate_bp < 5 * c.access_rate_bp) {
		printf("idle-live: FAIL: expected hot >= %u bp and >= 5x cold\n",
		       min_hot_bp(backend));
		goto out;
	}
	status = 0;
out:
	damon_ctx_unref(ctx);
	reap(pid);
	return status;
}

/* Physical frames of @n pages of process @pid from @addr on, @step apart. */
static size_t frames_of(pid_t pid, uint64_t addr, size_t n, size_t step, uint64_t *out)
{
	char path[64];
	size_t k = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t e;
		uint64_t va = addr + i * step;

		if (pread(fd, &e, 8, (off_t)(va / PAGE * 8)) == 8 && (e >> 63) &&
		    (e & ((1ULL << 55) - 1)))
			out[k++] = (e & ((1ULL << 55) - 1)) * PAGE;
	}
	close(fd);
	return k;
}

static int cmd_paddr(void)
{
	const size_t size = 512 * MiB, hot = 64 * MiB, n = 256;
	uint64_t fh[256], fc[256], sum_h = 0, sum_c = 0;
	size_t nh, nc, ah = 0, ac = 0;
	damon_target *t = NULL;
	damon_ctx *ctx;
	uint8_t *buf;
	int status = 1;
	pid_t pid;

	pid = spawn(&buf, size, hot, false, 0);
	if (pid < 0)
		return 1;
	sleep(3);
	ctx = start(DAMON_OPS_PADDR, DAMON_BACKEND_PAGE_IDLE, 0, &t);
	if (!ctx)
		goto out;
	printf("snapshots: %llu\n", (unsigned long long)wait_snapshots(ctx, 40, 180));
	nh = frames_of(pid, (uintptr_t)buf, n, hot / n, fh);
	nc = frames_of(pid, (uintptr_t)buf + hot, n, (size - hot) / n, fc);
	for (size_t i = 0; i < nh; i++) {
		struct damon_hotness x = {.sz = sizeof(x)};

		if (!damon_target_hotness(t, fh[i], PAGE, &x)) {
			sum_h += x.access_rate_bp;
			ah++;
		}
	}
	for (size_t i = 0; i < nc; i++) {
		struct damon_hotness x = {.sz = sizeof(x)};

		if (!damon_target_hotness(t, fc[i], PAGE, &x)) {
			sum_c += x.access_rate_bp;
			ac++;
		}
	}
	if (!ah || !ac) {
		printf("idle-live: FAIL: frames not covered (%zu/%zu hot, %zu/%zu cold)\n", ah, nh,
		       ac, nc);
		goto out;
	}
	printf("paddr: frames of the hot 64 MiB %llu bp on average (%zu frames), of the cold "
	       "448 MiB %llu bp (%zu frames)\n",
	       (unsigned long long)(sum_h / ah), ah, (unsigned long long)(sum_c / ac), ac);
	if (sum_h / ah < 1000 || sum_h / ah < 3 * (sum_c / ac)) {
		printf("idle-live: FAIL: expected the hot frames >= 1000 bp and >= 3x the cold\n");
		goto out;
	}
	status = 0;
out:
	damon_ctx_unref(ctx);
	reap(pid);
	return status;
}

static int cmd_unpriv(void)
{
	const size_t size = 64 * MiB, hot = 8 * MiB;
	struct damon_backend_status st = {.sz = sizeof(st)};
	struct damon_hotness h = {.sz = sizeof(h)}, c = {.sz = sizeof(c)};
	DAMON_OPTS(damon_ctx_opts, o, .backend = DAMON_BACKEND_SOFT_DIRTY);
	damon_target *t = NULL;
	damon_ctx *ctx = NULL;
	uint8_t *buf, *buf2;
	pid_t mine, other;
	int status = 1, err;

	if (getuid() != 0) {
		printf("idle-live: SKIP: must start as root to set up the uids\n");
		return 77;
	}
	other = spawn(&buf2, size, hot, false, 65533);
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 1;
	prctl(PR_SET_DUMPABLE, 1);
	mine = spawn(&buf, size, hot, false, 0); /* inherits uid 65534 */
	if (mine < 0 || other < 0)
		goto out;
	sleep(1);
	printf("uid %d, child %d (same uid), child %d (uid 65533)\n", (int)getuid(), (int)mine,
	       (int)other);

	damon_probe(DAMON_OPS_VADDR, mine, DAMON_BACKEND_PAGE_IDLE, &st);
	printf("page_idle probe: %s\n", st.reason);
	if (st.usable) {
		printf("idle-live: FAIL: page_idle usable without root\n");
		goto out;
	}
	ctx = start(DAMON_OPS_VADDR, DAMON_BACKEND_AUTO, mine, &t);
	if (!ctx || damon_ctx_backend(ctx) != DAMON_BACKEND_SOFT_DIRTY) {
		printf("idle-live: FAIL: expected AUTO to pick soft_dirty\n");
		goto out;
	}
	printf("snapshots: %llu\n", (unsigned long long)wait_snapshots(ctx, 20, 120));
	if (damon_target_hotness(t, (uintptr_t)buf, hot, &h) ||
	    damon_target_hotness(t, (uintptr_t)buf + hot, size - hot, &c)) {
		printf("idle-live: FAIL: no hotness: %s\n", damon_ctx_errmsg(ctx));
		goto out;
	}
	printf("soft_dirty unprivileged: hot %u bp, cold %u bp\n", h.access_rate_bp,
	       c.access_rate_bp);
	if (h.access_rate_bp < min_hot_bp(DAMON_BACKEND_SOFT_DIRTY) ||
	    h.access_rate_bp < 5 * c.access_rate_bp) {
		printf("idle-live: FAIL: expected hot >= %u bp and >= 5x cold\n",
		       min_hot_bp(DAMON_BACKEND_SOFT_DIRTY));
		goto out;
	}
	damon_ctx_unref(ctx);
	ctx = NULL;

	/* another uid: refused by the probe and by start */
	damon_probe(DAMON_OPS_VADDR, other, DAMON_BACKEND_SOFT_DIRTY, &st);
	printf("soft_dirty probe, pid of uid 65533: %s\n", st.reason);
	if (st.usable || !strstr(st.reason, "may not")) {
		printf("idle-live: FAIL: expected soft_dirty refused for another uid\n");
		goto out;
	}
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, other, NULL)) {
		/* add_target may refuse already */
		printf("add_target refused: %s\n", ctx ? damon_ctx_errmsg(ctx) : "");
		status = 0;
		goto out;
	}
	err = damon_ctx_start(ctx);
	printf("start on uid 65533's child: %d (%s)\n", err, damon_ctx_errmsg(ctx));
	if (err != -EPERM && err != -EOPNOTSUPP) {
		printf("idle-live: FAIL: expected -EPERM or -EOPNOTSUPP\n");
		goto out;
	}
	status = 0;
out:
	damon_ctx_unref(ctx);
	reap(mine);
	reap(other);
	return status;
}

static int cmd_exit(const char *backend_name)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};
	int backend = damon_backend_from_name(backend_name), status = 1;
	damon_ctx *ctx;
	uint8_t *buf;
	pid_t pid;

	pid = spawn(&buf, 32 * MiB, 4 * MiB, false, 0);
	if (pid < 0)
		return 1;
	sleep(1);
	ctx = start(DAMON_OPS_VADDR, backend, pid, NULL);
	if (!ctx)
		goto out;
	wait_snapshots(ctx, 3, 60);
	reap(pid);
	pid = -1;
	for (int i = 0; i < 200; i++) {
		usleep(50000);
		if (damon_ctx_status(ctx, &st) == 0 && !st.running)
			break;
	}
	printf("after the target exited: running %u, error %d, \"%s\"\n", st.running, st.error,
	       st.message);
	if (st.running || st.error != -ESRCH) {
		printf("idle-live: FAIL: expected the context to end with -ESRCH\n");
		goto out;
	}
	status = 0;
out:
	damon_ctx_unref(ctx);
	reap(pid);
	return status;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -EIO;
}

#define KD "/sys/kernel/mm/damon/admin/kdamonds"

/* A kdamond of "someone else" (not libdamon): vaddr on @pid. In the VM only. */
static int busy_kernel(pid_t pid)
{
	char text[32];

	snprintf(text, sizeof(text), "%d", (int)pid);
	if (write_file(KD "/nr_kdamonds", "1") || write_file(KD "/0/contexts/nr_contexts", "1") ||
	    write_file(KD "/0/contexts/0/operations", "vaddr") ||
	    write_file(KD "/0/contexts/0/targets/nr_targets", "1") ||
	    write_file(KD "/0/contexts/0/targets/0/pid_target", text) ||
	    write_file(KD "/0/state", "on"))
		return -1;
	return 0;
}

static int cmd_auto(const char *expect)
{
	bool busy = !strcmp(expect, "busy-kernel"), absent = !strcmp(expect, "no-damon");
	int want = busy || absent ? DAMON_BACKEND_PAGE_IDLE : damon_backend_from_name(expect);
	char view[] = "/tmp/sysfs-view-XXXXXX", path[64];
	struct damon_backend_status st = {.sz = sizeof(st)};
	damon_ctx *ctx = NULL;
	uint8_t *buf;
	int status = 1;
	pid_t pid, sleeper = -1;

	if (want < 0)
		return 2;
	pid = spawn(&buf, 32 * MiB, 4 * MiB, false, 0);
	if (pid < 0)
		return 1;
	if (busy) {
		sleeper = fork();
		if (sleeper == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			pause();
			_exit(0);
		}
		if (busy_kernel(sleeper)) {
			printf("idle-live: FAIL: could not start a kdamond through sysfs\n");
			goto out;
		}
		damon_probe(DAMON_OPS_VADDR, pid, DAMON_BACKEND_PAGE_IDLE, &st);
		printf("page_idle probe with a kdamond on: %s\n", st.reason);
		if (!strstr(st.reason, "kernel DAMON is running")) {
			printf("idle-live: FAIL: the probe should say kernel DAMON is running\n");
			goto out;
		}
	}
	if (absent) {
		/* A kernel without DAMON but with idle page tracking, as libdamon
		 * sees it: a sysfs view holding page_idle and no damon. */
		if (!mkdtemp(view))
			goto out;
		snprintf(path, sizeof(path), "%s/kernel", view);
		mkdir(path, 0755);
		snprintf(path, sizeof(path), "%s/kernel/mm", view);
		mkdir(path, 0755);
		snprintf(path, sizeof(path), "%s/kernel/mm/page_idle", view);
		if (symlink("/sys/kernel/mm/page_idle", path))
			goto out;
		sysfs_root = view;
	}
	sleep(1);
	ctx = start(DAMON_OPS_VADDR, DAMON_BACKEND_AUTO, pid, NULL);
	if (!ctx)
		goto out;
	printf("AUTO picked %s (expected %s)\n", damon_backend_name(damon_ctx_backend(ctx)),
	       damon_backend_name(want));
	if (damon_ctx_backend(ctx) != want)
		goto out;
	if (wait_snapshots(ctx, 3, 60) < 3) {
		printf("idle-live: FAIL: no snapshots\n");
		goto out;
	}
	if (absent) {
		struct damon_backend_status k = { .sz = sizeof(k) };

		damon_ctx_backend_status(ctx, DAMON_BACKEND_KERNEL, &k);
		printf("kernel: %s\n", k.reason);
		if (k.usable || !strstr(k.reason, "no DAMON")) {
			printf("idle-live: FAIL: the kernel backend should be refused for no DAMON\n");
			goto out;
		}
	}
	status = 0;
out:
	damon_ctx_unref(ctx);
	if (busy) {
		write_file(KD "/0/state", "off");
		reap(sleeper);
	}
	reap(pid);
	if (sysfs_root) {
		snprintf(path, sizeof(path), "%s/kernel/mm/page_idle", view);
		unlink(path);
		snprintf(path, sizeof(path), "%s/kernel/mm", view);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/kernel", view);
		rmdir(path);
		rmdir(view);
		sysfs_root = NULL;
	}
	return status;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* clear_refs of a child with RSS sizes, median of 5; then the child's cost of
 * writing every page again (write-protect faults) per page. */
static int cmd_clear_cost(void)
{
	static const size_t sizes[] = {16, 64, 256, 1024, 16, 64, 256, 1024};
	int down[2], up[2]; /* parent -> child, child -> parent */

	printf("%10s %6s %12s %12s %16s %16s\n", "RSS MiB", "pages", "clear ms", "us per MiB",
	       "rewrite ns/page", "(no clear)");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t size = sizes[k] * MiB;
		bool thp = k >= 4; /* the first four rows in 4K pages */
		uint64_t t[5], rw = 0, plain = 0, dt;
		char path[64], go;
		pid_t pid;
		int fd;

		if (pipe(down) || pipe(up))
			return 1;
		pid = fork();
		if (pid == 0) {
			uint8_t *b = mmap(NULL, size + 2 * MiB, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			uint64_t t0;

			if (b == MAP_FAILED)
				_exit(1);
			b = (uint8_t *)(((uintptr_t)b + 2 * MiB - 1) & ~(2 * MiB - 1));
			madvise(b, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
			memset(b, 1, size);
			if (write(up[1], "r", 1) != 1)
				_exit(1);
			/* "w": write every page once and say how long it took */
			while (read(down[0], &go, 1) == 1 && go == 'w') {
				t0 = now_ns();
				for (size_t off = 0; off < size; off += PAGE)
					b[off]++;
				dt = now_ns() - t0;
				if (write(up[1], &dt, sizeof(dt)) != sizeof(dt))
					_exit(1);
			}
			_exit(0);
		}
		if (read(up[0], &go, 1) != 1)
			return 1;
		snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
		fd = open(path, O_WRONLY);
		if (fd < 0) {
			printf("idle-live: FAIL: %s: %s\n", path, strerror(errno));
			return 1;
		}
		for (int i = 0; i < 5; i++) {
			uint64_t t0 = now_ns();

			if (pwrite(fd, "4", 1, 0) != 1) {
				printf("idle-live: FAIL: clear_refs: %s\n", strerror(errno));
				return 1;
			}
			t[i] = now_ns() - t0;
			/* after a clear: every first write faults */
			if (write(down[1], "w", 1) != 1 ||
			    read(up[0], &dt, sizeof(dt)) != sizeof(dt))
				return 1;
			rw += dt;
			/* the same pass again, nothing cleared: no faults */
			if (write(down[1], "w", 1) != 1 ||
			    read(up[0], &dt, sizeof(dt)) != sizeof(dt))
				return 1;
			plain += dt;
		}
		close(fd);
		if (write(down[1], "q", 1) != 1)
			return 1;
		waitpid(pid, NULL, 0);
		close(down[0]);
		close(down[1]);
		close(up[0]);
		close(up[1]);
		qsort(t, 5, sizeof(t[0]), cmp_u64);
		printf("%10zu %6s %12.2f %12.1f %16.0f %16.0f\n", sizes[k], thp ? "THP" : "4K",
		       t[2] / 1e6, t[2] / 1e3 / (double)sizes[k], rw / 5.0 / (double)(size / PAGE),
		       plain / 5.0 / (double)(size / PAGE));
	}
	return 0;
}

static int cmd_refuse(const char *backend_name)
{
	struct damon_backend_status st = {.sz = sizeof(st)};
	int backend = damon_backend_from_name(backend_name);
	damon_ctx *ctx;
	uint8_t *buf;
	pid_t pid;

	if (backend < 0)
		return 2;
	pid = spawn(&buf, 8 * MiB, MiB, false, 0);
	damon_probe(DAMON_OPS_VADDR, pid, backend, &st);
	printf("%s probe: %s\n", backend_name, st.reason);
	ctx = start(DAMON_OPS_VADDR, backend, pid, NULL);
	reap(pid);
	if (st.usable || ctx) {
		damon_ctx_unref(ctx);
		printf("idle-live: FAIL: expected %s refused\n", backend_name);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Side by side: the same phase-changing workload under each backend        */
int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The idle bitmap and DAMON's sysfs are written only in the test VM. */
	if (argc >= 2 && strcmp(argv[1], "refuse") && access("/etc/libdamon-vm", F_OK)) {
		fprintf(stderr, "idle-live: SKIP: runs only in the test VM (/etc/libdamon-vm)\n");
		return 77;
	}
	if (argc >= 3 && !strcmp(argv[1], "vaddr")) {
		bool reads = false;

		for (int i = 3; i < argc; i++) {
			reads |= !strcmp(argv[i], "--reads");
			use_thp |= !strcmp(argv[i], "--thp");
			if (!strcmp(argv[i], "--hot") && i + 1 < argc)
				hot_mib = (size_t)atoi(argv[++i]);
		}
		return cmd_vaddr(argv[2], reads);
	}
	if (argc == 2 && !strcmp(argv[1], "paddr"))
		return cmd_paddr();
	if (argc == 2 && !strcmp(argv[1], "unpriv"))
		return cmd_unpriv();
	if (argc == 3 && !strcmp(argv[1], "exit"))
		return cmd_exit(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "auto"))
		return cmd_auto(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "clear-cost"))
		return cmd_clear_cost();
	if (argc == 3 && !strcmp(argv[1], "refuse"))
		return cmd_refuse(argv[2]);
	fprintf(stderr, "usage: idle-live vaddr BACKEND [--reads] | paddr | unpriv | exit BACKEND |"
			" auto EXPECT | clear-cost | refuse BACKEND\n");
	return 2;
}
