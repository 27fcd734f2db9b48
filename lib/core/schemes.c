// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <string.h>

#include "schemes.h"

#define MAX_SUBSCORE 100
#define MAX_AGE_IN_LOG 10
/* The time quota's throughput guess before anything was charged: the
 * kernel's PAGE_SIZE * 1024 bytes per millisecond. */
#define DEFAULT_BYTES_PER_MS (4096ULL * 1024)

void dm_scheme_reset(struct dm_scheme *s)
{
	memset(&s->quota, 0, sizeof(s->quota));
	s->quota.esz = UINT64_MAX;
	s->next_apply_sis = 0;
	s->wmark_active = s->opts.wmarks_metric == DAMOS_WMARK_NONE;
	s->wmark_next_us = 0;
	for (size_t i = 0; i < s->nr_goals; i++)
		s->goals[i].psi_primed = false;
}

/* The kernel's __damos_valid_target() frequency: the moving sum. */
static uint32_t freq_of(const struct dm_region *r)
{
	return r->nr_accesses_bp / 10000;
}

bool dm_scheme_matches(const struct dm_scheme *s, const struct dm_region *r)
{
	const struct damos_opts *o = &s->opts;
	uint64_t sz = dm_region_size(r);
	uint32_t freq = freq_of(r);

	return sz >= o->min_sz && sz <= o->max_sz && freq >= o->min_nr_accesses &&
	       freq <= o->max_nr_accesses && r->age >= o->min_age && r->age <= o->max_age;
}

void dm_scheme_set_next_apply(struct dm_scheme *s, uint64_t passed, uint64_t sample_us,
			      uint64_t aggr_us)
{
	uint64_t interval = s->opts.apply_interval_us ? s->opts.apply_interval_us : aggr_us;
	uint64_t n = interval / (sample_us ? sample_us : 1);

	s->next_apply_sis = passed + (n ? n : 1);
}

bool dm_scheme_due(struct dm_scheme *s, uint64_t passed, uint64_t sample_us, uint64_t aggr_us)
{
	if (passed < s->next_apply_sis)
		return false;
	dm_scheme_set_next_apply(s, passed, sample_us, aggr_us);
	return true;
}

bool dm_action_is_hot(uint32_t action)
{
	switch (action) {
	case DAMOS_WILLNEED:
	case DAMOS_HUGEPAGE:
	case DAMOS_COLLAPSE:
	case DAMOS_MIGRATE_HOT:
	case DAMOS_LRU_PRIO:
		return true;
	default:
		return false;
	}
}

bool dm_action_is_cold(uint32_t action)
{
	switch (action) {
	case DAMOS_COLD:
	case DAMOS_PAGEOUT:
	case DAMOS_NOHUGEPAGE:
	case DAMOS_MIGRATE_COLD:
	case DAMOS_LRU_DEPRIO:
		return true;
	default:
		return false;
	}
}

uint64_t dm_scheme_wmark_wait(struct dm_scheme *s, uint64_t now_us,
			      const struct dm_scheme_env *env)
{
	const struct damos_opts *o = &s->opts;
	uint64_t interval = o->wmarks_interval_us ? o->wmarks_interval_us : 1;
	uint32_t metric = 0;

	if (o->wmarks_metric == DAMOS_WMARK_NONE) {
		s->wmark_active = true;
		return 0;
	}
	if (now_us < s->wmark_next_us)
		return s->wmark_active ? 0 : s->wmark_next_us - now_us;
	s->wmark_next_us = now_us + interval;
	if (!env || !env->free_mem_rate || env->free_mem_rate(env->arg, &metric) < 0) {
		/* No metric: nothing says the scheme should run. */
		dm_err_set(&s->last_err, -EIO, "watermarks: the free memory rate could not be "
			   "read; the scheme stays inactive");
		s->wmark_active = false;
		return interval;
	}
	if (metric > o->wmarks_high || metric < o->wmarks_low) {
		s->wmark_active = false;
		return interval;
	}
	if (!s->wmark_active && metric >= o->wmarks_mid)
		return interval; /* between mid and high: stay inactive */
	s->wmark_active = true;
	return 0;
}

static uint32_t ilog2_u64(uint64_t v)
{
	uint32_t l = 0;

	while (v >>= 1)
		l++;
	return l;
}

