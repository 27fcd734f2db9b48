// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * What every entry point uses: fork detection, the calling thread's error
 * sentence (damon_ctx_errmsg()), and the checks of option and output
 * structs that say their own size.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

bool dm_ctx_forked(const damon_ctx *ctx)
{
	if (ctx->canary)
		return *ctx->canary != DM_CANARY_MAGIC;
	return getpid() != ctx->owner_pid;
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static struct dm_errslot *errslot(damon_ctx *ctx, pid_t tid)
{
	for (unsigned int i = 0; i < DM_ERRSLOTS; i++)
		if (ctx->errslots[i].tid == tid)
			return &ctx->errslots[i];
	return NULL;
}

static void set_msg(const damon_ctx *cctx, const char *msg)
{
	/* The error slots are bookkeeping, not state the caller sees change:
	 * errmsg reporting works on const contexts too. */
	damon_ctx *ctx = (damon_ctx *)cctx;
	pid_t tid = gettid_();
	struct dm_errslot *s;

	pthread_mutex_lock(&ctx->errlock);
	s = errslot(ctx, tid);
	if (!s) {
		s = &ctx->errslots[ctx->errnext++ % DM_ERRSLOTS];
		s->tid = tid;
	}
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	pthread_mutex_unlock(&ctx->errlock);
}

int dm_ctx_fail(const damon_ctx *ctx, int code, const char *fmt, ...)
{
	char msg[DM_CTX_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_msg(ctx, msg);
	return code;
}

int dm_ctx_fail_err(const damon_ctx *ctx, const struct dm_err *err)
{
	set_msg(ctx, err->msg[0] ? err->msg : strerror(-err->code));
	return err->code;
}

int dm_copy_out(void *dst, const void *src, size_t src_sz, size_t min_sz)
{
	size_t dst_sz;

	if (!dst)
		return -EINVAL;
	memcpy(&dst_sz, dst, sizeof(dst_sz));
	if (dst_sz < min_sz)
		return -EINVAL;
	/* Fill no more than the caller's struct holds; keep its sz. */
	memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t),
	       (dst_sz < src_sz ? dst_sz : src_sz) - sizeof(size_t));
	return 0;
}

bool dm_opts_ok(const void *opts, size_t user_sz, size_t known_sz)
{
	const unsigned char *p = opts;

	for (size_t i = known_sz; i < user_sz; i++)
		if (p[i])
			return false;
	return true;
}

_public_ const char *damon_ctx_errmsg(const damon_ctx *cctx)
{
	/* The answer is copied out of the context's slot into storage of the
	 * calling thread, so another thread's failure (which may reuse the
	 * slot when more than DM_ERRSLOTS threads fail on one context) can
	 * never change a string this thread is reading. */
	static __thread char copy[DM_CTX_ERRMSG_MAX];
	damon_ctx *ctx = (damon_ctx *)cctx;
	struct dm_errslot *s;

	if (!ctx)
		return "no context";
	pthread_mutex_lock(&ctx->errlock);
	s = errslot(ctx, gettid_());
	memcpy(copy, s ? s->msg : "", s ? sizeof(copy) : 1);
	pthread_mutex_unlock(&ctx->errlock);
	return copy;
}
