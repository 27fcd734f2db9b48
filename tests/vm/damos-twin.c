// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damos-twin — one API, two executors: the same DAMOS scheme on the same
 * workload, executed once by kernel DAMON (backend KERNEL) and once by
 * libdamon's core (backend PAGE_IDLE). Statically linked against libdamon.a.
 *
 *   damos-twin pageout          needs swap and idle page tracking (the suite's
 *                               "self" kernel, run-vm.sh --zram): pageout of
 *                               memory never accessed for >= 5 aggregations,
 *                               8 MiB per 500 ms, on a child with a hot 16 MiB
 *                               and a cold 80 MiB; with either backend
 *                               sz_applied > 0 and within the quota, the
 *                               child's VmRSS drops, the hot set stays; both
 *                               sets of stats are printed side by side
 *   damos-twin collapse-detect  on a kernel whose DAMON has no collapse action
 *                               (6.12): starting a collapse scheme on the
 *                               kernel backend fails with -EOPNOTSUPP and a
 *                               sentence naming the action (a kernel that
 *                               has it: the start succeeds, said as such)
 *
 * Exit 0 when everything held, 1 otherwise, 77 when the VM lacks what the
 * mode needs (said in a sentence).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#define MiB (1024UL * 1024)
#define PAGE 4096UL
#define SIZE (96 * MiB)
#define HOT (16 * MiB)
#define SCRATCH 40
#define QUOTA (8 * MiB)
#define RESET_MS 500
#define RUN_S 15

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The child: write all of @buf once, then keep writing its first HOT bytes,
 * flushing the TLB about every millisecond by toggling mprotect on SCRATCH
 * touched pages (under TCG qemu sets accessed bits only on a miss in its
 * software TLB, so without it neither page_idle nor kernel DAMON would see the
 * hot set as accessed). Never returns.
 */
static void __attribute__((noreturn)) workload(uint8_t *buf)
{
	uint8_t *scratch = mmap(NULL, SCRATCH * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t last = now_ns();

	if (scratch == MAP_FAILED)
		_exit(3);
	memset(scratch, 1, SCRATCH * PAGE);
	memset(buf, 1, SIZE);
	for (;;)
		for (size_t off = 0; off < HOT; off += PAGE) {
			buf[off]++;
			if ((off & (64 * PAGE - 1)) == 0 && now_ns() - last > 1000000) {
				mprotect(scratch, SCRATCH * PAGE, PROT_READ);
				mprotect(scratch, SCRATCH * PAGE, PROT_READ | PROT_WRITE);
				for (int i = 0; i < SCRATCH; i++)
					scratch[i * PAGE]++;
				last = now_ns();
			}
		}
}

/* A child running workload() on a fresh 4 KiB-paged mapping at *@ret_buf. */
static pid_t spawn(uint8_t **ret_buf)
{
	uint8_t *buf = mmap(NULL, SIZE + 2 * MiB, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (buf == MAP_FAILED)
		return -1;
	buf = (uint8_t *)(((uintptr_t)buf + 2 * MiB - 1) & ~(2 * MiB - 1));
	madvise(buf, SIZE, MADV_NOHUGEPAGE);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		workload(buf);
	}
	*ret_buf = buf;
	return pid;
}

static void reap(pid_t pid)
{
	if (pid > 0 && kill(pid, SIGKILL) == 0)
		waitpid(pid, NULL, 0);
}

/* VmRSS of @pid in bytes (0 when unreadable). */
static uint64_t vmrss(pid_t pid)
{
	char path[64], line[128];
	unsigned long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

/* Bytes of [addr, addr + sz) of @pid present in memory (pagemap bit 63). */
static uint64_t present(pid_t pid, uintptr_t addr, size_t sz)
{
	enum { BATCH = 512 };
	uint64_t e[BATCH], n = 0;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (size_t off = 0; off < sz; off += BATCH * PAGE) {
		size_t k = (sz - off) / PAGE < BATCH ? (sz - off) / PAGE : BATCH;
		ssize_t got = pread(fd, e, k * 8, (off_t)((addr + off) / PAGE * 8));

		for (ssize_t i = 0; i < got / 8; i++)
			n += e[i] >> 63;
	}
	close(fd);
	return n * PAGE;
}

struct outcome {
	struct damos_stats st;
	uint64_t rss_before, rss_after, hot_after, max_charged, elapsed_ms, snapshots;
	int backend;
};

/* One run of the scheme on a fresh child with @backend. Return: 0 or 1. */
static int run(int backend, struct outcome *out)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)backend,
		   .sample_us = 5000, .aggr_us = 100000, .min_nr_regions = 10,
		   .cpu_budget_permille = 1000);
	DAMOS_OPTS(so, .action = DAMOS_PAGEOUT, .max_nr_accesses = 0, .min_age = 5,
		   .quota_bytes = QUOTA, .quota_reset_interval_ms = RESET_MS, .weight_age = 1);
	struct damon_ctx_status cs = { .sz = sizeof(cs) };
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	damos *s = NULL;
	uint8_t *buf;
	uint64_t t0;
	int rc = 1;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->st.sz = sizeof(out->st);
	out->backend = backend;
	pid = spawn(&buf);
	if (pid < 0)
		return 1;
	sleep(2); /* populated (TCG: ~1 s per 256 MiB) */
	out->rss_before = vmrss(pid);
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, pid, &t) ||
	    damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + SIZE) ||
	    damon_ctx_add_scheme(ctx, &so, &s) || damon_ctx_start(ctx)) {
		printf("damos-twin: FAIL: %s: %s\n", damon_backend_name(backend),
		       ctx ? damon_ctx_errmsg(ctx) : "context");
		goto out;
	}
	t0 = now_ns();
	for (int i = 0; i < RUN_S * 10; i++) {
		struct damos_quota_state q = { .sz = sizeof(q) };

		usleep(100000);
		if (!damos_get_quota(s, &q) && q.charged_sz > out->max_charged)
			out->max_charged = q.charged_sz;
	}
	damos_get_stats(s, &out->st);
	out->elapsed_ms = (now_ns() - t0) / 1000000;
	damon_ctx_status(ctx, &cs);
	out->snapshots = cs.nr_snapshots;
	out->rss_after = vmrss(pid);
	out->hot_after = present(pid, (uintptr_t)buf, HOT);
	rc = 0;
