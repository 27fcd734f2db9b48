// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <string.h>
#include <time.h>

#include "monitor.h"

static uint64_t real_now_us(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t real_cpu_ns(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

const struct dm_clock dm_clock_real = { real_now_us, real_cpu_ns, NULL };

static uint64_t now_us(const struct dm_monitor *m)
{
	return m->clock.now_us(m->clock.arg);
}

/* One per thread: its address tells threads apart without a syscall. */
static __thread char this_thread;

static uint64_t cpu_ns(const struct dm_monitor *m)
{
	return m->clock.cpu_ns ? m->clock.cpu_ns(m->clock.arg) : 0;
}

int dm_monitor_init(struct dm_monitor *m, const struct dm_mon_cfg *cfg, struct dm_err *err)
{
	memset(m, 0, sizeof(*m));
	m->attrs = cfg->attrs;
	m->sample_us = cfg->attrs.sample_us;
	m->aggr_us = cfg->attrs.aggr_us;
	m->backend = cfg->backend;
	m->ops = cfg->ops;
	m->clock = cfg->clock ? *cfg->clock : dm_clock_real;
	m->alloc = cfg->alloc;
	m->pub = cfg->pub;
	m->hooks = cfg->hooks;
	m->env = cfg->env;
	dm_rng_seed(&m->rng, cfg->seed);
	return m->ops->open(&m->inst, &cfg->ops_cfg, err);
}

static uint64_t total_size(const struct dm_monitor *m)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			sum += dm_regions_total_size(&m->targets[i]->regions);
	return sum;
}

uint32_t dm_monitor_aggr_samples(const struct dm_mon_attrs *a)
{
	uint64_t n = a->aggr_us / (a->sample_us ? a->sample_us : 1);

	return n < 1 ? 1 : n > UINT16_MAX ? UINT16_MAX : (uint32_t)n;
}

/* Samples per update interval (the kernel's next_ops_update_sis step). */
static uint64_t update_samples(const struct dm_mon_attrs *a)
{
	uint64_t n = a->update_us / (a->sample_us ? a->sample_us : 1);

	return n ? n : 1;
}

size_t dm_monitor_nr_regions(const struct dm_monitor *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			n += m->targets[i]->regions.n;
	return n;
}

/* Ask the ops set for the target's ranges now. */
static int layout(struct dm_monitor *m, struct dm_mon_target *t, struct dm_range **ret,
		  struct dm_err *err)
{
	size_t cap = t->ot.nr_fixed + 8;
	struct dm_range *r = dm_calloc(m->alloc, cap, sizeof(*r));
	int n;

	if (!r)
		return dm_err_set(err, -ENOMEM, "out of memory laying out a target");
	n = m->ops->update(m->inst, &t->ot, r, cap, err);
	if (n < 0) {
		dm_free(m->alloc, r);
		return n;
	}
	*ret = r;
	return n;
}

/* Draw a new sample page in every region and arm it. */
static void prepare_target(struct dm_monitor *m, struct dm_mon_target *t)
{
	struct dm_regions *rs = &t->regions;

	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];
		uint64_t pages = dm_region_size(r) / DM_MIN_REGION;

		r->sampling_addr = r->start + dm_rng_range(&m->rng, 0, pages) * DM_MIN_REGION;
		r->accessed = 0;
		r->since = 0;
		r->acc_how = 0;
		r->acc_cpu = -1;
		r->acc_node = -1;
	}
	m->ops->prepare(m->inst, &t->ot, rs->v, rs->n);
}

static void target_gone(struct dm_monitor *m, struct dm_mon_target *t, const struct dm_err *why)
{
	if (!t->live)
		return;
	m->ops->target_fini(m->inst, &t->ot);
	t->live = false;
	t->gone = true;
	dm_regions_free(m->alloc, &t->regions);
	if (m->hooks.target_gone)
		m->hooks.target_gone(m, t, why, m->hooks.arg);
}

