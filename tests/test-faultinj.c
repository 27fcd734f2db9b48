// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Every call site of lib/ that can fail (lib/util/fail.h: allocations and
 * system calls) made to fail once, site by site, in real scenarios on this
 * host: each user-space backend usable here monitoring this process (and a
 * forked child where the backend can), with attributes and schemes
 * committed, pause and resume, results read, stop and unref; damon_probe()
 * of every backend; the kernel backend against a recorded sysfs tree
 * (tests/fixtures), never the host's.
 *
 * A counting run first records which scenario reaches which site. Then, for
 * every reached site, a forked child arms it, runs that scenario and checks:
 *  - the failure was said: an API call returned -errno with a sentence in
 *    damon_ctx_errmsg(), or damon_ctx_status() carries the error with its
 *    sentence (failures of the monitor thread), or the library absorbed it
 *    by design (the scenario completed: a best-effort call such as arming
 *    one sample page);
 *  - after stop and unref nothing is left: threads (/proc/self/task), fds
 *    (/proc/self/fd), mappings and their protections (/proc/self/maps), a
 *    mapping still registered for write protection (PAGEMAP_SCAN), a child,
 *    a fixture kdamond turned "on"; and under ASan, no leaked memory.
 * Built only with -Dfault_injection=true.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <damon/damon.h>

#include "test-util.h"
#include "faultinj.h"

#include "kernel/kernel.h"
#include "kernel/owner.h"
#include "ops/fault_sig.h"
#include "util/fail.h"

#define KDS "kernel/mm/damon/admin/kdamonds"

char *buf; /* the memory the scenarios work on */

static void said(struct outcome *o, const char *step, int rc, const char *msg, bool need_msg)
{
	if (o->rc)
		return;
	o->rc = rc;
	snprintf(o->step, sizeof(o->step), "%s", step);
	snprintf(o->msg, sizeof(o->msg), "%s", msg ? msg : "");
	if (need_msg && (!msg || !*msg)) {
		o->bad = 1;
		snprintf(o->why, sizeof(o->why), "%s returned %d (%s) without a sentence", step, rc,
			 strerror(-rc));
	}
}

/* An API call on @ctx: a failure must come with a sentence. */
#define STEP(o, ctx, name, expr)                                                          \
	do {                                                                              \
		int r_ = (expr);                                                          \
		if (r_ < 0) {                                                             \
			said(o, name, r_, (ctx) ? damon_ctx_errmsg(ctx) : NULL, !!(ctx)); \
			goto out;                                                         \
		}                                                                         \
	} while (0)

/* What the monitor thread says: an error must come with its sentence. */
static bool monitor_said(struct outcome *o, damon_ctx *ctx, struct damon_ctx_status *cs)
{
	cs->sz = sizeof(*cs);
	if (damon_ctx_status(ctx, cs) < 0)
		return false;
	if (cs->error)
		said(o, "damon_ctx_status", cs->error, cs->message, true);
	return cs->error != 0;
}

/* Wait for @n more snapshots; false when the monitor ended or said an error. */
static bool wait_snaps(struct outcome *o, damon_ctx *ctx, uint64_t n)
{
	struct damon_ctx_status cs;
	uint64_t want, t0 = dm_test_now_ms();

	if (monitor_said(o, ctx, &cs))
		return false;
	want = cs.nr_snapshots + n;
	while (dm_test_now_ms() - t0 < 3000) {
		for (volatile char *p = buf; p < buf + BUF_SZ / 4; p += 4096)
			*p += 1;
		if (monitor_said(o, ctx, &cs) || !cs.running)
			return false;
		if (cs.nr_snapshots >= want)
			return true;
		usleep(2000);
	}
	if (!o->rc)
		misbehaved(o, "no new snapshot in 3 s and no error said");
	return false;
}

