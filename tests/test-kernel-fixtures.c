// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The kernel backend (lib/kernel) against recorded DAMON sysfs trees: the
 * trees of Debian's 6.12 and 7.2 captured in the test VM
 * (tests/fixtures/sysfs-6.12, sysfs-7.2: one kdamond, context, target,
 * region, scheme, filter and quota goal), copied into a temp dir and then
 * bent: someone else's kdamond, an orphan of a dead libdamon process, an
 * exclusive module running, missing files, garbage values, paths that cannot
 * be written. Every case must end in a sentence or a snapshot, never a
 * crash, and a refusal must leave nothing behind. Plain files do not act
 * like sysfs (writing nr_kdamonds creates nothing), so the trees already
 * hold the directories a write would create.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "kernel/kernel.h"
#include "kernel/kernel_int.h"
#include "kernel/kscheme.h"
#include "kernel/owner.h"
#include "probe/probe.h"

#define KDS "kernel/mm/damon/admin/kdamonds"
#define CTX KDS "/0/contexts/0"

#define EXPECT_HAS(s, what)                                                            \
	do {                                                                           \
		if (!strstr((s), (what))) {                                            \
			fprintf(stderr, "\nexpected \"%s\" in \"%s\"\n", (what), (s)); \
			CU_FAIL("sentence");                                           \
		}                                                                      \
	} while (0)

struct fx {
	char dir[64]; /* temp dir: sys/, run/ */
	char sys[96], run[96];
};

static void fx_new(struct fx *f, const char *tree)
{
	char cmd[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/libdamon-kfx-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(f->dir));
	snprintf(f->sys, sizeof(f->sys), "%s/sys", f->dir);
	snprintf(f->run, sizeof(f->run), "%s/run", f->dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s/%s' '%s'", DM_FIXTURES, tree, f->sys);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

static void fx_free(struct fx *f)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static void fx_write(const struct fx *f, const char *path, const char *val)
{
	char p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", f->sys, path);
	fp = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(val, fp);
	fclose(fp);
}

static const char *fx_read(const struct fx *f, const char *path)
{
	static char buf[256];
	char p[512];
	FILE *fp;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", f->sys, path);
	buf[0] = '\0';
	fp = fopen(p, "r");
	if (!fp)
		return "(missing)";
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return buf;
}

static void fx_rm(const struct fx *f, const char *path)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", f->sys, path);
	CU_ASSERT_EQUAL(unlink(p), 0);
}

/* Replace a file by a directory: it can be neither read nor written. */
static void fx_block(const struct fx *f, const char *path)
{
	char p[512];

	fx_rm(f, path);
	snprintf(p, sizeof(p), "%s/%s", f->sys, path);
	CU_ASSERT_EQUAL(mkdir(p, 0755), 0);
}

/* A record for kdamond 0 whose owner is gone. */
static void fx_orphan(const struct fx *f)
{
	struct dm_owner_rec rec = {.owner = 999999999, .start_time = 1, .kdamond_pid = 4242};

	mkdir(f->run, 0700);
	CU_ASSERT_EQUAL(dm_owner_write(f->run, 0, &rec, NULL), 0);
}

static bool has_record(const struct fx *f)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/kdamond-0.owner", f->run);
	return access(p, F_OK) == 0;
}

struct run {
	struct dm_publisher pub;
	struct dm_kernel_target t;
	struct dm_range range;
	struct dm_kernel_cfg cfg;
	struct dm_err err;
	struct dm_kernel *k;
};

static void run_init(struct run *r, const struct fx *f, uint32_t ops)
{
	memset(r, 0, sizeof(*r));
	CU_ASSERT_EQUAL_FATAL(dm_publisher_init(&r->pub, NULL), 0);
	r->t.id = 5;
	r->t.pid = getpid();
	if (ops != DAMON_OPS_VADDR) {
		r->range.start = 0x100000;
		r->range.end = 0x7ffe0000;
		r->t.fixed = &r->range;
		r->t.nr_fixed = 1;
	}
	r->cfg.sysfs_root = f->sys;
	r->cfg.run_dir = f->run;
	r->cfg.ops = ops;
	r->cfg.attrs = (struct dm_mon_attrs){.sample_us = 5000,
					     .aggr_us = 100000,
					     .update_us = 1000000,
					     .min_nr_regions = 10,
					     .max_nr_regions = 1000};
	r->cfg.targets = &r->t;
	r->cfg.nr_targets = 1;
	r->cfg.pub = &r->pub;
	/* never perf_event_open() on the host: the fixture's kdamond pid is made up */
	r->cfg.snapshots = DM_KSNAP_TRIED;
}

static int run_open(struct run *r)
{
	int rc = dm_kernel_open(&r->k, &r->cfg, &r->err);

	printf("\n    open: %d %s", rc, rc ? r->err.msg : "ok");
	return rc;
}

static void run_fini(struct run *r)
{
	dm_kernel_close(r->k, false);
	r->k = NULL;
	dm_publisher_fini(&r->pub);
}

/* After a refusal: the tree as it was, no record. */
static void expect_untouched(const struct fx *f, const char *state)
{
	CU_ASSERT_STRING_EQUAL(fx_read(f, KDS "/nr_kdamonds"), "1");
	CU_ASSERT_STRING_EQUAL(fx_read(f, KDS "/0/state"), state);
	CU_ASSERT_STRING_EQUAL(fx_read(f, CTX "/monitoring_attrs/intervals/sample_us"), "5000");
	CU_ASSERT_FALSE(has_record(f));
}

/* After a refusal: nr_kdamonds and the context as they were (a record may be). */
static void expect_untouched_rec(const struct fx *f)
{
	CU_ASSERT_STRING_EQUAL(fx_read(f, KDS "/nr_kdamonds"), "1");
	CU_ASSERT_STRING_EQUAL(fx_read(f, CTX "/monitoring_attrs/intervals/sample_us"), "5000");
}

/* After a failure that had taken DAMON: everything given back. */
static void expect_released(const struct fx *f)
{
	CU_ASSERT_STRING_EQUAL(fx_read(f, KDS "/nr_kdamonds"), "0");
	CU_ASSERT_STRING_NOT_EQUAL(fx_read(f, KDS "/0/state"), "on");
	CU_ASSERT_FALSE(has_record(f));
}

static const char *const trees[] = {"sysfs-6.12", "sysfs-7.2"};

/* ------------------------------------------------------------------------ */

static void test_foreign(void)
{
	for (size_t i = 0; i < 2; i++) {
		struct fx f;
		struct run r;

		fx_new(&f, trees[i]);
		run_init(&r, &f, DAMON_OPS_VADDR);
		CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
		EXPECT_HAS(r.err.msg, "kdamond 0 exists (off) and is not libdamon's");
		expect_untouched(&f, "off");
		CU_ASSERT_NOT_EQUAL(access(f.run, F_OK), 0); /* refused by reading only */

		fx_write(&f, KDS "/0/state", "on\n");
		fx_write(&f, KDS "/0/pid", "4242\n");
		CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
		EXPECT_HAS(r.err.msg, "kdamond 0 (pid 4242) is running and is not libdamon's");
		expect_untouched(&f, "on");

		/* allow_takeover takes idle ones only */
		r.cfg.allow_takeover = true;
		CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
		expect_untouched(&f, "on");
		run_fini(&r);
		fx_free(&f);
	}
}

