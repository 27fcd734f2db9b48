// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * DAMOS quota goals and filters on the kernel backend (kscheme.h). What a
 * kernel can do is probed by its files, never by its version:
 *
 *  - goals: quotas/goals/ (Linux 6.8). The node_mem_* metrics came with
 *    goals/M/nid; a metric the kernel does not know fails with EINVAL when
 *    written to target_metric. Either way: -EOPNOTSUPP naming the metric.
 *  - filters: filters/ (6.3); an "allow" file in each filter (6.14); the
 *    core_filters/ and ops_filters/ directories (6.15), which came with the
 *    rule that memory no filter is about is rejected after a last filter
 *    that allows. A type the kernel does not know fails with EINVAL when
 *    written to type; hugepage_size needs the min and max files.
 *
 * libdamon's filters (include/damon/damon.h, lib/core/schemes.c): each layer
 * (core: addr, target; operations: the others) on its own, in the order
 * added; the first filter about a piece of memory decides; memory none is
 * about passes unless the layer's last filter allows. The kernel's, read
 * from its core.c and paddr.c:
 *  - without allow files every filter rejects: ours, when allow is 0;
 *  - with allow files but no core_filters/ (6.14) memory no filter is about
 *    always passes: ours unless a layer's last filter allows;
 *  - from 6.15: ours, except that memory a core-layer filter allows skips
 *    the operations-layer filters, and the core layer lets memory no core
 *    filter is about through whenever operations-layer filters exist.
 * The operations-layer filters are judged by the paddr operations; vaddr
 * and fvaddr apply them to stat (which only counts them) and migrations
 * only. Where the kernel would give a scheme's filters another meaning, the
 * scheme is refused, never run with that meaning.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "kscheme.h"
#include "../util/names.h"

#define SCHEME DM_KSCHEMES "/%zu"
#define GOALS  SCHEME "/quotas/goals"
#define FILTER SCHEME "/%s/%zu"

/* ------------------------------------------------------------------------ */
/* Goals */

static bool node_metric(uint32_t metric)
{
	return metric == DAMOS_GOAL_NODE_MEM_USED_BP || metric == DAMOS_GOAL_NODE_MEM_FREE_BP;
}

static int write_goal(struct dm_kernel *k, size_t i, size_t g, const struct damos_goal_opts *o,
		      struct dm_err *err)
{
	const struct dm_sysfs *fs = &k->fs;
	const char *name = dm_goal_metric_name(o->metric);
	int rc;

	if (!name)
		return dm_err_set(err, -EINVAL,
				  "kernel: scheme %zu: goal %zu: metric %u is unknown", i, g,
				  o->metric);
	if (node_metric(o->metric) && !dm_sysfs_exists(fs, GOALS "/%zu/nid", i, g))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu: this kernel's DAMON has no quota goal "
				  "metric %s (no nid file in its quotas/goals/%zu); use a "
				  "user-space backend",
				  i, name, g);
	rc = dm_sysfs_write(fs, name, err, GOALS "/%zu/target_metric", i, g);
	if (rc == -EINVAL)
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu: this kernel's DAMON has no quota goal "
				  "metric %s (writing it to quotas/goals/%zu/target_metric failed "
				  "with EINVAL); use a user-space backend",
				  i, name, g);
	if (!rc)
		rc = dm_sysfs_write_u64(fs, o->target_value, err, GOALS "/%zu/target_value", i, g);
	if (!rc && o->metric == DAMOS_GOAL_USER_INPUT)
		rc = dm_sysfs_write_u64(fs, o->current_value, err, GOALS "/%zu/current_value", i,
					g);
	if (!rc && node_metric(o->metric))
		rc = dm_sysfs_write_u64(fs, o->nid, err, GOALS "/%zu/nid", i, g);
	return rc;
}

static int write_goals(struct dm_kernel *k, size_t i, const struct dm_scheme *sc,
		       struct dm_err *err)
{
	int rc;

	if (!dm_sysfs_is_dir(&k->fs, GOALS, i))
		return sc->nr_goals ? dm_err_set(err, -EOPNOTSUPP,
						 "kernel: scheme %zu has quota goals and this "
						 "kernel's DAMON has none (no quotas/goals "
						 "directory); use a user-space backend",
						 i)
				    : 0;
	rc = dm_sysfs_write_u64(&k->fs, sc->nr_goals, err, GOALS "/nr_goals", i);
	for (size_t g = 0; g < sc->nr_goals && !rc; g++)
		rc = write_goal(k, i, g, &sc->goals[g].opts, err);
	return rc;
}

