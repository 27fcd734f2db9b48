// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The DAMON algorithm in lib/core, driven deterministically: simulated
 * accesses, a fake clock, a fixed seed. Region-list rules first, then the
 * whole monitor over many aggregations.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "core/monitor.h"
#include "core/regions.h"
#include "ops/sim.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)
#define BASE 0x7f0000000000ULL

/* ---- region-list rules ------------------------------------------------- */

static bool covers_exactly(const struct dm_regions *rs, const struct dm_range *r, size_t nr)
{
	size_t k = 0;

	for (size_t i = 0; i < nr; i++) {
		uint64_t at = r[i].start;

		while (k < rs->n && rs->v[k].start < r[i].end) {
			if (rs->v[k].start != at)
				return false;
			at = rs->v[k].end;
			k++;
		}
		if (at != r[i].end)
			return false;
	}
	return k == rs->n;
}

static void test_init_even_split(void)
{
	struct dm_range r[3] = { { BASE, BASE + 100 * MiB },
				 { BASE + 200 * MiB, BASE + 201 * MiB },
				 { BASE + 300 * MiB, BASE + 300 * MiB + 4096 } };
	struct dm_regions rs = { 0 };
	uint64_t total = 101 * MiB + 4096;

	CU_ASSERT_EQUAL_FATAL(dm_regions_init(NULL, &rs, r, 3, total / 10), 0);
	EXPECT_EQ(dm_regions_validate(&rs), 0);
	EXPECT(covers_exactly(&rs, r, 3), "regions cover the three ranges exactly");
	/* 100 MiB in ~10 MiB pieces, 1 MiB and 4 KiB ranges one each. */
	EXPECT(rs.n >= 10 && rs.n <= 12, "n=%zu", rs.n);
	dm_regions_free(NULL, &rs);
}

static void test_set_ranges(void)
{
	struct dm_range r0[1] = { { BASE, BASE + 64 * MiB } };
	struct dm_range r1[2] = { { BASE + 8 * MiB, BASE + 40 * MiB },
				  { BASE + 100 * MiB, BASE + 110 * MiB } };
	struct dm_regions rs = { 0 };

	CU_ASSERT_EQUAL_FATAL(dm_regions_init(NULL, &rs, r0, 1, 8 * MiB), 0);
	EXPECT_EQ(rs.n, 8);
	rs.v[1].nr_accesses = 7;
	rs.v[1].age = 3;
	/* Punch a hole between regions 3 and 4 to see it filled. */
	memmove(&rs.v[3], &rs.v[4], (rs.n - 4) * sizeof(rs.v[0]));
	rs.n--;
	CU_ASSERT_EQUAL_FATAL(dm_regions_set_ranges(NULL, &rs, r1, 2), 0);
	EXPECT_EQ(dm_regions_validate(&rs), 0);
	EXPECT(covers_exactly(&rs, r1, 2), "regions fit the new ranges");
	/* Region 1 [8M,16M) survived with its counters. */
	EXPECT_EQ(rs.v[0].start, BASE + 8 * MiB);
	EXPECT_EQ(rs.v[0].nr_accesses, 7);
	EXPECT_EQ(rs.v[0].age, 3);
	/* The new range got exactly one fresh region. */
	EXPECT_EQ(rs.v[rs.n - 1].start, BASE + 100 * MiB);
	EXPECT_EQ(rs.v[rs.n - 1].nr_accesses, 0);
	dm_regions_free(NULL, &rs);
}

static void test_age_rule(void)
{
	struct dm_region v[4] = {
		{ .start = 0, .end = 4096, .nr_accesses = 10, .last_nr_accesses = 10, .age = 5 },
		{ .start = 4096, .end = 8192, .nr_accesses = 10, .last_nr_accesses = 2, .age = 5 },
		{ .start = 8192, .end = 12288, .nr_accesses = 1, .last_nr_accesses = 0, .age = 5 },
		{ .start = 12288, .end = 16384, .nr_accesses = 0, .last_nr_accesses = 0, .age = 5 },
	};
	struct dm_regions rs = { v, 4, 4 };

	dm_regions_update_age(&rs, 2);
	EXPECT_EQ(v[0].age, 6); /* same */
	EXPECT_EQ(v[1].age, 0); /* moved by 8 > 2 */
	EXPECT_EQ(v[2].age, 0); /* left zero */
	EXPECT_EQ(v[3].age, 6); /* still zero */
}

static void test_merge_rule(void)
{
	struct dm_region v[5] = {
		{ .start = 0, .end = 4 * 4096, .nr_accesses = 10, .age = 2 },
		{ .start = 4 * 4096, .end = 8 * 4096, .nr_accesses = 12, .age = 4 },
		{ .start = 8 * 4096, .end = 12 * 4096, .nr_accesses = 20, .age = 1 },
		/* not adjacent: a gap before it */
		{ .start = 16 * 4096, .end = 20 * 4096, .nr_accesses = 20, .age = 1 },
		{ .start = 20 * 4096, .end = 60 * 4096, .nr_accesses = 20, .age = 1 },
	};
	struct dm_regions rs = { v, 5, 5 };
	size_t n = dm_regions_merge(&rs, 2, 16 * 4096);

	/* 0+1 merge (diff 2, 8 pages); 2 stays (diff 9); 3 not adjacent to 2;
	 * 3+4 would be 44 pages > 16: stays. */
	EXPECT_EQ(n, 4);
	EXPECT_EQ(v[0].end, 8 * 4096);
	EXPECT_EQ(v[0].nr_accesses, 11); /* size-weighted */
	EXPECT_EQ(v[0].age, 3);
	EXPECT_EQ(dm_regions_validate(&rs), 0);
	/* merge_to ignores the size limit, smallest neighbours first. */
	n = dm_regions_merge_to(&rs, 3);
	EXPECT_EQ(n, 3);
	EXPECT_EQ(v[0].end, 12 * 4096);
}

static void test_split_rule(void)
{
	struct dm_range r = { BASE, BASE + 64 * MiB };
	struct dm_regions rs = { 0 };
	struct dm_rng rng;

	dm_rng_seed(&rng, 42);
	CU_ASSERT_EQUAL_FATAL(dm_regions_init(NULL, &rs, &r, 1, 16 * MiB), 0);
	EXPECT_EQ(rs.n, 4);
	rs.v[2].nr_accesses = 9;
	rs.v[2].age = 4;
	CU_ASSERT_EQUAL_FATAL(dm_regions_split(NULL, &rs, 3, &rng), 0);
	EXPECT(rs.n > 4 && rs.n <= 12, "n=%zu", rs.n);
	EXPECT_EQ(dm_regions_validate(&rs), 0);
	EXPECT(covers_exactly(&rs, &r, 1), "split keeps coverage");
	for (size_t i = 0; i < rs.n; i++)
		if (rs.v[i].start >= BASE + 32 * MiB && rs.v[i].end <= BASE + 48 * MiB) {
			EXPECT_EQ(rs.v[i].nr_accesses, 9);
			EXPECT_EQ(rs.v[i].age, 4);
		}
	dm_regions_free(NULL, &rs);

	/* Never below 2 pages: a 2-page region is left whole. */
	{
		struct dm_range small = { BASE, BASE + 2 * 4096 };

		dm_regions_init(NULL, &rs, &small, 1, 4096 * 2);
		dm_regions_split(NULL, &rs, 3, &rng);
		EXPECT_EQ(rs.n, 1);
		dm_regions_free(NULL, &rs);
	}
}

/* ---- the whole monitor under a simulated access model ------------------ */

struct fake {
	uint64_t now_us;
	uint64_t hot_start, hot_end; /* always accessed */
	unsigned int seed_noise;     /* 0: exact model; else pages hot by hash */
	pid_t exit_pid;              /* layout says -ESRCH for it when set */
	uint64_t cpu_ns;             /* the monitor's CPU clock */
	uint64_t late_us;            /* each step runs up to this much late */
	uint64_t late_state;
	/* When set, a hot page is accessed once every period_us (at a phase of
	 * its own), so a sample sees it with probability interval/period:
	 * access events seen grow with the sampling interval *interval_us. */
	uint64_t period_us;
	const uint64_t *interval_us;
};

static uint64_t fake_now(void *arg)
{
	return ((struct fake *)arg)->now_us;
}

