// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * What a context and the backends say about themselves: backend names, the
 * context's status, each backend's verdict (damon_ctx_backend_status(),
 * damon_probe()).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../probe/probe.h"
#include "../util/names.h"
#include "internal.h"

#define offsetofend(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

_public_ const char *damon_backend_name(int backend)
{
	return dm_backend_name(backend);
}

_public_ int damon_backend_from_name(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int b = 0; b <= DAMON_BACKEND_MAX; b++)
		if (!strcmp(name, damon_backend_name(b)))
			return b;
	return -EINVAL;
}

_public_ int damon_ctx_backend(const damon_ctx *ctx)
{
	CHECK_CTX(ctx);
	return ctx->backend;
}

void dm_ctx_probe_input(const damon_ctx *ctx, struct dm_probe_in *in)
{
	pid_t self = getpid();

	memset(in, 0, sizeof(*in));
	in->ops = ctx->ops;
	in->pid = self;
	in->self = true;
	/* the targets a start would monitor: not those dropped (exited) */
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		const struct damon_target *t = ctx->targets[i];

		if (t->gone)
			continue;
		if (!in->nr_targets++)
			in->pid = t->pid;
		if (ctx->ops == DAMON_OPS_PADDR || t->pid != self)
			in->self = false;
	}
	if (!in->nr_targets && ctx->ops == DAMON_OPS_PADDR)
		in->self = false;
	in->sysfs_root = ctx->sysfs_root;
	in->proc_root = ctx->proc_root;
}

_public_ int damon_ctx_status(damon_ctx *ctx, struct damon_ctx_status *ret)
{
	struct dm_backend_state bs;
	struct damon_ctx_status st;

	CHECK_CTX(ctx);
	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	pthread_mutex_lock(&ctx->runner.lock);
	if (ctx->be)
		ctx->be->ops->status(ctx->be, &bs);
	else
		memset(&bs, 0, sizeof(bs));
	st.running = ctx->running && bs.running;
	{
		/* What ended the monitor, else what troubles it (out of memory
		 * for a snapshot, a layout it could not read). */
		const struct dm_err *e =
			ctx->monitor_err.code || !bs.trouble ? &ctx->monitor_err : bs.trouble;

		st.error = e->code;
		snprintf(st.message, sizeof(st.message), "%.*s", (int)sizeof(st.message) - 1,
			 e->msg);
	}
	st.nr_targets = bs.nr_targets;
	st.sample_us = bs.sample_us ? bs.sample_us : ctx->attrs.sample_us;
	st.aggr_us = bs.aggr_us ? bs.aggr_us : ctx->attrs.aggr_us;
	st.paused = st.running && ctx->paused;
	st.backend = (uint32_t)ctx->backend; /* damon_ctx_start() sets it, under the lock */
	pthread_mutex_unlock(&ctx->runner.lock);
	st.nr_snapshots = atomic_load(&ctx->nr_snapshots);
	if (dm_copy_out(ret, &st, sizeof(st), offsetofend(struct damon_ctx_status, message)))
		return dm_ctx_fail(ctx, -EINVAL, "ret NULL or ret->sz too small");
	return 0;
}

_public_ int damon_ctx_backend_status(damon_ctx *ctx, int backend, struct damon_backend_status *ret)
{
	struct damon_backend_status st;

	CHECK_CTX(ctx);
	if (backend < DAMON_BACKEND_KERNEL || backend > DAMON_BACKEND_MAX)
		return dm_ctx_fail(ctx, -EINVAL, "backend %d is not one of 1..%d", backend,
				   DAMON_BACKEND_MAX);
	if (ctx->judged) {
		st = ctx->status[backend];
	} else {
		struct dm_probe_in in;

		memset(&st, 0, sizeof(st));
		st.sz = sizeof(st);
		dm_ctx_probe_input(ctx, &in);
		dm_probe_backend(&in, backend, &st);
	}
	if (dm_copy_out(ret, &st, sizeof(st), sizeof(st)))
		return dm_ctx_fail(ctx, -EINVAL, "ret NULL or ret->sz too small");
	return 0;
}

_public_ int damon_probe(uint32_t ops, pid_t pid, int backend, struct damon_backend_status *ret)
{
	struct damon_backend_status st;
	struct dm_probe_in in;

	if (ops > DAMON_OPS_PADDR || pid < 0 || backend < DAMON_BACKEND_KERNEL ||
	    backend > DAMON_BACKEND_MAX || !ret)
		return -EINVAL;
	memset(&in, 0, sizeof(in));
	in.ops = ops;
	in.pid = pid ? pid : getpid();
	in.self = ops != DAMON_OPS_PADDR && (pid == 0 || pid == getpid());
	in.nr_targets = 1;
	memset(&st, 0, sizeof(st));
	st.sz = sizeof(st);
	dm_probe_backend(&in, backend, &st);
	return dm_copy_out(ret, &st, sizeof(st), sizeof(st));
}
