// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Writing the context (kernel.h): operations set, intervals, targets and
 * schemes, as files of kdamond 0's context 0. kscheme.c writes the goals
 * and filters of each scheme.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kernel_int.h"
#include "kscheme.h"
#include "../ops/pagemap.h"
#include "../util/names.h"
#include "../util/fail.h"

/* The top-level "System RAM" ranges of /proc/iomem (page_idle's reader). */
static int system_ram(struct dm_kernel *k, struct dm_range *v, size_t cap, size_t *ret_n,
		      struct dm_err *err)
{
	int n = dm_iomem_system_ram(k->proc_root, v, cap);

	if (n == -ENOENT)
		return dm_err_set(err, -EINVAL,
				  "kernel: %s/iomem lists no System RAM (or only zeros: "
				  "reading it needs root)",
				  k->proc_root);
	if (n < 0)
		return dm_err_set(err, n,
				  "kernel: %s/iomem cannot be read for paddr's default "
				  "regions: %s",
				  k->proc_root, strerror(-n));
	*ret_n = (size_t)n;
	return 0;
}

static int write_target(struct dm_kernel *k, size_t i, const struct dm_kernel_target *t,
			struct dm_err *err)
{
	struct dm_range ram[32];
	const struct dm_range *r = t->fixed;
	size_t nr = t->nr_fixed;
	int rc;

	if (k->ops != DAMON_OPS_PADDR) {
		/*
		 * Pids of our own pid namespace: "on" builds the kernel's
		 * context in the writing task (damon_sysfs_turn_damon_on ->
		 * damon_sysfs_add_target -> find_get_pid -> find_vpid, which
		 * looks in task_active_pid_ns(current)). "commit" does not: the
		 * kdamond builds it (a damon_call() since 6.15, an aggregation
		 * callback before), so it looks them up in the initial
		 * namespace - which is why k->pidns_foreign commits by off + on.
		 */
		pid_t pid = t->pid ? t->pid : getpid();

		rc = dm_sysfs_write_u64(&k->fs, (uint64_t)pid, err,
					DM_KCTX "/targets/%zu/pid_target", i);
		if (rc)
			return rc;
	}
	if (k->ops == DAMON_OPS_PADDR && !nr) {
		rc = system_ram(k, ram, 32, &nr, err);
		if (rc)
			return rc;
		r = ram;
	}
	if (k->ops == DAMON_OPS_VADDR)
		nr = 0; /* the kernel lays vaddr out itself */
	rc = dm_sysfs_write_u64(&k->fs, nr, err, DM_KCTX "/targets/%zu/regions/nr_regions", i);
	for (size_t j = 0; j < nr && !rc; j++) {
		rc = dm_sysfs_write_u64(&k->fs, r[j].start, err,
					DM_KCTX "/targets/%zu/regions/%zu/start", i, j);
		if (!rc)
			rc = dm_sysfs_write_u64(&k->fs, r[j].end, err,
						DM_KCTX "/targets/%zu/regions/%zu/end", i, j);
	}
	return rc;
}

static int write_scheme(struct dm_kernel *k, size_t i, const struct damos_opts *o,
			struct dm_err *err)
{
	const struct dm_sysfs *fs = &k->fs;
	static const char *const wm[] = {"none", "free_mem_rate"};
	int rc;

	if (!dm_action_name(o->action))
		return dm_err_set(err, -EINVAL, "kernel: scheme %zu: action %u is unknown", i,
				  o->action);
	if (o->wmarks_metric > 1)
		return dm_err_set(err, -EINVAL,
				  "kernel: scheme %zu: watermark metric %u is "
				  "unknown",
				  i, o->wmarks_metric);
	rc = dm_sysfs_write(fs, dm_action_name(o->action), err, DM_KCTX "/schemes/%zu/action", i);
	if (rc == -EINVAL) {
		/* the kernel takes only the actions it knows (6.12 has no
		 * collapse): that is "not supported here", not a bad argument */
		struct utsname u;

		if (uname(&u))
			strcpy(u.release, "?");
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: scheme %zu: this kernel's DAMON (Linux %s) has no "
				"action %s (writing it to the scheme's action file failed with "
				"EINVAL); use a user-space backend, which executes it itself",
				i, u.release, dm_action_name(o->action));
	}