static uint64_t fake_cpu(void *arg)
{
	return ((struct fake *)arg)->cpu_ns;
}

static bool model_accessed(void *arg, pid_t pid, uint64_t addr)
{
	struct fake *f = arg;

	if (f->seed_noise) {
		/* Stripes of varying heat: each 1 MiB block has its own rate. */
		uint64_t block = addr / MiB, h = block * 0x9e3779b97f4a7c15ULL + f->seed_noise;
		uint64_t rate = (h >> 40) % 100, coin = (addr * 31 + f->now_us) % 100;

		return coin < rate;
	}
	if (f->period_us && addr >= f->hot_start && addr < f->hot_end) {
		uint64_t page = addr / 4096, h = page * 0x9e3779b97f4a7c15ULL;
		uint64_t phase = (h >> 20) % f->period_us, at = f->now_us % f->period_us;
		uint64_t since = at >= phase ? at - phase : at + f->period_us - phase;

		/* the last access was @since ago: seen if within the interval */
		return *f->interval_us >= f->period_us || since < *f->interval_us;
	}
	return addr >= f->hot_start && addr < f->hot_end;
}

struct run {
	struct fake f;
	struct dm_sim_model model;
	struct dm_clock clock;
	struct dm_publisher pub;
	struct dm_monitor m;
	struct dm_mon_target t;
	struct dm_range range;
};

static void run_open(struct run *r, uint64_t seed, uint32_t min, uint32_t max, uint64_t size)
{
	struct dm_mon_cfg cfg = { 0 };
	struct dm_err err = { 0 };

	r->model.accessed = model_accessed;
	r->model.arg = &r->f;
	r->clock.now_us = fake_now;
	r->clock.cpu_ns = fake_cpu;
	r->clock.arg = &r->f;
	r->f.now_us = 1000000;
	r->range.start = BASE;
	r->range.end = BASE + size;
	CU_ASSERT_EQUAL_FATAL(dm_publisher_init(&r->pub, NULL), 0);
	cfg.attrs = (struct dm_mon_attrs){ .sample_us = 5000, .aggr_us = 100000,
					   .update_us = 1000000, .min_nr_regions = min,
					   .max_nr_regions = max };
	cfg.backend = DAMON_BACKEND_UFFD_WP;
	cfg.ops = &dm_ops_sim;
	cfg.ops_cfg.ops = DAMON_OPS_FVADDR;
	cfg.ops_cfg.model = &r->model;
	cfg.clock = &r->clock;
	cfg.pub = &r->pub;
	cfg.seed = seed;
	CU_ASSERT_EQUAL_FATAL(dm_monitor_init(&r->m, &cfg, &err), 0);
	r->t.id = 0;
	r->t.ot.pid = getpid();
	r->t.ot.fixed = &r->range;
	r->t.ot.nr_fixed = 1;
	CU_ASSERT_EQUAL_FATAL(dm_monitor_add_target(&r->m, &r->t, &err), 0);
	CU_ASSERT_EQUAL_FATAL(dm_monitor_start(&r->m, &err), 0);
}

static void run_close(struct run *r)
{
	dm_monitor_fini(&r->m);
	dm_publisher_fini(&r->pub);
}

/* Step through @nr aggregations; call @check after each new snapshot. */
static void run_aggregations(struct run *r, unsigned int nr,
			     void (*check)(struct run *r, damon_snapshot *s, void *arg), void *arg)
{
	uint64_t seen = r->m.seq;

	while (r->m.seq < seen + nr) {
		uint64_t next = 0;

		CU_ASSERT_EQUAL_FATAL(dm_monitor_step(&r->m, &next), 0);
		r->f.now_us += next ? next : 1;
		if (r->f.late_us) {
			/* a busy machine: the step comes late by a varying amount */
			r->f.late_state = r->f.late_state * 6364136223846793005ULL + 1442695040888963407ULL;
			r->f.now_us += (r->f.late_state >> 33) % r->f.late_us;
		}
		if (check && r->m.seq != seen) {
			damon_snapshot *s = dm_publisher_get(&r->pub);

			check(r, s, arg);
			damon_snapshot_unref(s);
			seen++;
			nr--;
		}
	}
}

static void check_invariants(struct run *r, damon_snapshot *s, void *arg)
{
	uint64_t at = r->range.start;

	EXPECT(s->nr_regions >= r->m.attrs.min_nr_regions &&
		       s->nr_regions <= r->m.attrs.max_nr_regions,
	       "nr_regions %zu within [%u, %u] at seq %llu", s->nr_regions,
	       r->m.attrs.min_nr_regions, r->m.attrs.max_nr_regions,
	       (unsigned long long)s->info.seq);
	for (size_t i = 0; i < s->nr_regions; i++) {
		const struct dm_snap_region *x = &s->regions[i];

		/* sorted, non-overlapping, no holes inside the one range */
		if (x->start != at || x->end <= x->start) {
			EXPECT(0, "region %zu [%llx,%llx) should start at %llx", i,
			       (unsigned long long)x->start, (unsigned long long)x->end,
			       (unsigned long long)at);
			return;
		}
		at = x->end;
		EXPECT(x->nr_accesses <= s->info.max_nr_accesses, "nr_accesses %u <= %u",
		       x->nr_accesses, s->info.max_nr_accesses);
		EXPECT(x->access_rate_bp <= 10000, "rate %u", x->access_rate_bp);
	}
	EXPECT_EQ(at, r->range.end);
}

static void test_monitor_bounds_random(void)
{
	static const uint32_t bounds[][2] = { { 10, 1000 }, { 3, 20 }, { 10, 12 }, { 50, 200 } };

	for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
		struct run r;

		memset(&r, 0, sizeof(r));
		r.f.seed_noise = 7 + (unsigned int)b;
		run_open(&r, 1234 + b, bounds[b][0], bounds[b][1], 1 * GiB);
		run_aggregations(&r, 150, check_invariants, NULL);
		run_close(&r);
	}
}

struct hot_result {
	uint32_t hot_rate, cold_rate;
	uint32_t max_age_hot;
};

static void record_hot(struct run *r, damon_snapshot *s, void *arg)
{
	struct hot_result *h = arg;
	uint64_t hot_sz = 0, cold_sz = 0;
	unsigned __int128 hot_w = 0, cold_w = 0;

	check_invariants(r, s, NULL);
	h->max_age_hot = 0;
	for (size_t i = 0; i < s->nr_regions; i++) {
		const struct dm_snap_region *x = &s->regions[i];
		uint64_t os = x->start > r->f.hot_start ? x->start : r->f.hot_start;
		uint64_t oe = x->end < r->f.hot_end ? x->end : r->f.hot_end;
		uint64_t in = oe > os ? oe - os : 0, out = (x->end - x->start) - in;

		hot_sz += in;
		cold_sz += out;
		hot_w += (unsigned __int128)in * x->access_rate_bp;
		cold_w += (unsigned __int128)out * x->access_rate_bp;
		/* Mostly hot (an edge page may have merged in): its age. */
		if (in >= (x->end - x->start) / 10 * 9 && x->age > h->max_age_hot)
			h->max_age_hot = x->age;
	}
	h->hot_rate = (uint32_t)(hot_w / hot_sz);
	h->cold_rate = (uint32_t)(cold_w / cold_sz);
}

static void test_monitor_finds_hot(void)
{
	struct hot_result h = { 0 };
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE + 256 * MiB;
	r.f.hot_end = BASE + 320 * MiB;
	run_open(&r, 99, 10, 1000, 1 * GiB);
	run_aggregations(&r, 60, record_hot, &h);
	EXPECT(h.hot_rate >= 9000, "hot set read hot: rate %u", h.hot_rate);
	EXPECT(h.cold_rate <= 500, "the rest read cold: rate %u", h.cold_rate);
	/* Regions wholly inside an unchanging hot set keep growing old. */
	EXPECT(h.max_age_hot >= 10, "hot regions age: max age %u", h.max_age_hot);

	/* Move the hot set: within a few aggregations the new place is hot
	 * and the old one cold. */
	r.f.hot_start = BASE + 640 * MiB;
	r.f.hot_end = BASE + 704 * MiB;
	run_aggregations(&r, 20, record_hot, &h);
	EXPECT(h.hot_rate >= 9000, "moved hot set read hot: rate %u", h.hot_rate);
	EXPECT(h.cold_rate <= 500, "old hot set read cold: rate %u", h.cold_rate);
	run_close(&r);
}

