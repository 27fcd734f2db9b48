// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Building the hotness table (hot_table.h) when a snapshot is published:
 * blocks of ends, records and the search trees over the blocks. Runs on
 * the publishing thread while readers may read the same memory (they
 * retry).
 */
#include <string.h>

#include "hot_table.h"
#include "snapshot.h"

/* Store @v into @x unless @x holds it already: a line that does not change
 * stays valid in the readers' caches. Relaxed atomics: readers race with
 * the writer by design (the latch's count tells them to retry). */
#define PUT(x, v)                                                     \
	do {                                                          \
		__typeof__(x) v_ = (v);                               \
		if (__atomic_load_n(&(x), __ATOMIC_RELAXED) != v_)    \
			__atomic_store_n(&(x), v_, __ATOMIC_RELAXED); \
	} while (0)

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

_Static_assert(sizeof(struct dm_hot_target) == 64, "a target is one cache line");
_Static_assert(sizeof(struct dm_hot_node) == 128, "a node is two cache lines");
_Static_assert(sizeof(struct dm_hot_rec) == 16, "four records to a cache line");

/* The node levels over @blocks blocks; @n[l] nodes at level l, root
 * first. A tree of L levels reaches 17^L blocks; 17^8 > 2^32 / 8. */
static uint32_t tree_shape(size_t blocks, size_t n[DM_HOT_MAX_LEVELS])
{
	size_t up[DM_HOT_MAX_LEVELS];
	uint32_t levels = 0;

	while (blocks > 1 && levels < DM_HOT_MAX_LEVELS) {
		blocks = (blocks + DM_HOT_FANOUT - 1) / DM_HOT_FANOUT;
		up[levels++] = blocks;
	}
	for (uint32_t l = 0; l < levels; l++)
		n[l] = up[levels - 1 - l];
	return levels;
}

/* What @s needs: keys (its regions, each target's padded to a block) and
 * nodes. False when it cannot be indexed (over 2^32 keys). */
static int needs(const struct damon_snapshot *s, size_t *keys, size_t *nodes)
{
	size_t n[DM_HOT_MAX_LEVELS];

	*keys = *nodes = 0;
	for (uint32_t i = 0; i < s->nr_targets; i++) {
		size_t blocks = ((size_t)s->targets[i].nr + DM_HOT_KEYS - 1) / DM_HOT_KEYS;
		uint32_t levels = tree_shape(blocks, n);

		*keys += blocks * DM_HOT_KEYS;
		for (uint32_t l = 0; l < levels; l++)
			*nodes += n[l];
	}
	return *keys <= UINT32_MAX;
}

struct dm_hot_table *dm_hot_table_new(const struct dm_alloc *a, const struct damon_snapshot *s)
{
	size_t keys, nodes, cap_t = s->nr_targets < 4 ? 4 : s->nr_targets, cap_k, cap_n;
	struct dm_hot_table *t;
	uintptr_t p;

	if (!needs(s, &keys, &nodes) || cap_t > UINT32_MAX / 64)
		return NULL;
	/* Headroom so that a region count that wobbles does not regrow; the
	 * nodes of any split of cap_k keys among cap_t targets: a target of
	 * b blocks has at most b / 16 + (its levels) nodes. */
	cap_k = ALIGN_UP(keys + keys / 2 + 64, DM_HOT_KEYS);
	cap_n = cap_k / DM_HOT_KEYS / (DM_HOT_FANOUT - 1) + cap_t * DM_HOT_MAX_LEVELS + 1;
	if (cap_k > UINT32_MAX || cap_k > SIZE_MAX / 256)
		return NULL;
	/* slack to align the targets and the nodes after the header */
	t = dm_calloc(a, 1,
		      sizeof(*t) + 128 + 64 + cap_t * sizeof(struct dm_hot_target) +
			      cap_n * sizeof(struct dm_hot_node) +
			      cap_k * (sizeof(uint64_t) + sizeof(struct dm_hot_rec) +
				       sizeof(struct dm_hot_cold)));
	if (!t)
		return NULL;
	if (a)
		t->alloc = *a;
	t->cap_targets = cap_t;
	t->cap_keys = cap_k;
	t->cap_nodes = cap_n;
	/* each array a whole number of lines: all start on a line */
	p = ALIGN_UP((uintptr_t)(t + 1), 128);
	t->targets = (struct dm_hot_target *)p;
	p = ALIGN_UP(p + cap_t * sizeof(*t->targets), 128);
	t->nodes = (struct dm_hot_node *)p;
	p += cap_n * sizeof(*t->nodes);
	t->ends = (uint64_t *)p;
	p += cap_k * sizeof(*t->ends);
	t->recs = (struct dm_hot_rec *)p;
	p += cap_k * sizeof(*t->recs);
	t->cold = (struct dm_hot_cold *)p;
	return t;
}

void dm_hot_table_free(struct dm_hot_table *t)
{
	if (t) {
		struct dm_alloc a = t->alloc;

		dm_free(&a, t);
	}
}

