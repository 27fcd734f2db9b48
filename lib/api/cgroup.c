// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * cgroup v2 targets: a followed cgroup's processes are ordinary vaddr
 * targets marked with it. Membership is read from cgroup.procs at start
 * and at every update interval (run.c calls dm_ctx_cgroup_sync() from the
 * step, under the runner's lock); run.c hands what changed to the backend
 * as a commit of the targets only, so the kernel backend takes it through
 * the kernel's own commit and the engine adds or drops monitor targets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../util/cgroup.h"
#include "internal.h"

#define offsetofend(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))
#define CG_OPTS_MIN_SZ	  offsetofend(struct damon_cgroup_opts, flags)
#define CG_SUMMARY_MIN_SZ offsetofend(struct damon_cgroup_summary, snapshot_seq)

static void say(const damon_ctx *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Membership news goes to the log callback only: it is not a failure. */
static void say(const damon_ctx *ctx, int level, const char *fmt, ...)
{
	char msg[DM_ERRMSG_MAX];
	va_list ap;

	if (!ctx->log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->log_fn((damon_ctx *)ctx, level, msg, ctx->log_userdata);
}

static bool refuses_cgroups(int backend)
{
	return !dm_backend_sees_others(backend);
}

static void cgroup_free(const struct dm_alloc *a, struct damon_cgroup *cg)
{
	if (!cg)
		return;
	if (cg->dirfd >= 0)
		close(cg->dirfd);
	dm_free(a, cg->path);
	dm_free(a, cg);
}

void dm_ctx_cgroups_free(damon_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_cgroups; i++)
		cgroup_free(&ctx->alloc, ctx->cgroups[i]);
	dm_free(&ctx->alloc, ctx->cgroups);
	ctx->cgroups = NULL;
	ctx->nr_cgroups = ctx->cap_cgroups = 0;
}

void dm_ctx_cgroup_judge(const damon_ctx *ctx, struct damon_backend_status *st)
{
	if (!ctx->nr_cgroups)
		return;
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		if (!refuses_cgroups(b) || !st[b].usable)
			continue;
		st[b].usable = 0;
		snprintf(st[b].reason, sizeof(st[b].reason),
			 "%s: monitors the calling process only, not the processes of a cgroup",
			 damon_backend_name(b));
	}
}

_public_ int damon_ctx_add_cgroup(damon_ctx *ctx, const struct damon_cgroup_opts *opts,
				  damon_cgroup **ret)
{
	struct damon_cgroup_opts o;
	struct damon_cgroup *cg;
	struct dm_err err = {0};
	char fdname[32];
	const char *name;
	size_t n;
	int fd;

	CHECK_CTX(ctx);
	if (!opts || opts->sz < CG_OPTS_MIN_SZ || !dm_opts_ok(opts, opts->sz, sizeof(o)))
		return dm_ctx_fail(ctx, -EINVAL, "opts NULL or opts->sz wrong");
	memset(&o, 0, sizeof(o));
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	if (o.flags)
		return dm_ctx_fail(ctx, -EINVAL, "unknown cgroup flags 0x%x", o.flags);
	if (ctx->ops != DAMON_OPS_VADDR)
		return dm_ctx_fail(ctx, -EINVAL,
				   "a cgroup's processes are monitored as vaddr "
				   "targets: the context must use DAMON_OPS_VADDR");
	if (refuses_cgroups((int)ctx->backend_req))
		return dm_ctx_fail(ctx, -EOPNOTSUPP,
				   "%s monitors the calling process only and cannot follow a "
				   "cgroup's processes; use page_idle, soft_dirty or kernel",
				   damon_backend_name((int)ctx->backend_req));
	if (!o.path && o.fd < 0)
		return dm_ctx_fail(ctx, -EINVAL, "neither a cgroup path nor an open directory fd");
	fd = dm_cgroup_open(o.path, o.fd, &err);
	if (fd < 0)
		return dm_ctx_fail_err(ctx, &err);
	snprintf(fdname, sizeof(fdname), "fd %d", (int)o.fd);
	name = o.path ? o.path : fdname;
	cg = dm_calloc(&ctx->alloc, 1, sizeof(*cg));
	n = strlen(name) + 1;
	if (cg)
		cg->path = dm_malloc(&ctx->alloc, n);
	if (!cg || !cg->path) {
		close(fd);
		if (cg)
			dm_free(&ctx->alloc, cg);
		return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a cgroup");
	}
	memcpy(cg->path, name, n);
	cg->ctx = ctx;
	cg->dirfd = fd;
	/* the library thread reads the list while it follows the others */
	pthread_mutex_lock(&ctx->runner.lock);
	if (ctx->nr_cgroups == ctx->cap_cgroups) {
		size_t cap = ctx->cap_cgroups ? ctx->cap_cgroups * 2 : 2;
		struct damon_cgroup **v = dm_realloc(
			&ctx->alloc, ctx->cgroups, ctx->cap_cgroups * sizeof(*v), cap * sizeof(*v));

		if (!v) {
			pthread_mutex_unlock(&ctx->runner.lock);
			cgroup_free(&ctx->alloc, cg);
			return dm_ctx_fail(ctx, -ENOMEM, "out of memory adding a cgroup");
		}
		ctx->cgroups = v;
		ctx->cap_cgroups = cap;
	}
	ctx->cgroups[ctx->nr_cgroups++] = cg;
	/* running: its members join at the next step, due now */
	ctx->cg_next_us = 0;
	if (ctx->running && ctx->runner.manual)
		dm_runner_arm(&ctx->runner, 1);
	else if (ctx->running)
		dm_runner_kick(&ctx->runner);
	pthread_mutex_unlock(&ctx->runner.lock);
	if (ret)
		*ret = cg;
	return 0;
}

/* Is @pid a member of @cg that is still followed? */
static bool following(const damon_ctx *ctx, const struct damon_cgroup *cg, pid_t pid)
{
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		const struct damon_target *t = ctx->targets[i];

		if (t->cg == cg && !t->gone && t->pid == pid)
			return true;
	}
	return false;
}