int dm_monitor_add_target(struct dm_monitor *m, struct dm_mon_target *t, struct dm_err *err)
{
	struct dm_range *ranges = NULL;
	uint64_t sz = 0;
	int n, ret;

	if (m->nr_targets == m->cap_targets) {
		size_t cap = m->cap_targets ? m->cap_targets * 2 : 4;
		struct dm_mon_target **v = dm_realloc(m->alloc, m->targets,
						      m->cap_targets * sizeof(*v), cap * sizeof(*v));

		if (!v)
			return dm_err_set(err, -ENOMEM, "out of memory adding a target");
		m->targets = v;
		m->cap_targets = cap;
	}
	ret = m->ops->target_init(m->inst, &t->ot, err);
	if (ret)
		return ret;
	n = layout(m, t, &ranges, err);
	if (n < 0) {
		m->ops->target_fini(m->inst, &t->ot);
		return n;
	}
	for (int i = 0; i < n; i++)
		sz += ranges[i].end - ranges[i].start;
	/* The kernel's initial split: pieces of total / min_nr_regions. */
	ret = dm_regions_init(m->alloc, &t->regions, ranges, (size_t)n,
			      sz / m->attrs.min_nr_regions);
	dm_free(m->alloc, ranges);
	if (ret) {
		m->ops->target_fini(m->inst, &t->ot);
		return dm_err_set(err, ret, "out of memory building the initial regions");
	}
	t->live = true;
	t->gone = false;
	m->targets[m->nr_targets++] = t;
	if (m->running && !m->paused)
		prepare_target(m, t); /* paused: armed at the first step after resume */
	return 0;
}

int dm_monitor_start(struct dm_monitor *m, struct dm_err *err)
{
	uint64_t now = now_us(m);
	bool any = false;

	for (size_t i = 0; i < m->nr_targets; i++)
		any |= m->targets[i]->live;
	if (!any)
		return dm_err_set(err, -EINVAL, "no target to monitor");
	dm_budget_init(&m->budget, m->attrs.cpu_budget_permille,
		       m->ops->app_cost_ns ? m->ops->app_cost_ns(m->inst) : 0, now, cpu_ns(m),
		       m->attrs.min_nr_regions, m->attrs.max_nr_regions);
	m->cpu_thread = &this_thread;
	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			prepare_target(m, m->targets[i]);
	m->next_sample_us = now + m->sample_us;
	m->passed_samples = 0;
	m->next_aggr_sis = dm_monitor_aggr_samples(&m->attrs);
	m->next_update_sis = update_samples(&m->attrs);
	m->next_tune_sis = (uint64_t)dm_monitor_aggr_samples(&m->attrs) * m->attrs.goal.aggrs;
	for (size_t i = 0; i < m->nr_schemes; i++) {
		dm_scheme_reset(m->schemes[i]);
		dm_scheme_set_next_apply(m->schemes[i], m->passed_samples, m->attrs.sample_us,
					 m->attrs.aggr_us);
	}
	m->idle = false;
	m->samples_in_aggr = 0;
	m->paused = m->rearm = false;
	m->running = true;
	return 0;
}

void dm_monitor_pause(struct dm_monitor *m)
{
	if (!m->running || m->paused)
		return;
	m->paused = true;
	m->paused_at_us = now_us(m);
	if (!m->ops->release)
		return; /* nothing armed costs the application (page_idle, soft_dirty) */
	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			m->ops->release(m->inst, &m->targets[i]->ot, 0, UINT64_MAX);
}

void dm_monitor_resume(struct dm_monitor *m)
{
	uint64_t now, d;

	if (!m->paused)
		return;
	now = now_us(m);
	d = now > m->paused_at_us ? now - m->paused_at_us : 0;
	m->budget.win_start_us += d;
	m->next_sample_us = now;
	m->paused = false;
	m->rearm = true;
}

static bool attrs_reset_aggregation(const struct dm_mon_attrs *a, const struct dm_mon_attrs *b)
{
	return a->sample_us != b->sample_us || a->aggr_us != b->aggr_us ||
	       a->update_us != b->update_us || a->min_nr_regions != b->min_nr_regions ||
	       a->max_nr_regions != b->max_nr_regions;
}

/* The kernel's damon_update_monitoring_result() for an aggregation under
 * way: last_nr_accesses through its rate in bp, the counts of this interval
 * dropped, ages scaled to keep their length in time. */
