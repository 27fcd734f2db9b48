// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The kernel backend (backend.h): kernel DAMON through lib/kernel. The
 * kdamond is the engine; this file only hands the context over
 * (struct dm_kernel_cfg) and counts what lib/kernel published.
 */
#include <errno.h>
#include <string.h>

#include "../kernel/kernel.h"
#include "backend.h"

struct kbackend {
	struct dm_backend be;
	const struct dm_alloc *alloc;
	struct dm_kernel *k;
	struct dm_backend_events ev;
	bool ended; /* the kdamond stopped by itself */
	uint32_t *ids; /* the targets handed to the kdamond (start, commit) */
	size_t nr_ids;
};

/* Remember which targets the kdamond monitors, to tell at stop which of
 * them it lost. Out of memory: none are told (they fail the next start). */
static void keep_ids(struct kbackend *kb, const struct dm_backend_cfg *cfg)
{
	uint32_t *v = cfg->nr_targets ? dm_calloc(kb->alloc, cfg->nr_targets, sizeof(*v)) : NULL;

	for (size_t i = 0; v && i < cfg->nr_targets; i++)
		v[i] = cfg->targets[i].id;
	dm_free(kb->alloc, kb->ids);
	kb->ids = v;
	kb->nr_ids = v ? cfg->nr_targets : 0;
}

static struct kbackend *to_kb(const struct dm_backend *be)
{
	return (struct kbackend *)be;
}

/* lib/kernel's view of @cfg; @kt has nr_targets slots. */
static void kernel_cfg(const struct dm_backend_cfg *cfg, struct dm_kernel_cfg *kc,
		       struct dm_kernel_target *kt)
{
	memset(kc, 0, sizeof(*kc));
	for (size_t i = 0; i < cfg->nr_targets; i++) {
		kt[i].id = cfg->targets[i].id;
		kt[i].pid = cfg->targets[i].pid;
		kt[i].fixed = cfg->targets[i].fixed;
		kt[i].nr_fixed = cfg->targets[i].nr_fixed;
	}
	kc->sysfs_root = cfg->sysfs_root;
	kc->proc_root = cfg->proc_root;
	kc->ops = cfg->ops;
	kc->attrs = cfg->attrs;
	kc->targets = kt;
	kc->nr_targets = cfg->nr_targets;
	kc->schemes = cfg->schemes;
	kc->nr_schemes = cfg->nr_schemes;
	kc->pub = cfg->pub;
	kc->alloc = cfg->alloc;
	kc->seq_base = cfg->seq_base;
	/* whoever steps (the thread, or the caller polling damon_ctx_fd())
	 * wakes when records land */
	kc->wake_on_data = cfg->wake_epfd >= 0;
	kc->wake_epfd = cfg->wake_epfd;
}

/* Tell the API what lib/kernel published since it had published @before. */
static void count(struct kbackend *kb, uint64_t before)
{
	uint64_t n = dm_kernel_nr_published(kb->k) - before;

	if (n)
		kb->ev.published(kb->ev.arg, n);
}

static int kernel_scheme_check(const struct dm_backend_cfg *cfg, const struct dm_backend *be,
			       const struct dm_scheme *s, size_t idx, struct dm_err *err)
{
	/* the kernel sees reads and writes and runs every action; what this
	 * kernel lacks is found when the scheme is written (kwrite.c) */
	return 0;
}

static int kernel_start(struct dm_backend **ret, const struct dm_backend_cfg *cfg,
			uint64_t *ret_first_us, struct dm_err *err)
{
	struct dm_kernel_target *kt;
	struct dm_kernel_cfg kc;
	struct kbackend *kb;
	int rc;

	kb = dm_calloc(cfg->alloc, 1, sizeof(*kb));
	kt = dm_calloc(cfg->alloc, cfg->nr_targets, sizeof(*kt));
	if (!kb || !kt) {
		dm_free(cfg->alloc, kb);
		dm_free(cfg->alloc, kt);
		return dm_err_set(err, -ENOMEM, "out of memory");
	}
	kernel_cfg(cfg, &kc, kt);
	rc = dm_kernel_open(&kb->k, &kc, err);
	dm_free(cfg->alloc, kt);
	if (rc) {
		dm_free(cfg->alloc, kb);
		return rc;
	}
	kb->be.ops = &dm_backend_kernel;
	kb->alloc = cfg->alloc;
	kb->ev = cfg->ev;
	keep_ids(kb, cfg);
	*ret_first_us = 1;
	*ret = &kb->be;
	return 0;
}