/*
 * Pause and resume (damon_ctx_pause()): while paused a step does nothing and
 * says "not until resumed"; the aggregation interval under way keeps its
 * samples and its time left; the first step after resume only arms fresh
 * sample pages (no sample spans the pause); then monitoring goes on.
 */
static void test_pause(void)
{
	struct hot_result h = { 0 };
	uint64_t next = 0, left, seq, prepared, checked, resumed;
	uint32_t samples;
	size_t nr;
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE + 64 * MiB;
	r.f.hot_end = BASE + 80 * MiB;
	run_open(&r, 21, 10, 1000, 256 * MiB);
	run_aggregations(&r, 5, NULL, NULL);
	for (int i = 0; i < 7; i++) { /* into the next aggregation interval */
		CU_ASSERT_EQUAL_FATAL(dm_monitor_step(&r.m, &next), 0);
		r.f.now_us += next;
	}
	left = r.m.next_aggr_sis - r.m.passed_samples; /* samples */
	samples = r.m.samples_in_aggr;
	seq = r.m.seq;
	nr = dm_monitor_nr_regions(&r.m);
	EXPECT(samples > 0 && left > 0 && left < 20,
	       "mid-interval: %u samples taken, %llu left", samples, (unsigned long long)left);

	dm_monitor_pause(&r.m);
	dm_monitor_pause(&r.m); /* idempotent */
	prepared = r.model.nr_prepared;
	checked = r.model.nr_checked;
	for (int i = 0; i < 2000; i++) { /* 10 s, stepped every 5 ms */
		next = 0;
		EXPECT_EQ(dm_monitor_step(&r.m, &next), 0);
		if (next != UINT64_MAX) {
			EXPECT(0, "paused step %d says next %llu, want UINT64_MAX", i,
			       (unsigned long long)next);
			break;
		}
		r.f.now_us += 5000;
	}
	EXPECT_EQ(r.m.seq, seq);
	EXPECT_EQ(r.model.nr_checked, checked);
	EXPECT_EQ(r.model.nr_prepared, prepared);
	EXPECT_EQ(r.m.samples_in_aggr, samples);
	EXPECT_EQ(dm_monitor_nr_regions(&r.m), nr);

	dm_monitor_resume(&r.m);
	dm_monitor_resume(&r.m); /* idempotent */
	resumed = r.f.now_us;
	/* the 10 s paused count in no interval */
	EXPECT_EQ(r.m.next_aggr_sis - r.m.passed_samples, left);
	/* the first step arms, samples nothing */
	EXPECT_EQ(dm_monitor_step(&r.m, &next), 0);
	EXPECT_EQ(next, r.m.sample_us);
	EXPECT_EQ(r.model.nr_checked, checked);
	EXPECT_EQ(r.model.nr_prepared, prepared + nr);
	EXPECT_EQ(r.m.samples_in_aggr, samples);
	r.f.now_us += next;
	EXPECT_EQ(dm_monitor_step(&r.m, &next), 0);
	EXPECT_EQ(r.model.nr_checked, checked + nr);
	EXPECT_EQ(r.m.samples_in_aggr, samples + 1);
	r.f.now_us += next;
	/* the interval ends when it would have without the pause */
	run_aggregations(&r, 1, NULL, NULL);
	EXPECT_EQ(r.m.seq, seq + 1);
	{
		damon_snapshot *s = dm_publisher_get(&r.pub);
		uint64_t at = s->info.time_ns / 1000 - resumed;

		/* the arming step, then the samples that were left, one interval apart */
		EXPECT(at == left * r.m.sample_us,
		       "aggregation %llu us after resume, %llu samples were left at pause",
		       (unsigned long long)at, (unsigned long long)left);
		damon_snapshot_unref(s);
	}
	run_aggregations(&r, 20, record_hot, &h);
	EXPECT(h.hot_rate >= 9000 && h.cold_rate <= 500, "after resume: hot %u bp, cold %u bp",
	       h.hot_rate, h.cold_rate);
	run_close(&r);
}

struct digest {
	uint64_t h;
};

static void hash_snapshot(struct run *r, damon_snapshot *s, void *arg)
{
	struct digest *d = arg;

	for (size_t i = 0; i < s->nr_regions; i++) {
		d->h = d->h * 1099511628211ULL ^ s->regions[i].start;
		d->h = d->h * 1099511628211ULL ^ s->regions[i].nr_accesses;
		d->h = d->h * 1099511628211ULL ^ s->regions[i].age;
	}
}

static uint64_t digest_of(uint64_t seed)
{
	struct digest d = { 14695981039346656037ULL };
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.seed_noise = 3;
	run_open(&r, seed, 10, 100, 512 * MiB);
	run_aggregations(&r, 30, hash_snapshot, &d);
	run_close(&r);
	return d.h;
}

static void test_reproducible(void)
{
	uint64_t a = digest_of(5), b = digest_of(5), c = digest_of(6);

	EXPECT(a == b, "same seed, same snapshots (%llx vs %llx)", (unsigned long long)a,
	       (unsigned long long)b);
	EXPECT(a != c, "another seed, other snapshots");
}

static void test_schemes_stat(void)
{
	struct dm_scheme hot = { 0 }, cold = { 0 };
	struct dm_scheme *v[2] = { &hot, &cold };
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE + 256 * MiB;
	r.f.hot_end = BASE + 320 * MiB;
	run_open(&r, 1, 10, 1000, 1 * GiB);
	damos_opts_init(&hot.opts);
	hot.opts.min_nr_accesses = 15; /* of 20 */
	damos_opts_init(&cold.opts);
	cold.opts.max_nr_accesses = 0; /* never accessed */
	cold.opts.min_age = 5;
	r.m.schemes = v;
	r.m.nr_schemes = 2;
	run_aggregations(&r, 30, NULL, NULL);
	EXPECT_EQ(hot.stats.nr_snapshots, 30);
	EXPECT(hot.stats.sz_tried >= 25 * 64 * MiB && hot.stats.sz_tried <= 30 * 64 * MiB + 30 * 64 * MiB / 4,
	       "hot scheme tried about 64 MiB per round: %llu",
	       (unsigned long long)hot.stats.sz_tried);
	EXPECT(cold.stats.sz_tried > 0, "cold scheme matched old cold regions");
	EXPECT_EQ(hot.stats.sz_applied, 0); /* stat applies nothing */
	r.m.schemes = NULL;
	r.m.nr_schemes = 0;
	run_close(&r);
}

/* ---- DAMOS engine: quotas, priorities, goals, watermarks, filters -------- */

struct fake_env {
	struct dm_scheme_env env;
	uint32_t free_permil;
	int free_fail;
	uint64_t psi_total;
	uint64_t applied_window;  /* bytes applied since the test reset it */
	uint64_t nr_calls;
	uint64_t last_start, last_end;
	uint64_t *clock_us;       /* advanced by apply when ns_per_byte is set */
	uint64_t ns_per_byte;
	uint64_t *cpu_ns;         /* a CPU clock apply advances, when set */
	uint64_t cpu_per_call_ns; /* by this much per call */
};

static int fe_free(void *arg, uint32_t *ret)
{
	struct fake_env *e = arg;

	if (e->free_fail)
		return -EIO;
	*ret = e->free_permil;
	return 0;
}

static int fe_psi(void *arg, uint64_t *ret)
{
	*ret = ((struct fake_env *)arg)->psi_total;
	return 0;
}

static int64_t fe_apply(void *arg, const struct dm_scheme *s, const struct dm_scheme_target *t,
			uint64_t start, uint64_t end, uint64_t *passed, struct dm_err *err)
{
	struct fake_env *e = arg;

	e->nr_calls++;
	e->applied_window += end - start;
	e->last_start = start;
	e->last_end = end;
	*passed = end - start;
	if (e->clock_us && e->ns_per_byte)
		*e->clock_us += (end - start) * e->ns_per_byte / 1000;
	if (e->cpu_ns)
		*e->cpu_ns += e->cpu_per_call_ns;
	return (int64_t)(end - start);
}