uint32_t dm_scheme_score(const struct dm_scheme *s, const struct dm_region *r,
			 uint32_t max_nr_accesses, uint64_t aggr_us)
{
	const struct damos_opts *o = &s->opts;
	uint64_t wf = o->weight_nr_accesses, wa = o->weight_age, ws = o->weight_sz;
	uint64_t freq, age_sec, age_sub, sz_sub, prio;
	int age_log = 0;

	if (s->opts.action == DAMOS_STAT)
		return DM_MAX_SCORE; /* all alike, as the kernel's ops score stat */
	freq = max_nr_accesses ? (uint64_t)freq_of(r) * MAX_SUBSCORE / max_nr_accesses : 0;
	if (freq > MAX_SUBSCORE)
		freq = MAX_SUBSCORE;
	/* The kernel's age subscore: log2 of the age in seconds; for a region
	 * not accessed at all an older age means colder. */
	age_sec = (uint64_t)r->age * aggr_us / 1000000;
	for (; age_log < MAX_AGE_IN_LOG && age_sec; age_log++)
		age_sec >>= 1;
	if (!freq)
		age_log = -age_log;
	age_sub = (uint64_t)(age_log + MAX_AGE_IN_LOG) * MAX_SUBSCORE / MAX_AGE_IN_LOG / 2;
	prio = wf + wa ? (wf * freq + wa * age_sub) / (wf + wa) : 0;
	if (!dm_action_is_hot(o->action))
		prio = MAX_SUBSCORE - prio;
	/*
	 * Size: the kernel's operations sets ignore weight_sz. Here it counts
	 * when set, bigger regions first (one call does more), on a log scale
	 * from 4 KiB (0) to 4 GiB and more (100).
	 */
	if (ws) {
		uint32_t l = ilog2_u64(dm_region_size(r) / DM_MIN_REGION);

		sz_sub = (l > 20 ? 20 : l) * MAX_SUBSCORE / 20;
		prio = (prio * (wf + wa) + sz_sub * ws) / (wf + wa + ws);
	}
	return (uint32_t)(prio * DM_MAX_SCORE / MAX_SUBSCORE);
}

/* Is the filter about region @r of target @tidx? (core-layer types only) */
static bool core_filter_about(const struct damos_filter_opts *f, uint32_t tidx,
			      const struct dm_region *r)
{
	bool m;

	if (f->type == DAMOS_FILTER_ADDR)
		m = r->start >= f->addr_start && r->end <= f->addr_end;
	else
		m = tidx == f->target_idx;
	return m == !!f->matching;
}

bool dm_filter_is_core(uint32_t type)
{
	return type == DAMOS_FILTER_ADDR || type == DAMOS_FILTER_TARGET;
}

bool dm_scheme_core_filters_pass(const struct dm_scheme *s, uint32_t tidx,
				 const struct dm_region *r)
{
	const struct damos_filter_opts *last = NULL;

	for (size_t i = 0; i < s->nr_filters; i++) {
		const struct damos_filter_opts *f = &s->filters[i];

		if (!dm_filter_is_core(f->type))
			continue;
		if (core_filter_about(f, tidx, r))
			return f->allow;
		last = f;
	}
	/* Nobody spoke: pass, unless the last filter was an allow-list. */
	return !last || !last->allow;
}

uint64_t dm_feed_loop_next(uint64_t last_input, uint64_t score)
{
	const uint64_t goal = 10000, min_input = 10000;
	uint64_t diff, comp;
	bool over = score > goal;

	if (score == goal)
		return last_input;
	if (score >= goal * 2)
		return min_input;
	diff = over ? score - goal : goal - score;
	if (last_input < UINT64_MAX / diff)
		comp = last_input * diff / goal;
	else
		comp = last_input / goal * diff;
	if (over)
		return last_input - comp > min_input ? last_input - comp : min_input;
	return last_input < UINT64_MAX - comp ? last_input + comp : UINT64_MAX;
}

static uint64_t goal_current(struct dm_goal *g, const struct dm_scheme_env *env)
{
	uint64_t total = 0, fr = 0, v;

	switch (g->opts.metric) {
	case DAMOS_GOAL_USER_INPUT:
		return g->opts.current_value;
	case DAMOS_GOAL_SOME_MEM_PSI_US:
		if (!env || !env->psi_some_us || env->psi_some_us(env->arg, &v) < 0)
			return 0;
		if (!g->psi_primed) {
			g->psi_primed = true;
			g->psi_last_total = v;
		}
		total = v - g->psi_last_total;
		g->psi_last_total = v;
		return total;
	case DAMOS_GOAL_NODE_MEM_USED_BP:
	case DAMOS_GOAL_NODE_MEM_FREE_BP:
		if (!env || !env->node_mem || env->node_mem(env->arg, g->opts.nid, &total, &fr) < 0 ||
		    !total)
			return 0;
		if (fr > total)
			fr = total;
		v = g->opts.metric == DAMOS_GOAL_NODE_MEM_FREE_BP ? fr : total - fr;
		return v * 10000 / total;
	default:
		return 0;
	}
}

