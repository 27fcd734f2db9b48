/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Fault injection, for tests only (meson -Dfault_injection=true; see
 * doc/fault-injection.md). Every allocation and every system call of the
 * library that can fail is written
 *
 *	fd = DM_FAIL(EACCES) ? -1 : open(path, ...);
 *
 * so that a test can make exactly that call site fail once, with the errno
 * given there (or one of its choosing), and see that the library says so and
 * unwinds. In a release build DM_FAIL() is the constant 0: the compiler drops
 * the branch, and no symbol, section or string of this file is left.
 */
#ifndef DAMON_UTIL_FAIL_H
#define DAMON_UTIL_FAIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef DM_FAULT_INJECTION

/* One call site. They all sit in the section "dm_fail_sites", so that a test
 * can list every site built in, reached or not. */
struct dm_fail_site {
	unsigned long magic; /* DM_FAIL_MAGIC: the section holds sites only */
	const char *file;
	int line;
	int err;	     /* what the call sets errno (or returns) to on failure */
	unsigned long hits;  /* calls made through the site since dm_fail_reset() */
	unsigned long fired; /* failures injected there */
};

#define DM_FAIL_MAGIC 0x64616d6f6e666c74UL

/* Does the call at @s fail now? Then errno is set to its error. */
bool dm_fail_hit(struct dm_fail_site *s);

#define DM_FAIL(e)                                                                      \
	__extension__({                                                                 \
		static struct dm_fail_site dm_fail_site_                                \
			__attribute__((section("dm_fail_sites"), used, aligned(8))) = { \
				DM_FAIL_MAGIC, __FILE__, __LINE__, (e), 0, 0};          \
		dm_fail_hit(&dm_fail_site_);                                            \
	})

/* Test control. Not thread-safe against each other; dm_fail_hit() is. */

/* Every site built in: *@ret points at the first of the returned number. */
size_t dm_fail_sites(struct dm_fail_site **ret);
/* Zero every hit and fired count and disarm. */
void dm_fail_reset(void);
/* Make the next call through @s fail, once, with @err (0: the site's own). */
void dm_fail_arm(struct dm_fail_site *s, int err);

#else

#define DM_FAIL(e) 0

#endif

#endif