static uint64_t fe_now_ns(void *arg)
{
	struct fake_env *e = arg;

	return e->clock_us ? *e->clock_us * 1000 : 0;
}

static void fake_env_init(struct fake_env *e)
{
	memset(e, 0, sizeof(*e));
	e->env.free_mem_rate = fe_free;
	e->env.psi_some_us = fe_psi;
	e->env.apply = fe_apply;
	e->env.now_ns = fe_now_ns;
	e->env.arg = e;
}

static void new_scheme(struct dm_scheme *s, uint32_t action)
{
	memset(s, 0, sizeof(*s));
	damos_opts_init(&s->opts);
	s->opts.action = action;
	dm_scheme_reset(s);
}

/* Bytes quota: whatever the regions, no reset interval gets more than the
 * quota; the coldest regions (oldest, never accessed) go first. */
static void test_schemes_quota_bytes(void)
{
	struct dm_scheme cold;
	struct dm_scheme *v[1] = { &cold };
	struct fake_env e;
	struct run r;
	uint64_t window_start, max_window = 0;
	unsigned int windows = 0;

	memset(&r, 0, sizeof(r));
	fake_env_init(&e);
	r.f.hot_start = BASE + 256 * MiB;
	r.f.hot_end = BASE + 320 * MiB;
	run_open(&r, 3, 10, 1000, 1 * GiB);
	r.m.env = &e.env;
	new_scheme(&cold, DAMOS_PAGEOUT);
	cold.opts.max_nr_accesses = 0;
	cold.opts.quota_bytes = 8 * MiB;
	cold.opts.quota_reset_interval_ms = 1000; /* 10 aggregations */
	cold.opts.weight_nr_accesses = 1;
	cold.opts.weight_age = 1;
	r.m.schemes = v;
	r.m.nr_schemes = 1;
	window_start = cold.quota.charged_from_us;
	for (int i = 0; i < 100; i++) {
		run_aggregations(&r, 1, NULL, NULL);
		if (cold.quota.charged_from_us != window_start) {
			/* a new reset interval began in this round: e.applied_window
			 * holds the old one plus what this round applied */
			window_start = cold.quota.charged_from_us;
			windows++;
			e.applied_window = cold.quota.charged_sz;
		}
		if (e.applied_window > max_window)
			max_window = e.applied_window;
		EXPECT(cold.quota.charged_sz <= 8 * MiB, "charged %llu within the quota",
		       (unsigned long long)cold.quota.charged_sz);
	}
	EXPECT(max_window <= 8 * MiB, "at most 8 MiB per reset interval, got %llu",
	       (unsigned long long)max_window);
	EXPECT(windows >= 8, "quota windows rolled over: %u", windows);
	EXPECT(cold.stats.sz_applied >= 8 * 8 * MiB, "kept applying: %llu",
	       (unsigned long long)cold.stats.sz_applied);
	EXPECT(cold.stats.qt_exceeds >= 8, "qt_exceeds counts exhausted windows: %llu",
	       (unsigned long long)cold.stats.qt_exceeds);
	EXPECT(cold.stats.sz_tried <= cold.stats.nr_snapshots * 8 * MiB + 8 * MiB,
	       "tried no more than the quota allows");
	r.m.schemes = NULL;
	r.m.nr_schemes = 0;
	run_close(&r);
}

/* Prioritization: of a cold old region and a cold young one, the quota
 * goes to the older (colder) one first; for a hot action, the hottest. */
static void test_schemes_priority(void)
{
	struct dm_region v[3] = {
		{ .start = BASE, .end = BASE + 4 * MiB, .nr_accesses = 0, .age = 2 },
		{ .start = BASE + 4 * MiB, .end = BASE + 8 * MiB, .nr_accesses = 0, .age = 200 },
		{ .start = BASE + 8 * MiB, .end = BASE + 12 * MiB, .nr_accesses = 20,
		  .nr_accesses_bp = 200000, .age = 50 },
	};
	struct dm_regions rs = { 0 };
	struct dm_scheme_target t = { 0, 1, &rs };
	struct dm_scheme s;
	struct fake_env e;
	struct dm_scheme_round rd = { .now_us = 1000000, .aggr_us = 100000,
				      .max_nr_accesses = 20 };

	fake_env_init(&e);
	rd.env = &e.env;
	dm_regions_reserve(NULL, &rs, 8);
	memcpy(rs.v, v, sizeof(v));
	rs.n = 3;
	new_scheme(&s, DAMOS_COLD);
	s.opts.quota_bytes = 4 * MiB;
	s.opts.quota_reset_interval_ms = 1000;
	s.opts.weight_nr_accesses = 1;
	s.opts.weight_age = 1;
	EXPECT(dm_scheme_score(&s, &v[1], 20, 100000) > dm_scheme_score(&s, &v[0], 20, 100000),
	       "older cold region scores colder (%u vs %u)", dm_scheme_score(&s, &v[1], 20, 100000),
	       dm_scheme_score(&s, &v[0], 20, 100000));
	dm_scheme_apply(&s, &t, 1, &rd);
	EXPECT_EQ(e.nr_calls, 1);
	EXPECT_EQ(e.last_start, BASE + 4 * MiB); /* the 200-interval-old one */
	EXPECT_EQ(rs.v[1].age, 0);               /* acted on: age reset */
	EXPECT_EQ(rs.v[0].age, 2);               /* left alone */
	EXPECT_EQ(s.stats.sz_applied, 4 * MiB);

	/* Hot side: collapse wants the hottest first. */
	memcpy(rs.v, v, sizeof(v));
	rs.n = 3;
	fake_env_init(&e);
	rd.env = &e.env;
	new_scheme(&s, DAMOS_COLLAPSE);
	s.opts.quota_bytes = 4 * MiB;
	s.opts.quota_reset_interval_ms = 1000;
	s.opts.weight_nr_accesses = 1;
	dm_scheme_apply(&s, &t, 1, &rd);
	EXPECT_EQ(e.last_start, BASE + 8 * MiB);

	/* A region that does not fit the rest of the quota is cut to fit. */
	memcpy(rs.v, v, sizeof(v));
	rs.n = 3;
	fake_env_init(&e);
	rd.env = &e.env;
	new_scheme(&s, DAMOS_PAGEOUT);
	s.opts.quota_bytes = 6 * MiB;
	s.opts.quota_reset_interval_ms = 1000;
	s.opts.weight_age = 1;
	dm_scheme_apply(&s, &t, 1, &rd);
	EXPECT_EQ(s.stats.sz_applied, 6 * MiB);
	EXPECT_EQ(rs.n, 4); /* one region split at the quota edge */
	EXPECT_EQ(dm_regions_validate(&rs), 0);
	dm_regions_free(NULL, &rs);
}

