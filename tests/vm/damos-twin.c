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
 *   damos-twin detect           on 6.12, whose DAMON has no collapse action and
 *                               whose vaddr operations take migrate_cold but
 *                               move nothing: starting either scheme on the
 *                               kernel backend fails with -EOPNOTSUPP and a
 *                               sentence naming why (on a kernel that has
 *                               them the start succeeds, said as such)
 *   damos-twin collapse         kernel DAMON's collapse (7.2): with THP
 *                               "madvise", a child's hot 16 MiB on 4 KiB pages
 *                               becomes huge pages (AnonHugePages), the
 *                               cold 80 MiB does not
 *   damos-twin migrate          kernel DAMON's vaddr migrate_cold (7.2,
 *                               run-vm.sh --numa): a child's cold pages move
 *                               to node 1, its hot ones stay on node 0
 *
 * Exit 0 when everything held, 1 otherwise, 77 when the VM lacks what the
 * mode needs (said in a sentence).
 */
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
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

#include "vm-util.h"

#define MiB (1024UL * 1024)
#define PAGE 4096UL
#define SIZE (96 * MiB)
#define HOT (16 * MiB)
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
 * flushing the TLB about every millisecond (vm-util.h: without it neither
 * page_idle nor kernel DAMON would see the hot set as accessed under TCG).
 * Never returns.
 */
static void __attribute__((noreturn)) workload(uint8_t *buf)
{
	struct tlb_flusher fl;

	if (tlb_flusher_init(&fl))
		_exit(3);
	memset(buf, 1, SIZE);
	for (;;)
		for (size_t off = 0; off < HOT; off += PAGE) {
			buf[off]++;
			if ((off & (64 * PAGE - 1)) == 0)
				tlb_flush_tick(&fl);
		}
}

/* A child running workload() on a fresh 4 KiB-paged mapping at *@ret_buf
 * (@nohuge: MADV_NOHUGEPAGE, else left to the THP mode for a collapse). */
static pid_t spawn_thp(uint8_t **ret_buf, bool nohuge)
{
	uint8_t *buf = mmap(NULL, SIZE + 2 * MiB, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (buf == MAP_FAILED)
		return -1;
	buf = (uint8_t *)(((uintptr_t)buf + 2 * MiB - 1) & ~(2 * MiB - 1));
	if (nohuge)
		madvise(buf, SIZE, MADV_NOHUGEPAGE);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		workload(buf);
	}
	*ret_buf = buf;
	return pid;
}

static pid_t spawn(uint8_t **ret_buf)
{
	return spawn_thp(ret_buf, true);
}

static void reap(pid_t pid)
{
	if (pid > 0 && kill(pid, SIGKILL) == 0)
		waitpid(pid, NULL, 0);
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

/*
 * Start @so on the kernel backend for a fresh child. Return: damon_ctx_start()'s
 * result (its sentence in @msg), or 1 when the setup failed.
 */
static int kernel_start(const struct damos_opts *so, char *msg, size_t len)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_VADDR, .backend = DAMON_BACKEND_KERNEL,
		   .sample_us = 5000, .aggr_us = 100000);
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	uint8_t *buf;
	int rc = 1;
	pid_t pid;

	pid = spawn(&buf);
	if (pid < 0)
		return 1;
	sleep(1);
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, pid, &t) ||
	    damon_ctx_add_scheme(ctx, so, NULL))
		printf("damos-twin: FAIL: setup: %s\n", ctx ? damon_ctx_errmsg(ctx) : "context");
	else
		rc = damon_ctx_start(ctx);
	snprintf(msg, len, "%s", rc ? damon_ctx_errmsg(ctx) : "");
	damon_ctx_unref(ctx);
	reap(pid);
	return rc;
}

/*
 * One detection: a scheme this kernel cannot execute for vaddr must be refused
 * with -EOPNOTSUPP and a sentence holding @why. @must_refuse: this kernel is
 * known to lack it (a start that succeeds is then a failure, not a pass).
 * Return: 0 or 1.
 */
