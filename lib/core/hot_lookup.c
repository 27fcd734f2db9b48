// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Answering hotness from a table (hot_table.h): lock-free, allocation-free
 * and async-signal-safe. Everything read may be rewritten meanwhile:
 * positions are clamped to the table, and the answer is written only once
 * the latch's count says the read was whole.
 */
#include <errno.h>
#include <stdbool.h>

#include "hot_table.h"

/* Relaxed atomic loads: see PUT() in hot_table.c. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Keep @x as computed: stops the compiler from folding two short sums of
 * compares into one long chain of dependent adds. */
#define OPAQUE(x) __asm__("" : "+r"(x))

_Static_assert(DM_HOT_KEYS == 8 && DM_HOT_NODE_KEYS == 16, "rank8() counts eight keys");

/* How many of the eight sorted keys @k are <= @addr: eight independent
 * compares, no branch to mispredict, summed in two halves. */
static inline size_t rank8(const uint64_t *k, uint64_t addr)
{
	size_t a = (size_t)(LOAD(k[0]) <= addr) + (LOAD(k[1]) <= addr) + (LOAD(k[2]) <= addr) +
		   (LOAD(k[3]) <= addr);
	size_t b = (size_t)(LOAD(k[4]) <= addr) + (LOAD(k[5]) <= addr) + (LOAD(k[6]) <= addr) +
		   (LOAD(k[7]) <= addr);

	OPAQUE(a);
	OPAQUE(b);
	return a + b;
}

/* Among the @nr regions of target @tg (at ends[@first...]), the first
 * one ending after @addr: 0..@nr. */
static size_t find(const struct dm_hot_table *t, const struct dm_hot_target *tg, size_t first,
		   size_t nr, uint64_t addr)
{
	uint32_t levels = LOAD(tg->nr_levels);
	size_t j = 0, pos;

	if (addr >= LOAD(tg->hi))
		return nr; /* past every region (or none) */
	if (levels > DM_HOT_MAX_LEVELS)
		levels = DM_HOT_MAX_LEVELS;
	for (uint32_t l = 0; l < levels; l++) {
		size_t node = LOAD(tg->level[l]) + j;

		node = node < t->cap_nodes ? node : t->cap_nodes - 1;
		j = j * DM_HOT_FANOUT + rank8(t->nodes[node].key, addr) +
		    rank8(t->nodes[node].key + DM_HOT_KEYS, addr);
	}
	/* block j, inside the table whatever was read */
	j *= DM_HOT_KEYS;
	pos = first + j;
	pos = pos <= t->cap_keys - DM_HOT_KEYS ? pos : t->cap_keys - DM_HOT_KEYS;
	/* The answer's record is one of the block's: its two lines are
	 * fetched while the block's keys are (a publish rewrites records,
	 * so they are the likeliest to miss). */
	__builtin_prefetch(&t->recs[pos]);
	__builtin_prefetch(&t->recs[pos + DM_HOT_KEYS / 2]);
	pos = j + rank8(&t->ends[pos], addr);
	return pos < nr ? pos : nr;
}

/* The who part of an answer over regions [@lo, @hi) and their rates, the
 * general way: bytes x accesses, of all, of writes and per node (the few
 * nodes met kept in a small array: no allocation). */
static void who_sum(const struct dm_hot_table *t, size_t lo, size_t hi, uint64_t addr, uint64_t end,
		    struct damon_hotness *h)
{
	uint64_t w_acc = 0, w_wr = 0, w_node[8], cpus = 0;
	int32_t nodes[8];
	int nr_nodes = 0;
	bool wr_known = true, node_known = true, cpu_known = true;

