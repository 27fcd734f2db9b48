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
#include "kernel/owner.h"

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
	CU_add_test(s, "run dir", test_run_dir);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned int failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