static void test_modules_and_no_damon(void)
{
	struct fx f;
	struct run r;

	fx_new(&f, "sysfs-7.2");
	fx_orphan(&f);
	fx_write(&f, "module/damon_stat/parameters/enabled", "Y\n");
	run_init(&r, &f, DAMON_OPS_VADDR);
	CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
	EXPECT_HAS(r.err.msg, "DAMON_STAT is running and DAMON allows no other kdamond");
	EXPECT_HAS(r.err.msg, "module/damon_stat/parameters/enabled");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/nr_kdamonds"), "1");
	fx_write(&f, "module/damon_stat/parameters/enabled", "N\n");
	fx_write(&f, "module/damon_reclaim/parameters/enabled", "Y\n");
	CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
	EXPECT_HAS(r.err.msg, "DAMON_RECLAIM is running");
	run_fini(&r);
	fx_free(&f);

	/* no DAMON at all (6.1) */
	fx_new(&f, "sysfs-7.2");
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s/kernel/mm/damon'", f.sys);
		CU_ASSERT_EQUAL(system(cmd), 0);
	}
	run_init(&r, &f, DAMON_OPS_VADDR);
	CU_ASSERT_EQUAL(run_open(&r), -EOPNOTSUPP);
	EXPECT_HAS(r.err.msg, "this kernel has no DAMON sysfs interface");
	run_fini(&r);
	fx_free(&f);
}

/* A libdamon owner that lives (our parent, recorded with its start time). */
static void test_live_owner(void)
{
	struct dm_owner_rec rec = {.owner = getppid()};
	struct fx f;
	struct run r;

	fx_new(&f, "sysfs-6.12");
	mkdir(f.run, 0700);
	CU_ASSERT_EQUAL_FATAL(dm_proc_start_time(NULL, rec.owner, &rec.start_time), 0);
	CU_ASSERT_EQUAL(dm_owner_write(f.run, 0, &rec, NULL), 0);
	run_init(&r, &f, DAMON_OPS_VADDR);
	CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
	EXPECT_HAS(r.err.msg, "belongs to libdamon process");
	CU_ASSERT_TRUE(has_record(&f)); /* not ours to remove */
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/nr_kdamonds"), "1");

	/* the same pid with another start time: a recycled pid, an orphan */
	rec.start_time++;
	CU_ASSERT_EQUAL(dm_owner_write(f.run, 0, &rec, NULL), 0);
	fx_write(&f, KDS "/0/pid", "4242\n");
	CU_ASSERT_EQUAL(run_open(&r), 0);
	CU_ASSERT_EQUAL(r.k ? r.k->reclaimed : 0, 1);
	run_fini(&r);
	fx_free(&f);
}

/* An orphan is reclaimed; the whole context is written; tried_regions read. */
static void test_orphan_full(void)
{
	for (size_t i = 0; i < 2; i++) {
		struct damon_snapshot *s;
		uint64_t next = 0;
		char p[512];
		struct fx f;
		struct run r;

		fx_new(&f, trees[i]);
		fx_orphan(&f);
		fx_write(&f, KDS "/0/state", "on\n"); /* the orphan still runs */
		fx_write(&f, KDS "/0/pid", "4242\n");
		run_init(&r, &f, DAMON_OPS_VADDR);
		CU_ASSERT_EQUAL_FATAL(run_open(&r), 0);
		CU_ASSERT_EQUAL(r.k->reclaimed, 1);
		CU_ASSERT_TRUE(has_record(&f));
		CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "on");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/operations"), "vaddr");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/monitoring_attrs/intervals/aggr_us"),
				       "100000");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/monitoring_attrs/intervals/update_us"),
				       "1000000");
		snprintf(p, sizeof(p), "%d", (int)getpid());
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/pid_target"), p);
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/regions/nr_regions"), "0");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/nr_schemes"), "1");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/action"), "stat");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/access_pattern/sz/max"),
				       "18446744073709551615");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/access_pattern/nr_accesses/max"),
				       "4294967295");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/access_pattern/age/max"),
				       "4294967295");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/watermarks/metric"), "none");
		CU_ASSERT_EQUAL(dm_kernel_kdamond_pid(r.k), 4242);

		/* a second context of this process: refused, the first keeps its lock */
		{
			struct run r2;
			int st = -1, lfd = -1;
			pid_t pid;

			run_init(&r2, &f, DAMON_OPS_VADDR);
			CU_ASSERT_EQUAL(run_open(&r2), -EBUSY);
			EXPECT_HAS(r2.err.msg, "this process already drives kernel DAMON");
			run_fini(&r2);
			pid = fork();
			if (pid == 0)
				_exit(dm_owner_lock(f.run, &lfd, NULL) == -EBUSY ? 0 : 1);
			waitpid(pid, &st, 0);
			CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
			CU_ASSERT_TRUE(has_record(&f));
		}

		/* regions named as 6.12 names them with two schemes: 1, 3 */
		static const char *const reg[][5] = {
			{"1", "4096", "1052672", "20", "3"},
			{"3", "1052672", "3149824", "0", "7"},
		};
		for (size_t j = 0; j < 2; j++) {
			static const char *const fn[] = {"start", "end", "nr_accesses", "age"};

			snprintf(p, sizeof(p), "%s/" CTX "/schemes/0/tried_regions/%s", f.sys,
				 reg[j][0]);
			mkdir(p, 0755);
			for (size_t k = 0; k < 4; k++) {
				snprintf(p, sizeof(p), CTX "/schemes/0/tried_regions/%s/%s",
					 reg[j][0], fn[k]);
				fx_write(&f, p, reg[j][k + 1]);
			}
		}
		usleep(120000); /* one aggregation interval */
		CU_ASSERT_EQUAL(dm_kernel_step(r.k, &next, &r.err), 0);
		s = dm_publisher_get(&r.pub);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_EQUAL(s->nr_regions, 2);
		CU_ASSERT_EQUAL(s->nr_targets, 1);
		CU_ASSERT_EQUAL(s->targets[0].id, 5);
		CU_ASSERT_EQUAL(s->regions[0].start, 4096);
		CU_ASSERT_EQUAL(s->regions[0].access_rate_bp, 10000);
		CU_ASSERT_EQUAL(s->regions[1].access_rate_bp, 0);
		CU_ASSERT_EQUAL(s->regions[1].age, 7);
		CU_ASSERT_EQUAL(s->info.backend, DAMON_BACKEND_KERNEL);
		CU_ASSERT_EQUAL(s->info.max_nr_accesses, 20);
		damon_snapshot_unref(s);

		/* garbage in tried_regions: an error with the file named, no crash */
		snprintf(p, sizeof(p), CTX "/schemes/0/tried_regions/3/nr_accesses");
		fx_write(&f, p, "lots\n");
		usleep(120000);
		CU_ASSERT_EQUAL(dm_kernel_step(r.k, &next, &r.err), -EINVAL);
		printf("\n    garbage: %s", r.err.msg);
		EXPECT_HAS(r.err.msg, "tried_regions/3/nr_accesses reads \"lots\", not a number");
		/* a region dir without its files */
		fx_rm(&f, CTX "/schemes/0/tried_regions/3/nr_accesses");
		usleep(120000);
		CU_ASSERT_EQUAL(dm_kernel_step(r.k, &next, &r.err), -ENOENT);
		EXPECT_HAS(r.err.msg, "tried_regions/3/nr_accesses cannot be read");

		/* the kdamond stopped and the target (us) lives: said so */
		fx_write(&f, KDS "/0/state", "off\n");
		usleep(120000); /* the state is read once per aggregation interval */
		CU_ASSERT_EQUAL(dm_kernel_step(r.k, &next, &r.err), -ESRCH);
		EXPECT_HAS(r.err.msg, "stopped");

		run_fini(&r);
		expect_released(&f);
		fx_free(&f);
	}
}

