// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Building the hotness table (snapshot_index.h) when a snapshot is
 * published: records, trees and buckets. Runs on the publishing thread
 * while readers may be reading the same memory (they will retry).
 */
#include <string.h>

#include "snapshot_index.h"

/* Relaxed atomic stores: readers may race with the writer by design (the
 * latch's sequence count tells them to retry); these keep the race
 * defined and cost a plain mov on every architecture we build for. */
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

/* Upper bounds for any split of @cap_regions regions among @cap_targets
 * targets. Records: each target's last group adds at most 7 padding.
 * Nodes: a target of n regions has g <= n / 8 + 1 groups; a level of k
 * keys has ceil(k / 8) <= k / 8 + 1 nodes, so its tree has at most
 * g / 7 + levels <= n / 56 + 1 + levels nodes. Buckets: a segment meeting
 * k groups has at most 4k + 1 of them, and the segments of a target meet
 * at most g + 3 groups: n / 2 + 20. */
_Static_assert(DM_HOT_FANOUT == 8 && DM_HOT_GROUP == 8, "the bounds count nodes of eight");
_Static_assert(sizeof(struct dm_hot_target) == 128, "a target is two cache lines");

static size_t recs_bound(size_t cap_regions, size_t cap_targets)
{
	return cap_regions + cap_targets * DM_HOT_GROUP;
}

static size_t nodes_bound(size_t cap_regions, size_t cap_targets)
{
	return cap_regions / 56 + cap_targets * (DM_HOT_MAX_LEVELS + 2) + 1;
}

static size_t buckets_bound(size_t cap_regions, size_t cap_targets)
{
	return cap_regions / 2 + cap_targets * 20;
}

