// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The engine backend (backend.h): DAMON's algorithm in this process.
 * lib/core's monitor samples through one lib/ops primitive, chosen by the
 * backend number, and lib/actions executes the schemes' actions. Targets
 * are the monitor's own copies (struct dm_mon_target, regions inside),
 * matched to the context's by id at every commit.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../actions/actions.h"
#include "../util/names.h"
#include "backend.h"

struct engine {
	struct dm_backend be;
	const struct dm_alloc *alloc;
	struct dm_monitor mon;
	struct dm_mon_target **targets; /* what mon monitors, freed at stop */
	size_t nr_targets, cap_targets;
	struct dm_actions_env *act_env; /* DAMOS executor; NULL: schemes count only */
	struct dm_backend_events ev;
};

static struct engine *to_engine(const struct dm_backend *be)
{
	return (struct engine *)be;
}

/* The primitive of engine backend @backend, or NULL. */
static const struct dm_ops *sampler(int backend)
{
	switch (backend) {
	case DAMON_BACKEND_UFFD_WP:
		return &dm_ops_uffd_wp;
	case DAMON_BACKEND_PAGE_IDLE:
		return &dm_ops_page_idle;
	case DAMON_BACKEND_SOFT_DIRTY:
		return &dm_ops_soft_dirty;
	case DAMON_BACKEND_FAULT:
		return &dm_ops_fault;
	default:
		return NULL;
	}
}

/* ------------------------------------------------------------------------ */
/* What the engine can do with a scheme */

static bool writes_only(uint32_t sees)
{
	return !(sees & DAMON_SEES_READS);
}

/* What backend @backend, which sees @sees (0: not known yet), cannot do
 * with scheme @s; 0 or -errno with a sentence. */
static int check_action(const struct dm_scheme *s, size_t idx, int backend, uint32_t sees,
			struct dm_err *err)
{
	const char *name = dm_action_name(s->opts.action);

	if (sees && writes_only(sees) && dm_action_is_cold(s->opts.action) &&
	    !(s->opts.flags & DAMOS_F_ALLOW_WRITES_ONLY))
		return dm_err_set(err, -EOPNOTSUPP,
				  "scheme %zu: action \"%s\" acts on cold memory, but backend %s "
				  "sees writes only, so memory that is only read looks cold; set "
				  "DAMOS_F_ALLOW_WRITES_ONLY in its flags to accept that",
				  idx, name, dm_backend_name(backend));
	if (s->opts.action == DAMOS_LRU_PRIO || s->opts.action == DAMOS_LRU_DEPRIO)
		return dm_err_set(
			err, -EOPNOTSUPP,
			"scheme %zu: action \"%s\" reorders the kernel's LRU lists, which "
			"no system call can do: it runs on the kernel backend only, not "
			"on %s",
			idx, name, dm_backend_name(backend));
	return 0;
}

/* Can this process apply scheme @s's action to every target of @cfg? */
static int check_targets(const struct dm_backend_cfg *cfg, const struct dm_scheme *s, size_t idx,
			 struct dm_err *err)
{
	pid_t self = getpid();

	for (size_t t = 0; t < cfg->nr_targets && cfg->ops != DAMON_OPS_PADDR; t++) {
		struct dm_err e = {0};
		pid_t pid = cfg->targets[t].pid;
		int ret = dm_action_check(s->opts.action, pid == self, pid, s->opts.target_nid, &e);

		if (ret)
			return dm_err_set(err, ret, "scheme %zu: %s", idx, e.msg);
	}
	return 0;
}

static int engine_scheme_check(const struct dm_backend_cfg *cfg, const struct dm_backend *be,
			       const struct dm_scheme *s, size_t idx, struct dm_err *err)
{
	const struct dm_ops *o = be ? to_engine(be)->mon.ops : sampler(cfg->backend);
	int ret = check_action(s, idx, cfg->backend, o ? o->sees : 0, err);

	if (!ret && be)
		ret = check_targets(cfg, s, idx, err);
	return ret;
}