/* Read @cg's members and add or drop targets; whether anything changed. */
static bool sync_one(damon_ctx *ctx, struct damon_cgroup *cg)
{
	struct dm_err err = {0};
	pid_t *pids = NULL;
	bool changed = false;
	ssize_t n;

	n = dm_cgroup_read_pids(cg->dirfd, &ctx->alloc, &pids, &err);
	if (n == -ENOENT || n == -ENODEV) {
		n = 0; /* removed: every member has left */
	} else if (n < 0) {
		say(ctx, DAMON_LOG_WARNING, "cgroup %s: %s; its members stay as they were",
		    cg->path, err.msg);
		return false;
	}
	for (size_t i = 0; i < ctx->nr_targets; i++) {
		struct damon_target *t = ctx->targets[i];

		if (t->cg != cg || t->gone || dm_cgroup_has_pid(pids, (size_t)n, t->pid))
			continue;
		t->gone = true;
		cg->nr_left++;
		changed = true;
		say(ctx, DAMON_LOG_INFO,
		    "cgroup %s: process %d left it (exited or moved out): target %u dropped",
		    cg->path, (int)t->pid, t->id);
	}
	for (ssize_t i = 0; i < n; i++) {
		damon_target *t;

		if (following(ctx, cg, pids[i]))
			continue;
		if (dm_ctx_append_target(ctx, pids[i], cg, &t)) {
			say(ctx, DAMON_LOG_WARNING,
			    "cgroup %s: out of memory adding process %d; tried again later",
			    cg->path, (int)pids[i]);
			break;
		}
		cg->nr_joined++;
		changed = true;
		say(ctx, DAMON_LOG_INFO, "cgroup %s: process %d joined it: target %u", cg->path,
		    (int)t->pid, t->id);
	}
	dm_free(&ctx->alloc, pids);
	return changed;
}

bool dm_ctx_cgroup_sync(damon_ctx *ctx)
{
	bool changed = false;

	for (size_t i = 0; i < ctx->nr_cgroups; i++)
		changed |= sync_one(ctx, ctx->cgroups[i]);
	return changed;
}

void dm_ctx_cgroup_member_gone(damon_ctx *ctx, damon_target *t, const struct dm_err *why)
{
	if (t->gone)
		return;
	t->gone = true;
	t->cg->nr_left++;
	if (why)
		say(ctx, DAMON_LOG_INFO, "cgroup %s: process %d exited: target %u dropped",
		    t->cg->path, (int)t->pid, t->id);
}