static void convert_regions(struct dm_regions *rs, const struct dm_mon_attrs *old,
			    const struct dm_mon_attrs *new)
{
	uint64_t max_old = dm_monitor_aggr_samples(old), max_new = dm_monitor_aggr_samples(new);

	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];
		uint64_t bp = (uint64_t)r->last_nr_accesses * 10000 / max_old;

		r->last_nr_accesses = (uint32_t)(bp * max_new / 10000);
		r->nr_accesses_bp = r->last_nr_accesses * 10000;
		r->nr_accesses = 0;
		r->nr_unknown = r->nr_earlier = 0;
		r->sum_clean = r->sum_earlier = 0;
		memset(&r->who, 0, sizeof(r->who));
		r->age = (uint32_t)((uint64_t)r->age * old->aggr_us / new->aggr_us);
	}
}

void dm_monitor_set_attrs(struct dm_monitor *m, const struct dm_mon_attrs *attrs)
{
	double stretch = m->budget.stretch >= 1.0 ? m->budget.stretch : 1.0;
	uint64_t now = m->paused ? m->paused_at_us : now_us(m); /* paused: its clock stands */

	if (attrs_reset_aggregation(&m->attrs, attrs)) {
		for (size_t i = 0; i < m->nr_targets; i++)
			if (m->targets[i]->live)
				convert_regions(&m->targets[i]->regions, &m->attrs, attrs);
		m->samples_in_aggr = 0;
		m->next_aggr_sis = m->passed_samples + dm_monitor_aggr_samples(attrs);
		m->next_update_sis = m->passed_samples + update_samples(attrs);
		for (size_t i = 0; i < m->nr_schemes; i++)
			dm_scheme_set_next_apply(m->schemes[i], m->passed_samples,
						 attrs->sample_us, attrs->aggr_us);
	}
	if (attrs->goal.aggrs != m->attrs.goal.aggrs)
		m->next_tune_sis = m->passed_samples +
				   (uint64_t)dm_monitor_aggr_samples(attrs) * attrs->goal.aggrs;
	m->attrs = *attrs;
	m->budget.permille = attrs->cpu_budget_permille;
	dm_budget_set_regions(&m->budget, attrs->min_nr_regions, attrs->max_nr_regions);
	m->sample_us = (uint64_t)((double)attrs->sample_us * stretch);
	m->aggr_us = (uint64_t)((double)attrs->aggr_us * stretch);
	if (m->next_sample_us > now + m->sample_us)
		m->next_sample_us = now + m->sample_us;
}

bool dm_monitor_tune_intervals(struct dm_monitor *m, uint64_t score_bp)
{
	struct dm_mon_attrs a = m->attrs;
	uint32_t per = dm_monitor_aggr_samples(&m->attrs);

	a.sample_us = dm_tune_next_sample_us(&a.goal, m->attrs.sample_us, score_bp);
	if (a.sample_us == m->attrs.sample_us)
		return false;
	a.aggr_us = a.sample_us * per;
	dm_monitor_set_attrs(m, &a);
	m->nr_tunes++;
	return true;
}