/* The kernel's feedback loop and a user_input goal moving the quota. */
static void test_schemes_goals(void)
{
	struct dm_region v[1] = { { .start = BASE, .end = BASE + 1 * GiB } };
	struct dm_regions rs = { 0 };
	struct dm_scheme_target t = { 0, 1, &rs };
	struct dm_goal g = { 0 };
	struct dm_scheme s;
	struct fake_env e;
	struct dm_scheme_round rd = { .aggr_us = 100000, .max_nr_accesses = 20 };
	uint64_t esz0, esz1, esz2;

	EXPECT_EQ(dm_feed_loop_next(100000, 10000), 100000);  /* met: unchanged */
	EXPECT_EQ(dm_feed_loop_next(100000, 5000), 150000);   /* half way: +50% */
	EXPECT_EQ(dm_feed_loop_next(100000, 15000), 50000);   /* 150%: -50% */
	EXPECT_EQ(dm_feed_loop_next(100000, 20000), 10000);   /* twice over: minimum */
	dm_regions_reserve(NULL, &rs, 16);
	memcpy(rs.v, v, sizeof(v));
	rs.n = 1;

	fake_env_init(&e);
	rd.env = &e.env;
	new_scheme(&s, DAMOS_PAGEOUT);
	s.opts.quota_reset_interval_ms = 100;
	g.opts.metric = DAMOS_GOAL_USER_INPUT;
	g.opts.target_value = 1000;
	g.opts.current_value = 100; /* far below the goal: grow */
	s.goals = &g;
	s.nr_goals = 1;
	rd.now_us = 1000000;
	dm_scheme_quota_adjust(&s, rd.now_us, rd.env);
	esz0 = s.quota.esz;
	for (int i = 1; i <= 10; i++) {
		rd.now_us += 100000;
		dm_scheme_apply(&s, &t, 1, &rd);
	}
	esz1 = s.quota.esz;
	EXPECT(esz1 > esz0 * 50, "under-achieving goal raised the quota: %llu -> %llu",
	       (unsigned long long)esz0, (unsigned long long)esz1);
	g.opts.current_value = 1500; /* over-achieving: shrink */
	for (int i = 1; i <= 3; i++) {
		rd.now_us += 100000;
		dm_scheme_apply(&s, &t, 1, &rd);
	}
	esz2 = s.quota.esz;
	EXPECT(esz2 < esz1 / 4, "over-achieving goal lowered the quota: %llu -> %llu",
	       (unsigned long long)esz1, (unsigned long long)esz2);
	/* quota_bytes still caps what the goal asks for */
	s.opts.quota_bytes = 1 * MiB;
	g.opts.current_value = 0;
	for (int i = 1; i <= 10; i++) {
		rd.now_us += 100000;
		dm_scheme_apply(&s, &t, 1, &rd);
	}
	EXPECT(s.quota.esz <= 1 * MiB, "capped by quota_bytes: %llu",
	       (unsigned long long)s.quota.esz);

	/* PSI goal: current is the stall time of the last reset interval. */
	new_scheme(&s, DAMOS_PAGEOUT);
	s.opts.quota_reset_interval_ms = 100;
	memset(&g, 0, sizeof(g));
	g.opts.metric = DAMOS_GOAL_SOME_MEM_PSI_US;
	g.opts.target_value = 10000;
	s.goals = &g;
	s.nr_goals = 1;
	e.psi_total = 5000000;
	rd.now_us += 1000000;
	dm_scheme_apply(&s, &t, 1, &rd);
	e.psi_total += 2500; /* a quarter of the target: grow */
	rd.now_us += 100000;
	dm_scheme_apply(&s, &t, 1, &rd);
	EXPECT_EQ(g.opts.current_value, 2500);
	esz1 = s.quota.esz;
	e.psi_total += 40000; /* 4x the target: minimum */
	rd.now_us += 100000;
	dm_scheme_apply(&s, &t, 1, &rd);
	EXPECT(s.quota.esz < esz1, "PSI above target lowered the quota: %llu -> %llu",
	       (unsigned long long)esz1, (unsigned long long)s.quota.esz);
	dm_regions_free(NULL, &rs);
}

/* Time quota: the effective size follows the measured bytes per ms. */
static void test_schemes_quota_time(void)
{
	struct dm_region v[1] = { { .start = BASE, .end = BASE + 1 * GiB } };
	struct dm_regions rs = { 0 };
	struct dm_scheme_target t = { 0, 1, &rs };
	struct dm_scheme s;
	struct fake_env e;
	uint64_t clock = 1000000;
	struct dm_scheme_round rd = { .aggr_us = 100000, .max_nr_accesses = 20 };

	dm_regions_reserve(NULL, &rs, 64);
	memcpy(rs.v, v, sizeof(v));
	rs.n = 1;
	fake_env_init(&e);
	e.clock_us = &clock;
	e.ns_per_byte = 1; /* 1 GB/s: 1 MB per ms */
	rd.env = &e.env;
	new_scheme(&s, DAMOS_PAGEOUT);
	s.opts.quota_ms = 10;
	s.opts.quota_reset_interval_ms = 1000;
	for (int i = 0; i < 30; i++) {
		rd.now_us = clock;
		dm_scheme_apply(&s, &t, 1, &rd);
		clock += 100000;
	}
	/* 10 ms at ~1 byte/ns: ~10 MB per reset interval */
	EXPECT(s.quota.esz >= 9000000 && s.quota.esz <= 11000000, "esz %llu for 10 ms",
	       (unsigned long long)s.quota.esz);
	dm_regions_free(NULL, &rs);
}

/* Core filters: addr and target, first match decides, kernel default. */
static void test_schemes_filters(void)
{
	struct dm_region a = { .start = BASE, .end = BASE + MiB };
	struct dm_region b = { .start = BASE + 8 * MiB, .end = BASE + 9 * MiB };
	struct damos_filter_opts f[2] = {
		{ .type = DAMOS_FILTER_ADDR, .matching = 1, .allow = 0, .addr_start = BASE,
		  .addr_end = BASE + 4 * MiB },
		{ .type = DAMOS_FILTER_TARGET, .matching = 1, .allow = 1, .target_idx = 1 },
	};
	struct dm_scheme s;

	new_scheme(&s, DAMOS_COLD);
	s.filters = f;
	s.nr_filters = 1;
	EXPECT(!dm_scheme_core_filters_pass(&s, 0, &a), "reject filter rejects its range");
	EXPECT(dm_scheme_core_filters_pass(&s, 0, &b), "the rest passes after a reject filter");
	s.nr_filters = 2;
	EXPECT(!dm_scheme_core_filters_pass(&s, 1, &a), "first filter decides");
	EXPECT(dm_scheme_core_filters_pass(&s, 1, &b), "allow filter allows target 1");
	EXPECT(!dm_scheme_core_filters_pass(&s, 0, &b),
	       "after an allow filter, memory no filter is about is rejected");

	/* A region across the filter's edge is split there, and only the part
	 * inside the allowed range is acted on. */
	{
		struct dm_region v[1] = { { .start = BASE, .end = BASE + 8 * MiB } };
		struct dm_regions rs = { 0 };
		struct dm_scheme_target t = { 0, 1, &rs };
		struct damos_filter_opts g = { .type = DAMOS_FILTER_ADDR, .matching = 1,
					       .allow = 1, .addr_start = BASE + 2 * MiB,
					       .addr_end = BASE + 5 * MiB };
		struct fake_env e;
		struct dm_scheme_round rd = { .now_us = 1000000, .aggr_us = 100000,
					      .max_nr_accesses = 20 };

		fake_env_init(&e);
		rd.env = &e.env;
		dm_regions_reserve(NULL, &rs, 8);
		memcpy(rs.v, v, sizeof(v));
		rs.n = 1;
		new_scheme(&s, DAMOS_COLD);
		s.filters = &g;
		s.nr_filters = 1;
		dm_scheme_apply(&s, &t, 1, &rd);
		EXPECT_EQ(rs.n, 3);
		EXPECT_EQ(e.nr_calls, 1);
		EXPECT_EQ(e.last_start, BASE + 2 * MiB);
		EXPECT_EQ(e.last_end, BASE + 5 * MiB);
		EXPECT_EQ(s.stats.sz_applied, 3 * MiB);
		dm_regions_free(NULL, &rs);
	}

	/* A region cut to fit the quota, which a filter then rejects, is cut
	 * once per round: the remainder waits for the next round. Tried at
	 * once, it was cut again and again, into pieces of the quota's size. */
	{
		struct dm_region v[1] = { { .start = BASE, .end = BASE + 64 * MiB } };
		struct dm_regions rs = { 0 };
		struct dm_scheme_target t = { 0, 1, &rs };
		struct damos_filter_opts g = { .type = DAMOS_FILTER_TARGET, .matching = 1,
					       .allow = 1, .target_idx = 1 };
		struct fake_env e;
		struct dm_scheme_round rd = { .now_us = 1000000, .aggr_us = 100000,
					      .max_nr_accesses = 20 };

		fake_env_init(&e);
		rd.env = &e.env;
		dm_regions_reserve(NULL, &rs, 8);
		memcpy(rs.v, v, sizeof(v));
		rs.n = 1;
		new_scheme(&s, DAMOS_COLD);
		s.opts.quota_bytes = 1 * MiB;
		s.opts.quota_reset_interval_ms = 1000;
		s.filters = &g;
		s.nr_filters = 1;
		dm_scheme_apply(&s, &t, 1, &rd);
		EXPECT(rs.n <= 2, "a rejected region cut to the quota: %zu pieces after one round",
		       rs.n);
		EXPECT_EQ(e.nr_calls, 0);
		dm_regions_free(NULL, &rs);
	}
}

/* Watermarks: inactive schemes idle the monitor (no sampling at all), a
 * watermark check wakes it. */