static void set_effective_quota(struct dm_scheme *s, const struct dm_scheme_env *env)
{
	struct dm_quota_state *q = &s->quota;
	uint64_t esz = UINT64_MAX;

	if (s->nr_goals) {
		uint64_t score = 0;

		for (size_t i = 0; i < s->nr_goals; i++) {
			struct dm_goal *g = &s->goals[i];
			uint64_t cur = goal_current(g, env), sc;

			g->opts.current_value = cur;
			sc = cur > UINT64_MAX / 10000 ? UINT64_MAX : cur * 10000 / g->opts.target_value;
			if (sc > score)
				score = sc;
		}
		q->esz_bp = dm_feed_loop_next(q->esz_bp > 10000 ? q->esz_bp : 10000, score);
		esz = q->esz_bp / 10000;
	}
	if (s->opts.quota_ms) {
		uint64_t per_ms = q->total_charged_ns ?
			q->total_charged_sz * 1000000 / q->total_charged_ns : DEFAULT_BYTES_PER_MS;
		uint64_t t = per_ms > UINT64_MAX / s->opts.quota_ms ? UINT64_MAX :
			     per_ms * s->opts.quota_ms;

		if (t < esz)
			esz = t;
	}
	if (s->opts.quota_bytes && s->opts.quota_bytes < esz)
		esz = s->opts.quota_bytes;
	q->esz = esz;
}

static bool has_quota(const struct dm_scheme *s)
{
	return s->opts.quota_ms || s->opts.quota_bytes || s->nr_goals;
}

void dm_scheme_quota_adjust(struct dm_scheme *s, uint64_t now_us, const struct dm_scheme_env *env)
{
	struct dm_quota_state *q = &s->quota;
	uint64_t reset_us = s->opts.quota_reset_interval_ms * 1000;

	if (!has_quota(s)) {
		q->esz = UINT64_MAX;
		return;
	}
	if (!q->charged_from_us) {
		q->charged_from_us = now_us ? now_us : 1;
		set_effective_quota(s, env);
		return;
	}
	if (now_us < q->charged_from_us + reset_us)
		return;
	/* A new reset interval: count the old one if it ran out. */
	if (q->esz != UINT64_MAX && q->charged_sz >= q->esz)
		s->stats.qt_exceeds++;
	q->total_charged_sz += q->charged_sz;
	q->charged_from_us = now_us;
	q->charged_sz = 0;
	set_effective_quota(s, env);
}

/* The score above which regions fit in what is left of the quota. */
static void set_min_score(struct dm_scheme *s, struct dm_scheme_target *t, size_t nt,
			  const struct dm_scheme_round *rd)
{
	uint64_t hist[DM_MAX_SCORE + 1] = { 0 }, sum = 0;
	uint32_t score;

	for (size_t i = 0; i < nt; i++)
		for (size_t j = 0; j < t[i].regions->n; j++) {
			const struct dm_region *r = &t[i].regions->v[j];

			if (dm_scheme_matches(s, r))
				hist[dm_scheme_score(s, r, rd->max_nr_accesses, rd->aggr_us)] +=
					dm_region_size(r);
		}
	for (score = DM_MAX_SCORE;; score--) {
		sum += hist[score];
		if (sum >= s->quota.esz || !score)
			break;
	}
	s->quota.min_score = score;
}

static uint64_t now_ns(const struct dm_scheme_env *env)
{
	return env && env->now_ns ? env->now_ns(env->arg) : 0;
}

/* Skip what the last exhausted reset interval already tried (the kernel's
 * damos_skip_charged_region): every region gets its turn. Return true to
 * skip region @j; may split it so that its second part is the next. */
static bool skip_charged(struct dm_scheme *s, const struct dm_scheme_target *t, size_t j,
			 const struct dm_alloc *a)
{
	struct dm_quota_state *q = &s->quota;
	struct dm_region *r = &t->regions->v[j];

	if (!q->resume)
		return false;
	if (t->idx < q->resume_target)
		return true;
	if (t->idx == q->resume_target && r->end <= q->resume_addr)
		return true;
	if (t->idx == q->resume_target && r->start < q->resume_addr) {
		uint64_t sz = (q->resume_addr - r->start) & ~(DM_MIN_REGION - 1);

		if (sz && dm_regions_split_at(a, t->regions, j, sz) == 0)
			return true; /* the piece after it comes next */
	}
	q->resume = false;
	return false;
}