int dm_kernel_set_goal_current(struct dm_kernel *k, const struct dm_scheme *sc, size_t goal,
			       uint64_t value, struct dm_err *err)
{
	uint64_t n = 0;
	size_t i = 0;
	int rc;

	while (i < k->nr_schemes && k->schemes[i] != sc)
		i++;
	/* a scheme or goal added since the last commit: that commit writes it */
	if (i == k->nr_schemes || dm_sysfs_read_u64(&k->fs, &n, NULL, GOALS "/nr_goals", i) ||
	    goal >= n)
		return 0;
	rc = dm_sysfs_write_u64(&k->fs, value, err, GOALS "/%zu/current_value", i, goal);
	if (!rc)
		rc = dm_sysfs_write(&k->fs, "commit_schemes_quota_goals", err, DM_KDAMOND "/state");
	if (rc)
		dm_err_append(err, "while passing goal %zu of scheme %zu its current value", goal,
			      i);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Filters */

enum { FD_ANY, FD_CORE, FD_OPS, FD_N };
static const char *const fdir_name[FD_N] = {"filters", "core_filters", "ops_filters"};

struct flayout {
	bool have[FD_N];
	bool split; /* core_filters/ and ops_filters/: each layer in its own */
};

static int fdir(const struct flayout *l, uint32_t type)
{
	return !l->split ? FD_ANY : dm_filter_is_core(type) ? FD_CORE : FD_OPS;
}

/*
 * Does the kernel's vaddr (and fvaddr) apply page filters to @action? stat
 * (it only counts what passes) and migrations: their filters came in the
 * series that brought vaddr migration and the dests directory, which
 * kwrite.c requires for a vaddr migration.
 */
static bool vaddr_filters(uint32_t action)
{
	return action == DAMOS_STAT || action == DAMOS_MIGRATE_HOT || action == DAMOS_MIGRATE_COLD;
}

/* What needs no file to judge: types, operations sets, layers mixed. */
static int check_filters(const struct dm_kernel *k, size_t i, const struct dm_scheme *sc,
			 struct dm_err *err)
{
	bool core_allows = false, ops = false;

	for (size_t j = 0; j < sc->nr_filters; j++) {
		const struct damos_filter_opts *f = &sc->filters[j];
		const char *name = dm_filter_type_name(f->type);

		if (!name)
			return dm_err_set(err, -EINVAL,
					  "kernel: scheme %zu: filter %zu: type %u is unknown", i,
					  j, f->type);
		if (dm_filter_is_core(f->type)) {
			core_allows |= f->allow != 0;
			continue;
		}
		ops = true;
		if (k->ops != DAMON_OPS_PADDR && !vaddr_filters(sc->opts.action))
			return dm_err_set(err, -EOPNOTSUPP,
					  "kernel: scheme %zu: filter %zu (%s) is judged page by "
					  "page, which the kernel's %s operations do not do for "
					  "action %s (its paddr operations do); use paddr, or a "
					  "user-space backend for anon and hugepage_size filters",
					  i, j, name, dm_ops_name(k->ops),
					  dm_action_name(sc->opts.action));
	}
	if (core_allows && ops)
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu has an addr or target filter that allows "
				  "and page filters (anon, memcg, young, hugepage_size, "
				  "unmapped): the kernel lets memory such a filter allows skip "
				  "the page filters, and lets memory no addr or target filter is "
				  "about on to them, where libdamon judges each layer on its "
				  "own; make the addr and target filters reject",
				  i);
	return 0;
}

static int write_filter(struct dm_kernel *k, size_t i, const char *dir, size_t pos, size_t j,
			const struct damos_filter_opts *f, bool split, bool last_of_layer,
			struct dm_err *err)
{
	const struct dm_sysfs *fs = &k->fs;
	const char *name = dm_filter_type_name(f->type);
	bool have_allow = dm_sysfs_exists(fs, FILTER "/allow", i, dir, pos);
	int rc;

