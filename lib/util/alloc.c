// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The functions themselves: no call site hook around them (alloc.h). */
#define DM_ALLOC_IMPL
#include "alloc.h"

void *dm_malloc(const struct dm_alloc *a, size_t size)
{
	if (a && a->malloc_fn)
		return a->malloc_fn(size ? size : 1, a->userdata);
	return malloc(size ? size : 1);
}

void *dm_calloc(const struct dm_alloc *a, size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = dm_malloc(a, nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

void *dm_realloc(const struct dm_alloc *a, void *ptr, size_t old_size, size_t new_size)
{
	void *p;

	if (!a || !a->malloc_fn)
		return realloc(ptr, new_size ? new_size : 1);
	p = dm_malloc(a, new_size);
	if (!p)
		return NULL;
	if (ptr) {
		memcpy(p, ptr, old_size < new_size ? old_size : new_size);
		dm_free(a, ptr);
	}
	return p;
}

void dm_free(const struct dm_alloc *a, void *ptr)
{
	if (!ptr)
		return;
	if (a && a->free_fn)
		a->free_fn(ptr, a->userdata);
	else
		free(ptr);
}

void *dm_grow(const struct dm_alloc *a, void *v, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *nv;

	if (need <= *cap)
		return v;
	ncap = *cap ? *cap : 64;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elem)
			return NULL;
		ncap *= 2;
	}
	nv = dm_realloc(a, v, *cap * elem, ncap * elem);
	if (!nv)
		return NULL;
	*cap = ncap;
	return nv;
}