static void publish(struct dm_monitor *m, uint64_t now)
{
	size_t nr = dm_monitor_nr_regions(m), k = 0;
	uint32_t nr_t = 0, ti = 0, samples = m->samples_in_aggr ? m->samples_in_aggr : 1;
	uint32_t max_acc = dm_monitor_aggr_samples(&m->attrs);
	struct damon_snapshot *s;

	for (size_t i = 0; i < m->nr_targets; i++)
		nr_t += m->targets[i]->live;
	s = dm_snapshot_new(m->alloc, nr_t, nr);
	if (!s) {
		dm_err_set(&m->err, -ENOMEM, "out of memory building a snapshot; one was skipped");
		return;
	}
	s->info.seq = ++m->seq;
	s->info.time_ns = now * 1000;
	s->info.sample_us = m->sample_us;
	s->info.aggr_us = m->aggr_us;
	s->info.backend = m->backend;
	s->info.sees = m->ops->sees;
	s->info.max_nr_accesses = max_acc;
	s->info.nr_samples = samples;
	for (size_t i = 0; i < m->nr_targets; i++) {
		const struct dm_mon_target *t = m->targets[i];

		if (!t->live)
			continue;
		s->targets[ti].id = t->id;
		s->targets[ti].first = (uint32_t)k;
		s->targets[ti].nr = (uint32_t)t->regions.n;
		for (size_t j = 0; j < t->regions.n; j++, k++) {
			const struct dm_region *r = &t->regions.v[j];
			struct dm_snap_region *o = &s->regions[k];
			uint64_t bp = (uint64_t)r->nr_accesses * 10000 / samples;

			o->start = r->start;
			o->end = r->end;
			/* The rate is over the samples taken: as many as
			 * aggr/sample, but for a first interval cut short by a
			 * watermark wake-up. */
			o->nr_accesses = r->nr_accesses > max_acc ? max_acc : r->nr_accesses;
			o->age = r->age;
			o->access_rate_bp = bp > 10000 ? 10000 : (uint32_t)bp;
			o->target_idx = t->id; /* its place in the context */
			dm_region_who_publish(m->ops->tells, m->ops->sees, r, o);
		}
		ti++;
	}
	if (dm_publisher_publish(m->pub, s))
		dm_err_set(&m->err, -ENOMEM, "out of memory publishing hotness; answers are stale");
	if (m->hooks.published)
		m->hooks.published(m, m->hooks.arg);
}

/* The regions the monitor may keep: max_nr_regions, or fewer while the
 * overhead budget says so (budget.h). */
static uint32_t max_regions(const struct dm_monitor *m)
{
	uint32_t cap = m->budget.cap;

	return cap && cap < m->attrs.max_nr_regions ? cap : m->attrs.max_nr_regions;
}

/* Merge until within max_nr_regions, as kdamond_merge_regions() does. */
static void merge(struct dm_monitor *m)
{
	uint32_t max_acc = 0, max_thres = dm_monitor_aggr_samples(&m->attrs);
	uint64_t sz_limit = total_size(m) / m->attrs.min_nr_regions;
	uint32_t thres;
	size_t nr;

	if (sz_limit < DM_MIN_REGION)
		sz_limit = DM_MIN_REGION;
	for (size_t i = 0; i < m->nr_targets; i++) {
		uint32_t x;

		if (!m->targets[i]->live)
			continue;
		x = dm_regions_max_nr_accesses(&m->targets[i]->regions);
		if (x > max_acc)
			max_acc = x;
	}
	thres = max_acc / 10;
	/* Age once per aggregation interval, with the first threshold. (The
	 * kernel ages in every merge pass; when a second pass runs, its ages
	 * grow twice in one interval. We keep "one interval, one year".) */
	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			dm_regions_update_age(&m->targets[i]->regions, thres);
	do {
		nr = 0;
		for (size_t i = 0; i < m->nr_targets; i++)
			if (m->targets[i]->live)
				nr += dm_regions_merge(&m->targets[i]->regions, thres, sz_limit);
		thres = thres ? thres * 2 : 1;
	} while (nr > max_regions(m) && thres / 2 < max_thres);

	/* Still too many (e.g. max_nr_regions < 2 * min_nr_regions): give up
	 * the size limit, merging the smallest neighbours of the biggest list. */
	while (nr > max_regions(m)) {
		struct dm_mon_target *big = NULL;
		size_t before;

		for (size_t i = 0; i < m->nr_targets; i++)
			if (m->targets[i]->live &&
			    (!big || m->targets[i]->regions.n > big->regions.n))
				big = m->targets[i];
		if (!big || big->regions.n < 2)
			break;
		before = big->regions.n;
		if (dm_regions_merge_to(&big->regions, before - 1) == before)
			break; /* nothing adjacent left to merge */
		nr--;
	}
}

static void split(struct dm_monitor *m)
{
	size_t nr = dm_monitor_nr_regions(m);
	unsigned int pieces = 2;

	if (nr > max_regions(m) / 2)
		return;
	/* Maybe the middle of a region differs: try three pieces when the
	 * count did not move since last time. */
	if (m->last_nr_regions == nr && nr < max_regions(m) / 3)
		pieces = 3;
	for (size_t i = 0; i < m->nr_targets; i++) {
		if (!m->targets[i]->live)
			continue;
		if (dm_regions_split(m->alloc, &m->targets[i]->regions, pieces, &m->rng))
			dm_err_set(&m->err, -ENOMEM, "out of memory splitting regions");
	}
	m->last_nr_regions = nr;
}

