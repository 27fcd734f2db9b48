// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The pool: one anonymous mapping holding every page the cache keeps.
 *
 *   [ data: nslots x page_sz ][ meta: nslots x meta_sz ]
 *
 * Slot i is the page buffer at data + i * page_sz plus its metadata (the
 * module's header and SQLite's "extra" bytes) at meta + i * meta_sz. Page
 * buffers are packed and page aligned so that a slot's buffer can be given
 * back to the kernel alone (MADV_DONTNEED) and so that a DAMON region over
 * the data part maps to a run of slots by plain arithmetic. Metadata is
 * small (a few percent of the data), touched by SQLite on every fetch, and
 * stays resident: only the data part is monitored and released.
 *
 * Free slots are handed out lowest address first: pages loaded early end up
 * packed at the bottom of the pool (a page fetched often is very likely to
 * be among the first loaded), and the slots that are released and reused
 * churn above them. Addresses then follow temperature,
 * which is what DAMON's regions need to tell hot from cold.
 *
 * Not thread-safe: the page cache module serialises every call under its
 * lock, except pool_release_data(), which only calls madvise() on slots the
 * caller took out of use.
 */
#ifndef SQLITE_PCACHE_POOL_H
#define SQLITE_PCACHE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_NONE UINT32_MAX

struct pool {
	uint8_t *base; /* the one mapping */
	size_t len;
	uint8_t *data, *meta;
	uint32_t nslots, page_sz, meta_sz, os_page;
	uint64_t *free_bits;	 /* 1 = free */
	uint64_t *resident_bits; /* 1 = its data may be resident */
	size_t nwords, hint;	 /* no free slot in a word below hint */
	uint32_t nfree, nresident;
};

/* Map the pool; -errno (-EINVAL: bad geometry, -ENOMEM). */
int pool_init(struct pool *p, uint32_t page_sz, uint32_t nslots, uint32_t meta_sz);
void pool_fini(struct pool *p);

/* The lowest free slot, now in use and counted resident; POOL_NONE if none. */
uint32_t pool_alloc(struct pool *p);
/* Back to the free set; its data stays resident until released. */
void pool_put(struct pool *p, uint32_t idx);
/* Back to the free set after pool_release_data(): no longer resident. */
void pool_put_released(struct pool *p, uint32_t idx);
/* True if the 64 slots of the bitmap word holding @idx are all free. */
bool pool_word_free(const struct pool *p, uint32_t idx);

/* MADV_DONTNEED on the data of slots [first, first + n): their memory goes
 * back to the kernel, the next touch reads zeros. Needs no lock: the caller
 * owns these slots. 0 or -errno. */
int pool_release_data(struct pool *p, uint32_t first, uint32_t n);

static inline void *pool_data(const struct pool *p, uint32_t idx)
{
	return p->data + (size_t)idx * p->page_sz;
}

static inline void *pool_meta(const struct pool *p, uint32_t idx)
{
	return p->meta + (size_t)idx * p->meta_sz;
}

static inline uint32_t pool_meta_index(const struct pool *p, const void *meta)
{
	return (uint32_t)(((const uint8_t *)meta - p->meta) / p->meta_sz);
}

/* What mincore() says is resident, in bytes, of the data and meta parts. */
int pool_measure(const struct pool *p, uint64_t *ret_data, uint64_t *ret_meta);

#endif
