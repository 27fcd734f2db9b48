/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * DAMOS in the core: what the kernel's DAMOS engine does
 * (Documentation/mm/damon/design.rst, "Operation Schemes"), over the
 * user-space monitor's regions. Access pattern, apply interval, quotas
 * (time, bytes, reset interval) with prioritization by a score histogram and
 * a minimum score, quota goals with feedback tuning of the effective quota,
 * watermarks, core-layer filters (addr, target), stats, and the age reset
 * after every action but stat.
 *
 * The engine is pure: metrics (free memory rate, PSI, node memory) and the
 * action itself come through struct dm_scheme_env, time through the
 * caller. The executor of the actions and of the ops-layer filters lives in
 * lib/actions; tests plug in fakes.
 *
 * The kernel backend translates the same struct dm_scheme (opts, goals,
 * filters) to sysfs and writes the stats back: it never runs this engine.
 */
#ifndef DAMON_CORE_SCHEMES_H
#define DAMON_CORE_SCHEMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <damon/damon.h>

#include "../util/alloc.h"
#include "../util/err.h"
#include "region.h"
#include "regions.h"

/* Scores, as the kernel's: 0 .. DM_MAX_SCORE, higher = apply first. */
#define DM_MAX_SCORE 99

struct dm_goal {
	struct damos_goal_opts opts;  /* current_value: the last value used */
	uint64_t psi_last_total;      /* some_mem_psi_us: PSI total at the last reset */
	bool psi_primed;
};

struct dm_quota_state {
	uint64_t esz;                 /* effective bytes quota; UINT64_MAX: unlimited */
	uint64_t esz_bp;              /* goal feedback state, esz in bp (kernel's esz_bp) */
	uint64_t charged_sz;          /* charged in the current reset interval */
	uint64_t charged_from_us;     /* start of the current reset interval; 0: none yet */
	uint64_t total_charged_sz;    /* for the time quota: bytes per time spent */
	uint64_t total_charged_ns;
	uint32_t min_score;           /* regions scoring below it wait */
	bool resume;                  /* the last interval ran out: resume where it stopped */
	uint32_t resume_target;       /* position of the target it stopped in */
	uint64_t resume_addr;         /* first address not tried */
};

struct dm_scheme {
	struct damos_opts opts;
	struct damos_stats stats;
	uint64_t next_apply_sis; /* the monitor's sample count at which it is next due */
	struct dm_goal *goals;  /* owned by the API layer */
	size_t nr_goals;
	struct damos_filter_opts *filters; /* in the order added; owned by the API layer */
	size_t nr_filters;
	struct dm_quota_state quota;
	bool wmark_active;      /* watermarks let it run (always true without) */
	uint64_t wmark_next_us; /* next watermark check */
	struct dm_err last_err; /* what the last failed apply said */
};

/* One target as the engine sees it. */
struct dm_scheme_target {
	uint32_t idx;           /* position in the context (DAMOS_FILTER_TARGET) */
	pid_t pid;
	struct dm_regions *regions;
};

/* Everything outside the engine. Any function may be NULL: the metric is
 * then unavailable (watermarks deactivate, a goal reads 0). */
struct dm_scheme_env {
	/* Free memory of the system in permil of its total (watermarks). */
	int (*free_mem_rate)(void *arg, uint32_t *ret);
	/* Total "some" memory stall time from PSI, us. */
	int (*psi_some_us)(void *arg, uint64_t *ret);
	/* Total and free bytes of NUMA node @nid. */
	int (*node_mem)(void *arg, uint32_t nid, uint64_t *ret_total, uint64_t *ret_free);
	/*
	 * Apply @s's action to [@start, @end) of @t, honouring the scheme's
	 * ops-layer filters. *@ret_passed: bytes that passed those filters.
	 * Return: bytes the action was applied to, or -errno (@err says why).
	 */
	int64_t (*apply)(void *arg, const struct dm_scheme *s, const struct dm_scheme_target *t,
			 uint64_t start, uint64_t end, uint64_t *ret_passed, struct dm_err *err);
	/* Before applying to a range: the primitive lets go of it (uffd_wp
	 * disarms its sample pages there so that MADV_COLLAPSE can work). */
	void (*release)(void *arg, const struct dm_scheme_target *t, uint64_t start, uint64_t end);
	/* Monotonic ns, for the time quota; NULL: charged time reads 0. */
	uint64_t (*now_ns)(void *arg);
	void *arg;
};

