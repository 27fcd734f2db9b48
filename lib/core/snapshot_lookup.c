// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Answering hotness from a table (snapshot_index.h): lock-free,
 * allocation-free and async-signal-safe, in some 50 ns. Everything read
 * may be rewritten meanwhile: positions are clamped to the table, and the
 * answer is written only once the latch's count says the read was whole.
 */
#include <errno.h>
#include <stdbool.h>

#include "snapshot_index.h"

/* Relaxed atomic loads: see STORE() in snapshot_index.c. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Keep @x as computed: stops the compiler from re-associating sums of
 * compares into one long carry chain (one add per cycle). */
#define OPAQUE(x) __asm__("" : "+r"(x))

/* Keys of @n that are <= @addr: the child to descend to. Eight compares
 * and adds, no branch to mispredict, in two chains summed at the end. */
static inline size_t node_rank(const struct dm_hot_node *n, uint64_t addr)
{
	size_t a = (size_t)(LOAD(n->key[0]) <= addr) + (LOAD(n->key[1]) <= addr) +
		   (LOAD(n->key[2]) <= addr) + (LOAD(n->key[3]) <= addr);
	size_t b = (size_t)(LOAD(n->key[4]) <= addr) + (LOAD(n->key[5]) <= addr) +
		   (LOAD(n->key[6]) <= addr) + (LOAD(n->key[7]) <= addr);

	OPAQUE(a);
	OPAQUE(b);
	return a + b;
}

/* Regions of the group of records @g ending at or before @addr: the same
 * over the ends of four cache lines, loaded at once. */
static inline size_t group_rank(const struct dm_hot_rec *g, uint64_t addr)
{
	size_t a = (size_t)(LOAD(g[0].end) <= addr) + (LOAD(g[1].end) <= addr) +
		   (LOAD(g[2].end) <= addr) + (LOAD(g[3].end) <= addr);
	size_t b = (size_t)(LOAD(g[4].end) <= addr) + (LOAD(g[5].end) <= addr) +
		   (LOAD(g[6].end) <= addr) + (LOAD(g[7].end) <= addr);

	OPAQUE(a);
	OPAQUE(b);
	return a + b;
}

_Static_assert(DM_HOT_FANOUT == 8 && DM_HOT_GROUP == 8, "the ranks count eight");
_Static_assert(DM_HOT_SEGS == 4, "the segment is found among four");

/* Where in target @tg's tree the answer for @addr lies: the bucket's
 * start (the root when the target has no buckets). */
static inline uint32_t bucket_of(const struct dm_hot_table *t, const struct dm_hot_target *tg,
				 uint64_t addr)
{
	size_t s = (size_t)(addr >= LOAD(tg->seg_lo[1])) + (addr >= LOAD(tg->seg_lo[2])) +
		   (addr >= LOAD(tg->seg_lo[3]));
	uint64_t lo = LOAD(tg->seg_lo[s]), n = 1ULL << (LOAD(tg->seg_bits[s]) & 31);
	/* below the first segment: its first bucket */
	uint64_t b = (addr >= lo ? addr - lo : 0) >> (LOAD(tg->seg_shift[s]) & 63);
	size_t i = LOAD(tg->seg_bucket[s]) + (b < n ? b : n);

	return LOAD(t->buckets[i < t->cap_buckets ? i : t->cap_buckets - 1]);
}

/* Position (0..nr) among the @nr regions of target @tg, whose records
 * start at @first, of the first one ending after @addr. */
static size_t tree_find(const struct dm_hot_table *t, const struct dm_hot_target *tg, size_t first,
			size_t nr, uint64_t addr)
{
	uint32_t levels = LOAD(tg->nr_levels), l = 0;
	size_t cap = t->cap_nodes, g = 0, node, pos;

	/* Past every region (and no region): nothing to find. */
	if (addr >= LOAD(tg->hi))
		return nr;
	if (levels) {
		uint32_t e = bucket_of(t, tg, addr);

		if (levels > DM_HOT_MAX_LEVELS)
			levels = DM_HOT_MAX_LEVELS;
		l = e >> DM_HOT_BUCKET_LEVEL;
		g = e & DM_HOT_BUCKET_REL;
		for (; l < levels; l++) {
			node = LOAD(tg->level[l]) + g;
			node = node < cap ? node : cap - 1;
			g = g * DM_HOT_FANOUT + node_rank(&t->nodes[node], addr);
		}
	}
	/* The group's records, inside the table whatever was read. */
	g *= DM_HOT_GROUP;
	pos = first + g;
	pos = pos <= t->cap_recs - DM_HOT_GROUP ? pos : t->cap_recs - DM_HOT_GROUP;
	pos = g + group_rank(&t->recs[pos], addr);
	return pos < nr ? pos : nr;
}

/* The "who" part of an answer, summed over the covering regions [lo, hi)
 * the general way: bytes x accesses, of all, of writes and per node (the
 * few nodes met kept in a small array: no allocation). */
static void who_sum(const struct dm_hot_table *t, size_t lo, size_t hi, uint64_t addr, uint64_t end,
		    struct damon_hotness *h)
{
	uint64_t w_acc = 0, w_wr = 0, w_node[8], cpus = 0;
	int32_t nodes[8];
	int nr_nodes = 0;
	bool wr_known = true, node_known = true, cpu_known = true;