/* A user-space backend through the public API, end to end. */
static void scen_backend(struct outcome *o, int backend, bool with_child, bool on_buf)
{
	DAMON_OPTS(damon_ctx_opts, opts, .backend = (uint32_t)backend,
		   .ops = on_buf ? DAMON_OPS_FVADDR : DAMON_OPS_VADDR, .sample_us = 2000,
		   .aggr_us = 20000, .update_us = 40000, .max_nr_regions = 100, .seed = 7,
		   .cpu_budget_permille = 1000);
	DAMON_OPTS(damon_attrs, attrs, .sample_us = 2000, .aggr_us = 30000, .update_us = 60000,
		   .min_nr_regions = 10, .max_nr_regions = 200);
	DAMOS_OPTS(willneed, .action = DAMOS_WILLNEED);
	DAMOS_OPTS(cold, .action = DAMOS_COLD, .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	struct damos_filter_opts anon = {
		.sz = sizeof(anon), .type = DAMOS_FILTER_ANON, .matching = 1, .allow = 1};
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damon_region reg = {.sz = sizeof(reg)};
	struct damon_hotness h = {.sz = sizeof(h)};
	struct damos_stats st = {.sz = sizeof(st)};
	struct damon_ctx_status cs;
	damon_snapshot *snap = NULL;
	damon_target *self = NULL;
	damon_ctx *ctx = NULL;
	damos *s1 = NULL, *s2 = NULL;
	pid_t kid = -1;

	STEP(o, ctx, "damon_ctx_new", damon_ctx_new(&ctx, &opts));
	STEP(o, ctx, "damon_ctx_add_target", damon_ctx_add_target(ctx, 0, &self));
	if (on_buf)
		STEP(o, ctx, "damon_target_add_range",
		     damon_target_add_range(self, (uint64_t)(uintptr_t)buf,
					    (uint64_t)(uintptr_t)buf + BUF_SZ));
	if (with_child) {
		kid = fork();
		if (kid == 0) {
			for (;;)
				pause();
		}
		STEP(o, ctx, "damon_ctx_add_target(child)", damon_ctx_add_target(ctx, kid, NULL));
	}
	STEP(o, ctx, "damon_ctx_start", damon_ctx_start(ctx));
	if (!wait_snaps(o, ctx, 2))
		goto out;
	STEP(o, ctx, "damon_ctx_set_attrs", damon_ctx_set_attrs(ctx, &attrs));
	STEP(o, ctx, "damon_ctx_add_scheme", damon_ctx_add_scheme(ctx, &willneed, &s1));
	STEP(o, ctx, "damon_ctx_add_scheme", damon_ctx_add_scheme(ctx, &cold, &s2));
	STEP(o, ctx, "damos_add_filter", damos_add_filter(s2, &anon));
#ifdef HAVE_LIBNUMA
	{
		DAMOS_OPTS(hot, .action = DAMOS_MIGRATE_HOT, .target_nid = 0, .min_nr_accesses = 1);

		STEP(o, ctx, "damon_ctx_add_scheme", damon_ctx_add_scheme(ctx, &hot, NULL));
	}
#endif
	STEP(o, ctx, "damon_ctx_commit", damon_ctx_commit(ctx));
	if (!wait_snaps(o, ctx, 2))
		goto out;
	STEP(o, ctx, "damon_ctx_pause", damon_ctx_pause(ctx));
	STEP(o, ctx, "damon_ctx_resume", damon_ctx_resume(ctx));
	if (!wait_snaps(o, ctx, 1))
		goto out;
	STEP(o, ctx, "damon_ctx_snapshot", damon_ctx_snapshot(ctx, &snap));
	STEP(o, ctx, "damon_snapshot_info", damon_snapshot_info(snap, &info));
	STEP(o, ctx, "damon_snapshot_region", damon_snapshot_region(snap, 0, &reg));
	damon_ctx_hotness(ctx, (uint64_t)(uintptr_t)buf, BUF_SZ, &h);
	STEP(o, ctx, "damos_get_stats", damos_get_stats(s1, &st));
	STEP(o, ctx, "damos_get_stats", damos_get_stats(s2, &st));
	monitor_said(o, ctx, &cs);
	STEP(o, ctx, "damon_ctx_stop", damon_ctx_stop(ctx));
out:
	damon_snapshot_unref(snap);
	if (ctx) {
		/* a monitor that ended by itself says -EALREADY here */
		int r = damon_ctx_stop(ctx);

		if (r < 0 && r != -EALREADY)
			said(o, "damon_ctx_stop", r, damon_ctx_errmsg(ctx), true);
		damon_ctx_unref(ctx);
	}
	if (kid > 0) {
		kill(kid, SIGKILL);
		waitpid(kid, NULL, 0);
	}
}

/* uffd_wp driven by damon_ctx_step() on fixed ranges (fvaddr). */
static void scen_uffd_manual(struct outcome *o)
{
	DAMON_OPTS(damon_ctx_opts, opts, .backend = DAMON_BACKEND_UFFD_WP, .ops = DAMON_OPS_FVADDR,
		   .flags = DAMON_CTX_MANUAL, .proc_root = "/proc", .sample_us = 1000,
		   .aggr_us = 5000, .update_us = 10000, .seed = 7, .cpu_budget_permille = 1000);
	struct damon_addr_range r[2] = {
		{(uint64_t)(uintptr_t)buf, (uint64_t)(uintptr_t)buf + BUF_SZ / 2},
		{(uint64_t)(uintptr_t)buf + BUF_SZ / 2, (uint64_t)(uintptr_t)buf + BUF_SZ},
	};
	struct damon_ctx_status cs;
	damon_target *t = NULL;
	damon_ctx *ctx = NULL;
	uint64_t next, t0;

	STEP(o, ctx, "damon_ctx_new", damon_ctx_new(&ctx, &opts));
	STEP(o, ctx, "damon_ctx_add_target", damon_ctx_add_target(ctx, 0, &t));
	STEP(o, ctx, "damon_target_set_ranges", damon_target_set_ranges(t, r, 2));
	STEP(o, ctx, "damon_ctx_start", damon_ctx_start(ctx));
	t0 = dm_test_now_ms();
	do {
		for (volatile char *p = buf; p < buf + BUF_SZ / 4; p += 4096)
			*p += 1;
		STEP(o, ctx, "damon_ctx_step", damon_ctx_step(ctx, &next));
		usleep(1000);
	} while (dm_test_now_ms() - t0 < 60);
	if (monitor_said(o, ctx, &cs))
		goto out;
	STEP(o, ctx, "damon_ctx_stop", damon_ctx_stop(ctx));
out:
	if (ctx) {
		int rc = damon_ctx_stop(ctx);

		if (rc < 0 && rc != -EALREADY)
			said(o, "damon_ctx_stop", rc, damon_ctx_errmsg(ctx), true);
		damon_ctx_unref(ctx);
	}
}

static void scen_uffd_wp(struct outcome *o)
{
	scen_backend(o, DAMON_BACKEND_UFFD_WP, false, false);
}

static void scen_soft_dirty(struct outcome *o)
{
	scen_backend(o, DAMON_BACKEND_SOFT_DIRTY, true, false);
}

/* fault on the test's buffer only: on all of the process it would arm pages
 * of the executable's data, the DM_FAIL() sites among them, which its
 * handler does not give back (see doc/fault-injection.md) */
static void scen_fault(struct outcome *o)
{
	scen_backend(o, DAMON_BACKEND_FAULT, false, true);
}

static void scen_page_idle(struct outcome *o)
{
	scen_backend(o, DAMON_BACKEND_PAGE_IDLE, true, false);
}

/* What the counting run's probes found usable. */
static bool probe_usable[DAMON_BACKEND_MAX + 1];
static bool probe_counted;

/* damon_probe() answers 0 with a sentence, whatever it meets: a backend
 * usable in the counting run and refused now says why in its reason. */
static void scen_probe(struct outcome *o)
{
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		struct damon_backend_status st = {.sz = sizeof(st)};
		int r = damon_probe(DAMON_OPS_VADDR, 0, b, &st);

		if (!probe_counted)
			probe_usable[b] = r == 0 && st.usable;
		else if (r == 0 && probe_usable[b] && !st.usable)
			said(o, "damon_probe", -EOPNOTSUPP, st.reason, true);

		if (r < 0) {
			said(o, "damon_probe", r, "", false);
			misbehaved(o, "damon_probe(%s) returned an undocumented %s",
				   damon_backend_name(b), strerror(-r));
			return;
		}
		if (!st.usable && !st.reason[0])
			misbehaved(o, "damon_probe(%s) refused without a reason",
				   damon_backend_name(b));
	}
}