#define W(val, path)                                                                              \
	do {                                                                                      \
		if (!rc)                                                                          \
			rc = dm_sysfs_write_u64(fs, (val), err, DM_KCTX "/schemes/%zu/" path, i); \
	} while (0)
	/* UINT32_MAX / UINT64_MAX are also the kernel's own "no bound" */
	W(o->min_sz, "access_pattern/sz/min");
	W(o->max_sz, "access_pattern/sz/max");
	W(o->min_nr_accesses, "access_pattern/nr_accesses/min");
	W(o->max_nr_accesses, "access_pattern/nr_accesses/max");
	W(o->min_age, "access_pattern/age/min");
	W(o->max_age, "access_pattern/age/max");
	/* 0 is "no such limit" in both */
	W(o->quota_ms, "quotas/ms");
	W(o->quota_bytes, "quotas/bytes");
	W(o->quota_reset_interval_ms, "quotas/reset_interval_ms");
	W(o->weight_sz, "quotas/weights/sz_permil");
	W(o->weight_nr_accesses, "quotas/weights/nr_accesses_permil");
	W(o->weight_age, "quotas/weights/age_permil");
	if (!rc)
		rc = dm_sysfs_write(fs, wm[o->wmarks_metric], err,
				    DM_KCTX "/schemes/%zu/watermarks/metric", i);
	W(o->wmarks_interval_us, "watermarks/interval_us");
	W(o->wmarks_high, "watermarks/high");
	W(o->wmarks_mid, "watermarks/mid");
	W(o->wmarks_low, "watermarks/low");
	if (!rc && dm_sysfs_exists(fs, DM_KCTX "/schemes/%zu/apply_interval_us", i))
		W(o->apply_interval_us, "apply_interval_us");
	else if (!rc && o->apply_interval_us)
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: this kernel's DAMON has no per-scheme "
				"apply interval (no apply_interval_us file)");
	if (!rc && (o->action == DAMOS_MIGRATE_HOT || o->action == DAMOS_MIGRATE_COLD) &&
	    k->ops != DAMON_OPS_PADDR && !dm_sysfs_is_dir(fs, DM_KCTX "/schemes/%zu/dests", i))
		/*
		 * Kernels before vaddr migration (6.12) take migrate_* for any
		 * ops but only paddr implements it: vaddr would try every
		 * region and move nothing. vaddr migration came in the same
		 * series as the schemes' dests directory, so that directory is
		 * the file that tells.
		 */
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: scheme %zu: this kernel's DAMON accepts %s for %s but "
				"its virtual address operations do not implement it (no "
				"schemes/%zu/dests directory, which came with vaddr migration): "
				"it would move nothing; use paddr or a user-space backend",
				i, dm_action_name(o->action), dm_ops_name(k->ops), i);
	if (!rc && (o->action == DAMOS_MIGRATE_HOT || o->action == DAMOS_MIGRATE_COLD))
		W(o->target_nid, "target_nid");
#undef W
	return rc;
}

/* The scheme whose tried_regions make a full snapshot: stat, everything. */
static const struct dm_scheme match_all = {
	.opts.sz = sizeof(struct damos_opts),
	.opts.action = DAMOS_STAT,
	.opts.max_sz = UINT64_MAX,
	.opts.max_nr_accesses = UINT32_MAX,
	.opts.max_age = UINT32_MAX,
};

#define DM_KGOAL DM_KCTX "/monitoring_attrs/intervals/intervals_goal"

/*
 * The intervals goal (Linux 6.15): the kernel tunes sample_us and aggr_us
 * itself, and keeps aggr_us / sample_us as written. aggrs 0 turns it off,
 * which a commit after a goal must write too. Probed by directory, not by
 * version; without it only a goal that is off can be honoured.
 */
static int write_intervals_goal(struct dm_kernel *k, const struct dm_intervals_goal *g,
				struct dm_err *err)
{
	const char *const f[] = {"access_bp", "aggrs", "min_sample_us", "max_sample_us"};
	bool on = dm_intervals_goal_on(g);
	uint64_t v[] = {on ? g->access_bp : 0, on ? g->aggrs : 0, on ? g->min_sample_us : 0,
			on ? g->max_sample_us : 0};
	int rc = 0;

	if (!dm_sysfs_exists(&k->fs, DM_KGOAL)) {
		if (!on)
			return 0;
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: this kernel has no intervals_goal directory "
				  "(Linux 6.15 added it), so it cannot tune its intervals; "
				  "the user-space backends run the goal in libdamon");
	}
	/* aggrs last when turning on, first when turning off: the kernel
	 * reads them together at commit, but a goal is never half there */
	if (!on)
		rc = dm_sysfs_write_u64(&k->fs, 0, err, DM_KGOAL "/aggrs");
	for (size_t i = 0; i < 4 && !rc; i++)
		if (i != 1)
			rc = dm_sysfs_write_u64(&k->fs, v[i], err, DM_KGOAL "/%s", f[i]);
	if (on && !rc)
		rc = dm_sysfs_write_u64(&k->fs, v[1], err, DM_KGOAL "/aggrs");
	return rc;
}

int dm_kernel_write_attrs(struct dm_kernel *k, const struct dm_mon_attrs *a, struct dm_err *err)
{
	int rc;

	if (!a->sample_us || a->aggr_us < a->sample_us)
		return dm_err_set(err, -EINVAL,
				  "kernel: aggr_us (%llu) must be at least sample_us "
				  "(%llu), which must not be 0",
				  (unsigned long long)a->aggr_us, (unsigned long long)a->sample_us);
	rc = write_intervals_goal(k, &a->goal, err);
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->sample_us, err,
					DM_KCTX "/monitoring_attrs/intervals/sample_us");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->aggr_us, err,
					DM_KCTX "/monitoring_attrs/intervals/aggr_us");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->update_us, err,
					DM_KCTX "/monitoring_attrs/intervals/update_us");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->min_nr_regions, err,
					DM_KCTX "/monitoring_attrs/nr_regions/min");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->max_nr_regions, err,
					DM_KCTX "/monitoring_attrs/nr_regions/max");
	return rc;
}