static void test_schemes_watermarks(void)
{
	struct dm_scheme s;
	struct dm_scheme *v[1] = { &s };
	struct fake_env e;
	struct run r;
	uint64_t checked, snaps;

	memset(&r, 0, sizeof(r));
	fake_env_init(&e);
	r.f.hot_start = BASE;
	r.f.hot_end = BASE + 64 * MiB;
	run_open(&r, 11, 10, 1000, 512 * MiB);
	r.m.env = &e.env;
	new_scheme(&s, DAMOS_PAGEOUT);
	s.opts.wmarks_metric = DAMOS_WMARK_FREE_MEM_RATE;
	s.opts.wmarks_interval_us = 500000;
	s.opts.wmarks_high = 500;
	s.opts.wmarks_mid = 400;
	s.opts.wmarks_low = 50;
	r.m.schemes = v;
	r.m.nr_schemes = 1;
	e.free_permil = 800; /* plenty free: above high, inactive */
	checked = r.model.nr_checked;
	snaps = r.m.seq;
	for (int i = 0; i < 200; i++) {
		uint64_t next = 0;

		CU_ASSERT_EQUAL_FATAL(dm_monitor_step(&r.m, &next), 0);
		r.f.now_us += next ? next : 1;
	}
	EXPECT(!s.wmark_active, "above high: inactive");
	EXPECT(r.m.idle, "monitor idles");
	EXPECT_EQ(r.model.nr_checked, checked); /* not one sample taken */
	EXPECT_EQ(r.m.seq, snaps);
	/* free memory falls between mid and high: stays inactive (hysteresis) */
	e.free_permil = 450;
	r.f.now_us += 1000000;
	dm_monitor_step(&r.m, NULL);
	EXPECT(!s.wmark_active, "between mid and high: still inactive");
	/* below mid: active, sampling resumes, the scheme applies */
	e.free_permil = 300;
	r.f.now_us += 1000000;
	run_aggregations(&r, 5, NULL, NULL);
	EXPECT(s.wmark_active, "below mid: active");
	EXPECT(r.model.nr_checked > checked, "sampling resumed");
	EXPECT(s.stats.nr_snapshots > 0, "scheme ran: %llu", (unsigned long long)s.stats.nr_snapshots);
	/* below low: deactivated again */
	e.free_permil = 10;
	r.f.now_us += 1000000;
	dm_monitor_step(&r.m, NULL);
	EXPECT(!s.wmark_active, "below low: inactive");
	/* the metric cannot be read: inactive, with a sentence */
	e.free_fail = 1;
	e.free_permil = 300;
	r.f.now_us += 1000000;
	dm_monitor_step(&r.m, NULL);
	EXPECT(!s.wmark_active && strstr(s.last_err.msg, "free memory") != NULL,
	       "unreadable metric: inactive, said: \"%s\"", s.last_err.msg);
	r.m.schemes = NULL;
	r.m.nr_schemes = 0;
	run_close(&r);
}

/* Samples a primitive could not check (huge pages under uffd_wp) keep the
 * region's last nr_accesses, and its age grows. */
static void test_unknown_samples(void)
{
	struct dm_region v[2] = {
		{ .start = 0, .end = 2 * MiB, .nr_accesses = 0, .last_nr_accesses = 18,
		  .nr_unknown = 20, .age = 4 },
		{ .start = 2 * MiB, .end = 4 * MiB, .nr_accesses = 5, .last_nr_accesses = 8,
		  .nr_unknown = 10, .age = 4 },
	};
	struct dm_regions rs = { v, 2, 2 };

	dm_regions_settle_unknown(&rs, 20);
	EXPECT_EQ(v[0].nr_accesses, 18); /* nothing known: last value */
	EXPECT_EQ(v[0].unseen, 1);
	EXPECT_EQ(v[1].nr_accesses, 9); /* 5 seen + 10 unknown samples at the last rate 8/20 */
	EXPECT_EQ(v[1].unseen, 0);
	dm_regions_update_age(&rs, 2);
	EXPECT_EQ(v[0].age, 5); /* unchanged pattern: one year older */
}

/*
 * The kernel counts an aggregation interval in samples (next_aggregation_sis),
 * not in time. When sampling runs late (a busy machine, a slow primitive),
 * every aggregation still has aggr/sample samples, so an unchanging hot set
 * keeps its nr_accesses and grows old, one year per aggregation. (Timed
 * aggregations took 13-19 samples here, and the hot set's age kept falling
 * back to 0 as nr_accesses jumped by more than the merge threshold.)
 */
static void check_full_samples(struct run *r, damon_snapshot *s, void *arg)
{
	uint32_t *bad = arg;

	if (s->info.nr_samples != 20 || s->info.max_nr_accesses != 20)
		(*bad)++;
}

static void test_aggregation_counts_samples(void)
{
	struct hot_result h = { 0 };
	uint32_t bad = 0;
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE + 64 * MiB;
	r.f.hot_end = BASE + 96 * MiB;
	r.f.late_us = 3000; /* each 5 ms sample up to 3 ms late */
	run_open(&r, 77, 10, 1000, 256 * MiB);
	run_aggregations(&r, 30, check_full_samples, &bad);
	EXPECT(bad == 0, "%u of 30 aggregations without exactly 20 samples", bad);
	run_aggregations(&r, 1, record_hot, &h);
	/* 31 aggregations: the regions inside it are about as old */
	EXPECT(h.max_age_hot >= 20, "an unchanging hot set grows old while sampling runs late: "
	       "max age %u after 31 aggregations", h.max_age_hot);
	EXPECT(h.hot_rate >= 9500, "hot set rate %u", h.hot_rate);
	run_close(&r);
}

/*
 * A scheme's apply interval counts samples too, and may be shorter than the
 * aggregation interval: the kernel then tries it at its own interval, judging
 * regions by the moving sum nr_accesses_bp. A 10 ms apply interval with
 * 5 ms samples and 100 ms aggregations: ten rounds per aggregation, each
 * finding the hot set (min_nr_accesses 15 of 20) also mid-aggregation.
 */
static void test_apply_interval(void)
{
	struct dm_scheme fast = { 0 }, slow = { 0 };
	struct dm_scheme *v[2] = { &fast, &slow };
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE + 128 * MiB;
	r.f.hot_end = BASE + 192 * MiB;
	run_open(&r, 5, 10, 1000, 512 * MiB);
	run_aggregations(&r, 5, NULL, NULL); /* the hot set is found */
	damos_opts_init(&fast.opts);
	fast.opts.min_nr_accesses = 15;
	fast.opts.apply_interval_us = 10000;
	damos_opts_init(&slow.opts);
	slow.opts.min_nr_accesses = 15;
	dm_scheme_reset(&fast);
	dm_scheme_reset(&slow);
	r.m.schemes = v;
	r.m.nr_schemes = 2;
	/* as damon_ctx_commit() does for schemes added while running */
	dm_monitor_set_attrs(&r.m, &r.m.attrs);
	dm_scheme_set_next_apply(&fast, r.m.passed_samples, 5000, 100000);
	dm_scheme_set_next_apply(&slow, r.m.passed_samples, 5000, 100000);
	run_aggregations(&r, 10, NULL, NULL);
	EXPECT(fast.stats.nr_snapshots >= 99 && fast.stats.nr_snapshots <= 101,
	       "10 ms apply interval: %llu rounds in 10 aggregations, want 100",
	       (unsigned long long)fast.stats.nr_snapshots);
	EXPECT(slow.stats.nr_snapshots >= 9 && slow.stats.nr_snapshots <= 11,
	       "aggregation apply interval: %llu rounds in 10 aggregations, want 10",
	       (unsigned long long)slow.stats.nr_snapshots);
	/* every round found about the 64 MiB hot set */
	EXPECT(fast.stats.sz_tried >= fast.stats.nr_snapshots * 60 * MiB &&
		       fast.stats.sz_tried <= fast.stats.nr_snapshots * 72 * MiB,
	       "%llu bytes tried in %llu rounds, about 64 MiB each",
	       (unsigned long long)fast.stats.sz_tried,
	       (unsigned long long)fast.stats.nr_snapshots);
	r.m.schemes = NULL;
	r.m.nr_schemes = 0;
	run_close(&r);
}