_public_ int damon_cgroup_members(damon_cgroup *cg, damon_target **ret, size_t nr)
{
	damon_ctx *ctx;
	size_t n = 0;

	if (!cg)
		return -EINVAL;
	ctx = cg->ctx;
	CHECK_CTX(ctx);
	if (!ret && nr)
		return dm_ctx_fail(ctx, -EINVAL, "ret is NULL with room for %zu", nr);
	pthread_mutex_lock(&ctx->runner.lock);
	for (size_t i = 0; i < ctx->nr_targets; i++)
		n += ctx->targets[i]->cg == cg && !ctx->targets[i]->gone;
	if (ret && n <= nr) {
		size_t j = 0;

		for (size_t i = 0; i < ctx->nr_targets; i++)
			if (ctx->targets[i]->cg == cg && !ctx->targets[i]->gone)
				ret[j++] = ctx->targets[i];
	}
	pthread_mutex_unlock(&ctx->runner.lock);
	if (ret && n > nr)
		return dm_ctx_fail(ctx, -ERANGE, "the cgroup has %zu members, room for %zu", n, nr);
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* The target of id @id (ids are positions: targets are never removed). */
static const damon_target *target_of(const damon_ctx *ctx, uint32_t id)
{
	if (id < ctx->nr_targets && ctx->targets[id]->id == id)
		return ctx->targets[id];
	for (size_t i = 0; i < ctx->nr_targets; i++)
		if (ctx->targets[i]->id == id)
			return ctx->targets[i];
	return NULL;
}

_public_ int damon_cgroup_summary(damon_cgroup *cg, const damon_snapshot *s,
				  struct damon_cgroup_summary *ret)
{
	struct damon_cgroup_summary sum;
	damon_snapshot *own = NULL;
	double rate = 0; /* bytes x bp: past 64 bits beyond a petabyte */
	damon_ctx *ctx;

	if (!cg)
		return -EINVAL;
	ctx = cg->ctx;
	CHECK_CTX(ctx);
	if (!ret || ret->sz < CG_SUMMARY_MIN_SZ)
		return dm_ctx_fail(ctx, -EINVAL, "ret NULL or ret->sz too small");
	if (!s) {
		own = dm_publisher_get(&ctx->pub);
		if (!own)
			return dm_ctx_fail(ctx, -EAGAIN,
					   "no snapshot yet: the first aggregation "
					   "interval has not ended");
		s = own;
	}
	memset(&sum, 0, sizeof(sum));
	sum.sz = sizeof(sum);
	sum.snapshot_seq = s->info.seq;
	pthread_mutex_lock(&ctx->runner.lock);
	sum.nr_joined = cg->nr_joined;
	sum.nr_left = cg->nr_left;
	for (size_t i = 0; i < ctx->nr_targets; i++)
		sum.nr_members += ctx->targets[i]->cg == cg && !ctx->targets[i]->gone;
	for (uint32_t i = 0; i < s->nr_targets; i++) {
		const struct dm_snap_target *st = &s->targets[i];
		const damon_target *t = target_of(ctx, st->id);

		if (!t || t->cg != cg)
			continue;
		sum.nr_targets += st->nr > 0;
		for (uint32_t j = st->first; j < st->first + st->nr && j < s->nr_regions; j++) {
			const struct dm_snap_region *r = &s->regions[j];
			uint64_t len = r->end - r->start;

			sum.nr_regions++;
			sum.bytes += len;
			if (r->nr_accesses)
				sum.accessed_bytes += len;
			rate += (double)len * r->access_rate_bp;
		}
	}
	pthread_mutex_unlock(&ctx->runner.lock);
	if (sum.bytes)
		sum.access_rate_bp = (uint32_t)(rate / (double)sum.bytes + 0.5);
	dm_snapshot_unref(own);
	return dm_copy_out(ret, &sum, sizeof(sum), CG_SUMMARY_MIN_SZ);
}

_public_ damon_cgroup *damon_target_cgroup(const damon_target *t)
{
	return t ? t->cg : NULL;
}

_public_ int damon_target_idx(const damon_target *t)
{
	if (!t)
		return -EINVAL;
	return (int)t->id;
}

_public_ int damon_target_alive(const damon_target *t)
{
	if (!t)
		return -EINVAL;
	return !t->gone;
}