/* Every scheme of @cfg on a primitive that sees @sees, before a start. */
static int check_schemes(const struct dm_backend_cfg *cfg, uint32_t sees, struct dm_err *err)
{
	for (size_t i = 0; i < cfg->nr_schemes; i++) {
		const struct dm_scheme *s = cfg->schemes[i];
		struct dm_err e = {0};
		int ret = check_action(s, i, cfg->backend, sees, err);

		if (ret)
			return ret;
		ret = dm_action_filters_check(s->filters, s->nr_filters, &e);
		if (ret)
			return dm_err_set(err, ret, "scheme %zu on %s: %s", i,
					  dm_backend_name(cfg->backend), e.msg);
		if (cfg->ops == DAMON_OPS_PADDR && s->opts.action != DAMOS_STAT)
			return dm_err_set(err, -EOPNOTSUPP,
					  "scheme %zu: action \"%s\" on physical memory needs the "
					  "kernel backend (user-space backends act through a "
					  "process's virtual addresses)",
					  i, dm_action_name(s->opts.action));
		ret = check_targets(cfg, s, i, err);
		if (ret)
			return ret;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The DAMOS executor */

/* uffd_wp and friends: let go of a range before an action changes it. */
static void release_range(void *arg, const struct dm_scheme_target *st, uint64_t start,
			  uint64_t end)
{
	struct engine *e = arg;
	struct dm_monitor *m = &e->mon;

	if (!m->ops || !m->ops->release)
		return;
	for (size_t i = 0; i < m->nr_targets; i++)
		if (m->targets[i]->id == st->idx && m->targets[i]->live)
			m->ops->release(m->inst, &m->targets[i]->ot, start, end);
}

static const struct dm_scheme_env *actions_env(struct engine *e, const struct dm_backend_cfg *cfg)
{
	e->act_env = dm_calloc(e->alloc, 1, sizeof(*e->act_env));
	if (!e->act_env)
		return NULL; /* schemes then count but apply nothing */
	dm_actions_env_init(e->act_env, cfg->proc_root, cfg->sysfs_root, cfg->alloc);
	e->act_env->release = release_range;
	e->act_env->release_arg = e;
	return &e->act_env->env;
}

/* ------------------------------------------------------------------------ */
/* Targets */

static struct dm_mon_target *monitored(const struct engine *e, uint32_t id)
{
	for (size_t i = 0; i < e->nr_targets; i++)
		if (e->targets[i]->id == id)
			return e->targets[i];
	return NULL;
}

/* Hand target @bt to the monitor (laid out and, while running, armed). */
static int add_target(struct engine *e, const struct dm_backend_target *bt, struct dm_err *err)
{
	struct dm_mon_target *t;
	int ret;

	if (e->nr_targets == e->cap_targets) {
		size_t cap = e->cap_targets ? e->cap_targets * 2 : 4;
		struct dm_mon_target **v = dm_realloc(
			e->alloc, e->targets, e->cap_targets * sizeof(*v), cap * sizeof(*v));

		if (!v)
			return dm_err_set(err, -ENOMEM, "out of memory adding a target");
		e->targets = v;
		e->cap_targets = cap;
	}
	t = dm_calloc(e->alloc, 1, sizeof(*t));
	if (!t)
		return dm_err_set(err, -ENOMEM, "out of memory adding a target");
	t->id = bt->id;
	t->ot.pid = bt->pid;
	t->ot.fixed = bt->fixed;
	t->ot.nr_fixed = bt->nr_fixed;
	ret = dm_monitor_add_target(&e->mon, t, err);
	if (ret) {
		dm_free(e->alloc, t);
		return ret;
	}
	e->targets[e->nr_targets++] = t;
	return 0;
}

/* Stop monitoring what @cfg no longer lists (members that left their
 * cgroup; targets gone otherwise are not live any more). */
static void drop_unlisted(struct engine *e, const struct dm_backend_cfg *cfg)
{
	for (size_t i = 0; i < e->nr_targets; i++) {
		struct dm_mon_target *t = e->targets[i];
		bool listed = false;

		for (size_t j = 0; j < cfg->nr_targets && !listed; j++)
			listed = cfg->targets[j].id == t->id;
		if (listed || !t->live)
			continue;
		/* as the monitor drops a target that exited, without its
		 * target_gone hook: the API dropped this one itself */
		e->mon.ops->target_fini(e->mon.inst, &t->ot);
		t->live = false;
		t->gone = true;
		dm_regions_free(e->alloc, &t->regions);
	}
}

/* ------------------------------------------------------------------------ */
/* The operations */

static void hook_published(struct dm_monitor *m, void *arg)
{
	struct engine *e = arg;

	e->ev.published(e->ev.arg, 1);
}

static void hook_target_gone(struct dm_monitor *m, struct dm_mon_target *t,
			     const struct dm_err *why, void *arg)
{
	struct engine *e = arg;

	e->ev.target_gone(e->ev.arg, t->id, why);
}

static void engine_stop(struct dm_backend *be, bool forked)
{
	struct engine *e = to_engine(be);

	/* In a child this only frees: the ops set knows its instance was
	 * inherited and touches nothing of the parent's. */
	dm_monitor_fini(&e->mon);
	if (e->act_env) {
		dm_actions_env_fini(e->act_env);
		dm_free(e->alloc, e->act_env);
	}
	for (size_t i = 0; i < e->nr_targets; i++)
		dm_free(e->alloc, e->targets[i]);
	dm_free(e->alloc, e->targets);
	dm_free(e->alloc, e);
}

static int engine_start(struct dm_backend **ret, const struct dm_backend_cfg *cfg,
			uint64_t *ret_first_us, struct dm_err *err)
{
	const struct dm_ops *ops = cfg->sim_ops ? cfg->sim_ops : sampler(cfg->backend);
	struct dm_mon_cfg mc;
	struct engine *e;
	int rc;

	if (!ops)
		return dm_err_set(err, -EOPNOTSUPP, "%s: not implemented in this version",
				  dm_backend_name(cfg->backend));
	rc = check_schemes(cfg, ops->sees, err);
	if (rc)
		return rc;
	e = dm_calloc(cfg->alloc, 1, sizeof(*e));
	if (!e)
		return dm_err_set(err, -ENOMEM, "out of memory starting the monitor");
	e->be.ops = &dm_backend_engine;
	e->alloc = cfg->alloc;
	e->ev = cfg->ev;

	memset(&mc, 0, sizeof(mc));
	mc.attrs = cfg->attrs;
	mc.backend = (uint32_t)cfg->backend;
	mc.ops = ops;
	mc.ops_cfg.ops = cfg->ops;
	mc.ops_cfg.proc_root = cfg->proc_root;
	mc.ops_cfg.sysfs_root = cfg->sysfs_root;
	mc.ops_cfg.alloc = cfg->alloc;
	mc.ops_cfg.seed = cfg->seed;
	mc.ops_cfg.model = cfg->sim_model;
	mc.clock = cfg->sim_clock;
	mc.alloc = cfg->alloc;
	mc.pub = cfg->pub;
	mc.hooks.published = hook_published;
	mc.hooks.target_gone = hook_target_gone;
	mc.hooks.arg = e;
	mc.env = actions_env(e, cfg);
	mc.seed = cfg->seed;
	rc = dm_monitor_init(&e->mon, &mc, err);
	if (rc)
		goto fail;
	e->mon.seq = cfg->seq_base;
	e->mon.hold = cfg->hold;
	for (size_t i = 0; i < cfg->nr_targets; i++) {
		rc = add_target(e, &cfg->targets[i], err);
		if (rc == -ESRCH && cfg->targets[i].member) {
			/* a cgroup's process that exited since the API read
			 * the cgroup: dropped, the others start */
			e->ev.target_gone(e->ev.arg, cfg->targets[i].id, err);
			dm_err_clear(err);
			rc = 0;
		}
		if (rc)
			goto fail;
	}
	e->mon.schemes = (struct dm_scheme **)cfg->schemes;
	e->mon.nr_schemes = cfg->nr_schemes;
	rc = dm_monitor_start(&e->mon, err);
	if (rc)
		goto fail;
	*ret_first_us = e->mon.sample_us;
	*ret = &e->be;
	return 0;
fail:
	engine_stop(&e->be, false);
	return rc;
}

static int engine_step(struct dm_backend *be, uint64_t *next_us, struct dm_err *err)
{
	struct engine *e = to_engine(be);
	int rc = dm_monitor_step(&e->mon, next_us);

	if (rc < 0 && err)
		*err = e->mon.err;
	return rc;
}

static int engine_commit(struct dm_backend *be, const struct dm_backend_cfg *cfg,
			 struct dm_err *err)
{
	struct engine *e = to_engine(be);
	int rc = 0;

	/* the API frees the array it passed before: keep running what ran, the
	 * new schemes join when the rest succeeded */
	e->mon.schemes = (struct dm_scheme **)cfg->schemes;
	e->mon.hold = cfg->hold;
	if (!cfg->targets_only)
		dm_monitor_set_attrs(&e->mon, &cfg->attrs);
	drop_unlisted(e, cfg);
	for (size_t i = 0; i < cfg->nr_targets && !rc; i++) {
		const struct dm_backend_target *bt = &cfg->targets[i];
		struct dm_mon_target *t = monitored(e, bt->id);

		if (!t) {
			rc = add_target(e, bt, err);
			if (rc == -ESRCH && bt->member) {
				/* it exited since the API read its cgroup */
				e->ev.target_gone(e->ev.arg, bt->id, err);
				dm_err_clear(err);
				rc = 0;
			}
		} else if (bt->nr_fixed &&
			   (t->ot.fixed != bt->fixed || t->ot.nr_fixed != bt->nr_fixed)) {
			/* damon_target_set_ranges(): laid out again now. A
			 * target without ranges of its own (paddr's System RAM)
			 * is never laid out again by a commit. */
			t->ot.fixed = bt->fixed;
			t->ot.nr_fixed = bt->nr_fixed;
			rc = dm_monitor_relayout(&e->mon, t, err);
		}
	}
	if (!rc)
		e->mon.nr_schemes = cfg->nr_schemes;
	return rc;
}

static int engine_pause(struct dm_backend *be, bool pause, struct dm_err *err)
{
	struct engine *e = to_engine(be);

	if (pause)
		dm_monitor_pause(&e->mon);
	else
		dm_monitor_resume(&e->mon);
	return 0;
}

static int engine_filter_check(const struct dm_backend *be, const struct damos_filter_opts *f,
			       struct dm_err *err)
{
	return dm_action_filters_check(f, 1, err);
}

static int engine_goal_current(struct dm_backend *be, const struct dm_scheme *sc, size_t goal,
			       uint64_t value, struct dm_err *err)
{
	return 0; /* the monitor reads the goal from the scheme at its next step */
}

static bool engine_ended(const struct dm_backend *be)
{
	return !to_engine(be)->mon.running;
}

static void engine_status(const struct dm_backend *be, struct dm_backend_state *ret)
{
	const struct dm_monitor *m = &to_engine(be)->mon;

	memset(ret, 0, sizeof(*ret));
	ret->running = m->running;
	for (size_t i = 0; i < m->nr_targets; i++)
		ret->nr_targets += m->targets[i]->live;
	ret->sample_us = m->sample_us;
	ret->aggr_us = m->aggr_us;
	ret->trouble = &m->err;
}

static const char *engine_note(const struct dm_backend *be)
{
	return "";
}

const struct dm_backend_ops dm_backend_engine = {
	.name = "engine",
	.scheme_check = engine_scheme_check,
	.filter_check = engine_filter_check,
	.start = engine_start,
	.step = engine_step,
	.commit = engine_commit,
	.pause = engine_pause,
	.goal_current = engine_goal_current,
	.ended = engine_ended,
	.status = engine_status,
	.note = engine_note,
	.stop = engine_stop,
};
