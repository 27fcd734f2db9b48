/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The context's allocator: the caller's hooks (struct damon_ctx_opts) or
 * malloc/free. Allocators embed libdamon, so every allocation goes through
 * here and none happens on the hotness path.
 */
#ifndef DAMON_UTIL_ALLOC_H
#define DAMON_UTIL_ALLOC_H

#include <stddef.h>

struct dm_alloc {
	void *(*malloc_fn)(size_t size, void *userdata);
	void (*free_fn)(void *ptr, void *userdata);
	void *userdata;
};

void *dm_malloc(const struct dm_alloc *a, size_t size);
void *dm_calloc(const struct dm_alloc *a, size_t nmemb, size_t size);
/* realloc without a realloc hook: allocate, copy @old_size bytes, free. */
void *dm_realloc(const struct dm_alloc *a, void *ptr, size_t old_size, size_t new_size);
void dm_free(const struct dm_alloc *a, void *ptr);

/* An array @v of *@cap elements of @elem bytes, grown (doubling, from 64) to
 * hold at least @need. Return: the array (*@cap updated), or NULL when out of
 * memory (@v and *@cap untouched). */
void *dm_grow(const struct dm_alloc *a, void *v, size_t *cap, size_t need, size_t elem);

/* With fault injection each caller is a call site of its own (fail.h). */
#if defined(DM_FAULT_INJECTION) && !defined(DM_ALLOC_IMPL)
#include "fail.h"
#define dm_malloc(a, size)	  (DM_FAIL(ENOMEM) ? NULL : (dm_malloc)(a, size))
#define dm_calloc(a, nmemb, size) (DM_FAIL(ENOMEM) ? NULL : (dm_calloc)(a, nmemb, size))
#define dm_realloc(a, ptr, old_size, new_size) \
	(DM_FAIL(ENOMEM) ? NULL : (dm_realloc)(a, ptr, old_size, new_size))
#define dm_grow(a, v, cap, need, elem) \
	((need) > *(cap) && DM_FAIL(ENOMEM) ? NULL : (dm_grow)(a, v, cap, need, elem))
#endif

#endif