static void apply_schemes(struct dm_monitor *m, uint64_t now)
{
	struct dm_scheme_target small[8], *t = small;
	struct dm_scheme_round rd = {
		.now_us = now,
		.aggr_us = m->aggr_us,
		.max_nr_accesses = dm_monitor_aggr_samples(&m->attrs),
		.env = m->env,
		.alloc = m->alloc,
	};
	size_t nt = 0;

	if (!m->nr_schemes)
		return;
	if (m->nr_targets > sizeof(small) / sizeof(small[0])) {
		t = dm_calloc(m->alloc, m->nr_targets, sizeof(*t));
		if (!t) {
			dm_err_set(&m->err, -ENOMEM, "out of memory applying schemes; a round "
				   "was skipped");
			return;
		}
	}
	for (size_t i = 0; i < m->nr_targets; i++) {
		if (!m->targets[i]->live)
			continue;
		t[nt].idx = m->targets[i]->id;
		t[nt].pid = m->targets[i]->ot.pid;
		t[nt].regions = &m->targets[i]->regions;
		nt++;
	}
	for (size_t s = 0; s < m->nr_schemes; s++) {
		struct dm_scheme *sc = m->schemes[s];

		if (dm_scheme_wmark_wait(sc, now, m->env))
			continue; /* deactivated by its watermarks */
		if (!dm_scheme_due(sc, m->passed_samples, m->attrs.sample_us, m->attrs.aggr_us))
			continue;
		dm_scheme_apply(sc, t, nt, &rd);
		dm_scheme_count_round(sc);
		if (sc->last_err.code) {
			/* an action failed (EPERM, a target gone, ...): damon_ctx_status()
			 * tells it */
			m->err = sc->last_err;
			dm_err_clear(&sc->last_err);
		}
	}
	if (t != small)
		dm_free(m->alloc, t);
}

/*
 * kdamond_wait_activation(): when every scheme has watermarks and none is
 * active, there is nothing to monitor for. Return: 0 to go on, else the
 * microseconds until the next watermark check.
 */
static uint64_t wmarks_wait(struct dm_monitor *m, uint64_t now)
{
	uint64_t min_wait = UINT64_MAX;

	if (!m->nr_schemes)
		return 0;
	for (size_t s = 0; s < m->nr_schemes; s++) {
		uint64_t w = dm_scheme_wmark_wait(m->schemes[s], now, m->env);

		if (!w)
			return 0;
		if (w < min_wait)
			min_wait = w;
	}
	return min_wait;
}

static void update_layouts(struct dm_monitor *m)
{
	for (size_t i = 0; i < m->nr_targets; i++) {
		struct dm_mon_target *t = m->targets[i];
		struct dm_range *ranges = NULL;
		struct dm_err why = { 0 };
		int n;

		if (!t->live)
			continue;
		n = layout(m, t, &ranges, &why);
		if (n == -ESRCH) {
			target_gone(m, t, &why);
			continue;
		}
		if (n < 0) {
			/* Keep the old layout; say so once per failure. */
			m->err = why;
			continue;
		}
		if (dm_regions_set_ranges(m->alloc, &t->regions, ranges, (size_t)n))
			dm_err_set(&m->err, -ENOMEM, "out of memory updating a target's layout");
		dm_free(m->alloc, ranges);
	}
}

int dm_monitor_relayout(struct dm_monitor *m, struct dm_mon_target *t, struct dm_err *err)
{
	struct dm_range *ranges = NULL;
	int n, ret;

	if (!t->live)
		return 0;
	n = layout(m, t, &ranges, err);
	if (n < 0)
		return n == -ESRCH ? 0 : n; /* gone: the next update says so */
	ret = dm_regions_set_ranges(m->alloc, &t->regions, ranges, (size_t)n);
	dm_free(m->alloc, ranges);
	if (ret)
		return dm_err_set(err, -ENOMEM, "out of memory laying a target out again");
	return 0;
}

