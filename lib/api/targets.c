// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The context's target list, appended to by damon_ctx_add_target() and by
 * the cgroups it follows (cgroup.c). Targets are never removed: a target's
 * id is its position, and the pointers handed out stay valid until the
 * context is freed.
 */
#include <errno.h>

#include "internal.h"

int dm_ctx_append_target(damon_ctx *ctx, pid_t pid, struct damon_cgroup *cg, damon_target **ret)
{
	struct damon_target *t;

	if (ctx->nr_targets == ctx->cap_targets) {
		size_t cap = ctx->cap_targets ? ctx->cap_targets * 2 : 4;
		struct damon_target **v = dm_realloc(
			&ctx->alloc, ctx->targets, ctx->cap_targets * sizeof(*v), cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ctx->targets = v;
		ctx->cap_targets = cap;
	}
	t = dm_calloc(&ctx->alloc, 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ctx = ctx;
	t->id = ctx->next_target_id++;
	t->pid = pid;
	t->cg = cg;
	ctx->targets[ctx->nr_targets++] = t;
	if (ctx->nr_targets == 1)
		atomic_store(&ctx->first_target_id, t->id);
	if (ret)
		*ret = t;
	return 0;
}