/*
 * A primitive that clears once per aggregation (soft_dirty) reports a sample
 * page already written since the clear as DM_ACCESS_EARLIER. A region written
 * without pause: its first sample is clean and then written, all the others
 * already dirty. It must read as hot as the kernel reads it (20 of 20; it
 * read 1-3 of 20, ~1500 bp, when those samples counted at the region's last
 * rate). Never written: 0. The estimate in between follows the rate.
 */
static void test_earlier_samples(void)
{
	struct dm_region v[3] = { 0 };
	struct dm_regions rs = { v, 3, 3 };
	double p;

	for (uint32_t k = 0; k < 20; k++) {
		/* sample k was prepared k intervals after the clear */
		v[0].accessed = k == 0 ? 1 : DM_ACCESS_EARLIER;
		v[0].since = (uint16_t)k;
		v[1].accessed = 0;
		v[1].since = (uint16_t)k;
		/* one page in four written per interval: dirty ones turn up */
		v[2].accessed = k % 4 == 1 ? 1 : k > 4 && k % 2 ? DM_ACCESS_EARLIER : 0;
		v[2].since = (uint16_t)(v[2].accessed == DM_ACCESS_EARLIER ? k : k % 4);
		dm_regions_account_sample(&rs, 20);
	}
	dm_regions_settle_unknown(&rs, 20);
	EXPECT_EQ(v[0].nr_accesses, 20);
	EXPECT_EQ(v[0].nr_accesses_bp, 200000);
	EXPECT_EQ(v[1].nr_accesses, 0);
	EXPECT(v[2].nr_accesses >= 3 && v[2].nr_accesses <= 12, "a quarter-written region: %u",
	       v[2].nr_accesses);
	EXPECT_EQ(v[0].nr_earlier, 0); /* settled: counters cleared */

	/* The estimate itself: no earlier access, the plain ratio; with only
	 * written or earlier samples, 1; with only one earlier access after a
	 * long clean history, small. */
	p = dm_access_rate_mle(5, 15, 0, 0);
	EXPECT(p > 0.249 && p < 0.251, "5 of 20: %f", p);
	EXPECT(dm_access_rate_mle(1, 0, 19, 10) == 1.0, "never seen clean");
	p = dm_access_rate_mle(0, 100, 1, 1);
	EXPECT(p > 0.005 && p < 0.02, "one earlier access among 100 clean intervals: %f", p);
	/* earlier accesses within 1 interval count like accesses */
	p = dm_access_rate_mle(2, 6, 2, 1);
	EXPECT(p > 0.399 && p < 0.401, "4 accessed intervals of 10: %f", p);
}

/*
 * The budget cuts regions first (down to 3 x min_nr_regions), keeping the
 * kernel's intervals; only then does it stretch them. Back under budget, the
 * stretch goes first, then the regions may grow again.
 */
/*
 * The intervals goal (Linux 6.15's): hot pages accessed once per 50 ms, 64
 * of 512 MiB. At 5 ms sampling a sample sees 1 in 10 of them: 125 bp of the
 * most observable against a goal of 400 bp, so the sampling interval grows
 * until a hot sample sees ~32%: ~16 ms. Samples per aggregation stay 20, the
 * aggregation interval follows, the snapshots tell the intervals in force,
 * and the sampling interval never leaves [min, max]. An unreachable goal
 * (every page seen at most 12.5%, goal 50%) ends at max_sample_us; a commit
 * with the configured attributes starts from them again; aggrs 0 is off.
 */
static void check_tuned_info(struct run *r, damon_snapshot *s, void *arg)
{
	uint32_t *bad = arg;

	if (s->info.max_nr_accesses != 20 || s->info.sample_us * 20 != s->info.aggr_us ||
	    s->info.sample_us < 5000 || s->info.sample_us > 100000)
		(*bad)++;
}

static void test_intervals_goal(void)
{
	struct dm_mon_attrs a;
	uint32_t bad = 0;
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE + 128 * MiB;
	r.f.hot_end = BASE + 192 * MiB;
	r.f.period_us = 50000;
	r.f.interval_us = &r.m.sample_us;
	run_open(&r, 11, 10, 1000, 512 * MiB);
	a = r.m.attrs;
	a.goal = (struct dm_intervals_goal){ .access_bp = 400, .aggrs = 2,
					     .min_sample_us = 5000, .max_sample_us = 100000 };
	dm_monitor_set_attrs(&r.m, &a);
	run_aggregations(&r, 60, check_tuned_info, &bad);
	EXPECT(bad == 0, "%u snapshots with intervals not in [5 ms, 100 ms] x 20 samples", bad);
	EXPECT(r.m.nr_tunes >= 3, "the goal changed the intervals %llu times",
	       (unsigned long long)r.m.nr_tunes);
	EXPECT(r.m.attrs.sample_us >= 10000 && r.m.attrs.sample_us <= 26000,
	       "tuned sampling interval %llu us, want ~16 ms (a hot sample sees ~32%%)",
	       (unsigned long long)r.m.attrs.sample_us);
	EXPECT_EQ(r.m.attrs.aggr_us, r.m.attrs.sample_us * 20);
	EXPECT_EQ(r.m.sample_us, r.m.attrs.sample_us); /* no budget: in force as tuned */

	/* unreachable: the sampling interval rises to max_sample_us and stays */
	a.goal.access_bp = 5000;
	a.goal.max_sample_us = 40000;
	dm_monitor_set_attrs(&r.m, &a); /* the configured 5 ms again */
	EXPECT_EQ(r.m.attrs.sample_us, 5000);
	run_aggregations(&r, 40, NULL, NULL);
	EXPECT_EQ(r.m.attrs.sample_us, 40000);
	EXPECT_EQ(r.m.aggr_us, 800000);

	/* off: what was set stays */
	a.goal.aggrs = 0;
	dm_monitor_set_attrs(&r.m, &a);
	run_aggregations(&r, 10, NULL, NULL);
	EXPECT_EQ(r.m.attrs.sample_us, 5000);
	run_close(&r);

	/* the arithmetic: on the goal nothing moves; at twice the goal or more,
	 * halve; with nothing seen, double; never out of bounds */
	{
		struct dm_intervals_goal g = { .access_bp = 400, .aggrs = 1,
					       .min_sample_us = 1000, .max_sample_us = 80000 };

		EXPECT_EQ(dm_tune_score_bp(&g, 400, 10000), 10000);
		EXPECT_EQ(dm_tune_next_sample_us(&g, 5000, 10000), 5000);
		EXPECT_EQ(dm_tune_next_sample_us(&g, 5000, 30000), 2500);
		EXPECT_EQ(dm_tune_next_sample_us(&g, 5000, 0), 10000);
		EXPECT_EQ(dm_tune_next_sample_us(&g, 60000, 0), 80000);
		EXPECT_EQ(dm_tune_next_sample_us(&g, 1500, 40000), 1000);
		EXPECT_EQ(dm_tune_score_bp(&g, 0, 0), 0);
	}
}

