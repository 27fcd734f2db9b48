// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * <damon/damon.h> compiles alone as C++11 (-std=c++11 -pedantic -Werror):
 * it is the first and only include, and its functions link with C linkage.
 */
#include <damon/damon.h>

int main()
{
	struct damon_ctx_opts o = {};
	struct damos_opts s = {};
	damon_ctx *ctx = nullptr;

	o.sz = sizeof(o);
	o.ops = DAMON_OPS_VADDR;
	if (damos_opts_init(&s) != 0 || s.max_age != UINT32_MAX)
		return 1;
	if (damon_version() != DAMON_VERSION_NUMBER)
		return 1;
	if (damon_ctx_new(&ctx, &o) != 0)
		return 1;
	ctx = damon_ctx_unref(ctx);
	return ctx == nullptr ? 0 : 1;
}