/*
 * What the kernel's tuning has made of the intervals: "update_tuned_intervals"
 * copies them into the sample_us and aggr_us files. Snapshots carry them
 * (info.sample_us, aggr_us, max_nr_accesses), and the step times its reads
 * by them.
 */
int dm_kernel_read_tuned(struct dm_kernel *k, struct dm_err *err)
{
	uint64_t s, a;
	int rc;

	if (!dm_intervals_goal_on(&k->attrs.goal))
		return 0;
	rc = dm_sysfs_write(&k->fs, "update_tuned_intervals", err, DM_KDS "/0/state");
	if (!rc)
		rc = dm_sysfs_read_u64(&k->fs, &s, err,
				       DM_KCTX "/monitoring_attrs/intervals/sample_us");
	if (!rc)
		rc = dm_sysfs_read_u64(&k->fs, &a, err,
				       DM_KCTX "/monitoring_attrs/intervals/aggr_us");
	if (rc)
		return rc;
	if (s && a >= s) {
		k->attrs.sample_us = s;
		k->attrs.aggr_us = a;
	}
	return 0;
}

/* Keep a copy of the targets: id + pid + position in the kernel's list. */
static int keep_targets(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	struct dm_ktarget *v =
		dm_calloc(k->alloc, cfg->nr_targets ? cfg->nr_targets : 1, sizeof(*v));

	if (!v)
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	for (size_t i = 0; i < cfg->nr_targets; i++) {
		v[i].id = cfg->targets[i].id;
		v[i].pid = cfg->targets[i].pid ? cfg->targets[i].pid : getpid();
		for (size_t j = 0; j < k->nr_targets; j++)
			if (k->targets[j].id == v[i].id)
				v[i].gone = k->targets[j].gone;
	}
	dm_free(k->alloc, k->targets);
	k->targets = v;
	k->nr_targets = cfg->nr_targets;
	return 0;
}

/* Write targets and schemes (nr_* writes recreate their directories). */
int dm_kernel_write_body(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	size_t nr_schemes = cfg->nr_schemes + (k->path == DM_KSNAP_TRIED);
	int rc;

	if (k->ops == DAMON_OPS_PADDR && cfg->nr_targets != 1)
		return dm_err_set(err, -EINVAL, "kernel: paddr takes exactly one target, not %zu",
				  cfg->nr_targets);
	/* the caller's array may replace the one we had (which it may free) */
	k->schemes = cfg->schemes;
	k->nr_schemes = cfg->nr_schemes;
	rc = dm_sysfs_write_u64(&k->fs, cfg->nr_targets, err, DM_KCTX "/targets/nr_targets");
	for (size_t i = 0; i < cfg->nr_targets && !rc; i++)
		rc = write_target(k, i, &cfg->targets[i], err);
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, nr_schemes, err, DM_KCTX "/schemes/nr_schemes");
	for (size_t i = 0; i < cfg->nr_schemes && !rc; i++) {
		rc = write_scheme(k, i, &cfg->schemes[i]->opts, err);
		if (!rc)
			rc = dm_kscheme_write(k, i, cfg->schemes[i], err);
	}
	if (!rc && k->path == DM_KSNAP_TRIED)
		rc = write_scheme(k, cfg->nr_schemes, &match_all.opts, err);
	if (!rc && k->path == DM_KSNAP_TRIED)
		rc = dm_kscheme_write(k, cfg->nr_schemes, &match_all, err);
	if (!rc)
		rc = keep_targets(k, cfg, err);
	return rc;
}

int dm_kernel_write_ctx(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	char avail[DM_SYSFS_VAL_MAX], q[40];
	const char *ops = dm_ops_name(cfg->ops);
	int rc;

	if (!ops)
		return dm_err_set(err, -EINVAL, "kernel: operations set %u is unknown", cfg->ops);
	rc = dm_sysfs_write_u64(&k->fs, 1, err, DM_KDS "/0/contexts/nr_contexts");
	if (rc)
		return rc;
	rc = dm_sysfs_read(&k->fs, avail, sizeof(avail), err, DM_KCTX "/avail_operations");
	if (rc < 0)
		return rc;
	if (!dm_sysfs_has_word(avail, ops))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: this kernel's DAMON offers \"%s\", "
				  "no %s",
				  dm_sysfs_show(q, avail), ops);
	rc = dm_sysfs_write(&k->fs, ops, err, DM_KCTX "/operations");
	if (!rc)
		rc = dm_kernel_write_attrs(k, &cfg->attrs, err);
	if (!rc)
		rc = dm_kernel_write_body(k, cfg, err);
	return rc;
}