static int detect_one(const char *what, const struct damos_opts *so, const char *why,
		      bool must_refuse)
{
	char msg[512];
	int rc = kernel_start(so, msg, sizeof(msg));

	printf("%s scheme on the kernel backend: start %d (%s)%s%s%s\n", what, rc,
	       rc ? strerror(-rc) : "ok", rc ? ": \"" : "", msg, rc ? "\"" : "");
	if (rc == -EOPNOTSUPP && strstr(msg, why)) {
		printf("detected: %s\n", why);
		return 0;
	}
	if (!rc) {
		printf("this kernel's DAMON executes %s for vaddr: nothing to detect%s\n", what,
		       must_refuse ? " - but this kernel is known not to" : "");
		return must_refuse;
	}
	printf("damos-twin: FAIL: expected -EOPNOTSUPP saying \"%s\"\n", why);
	return 1;
}

static int cmd_detect(void)
{
	DAMOS_OPTS(collapse, .action = DAMOS_COLLAPSE, .min_nr_accesses = 1, .min_sz = 2 * MiB);
	DAMOS_OPTS(migrate, .action = DAMOS_MIGRATE_COLD, .target_nid = 0, .max_nr_accesses = 0);
	struct utsname un;
	bool v612;
	int fail = 0;

	uname(&un);
	v612 = strncmp(un.release, "6.12", 4) == 0;
	printf("Linux %s\n", un.release);
	fail |= detect_one("collapse", &collapse, "has no action collapse", v612);
	fail |= detect_one("migrate_cold", &migrate, "would move nothing", v612);
	return fail;
}

/* AnonHugePages of @pid, bytes. */
static uint64_t anon_huge(pid_t pid)
{
	return proc_kb(pid, "smaps_rollup", "AnonHugePages");
}

/* Bytes of @pid's [addr, addr + sz) in huge pages (pagemap, kpageflags' THP bit). */
static uint64_t huge_bytes(pid_t pid, uintptr_t addr, size_t sz)
{
	uint64_t n = 0;
	char path[64];
	int pm, kf;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	pm = open(path, O_RDONLY | O_CLOEXEC);
	kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	for (size_t off = 0; pm >= 0 && kf >= 0 && off < sz; off += PAGE) {
		uint64_t e = 0, fl = 0;

		if (pread(pm, &e, 8, (off_t)((addr + off) / PAGE * 8)) == 8 && (e >> 63) &&
		    pread(kf, &fl, 8, (off_t)((e & ((1ULL << 55) - 1)) * 8)) == 8)
			n += ((fl >> 22) & 1) * PAGE;
	}
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	return n;
}

/*
 * Run @so by kernel DAMON on a fresh child for RUN_S; the child (*@ret_pid)
 * keeps running. *@ret_huge: its AnonHugePages before the scheme started.
 */
static int kernel_run(const struct damos_opts *so, uint32_t ops, bool nohuge, pid_t *ret_pid,
		      uint8_t **ret_buf, uint64_t *ret_huge, struct damos_stats *st)
{
	/* fvaddr: 48 regions of 2 MiB over the buffer to begin with */
	DAMON_OPTS(damon_ctx_opts, o, .ops = ops, .backend = DAMON_BACKEND_KERNEL,
		   .sample_us = 5000, .aggr_us = 100000,
		   .min_nr_regions = ops == DAMON_OPS_FVADDR ? SIZE / (2 * MiB) : 10);
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;
	damos *s = NULL;
	int rc = 1;

	*ret_pid = spawn_thp(ret_buf, nohuge);
	if (*ret_pid < 0)
		return 1;
	sleep(2);
	*ret_huge = anon_huge(*ret_pid);
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, *ret_pid, &t) ||
	    (ops == DAMON_OPS_FVADDR &&
	     damon_target_add_range(t, (uintptr_t)*ret_buf, (uintptr_t)*ret_buf + SIZE)) ||
	    damon_ctx_add_scheme(ctx, so, &s) || damon_ctx_start(ctx)) {
		printf("damos-twin: FAIL: %s\n", ctx ? damon_ctx_errmsg(ctx) : "context");
	} else {
		sleep(RUN_S);
		rc = damos_get_stats(s, st) ? 1 : 0;
	}
	damon_ctx_unref(ctx);
	return rc;
}

/*
 * A region is collapsed whole: one straddling the hot/cold edge takes cold
 * memory with it. With vaddr's 10 regions over the whole child, 24-66 of the
 * 80 cold MiB were collapsed on 7.2, so the buffer is watched (fvaddr) in
 * regions of 2 MiB to begin with. At least 5 of the 20 samples an
 * aggregation: a freshly collapsed huge page is mapped young (x86's page
 * protections carry the accessed bit), so its next sample reads "accessed".
 */
