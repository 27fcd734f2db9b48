// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The pool's mapping, its free slots and what is resident (pool.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pool.h"

int pool_init(struct pool *p, uint32_t page_sz, uint32_t nslots, uint32_t meta_sz)
{
	long os_page = sysconf(_SC_PAGESIZE);
	size_t data_len, meta_len;

	memset(p, 0, sizeof(*p));
	if (os_page <= 0 || !nslots || page_sz < 512 || (page_sz & (page_sz - 1)) || !meta_sz ||
	    meta_sz % 16)
		return -EINVAL;
	p->os_page = (uint32_t)os_page;
	p->page_sz = page_sz;
	p->meta_sz = meta_sz;
	p->nslots = nslots;
	data_len = (size_t)nslots * page_sz;
	meta_len = ((size_t)nslots * meta_sz + p->os_page - 1) / p->os_page * p->os_page;
	p->len = data_len + meta_len;
	/* Reserved, not committed: only what the cache touches becomes memory. */
	p->base = mmap(NULL, p->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->base == MAP_FAILED) {
		p->base = NULL;
		return -ENOMEM;
	}
	/*
	 * 4 KiB pages only: a transparent huge page would make one released
	 * slot split it, and would count 2 MiB resident for one touched slot.
	 * The default page cache's memory (malloc) gets no such advice, but
	 * its resident size is what it touches all the same.
	 */
	madvise(p->base, p->len, MADV_NOHUGEPAGE);
	p->data = p->base;
	p->meta = p->base + data_len;
	p->nwords = (nslots + 63) / 64;
	p->free_bits = calloc(p->nwords, sizeof(uint64_t));
	p->resident_bits = calloc(p->nwords, sizeof(uint64_t));
	if (!p->free_bits || !p->resident_bits) {
		pool_fini(p);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nslots; i++)
		p->free_bits[i / 64] |= 1ULL << (i % 64);
	p->nfree = nslots;
	return 0;
}

void pool_fini(struct pool *p)
{
	if (p->base)
		munmap(p->base, p->len);
	free(p->free_bits);
	free(p->resident_bits);
	memset(p, 0, sizeof(*p));
}

uint32_t pool_alloc(struct pool *p)
{
	for (size_t w = p->hint; w < p->nwords; w++) {
		uint32_t idx;

		if (!p->free_bits[w])
			continue;
		p->hint = w;
		idx = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(p->free_bits[w]));
		p->free_bits[w] &= ~(1ULL << (idx % 64));
		p->nfree--;
		/* The caller fills it at once (SQLite reads the page into it). */
		if (!(p->resident_bits[w] & (1ULL << (idx % 64)))) {
			p->resident_bits[w] |= 1ULL << (idx % 64);
			p->nresident++;
		}
		return idx;
	}
	p->hint = p->nwords;
	return POOL_NONE;
}

void pool_put(struct pool *p, uint32_t idx)
{
	size_t w = idx / 64;

	p->free_bits[w] |= 1ULL << (idx % 64);
	p->nfree++;
	if (w < p->hint)
		p->hint = w;
}

void pool_put_released(struct pool *p, uint32_t idx)
{
	size_t w = idx / 64;

	if (p->resident_bits[w] & (1ULL << (idx % 64))) {
		p->resident_bits[w] &= ~(1ULL << (idx % 64));
		p->nresident--;
	}
	pool_put(p, idx);
}

bool pool_word_free(const struct pool *p, uint32_t idx)
{
	return p->free_bits[idx / 64] == ~0ULL;
}

int pool_release_data(struct pool *p, uint32_t first, uint32_t n)
{
	/* Slots of a page smaller than the system's share it: only whole
	 * system pages inside the run can go. */
	uintptr_t start = (uintptr_t)pool_data(p, first);
	uintptr_t end = start + (size_t)n * p->page_sz;

	start = (start + p->os_page - 1) / p->os_page * p->os_page;
	end = end / p->os_page * p->os_page;
	if (end <= start)
		return 0;
	return madvise((void *)start, end - start, MADV_DONTNEED) ? -errno : 0;
}

static int measure(const uint8_t *start, size_t len, uint32_t os_page, uint64_t *ret)
{
	unsigned char vec[4096];
	uint64_t n = 0;

	for (size_t off = 0; off < len; off += sizeof(vec) * os_page) {
		size_t chunk =
			len - off < sizeof(vec) * os_page ? len - off : sizeof(vec) * os_page;

		if (mincore((void *)(start + off), chunk, vec))
			return -errno;
		for (size_t i = 0; i < (chunk + os_page - 1) / os_page; i++)
			n += vec[i] & 1;
	}
	*ret = n * os_page;
	return 0;
}

int pool_measure(const struct pool *p, uint64_t *ret_data, uint64_t *ret_meta)
{
	uint64_t d, m;
	int err;

	err = measure(p->data, (size_t)(p->meta - p->data), p->os_page, &d);
	if (!err)
		err = measure(p->meta, p->len - (size_t)(p->meta - p->data), p->os_page, &m);
	if (err)
		return err;
	*ret_data = d;
	*ret_meta = m;
	return 0;
}