/* Missing, garbage and unwritable files while writing the context. */
static void bend_avail_missing(const struct fx *f)
{
	fx_rm(f, CTX "/avail_operations");
}
static void bend_avail_garbage(const struct fx *f)
{
	fx_write(f, CTX "/avail_operations", "paddr\n");
}
static void bend_sample_unwritable(const struct fx *f)
{
	fx_block(f, CTX "/monitoring_attrs/intervals/sample_us");
}
static void bend_pid_garbage(const struct fx *f)
{
	fx_write(f, KDS "/0/pid", "-1\n");
}
static void bend_scheme_missing(const struct fx *f)
{
	fx_rm(f, CTX "/schemes/0/quotas/weights/age_permil");
}
static void bend_state_missing(const struct fx *f)
{
	fx_rm(f, KDS "/0/state");
}
static void bend_avail_nul(const struct fx *f)
{
	char p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/" CTX "/avail_operations", f->sys);
	fp = fopen(p, "w");
	fwrite("vaddr\0x", 1, 7, fp);
	fclose(fp);
}

static void test_malformed_trees(void)
{
	static const struct {
		void (*bend)(const struct fx *f);
		int code;
		const char *said;
		bool released; /* DAMON had been taken: all given back */
	} cases[] = {
		{bend_avail_missing, -ENOENT, "avail_operations cannot be read", true},
		{bend_avail_garbage, -EOPNOTSUPP, "offers \"paddr\", no vaddr", true},
		{bend_avail_nul, -EINVAL, "avail_operations holds a NUL byte", true},
		{bend_sample_unwritable, -EISDIR,
		 "intervals/sample_us cannot be opened for writing", true},
		{bend_pid_garbage, -EINVAL, "kdamonds/0/pid reads \"-1\", not a number", true},
		{bend_scheme_missing, -ENOENT, "weights/age_permil cannot be opened for writing",
		 true},
		{bend_state_missing, -ENOENT, "state", true},
	};

	for (size_t t = 0; t < 2; t++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct fx f;
			struct run r;
			int rc;

			fx_new(&f, trees[t]);
			fx_orphan(&f);
			fx_write(&f, KDS "/0/pid", "4242\n");
			cases[i].bend(&f);
			run_init(&r, &f, DAMON_OPS_VADDR);
			rc = run_open(&r);
			if (rc != cases[i].code)
				fprintf(stderr, "\n%s case %zu: got %d, want %d\n", trees[t], i, rc,
					cases[i].code);
			CU_ASSERT_EQUAL(rc, cases[i].code);
			CU_ASSERT_PTR_NULL(r.k);
			EXPECT_HAS(r.err.msg, cases[i].said);
			if (cases[i].released && cases[i].bend != bend_state_missing)
				expect_released(&f);
			CU_ASSERT_FALSE(has_record(&f));
			run_fini(&r);
			fx_free(&f);
		}
	}
}

/* fvaddr and paddr regions; paddr's default from a recorded /proc/iomem. */
static void test_fixed_regions(void)
{
	struct fx f;
	struct run r;
	char proc[160], p[200];
	FILE *fp;

	fx_new(&f, "sysfs-6.12");
	fx_orphan(&f);
	fx_write(&f, KDS "/0/pid", "4242\n");
	run_init(&r, &f, DAMON_OPS_FVADDR);
	CU_ASSERT_EQUAL(run_open(&r), 0);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/operations"), "fvaddr");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/regions/nr_regions"), "1");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/regions/0/start"), "1048576");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/regions/0/end"), "2147352576");
	run_fini(&r);
	fx_free(&f);

	/* paddr without ranges: the System RAM of a recorded iomem (one range
	 * fits the fixture's one region directory) */
	fx_new(&f, "sysfs-7.2");
	fx_orphan(&f);
	fx_write(&f, KDS "/0/pid", "4242\n");
	snprintf(proc, sizeof(proc), "%s/proc", f.dir);
	mkdir(proc, 0755);
	snprintf(p, sizeof(p), "%s/iomem", proc);
	fp = fopen(p, "w");
	fputs("00000000-00000fff : Reserved\n00100000-7ffdffff : System RAM\n"
	      "  01000000-01ffffff : Kernel code\n",
	      fp);
	fclose(fp);
	snprintf(p, sizeof(p), "%s/self", proc);
	CU_ASSERT_EQUAL(symlink("/proc/self", p), 0);
	run_init(&r, &f, DAMON_OPS_PADDR);
	r.t.fixed = NULL;
	r.t.nr_fixed = 0;
	r.cfg.proc_root = proc;
	CU_ASSERT_EQUAL(run_open(&r), 0);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/operations"), "paddr");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/regions/0/start"), "1048576");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/targets/0/regions/0/end"), "2147352576");
	run_fini(&r);

	/* paddr takes one target */
	run_init(&r, &f, DAMON_OPS_PADDR);
	struct dm_kernel_target two[2] = {r.t, r.t};
	r.cfg.targets = two;
	r.cfg.nr_targets = 2;
	r.cfg.proc_root = proc;
	fx_orphan(&f);
	CU_ASSERT_EQUAL(run_open(&r), -EINVAL);
	EXPECT_HAS(r.err.msg, "paddr takes exactly one target");
	run_fini(&r);
	fx_free(&f);
}

/*
 * migrate_cold on vaddr: 6.12 takes the action but its vaddr operations do
 * nothing with it, which only the missing dests directory tells; refused
 * there, written where vaddr migration exists (7.2) and for paddr.
 */
static void test_migrate_vaddr(void)
{
	static const struct {
		const char *tree;
		uint32_t ops;
		int rc;
	} cases[] = {
		{"sysfs-6.12", DAMON_OPS_VADDR, -EOPNOTSUPP},
		{"sysfs-6.12", DAMON_OPS_PADDR, 0},
		{"sysfs-7.2", DAMON_OPS_VADDR, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dm_scheme sc = {0}, *scp = &sc;
		char cmd[600];
		struct fx f;
		struct run r;

		fx_new(&f, cases[i].tree);
		fx_orphan(&f);
		fx_write(&f, KDS "/0/pid", "4242\n");
		/* the match-all scheme of the tried_regions path goes to schemes/1 */
		snprintf(cmd, sizeof(cmd), "cp -a '%s/" CTX "/schemes/0' '%s/" CTX "/schemes/1'",
			 f.sys, f.sys);
		CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
		damos_opts_init(&sc.opts);
		sc.opts.action = DAMOS_MIGRATE_COLD;
		sc.opts.target_nid = 1;
		sc.opts.max_nr_accesses = 0;
		run_init(&r, &f, cases[i].ops);
		if (cases[i].ops == DAMON_OPS_PADDR) {
			r.t.fixed = &r.range; /* no iomem in the fixture: give the range */
			r.t.nr_fixed = 1;
		}
		r.cfg.schemes = &scp;
		r.cfg.nr_schemes = 1;
		CU_ASSERT_EQUAL(run_open(&r), cases[i].rc);
		if (cases[i].rc) {
			EXPECT_HAS(r.err.msg, "migrate_cold for vaddr but its virtual address "
					      "operations do not implement it");
			EXPECT_HAS(r.err.msg, "schemes/0/dests");
			expect_released(&f);
		} else {
			CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/action"),
					       "migrate_cold");
			CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/target_nid"), "1");
		}
		run_fini(&r);
		fx_free(&f);
	}
}

/* ------------------------------------------------------------------------ */
/* Quota goals and filters (lib/kernel/kscheme.c) */

/* A file of the tree holds @want; both printed when not. */
#define EXPECT_FILE(f, path, want)                                                           \
	do {                                                                                 \
		const char *got_ = fx_read((f), (path));                                     \
		bool same_ = !strcmp(got_, (want));                                          \
		if (!same_)                                                                  \
			fprintf(stderr, "\n  %s:%d: %s: expected \"%s\", got \"%s\"\n",      \
				__FILE__, __LINE__, (path), (want), fx_read((f), (path)));   \
		CU_ASSERT_TRUE(same_);                                                       \
	} while (0)

#define S0 CTX "/schemes/0"