/* ------------------------------------------------------------------------ */
/* The kernel backend against a copy of a recorded sysfs tree               */
/* ------------------------------------------------------------------------ */

static char kfx_dir[64];

static int kfx_write(const char *path, const char *val)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/sys/%s", kfx_dir, path);
	f = fopen(p, "w");
	if (!f)
		return -1;
	fputs(val, f);
	return fclose(f);
}

static const char *kfx_read(const char *path)
{
	static char v[64];
	char p[512];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/sys/%s", kfx_dir, path);
	v[0] = '\0';
	f = fopen(p, "r");
	if (!f)
		return "(missing)";
	n = fread(v, 1, sizeof(v) - 1, f);
	fclose(f);
	v[n] = '\0';
	while (n && v[n - 1] == '\n')
		v[--n] = '\0';
	return v;
}

/* A fresh tree whose kdamond 0 an exited libdamon process left (off). */
static int kfx_new(void)
{
	struct dm_owner_rec rec = {.owner = 999999999, .start_time = 1, .kdamond_pid = 4242};
	char cmd[900], run[96];

	snprintf(kfx_dir, sizeof(kfx_dir), "/tmp/libdamon-fi-XXXXXX");
	if (!mkdtemp(kfx_dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "cp -r '%s/sysfs-7.2' '%s/sys'", DM_FIXTURES, kfx_dir);
	if (system(cmd))
		return -1;
	/* a committed scheme goes to schemes/1 (the match-all one of the
	 * tried_regions path is 0); a plain file tree cannot create it */
	snprintf(cmd, sizeof(cmd),
		 "cp -a '%s/sys/%s/0/contexts/0/schemes/0' '%s/sys/%s/0/contexts/0/schemes/1'",
		 kfx_dir, KDS, kfx_dir, KDS);
	if (system(cmd))
		return -1;
	/* one region in the match-all scheme's tried_regions: a snapshot */
	snprintf(cmd, sizeof(cmd),
		 "d='%s/sys/%s/0/contexts/0/schemes/0/tried_regions/0' && mkdir -p \"$d\" && echo "
		 "4096 >\"$d/start\" && echo 1052672 >\"$d/end\" && echo 3 >\"$d/nr_accesses\" && "
		 "echo 2 >\"$d/age\"",
		 kfx_dir, KDS);
	if (system(cmd))
		return -1;
	snprintf(run, sizeof(run), "%s/run", kfx_dir);
	mkdir(run, 0700);
	if (dm_owner_write(run, 0, &rec, NULL) < 0 || kfx_write(KDS "/0/pid", "4242\n"))
		return -1;
	return 0;
}

static void kfx_free(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kfx_dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", kfx_dir);
	kfx_dir[0] = '\0';
}

/* Before the counting and the armed site: the test's own writes. */
static void kfx_setup(void)
{
	if (kfx_new() < 0)
		kfx_free(); /* what was copied; the scenario then says so */
}

static void scen_kernel(struct outcome *o)
{
	struct dm_scheme sc = {0}, *scp = &sc;
	struct dm_kernel_target t = {.id = 1, .pid = getpid()};
	struct dm_kernel_cfg cfg = {0};
	struct dm_publisher pub;
	struct dm_kernel *k = NULL;
	struct dm_err err = {0};
	char run[96], sys[96];
	uint64_t next;
	int r;

	if (!kfx_dir[0]) {
		misbehaved(o, "cannot copy the fixture tree");
		return;
	}
	snprintf(run, sizeof(run), "%s/run", kfx_dir);
	snprintf(sys, sizeof(sys), "%s/sys", kfx_dir);
	if (dm_publisher_init(&pub, NULL) < 0) {
		said(o, "dm_publisher_init", -ENOMEM, "", false);
		goto out_fx;
	}
	damos_opts_init(&sc.opts);
	sc.opts.action = DAMOS_STAT;
	cfg.sysfs_root = sys;
	cfg.run_dir = run;
	cfg.ops = DAMON_OPS_VADDR;
	cfg.attrs = (struct dm_mon_attrs){.sample_us = 5000,
					  .aggr_us = 100000,
					  .update_us = 1000000,
					  .min_nr_regions = 10,
					  .max_nr_regions = 1000};
	cfg.targets = &t;
	cfg.nr_targets = 1;
	cfg.pub = &pub;
	cfg.snapshots = DM_KSNAP_TRIED; /* never perf_event_open() on the host */
	r = dm_kernel_open(&k, &cfg, &err);
	if (r < 0) {
		said(o, "dm_kernel_open", r, err.msg, true);
		k = NULL;
		goto out;
	}
	usleep(110000); /* the state and tried_regions are read once per aggregation */
	r = dm_kernel_step(k, &next, &err);
	if (r < 0) {
		said(o, "dm_kernel_step", r, err.msg, true);
		goto out;
	}
	cfg.schemes = &scp;
	cfg.nr_schemes = 1;
	r = dm_kernel_commit(k, &cfg, &err);
	if (r < 0) {
		said(o, "dm_kernel_commit", r, err.msg, true);
		goto out;
	}
	/* no pause: the fixture's kdamond pid is made up, and a kdamond this
	 * process cannot see cannot pause (dm_kernel_pause() says so) */
	r = dm_kernel_update_stats(k, &err);
	if (r < 0)
		said(o, "dm_kernel_update_stats", r, err.msg, true);
out:
	dm_kernel_close(k, false);
	dm_publisher_fini(&pub);
	if (!strcmp(kfx_read(KDS "/0/state"), "on"))
		misbehaved(o, "the fixture's kdamond 0 was left on");
out_fx:
	kfx_free();
}

/* ------------------------------------------------------------------------ */
/* The runs                                                                 */
/* ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*run)(struct outcome *o);
	void (*setup)(void); /* what is not the library's: before counting or arming */
} scens[] = {
	// clang-format off
	{"probe", scen_probe, NULL},
	{"uffd_wp", scen_uffd_wp, NULL},
	{"uffd_wp-manual", scen_uffd_manual, NULL},
	{"soft_dirty", scen_soft_dirty, NULL},
	{"fault", scen_fault, NULL},
	{"page_idle", scen_page_idle, NULL},
	{"kernel-fixture", scen_kernel, kfx_setup},
	// clang-format on
};
#define NR_SCENS (sizeof(scens) / sizeof(scens[0]))

