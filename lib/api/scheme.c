// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* Public entry points for DAMOS schemes: their options, goals, filters, stats. */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define offsetofend(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

_public_ int damos_opts_init(struct damos_opts *opts)
{
	if (!opts)
		return -EINVAL;
	memset(opts, 0, sizeof(*opts));
	opts->sz = sizeof(*opts);
	opts->max_sz = UINT64_MAX;
	opts->max_nr_accesses = UINT32_MAX;
	opts->max_age = UINT32_MAX;
	return 0;
}

void dm_schemes_free(damon_ctx *ctx, struct damos *s)
{
	for (size_t i = 0; i < s->sc.nr_filters; i++)
		dm_free(&ctx->alloc, (void *)s->sc.filters[i].memcg_path);
	dm_free(&ctx->alloc, s->sc.filters);
	dm_free(&ctx->alloc, s->sc.goals);
	dm_free(&ctx->alloc, s);
}

_public_ int damon_ctx_add_scheme(damon_ctx *ctx, const struct damos_opts *opts, damos **ret)
{
	struct damos_opts o;
	struct damos *s;
	int err;

	if (!ctx)
		return -EINVAL;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	if (!opts || opts->sz < offsetofend(struct damos_opts, flags) ||
	    !dm_opts_ok(opts, opts->sz, sizeof(o)))
		return dm_ctx_fail(ctx, -EINVAL, "opts NULL or opts->sz wrong (use DAMOS_OPTS() "
				   "or damos_opts_init())");
	memset(&o, 0, sizeof(o));
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	if (o.action > DAMOS_LRU_DEPRIO)
		return dm_ctx_fail(ctx, -EINVAL, "unknown action %u", o.action);
	if (o.min_sz > o.max_sz || o.min_nr_accesses > o.max_nr_accesses || o.min_age > o.max_age)
		return dm_ctx_fail(ctx, -EINVAL, "access pattern has a minimum above its maximum "
				   "(an unset maximum is 0: use DAMOS_OPTS() or damos_opts_init() "
				   "for unbounded maxima)");
	if (o.wmarks_metric > DAMOS_WMARK_FREE_MEM_RATE)
		return dm_ctx_fail(ctx, -EINVAL, "unknown watermark metric %u", o.wmarks_metric);
	if (o.wmarks_metric && !(o.wmarks_high >= o.wmarks_mid && o.wmarks_mid >= o.wmarks_low))
		return dm_ctx_fail(ctx, -EINVAL, "watermarks must be high >= mid >= low "
				   "(got %u, %u, %u)", o.wmarks_high, o.wmarks_mid, o.wmarks_low);
	if (o.flags & ~(uint32_t)DAMOS_F_ALLOW_WRITES_ONLY)
		return dm_ctx_fail(ctx, -EINVAL, "unknown scheme flags 0x%x", o.flags);
	if (ctx->running || (ctx->backend_req != DAMON_BACKEND_AUTO && !ctx->ops_override)) {
		/* An explicit backend is judged now, the one in use on a running
		 * context too (the scheme joins at the next commit); AUTO at
		 * damon_ctx_start(). */
		struct dm_scheme tmp = {.opts = o};
		int b = ctx->running ? ctx->backend : (int)ctx->backend_req;
		const struct dm_backend_ops *ops =
			ctx->running ? ctx->be->ops : dm_backend_get(b, false);
		struct dm_backend_cfg cfg;
		struct dm_err e = {0};

		if (dm_ctx_backend_cfg(ctx, b, &cfg))
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a scheme");
		err = ops->scheme_check(&cfg, ctx->running ? ctx->be : NULL, &tmp, ctx->nr_schemes,
					&e);
		dm_ctx_backend_cfg_free(ctx, &cfg);
		if (err)
			return dm_ctx_fail_err(ctx, &e);
	}
	if (ctx->nr_schemes == ctx->cap_schemes) {
		size_t cap = ctx->cap_schemes ? ctx->cap_schemes * 2 : 4;
		struct damos **v = dm_realloc(&ctx->alloc, ctx->schemes,
					      ctx->cap_schemes * sizeof(*v), cap * sizeof(*v));

		if (!v)
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a scheme");
		ctx->schemes = v;
		ctx->cap_schemes = cap;
	}
	s = dm_calloc(&ctx->alloc, 1, sizeof(*s));
	if (!s)
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a scheme");
	s->ctx = ctx;
	s->sc.opts = o;
	s->sc.opts.sz = sizeof(o);
	s->sc.stats.sz = sizeof(s->sc.stats);
	dm_scheme_reset(&s->sc);
	ctx->schemes[ctx->nr_schemes++] = s;
	if (ret)
		*ret = s;
	return 0;
}

_public_ int damos_get_stats(const damos *s, struct damos_stats *ret)
{
	struct damos_stats st;

	if (!s || !ret)
		return -EINVAL;
	if (dm_ctx_forked(s->ctx))
		return -ECHILD;
	/* The monitor updates these under the runner lock. */
	pthread_mutex_lock(&s->ctx->runner.lock);
	st = s->sc.stats;
	pthread_mutex_unlock(&s->ctx->runner.lock);
	st.sz = sizeof(st);
	return dm_copy_out(ret, &st, sizeof(st), offsetofend(struct damos_stats, nr_snapshots));
}

static void *grow(damon_ctx *ctx, void *v, size_t *cap, size_t n, size_t elem)
{
	size_t c = *cap ? *cap * 2 : 4;
	void *p;

	if (n < *cap)
		return v;
	p = dm_realloc(&ctx->alloc, v, *cap * elem, c * elem);
	if (p)
		*cap = c;
	return p;
}