/* Is any scheme due at this sample (and not waiting for its watermarks)? */
static bool any_scheme_due(const struct dm_monitor *m)
{
	for (size_t i = 0; i < m->nr_schemes; i++)
		if (m->passed_samples >= m->schemes[i]->next_apply_sis)
			return true;
	return false;
}

/*
 * One sample taken: what kdamond_fn() does after check_accesses(). At an
 * aggregation: settle what the samples could not tell, age and merge
 * (kdamond_merge_regions()); then the schemes due at this sample, at any
 * sample (kdamond_apply_schemes(), judged by nr_accesses_bp); then, at an
 * aggregation, the snapshot (the kernel's damon_aggregated tracepoint fires
 * here too, after the schemes), the reset and the split; then the layout
 * update when due.
 */
static void after_sample(struct dm_monitor *m, uint64_t now)
{
	bool aggregating = m->passed_samples >= m->next_aggr_sis;

	if (aggregating) {
		for (size_t i = 0; i < m->nr_targets; i++)
			if (m->targets[i]->live)
				dm_regions_settle_unknown(&m->targets[i]->regions,
							  m->samples_in_aggr ? m->samples_in_aggr : 1);
		merge(m);
	}
	if (m->nr_schemes && any_scheme_due(m)) {
		uint64_t c0 = cpu_ns(m), c1;

		apply_schemes(m, now);
		/* What actions cost is bounded as the kernel bounds it, by
		 * each scheme's quota_ms, not by the monitoring budget: the
		 * kdamond's own intervals do not stretch while it migrates. */
		c1 = cpu_ns(m);
		if (c1 > c0)
			m->budget.win_cpu_ns += c1 - c0;
	}
	if (aggregating) {
		bool tune = dm_intervals_goal_on(&m->attrs.goal) &&
			    m->passed_samples >= m->next_tune_sis;
		uint64_t score = tune ? dm_tune_score_targets(&m->attrs.goal, m->targets, m->nr_targets,
							     dm_monitor_aggr_samples(&m->attrs))
				      : 0;
		double stretch;

		publish(m, now);
		for (size_t i = 0; i < m->nr_targets; i++) {
			struct dm_mon_target *t = m->targets[i];

			if (!t->live)
				continue;
			dm_regions_reset_aggregated(&t->regions);
			if (m->ops->aggregated)
				m->ops->aggregated(m->inst, &t->ot);
		}
		split(m);
		m->samples_in_aggr = 0;
		m->next_aggr_sis = m->passed_samples + dm_monitor_aggr_samples(&m->attrs);
		if (tune) {
			/* after the reset, as the kernel's damon_set_attrs() between
			 * aggregations: last_nr_accesses and ages convert, the
			 * counts of the new interval start from 0 */
			m->next_tune_sis = m->passed_samples +
					   (uint64_t)dm_monitor_aggr_samples(&m->attrs) *
						   m->attrs.goal.aggrs;
			dm_monitor_tune_intervals(m, score);
		}

		stretch = dm_budget_update(&m->budget, now, cpu_ns(m), dm_monitor_nr_regions(m));
		m->sample_us = (uint64_t)((double)m->attrs.sample_us * stretch);
		m->aggr_us = (uint64_t)((double)m->attrs.aggr_us * stretch);
	}
	if (m->passed_samples >= m->next_update_sis) {
		update_layouts(m);
		m->next_update_sis = m->passed_samples + update_samples(&m->attrs);
	}
}

static bool any_live(const struct dm_monitor *m)
{
	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			return true;
	return false;
}