enum result { R_REPORTED, R_ABSORBED, R_NOT_FIRED, R_BAD };

/*
 * The fault backend keeps its SIGSEGV handler's state (a mapping and a
 * /proc/self/maps fd) for the life of the process once a context used it:
 * an application handler installed since may chain to ours, which must stay
 * valid. A child made by fork() starts without it; make it before the
 * "before" picture, so that only what a scenario leaves counts.
 */
static void prime(void)
{
	struct dm_fault_table *t;
	struct dm_err err;

	if (dm_fault_join(&t, 4, &err) == 0)
		dm_fault_leave(t);
}

/* Run scenario @sc in a child with @site armed; its verdict in @o. */
static enum result inject(size_t sc, struct dm_fail_site *site, struct outcome *o)
{
	int pfd[2], st = 0;
	ssize_t n;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	if (pipe(pfd) < 0)
		abort();
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct trace before;

		close(pfd[0]);
		alarm(30);
		prime();
		if (scens[sc].setup)
			scens[sc].setup();
		trace_take(&before);
		dm_fail_reset();
		dm_fail_arm(site, 0);
		scens[sc].run(o);
		dm_fail_arm(NULL, 0);
		trace_check(o, &before);
		if (!site->fired)
			o->rc = 1; /* not reached this time */
		free(before.maps);
		n = write(pfd[1], o, sizeof(*o));
		exit(n == (ssize_t)sizeof(*o) ? 0 : 1); /* exit(): LSan looks for leaks */
	}
	close(pfd[1]);
	n = read(pfd[0], o, sizeof(*o));
	close(pfd[0]);
	waitpid(pid, &st, 0);
	if (n != (ssize_t)sizeof(*o) || !WIFEXITED(st) || WEXITSTATUS(st)) {
		o->bad = 1;
		snprintf(o->why, sizeof(o->why), "the child %s %d (crash, hang or leak: see above)",
			 WIFSIGNALED(st) ? "died of signal" : "exited with",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		return R_BAD;
	}
	if (o->bad)
		return R_BAD;
	if (o->rc == 1)
		return R_NOT_FIRED;
	return o->rc ? R_REPORTED : R_ABSORBED;
}

