// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "snapshot.h"

/* Relaxed atomic accesses for the latch data: readers may race with the
 * writer by design (the sequence count tells them to retry); these keep the
 * race defined and cost a plain mov on every architecture we build for. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* How often a reader retries before answering -EAGAIN. A publish takes
 * microseconds and happens once per aggregation interval, so two tries
 * almost always suffice; the bound keeps a reader from spinning forever. */
#define HOTNESS_TRIES 64

void dm_snap_region_who_unknown(struct dm_snap_region *r)
{
	r->nr_reads = r->nr_writes = r->write_bp = DAMON_UNKNOWN;
	r->node = -1;
	r->node_bp = r->nr_cpus = DAMON_UNKNOWN;
	r->cpus = 0;
}

struct damon_snapshot *dm_snapshot_new(const struct dm_alloc *a, uint32_t nr_targets,
				       size_t nr_regions)
{
	struct damon_snapshot *s;
	size_t sz = sizeof(*s);

	if (nr_regions > (SIZE_MAX - sz) / sizeof(struct dm_snap_region) / 2)
		return NULL;
	sz += nr_targets * sizeof(struct dm_snap_target) + nr_regions * sizeof(struct dm_snap_region);
	s = dm_calloc(a, 1, sz);
	if (!s)
		return NULL;
	atomic_init(&s->refcnt, 1);
	if (a)
		s->alloc = *a;
	s->nr_targets = nr_targets;
	s->nr_regions = nr_regions;
	/* struct damon_snapshot and both arrays are 8-byte aligned. */
	s->targets = (struct dm_snap_target *)(s + 1);
	s->regions = (struct dm_snap_region *)(s->targets + nr_targets);
	s->info.sz = sizeof(s->info);
	s->info.nr_targets = nr_targets;
	return s;
}

void dm_snapshot_unref(struct damon_snapshot *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) == 1) {
		struct dm_alloc a = s->alloc;

		dm_free(&a, s);
	}
}

int dm_publisher_init(struct dm_publisher *p, const struct dm_alloc *a)
{
	memset(p, 0, sizeof(*p));
	if (a)
		p->alloc = *a;
	atomic_init(&p->latch_seq, 0);
	atomic_init(&p->slot[0], NULL);
	atomic_init(&p->slot[1], NULL);
	return -pthread_mutex_init(&p->lock, NULL);
}

static void slot_free_list(struct dm_publisher *p, struct dm_hot_slot *s)
{
	while (s) {
		struct dm_hot_slot *next = s->retired_next;

		dm_free(&p->alloc, s);
		s = next;
	}
}

void dm_publisher_fini(struct dm_publisher *p)
{
	dm_snapshot_unref(p->newest);
	p->newest = NULL;
	for (int i = 0; i < 2; i++) {
		dm_free(&p->alloc, atomic_load(&p->slot[i]));
		atomic_store(&p->slot[i], NULL);
	}
	slot_free_list(p, p->retired);
	p->retired = NULL;
	pthread_mutex_destroy(&p->lock);
}

static struct dm_hot_slot *slot_new(struct dm_publisher *p, uint32_t nr_targets, size_t nr_regions)
{
	struct dm_hot_slot *s;
	size_t cap_t = nr_targets < 4 ? 4 : nr_targets;
	/* Headroom so that a region count that wobbles does not regrow. */
	size_t cap_r = nr_regions + nr_regions / 2 + 16;

	s = dm_calloc(&p->alloc, 1,
		      sizeof(*s) + cap_t * sizeof(*s->targets) +
			      cap_r * (sizeof(*s->ends) + sizeof(*s->regions) + sizeof(*s->who)));
	if (!s)
		return NULL;
	s->cap_targets = cap_t;
	s->cap_regions = cap_r;
	s->targets = (struct dm_snap_target *)(s + 1);
	s->ends = (uint64_t *)(s->targets + cap_t);
	s->regions = (struct dm_hot_region *)(s->ends + cap_r);
	s->who = (struct dm_hot_who *)(s->regions + cap_r);
	return s;
}

/* Write @src into slot @i, growing it first if needed. The slot is not the
 * one readers are directed to while this runs. */