int dm_monitor_step(struct dm_monitor *m, uint64_t *ret_next_us)
{
	uint64_t now = now_us(m);
	uint64_t caught = 0;

	if (!m->running)
		return -EALREADY;
	if (m->cpu_thread != &this_thread) {
		/* A manual context started on one thread and stepped on
		 * another (or a new stepping thread): the budget's CPU clock
		 * is per thread, so its window starts again on this one. */
		m->cpu_thread = &this_thread;
		dm_budget_restart(&m->budget, now, cpu_ns(m));
	}
	if (m->paused) {
		if (ret_next_us)
			*ret_next_us = UINT64_MAX;
		return 0;
	}
	if (now < m->next_sample_us) {
		if (ret_next_us)
			*ret_next_us = m->next_sample_us - now;
		return 0;
	}
	if (m->rearm) {
		/* The first step after a resume: arm fresh sample pages (the
		 * counters of the interval under way stay) and take the next
		 * sample one interval later, as the kernel prepares its access
		 * checks after a pause. */
		m->rearm = false;
		for (size_t i = 0; i < m->nr_targets; i++)
			if (m->targets[i]->live)
				prepare_target(m, m->targets[i]);
		m->next_sample_us = now_us(m) + m->sample_us;
		if (ret_next_us)
			*ret_next_us = m->sample_us;
		return 0;
	}
	{
		uint64_t wait = wmarks_wait(m, now);

		if (wait) {
			/* Idle until a watermark check activates a scheme:
			 * no sampling, no aggregation. */
			m->idle = true;
			if (now >= m->next_idle_update_us) {
				/* still notice a target that exits */
				update_layouts(m);
				m->next_idle_update_us = now + m->attrs.update_us;
				if (!any_live(m) && !m->hold) {
					m->running = false;
					if (!m->err.code)
						dm_err_set(&m->err, -ESRCH, "every target exited");
					m->err.code = -ESRCH;
					return -ESRCH;
				}
			}
			if (wait > m->attrs.update_us)
				wait = m->attrs.update_us;
			m->next_sample_us = now + wait;
			if (ret_next_us)
				*ret_next_us = wait;
			return 0;
		}
		if (m->idle) {
			/* Woken up: start a fresh aggregation interval. */
			m->idle = false;
			for (size_t i = 0; i < m->nr_targets; i++)
				if (m->targets[i]->live) {
					dm_regions_reset_aggregated(&m->targets[i]->regions);
					prepare_target(m, m->targets[i]);
				}
			m->samples_in_aggr = 0;
			m->next_aggr_sis = m->passed_samples + dm_monitor_aggr_samples(&m->attrs);
			m->next_sample_us = now + m->sample_us;
			if (ret_next_us)
				*ret_next_us = m->sample_us;
			return 0;
		}
	}

	for (size_t i = 0; i < m->nr_targets; i++) {
		struct dm_mon_target *t = m->targets[i];
		int n;

		if (!t->live)
			continue;
		n = m->ops->check(m->inst, &t->ot, t->regions.v, t->regions.n);
		if (n == -ESRCH) {
			struct dm_err why;

			dm_err_set(&why, -ESRCH, "target process %d exited", (int)t->ot.pid);
			target_gone(m, t, &why);
			continue;
		}
		if (n < 0) {
			/* nothing seen this time; the primitive said why */
			for (size_t j = 0; j < t->regions.n; j++)
				t->regions.v[j].accessed = DM_ACCESS_UNKNOWN;
			n = 0;
		}
		dm_regions_account_sample(&t->regions, dm_monitor_aggr_samples(&m->attrs));
		caught += (uint64_t)n;
	}
	m->passed_samples++;
	m->samples_in_aggr++;
	dm_budget_caught(&m->budget, caught);
	after_sample(m, now);
	if (!any_live(m) && !m->hold) {
		m->running = false;
		if (!m->err.code)
			dm_err_set(&m->err, -ESRCH, "every target exited");
		else if (m->err.code != -ESRCH)
			m->err.code = -ESRCH;
		return -ESRCH;
	}
	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->live)
			prepare_target(m, m->targets[i]);

	/* Measured from the end of this step, as the kernel sleeps after its
	 * work: a slow step does not make the next one due at once. */
	now = now_us(m);
	m->next_sample_us = now + m->sample_us;
	if (ret_next_us)
		*ret_next_us = m->sample_us;
	return 0;
}

void dm_monitor_fini(struct dm_monitor *m)
{
	for (size_t i = 0; i < m->nr_targets; i++) {
		struct dm_mon_target *t = m->targets[i];

		if (t->live)
			m->ops->target_fini(m->inst, &t->ot);
		t->live = false;
		dm_regions_free(m->alloc, &t->regions);
	}
	dm_free(m->alloc, m->targets);
	m->targets = NULL;
	m->nr_targets = m->cap_targets = 0;
	if (m->inst)
		m->ops->close(m->inst);
	m->inst = NULL;
	m->running = false;
}