static int kernel_step(struct dm_backend *be, uint64_t *next_us, struct dm_err *err)
{
	struct kbackend *kb = to_kb(be);
	uint64_t before = dm_kernel_nr_published(kb->k);
	int rc = dm_kernel_step(kb->k, next_us, err);

	count(kb, before);
	if (rc == -ESRCH)
		kb->ended = true;
	return rc;
}

static int kernel_commit(struct dm_backend *be, const struct dm_backend_cfg *cfg,
			 struct dm_err *err)
{
	struct kbackend *kb = to_kb(be);
	struct dm_kernel_target *kt;
	struct dm_kernel_cfg kc;
	int rc;

	kt = dm_calloc(kb->alloc, cfg->nr_targets, sizeof(*kt));
	if (!kt)
		return dm_err_set(err, -ENOMEM, "out of memory");
	kernel_cfg(cfg, &kc, kt);
	rc = dm_kernel_commit(kb->k, &kc, err);
	dm_free(kb->alloc, kt);
	if (!rc)
		keep_ids(kb, cfg);
	return rc;
}

static int kernel_pause(struct dm_backend *be, bool pause, struct dm_err *err)
{
	struct kbackend *kb = to_kb(be);
	uint64_t before = dm_kernel_nr_published(kb->k);
	int rc = dm_kernel_pause(kb->k, pause, err);

	count(kb, before);
	return rc;
}

static int kernel_filter_check(const struct dm_backend *be, const struct damos_filter_opts *f,
			       struct dm_err *err)
{
	return 0; /* judged when the scheme is written (kscheme.c) */
}

static int kernel_goal_current(struct dm_backend *be, const struct dm_scheme *sc, size_t goal,
			       uint64_t value, struct dm_err *err)
{
	struct kbackend *kb = to_kb(be);

	/* the kernel's DAMON reads it only when told to */
	if (kb->ended)
		return 0;
	return dm_kernel_set_goal_current(kb->k, sc, goal, value, err);
}

static bool kernel_ended(const struct dm_backend *be)
{
	return to_kb(be)->ended;
}

static void kernel_status(const struct dm_backend *be, struct dm_backend_state *ret)
{
	const struct kbackend *kb = to_kb(be);

	memset(ret, 0, sizeof(*ret));
	ret->running = !kb->ended;
	ret->nr_targets = (uint32_t)dm_kernel_nr_live(kb->k);
	dm_kernel_intervals(kb->k, &ret->sample_us, &ret->aggr_us);
}

static const char *kernel_note(const struct dm_backend *be)
{
	return dm_kernel_note(to_kb(be)->k);
}

static void kernel_stop(struct dm_backend *be, bool forked)
{
	struct kbackend *kb = to_kb(be);

	/* the targets the kdamond lost are dropped, as the engine's are */
	for (size_t i = 0; !forked && i < kb->nr_ids; i++)
		if (dm_kernel_target_gone(kb->k, kb->ids[i]))
			kb->ev.target_gone(kb->ev.arg, kb->ids[i], NULL);
	dm_free(kb->alloc, kb->ids);
	/* In a child: close fds and free only, never touch the parent's kdamond. */
	dm_kernel_close(kb->k, forked);
	dm_free(kb->alloc, kb);
}

struct dm_kernel *dm_backend_kdamond(const struct dm_backend *be)
{
	return be && be->ops == &dm_backend_kernel ? to_kb(be)->k : NULL;
}

const struct dm_backend_ops dm_backend_kernel = {
	.name = "kernel",
	.auto_fallback = true,
	.scheme_check = kernel_scheme_check,
	.filter_check = kernel_filter_check,
	.start = kernel_start,
	.step = kernel_step,
	.commit = kernel_commit,
	.pause = kernel_pause,
	.goal_current = kernel_goal_current,
	.ended = kernel_ended,
	.status = kernel_status,
	.note = kernel_note,
	.stop = kernel_stop,
};
