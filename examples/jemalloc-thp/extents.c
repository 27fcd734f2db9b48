// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The arena's memory, mapped and unmapped by our own jemalloc extent hooks
 * (extent_hooks_t, jemalloc(3) "arena.<i>.extent_hooks"), so that the
 * example knows every byte jemalloc can put an object in: that set is what
 * libdamon monitors. This is the place where a jemalloc fork would call
 * libdamon itself (its extent_alloc/extent_dalloc paths and pages_map /
 * pages_unmap); here the hooks only record, and policy.c hands the set to
 * libdamon from its own thread, because jemalloc calls the hooks with its
 * arena locks held and they must stay short and allocation-free.
 *
 * THP per mode, decided when an extent is mapped: always -> MADV_HUGEPAGE,
 * never and damon -> MADV_NOHUGEPAGE (under THP "always" the kernel would
 * otherwise give huge pages at fault; in damon mode only the schemes give
 * them, to what they found hot).
 *
 * The hooks never split a huge page. jemalloc gives freed memory back by
 * purging or unmapping parts of extents (after its decay time); doing that
 * inside a huge page breaks it into 4 KiB pages, and under churn every huge
 * page is soon broken (measured: THP "always" down from 150 to 8 MiB of a
 * 160 MiB heap within 5 s). So purge, decommit and dalloc refuse a range
 * that a huge page backs, and jemalloc keeps it for reuse, as THP-aware
 * allocators keep huge pages whole (jemalloc's own HPA keeps hugified
 * pageslabs until they empty). The price is memory: freed space inside a
 * huge page stays resident, which is part of the waste THP is known for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <jemalloc/jemalloc.h>

#include "jthp.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Mapped extents kept coalesced: jemalloc grows its memory in a few dozen
 * big mappings, so a fixed table is plenty and never needs malloc (which
 * could re-enter jemalloc from inside a hook). */
#define MAX_RANGES 4096

struct extents {
	extent_hooks_t hooks; /* first: the hooks receive a pointer to it */
	enum thp_mode mode;
	pthread_mutex_t lock;
	struct damon_addr_range r[MAX_RANGES];
	size_t n;
	_Atomic uint64_t gen;
	struct ext_stats st; /* maps, unmaps, failed, mapped_bytes: under lock */
	/* counted without the lock: these hooks touch no shared state */
	_Atomic uint64_t splits, merges, purges, decommits, kept;
	int pagemap_fd; /* -1: cannot tell huge pages, never refuse */
};

static struct extents *of(extent_hooks_t *h)
{
	return (struct extents *)((char *)h - offsetof(struct extents, hooks));
}

/* Does a huge page back any of [addr, addr + len)? */
static bool covers_huge(struct extents *x, void *addr, size_t len)
{
	struct pm_region v;
	struct pm_scan a = {
		.size = sizeof(a),
		.start = (uintptr_t)addr,
		.end = (uintptr_t)addr + len,
		.vec = (uintptr_t)&v,
		.vec_len = 1,
		.max_pages = 1,
		.category_mask = PM_HUGE,
		.return_mask = PM_HUGE,
	};

	if (x->pagemap_fd < 0 || ioctl(x->pagemap_fd, PM_SCAN, &a) <= 0)
		return false;
	atomic_fetch_add_explicit(&x->kept, 1, memory_order_relaxed);
	return true;
}

/* Add [s, e) (not overlapping anything recorded), merging with neighbours. */
static int set_add(struct extents *x, uint64_t s, uint64_t e)
{
	size_t i = 0;

	while (i < x->n && x->r[i].end < s)
		i++;
	if (i < x->n && x->r[i].end == s) {
		x->r[i].end = e;
		if (i + 1 < x->n && x->r[i + 1].start == e) {
			x->r[i].end = x->r[i + 1].end;
			memmove(&x->r[i + 1], &x->r[i + 2], (x->n - i - 2) * sizeof(x->r[0]));
			x->n--;
		}
		return 0;
	}
	if (i < x->n && x->r[i].start == e) {
		x->r[i].start = s;
		return 0;
	}
	if (x->n == MAX_RANGES)
		return -ENOSPC;
	memmove(&x->r[i + 1], &x->r[i], (x->n - i) * sizeof(x->r[0]));
	x->r[i] = (struct damon_addr_range){s, e};
	x->n++;
	return 0;
}

