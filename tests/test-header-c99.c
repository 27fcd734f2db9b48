// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * <damon/damon.h> compiles alone as strict C99 (-std=c99 -pedantic -Werror):
 * it is the first and only include. The program uses a little of it so that
 * the macros and prototypes are really parsed.
 */
#include <damon/damon.h>

int main(void)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_VADDR);
	DAMOS_OPTS(s, .action = DAMOS_STAT);
	struct damon_region r = {sizeof(struct damon_region), 0, 0, 0, 0, 0, 0};
	damon_ctx *ctx = 0;
	int err;

	(void)r;
	(void)s;
	if (damon_version() != DAMON_VERSION_NUMBER)
		return 1;
	err = damon_ctx_new(&ctx, &o);
	if (err)
		return 1;
	damon_ctx_unref(ctx);
	if (damon_backend_from_name(damon_backend_name(DAMON_BACKEND_UFFD_WP)) !=
	    DAMON_BACKEND_UFFD_WP)
		return 1;
	return 0;
}