/* Remove a directory of the tree. */
static void fx_rmrf(const struct fx *f, const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", f->sys, path);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

/* Where writing a word fails with EINVAL, as the kernel's files do for a
 * word they do not know (a number is what this proc file takes). */
static void fx_einval(const struct fx *f, const char *path)
{
	char p[512];

	fx_rm(f, path);
	snprintf(p, sizeof(p), "%s/%s", f->sys, path);
	CU_ASSERT_EQUAL(symlink("/proc/self/coredump_filter", p), 0);
}

/* A scheme with room for goals and filters. */
struct ksc {
	struct dm_scheme sc;
	struct dm_scheme *p;
	struct dm_goal goals[4];
	struct damos_filter_opts filters[8];
};

static void ksc_init(struct ksc *s, uint32_t action)
{
	memset(s, 0, sizeof(*s));
	damos_opts_init(&s->sc.opts);
	s->sc.opts.action = action;
	s->sc.opts.max_nr_accesses = 0;
	s->sc.opts.quota_reset_interval_ms = 1000;
	s->sc.goals = s->goals;
	s->sc.filters = s->filters;
	s->p = &s->sc;
	dm_scheme_reset(&s->sc);
}

static void ksc_goal(struct ksc *s, uint32_t metric, uint32_t nid, uint64_t target, uint64_t cur)
{
	struct damos_goal_opts *g = &s->goals[s->sc.nr_goals++].opts;

	g->sz = sizeof(*g);
	g->metric = metric;
	g->nid = nid;
	g->target_value = target;
	g->current_value = cur;
}

static struct damos_filter_opts *ksc_filter(struct ksc *s, uint32_t type, bool matching,
					    bool allow)
{
	struct damos_filter_opts *o = &s->filters[s->sc.nr_filters++];

	o->sz = sizeof(*o);
	o->type = type;
	o->matching = matching;
	o->allow = allow;
	return o;
}

static struct damos_filter_opts *ksc_addr(struct ksc *s, bool allow, uint64_t a, uint64_t b)
{
	struct damos_filter_opts *o = ksc_filter(s, DAMOS_FILTER_ADDR, true, allow);

	o->addr_start = a;
	o->addr_end = b;
	return o;
}

/*
 * A tree with an orphan to reclaim, schemes/1 for the match-all scheme of
 * the tried_regions path, and the directories writing nr_goals and
 * nr_filters would create: goals/1, and filters 0..4 in every filters
 * directory the kernel has.
 */
static void fx_new_schemes(struct fx *f, const char *tree)
{
	char cmd[2048];
	int n;

	fx_new(f, tree);
	fx_orphan(f);
	fx_write(f, KDS "/0/pid", "4242\n");
	/* one shell for all the copies: a process each costs more than the test */
	n = snprintf(cmd, sizeof(cmd),
		     "cd '%s/" S0 "' && cp -a . ../1 && cp -a quotas/goals/0 quotas/goals/1 && "
		     "for d in filters core_filters ops_filters; do [ -d $d ] || continue; "
		     "for i in 0 1 2 3 4; do [ -d $d/$i ] || cp -a filters/0 $d/$i; done; done",
		     f->sys);
	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(cmd));
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

static int ksc_open(struct run *r, const struct fx *f, uint32_t ops, struct ksc *s)
{
	run_init(r, f, ops);
	if (ops != DAMON_OPS_VADDR) {
		r->t.fixed = &r->range; /* no iomem in the fixture: give the range */
		r->t.nr_fixed = 1;
	}
	r->cfg.schemes = &s->p;
	r->cfg.nr_schemes = 1;
	return run_open(r);
}

/* 7.2: goals, and filters of both layers in core_filters/ and ops_filters/;
 * then a user_input value passed on, and the effective quota read back. */
static void test_goals_filters_72(void)
{
	struct damos_filter_opts *o;
	struct ksc s, late;
	uint64_t next = 0;
	struct fx f;
	struct run r;

	fx_new_schemes(&f, "sysfs-7.2");
	ksc_init(&s, DAMOS_PAGEOUT);
	ksc_goal(&s, DAMOS_GOAL_USER_INPUT, 0, 1000, 250);
	ksc_goal(&s, DAMOS_GOAL_NODE_MEM_FREE_BP, 1, 2000, 0);
	ksc_addr(&s, false, 0x200000, 0x400000);
	ksc_filter(&s, DAMOS_FILTER_ANON, true, true);
	ksc_filter(&s, DAMOS_FILTER_TARGET, false, false)->target_idx = 0;
	ksc_filter(&s, DAMOS_FILTER_MEMCG, true, false)->memcg_path = "/workload/batch";
	o = ksc_filter(&s, DAMOS_FILTER_HUGEPAGE_SIZE, true, false);
	o->min_sz = 2 << 20;
	o->max_sz = 2 << 20;
	EXPECT_EQ(ksc_open(&r, &f, DAMON_OPS_PADDR, &s), 0);

	EXPECT_FILE(&f, S0 "/quotas/goals/nr_goals", "2");
	EXPECT_FILE(&f, S0 "/quotas/goals/0/target_metric", "user_input");
	EXPECT_FILE(&f, S0 "/quotas/goals/0/target_value", "1000");
	EXPECT_FILE(&f, S0 "/quotas/goals/0/current_value", "250");
	EXPECT_FILE(&f, S0 "/quotas/goals/1/target_metric", "node_mem_free_bp");
	EXPECT_FILE(&f, S0 "/quotas/goals/1/target_value", "2000");
	EXPECT_FILE(&f, S0 "/quotas/goals/1/nid", "1");
	/* the deprecated filters/ emptied; each layer in its own, in order */
	EXPECT_FILE(&f, S0 "/filters/nr_filters", "0");
	EXPECT_FILE(&f, S0 "/core_filters/nr_filters", "2");
	EXPECT_FILE(&f, S0 "/core_filters/0/type", "addr");
	EXPECT_FILE(&f, S0 "/core_filters/0/matching", "Y");
	EXPECT_FILE(&f, S0 "/core_filters/0/allow", "N");
	EXPECT_FILE(&f, S0 "/core_filters/0/addr_start", "2097152");
	EXPECT_FILE(&f, S0 "/core_filters/0/addr_end", "4194304");
	EXPECT_FILE(&f, S0 "/core_filters/1/type", "target");
	EXPECT_FILE(&f, S0 "/core_filters/1/matching", "N");
	EXPECT_FILE(&f, S0 "/core_filters/1/damon_target_idx", "0");
	EXPECT_FILE(&f, S0 "/ops_filters/nr_filters", "3");
	EXPECT_FILE(&f, S0 "/ops_filters/0/type", "anon");
	EXPECT_FILE(&f, S0 "/ops_filters/0/allow", "Y");
	EXPECT_FILE(&f, S0 "/ops_filters/1/type", "memcg");
	EXPECT_FILE(&f, S0 "/ops_filters/1/memcg_path", "/workload/batch");
	EXPECT_FILE(&f, S0 "/ops_filters/2/type", "hugepage_size");
	EXPECT_FILE(&f, S0 "/ops_filters/2/min", "2097152");
	EXPECT_FILE(&f, S0 "/ops_filters/2/max", "2097152");
	/* the match-all scheme: no goals, no filters */
	EXPECT_FILE(&f, CTX "/schemes/1/action", "stat");
	EXPECT_FILE(&f, CTX "/schemes/1/quotas/goals/nr_goals", "0");
	EXPECT_FILE(&f, CTX "/schemes/1/core_filters/nr_filters", "0");
	EXPECT_FILE(&f, CTX "/schemes/1/ops_filters/nr_filters", "0");

	/* damos_set_goal_current(): the file, then the kdamond told */
	EXPECT_EQ(dm_kernel_set_goal_current(r.k, &s.sc, 0, 777, &r.err), 0);
	EXPECT_FILE(&f, S0 "/quotas/goals/0/current_value", "777");
	EXPECT_FILE(&f, KDS "/0/state", "commit_schemes_quota_goals");
	/* a goal the kernel does not have yet, a scheme it does not: the next
	 * commit writes them */
	fx_write(&f, KDS "/0/state", "on\n");
	ksc_goal(&s, DAMOS_GOAL_USER_INPUT, 0, 10, 1);
	EXPECT_EQ(dm_kernel_set_goal_current(r.k, &s.sc, 2, 5, &r.err), 0);
	ksc_init(&late, DAMOS_STAT);
	ksc_goal(&late, DAMOS_GOAL_USER_INPUT, 0, 10, 1);
	EXPECT_EQ(dm_kernel_set_goal_current(r.k, &late.sc, 0, 5, &r.err), 0);
	EXPECT_FILE(&f, KDS "/0/state", "on");
	/* the kdamond refuses the command: said, with the goal named */
	fx_block(&f, KDS "/0/state");
	EXPECT_EQ(dm_kernel_set_goal_current(r.k, &s.sc, 0, 9, &r.err), -EISDIR);
	EXPECT_HAS(r.err.msg, "while passing goal 0 of scheme 0 its current value");
	fx_rmrf(&f, KDS "/0/state");
	fx_write(&f, KDS "/0/state", "on\n");

	/* the effective quota, read with the stats (0 is the kernel's "none") */
	fx_write(&f, S0 "/quotas/effective_bytes", "1048576\n");
	usleep(120000);
	EXPECT_EQ(dm_kernel_step(r.k, &next, &r.err), 0);
	EXPECT_EQ(s.sc.quota.esz, 1048576);
	fx_write(&f, S0 "/quotas/effective_bytes", "0\n");
	EXPECT_EQ(dm_kscheme_read_quotas(r.k, &r.err), 0);
	EXPECT(s.sc.quota.esz == UINT64_MAX, "esz %llu", (unsigned long long)s.sc.quota.esz);
	EXPECT_FILE(&f, KDS "/0/state", "update_schemes_effective_quotas");
	fx_write(&f, S0 "/quotas/effective_bytes", "lots\n");
	EXPECT_EQ(dm_kscheme_read_quotas(r.k, &r.err), -EINVAL);
	EXPECT_HAS(r.err.msg, "quotas/effective_bytes reads \"lots\", not a number");
	run_fini(&r);
	fx_free(&f);
}

/* 6.12: every filter in filters/, in the order added; no allow file. */
static void test_goals_filters_612(void)
{
	struct fx f;
	struct run r;
	struct ksc s;

	fx_new_schemes(&f, "sysfs-6.12");
	ksc_init(&s, DAMOS_STAT);
	ksc_goal(&s, DAMOS_GOAL_SOME_MEM_PSI_US, 0, 5000, 0);
	ksc_filter(&s, DAMOS_FILTER_ANON, false, false);
	ksc_addr(&s, false, 0x10000000, 0x20000000);
	ksc_filter(&s, DAMOS_FILTER_YOUNG, true, false);
	EXPECT_EQ(ksc_open(&r, &f, DAMON_OPS_VADDR, &s), 0);
	EXPECT_FILE(&f, S0 "/quotas/goals/nr_goals", "1");
	EXPECT_FILE(&f, S0 "/quotas/goals/0/target_metric", "some_mem_psi_us");
	EXPECT_FILE(&f, S0 "/quotas/goals/0/target_value", "5000");
	EXPECT_FILE(&f, S0 "/filters/nr_filters", "3");
	EXPECT_FILE(&f, S0 "/filters/0/type", "anon");
	EXPECT_FILE(&f, S0 "/filters/0/matching", "N");
	EXPECT_FILE(&f, S0 "/filters/1/type", "addr");
	EXPECT_FILE(&f, S0 "/filters/1/addr_start", "268435456");
	EXPECT_FILE(&f, S0 "/filters/1/addr_end", "536870912");
	EXPECT_FILE(&f, S0 "/filters/2/type", "young");
	EXPECT_FILE(&f, S0 "/filters/2/matching", "Y");
	EXPECT_FILE(&f, S0 "/filters/2/allow", "(missing)");
	run_fini(&r);
	fx_free(&f);
}

/* What a kernel lacks, or would mean otherwise: refused with a sentence,
 * and nothing left behind. */
static void bend_none(struct fx *f)
{
	(void)f;
}
static void bend_einval_metric(struct fx *f)
{
	fx_einval(f, S0 "/quotas/goals/0/target_metric");
}
static void bend_einval_type(struct fx *f)
{
	fx_einval(f, S0 "/core_filters/0/type");
}
static void bend_no_layers(struct fx *f) /* 6.14: allow files, one filters/ */
{
	fx_rmrf(f, S0 "/core_filters");
	fx_rmrf(f, S0 "/ops_filters");
}
static void bend_no_goals(struct fx *f)
{
	fx_rmrf(f, S0 "/quotas/goals");
}
static void bend_no_filters(struct fx *f)
{
	bend_no_layers(f);
	fx_rmrf(f, S0 "/filters");
}
static void bend_memcg_unwritable(struct fx *f)
{
	fx_block(f, S0 "/ops_filters/0/memcg_path");
}

static void goal_node(struct ksc *s)
{
	ksc_goal(s, DAMOS_GOAL_NODE_MEM_USED_BP, 0, 9000, 0);
}
static void goal_user(struct ksc *s)
{
	ksc_goal(s, DAMOS_GOAL_USER_INPUT, 0, 100, 0);
}
static void goal_bad_metric(struct ksc *s)
{
	ksc_goal(s, 99, 0, 100, 0);
}
static void filter_hugepage(struct ksc *s)
{
	ksc_filter(s, DAMOS_FILTER_HUGEPAGE_SIZE, true, false)->max_sz = 1 << 21;
}
static void filter_allow(struct ksc *s)
{
	ksc_addr(s, true, 0x1000, 0x2000);
}
static void filter_allow_then_reject(struct ksc *s)
{
	ksc_addr(s, true, 0x1000, 0x2000);
	ksc_addr(s, false, 0x3000, 0x4000);
}
static void filter_anon(struct ksc *s)
{
	ksc_filter(s, DAMOS_FILTER_ANON, true, false);
}
static void filter_mixed(struct ksc *s)
{
	ksc_addr(s, true, 0x1000, 0x2000);
	ksc_addr(s, false, 0x3000, 0x4000);
	ksc_filter(s, DAMOS_FILTER_ANON, true, false);
}
static void filter_memcg(struct ksc *s)
{
	ksc_filter(s, DAMOS_FILTER_MEMCG, true, false)->memcg_path = "/x";
}
static void filter_bad_type(struct ksc *s)
{
	ksc_filter(s, 42, true, false);
}

static void test_goals_filters_refused(void)
{
	static const struct {
		const char *tree;
		uint32_t ops, action;
		void (*bend)(struct fx *f);
		void (*add)(struct ksc *s);
		int code;
		const char *said;
	} cases[] = {
		{"sysfs-6.12", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, goal_node, -EOPNOTSUPP,
		 "no quota goal metric node_mem_used_bp (no nid file in its quotas/goals/0)"},
		{"sysfs-6.12", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, filter_hugepage,
		 -EOPNOTSUPP, "no hugepage_size filter (no min file in its filters/0)"},
		{"sysfs-6.12", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, filter_allow, -EOPNOTSUPP,
		 "filter 0 (addr) allows, and this kernel's DAMON filters can only reject (no "
		 "allow file in its filters/0)"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_einval_metric, goal_user,
		 -EOPNOTSUPP, "no quota goal metric user_input (writing it to "
			      "quotas/goals/0/target_metric failed with EINVAL)"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_einval_type, filter_allow,
		 -EOPNOTSUPP, "no addr filter (writing it to core_filters/0/type failed with "
			      "EINVAL)"},
		{"sysfs-7.2", DAMON_OPS_VADDR, DAMOS_PAGEOUT, bend_none, filter_anon, -EOPNOTSUPP,
		 "filter 0 (anon) is judged page by page, which the kernel's vaddr operations "
		 "do not do for action pageout"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, filter_mixed, -EOPNOTSUPP,
		 "has an addr or target filter that allows and page filters"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_no_layers, filter_allow,
		 -EOPNOTSUPP, "filter 0 (addr) allows and is the last of its layer"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_no_goals, goal_user, -EOPNOTSUPP,
		 "scheme 0 has quota goals and this kernel's DAMON has none"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_no_filters, filter_anon,
		 -EOPNOTSUPP, "scheme 0 has filters and this kernel's DAMON has none"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_memcg_unwritable, filter_memcg,
		 -EISDIR, "ops_filters/0/memcg_path cannot be opened for writing"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, goal_bad_metric, -EINVAL,
		 "goal 0: metric 99 is unknown"},
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, filter_bad_type, -EINVAL,
		 "filter 0: type 42 is unknown"},
		/* accepted: what the kernel means as libdamon does */
		{"sysfs-7.2", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_no_layers,
		 filter_allow_then_reject, 0, NULL},
		{"sysfs-7.2", DAMON_OPS_VADDR, DAMOS_STAT, bend_none, filter_anon, 0, NULL},
		{"sysfs-7.2", DAMON_OPS_VADDR, DAMOS_MIGRATE_COLD, bend_none, filter_anon, 0, NULL},
		{"sysfs-6.12", DAMON_OPS_PADDR, DAMOS_PAGEOUT, bend_none, filter_allow_then_reject,
		 -EOPNOTSUPP, "filter 0 (addr) allows, and this kernel's DAMON filters can only "
			      "reject"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ksc s;
		struct fx f;
		struct run r;
		int rc;

		fx_new_schemes(&f, cases[i].tree);
		cases[i].bend(&f);
		ksc_init(&s, cases[i].action);
		cases[i].add(&s);
		rc = ksc_open(&r, &f, cases[i].ops, &s);
		if (rc != cases[i].code)
			fprintf(stderr, "\n  case %zu (%s): got %d, want %d\n", i, cases[i].tree, rc,
				cases[i].code);
		CU_ASSERT_EQUAL(rc, cases[i].code);
		if (cases[i].said) {
			EXPECT_HAS(r.err.msg, cases[i].said);
			CU_ASSERT_PTR_NULL(r.k);
			expect_released(&f);
		}
		if (!rc && cases[i].add == filter_allow_then_reject) {
			EXPECT_FILE(&f, S0 "/filters/nr_filters", "2");
			EXPECT_FILE(&f, S0 "/filters/0/allow", "Y");
			EXPECT_FILE(&f, S0 "/filters/1/allow", "N");
		}
		run_fini(&r);
		fx_free(&f);
	}
}

/* The run dir cannot be made: refused with the path named. */
static void test_run_dir(void)
{
	struct fx f;
	struct run r;
	char p[160];

	fx_new(&f, "sysfs-6.12");
	snprintf(p, sizeof(p), "%s/file", f.dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	run_init(&r, &f, DAMON_OPS_VADDR);
	snprintf(p, sizeof(p), "%s/file/run", f.dir);
	r.cfg.run_dir = p;
	r.cfg.allow_takeover = true; /* the tree's idle kdamond would refuse first */
	CU_ASSERT_EQUAL(run_open(&r), -ENOTDIR);
	EXPECT_HAS(r.err.msg, "cannot create libdamon's run directory");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/nr_kdamonds"), "1");
	run_fini(&r);
	fx_free(&f);
}

/* ------------------------------------------------------------------------ */
/* Pid namespaces */

/* A file under @dir holding @text (mkdir -p of its parents not included). */
static void put(const char *dir, const char *name, const char *text)
{
	char p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(text, fp);
	fclose(fp);
}

/*
 * A recorded /proc: self/ns/pid is a plain file (its st_dev, st_ino stand
 * for our pid namespace: @ret_ns), self/stat and pid 77 alive with start
 * time 5000.
 */
static void ns_fake_proc(const struct fx *f, char *proc, size_t sz, struct dm_pidns *ret_ns)
{
	static const char stat77[] =
		"77 (owner) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n";
	char p[256];
	struct stat st;

	snprintf(proc, sz, "%s/proc", f->dir);
	mkdir(proc, 0755);
	snprintf(p, sizeof(p), "%s/self", proc);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/self/ns", proc);
	mkdir(p, 0755);
	put(proc, "self/ns/pid", "");
	put(proc, "self/stat", stat77);
	snprintf(p, sizeof(p), "%s/77", proc);
	mkdir(p, 0755);
	put(proc, "77/stat", stat77);
	snprintf(p, sizeof(p), "%s/self/ns/pid", proc);
	CU_ASSERT_EQUAL_FATAL(stat(p, &st), 0);
	ret_ns->dev = (uint64_t)st.st_dev;
	ret_ns->ino = (uint64_t)st.st_ino;
}

static void put_record(const struct fx *f, const char *line)
{
	mkdir(f->run, 0700);
	put(f->run, "kdamond-0.owner", line);
}

static const char *const owner_states[] = {"none", "alive", "orphan", "bad", "other-ns"};

#define EXPECT_OWNER(f, proc, want)                                                       \
	do {                                                                              \
		struct dm_owner_rec r_;                                                   \
		enum dm_owner_state got_ = dm_owner_read((f)->run, (proc), 0, &r_);       \
		if (got_ != (want)) {                                                     \
			fprintf(stderr, "\nline %d: owner judged %s, want %s\n", __LINE__, \
				owner_states[got_], owner_states[want]);                  \
			CU_FAIL("owner state");                                           \
		}                                                                         \
	} while (0)

/* Records of both versions, judged only in the owner's own pid namespace. */
static void test_owner_records(void)
{
	char proc[160], line[160];
	struct dm_owner_rec rec = {.owner = 77, .start_time = 5000, .kdamond_pid = 4242};
	struct dm_owner_rec back;
	struct dm_pidns ns, got;
	struct fx f;

	fx_new(&f, "sysfs-6.12");
	ns_fake_proc(&f, proc, sizeof(proc), &ns);
	CU_ASSERT_EQUAL(dm_proc_pidns(proc, &got), 0);
	CU_ASSERT_TRUE(got.dev == ns.dev && got.ino == ns.ino);

	/* version 2 round trip: our namespace, the owner alive, then recycled, gone */
	rec.ns = ns;
	mkdir(f.run, 0700);
	CU_ASSERT_EQUAL(dm_owner_write(f.run, 0, &rec, NULL), 0);
	CU_ASSERT_EQUAL(dm_owner_read(f.run, proc, 0, &back), DM_OWNER_ALIVE);
	CU_ASSERT_TRUE(back.owner == 77 && back.start_time == 5000 && back.kdamond_pid == 4242 &&
		       back.ns.dev == ns.dev && back.ns.ino == ns.ino);
	snprintf(line, sizeof(line), "libdamon 2 77 4999 4242 %llu %llu\n",
		 (unsigned long long)ns.dev, (unsigned long long)ns.ino);
	put_record(&f, line);
	EXPECT_OWNER(&f, proc, DM_OWNER_ORPHAN); /* same number, another start */
	snprintf(line, sizeof(line), "libdamon 2 78 5000 4242 %llu %llu\n",
		 (unsigned long long)ns.dev, (unsigned long long)ns.ino);
	put_record(&f, line);
	EXPECT_OWNER(&f, proc, DM_OWNER_ORPHAN); /* no pid 78 here */

	/* another namespace: never judged by our numbers, alive or not here */
	snprintf(line, sizeof(line), "libdamon 2 78 5000 4242 %llu %llu\n",
		 (unsigned long long)ns.dev, (unsigned long long)ns.ino + 1);
	put_record(&f, line);
	EXPECT_OWNER(&f, proc, DM_OWNER_OTHER_NS);
	snprintf(line, sizeof(line), "libdamon 2 77 1 4242 %llu %llu\n",
		 (unsigned long long)ns.dev + 1, (unsigned long long)ns.ino);
	put_record(&f, line);
	EXPECT_OWNER(&f, proc, DM_OWNER_OTHER_NS);

	/* the writer's namespace unknown (0 0), or ours unreadable: by pid */
	put_record(&f, "libdamon 2 77 5000 4242 0 0\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_ALIVE);
	put_record(&f, "libdamon 2 78 5000 4242 0 0\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_ORPHAN);
	snprintf(line, sizeof(line), "libdamon 2 78 5000 4242 %llu %llu\n",
		 (unsigned long long)ns.dev, (unsigned long long)ns.ino + 1);
	put_record(&f, line);
	{
		char nsfile[200];

		snprintf(nsfile, sizeof(nsfile), "%s/self/ns/pid", proc);
		CU_ASSERT_EQUAL(unlink(nsfile), 0);
	}
	EXPECT_OWNER(&f, proc, DM_OWNER_ORPHAN);

	/* version 1 (no namespace fields): by pid, as before */
	put_record(&f, "libdamon 1 77 5000 4242\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_ALIVE);
	CU_ASSERT_EQUAL(dm_owner_read(f.run, proc, 0, &back), DM_OWNER_ALIVE);
	CU_ASSERT_TRUE(back.owner == 77 && back.kdamond_pid == 4242 && !back.ns.dev &&
		       !back.ns.ino);
	put_record(&f, "libdamon 1 78 5000 4242\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_ORPHAN);

	/* what cannot be read */
	put_record(&f, "libdamon 3 77 5000 4242 1 2\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_BAD);
	put_record(&f, "libdamon 2 77 5000 4242\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_BAD);
	put_record(&f, "libdamon 1 0 5000 4242\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_BAD);
	put_record(&f, "libdamon\n");
	EXPECT_OWNER(&f, proc, DM_OWNER_BAD);
	fx_free(&f);
}

/* A running kdamond whose libdamon owner lives in another pid namespace:
 * refused and named, by the probe and by open; nothing reclaimed. */
static void test_owner_other_ns(void)
{
	struct damon_backend_status st = {.sz = sizeof(st)};
	struct dm_probe_in in = {0};
	char line[160];
	struct dm_pidns ns;
	struct fx f;
	struct run r;

	for (size_t i = 0; i < 2; i++) {
		fx_new(&f, trees[i]);
		CU_ASSERT_EQUAL_FATAL(dm_proc_pidns(NULL, &ns), 0);
		/* pid 999999999 exists nowhere here: the old rule would reclaim */
		snprintf(line, sizeof(line), "libdamon 2 999999999 1 4242 %llu %llu\n",
			 (unsigned long long)ns.dev, (unsigned long long)ns.ino + 1);
		put_record(&f, line);
		fx_write(&f, KDS "/0/state", "on\n");
		fx_write(&f, KDS "/0/pid", "4242\n");
		run_init(&r, &f, DAMON_OPS_VADDR);
		CU_ASSERT_EQUAL(run_open(&r), -EBUSY);
		EXPECT_HAS(r.err.msg, "kdamond 0 (pid 4242) belongs to libdamon process 999999999 "
				      "in another pid namespace");
		expect_untouched_rec(&f);
		CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "on");
		CU_ASSERT_TRUE(has_record(&f));

		in.ops = DAMON_OPS_VADDR;
		in.pid = getpid();
		in.self = true;
		in.nr_targets = 1;
		in.sysfs_root = f.sys;
		in.run_dir = f.run;
		dm_probe_backend(&in, DAMON_BACKEND_KERNEL, &st);
		printf("\n    probe: %s", st.reason);
		CU_ASSERT_EQUAL(st.usable, 0);
		EXPECT_HAS(st.reason, "kdamond 0 belongs to libdamon process 999999999 in another "
				      "pid namespace");
		run_fini(&r);
		fx_free(&f);
	}
}

/* Is the pid read from sysfs a kdamond kthread as this process sees it? */
static void test_kdamond_visible(void)
{
	char proc[160], p[256];
	struct fx f;

	fx_new(&f, "sysfs-7.2");
	snprintf(proc, sizeof(proc), "%s/proc", f.dir);
	mkdir(proc, 0755);
	snprintf(p, sizeof(p), "%s/self", proc);
	CU_ASSERT_EQUAL(symlink("/proc/self", p), 0);
	snprintf(p, sizeof(p), "%s/4242", proc);
	mkdir(p, 0755);

	/* a kthread (PF_KTHREAD 0x200000 in flags 0x208040) named kdamond.0 */
	put(proc, "4242/stat", "4242 (kdamond.0) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 9\n");
	CU_ASSERT_TRUE(dm_ktrace_kdamond_visible(proc, 4242));
	/* the same name on a task of ours (prctl PR_SET_NAME): not it */
	put(proc, "4242/stat", "4242 (kdamond.0) S 1 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9\n");
	CU_ASSERT_FALSE(dm_ktrace_kdamond_visible(proc, 4242));
	/* another kthread */
	put(proc, "4242/stat", "4242 (kswapd0) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 9\n");
	CU_ASSERT_FALSE(dm_ktrace_kdamond_visible(proc, 4242));
	/* no such task here, no pid, a cut stat */
	CU_ASSERT_FALSE(dm_ktrace_kdamond_visible(proc, 4243));
	CU_ASSERT_FALSE(dm_ktrace_kdamond_visible(proc, 0));
	put(proc, "4242/stat", "4242 (kdamond.0) S 2 0");
	CU_ASSERT_FALSE(dm_ktrace_kdamond_visible(proc, 4242));
	/* a /proc of another pid namespace: its self is not our getpid() */
	put(proc, "4242/stat", "4242 (kdamond.0) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 9\n");
	snprintf(p, sizeof(p), "%s/self", proc);
	unlink(p);
	CU_ASSERT_EQUAL(symlink(getpid() == 1 ? "2" : "1", p), 0);
	CU_ASSERT_FALSE(dm_ktrace_kdamond_visible(proc, 4242));
	fx_free(&f);
}

/*
 * The kdamond is not visible (our /proc has no pid 4242): AUTO reads
 * tried_regions, says why, and writes the match-all scheme by off + on; a
 * tracepoint-only config fails with the sentence; a commit turns the
 * kdamond off and on (never "commit": the kdamond would look our pids up in
 * the initial pid namespace).
 */
static void test_kdamond_invisible(void)
{
	char proc[160], p[256];
	struct fx f;
	struct run r;

	for (size_t i = 0; i < 2; i++) {
		fx_new(&f, trees[i]);
		fx_orphan(&f);
		fx_write(&f, KDS "/0/pid", "4242\n");
		snprintf(proc, sizeof(proc), "%s/proc", f.dir);
		mkdir(proc, 0755);
		snprintf(p, sizeof(p), "%s/self", proc);
		CU_ASSERT_EQUAL(symlink("/proc/self", p), 0);

		run_init(&r, &f, DAMON_OPS_VADDR);
		r.cfg.proc_root = proc;
		r.cfg.snapshots = DM_KSNAP_TRACE;
		CU_ASSERT_EQUAL(run_open(&r), -EOPNOTSUPP);
		EXPECT_HAS(r.err.msg, "the kdamond (pid 4242 in the initial pid namespace) is not "
				      "visible from this process's pid namespace");
		expect_released(&f);

		fx_orphan(&f);
		r.cfg.snapshots = DM_KSNAP_AUTO;
		CU_ASSERT_EQUAL_FATAL(run_open(&r), 0);
		CU_ASSERT_EQUAL(dm_kernel_snap_path(r.k), DM_KSNAP_TRIED);
		printf("\n    note: %s", dm_kernel_note(r.k));
		EXPECT_HAS(dm_kernel_note(r.k),
			   "kernel: the kdamond (pid 4242 in the initial pid namespace) is not "
			   "visible from this process's pid namespace; snapshots come from "
			   "tried_regions");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "on");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/nr_schemes"), "1");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/schemes/0/action"), "stat");

		/* a commit: off, the new values, on */
		r.cfg.attrs.sample_us = 10000;
		r.cfg.attrs.aggr_us = 200000;
		fx_write(&f, KDS "/0/pid", "4343\n");
		CU_ASSERT_EQUAL(dm_kernel_commit(r.k, &r.cfg, &r.err), 0);
		CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "on");
		CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/monitoring_attrs/intervals/aggr_us"),
				       "200000");
		CU_ASSERT_EQUAL(dm_kernel_kdamond_pid(r.k), 4343);
		{
			struct dm_owner_rec rec;

			/* the record follows the restarted kdamond (judged
			 * through the real /proc: the fake one has only self) */
			CU_ASSERT_EQUAL(dm_owner_read(f.run, NULL, 0, &rec), DM_OWNER_ALIVE);
			CU_ASSERT_EQUAL(rec.kdamond_pid, 4343);
		}
		run_fini(&r);
		fx_free(&f);
	}
}

/*
 * A /proc for @f's kdamond 4242: self and this process, and (@visible) the
 * kdamond as a kthread, as when it is in this process's pid namespace.
 */
static void kdamond_proc(const struct fx *f, bool visible, char *proc, size_t sz)
{
	char p[256], self[64];

	snprintf(proc, sz, "%s/proc", f->dir);
	mkdir(proc, 0755);
	snprintf(p, sizeof(p), "%s/self", proc);
	CU_ASSERT_EQUAL(symlink("/proc/self", p), 0);
	snprintf(p, sizeof(p), "%s/%d", proc, (int)getpid());
	snprintf(self, sizeof(self), "/proc/%d", (int)getpid());
	CU_ASSERT_EQUAL(symlink(self, p), 0);
	if (!visible)
		return;
	snprintf(p, sizeof(p), "%s/4242", proc);
	mkdir(p, 0755);
	put(proc, "4242/stat",
	    "4242 (kdamond.0) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 9\n");
}

/* Open on @tree with the kdamond (in)visible: a tree in f, an open r. */
static void pause_open(struct fx *f, struct run *r, const char *tree, bool visible)
{
	char proc[160];

	fx_new(f, tree);
	fx_orphan(f);
	fx_write(f, KDS "/0/pid", "4242\n");
	kdamond_proc(f, visible, proc, sizeof(proc));
	run_init(r, f, DAMON_OPS_VADDR);
	r->cfg.proc_root = proc;
	CU_ASSERT_EQUAL_FATAL(run_open(r), 0);
	CU_ASSERT_EQUAL(r->k->pidns_foreign, !visible);
}

/*
 * Pause and resume: 7.2's context has a pause file (staged: Y/N, then commit;
 * a paused kdamond is asked for nothing); 6.12's has none (-EOPNOTSUPP, said,
 * nothing written); a kdamond outside our pid namespace takes no commit.
 */
static void test_pause(void)
{
	uint64_t next = 0;
	struct damon_snapshot *snap;
	struct fx f;
	struct run r;

	pause_open(&f, &r, "sysfs-7.2", true);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "N");
	CU_ASSERT_EQUAL(dm_kernel_pause(r.k, true, &r.err), 0);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "Y");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "commit");
	/* paused: no update_schemes_tried_regions, no snapshot */
	fx_write(&f, KDS "/0/state", "on\n");
	usleep(120000);
	CU_ASSERT_EQUAL(dm_kernel_step(r.k, &next, &r.err), 0);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "on");
	CU_ASSERT_EQUAL(next, 100000);
	snap = dm_publisher_get(&r.pub);
	CU_ASSERT_PTR_NULL(snap);
	damon_snapshot_unref(snap);
	/* twice: nothing written */
	fx_write(&f, CTX "/pause", "untouched\n");
	CU_ASSERT_EQUAL(dm_kernel_pause(r.k, true, &r.err), 0);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "untouched");
	CU_ASSERT_EQUAL(dm_kernel_pause(r.k, false, &r.err), 0);
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "N");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "commit");
	/* the commit fails: the file goes back to what the kdamond does */
	fx_block(&f, KDS "/0/state");
	CU_ASSERT_EQUAL(dm_kernel_pause(r.k, true, &r.err), -EISDIR);
	EXPECT_HAS(r.err.msg, "kdamonds/0/state");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "N");
	CU_ASSERT_FALSE(r.k->paused);
	run_fini(&r);
	fx_free(&f);

	/* 6.12: no pause file */
	pause_open(&f, &r, "sysfs-6.12", true);
	CU_ASSERT_EQUAL(dm_kernel_pause(r.k, true, &r.err), -EOPNOTSUPP);
	printf("\n    6.12: %s", r.err.msg);
	EXPECT_HAS(r.err.msg, "this kernel's DAMON cannot pause a context");
	EXPECT_HAS(r.err.msg, "contexts/0 has no pause file");
	EXPECT_HAS(r.err.msg, "stop the context and start it again instead");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, KDS "/0/state"), "on");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "(missing)");
	CU_ASSERT_FALSE(r.k->paused);
	run_fini(&r);
	fx_free(&f);

	/* 7.2, a kdamond outside this process's pid namespace: refused */
	pause_open(&f, &r, "sysfs-7.2", false);
	CU_ASSERT_EQUAL(dm_kernel_pause(r.k, true, &r.err), -EOPNOTSUPP);
	EXPECT_HAS(r.err.msg, "outside this process's pid namespace");
	CU_ASSERT_STRING_EQUAL(fx_read(&f, CTX "/pause"), "N");
	run_fini(&r);
	fx_free(&f);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	s = CU_add_suite("kernel backend on recorded sysfs trees", NULL, NULL);
	CU_add_test(s, "someone else's kdamond", test_foreign);
	CU_add_test(s, "exclusive modules, no DAMON", test_modules_and_no_damon);
	CU_add_test(s, "a live libdamon owner", test_live_owner);
	CU_add_test(s, "orphan reclaimed, context written, tried_regions", test_orphan_full);
	CU_add_test(s, "malformed trees", test_malformed_trees);
	CU_add_test(s, "fvaddr and paddr regions", test_fixed_regions);
	CU_add_test(s, "migrate_cold on vaddr without vaddr migration", test_migrate_vaddr);
	CU_add_test(s, "quota goals and filters: 7.2", test_goals_filters_72);
	CU_add_test(s, "quota goals and filters: 6.12", test_goals_filters_612);
	CU_add_test(s, "quota goals and filters refused", test_goals_filters_refused);
	CU_add_test(s, "run dir", test_run_dir);
	CU_add_test(s, "owner records, both versions, pid namespaces", test_owner_records);
	CU_add_test(s, "an owner in another pid namespace", test_owner_other_ns);
	CU_add_test(s, "is the kdamond visible", test_kdamond_visible);
	CU_add_test(s, "an invisible kdamond: tried_regions, off + on", test_kdamond_invisible);
	CU_add_test(s, "pause: 7.2's pause file, none in 6.12", test_pause);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned int failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