int dm_hot_table_fits(const struct dm_hot_table *t, const struct damon_snapshot *s)
{
	size_t keys, nodes;

	return s->nr_targets <= t->cap_targets && needs(s, &keys, &nodes) && keys <= t->cap_keys &&
	       nodes <= t->cap_nodes;
}

/* Region @src at @i; NULL: a block's padding, never <= an address. */
static void write_region(struct dm_hot_table *t, size_t i, const struct dm_snap_region *src,
			 uint32_t seq)
{
	static const struct dm_snap_region pad = {.start = UINT64_MAX, .end = UINT64_MAX};
	struct dm_hot_rec *d = &t->recs[i];
	struct dm_hot_cold *c = &t->cold[i];
	uint32_t nw, wbp;

	if (!src)
		src = &pad;
	/* a writes-only backend knows its writes, not their share */
	nw = src->write_bp == DAMON_UNKNOWN ? DAMON_UNKNOWN : src->nr_writes;
	if (nw == DAMON_UNKNOWN)
		wbp = DM_HOT_WBP_UNKNOWN;
	else if (!src->nr_accesses)
		wbp = 0;
	else if ((uint64_t)nw * 10000 / src->nr_accesses > 10000)
		wbp = 10000;
	else
		wbp = (uint32_t)((uint64_t)nw * 10000 / src->nr_accesses);
	PUT(t->ends[i], src->end);
	PUT(d->start, src->start);
	PUT(d->born, seq - src->age); /* modulo 2^32: exact both ways */
	/* exact when no region's rate needs more (has_cold says otherwise) */
	PUT(d->rate_bp, (uint16_t)src->access_rate_bp);
	PUT(d->write_bp, (uint16_t)wbp);
	PUT(c->access_rate_bp, src->access_rate_bp);
	PUT(c->nr_accesses, src->nr_accesses);
	PUT(c->nr_writes, nw);
	PUT(c->node, src->node);
	PUT(c->node_bp, src->node_bp);
	PUT(c->nr_cpus, src->nr_cpus);
	PUT(c->cpus, src->cpus);
}

/* The nodes of a target's tree of @levels levels (@n nodes each, root
 * first) from node *@at on: key c of a node is the last region end under
 * its child c, UINT64_MAX when there is no region there. */
static void write_tree(struct dm_hot_table *t, struct dm_hot_target *tg,
		       const struct dm_snap_region *r, size_t nr, uint32_t levels,
		       const size_t n[DM_HOT_MAX_LEVELS], size_t *at)
{
	/* regions under a child of a node of the bottom level: one block */
	size_t span = DM_HOT_KEYS;

	for (uint32_t l = 1; l < levels; l++)
		span *= DM_HOT_FANOUT;
	for (uint32_t l = 0; l < levels; l++, span /= DM_HOT_FANOUT) {
		PUT(tg->level[l], (uint32_t)*at);
		for (size_t j = 0; j < n[l]; j++) {
			struct dm_hot_node *node = &t->nodes[*at + j];

			for (size_t c = 0; c < DM_HOT_NODE_KEYS; c++) {
				size_t lo = (j * DM_HOT_FANOUT + c) * span, hi = lo + span;

				PUT(node->key[c],
				    lo < nr ? r[(hi < nr ? hi : nr) - 1].end : UINT64_MAX);
			}
		}
		*at += n[l];
	}
}

void dm_hot_table_write(struct dm_hot_table *t, const struct damon_snapshot *s)
{
	size_t at = 0, nodes = 0, n[DM_HOT_MAX_LEVELS];
	uint32_t has_cold = 0;

	PUT(t->seq, s->info.seq);
	for (uint32_t i = 0; i < s->nr_targets; i++) {
		const struct dm_snap_target *src = &s->targets[i];
		const struct dm_snap_region *r = &s->regions[src->first];
		struct dm_hot_target *d = &t->targets[i];
		size_t nr = src->nr, blocks = (nr + DM_HOT_KEYS - 1) / DM_HOT_KEYS;
		uint32_t levels = tree_shape(blocks, n);

		PUT(d->id, src->id);
		PUT(d->first, (uint32_t)at);
		PUT(d->nr, src->nr);
		PUT(d->hi, nr ? r[nr - 1].end : 0);
		PUT(d->nr_levels, levels);
		for (size_t k = 0; k < nr; k++) {
			write_region(t, at + k, &r[k], (uint32_t)s->info.seq);
			has_cold |= r[k].node >= 0 || r[k].node_bp != DAMON_UNKNOWN ||
				    r[k].nr_cpus != DAMON_UNKNOWN || r[k].access_rate_bp > 0xffff;
		}
		for (size_t k = nr; k < blocks * DM_HOT_KEYS; k++)
			write_region(t, at + k, NULL, 0);
		write_tree(t, d, r, nr, levels, n, &nodes);
		at += blocks * DM_HOT_KEYS;
	}
	PUT(t->has_cold, has_cold);
	PUT(t->nr_targets, s->nr_targets);
}