out:
	damon_ctx_unref(ctx);
	reap(pid);
	return rc;
}

/* Judge one run; print why it failed. Return: 0 or 1. */
static int judge(const struct outcome *r)
{
	const char *name = damon_backend_name(r->backend);
	/* reset intervals begun while it ran, plus one for misalignment */
	uint64_t bound = QUOTA * (r->elapsed_ms / RESET_MS + 2);
	int fail = 0;

	if (!r->st.sz_applied) {
		printf("damos-twin: FAIL: %s: sz_applied is 0\n", name);
		fail = 1;
	}
	if (r->st.sz_applied > bound) {
		printf("damos-twin: FAIL: %s: sz_applied %lu MiB over %lu ms exceeds %lu MiB "
		       "(%lu MiB per %d ms)\n", name, (unsigned long)(r->st.sz_applied / MiB),
		       (unsigned long)r->elapsed_ms, (unsigned long)(bound / MiB),
		       QUOTA / MiB, RESET_MS);
		fail = 1;
	}
	if (r->max_charged > QUOTA) {
		printf("damos-twin: FAIL: %s: a reset interval charged %lu KiB, over the quota\n",
		       name, (unsigned long)(r->max_charged / 1024));
		fail = 1;
	}
	if (r->rss_after + 32 * MiB > r->rss_before) {
		printf("damos-twin: FAIL: %s: VmRSS did not drop by 32 MiB\n", name);
		fail = 1;
	}
	if (r->hot_after < HOT * 9 / 10) {
		printf("damos-twin: FAIL: %s: the hot set was paged out\n", name);
		fail = 1;
	}
	return fail;
}

static void row(const struct outcome *r)
{
	printf("  %-10s %9lu %8lu %9lu %10lu %7lu %5lu -> %3lu %9lu %10lu %6lu\n",
	       damon_backend_name(r->backend), (unsigned long)(r->st.sz_tried / MiB),
	       (unsigned long)r->st.nr_applied, (unsigned long)(r->st.sz_applied / MiB),
	       (unsigned long)r->st.qt_exceeds, (unsigned long)r->elapsed_ms,
	       (unsigned long)(r->rss_before / MiB), (unsigned long)(r->rss_after / MiB),
	       (unsigned long)(r->hot_after / MiB), (unsigned long)(r->max_charged / 1024),
	       (unsigned long)r->snapshots);
}