static const char *site_name(const struct dm_fail_site *s)
{
	static char b[160];
	const char *f = strstr(s->file, "lib/");

	snprintf(b, sizeof(b), "%s:%d (%s)", f ? f : s->file, s->line, strerror(s->err));
	return b;
}

/* Which scenario reaches each site first: static, not allocated, so that
 * LSan has nothing to say about it at a child's exit. */
static int first[1024];

static void test_every_site(void)
{
	struct dm_fail_site *sites;
	size_t nr = dm_fail_sites(&sites), reached = 0, checked = 0, bad = 0, absorbed = 0;
	size_t not_fired = 0;

	bool usable[NR_SCENS];
	uint64_t t0 = dm_test_now_ms();

	CU_ASSERT_FATAL(nr > 0 && nr <= sizeof(first) / sizeof(first[0]));
	for (size_t i = 0; i < nr; i++) {
		CU_ASSERT_EQUAL_FATAL(sites[i].magic, DM_FAIL_MAGIC);
		first[i] = -1;
	}
	/* Twice: the first run warms up what stays (malloc arenas, the thread
	 * stack cache), the second counts. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t sc = 0; sc < NR_SCENS; sc++) {
			struct outcome o = {0};

			if (scens[sc].setup)
				scens[sc].setup();
			dm_fail_reset();
			scens[sc].run(&o);
			if (sc == 0)
				probe_counted = pass == 1;
			usable[sc] = !o.rc && !o.bad;
			if (pass == 0 && !usable[sc])
				continue;
			if (pass == 0) {
				/* what a process does once (pthread_atfork) */
				for (size_t i = 0; i < nr; i++)
					if (sites[i].hits && first[i] < 0)
						first[i] = (int)sc;
				continue;
			}
			if (!usable[sc]) {
				printf("\n  %s: not usable here (%s: %s%s)", scens[sc].name, o.step,
				       o.msg, o.why);
				continue;
			}
			for (size_t i = 0; i < nr; i++)
				if (sites[i].hits && first[i] < 0)
					first[i] = (int)sc;
		}
	}
	for (size_t i = 0; i < nr; i++) {
		struct outcome o;

		if (first[i] < 0)
			continue;
		reached++;
		switch (inject((size_t)first[i], &sites[i], &o)) {
		case R_REPORTED:
			checked++;
			printf("\n  %-40s %-14s %s: %s: %s", site_name(&sites[i]),
			       scens[first[i]].name, o.step, strerror(-o.rc), o.msg);
			break;
		case R_ABSORBED:
			checked++;
			absorbed++;
			printf("\n  %-40s %-14s absorbed (the scenario completed)",
			       site_name(&sites[i]), scens[first[i]].name);
			break;
		case R_NOT_FIRED:
			not_fired++;
			printf("\n  %-40s %-14s not reached again when armed", site_name(&sites[i]),
			       scens[first[i]].name);
			break;
		case R_BAD:
			bad++;
			printf("\n  %-40s %-14s FAILED: %s%s%s", site_name(&sites[i]),
			       scens[first[i]].name, o.why, o.step[0] ? " / said: " : "", o.msg);
			break;
		}
	}
	printf("\n  never reached on this host:");
	for (size_t i = 0; i < nr; i++)
		if (first[i] < 0)
			printf("\n    %s", site_name(&sites[i]));
	printf("\n  fault injection: %zu of %zu call sites failed once and checked "
	       "(%zu reached, %zu of them absorbed by design, %zu not reached again, %zu "
	       "failed) in %.1f s\n",
	       checked, nr, reached, absorbed, not_fired, bad,
	       (double)(dm_test_now_ms() - t0) / 1000.0);
	EXPECT(bad == 0, "%zu call sites misbehaved (above)", bad);
	EXPECT(checked > 0, "no call site was checked");
}

int main(void)
{
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	memset(buf, 1, BUF_SZ);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("faultinj", NULL, NULL);

	CU_add_test(s, "every call site fails once", test_every_site);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned int nf = CU_get_number_of_failures();

	CU_cleanup_registry();
	return nf ? 1 : 0;
}
