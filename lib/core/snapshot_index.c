// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "snapshot_index.h"

/* Relaxed atomic accesses for the table: readers may race with the writer
 * by design (the latch's sequence count tells them to retry); these keep
 * the race defined and cost a plain mov on every architecture we build
 * for. */
#define LOAD(x)	    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

/* Regions of a target are laid out in groups of eight records (256 bytes,
 * four cache lines), the last group padded; the tree's keys lead to a
 * group, and a group is searched like a node, its four lines loaded at
 * once: one dependent miss where leaves of keys and then a record would
 * be two. */
#define GROUP 8

/* Upper bounds for any split of @cap_regions regions among @cap_targets
 * targets. Records: each target's last group adds at most 7 padding.
 * Nodes: a target of n regions has g <= n / 8 + 1 groups; a level of k
 * keys has ceil(k / 8) <= k / 8 + 1 nodes, so its tree has at most
 * g / 7 + levels <= n / 56 + 1 + levels nodes. */
_Static_assert(DM_HOT_FANOUT == 8 && GROUP == 8, "the bounds count nodes of eight");
static size_t recs_bound(size_t cap_regions, size_t cap_targets)
{
	return cap_regions + cap_targets * GROUP;
}

static size_t nodes_bound(size_t cap_regions, size_t cap_targets)
{
	return cap_regions / 56 + cap_targets * (DM_HOT_MAX_LEVELS + 2) + 1;
}

size_t dm_hot_table_size(size_t cap_regions, size_t cap_targets)
{
	if (!cap_targets || cap_targets > UINT32_MAX / 64 ||
	    recs_bound(cap_regions, cap_targets) > UINT32_MAX ||
	    cap_regions > SIZE_MAX / 8 / sizeof(struct dm_hot_rec))
		return 0;
	/* The caller's memory is malloc-aligned: slack to align the nodes. */
	return sizeof(struct dm_hot_node) +
	       cap_targets * (sizeof(struct dm_snap_target) + sizeof(struct dm_hot_tree)) +
	       nodes_bound(cap_regions, cap_targets) * sizeof(struct dm_hot_node) +
	       recs_bound(cap_regions, cap_targets) *
		       (sizeof(struct dm_hot_rec) + sizeof(struct dm_hot_cold));
}

void dm_hot_table_init(struct dm_hot_table *t, void *mem, size_t cap_regions, size_t cap_targets)
{
	uintptr_t p = ALIGN_UP((uintptr_t)mem, sizeof(struct dm_hot_node));

	memset(t, 0, sizeof(*t));
	t->cap_regions = cap_regions;
	t->cap_targets = cap_targets;
	t->cap_recs = recs_bound(cap_regions, cap_targets);
	t->cap_nodes = nodes_bound(cap_regions, cap_targets);
	/* Nodes and groups of records on line boundaries. */
	t->nodes = (struct dm_hot_node *)p;
	p += t->cap_nodes * sizeof(*t->nodes);
	t->recs = (struct dm_hot_rec *)p;
	p += t->cap_recs * sizeof(*t->recs);
	t->cold = (struct dm_hot_cold *)p;
	p += t->cap_recs * sizeof(*t->cold);
	t->trees = (struct dm_hot_tree *)p;
	p += cap_targets * sizeof(*t->trees);
	t->targets = (struct dm_snap_target *)p;
}

int dm_hot_table_fits(const struct dm_hot_table *t, const struct damon_snapshot *s)
{
	return s->nr_regions <= t->cap_regions && s->nr_targets <= t->cap_targets;
}

/* One level: node i's key c is the end of the last region under key c,
 * each key of this level spanning @span regions of @r. */
static void build_level(struct dm_hot_node *nodes, size_t n_nodes, size_t span,
			const struct dm_snap_region *r, size_t nr)
{
	for (size_t i = 0; i < n_nodes; i++) {
		for (size_t c = 0; c < DM_HOT_FANOUT; c++) {
			size_t first = (i * DM_HOT_FANOUT + c) * span;
			size_t last = first + span < nr ? first + span : nr;

			STORE(nodes[i].key[c], first < nr ? r[last - 1].end : UINT64_MAX);
		}
	}
}

/* The tree over the groups of @nr regions @r at nodes[*pos...]; advance
 * *pos. */
static void build_tree(struct dm_hot_table *t, struct dm_hot_tree *tr,
		       const struct dm_snap_region *r, size_t nr, size_t *pos)
{
	size_t n[DM_HOT_MAX_LEVELS + 1], span[DM_HOT_MAX_LEVELS + 1];
	uint32_t levels = 0;

	/* Level sizes, bottom first; n[0] is the groups. */
	n[0] = (nr + GROUP - 1) / GROUP;
	span[0] = GROUP;
	while (n[levels] > 1) {
		n[levels + 1] = (n[levels] + DM_HOT_FANOUT - 1) / DM_HOT_FANOUT;
		span[levels + 1] = span[levels] * DM_HOT_FANOUT;
		levels++;
	}
	/* Stored root first: tr->level[0] is the root. */
	for (uint32_t l = levels; l > 0; l--) {
		STORE(tr->level[levels - l], (uint32_t)*pos);
		build_level(&t->nodes[*pos], n[l], span[l - 1], r, nr);
		*pos += n[l];
	}
	/* Root keys that are not padding: one per child. */
	STORE(tr->root_n, (uint32_t)(levels ? n[levels - 1] : 0));
	STORE(tr->nr_levels, levels);
}

