/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The DAMON monitor in user space: what kdamond does in the kernel.
 * Each sampling interval it checks every region's sample page and draws a
 * new one; each aggregation interval it ages, merges, publishes a snapshot,
 * applies schemes, resets the counters and splits; each update interval it
 * refreshes the layout. Time, CPU clock, randomness and the access
 * primitive are injected: the same code runs on a real process and under a
 * simulated access model in tests.
 */
#ifndef DAMON_CORE_MONITOR_H
#define DAMON_CORE_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ops/ops.h"
#include "../util/alloc.h"
#include "../util/err.h"
#include "budget.h"
#include "regions.h"
#include "rng.h"
#include "schemes.h"
#include "snapshot.h"
#include "tune.h"

struct dm_clock {
	uint64_t (*now_us)(void *arg);  /* monotonic */
	uint64_t (*cpu_ns)(void *arg);  /* CPU the monitoring thread has used */
	void *arg;
};

/* CLOCK_MONOTONIC and CLOCK_THREAD_CPUTIME_ID. */
extern const struct dm_clock dm_clock_real;

struct dm_mon_attrs {
	uint64_t sample_us, aggr_us, update_us;
	uint32_t min_nr_regions, max_nr_regions;
	uint32_t cpu_budget_permille; /* 0: no budget */
	struct dm_intervals_goal goal; /* intervals auto-tuning (tune.h); aggrs 0: off */
};

/* One target, embedded in the API's damon_target. */
struct dm_mon_target {
	uint32_t id;            /* stable within the context */
	struct dm_ops_target ot;
	struct dm_regions regions;
	bool live;              /* ops target_init done and not gone */
	bool gone;              /* the process exited */
};

struct dm_monitor;

struct dm_mon_hooks {
	/* After a snapshot was published. */
	void (*published)(struct dm_monitor *m, void *arg);
	/* A target went away; @why says how. */
	void (*target_gone)(struct dm_monitor *m, struct dm_mon_target *t, const struct dm_err *why,
			    void *arg);
	void *arg;
};

struct dm_monitor {
	struct dm_mon_attrs attrs;     /* as configured */
	uint64_t sample_us, aggr_us;   /* in force (budget stretching) */
	uint32_t backend;              /* enum damon_backend, for snapshot info */
	const struct dm_ops *ops;
	struct dm_ops_inst *inst;
	struct dm_mon_target **targets;
	size_t nr_targets, cap_targets;
	struct dm_scheme **schemes;
	size_t nr_schemes;
	struct dm_clock clock;
	struct dm_rng rng;
	const struct dm_alloc *alloc;
	struct dm_publisher *pub;
	struct dm_mon_hooks hooks;
	const struct dm_scheme_env *env; /* metrics and actions for the schemes */
	bool idle;                     /* every scheme deactivated by its watermarks */
	struct dm_budget budget;
	/*
	 * The kernel counts its intervals in samples, not in time
	 * (passed_sample_intervals, next_aggregation_sis, next_ops_update_sis,
	 * a scheme's next_apply_sis): every aggregation interval is exactly
	 * aggr_us / sample_us samples however long the steps take, so that
	 * nr_accesses of an unchanging pattern does not move (and its age grows)
	 * when sampling runs late. Only the next sample is due at a time.
	 */
	uint64_t next_sample_us;
	uint64_t passed_samples;       /* samples taken since start */
	uint64_t next_aggr_sis, next_update_sis;
	uint64_t next_tune_sis;        /* intervals goal: the next tuning */
	uint64_t nr_tunes;             /* intervals changed by the goal */
	uint64_t next_idle_update_us;  /* idle (watermarks): layout checks by time */
	uint32_t samples_in_aggr;     /* samples taken in this aggregation interval */
	size_t last_nr_regions;        /* at the previous split */
	uint64_t seq;                  /* snapshots published */
	bool running;
	bool hold;                     /* targets come and go (a followed cgroup): none
					  live is not the end */
	bool paused;                   /* dm_monitor_pause(): steps do nothing */
	bool rearm;                    /* resumed: the next step arms, samples later */
	uint64_t paused_at_us;         /* the monitor's clock stands still here */
	const void *cpu_thread;        /* the thread whose CPU clock the budget reads */
	struct dm_err err;             /* what stopped or troubled the monitor */
};