	for (size_t i = lo; i < hi; i++) {
		const struct dm_hot_cold *c = &t->cold[i];
		uint64_t rs = LOAD(t->recs[i].start), re = LOAD(t->ends[i]);
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

/* @bytes of one region @r, in a table where no region tells its node or
 * CPUs: what who_sum() gives, without its divisions. kb x writes x 10000 /
 * (kb x accesses) is writes x 10000 / accesses, the record's write_bp, as
 * long as kb x writes x 10000 does not overflow in who_sum() (kb < 2^18:
 * 2^18 x 2^32 x 10000 < 2^64). False: take who_sum(). */
static bool who_one(const struct dm_hot_rec *r, uint64_t bytes, struct damon_hotness *h)
{
	uint64_t kb = bytes >> 10;
	uint32_t wbp = LOAD(r->write_bp);

	if (kb >= 1u << 18)
		return false;
	/* kb 0 weighs no access: none written, unless writes are unknown */
	h->write_bp = wbp == DM_HOT_WBP_UNKNOWN ? DAMON_UNKNOWN : kb ? wbp : 0;
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
	const struct dm_hot_target *tg = t->targets;
	uint32_t nr_t = LOAD(t->nr_targets), has_cold = LOAD(t->has_cold);
	uint32_t min_age = UINT32_MAX, max_age = 0, rate = 0, nr_cover = 0;
	size_t first, nr, i, lo, hi, one = 0;
	uint64_t end = addr + len, covered = 0, seq_now = LOAD(t->seq);
	unsigned __int128 weighted = 0;
	struct damon_hotness h; /* in registers: see the end */
	int err = 0;

	/* Bounds come from racing memory: clamp them to what exists. */
	if (nr_t > t->cap_targets)
		nr_t = (uint32_t)t->cap_targets;
	if (!nr_t) {
		err = -EAGAIN;
		goto out;
	}
	if (target_id != UINT32_MAX) {
		while (tg < t->targets + nr_t && LOAD(tg->id) != target_id)
			tg++;
		if (tg == t->targets + nr_t) {
			err = -ENOENT;
			goto out;
		}
	}
	first = LOAD(tg->first);
	nr = LOAD(tg->nr);
	if (first > t->cap_keys || nr > t->cap_keys - first) {
		err = -EAGAIN; /* torn: the count has moved */
		goto out;
	}
	hi = first + nr;
	i = lo = first + find(t, tg, first, nr, addr);
	if (!has_cold && lo < hi && LOAD(t->recs[lo].start) <= addr && end <= LOAD(t->ends[lo])) {
		/* Inside one region (most questions): its own numbers, as
		 * the loop below would find them. */
		covered = len;
		rate = LOAD(t->recs[lo].rate_bp);
		min_age = max_age = (uint32_t)seq_now - LOAD(t->recs[lo].born);
		nr_cover = 1;
		one = lo;
		i = lo + 1;
	} else {
		for (; i < hi; i++) {
			uint64_t rs = LOAD(t->recs[i].start), re = LOAD(t->ends[i]), os, oe;
			uint32_t age;

			if (rs >= end)
				break;
			os = rs > addr ? rs : addr;
			oe = re < end ? re : end;
			if (oe <= os)
				continue;
			covered += oe - os;
			rate = has_cold ? LOAD(t->cold[i].access_rate_bp)
					: LOAD(t->recs[i].rate_bp);
			weighted += (unsigned __int128)(oe - os) * rate;
			nr_cover++;
			one = i;
			age = (uint32_t)seq_now - LOAD(t->recs[i].born);
			if (age < min_age)
				min_age = age;
			if (age > max_age)
				max_age = age;
			/* Sorted and apart: the next region starts at or
			 * after this end, so stop without reading it. */
			if (re >= end) {
				i++;
				break;
			}
		}
	}
	if (!covered) {
		err = -ENOENT;
		goto out;
	}
	/* One region: its rate, which the division would give. A 128-bit
	 * division is a libgcc call costing more than the rest of the
	 * lookup; below 2^64 (ranges up to 1.8 PB) a plain one does. */
	if (nr_cover == 1)
		h.access_rate_bp = rate;
	else if (!(uint64_t)(weighted >> 64))
		h.access_rate_bp = (uint32_t)((uint64_t)weighted / covered);
	else
		h.access_rate_bp = (uint32_t)(weighted / covered);
	h.min_age = min_age;
	h.max_age = max_age;
	h.bytes_covered = covered;
	h.snapshot_seq = seq_now;
	if (nr_cover != 1 || has_cold || !who_one(&t->recs[one], covered, &h))
		who_sum(t, lo, i, addr, end, &h);
out:
	/* What was read is good only if the table was not rewritten
	 * meanwhile. */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(seq, memory_order_relaxed) != seq0)
		return DM_HOT_TORN;
	if (err)
		return err;
	/* Field by field from registers: a copy of a struct just written
	 * field by field would read it with wider loads, which wait for the
	 * narrow stores (no store-to-load forwarding). */
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