/* Remove [s, e) from the set, cutting the ranges it overlaps. */
static int set_remove(struct extents *x, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < x->n; i++) {
		struct damon_addr_range *r = &x->r[i];

		if (r->end <= s || r->start >= e)
			continue;
		if (r->start < s && r->end > e) { /* a hole in the middle */
			if (x->n == MAX_RANGES)
				return -ENOSPC;
			memmove(&x->r[i + 1], &x->r[i], (x->n - i) * sizeof(x->r[0]));
			x->n++;
			x->r[i].end = s;
			x->r[i + 1].start = e;
			return 0;
		}
		if (r->start < s) {
			r->end = s;
		} else if (r->end > e) {
			r->start = e;
		} else {
			memmove(r, r + 1, (x->n - i - 1) * sizeof(x->r[0]));
			x->n--;
			i--;
		}
	}
	return 0;
}

/* @size bytes at a multiple of @align: over-map, then trim both ends. */
static void *map_aligned(size_t size, size_t align)
{
	size_t len = size + align - PAGE_SZ, head;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	head = (size_t)(-(uintptr_t)p & (align - 1));
	if (head)
		munmap(p, head);
	if (len - head > size)
		munmap(p + head + size, len - head - size);
	return p + head;
}

static void *ext_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment, bool *zero,
		       bool *commit, unsigned arena_ind)
{
	struct extents *x = of(h);
	size_t align = alignment < PAGE_SZ ? PAGE_SZ : alignment;
	void *p;
	int err;

	/* Huge pages form only on 2 MiB-aligned memory. */
	if (size >= HPAGE_SZ && align < HPAGE_SZ)
		align = HPAGE_SZ;
	if (new_addr) {
		/* jemalloc extends an extent in place: there or nowhere */
		p = mmap(new_addr, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		if (p != new_addr) {
			munmap(p, size);
			return NULL;
		}
	} else {
		p = map_aligned(size, align);
		if (!p)
			return NULL;
	}
	madvise(p, size, x->mode == THP_ALWAYS ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	pthread_mutex_lock(&x->lock);
	err = set_add(x, (uintptr_t)p, (uintptr_t)p + size);
	if (!err) {
		x->st.maps++;
		x->st.mapped_bytes += size;
		atomic_fetch_add(&x->gen, 1);
	} else {
		x->st.failed++;
	}
	pthread_mutex_unlock(&x->lock);
	if (err) {
		munmap(p, size);
		return NULL;
	}
	*zero = true; /* fresh anonymous memory */
	*commit = true;
	return p;
}

static bool unmap(struct extents *x, void *addr, size_t size)
{
	if (munmap(addr, size))
		return true; /* keep it: jemalloc retains what it cannot give back */
	pthread_mutex_lock(&x->lock);
	if (set_remove(x, (uintptr_t)addr, (uintptr_t)addr + size))
		x->st.failed++;
	x->st.unmaps++;
	x->st.mapped_bytes -= size;
	atomic_fetch_add(&x->gen, 1);
	pthread_mutex_unlock(&x->lock);
	return false;
}

/*
 * Unmap only extents of 2 MiB or more. Unmapping every freed 40 KiB object
 * would riddle the heap's address space with holes (why jemalloc retains
 * virtual memory on 64-bit Linux, opt.retain), and the monitored set with
 * it: hundreds of tiny ranges, none a 2 MiB page could cover. A smaller
 * extent is refused: jemalloc decommits or purges it and keeps it.
 */
static bool ext_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
		       unsigned arena_ind)
{
	if (size < HPAGE_SZ || covers_huge(of(h), addr, size))
		return true; /* retained: jemalloc reuses it later */
	return unmap(of(h), addr, size);
}

static void ext_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
			unsigned arena_ind)
{
	unmap(of(h), addr, size);
}

/* The mapping stays readable and writable throughout: a decommitted range
 * is only emptied (it reads as zeros again), so committing it is free. */
static bool ext_commit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
		       unsigned arena_ind)
{
	return false;
}