static void write_rec(struct dm_hot_rec *d, struct dm_hot_cold *c, const struct dm_snap_region *src)
{
	/* a writes-only backend knows its writes, not their share */
	uint32_t nw = src->write_bp == DAMON_UNKNOWN ? DAMON_UNKNOWN : src->nr_writes;
	uint64_t wbp = nw == DAMON_UNKNOWN ? DAMON_UNKNOWN
		       : src->nr_accesses  ? (uint64_t)nw * 10000 / src->nr_accesses
					   : 0;

	STORE(d->start, src->start);
	STORE(d->end, src->end);
	STORE(d->access_rate_bp, src->access_rate_bp);
	STORE(d->age, src->age);
	STORE(d->write_bp, (uint32_t)(wbp != DAMON_UNKNOWN && wbp > 10000 ? 10000 : wbp));
	STORE(c->nr_accesses, src->nr_accesses);
	STORE(c->nr_writes, nw);
	STORE(c->node, src->node);
	STORE(c->node_bp, src->node_bp);
	STORE(c->cpus, src->cpus);
	STORE(c->nr_cpus, src->nr_cpus);
}

void dm_hot_table_write(struct dm_hot_table *t, const struct damon_snapshot *s)
{
	static const struct dm_snap_region pad = {.start = UINT64_MAX, .end = UINT64_MAX};
	size_t pos = 0, at = 0;
	uint32_t has_cold = 0;

	STORE(t->seq, s->info.seq);
	STORE(t->nr_targets, 0);
	for (uint32_t i = 0; i < s->nr_targets; i++) {
		const struct dm_snap_target *src = &s->targets[i];
		const struct dm_snap_region *r = &s->regions[src->first];

		STORE(t->targets[i].id, src->id);
		STORE(t->targets[i].first, (uint32_t)at);
		STORE(t->targets[i].nr, src->nr);
		for (size_t k = 0; k < src->nr; k++, at++) {
			write_rec(&t->recs[at], &t->cold[at], &r[k]);
			has_cold |= r[k].node >= 0 || r[k].node_bp != DAMON_UNKNOWN ||
				    r[k].nr_cpus != DAMON_UNKNOWN;
		}
		/* Padding ends at UINT64_MAX: never <= an address. */
		for (; at % GROUP; at++)
			write_rec(&t->recs[at], &t->cold[at], &pad);
		build_tree(t, &t->trees[i], r, src->nr, &pos);
	}
	STORE(t->has_cold, has_cold);
	STORE(t->nr_recs, at);
	STORE(t->nr_targets, s->nr_targets);
}

/* Keep @x as computed: stops the compiler from re-associating sums of
 * compares into one long carry chain (one add per cycle). */
#define OPAQUE(x) __asm__("" : "+r"(x))

/* Sum of four compares, a chain of four. */
#define RANK4(k, i, addr)                                                    \
	((size_t)(LOAD((k)[i]) <= (addr)) + (LOAD((k)[(i) + 1]) <= (addr)) + \
	 (LOAD((k)[(i) + 2]) <= (addr)) + (LOAD((k)[(i) + 3]) <= (addr)))

/* Keys of @n that are <= @addr: the child to descend to. Compares and
 * adds, no branch to mispredict, in chains of four summed at the end. */
static inline size_t node_rank(const struct dm_hot_node *n, uint64_t addr)
{
	size_t c[DM_HOT_FANOUT / 4], sum = 0;

	for (int k = 0; k < DM_HOT_FANOUT / 4; k++) {
		c[k] = RANK4(n->key, 4 * k, addr);
		OPAQUE(c[k]);
	}
	for (int k = 0; k < DM_HOT_FANOUT / 4; k++)
		sum += c[k];
	return sum;
}

/* Regions of the group of records @g ending at or before @addr. */
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

/* Position (0..nr) among the @nr regions of the target whose records start
 * at @first and whose tree is @tr of the first one ending after @addr. */
static size_t tree_find(const struct dm_hot_table *t, const struct dm_hot_tree *tr, size_t first,
			size_t nr, uint64_t addr)
{
	uint32_t levels = LOAD(tr->nr_levels);
	size_t cap = t->cap_nodes, g = 0, node, pos;

	if (levels) {
		if (levels > DM_HOT_MAX_LEVELS)
			levels = DM_HOT_MAX_LEVELS;
		node = LOAD(tr->level[0]);
		node = node < cap ? node : cap - 1;
		g = node_rank(&t->nodes[node], addr);
		/* Past every region: no child to descend to. */
		if (g >= LOAD(tr->root_n))
			return nr;
		for (uint32_t l = 1; l < levels; l++) {
			node = LOAD(tr->level[l]) + g;
			node = node < cap ? node : cap - 1;
			g = g * DM_HOT_FANOUT + node_rank(&t->nodes[node], addr);
		}
	}
	/* The group's records, inside the table whatever was read. */
	g *= GROUP;
	pos = first + g;
	pos = pos <= t->cap_recs - GROUP ? pos : t->cap_recs - GROUP;
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
	uint32_t nr_t = LOAD(t->nr_targets), ti;
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
	if (target_id == UINT32_MAX) {
		ti = 0;
	} else {
		for (ti = 0; ti < nr_t; ti++)
			if (LOAD(t->targets[ti].id) == target_id)
				break;
		if (ti == nr_t) {
			err = -ENOENT;
			goto out;
		}
	}
	first = LOAD(t->targets[ti].first);
	nr = LOAD(t->targets[ti].nr);
	if (first > nr_r || nr > nr_r - first) {
		err = -EAGAIN; /* torn: the sequence count has moved */
		goto out;
	}

	hi = first + nr;
	lo = first + tree_find(t, &t->trees[ti], first, nr, addr);
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