struct dm_mon_cfg {
	struct dm_mon_attrs attrs;
	uint32_t backend;
	const struct dm_ops *ops;
	struct dm_ops_cfg ops_cfg;
	const struct dm_clock *clock;  /* NULL: dm_clock_real */
	const struct dm_alloc *alloc;
	struct dm_publisher *pub;
	struct dm_mon_hooks hooks;
	const struct dm_scheme_env *env; /* NULL: schemes other than stat apply nothing */
	uint64_t seed;
};

/* Open the ops instance. Nothing is monitored yet. */
int dm_monitor_init(struct dm_monitor *m, const struct dm_mon_cfg *cfg, struct dm_err *err);

/* Add a target (before start, or while running: it is laid out, split into
 * initial regions and armed at once). */
int dm_monitor_add_target(struct dm_monitor *m, struct dm_mon_target *t, struct dm_err *err);

/* Lay a target out again now (its fixed ranges changed), as the layout
 * update does every update interval. Return: 0 (also when the target is
 * gone: the next update says so), or -errno from the ops set or -ENOMEM. */
int dm_monitor_relayout(struct dm_monitor *m, struct dm_mon_target *t, struct dm_err *err);

/* Arm everything and set the clocks. At least one target must be live. */
int dm_monitor_start(struct dm_monitor *m, struct dm_err *err);

/* Do what is due at the current time. @ret_next_us: time until more is due.
 * When every scheme has watermarks and all of them are deactivated the
 * monitor idles, as kdamond does: no sampling, only the watermark checks
 * (@ret_next_us is then the time to the next check).
 * Return: 0, or -ESRCH when the last target went away (the monitor has
 * stopped itself; m->err says why), or -EALREADY when not running. */
int dm_monitor_step(struct dm_monitor *m, uint64_t *ret_next_us);

/*
 * Pause (damon_ctx_pause()), as kdamond does for its context's pause file:
 * regions, counters of the aggregation interval under way, ages and schemes
 * stay; what sampling armed is undone (ops->release over every target) so
 * the application pays nothing; steps do nothing and say UINT64_MAX ("not
 * until resumed"). Idempotent; nothing to do on a monitor that is not running.
 */
void dm_monitor_pause(struct dm_monitor *m);

/* Resume: the budget's clock moves on by the time paused (the intervals,
 * counted in samples, do not count it anyway), and the next step only arms
 * fresh sample pages, so that no sample spans the pause: what was written
 * while paused is not counted. Idempotent. */
void dm_monitor_resume(struct dm_monitor *m);

/*
 * New attributes for a running monitor (damon_ctx_commit()), with the
 * kernel's rules (damon_set_attrs()) when the intervals or region bounds
 * change: the aggregation under way starts again, last_nr_accesses is
 * converted to the new intervals through its access rate, ages keep their
 * length in time (age * old aggr_us / new aggr_us), and every interval
 * counts from now. A budget-only change keeps everything.
 */
void dm_monitor_set_attrs(struct dm_monitor *m, const struct dm_mon_attrs *attrs);

/*
 * The intervals goal at an aggregation (kdamond_tune_intervals()): the
 * sampling interval scaled by the feedback of the access events just
 * aggregated, the aggregation interval following it (same samples per
 * aggregation), applied with dm_monitor_set_attrs()'s rules (ages keep their
 * length in time). m->attrs then holds the tuned intervals; a commit gives
 * the configured ones back, as a commit does in the kernel.
 * Return: whether the intervals changed.
 */
bool dm_monitor_tune_intervals(struct dm_monitor *m, uint64_t score_bp);

/* Samples per aggregation interval (the kernel's aggr_interval /
 * sample_interval), from the configured intervals: budget stretching
 * scales both, so it does not change. At least 1. */
uint32_t dm_monitor_aggr_samples(const struct dm_mon_attrs *a);

/* Disarm every target and close the ops instance. Idempotent. */
void dm_monitor_fini(struct dm_monitor *m);

size_t dm_monitor_nr_regions(const struct dm_monitor *m);

#endif