static bool ext_decommit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
			 unsigned arena_ind)
{
	struct extents *x = of(h);

	if (covers_huge(x, (char *)addr + offset, length) ||
	    madvise((char *)addr + offset, length, MADV_DONTNEED))
		return true;
	atomic_fetch_add_explicit(&x->decommits, 1, memory_order_relaxed);
	return false;
}

static bool purge(extent_hooks_t *h, void *addr, size_t offset, size_t length, int advice)
{
	struct extents *x = of(h);

	if (covers_huge(x, (char *)addr + offset, length) ||
	    madvise((char *)addr + offset, length, advice))
		return true;
	atomic_fetch_add_explicit(&x->purges, 1, memory_order_relaxed);
	return false;
}

static bool ext_purge_lazy(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
			   unsigned arena_ind)
{
	return purge(h, addr, offset, length, MADV_FREE);
}

static bool ext_purge_forced(extent_hooks_t *h, void *addr, size_t size, size_t offset,
			     size_t length, unsigned arena_ind)
{
	return purge(h, addr, offset, length, MADV_DONTNEED);
}

/* Splitting and merging change nothing of the mapped set: the set is kept
 * by address, coalesced, whatever jemalloc's extents are made of. */
static bool ext_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a, size_t size_b,
		      bool committed, unsigned arena_ind)
{
	atomic_fetch_add_explicit(&of(h)->splits, 1, memory_order_relaxed);
	return false;
}

static bool ext_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b,
		      bool committed, unsigned arena_ind)
{
	atomic_fetch_add_explicit(&of(h)->merges, 1, memory_order_relaxed);
	return false;
}

int ext_create(struct extents **ret, enum thp_mode mode, unsigned int *ret_arena)
{
	struct extents *x;
	extent_hooks_t *hp;
	unsigned int arena;
	size_t sz = sizeof(arena);
	ssize_t decay_ms = 1000;
	char name[64];
	int err;

	/* Not from malloc: the hooks must outlive the arena, i.e. the process. */
	x = mmap(NULL, sizeof(*x), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (x == MAP_FAILED)
		return -errno;
	x->hooks = (extent_hooks_t){
		.alloc = ext_alloc,
		.dalloc = ext_dalloc,
		.destroy = ext_destroy,
		.commit = ext_commit,
		.decommit = ext_decommit,
		.purge_lazy = ext_purge_lazy,
		.purge_forced = ext_purge_forced,
		.split = ext_split,
		.merge = ext_merge,
	};
	x->mode = mode;
	x->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	pthread_mutex_init(&x->lock, NULL);
	hp = &x->hooks;
	err = mallctl("arenas.create", &arena, &sz, &hp, sizeof(hp));
	if (err)
		return -err;
	/* Unused dirty pages go back after 1 s instead of 10 s: extents are
	 * then unmapped (and the monitored set shrinks) within a short run. */
	snprintf(name, sizeof(name), "arena.%u.dirty_decay_ms", arena);
	mallctl(name, NULL, NULL, &decay_ms, sizeof(decay_ms));
	*ret = x;
	*ret_arena = arena;
	return 0;
}

uint64_t ext_generation(struct extents *x)
{
	return atomic_load(&x->gen);
}

int ext_ranges(struct extents *x, struct damon_addr_range *v, size_t cap, uint64_t *ret_gen)
{
	int n;

	pthread_mutex_lock(&x->lock);
	if (x->n > cap) {
		n = -ENOSPC;
	} else {
		memcpy(v, x->r, x->n * sizeof(*v));
		n = (int)x->n;
		if (ret_gen)
			*ret_gen = atomic_load(&x->gen);
	}
	pthread_mutex_unlock(&x->lock);
	return n;
}

void ext_get_stats(struct extents *x, struct ext_stats *ret)
{
	pthread_mutex_lock(&x->lock);
	*ret = x->st;
	pthread_mutex_unlock(&x->lock);
	ret->splits = atomic_load(&x->splits);
	ret->merges = atomic_load(&x->merges);
	ret->purges = atomic_load(&x->purges);
	ret->decommits = atomic_load(&x->decommits);
	ret->kept = atomic_load(&x->kept);
}