_public_ int damos_add_goal(damos *s, const struct damos_goal_opts *opts)
{
	struct damos_goal_opts o;
	struct dm_goal *v;
	damon_ctx *ctx;
	int idx;

	if (!s)
		return -EINVAL;
	ctx = s->ctx;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	if (!opts || opts->sz < offsetofend(struct damos_goal_opts, current_value) ||
	    !dm_opts_ok(opts, opts->sz, sizeof(o)))
		return dm_ctx_fail(ctx, -EINVAL, "goal opts NULL or opts->sz wrong (use "
				   "DAMON_OPTS(damos_goal_opts, ...))");
	memset(&o, 0, sizeof(o));
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	o.sz = sizeof(o);
	if (o.metric > DAMOS_GOAL_NODE_MEM_FREE_BP)
		return dm_ctx_fail(ctx, -EINVAL, "unknown goal metric %u", o.metric);
	if (!o.target_value)
		return dm_ctx_fail(ctx, -EINVAL, "a goal needs target_value > 0");
	pthread_mutex_lock(&ctx->runner.lock);
	v = grow(ctx, s->sc.goals, &s->cap_goals, s->sc.nr_goals, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&ctx->runner.lock);
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a goal");
	}
	s->sc.goals = v;
	memset(&v[s->sc.nr_goals], 0, sizeof(v[0]));
	v[s->sc.nr_goals].opts = o;
	idx = (int)s->sc.nr_goals++;
	pthread_mutex_unlock(&ctx->runner.lock);
	return idx;
}

_public_ int damos_set_goal_current(damos *s, unsigned int idx, uint64_t current_value)
{
	struct dm_err err = { 0 };
	damon_ctx *ctx;
	int ret = 0;

	if (!s)
		return -EINVAL;
	ctx = s->ctx;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	pthread_mutex_lock(&ctx->runner.lock);
	if (idx >= s->sc.nr_goals || s->sc.goals[idx].opts.metric != DAMOS_GOAL_USER_INPUT) {
		pthread_mutex_unlock(&ctx->runner.lock);
		return dm_ctx_fail(ctx, -EINVAL, "goal %u is not a user_input goal of this scheme",
				   idx);
	}
	s->sc.goals[idx].opts.current_value = current_value;
	if (ctx->be)
		ret = ctx->be->ops->goal_current(ctx->be, &s->sc, idx, current_value, &err);
	pthread_mutex_unlock(&ctx->runner.lock);
	if (ret)
		return dm_ctx_fail(ctx, -EIO, "%s", err.msg);
	return 0;
}

_public_ int damos_add_filter(damos *s, const struct damos_filter_opts *opts)
{
	struct damos_filter_opts o;
	struct damos_filter_opts *v;
	damon_ctx *ctx;
	char *path = NULL;

	if (!s)
		return -EINVAL;
	ctx = s->ctx;
	if (dm_ctx_forked(ctx))
		return -ECHILD;
	if (!opts || opts->sz < offsetofend(struct damos_filter_opts, memcg_path) ||
	    !dm_opts_ok(opts, opts->sz, sizeof(o)))
		return dm_ctx_fail(ctx, -EINVAL, "filter opts NULL or opts->sz wrong (use "
				   "DAMON_OPTS(damos_filter_opts, ...))");
	memset(&o, 0, sizeof(o));
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	o.sz = sizeof(o);
	if (o.type > DAMOS_FILTER_TARGET)
		return dm_ctx_fail(ctx, -EINVAL, "unknown filter type %u", o.type);
	if (o.type == DAMOS_FILTER_ADDR && o.addr_start >= o.addr_end)
		return dm_ctx_fail(ctx, -EINVAL, "addr filter: addr_start must be below addr_end");
	if (o.type == DAMOS_FILTER_HUGEPAGE_SIZE && o.min_sz > o.max_sz)
		return dm_ctx_fail(ctx, -EINVAL, "hugepage_size filter: min_sz above max_sz");
	if (o.type == DAMOS_FILTER_MEMCG) {
		size_t n;

		if (!o.memcg_path || !*o.memcg_path)
			return dm_ctx_fail(ctx, -EINVAL, "memcg filter needs memcg_path");
		n = strlen(o.memcg_path) + 1;
		path = dm_malloc(&ctx->alloc, n);
		if (!path)
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a filter");
		memcpy(path, o.memcg_path, n);
	}
	o.memcg_path = path;
	if (ctx->running) {
		struct dm_err e = { 0 };
		int r = ctx->be->ops->filter_check(ctx->be, &o, &e);

		if (r) {
			dm_free(&ctx->alloc, path);
			return dm_ctx_fail(ctx, r, "%s", e.msg);
		}
	}
	o.matching = !!o.matching;
	o.allow = !!o.allow;
	pthread_mutex_lock(&ctx->runner.lock);
	v = grow(ctx, s->sc.filters, &s->cap_filters, s->sc.nr_filters, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&ctx->runner.lock);
		dm_free(&ctx->alloc, path);
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a filter");
	}
	s->sc.filters = v;
	v[s->sc.nr_filters++] = o;
	pthread_mutex_unlock(&ctx->runner.lock);
	return 0;
}

_public_ int damos_get_quota(const damos *s, struct damos_quota_state *ret)
{
	struct damos_quota_state st;

	if (!s || !ret)
		return -EINVAL;
	if (dm_ctx_forked(s->ctx))
		return -ECHILD;
	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	pthread_mutex_lock(&s->ctx->runner.lock);
	st.esz = s->sc.quota.esz;
	st.charged_sz = s->sc.quota.charged_sz;
	st.active = s->sc.wmark_active;
	st.min_score = s->sc.quota.min_score;
	pthread_mutex_unlock(&s->ctx->runner.lock);
	return dm_copy_out(ret, &st, sizeof(st), offsetofend(struct damos_quota_state, min_score));
}