	if (f->type == DAMOS_FILTER_HUGEPAGE_SIZE &&
	    !dm_sysfs_exists(fs, FILTER "/min", i, dir, pos))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu: this kernel's DAMON has no hugepage_size "
				  "filter (no min file in its %s/%zu); use a user-space backend",
				  i, dir, pos);
	if (f->allow && !have_allow)
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu: filter %zu (%s) allows, and this kernel's "
				  "DAMON filters can only reject (no allow file in its %s/%zu); "
				  "state it as a filter that rejects (matching inverted)",
				  i, j, name, dir, pos);
	if (f->allow && !split && last_of_layer)
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu: filter %zu (%s) allows and is the last of "
				  "its layer, and this kernel's DAMON lets memory no filter is "
				  "about pass even then (no core_filters directory: the rule to "
				  "reject it came with that), where libdamon rejects it; end the "
				  "list with a filter that rejects",
				  i, j, name);
	rc = dm_sysfs_write(fs, name, err, FILTER "/type", i, dir, pos);
	if (rc == -EINVAL)
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu: this kernel's DAMON has no %s filter "
				  "(writing it to %s/%zu/type failed with EINVAL)",
				  i, name, dir, pos);
	if (!rc)
		rc = dm_sysfs_write(fs, f->matching ? "Y" : "N", err, FILTER "/matching", i, dir,
				    pos);
	if (!rc && have_allow)
		rc = dm_sysfs_write(fs, f->allow ? "Y" : "N", err, FILTER "/allow", i, dir, pos);
	if (rc)
		return rc;
	switch (f->type) {
	case DAMOS_FILTER_MEMCG:
		return dm_sysfs_write(fs, f->memcg_path, err, FILTER "/memcg_path", i, dir, pos);
	case DAMOS_FILTER_ADDR:
		rc = dm_sysfs_write_u64(fs, f->addr_start, err, FILTER "/addr_start", i, dir, pos);
		return rc ? rc
			  : dm_sysfs_write_u64(fs, f->addr_end, err, FILTER "/addr_end", i, dir,
					       pos);
	case DAMOS_FILTER_TARGET:
		return dm_sysfs_write_u64(fs, f->target_idx, err, FILTER "/damon_target_idx", i,
					  dir, pos);
	case DAMOS_FILTER_HUGEPAGE_SIZE:
		rc = dm_sysfs_write_u64(fs, f->min_sz, err, FILTER "/min", i, dir, pos);
		return rc ? rc : dm_sysfs_write_u64(fs, f->max_sz, err, FILTER "/max", i, dir, pos);
	}
	return 0;
}

static int write_filters(struct dm_kernel *k, size_t i, const struct dm_scheme *sc,
			 struct dm_err *err)
{
	size_t count[FD_N] = {0}, pos[FD_N] = {0}, last[2] = {0};
	struct flayout l;
	int rc;

	for (int d = 0; d < FD_N; d++)
		l.have[d] = dm_sysfs_is_dir(&k->fs, SCHEME "/%s", i, fdir_name[d]);
	/*
	 * The kernel's usage.rst deprecates filters/ ("scheduled for removal")
	 * for core_filters/ and ops_filters/; the kernel splits filters/ into
	 * the same two per-layer lists, keeping the order within each, so both
	 * install what libdamon means. Use the two where they exist.
	 */
	l.split = l.have[FD_CORE] && l.have[FD_OPS];
	if (sc->nr_filters && !l.split && !l.have[FD_ANY])
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: scheme %zu has filters and this kernel's DAMON has "
				  "none (no filters directory); use a user-space backend",
				  i);
	rc = check_filters(k, i, sc, err);
	if (rc)
		return rc;
	for (size_t j = 0; j < sc->nr_filters; j++) {
		count[fdir(&l, sc->filters[j].type)]++;
		last[dm_filter_is_core(sc->filters[j].type)] = j;
	}
	/* every directory there is, so that none keeps filters of before */
	for (int d = 0; d < FD_N && !rc; d++)
		if (l.have[d])
			rc = dm_sysfs_write_u64(&k->fs, count[d], err, SCHEME "/%s/nr_filters", i,
						fdir_name[d]);
	for (size_t j = 0; j < sc->nr_filters && !rc; j++) {
		const struct damos_filter_opts *f = &sc->filters[j];
		int d = fdir(&l, f->type);

		rc = write_filter(k, i, fdir_name[d], pos[d]++, j, f, l.split,
				  last[dm_filter_is_core(f->type)] == j, err);
	}
	return rc;
}

/* ------------------------------------------------------------------------ */

int dm_kscheme_write(struct dm_kernel *k, size_t i, const struct dm_scheme *sc, struct dm_err *err)
{
	int rc = write_goals(k, i, sc, err);

	return rc ? rc : write_filters(k, i, sc, err);
}

int dm_kscheme_read_quotas(struct dm_kernel *k, struct dm_err *err)
{
	bool limited = false;
	int rc;

	for (size_t i = 0; i < k->nr_schemes; i++) {
		const struct dm_scheme *sc = k->schemes[i];

		limited |= sc->opts.quota_ms || sc->opts.quota_bytes || sc->nr_goals;
	}
	/* without a limit the kernel's effective quota is 0, its "none" */
	if (!limited || !dm_sysfs_exists(&k->fs, SCHEME "/quotas/effective_bytes", (size_t)0))
		return 0;
	rc = dm_sysfs_write(&k->fs, "update_schemes_effective_quotas", err, DM_KDAMOND "/state");
	for (size_t i = 0; i < k->nr_schemes && !rc; i++) {
		uint64_t v;

		rc = dm_sysfs_read_u64(&k->fs, &v, err, SCHEME "/quotas/effective_bytes", i);
		if (!rc)
			k->schemes[i]->quota.esz = v ? v : UINT64_MAX;
	}
	return rc;
}