static int cmd_pageout(void)
{
	struct damon_backend_status bs = { .sz = sizeof(bs) };
	struct outcome k, u;
	int fail = 0;

	if (access("/dev/zram0", F_OK)) {
		printf("damos-twin: SKIP: needs swap (run-vm.sh --zram)\n");
		return 77;
	}
	if (damon_probe(DAMON_OPS_FVADDR, 0, DAMON_BACKEND_PAGE_IDLE, &bs) || !bs.usable) {
		printf("damos-twin: SKIP: page_idle refused (%s): needs the suite's own kernel "
		       "(--kernel self)\n", bs.reason);
		return 77;
	}
	printf("scheme: pageout, nr_accesses 0, age >= 5 aggregations, quota %lu MiB per %d ms; "
	       "workload: child, hot %lu MiB written (TLB flushed ~1 ms), cold %lu MiB; %d s each\n",
	       QUOTA / MiB, RESET_MS, HOT / MiB, (SIZE - HOT) / MiB, RUN_S);
	fail |= run(DAMON_BACKEND_KERNEL, &k);
	fail |= run(DAMON_BACKEND_PAGE_IDLE, &u);
	if (fail)
		return 1;
	printf("  backend    tried_MiB nr_apply appl_MiB qt_exceeds elap_ms  RSS MiB   hot_MiB "
	       "maxch_KiB  snaps\n");
	row(&k);
	row(&u);
	printf("  (maxch: most charged in one reset interval, as libdamon's core reports it; "
	       "the kernel's is not exported: 0)\n");
	fail |= judge(&k);
	fail |= judge(&u);
	/* of the same order: neither applied more than 8x the other */
	if (k.st.sz_applied && u.st.sz_applied &&
	    (k.st.sz_applied > 8 * u.st.sz_applied || u.st.sz_applied > 8 * k.st.sz_applied)) {
		printf("damos-twin: FAIL: sz_applied differs by more than 8x\n");
		fail = 1;
	}
	return fail;
}

static int cmd_collapse_detect(void)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_VADDR, .backend = DAMON_BACKEND_KERNEL,
		   .sample_us = 5000, .aggr_us = 100000);
	DAMOS_OPTS(so, .action = DAMOS_COLLAPSE, .min_nr_accesses = 1, .min_sz = 2 * MiB);
	struct utsname un;
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	uint8_t *buf;
	int rc, status = 1;
	pid_t pid;

	uname(&un);
	pid = spawn(&buf);
	if (pid < 0)
		return 1;
	sleep(1);
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, pid, &t) ||
	    damon_ctx_add_scheme(ctx, &so, NULL)) {
		printf("damos-twin: FAIL: setup: %s\n", ctx ? damon_ctx_errmsg(ctx) : "context");
		goto out;
	}
	rc = damon_ctx_start(ctx);
	printf("Linux %s: collapse scheme on the kernel backend: start %d (%s): \"%s\"\n",
	       un.release, rc, rc ? strerror(-rc) : "ok", rc ? damon_ctx_errmsg(ctx) : "");
	if (rc == -EOPNOTSUPP && strstr(damon_ctx_errmsg(ctx), "collapse")) {
		printf("detected: this kernel's DAMON has no collapse action\n");
		status = 0;
	} else if (!rc) {
		printf("this kernel's DAMON has a collapse action: nothing to detect\n");
		status = strncmp(un.release, "6.12", 4) == 0; /* 6.12 must not accept it */
	} else {
		printf("damos-twin: FAIL: expected -EOPNOTSUPP naming the action\n");
	}
	/* not checked: 6.12 accepts vaddr migrate_cold and moves nothing (its
	 * migrate actions act on paddr only); damos-live migrate covers 7.2 */
	printf("note: on 6.12 vaddr migrate_cold is accepted by kernel DAMON but moves nothing; "
	       "not tested here\n");
out:
	damon_ctx_unref(ctx);
	reap(pid);
	return status;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(what, "pageout"))
		ret = cmd_pageout();
	else if (!strcmp(what, "collapse-detect"))
		ret = cmd_collapse_detect();
	else {
		fprintf(stderr, "usage: damos-twin pageout|collapse-detect\n");
		return 2;
	}
	if (ret != 77)
		printf("damos-twin: %s\n", ret ? "FAIL" : "PASS");
	return ret;
}