static int slot_write(struct dm_publisher *p, int i, const struct damon_snapshot *src)
{
	struct dm_hot_slot *s = atomic_load_explicit(&p->slot[i], memory_order_relaxed);

	if (!s || s->cap_regions < src->nr_regions || s->cap_targets < src->nr_targets) {
		struct dm_hot_slot *n = slot_new(p, src->nr_targets, src->nr_regions);

		if (!n)
			return -ENOMEM;
		if (s) {
			/* A slow reader may still be looking at it. */
			s->retired_next = p->retired;
			p->retired = s;
		}
		atomic_store_explicit(&p->slot[i], n, memory_order_release);
		s = n;
	}
	STORE(s->seq, src->info.seq);
	STORE(s->nr_targets, 0);
	STORE(s->nr_regions, 0);
	for (uint32_t t = 0; t < src->nr_targets; t++) {
		STORE(s->targets[t].id, src->targets[t].id);
		STORE(s->targets[t].first, src->targets[t].first);
		STORE(s->targets[t].nr, src->targets[t].nr);
	}
	for (size_t r = 0; r < src->nr_regions; r++) {
		STORE(s->regions[r].start, src->regions[r].start);
		STORE(s->ends[r], src->regions[r].end);
		STORE(s->regions[r].access_rate_bp, src->regions[r].access_rate_bp);
		STORE(s->regions[r].age, src->regions[r].age);
		STORE(s->who[r].nr_accesses, src->regions[r].nr_accesses);
		/* a writes-only backend knows its writes, not their share */
		STORE(s->who[r].nr_writes, src->regions[r].write_bp == DAMON_UNKNOWN
						   ? DAMON_UNKNOWN
						   : src->regions[r].nr_writes);
		STORE(s->who[r].node, src->regions[r].node);
		STORE(s->who[r].node_bp, src->regions[r].node_bp);
		STORE(s->who[r].cpus, src->regions[r].cpus);
		STORE(s->who[r].nr_cpus, src->regions[r].nr_cpus);
	}
	STORE(s->nr_regions, src->nr_regions);
	STORE(s->nr_targets, src->nr_targets);
	return 0;
}