	for (size_t i = lo; i < hi; i++) {
		const struct dm_hot_rec *r = &t->recs[i];
		const struct dm_hot_cold *c = &t->cold[i];
		uint64_t rs = LOAD(r->start), re = LOAD(r->end);
		uint64_t os = rs > addr ? rs : addr, oe = re < end ? re : end, kb, acc;
		uint32_t nw, nbp;
		int32_t node;

		if (oe <= os)
			continue;
		kb = (oe - os) >> 10;
		acc = kb * LOAD(c->nr_accesses);
		nw = LOAD(c->nr_writes);
		nbp = LOAD(c->node_bp);
		node = LOAD(c->node);
		w_acc += acc;
		if (nw == DAMON_UNKNOWN)
			wr_known = false;
		else
			w_wr += kb * nw;
		if (LOAD(c->nr_cpus) == DAMON_UNKNOWN)
			cpu_known = false;
		else
			cpus |= LOAD(c->cpus);
		if (node < 0 && nbp == DAMON_UNKNOWN) {
			node_known = false;
		} else if (node >= 0 && acc) {
			int k = 0;

			while (k < nr_nodes && nodes[k] != node)
				k++;
			if (k == nr_nodes && nr_nodes < 8) {
				w_node[k] = 0;
				nodes[nr_nodes++] = node;
			}
			if (k < nr_nodes)
				w_node[k] += acc / 10000 * nbp + acc % 10000 * nbp / 10000;
		}
	}
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
}

/* Most questions: @bytes of one region @r, in a table where no region
 * tells node or CPUs. The same numbers as who_sum() without its divisions:
 * kb x writes x 10000 / (kb x accesses) is writes x 10000 / accesses, the
 * region's write_bp, while kb x writes x 10000 cannot overflow (kb < 2^18:
 * 2^18 x 2^32 x 10000 < 2^64). */
static bool who_one(const struct dm_hot_rec *r, uint64_t bytes, struct damon_hotness *h)
{
	uint64_t kb = bytes >> 10;
	uint32_t wbp = LOAD(r->write_bp);

	if (kb >= 1u << 18)
		return false;
	/* kb 0 weighs no access: 0 written, unless writes are unknown */
	h->write_bp = wbp == DAMON_UNKNOWN || kb ? wbp : 0;
	h->node = -1;
	h->node_bp = DAMON_UNKNOWN;
	h->cpus = 0;
	h->nr_cpus = DAMON_UNKNOWN;
	return true;
}

int dm_hot_table_answer(const struct dm_hot_table *t, uint32_t target_id, uint64_t addr,
			uint64_t len, const atomic_ulong *seq, unsigned long seq0,
			struct damon_hotness *ret)
{
	const struct dm_hot_target *tg;
	uint32_t nr_t = LOAD(t->nr_targets);
	size_t nr_r = LOAD(t->nr_recs), first, nr, i, lo, hi, one = 0;
	uint64_t end = addr + len, covered = 0;
	unsigned __int128 weighted = 0;
	uint32_t min_age = UINT32_MAX, max_age = 0, rate = 0, nr_cover = 0;
	struct damon_hotness h; /* in registers: see the end */
	int err = 0;

	/* Bounds come from racing memory: clamp them to what exists. */
	if (nr_r > t->cap_recs)
		nr_r = t->cap_recs;
	if (nr_t > t->cap_targets)
		nr_t = (uint32_t)t->cap_targets;
	if (!nr_t) {
		err = -EAGAIN;
		goto out;
	}
	tg = dm_hot_targets(t);
	if (target_id != UINT32_MAX) {
		while (tg < dm_hot_targets(t) + nr_t && LOAD(tg->id) != target_id)
			tg++;
		if (tg == dm_hot_targets(t) + nr_t) {
			err = -ENOENT;
			goto out;
		}
	}
	first = LOAD(tg->first);
	nr = LOAD(tg->nr);
	if (first > nr_r || nr > nr_r - first) {
		err = -EAGAIN; /* torn: the sequence count has moved */
		goto out;
	}

	hi = first + nr;
	lo = first + tree_find(t, tg, first, nr, addr);
	for (i = lo; i < hi; i++) {
		const struct dm_hot_rec *r = &t->recs[i];
		uint64_t rs = LOAD(r->start), re = LOAD(r->end), os, oe;
		uint32_t age;

		if (rs >= end)
			break;
		os = rs > addr ? rs : addr;
		oe = re < end ? re : end;
		if (oe <= os)
			continue;
		covered += oe - os;
		rate = LOAD(r->access_rate_bp);
		weighted += (unsigned __int128)(oe - os) * rate;
		nr_cover++;
		one = i;
		age = LOAD(r->age);
		if (age < min_age)
			min_age = age;
		if (age > max_age)
			max_age = age;
		/* Regions are sorted and apart: the next one starts at or
		 * after this end, so stop without reading it. */
		if (re >= end) {
			i++;
			break;
		}
	}
	if (!covered) {
		err = -ENOENT;
		goto out;
	}
	/* One region (most questions): its rate, exactly what the division
	 * would give. A 128-bit division is a libgcc call costing more than
	 * the rest of the lookup; below 2^64 (ranges up to 1.8 PB) a plain
	 * one does. */
	if (nr_cover == 1)
		h.access_rate_bp = rate;
	else if (!(uint64_t)(weighted >> 64))
		h.access_rate_bp = (uint32_t)((uint64_t)weighted / covered);
	else
		h.access_rate_bp = (uint32_t)(weighted / covered);
	h.min_age = min_age;
	h.max_age = max_age;
	h.bytes_covered = covered;
	h.snapshot_seq = LOAD(t->seq);
	if (nr_cover != 1 || LOAD(t->has_cold) || !who_one(&t->recs[one], covered, &h))
		who_sum(t, lo, i, addr, end, &h);
out:
	/* Whatever was read is good only if the table was not rewritten
	 * meanwhile. */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(seq, memory_order_relaxed) != seq0)
		return DM_HOT_TORN;
	if (err)
		return err;
	/* Field by field from registers: copying a struct just written
	 * field by field reads it with wider loads, which stall waiting for
	 * the narrow stores (no store-to-load forwarding). */
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