struct dm_hot_table *dm_hot_table_new(const struct dm_alloc *a, size_t cap_regions,
				      size_t cap_targets)
{
	size_t cap_recs = recs_bound(cap_regions, cap_targets);
	size_t cap_nodes = nodes_bound(cap_regions, cap_targets);
	size_t cap_buckets = buckets_bound(cap_regions, cap_targets);
	struct dm_hot_table *t;
	uintptr_t p;

	if (!cap_targets || cap_targets > UINT32_MAX / 128 || cap_recs > UINT32_MAX ||
	    cap_regions > SIZE_MAX / 8 / sizeof(struct dm_hot_rec))
		return NULL;
	/* malloc alignment: 64 bytes of slack for each line-aligned array */
	t = dm_calloc(a, 1,
		      sizeof(*t) + 64 + cap_targets * sizeof(struct dm_hot_target) + 64 +
			      cap_nodes * sizeof(struct dm_hot_node) +
			      cap_recs * (sizeof(struct dm_hot_rec) + sizeof(struct dm_hot_cold)) +
			      cap_buckets * sizeof(uint32_t));
	if (!t)
		return NULL;
	if (a)
		t->alloc = *a;
	t->cap_regions = cap_regions;
	t->cap_targets = cap_targets;
	t->cap_recs = cap_recs;
	t->cap_nodes = cap_nodes;
	t->cap_buckets = cap_buckets;
	p = ALIGN_UP((uintptr_t)(dm_hot_targets(t) + cap_targets), 64);
	t->nodes = (struct dm_hot_node *)p;
	p += cap_nodes * sizeof(*t->nodes);
	t->recs = (struct dm_hot_rec *)p;
	p += cap_recs * sizeof(*t->recs);
	t->cold = (struct dm_hot_cold *)p;
	p += cap_recs * sizeof(*t->cold);
	t->buckets = (uint32_t *)p;
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
	return s->nr_regions <= t->cap_regions && s->nr_targets <= t->cap_targets;
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
 * *pos. Returns its levels. */
static uint32_t build_tree(struct dm_hot_table *t, struct dm_hot_target *tg,
			   const struct dm_snap_region *r, size_t nr, size_t *pos)
{
	size_t n[DM_HOT_MAX_LEVELS + 1], span[DM_HOT_MAX_LEVELS + 1];
	uint32_t levels = 0;

	/* Level sizes, bottom first; n[0] is the groups. */
	n[0] = (nr + DM_HOT_GROUP - 1) / DM_HOT_GROUP;
	span[0] = DM_HOT_GROUP;
	while (n[levels] > 1) {
		n[levels + 1] = (n[levels] + DM_HOT_FANOUT - 1) / DM_HOT_FANOUT;
		span[levels + 1] = span[levels] * DM_HOT_FANOUT;
		levels++;
	}
	/* Stored root first: tg->level[0] is the root. */
	for (uint32_t l = levels; l > 0; l--) {
		STORE(tg->level[levels - l], (uint32_t)*pos);
		build_level(&t->nodes[*pos], n[l], span[l - 1], r, nr);
		*pos += n[l];
	}
	return levels;
}

/* The first of the @nr regions @r ending after @a, looked for from *@p
 * on (addresses come in ascending order). */
static size_t lower_bound(const struct dm_snap_region *r, size_t nr, size_t *p, uint64_t a)
{
	while (*p < nr && r[*p].end <= a)
		(*p)++;
	return *p;
}

/* Where a lookup of any address in [a0, a1] of a tree of @levels levels
 * may start: the lowest node over the groups of both ends' answers, or the
 * group itself when they share it. */
static uint32_t bucket(const struct dm_snap_region *r, size_t nr, uint32_t levels, size_t *p0,
		       size_t *p1, uint64_t a0, uint64_t a1)
{
	size_t g0 = lower_bound(r, nr, p0, a0), g1 = lower_bound(r, nr, p1, a1);
	uint32_t up = 0;

	/* Past the last region end: those addresses never get here. */
	g0 = (g0 < nr ? g0 : nr - 1) / DM_HOT_GROUP;
	g1 = (g1 < nr ? g1 : nr - 1) / DM_HOT_GROUP;
	while (up < levels && (g0 != g1 || g0 > DM_HOT_BUCKET_REL)) {
		g0 /= DM_HOT_FANOUT;
		g1 /= DM_HOT_FANOUT;
		up++;
	}
	return (levels - up) << DM_HOT_BUCKET_LEVEL | (uint32_t)g0;
}

/* Cut @nr regions @r at their (up to) three widest gaps: the first region
 * of each segment in @seg, the number of segments returned. */
static int segments(const struct dm_snap_region *r, size_t nr, size_t seg[DM_HOT_SEGS])
{
	size_t cut[DM_HOT_SEGS - 1] = {0};
	uint64_t gap[DM_HOT_SEGS - 1] = {0};
	int n = 1;

	/* The widest gaps, widest first; cut[k] is the region after gap k. */
	for (size_t i = 1; i < nr; i++) {
		uint64_t g = r[i].start - r[i - 1].end;
		int k = DM_HOT_SEGS - 1;

		while (k > 0 && g > gap[k - 1])
			k--;
		if (k == DM_HOT_SEGS - 1)
			continue;
		memmove(&gap[k + 1], &gap[k], (DM_HOT_SEGS - 2 - k) * sizeof(gap[0]));
		memmove(&cut[k + 1], &cut[k], (DM_HOT_SEGS - 2 - k) * sizeof(cut[0]));
		gap[k] = g;
		cut[k] = i;
	}
	seg[0] = 0;
	for (int k = 0; k < DM_HOT_SEGS - 1; k++) {
		int j = n;

		if (!gap[k])
			break;
		/* in address order */
		while (j > 1 && seg[j - 1] > cut[k]) {
			seg[j] = seg[j - 1];
			j--;
		}
		seg[j] = cut[k];
		n++;
	}
	return n;
}

/* The buckets of the @nr regions @r of target @tg (a tree of @levels
 * levels) at buckets[*pos...]; advance *pos. Each segment gets a power of
 * two of equal buckets, at least two per group it meets, over its span;
 * addresses past its last bucket (up to the next segment) get one more. */
static void build_buckets(struct dm_hot_table *t, struct dm_hot_target *tg,
			  const struct dm_snap_region *r, size_t nr, uint32_t levels, size_t *pos)
{
	size_t seg[DM_HOT_SEGS], p0 = 0, p1 = 0;
	int n = segments(r, nr, seg);

	for (int s = 0; s < DM_HOT_SEGS; s++) {
		size_t a, b, groups;
		uint64_t lo, span, top;
		uint32_t bits = 1, shift = 0;

		if (s >= n) {
			/* no such segment: never chosen */
			STORE(tg->seg_lo[s], UINT64_MAX);
			STORE(tg->seg_bits[s], 0);
			STORE(tg->seg_shift[s], 0);
			STORE(tg->seg_bucket[s], (uint32_t)*pos);
			continue;
		}
		a = seg[s];
		b = s + 1 < n ? seg[s + 1] : nr;
		lo = r[a].start;
		span = r[b - 1].end - lo;
		/* where the segment's addresses end (the last one's: at hi) */
		top = b < nr ? r[b].start : r[nr - 1].end;
		groups = (b - 1) / DM_HOT_GROUP - a / DM_HOT_GROUP + 1;
		while ((1ULL << bits) < 2 * groups && bits < 20)
			bits++;
		while (shift < 63 && (span - 1) >> shift >= 1ULL << bits)
			shift++;
		STORE(tg->seg_lo[s], lo);
		STORE(tg->seg_bits[s], (uint8_t)bits);
		STORE(tg->seg_shift[s], (uint8_t)shift);
		STORE(tg->seg_bucket[s], (uint32_t)*pos);
		for (uint64_t k = 0; k <= 1ULL << bits; k++) {
			/* bucket k: [lo + k << shift, lo + (k + 1) << shift), the
			 * last to the segment's end; in 128 bits: no overflow */
			unsigned __int128 a0 = lo + ((unsigned __int128)k << shift);
			unsigned __int128 a1 =
				k < 1ULL << bits ? lo + ((unsigned __int128)(k + 1) << shift) : top;
			uint32_t e = 0;

			if (a1 > top)
				a1 = top;
			if (a0 < a1)
				e = bucket(r, nr, levels, &p0, &p1, (uint64_t)a0,
					   (uint64_t)(a1 - 1));
			STORE(t->buckets[*pos + k], e);
		}
		*pos += (1ULL << bits) + 1;
	}
}

void dm_hot_table_write(struct dm_hot_table *t, const struct damon_snapshot *s)
{
	static const struct dm_snap_region pad = {.start = UINT64_MAX, .end = UINT64_MAX};
	size_t nodes = 0, buckets = 0, at = 0;
	uint32_t has_cold = 0;

	STORE(t->seq, s->info.seq);
	STORE(t->nr_targets, 0);
	for (uint32_t i = 0; i < s->nr_targets; i++) {
		const struct dm_snap_target *src = &s->targets[i];
		const struct dm_snap_region *r = &s->regions[src->first];
		struct dm_hot_target *d = &dm_hot_targets(t)[i];
		uint32_t levels;

		STORE(d->id, src->id);
		STORE(d->first, (uint32_t)at);
		STORE(d->nr, src->nr);
		STORE(d->hi, src->nr ? r[src->nr - 1].end : 0);
		for (size_t k = 0; k < src->nr; k++, at++) {
			write_rec(&t->recs[at], &t->cold[at], &r[k]);
			has_cold |= r[k].node >= 0 || r[k].node_bp != DAMON_UNKNOWN ||
				    r[k].nr_cpus != DAMON_UNKNOWN;
		}
		/* Padding ends at UINT64_MAX: never <= an address. */
		for (; at % DM_HOT_GROUP; at++)
			write_rec(&t->recs[at], &t->cold[at], &pad);
		levels = build_tree(t, d, r, src->nr, &nodes);
		if (levels)
			build_buckets(t, d, r, src->nr, levels, &buckets);
		STORE(d->nr_levels, levels);
	}
	STORE(t->has_cold, has_cold);
	STORE(t->nr_recs, at);
	STORE(t->nr_targets, s->nr_targets);
}