int dm_publisher_publish(struct dm_publisher *p, struct damon_snapshot *s)
{
	struct damon_snapshot *old;
	int err;

	/* Latch: send readers to slot 1, rewrite slot 0, send them back to
	 * slot 0, rewrite slot 1. Each increment is a release so that the slot
	 * contents before it are visible to a reader that sees the count. */
	atomic_fetch_add_explicit(&p->latch_seq, 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	err = slot_write(p, 0, s);
	atomic_fetch_add_explicit(&p->latch_seq, 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (!err)
		err = slot_write(p, 1, s);
	else
		err = -ENOMEM;

	pthread_mutex_lock(&p->lock);
	old = p->newest;
	p->newest = s;
	pthread_mutex_unlock(&p->lock);
	dm_snapshot_unref(old);
	return err;
}

struct damon_snapshot *dm_publisher_get(struct dm_publisher *p)
{
	struct damon_snapshot *s;

	pthread_mutex_lock(&p->lock);
	s = p->newest;
	if (s)
		atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	return s;
}

/* One attempt over one slot; the caller validates the sequence count. */
static int slot_hotness(const struct dm_hot_slot *s, uint32_t target_id, uint64_t addr,
			uint64_t len, struct damon_hotness *h)
{
	uint32_t nr_t = LOAD(s->nr_targets);
	size_t nr_r = LOAD(s->nr_regions), lo, first = 0, nr = 0;
	uint64_t end = addr + len, covered = 0;
	unsigned __int128 weighted = 0;
	uint32_t min_age = UINT32_MAX, max_age = 0;
	uint32_t t;
	/* who: bytes x accesses, of all, of writes, per node (the few nodes
	 * met are kept in a small array: no allocation) */
	uint64_t w_acc = 0, w_wr = 0, w_node[8] = { 0 }, cpus = 0;
	int32_t nodes[8];
	int nr_nodes = 0;
	bool wr_known = true, node_known = true, cpu_known = true;

	/* Bounds come from racing memory: clamp them to what exists. */
	if (nr_t > s->cap_targets)
		nr_t = (uint32_t)s->cap_targets;
	if (nr_r > s->cap_regions)
		nr_r = s->cap_regions;
	if (!nr_t)
		return -EAGAIN;
	if (target_id == UINT32_MAX) {
		t = 0;
	} else {
		for (t = 0; t < nr_t; t++)
			if (LOAD(s->targets[t].id) == target_id)
				break;
		if (t == nr_t)
			return -ENOENT;
	}
	first = LOAD(s->targets[t].first);
	nr = LOAD(s->targets[t].nr);
	if (first > nr_r || nr > nr_r - first)
		return -EAGAIN; /* torn: the caller retries */

	/* First region ending after addr: a branch-free lower bound (the
	 * compiler turns the select into a cmov), since a random address makes
	 * every branch of a classic binary search a coin toss. */
	lo = first;
	if (nr) {
		const uint64_t *e = s->ends;
		size_t n = nr;

		while (n > 1) {
			size_t half = n / 2;

			lo = LOAD(e[lo + half - 1]) <= addr ? lo + half : lo;
			n -= half;
		}
		lo += LOAD(e[lo]) <= addr;
	}
	for (size_t i = lo; i < first + nr; i++) {
		uint64_t rs = LOAD(s->regions[i].start), re = LOAD(s->ends[i]);
		uint64_t os, oe;
		uint32_t age;

		if (rs >= end)
			break;
		os = rs > addr ? rs : addr;
		oe = re < end ? re : end;
		if (oe <= os)
			continue;
		covered += oe - os;
		weighted += (unsigned __int128)(oe - os) * LOAD(s->regions[i].access_rate_bp);
		age = LOAD(s->regions[i].age);
		if (age < min_age)
			min_age = age;
		if (age > max_age)
			max_age = age;
		{
			const struct dm_hot_who *w = &s->who[i];
			uint64_t kb = (oe - os) >> 10, acc = kb * LOAD(w->nr_accesses);
			uint32_t nw = LOAD(w->nr_writes), nbp = LOAD(w->node_bp);
			int32_t node = LOAD(w->node);

			w_acc += acc;
			if (nw == DAMON_UNKNOWN)
				wr_known = false;
			else
				w_wr += kb * nw;
			if (LOAD(w->nr_cpus) == DAMON_UNKNOWN)
				cpu_known = false;
			else
				cpus |= LOAD(w->cpus);
			if (node < 0 && nbp == DAMON_UNKNOWN) {
				node_known = false;
			} else if (node >= 0 && acc) {
				int k = 0;

				while (k < nr_nodes && nodes[k] != node)
					k++;
				if (k == nr_nodes && nr_nodes < 8)
					nodes[nr_nodes++] = node;
				if (k < nr_nodes)
					w_node[k] += acc / 10000 * nbp + acc % 10000 * nbp / 10000;
			}
		}
	}
	if (!covered)
		return -ENOENT;
	/* A 128-bit division is a libgcc call costing more than the rest of
	 * the lookup; below 2^64 (ranges up to 1.8 PB) a plain one does. */
	if (!(uint64_t)(weighted >> 64))
		h->access_rate_bp = (uint32_t)((uint64_t)weighted / covered);
	else
		h->access_rate_bp = (uint32_t)(weighted / covered);
	h->min_age = min_age;
	h->max_age = max_age;
	h->bytes_covered = covered;
	h->snapshot_seq = LOAD(s->seq);
	h->write_bp = !wr_known ? DAMON_UNKNOWN : w_acc ? (uint32_t)(w_wr * 10000 / w_acc) : 0;
	if (h->write_bp != DAMON_UNKNOWN && h->write_bp > 10000)
		h->write_bp = 10000;
	h->node = -1;
	h->node_bp = node_known ? 0 : DAMON_UNKNOWN;
	for (int k = 0; node_known && k < nr_nodes; k++) {
		uint32_t bp = w_acc ? (uint32_t)(w_node[k] * 10000 / w_acc) : 0;

		if (h->node < 0 || bp > h->node_bp) {
			h->node = nodes[k];
			h->node_bp = bp;
		}
	}
	h->cpus = cpu_known ? cpus : 0;
	h->nr_cpus = cpu_known ? (uint32_t)__builtin_popcountll(cpus) : DAMON_UNKNOWN;
	return 0;
}

int dm_publisher_hotness(struct dm_publisher *p, uint32_t target_id, uint64_t addr, uint64_t len,
			 struct damon_hotness *ret)
{
	for (int tries = 0; tries < HOTNESS_TRIES; tries++) {
		unsigned long seq = atomic_load_explicit(&p->latch_seq, memory_order_acquire);
		const struct dm_hot_slot *s =
			atomic_load_explicit(&p->slot[seq & 1], memory_order_acquire);
		struct damon_hotness h;
		int err;

		if (!s)
			return -EAGAIN;
		err = slot_hotness(s, target_id, addr, len, &h);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&p->latch_seq, memory_order_relaxed) != seq)
			continue;
		if (err)
			return err;
		/* Fill no more than the caller's struct holds. */
		ret->access_rate_bp = h.access_rate_bp;
		ret->min_age = h.min_age;
		ret->max_age = h.max_age;
		ret->reserved = 0;
		ret->bytes_covered = h.bytes_covered;
		ret->snapshot_seq = h.snapshot_seq;
		ret->write_bp = h.write_bp;
		ret->node = h.node;
		ret->node_bp = h.node_bp;
		ret->nr_cpus = h.nr_cpus;
		ret->cpus = h.cpus;
		return 0;
	}
	return -EAGAIN;
}