static void test_budget(void)
{
	struct dm_budget b;
	double s;

	/* 20 permille of 1 s = 20 ms allowed; 100 ms used at 1000 regions: 5x
	 * over, cut aiming at 80% of the budget (6.25x): 160 regions, no
	 * stretch. */
	dm_budget_init(&b, 20, 10000, 0, 0, 10, 1000);
	EXPECT_EQ(b.cap, 1000);
	s = dm_budget_update(&b, 1000000, 100000000, 1000);
	EXPECT_EQ(b.cap, 160);
	EXPECT(s < 1.001, "no stretch while regions can go: %f", s);
	/* The application's faults count: 2000 caught x 10 us = 20 ms, with
	 * 80 ms of CPU: 5x over again at 160 regions. 30 regions is the floor
	 * (3 x 10); the rest, 6.25 x 30 / 160 = 1.17, stretches. */
	dm_budget_caught(&b, 2000);
	s = dm_budget_update(&b, 2000000, 180000000, 160);
	EXPECT_EQ(b.cap, 30);
	EXPECT(s > 1.16 && s < 1.18, "stretch %f", s);
	/* Far over at the floor: all of it stretches, at most 8x a window. */
	s = dm_budget_update(&b, 3000000, 380000000, 30);
	EXPECT(s > 9.3 && s < 9.4, "stretch %f (8 x 1.17)", s);
	/* Idle: the stretch goes first (at most halving per window)... */
	for (int i = 0; i < 4; i++) {
		s = dm_budget_update(&b, 4000000 + (uint64_t)i * 1000000, 380000000, 30);
		EXPECT_EQ(b.cap, 30);
	}
	EXPECT(s == 1.0, "stretch %f", s);
	/* ...then the regions, when they press against the cap (at most 2x). */
	dm_budget_update(&b, 8000000, 380000000, 10);
	EXPECT_EQ(b.cap, 30);
	dm_budget_update(&b, 9000000, 380000000, 30);
	EXPECT_EQ(b.cap, 60);
	for (int i = 0; i < 10; i++)
		dm_budget_update(&b, 10000000 + (uint64_t)i * 1000000, 380000000, b.cap);
	EXPECT_EQ(b.cap, 1000);
	/* Within budget: left alone. */
	dm_budget_init(&b, 20, 0, 0, 0, 10, 1000);
	s = dm_budget_update(&b, 1000000, 15000000, 1000);
	EXPECT(s == 1.0 && b.cap == 1000, "stretch %f, cap %u", s, b.cap);
	/* No budget: never cuts, never stretches. */
	dm_budget_init(&b, 0, 0, 0, 0, 10, 1000);
	EXPECT(dm_budget_update(&b, 1000000, 1000000000, 1000) == 1.0 && b.cap == 1000,
	       "no budget");
	/* A floor above max_nr_regions is max_nr_regions. */
	dm_budget_init(&b, 20, 0, 0, 0, 10, 20);
	EXPECT_EQ(b.cap_min, 20);
}

/*
 * DAMOS actions are not monitoring: a scheme whose actions take 3 ms of CPU
 * per region it applies to (~30 ms per 100 ms aggregation) under a 2%
 * budget must leave the intervals and the regions alone, as kdamond's are
 * (the kernel bounds action time with quota_ms). When actions counted, the
 * intervals stretched at once: a migrate_hot on uffd_wp ran 27 s
 * aggregations in the tiering bench.
 */
static void test_budget_leaves_actions_out(void)
{
	struct dm_scheme sc;
	struct dm_scheme *v[1] = { &sc };
	struct fake_env e;
	struct dm_mon_attrs a;
	struct run r;

	memset(&r, 0, sizeof(r));
	r.f.hot_start = BASE;
	r.f.hot_end = BASE + 32 * MiB;
	run_open(&r, 3, 10, 1000, 512 * MiB);
	a = r.m.attrs;
	a.cpu_budget_permille = 20;
	dm_monitor_set_attrs(&r.m, &a);
	dm_budget_init(&r.m.budget, 20, 0, r.f.now_us, r.f.cpu_ns, 10, 1000);
	fake_env_init(&e);
	e.cpu_ns = &r.f.cpu_ns;
	e.cpu_per_call_ns = 3000000;
	r.m.env = &e.env;
	new_scheme(&sc, DAMOS_PAGEOUT);
	sc.opts.max_nr_accesses = 0;
	r.m.schemes = v;
	r.m.nr_schemes = 1;
	dm_scheme_set_next_apply(&sc, r.m.passed_samples, 5000, 100000);
	run_aggregations(&r, 30, NULL, NULL);
	EXPECT(e.nr_calls >= 200, "the scheme applied %llu times in 30 aggregations",
	       (unsigned long long)e.nr_calls);
	EXPECT(r.f.cpu_ns >= 600000000ULL, "actions took %llu ms of CPU in 3 s",
	       (unsigned long long)(r.f.cpu_ns / 1000000));
	EXPECT(r.m.sample_us == 5000 && r.m.aggr_us == 100000,
	       "intervals in force %llu/%llu us: actions do not stretch them",
	       (unsigned long long)r.m.sample_us, (unsigned long long)r.m.aggr_us);
	EXPECT(r.m.budget.cap == 1000, "region cap %u: actions do not cut it", r.m.budget.cap);
	r.m.schemes = NULL;
	r.m.nr_schemes = 0;
	run_close(&r);
}

/* A real child process as a vaddr target, accesses simulated: when the child
 * exits, the layout update says -ESRCH and the monitor stops by itself. */
static void test_target_exits(void)
{
	struct dm_mon_cfg cfg = { 0 };
	struct dm_err err = { 0 };
	struct run r;
	pid_t child;
	int ret = 0, wst;

	child = fork();
	CU_ASSERT_FATAL(child >= 0);
	if (!child) {
		pause();
		_exit(0);
	}
	memset(&r, 0, sizeof(r));
	r.model.accessed = model_accessed;
	r.model.arg = &r.f;
	r.clock = (struct dm_clock){ fake_now, fake_cpu, &r.f };
	r.f.now_us = 1000000;
	dm_publisher_init(&r.pub, NULL);
	cfg.attrs = (struct dm_mon_attrs){ 5000, 100000, 200000, 10, 1000, 0 };
	cfg.ops = &dm_ops_sim;
	cfg.ops_cfg.ops = DAMON_OPS_VADDR;
	cfg.ops_cfg.model = &r.model;
	cfg.clock = &r.clock;
	cfg.pub = &r.pub;
	CU_ASSERT_EQUAL_FATAL(dm_monitor_init(&r.m, &cfg, &err), 0);
	r.t.ot.pid = child;
	ret = dm_monitor_add_target(&r.m, &r.t, &err);
	EXPECT(ret == 0, "vaddr layout of a live child: %d %s", ret, err.msg);
	CU_ASSERT_EQUAL_FATAL(dm_monitor_start(&r.m, &err), 0);
	EXPECT(r.t.regions.n >= 10, "child split into >= min regions: %zu", r.t.regions.n);
	for (int i = 0; i < 100; i++) {
		uint64_t next;

		CU_ASSERT_EQUAL_FATAL(dm_monitor_step(&r.m, &next), 0);
		r.f.now_us += next;
	}
	kill(child, SIGKILL);
	waitpid(child, &wst, 0);
	for (int i = 0; i < 1000 && ret == 0; i++) {
		uint64_t next = 1;

		ret = dm_monitor_step(&r.m, &next);
		r.f.now_us += next;
	}
	EXPECT_EQ(-ret, ESRCH);
	EXPECT(!r.m.running, "monitor stopped itself");
	EXPECT(strstr(r.m.err.msg, "exited") != NULL, "sentence says exited: \"%s\"", r.m.err.msg);
	EXPECT_EQ(-dm_monitor_step(&r.m, NULL), EALREADY);
	dm_monitor_fini(&r.m);
	dm_publisher_fini(&r.pub);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "initial regions split evenly", test_init_even_split },
		{ "regions fit new ranges", test_set_ranges },
		{ "age rule", test_age_rule },
		{ "merge rule", test_merge_rule },
		{ "split rule", test_split_rule },
		{ "nr_regions within bounds, regions cover ranges", test_monitor_bounds_random },
		{ "hot set found and followed", test_monitor_finds_hot },
		{ "reproducible with a seed", test_reproducible },
		{ "pause keeps everything, resume goes on", test_pause },
		{ "stat schemes count matches", test_schemes_stat },
		{ "schemes: bytes quota per reset interval", test_schemes_quota_bytes },
		{ "schemes: prioritization and quota edge", test_schemes_priority },
		{ "schemes: goals tune the quota", test_schemes_goals },
		{ "schemes: time quota", test_schemes_quota_time },
		{ "schemes: core filters", test_schemes_filters },
		{ "schemes: watermarks idle and wake the monitor", test_schemes_watermarks },
		{ "unknown samples keep the last pattern", test_unknown_samples },
		{ "an aggregation is aggr/sample samples, late or not",
		  test_aggregation_counts_samples },
		{ "apply interval shorter than aggregation, in samples", test_apply_interval },
		{ "earlier accesses (soft_dirty) estimate the rate", test_earlier_samples },
		{ "intervals goal tunes the sampling interval", test_intervals_goal },
		{ "overhead budget stretches and relaxes", test_budget },
		{ "overhead budget leaves DAMOS actions out", test_budget_leaves_actions_out },
		{ "target exit stops the monitor", test_target_exits },
		{ NULL, NULL },
	};

	return dm_test_run("core", tests);
}
