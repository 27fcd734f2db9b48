// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * One step of the kernel backend (kernel.h, dm_kernel_step()): read what the
 * kdamond produced (the stream, or tried_regions when due), its schemes'
 * stats and quotas now and then, and whether it still runs.
 */
#include <errno.h>
#include <string.h>

#include "kernel_int.h"
#include "kscheme.h"
#include "../util/proc.h"

/* Mark targets whose process exited; log-worthy news goes to err. */
static void check_targets(struct dm_kernel *k)
{
	if (k->ops == DAMON_OPS_PADDR)
		return;
	for (size_t i = 0; i < k->nr_targets; i++)
		if (!k->targets[i].gone &&
		    dm_proc_pid_alive(k->proc_root, k->targets[i].pid) == -ESRCH)
			k->targets[i].gone = true;
}

/* The kdamond is off: why. */
static int stopped(struct dm_kernel *k, struct dm_err *err)
{
	check_targets(k);
	for (size_t i = 0; i < k->nr_targets; i++)
		if (!k->targets[i].gone)
			return dm_err_set(err, -ESRCH, "kernel: kdamond 0 stopped by itself");
	return dm_err_set(err, -ESRCH, "kernel: every target exited, so the kdamond stopped");
}

static int step_body(struct dm_kernel *k, uint64_t now, uint64_t *next_us, struct dm_err *err)
{
	int rc;

	if (k->paused) {
		/* a paused kdamond makes nothing and cancels walks: ask it nothing */
		*next_us = k->attrs.aggr_us;
		return k->path == DM_KSNAP_TRACE ? dm_ktrace_read(k, err) : 0;
	}
	if (k->nr_schemes && now >= k->next_stats_us) {
		/* damos_get_stats() and damos_get_quota() read what this leaves in
		 * the schemes */
		rc = dm_kernel_update_stats(k, err);
		if (!rc)
			rc = dm_kscheme_read_quotas(k, err);
		if (rc)
			return rc;
		k->next_stats_us =
			now + (k->attrs.update_us > 100000 ? k->attrs.update_us : 100000);
	}
	if (dm_intervals_goal_on(&k->attrs.goal) && now >= k->next_tuned_us) {
		rc = dm_kernel_read_tuned(k, err);
		if (rc == -EBUSY)
			dm_err_clear(err); /* another DAMON sysfs user: next time */
		else if (rc)
			return rc;
		k->next_tuned_us = now + (k->attrs.aggr_us > 100000 ? k->attrs.aggr_us : 100000);
	}
	if (k->path == DM_KSNAP_TRACE) {
		uint64_t due, slack = k->attrs.aggr_us / 4;

		rc = dm_ktrace_read(k, err);
		if (rc < 0)
			return rc;
		/*
		 * Wake just after the next aggregation should end, then every
		 * millisecond until it arrives (a snapshot readable within ~1 ms
		 * of kdamond's aggregation, with few wake-ups); if it is late by
		 * more than a quarter interval, back to a quarter interval.
		 */
		/* kdamond may take longer than aggr_us per aggregation (a busy or
		 * emulated CPU): expect the period it actually keeps */
		uint64_t period = k->agg_period_us ? k->agg_period_us : k->attrs.aggr_us;

		if (slack < period / 4)
			slack = period / 4;
		if (k->wake_epfd >= 0) {
			/* the perf fd wakes whoever steps when records land
			 * (trace.c); the timer only backs it up: the kdamond's
			 * state, a stall */
			*next_us = 2 * period;
			return 0;
		}
		/* from three quarters of the period on, look every millisecond */
		due = k->last_agg_ns / 1000 + period - period / 4;
		now = dm_kernel_now_us();
		if (!k->last_agg_ns) {
			*next_us = slack ? slack : 1000;
		} else if (now > due + period / 4) {
			/* late: back off with the lateness (an eighth of it) */
			uint64_t late = (now - due) / 8;

			*next_us = late < 1000 ? 1000 : late > slack ? slack : late;
		} else if (now + 1000 < due)
			*next_us = due - now;
		else
			*next_us = 1000;
		return 0;
	}
	if (now + 1000 < k->next_due_us) {
		*next_us = k->next_due_us - now;
		return 0;
	}
	rc = dm_kernel_read_tried(k, err);
	if (rc == -EBUSY) {
		/* another DAMON sysfs user holds its lock (a state read of
		 * another libdamon process judging kdamonds): again soon */
		dm_err_clear(err);
		*next_us = 1000;
		return 0;
	}
	if (rc)
		return rc;
	k->next_due_us += k->attrs.aggr_us;
	now = dm_kernel_now_us();
	/*
	 * Reading took longer than an interval (many regions, a slow or
	 * emulated CPU): still leave a millisecond. The library thread holds
	 * the runner's lock while it steps and lets go only while it waits,
	 * so a next_us of 0 again and again would starve damon_ctx_stop(),
	 * damon_ctx_commit() and damos_get_stats() (seen under TCG with two
	 * targets from a pid namespace: each read of tried_regions outlasted
	 * the 100 ms interval).
	 */
	if (k->next_due_us < now + 1000)
		k->next_due_us = now + 1000;
	*next_us = k->next_due_us - now;
	return 0;
}