/* What one round of applying needs. */
struct dm_scheme_round {
	uint64_t now_us;
	uint64_t aggr_us;
	uint32_t max_nr_accesses; /* aggr_us / sample_us */
	const struct dm_scheme_env *env;
	const struct dm_alloc *alloc;
};

/* Reset the runtime state (at start): quota, watermarks, due time. */
void dm_scheme_reset(struct dm_scheme *s);

/* Does region @r fit the scheme's access pattern? Kernel meaning of every
 * bound, and the kernel's measure of the access frequency at any sample:
 * nr_accesses_bp / 10000 (equal to nr_accesses at an aggregation). */
bool dm_scheme_matches(const struct dm_scheme *s, const struct dm_region *r);

/*
 * The apply interval, counted in samples as the kernel does
 * (damos_set_next_apply_sis()): due again apply_interval_us / @sample_us
 * samples after @passed (aggr_us / sample_us when apply_interval_us is 0),
 * at least one. Called at start, when intervals change, and by
 * dm_scheme_due().
 */
void dm_scheme_set_next_apply(struct dm_scheme *s, uint64_t passed, uint64_t sample_us,
			      uint64_t aggr_us);

/* Is the scheme due at the monitor's sample count @passed? Sets the next
 * due count when it is. */
bool dm_scheme_due(struct dm_scheme *s, uint64_t passed, uint64_t sample_us, uint64_t aggr_us);

/* Is the action one that wants hot memory first (hugepage, collapse,
 * willneed, migrate_hot, lru_prio)? */
bool dm_action_is_hot(uint32_t action);

/* Is it one a writes-only backend gets wrong (cold, pageout, nohugepage,
 * migrate_cold, lru_deprio: read-hot memory looks cold there)? */
bool dm_action_is_cold(uint32_t action);

/* Watermarks, checked at most once per wmarks_interval_us (kernel rules:
 * above high or below low: deactivate; inactive between mid and high: stay
 * so; else activate). Return: 0 when active, else microseconds until the
 * next check. */
uint64_t dm_scheme_wmark_wait(struct dm_scheme *s, uint64_t now_us,
			      const struct dm_scheme_env *env);

/* The priority score of a region for the scheme (0..DM_MAX_SCORE). */
uint32_t dm_scheme_score(const struct dm_scheme *s, const struct dm_region *r,
			 uint32_t max_nr_accesses, uint64_t aggr_us);

/* Is a filter of @type judged by the core layer (addr, target: region by
 * region), not by the operations layer (page by page)? */
bool dm_filter_is_core(uint32_t type);

/* Core-layer filters: does the region (of target @tidx) pass them? */
bool dm_scheme_core_filters_pass(const struct dm_scheme *s, uint32_t tidx,
				 const struct dm_region *r);

/* The kernel's feedback loop: next input for the last one and a score in bp
 * (10000 = goal met). Exposed for tests. */
uint64_t dm_feed_loop_next(uint64_t last_input, uint64_t score);

/* Start a new reset interval if due and compute the effective quota. */
void dm_scheme_quota_adjust(struct dm_scheme *s, uint64_t now_us, const struct dm_scheme_env *env);

/*
 * One apply round over every target: quota window, prioritization, pattern
 * and filters, the action through env->apply, stats, age reset. Regions may
 * be split at quota edges (hence @alloc in @rd). Watermarks are the caller's
 * (dm_scheme_wmark_wait()).
 */
void dm_scheme_apply(struct dm_scheme *s, struct dm_scheme_target *t, size_t nt,
		     const struct dm_scheme_round *rd);

/* One more snapshot the scheme was applied to. */
void dm_scheme_count_round(struct dm_scheme *s);

#endif
