// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/* Public entry points for DAMOS schemes. */
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

static const char *const action_names[] = {
	"stat", "cold", "pageout", "willneed", "hugepage", "nohugepage",
	"collapse", "migrate_hot", "migrate_cold", "lru_prio", "lru_deprio",
};

_public_ int damon_ctx_add_scheme(damon_ctx *ctx, const struct damos_opts *opts, damos **ret)
{
	struct damos_opts o;
	struct damos *s;

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
	if (o.action != DAMOS_STAT)
		return dm_ctx_fail(ctx, -EOPNOTSUPP, "action \"%s\" is not executed by this "
				   "version; only \"stat\" is", action_names[o.action]);
	if (o.wmarks_metric || o.quota_ms || o.quota_bytes)
		return dm_ctx_fail(ctx, -EOPNOTSUPP, "quotas and watermarks are not executed by "
				   "this version");
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