/* An addr filter whose edge falls inside region @j splits it there, as the
 * kernel does, so that each piece is wholly in or out of the range. */
static void split_at_addr_filters(const struct dm_scheme *s, struct dm_regions *rs, size_t j,
				  const struct dm_alloc *a)
{
	for (size_t i = 0; i < s->nr_filters; i++) {
		const struct damos_filter_opts *f = &s->filters[i];
		const uint64_t edges[2] = { f->addr_start & ~(DM_MIN_REGION - 1),
					    f->addr_end & ~(DM_MIN_REGION - 1) };

		if (f->type != DAMOS_FILTER_ADDR)
			continue;
		for (int e = 0; e < 2; e++) {
			struct dm_region *r = &rs->v[j];

			if (edges[e] > r->start && edges[e] < r->end)
				dm_regions_split_at(a, rs, j, edges[e] - r->start);
		}
	}
}

void dm_scheme_apply(struct dm_scheme *s, struct dm_scheme_target *t, size_t nt,
		     const struct dm_scheme_round *rd)
{
	const struct dm_scheme_env *env = rd->env;
	struct dm_quota_state *q = &s->quota;
	bool limited;

	dm_scheme_quota_adjust(s, rd->now_us, env);
	limited = q->esz != UINT64_MAX;
	if (limited) {
		if (q->charged_sz >= q->esz)
			return;
		set_min_score(s, t, nt, rd);
	}
	for (size_t i = 0; i < nt; i++) {
		/*
		 * The remainder cut off a region to fit what is left of the
		 * quota waits for the next round, as in the kernel, whose walk
		 * took the next region before it cut. Tried at once, it was cut
		 * again: a region the filters then rejected was cut into pieces
		 * of the quota's size all the way to its end (614599 regions
		 * seen in a soak run, a 25 MiB quota over an ASan process's
		 * address space).
		 */
		size_t skip_to = 0;

		for (size_t j = 0; j < t[i].regions->n; j++) {
			struct dm_region *r = &t[i].regions->v[j];
			uint64_t sz = dm_region_size(r), passed = 0, begin;
			int64_t applied = 0;

			if (j < skip_to)
				continue;
			if (limited && q->charged_sz >= q->esz)
				return;
			if (!dm_scheme_matches(s, r))
				continue;
			if (limited &&
			    dm_scheme_score(s, r, rd->max_nr_accesses, rd->aggr_us) < q->min_score)
				continue;
			if (limited && skip_charged(s, &t[i], j, rd->alloc))
				continue;
			split_at_addr_filters(s, t[i].regions, j, rd->alloc);
			r = &t[i].regions->v[j];
			sz = dm_region_size(r);
			/* A region that does not fit what is left is cut to fit. */
			if (limited && q->charged_sz + sz > q->esz) {
				sz = (q->esz - q->charged_sz) & ~(DM_MIN_REGION - 1);
				if (!sz || dm_regions_split_at(rd->alloc, t[i].regions, j, sz)) {
					s->stats.nr_tried++;
					continue;
				}
				r = &t[i].regions->v[j];
				skip_to = j + 2;
			}
			if (!dm_scheme_core_filters_pass(s, t[i].idx, r))
				continue;
			/* A region no sample could see is not known to be cold. */
			if (r->unseen && dm_action_is_cold(s->opts.action))
				continue;
			begin = now_ns(env);
			if (s->opts.action == DAMOS_STAT) {
				passed = sz;
			} else if (env && env->apply) {
				struct dm_err err = { 0 };

				if (env->release)
					env->release(env->arg, &t[i], r->start, r->end);
				applied = env->apply(env->arg, s, &t[i], r->start, r->end, &passed,
						     &err);
				if (applied < 0) {
					s->last_err = err;
					applied = 0;
				}
			}
			q->total_charged_ns += now_ns(env) - begin;
			q->charged_sz += sz;
			q->resume = false;
			if (limited && q->charged_sz >= q->esz) {
				q->resume = true;
				q->resume_target = t[i].idx;
				q->resume_addr = r->end;
			}
			if (s->opts.action != DAMOS_STAT)
				r->age = 0;
			s->stats.nr_tried++;
			s->stats.sz_tried += sz;
			s->stats.sz_ops_filter_passed += passed;
			if (applied > 0) {
				s->stats.nr_applied++;
				s->stats.sz_applied += (uint64_t)applied;
			}
			if (q->resume)
				return; /* ran out here; the next interval goes on from here */
		}
	}
	/* Went through to the end: the next round starts from the beginning. */
	q->resume = false;
}

void dm_scheme_count_round(struct dm_scheme *s)
{
	s->stats.nr_snapshots++;
}