/* Once per aggregation interval: has the kdamond stopped, which targets
 * exited. -ESRCH (stopped()) when it is off. */
static int check_state(struct dm_kernel *k, uint64_t now, struct dm_err *err)
{
	char state[32];
	int n;

	if (now < k->next_state_us)
		return 0;
	n = dm_sysfs_read(&k->fs, state, sizeof(state), err, DM_KDS "/0/state");
	if (n == -EBUSY)
		return 0; /* another DAMON sysfs user holds its lock: next step */
	if (n < 0)
		return n;
	if (!strcmp(state, "off"))
		return stopped(k, err);
	check_targets(k);
	k->next_state_us = now + k->attrs.aggr_us;
	return 0;
}

int dm_kernel_step(struct dm_kernel *k, uint64_t *next_us, struct dm_err *err)
{
	uint64_t now = dm_kernel_now_us();
	bool trace = k->path == DM_KSNAP_TRACE;
	char state[32];
	int rc;

	/*
	 * The state once per aggregation interval (the tracepoint path steps
	 * more often than that); on the tracepoint path after the stream is
	 * read, so that a snapshot is published before the sysfs and /proc
	 * reads (about 1 ms under TCG) of the step that wakes on its records.
	 */
	if (!trace) {
		rc = check_state(k, now, err);
		if (rc)
			return rc;
	}
	rc = step_body(k, now, next_us, err);
	if (!rc && trace)
		rc = check_state(k, now, err);
	/* the kdamond may have stopped meanwhile: a request to it then fails
	 * (7.2: ECANCELED; older kernels: EINVAL or EBUSY) */
	if (rc && dm_sysfs_read(&k->fs, state, sizeof(state), NULL, DM_KDS "/0/state") > 0 &&
	    !strcmp(state, "off"))
		return stopped(k, err);
	return rc;
}

int dm_kernel_update_stats(struct dm_kernel *k, struct dm_err *err)
{
	static const char *const f[] = {"nr_tried",    "sz_tried",   "nr_applied",
					"sz_applied",  "qt_exceeds", "sz_ops_filter_passed",
					"nr_snapshots"};
	int rc;

	rc = dm_sysfs_write(&k->fs, "update_schemes_stats", err, DM_KDS "/0/state");
	if (rc)
		return rc;
	for (size_t i = 0; i < k->nr_schemes; i++) {
		struct damos_stats *st = &k->schemes[i]->stats, base = {0};
		uint64_t *dst[] = {&st->nr_tried,    &st->sz_tried,   &st->nr_applied,
				   &st->sz_applied,  &st->qt_exceeds, &st->sz_ops_filter_passed,
				   &st->nr_snapshots};
		const uint64_t *add[] = {&base.nr_tried,    &base.sz_tried,
					 &base.nr_applied,  &base.sz_applied,
					 &base.qt_exceeds,  &base.sz_ops_filter_passed,
					 &base.nr_snapshots};

		/* what the kernel counted before the kdamond last restarted */
		for (size_t b = 0; b < k->nr_stat_base; b++)
			if (k->stat_base[b].sc == k->schemes[i])
				base = k->stat_base[b].st;

		for (size_t j = 0; j < 7; j++) {
			uint64_t v;

			if (j >= 5 &&
			    !dm_sysfs_exists(&k->fs, DM_KCTX "/schemes/%zu/stats/%s", i, f[j]))
				continue; /* newer kernels only */
			rc = dm_sysfs_read_u64(&k->fs, &v, err, DM_KCTX "/schemes/%zu/stats/%s", i,
					       f[j]);
			if (rc)
				return rc;
			*dst[j] = *add[j] + v;
		}
	}
	return 0;
}