static int cmd_collapse(void)
{
	DAMOS_OPTS(so, .action = DAMOS_COLLAPSE, .min_nr_accesses = 5, .min_sz = 2 * MiB);
	struct damos_stats st = { .sz = sizeof(st) };
	uint64_t before, after, hot_huge, cold_huge;
	uint8_t *buf;
	pid_t pid;
	int fd, fail = 0;

	/* the guest's own THP mode: faults get 4 KiB pages, so only a collapse
	 * can make huge ones */
	fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_WRONLY);
	if (fd < 0 || write(fd, "madvise", 7) != 7) {
		printf("damos-twin: SKIP: no transparent huge pages here\n");
		return 77;
	}
	close(fd);
	if (kernel_run(&so, DAMON_OPS_FVADDR, false, &pid, &buf, &before, &st)) {
		reap(pid);
		return 1;
	}
	after = anon_huge(pid);
	hot_huge = huge_bytes(pid, (uintptr_t)buf, HOT);
	cold_huge = huge_bytes(pid, (uintptr_t)buf + HOT, SIZE - HOT);
	reap(pid);
	printf("THP madvise; collapse by kernel DAMON: AnonHugePages %lu -> %lu MiB, hot part "
	       "in huge pages %lu of %lu MiB, cold part %lu of %lu MiB; scheme tried %lu MiB, applied %lu MiB in %lu "
	       "regions\n", (unsigned long)(before / MiB),
	       (unsigned long)(after / MiB), (unsigned long)(hot_huge / MiB), HOT / MiB,
	       (unsigned long)(cold_huge / MiB), (SIZE - HOT) / MiB,
	       (unsigned long)(st.sz_tried / MiB), (unsigned long)(st.sz_applied / MiB),
	       (unsigned long)st.nr_applied);
	if (hot_huge < HOT / 2) {
		printf("damos-twin: FAIL: less than half of the hot part was collapsed\n");
		fail = 1;
	}
	if (before > 4 * MiB) {
		printf("damos-twin: FAIL: huge pages before any collapse\n");
		fail = 1;
	}
	if (cold_huge > 4 * MiB) {
		printf("damos-twin: FAIL: %lu MiB of the cold part became huge pages\n",
		       (unsigned long)(cold_huge / MiB));
		fail = 1;
	}
	return fail;
}

static int cmd_migrate(void)
{
	DAMOS_OPTS(so, .action = DAMOS_MIGRATE_COLD, .target_nid = 1, .max_nr_accesses = 0,
		   .min_age = 5);
	struct damos_stats st = { .sz = sizeof(st) };
	uint64_t cold1, hot1, huge;
	uint8_t *buf;
	pid_t pid;
	int fail = 0;

	if (numa_available() < 0 || numa_max_node() < 1) {
		printf("damos-twin: SKIP: needs two NUMA nodes (run-vm.sh --numa)\n");
		return 77;
	}
	if (kernel_run(&so, DAMON_OPS_VADDR, true, &pid, &buf, &huge, &st)) {
		reap(pid);
		return 1;
	}
	cold1 = on_node(pid, (uintptr_t)buf + HOT, SIZE - HOT, 1);
	hot1 = on_node(pid, (uintptr_t)buf, HOT, 1);
	reap(pid);
	printf("migrate_cold by kernel DAMON (vaddr): cold on node 1 %lu of %lu MiB, hot on "
	       "node 1 %lu of %lu MiB; scheme tried %lu MiB, applied %lu MiB\n",
	       (unsigned long)(cold1 / MiB), (SIZE - HOT) / MiB, (unsigned long)(hot1 / MiB),
	       HOT / MiB, (unsigned long)(st.sz_tried / MiB), (unsigned long)(st.sz_applied / MiB));
	if (cold1 < (SIZE - HOT) / 2) {
		printf("damos-twin: FAIL: cold pages did not move to node 1\n");
		fail = 1;
	}
	if (hot1 > HOT / 10) {
		printf("damos-twin: FAIL: hot pages moved to node 1\n");
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
		{"pageout", cmd_pageout},
		{"detect", cmd_detect},
		{"collapse", cmd_collapse},
		{"migrate", cmd_migrate},
	};
	const char *what = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(what, cmds[i].name))
			continue;
		int ret = cmds[i].fn();

		if (ret != 77)
			printf("damos-twin: %s\n", ret ? "FAIL" : "PASS");
		return ret;
	}
	fprintf(stderr, "usage: damos-twin pageout|detect|collapse|migrate\n");
	return 2;
}
