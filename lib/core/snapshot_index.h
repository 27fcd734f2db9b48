/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The hotness table: what one latch slot holds for damon_ctx_hotness()
 * (the latch itself: snapshot.h). snapshot_index.c builds it when a
 * snapshot is published; snapshot_lookup.c answers from it.
 *
 * A lookup has some 50 ns, so the table is laid out for few dependent
 * cache-line loads and no unpredictable branch, and everything is
 * computed at publish time, in memory allocated with the table (the
 * reader allocates nothing):
 *  - one 32-byte record per region with what an answer inside one region
 *    needs (its write_bp precomputed: no division); the rest of the who
 *    fields apart, read for answers over several regions or when some
 *    region tells its node or CPUs (the fault backend);
 *  - a target's records in groups of eight (four cache lines, the last
 *    group padded), and over the groups a static search tree of nodes of
 *    eight keys (one line), each key the last region end under a child.
 *    A node, and then the group, is searched by counting its keys <= addr:
 *    eight independent compares, and the count is the child to descend to;
 *  - a bucket table per target: the address range cut into about two
 *    buckets per group, each naming the lowest node (or the group) that
 *    holds every answer for an address in the bucket, so that a lookup
 *    starts there instead of at the root. A target whose regions sit in
 *    far apart clusters (a process's heap, mmap area and stack) is cut at
 *    its three widest gaps into segments with buckets of their own.
 * For 10 000 regions a binary search walks 14 dependent steps through
 * 80 KB of ends and then reads the record; here most lookups read the
 * target, a bucket and the group, some one node more.
 *
 * The writer stores with relaxed atomics while readers may race with it
 * (the latch's sequence count makes them retry); every position a reader
 * derives from the table is clamped to the table's capacity, so a torn
 * read reads wrong but valid memory.
 */
#ifndef DAMON_CORE_SNAPSHOT_INDEX_H
#define DAMON_CORE_SNAPSHOT_INDEX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <damon/damon.h>

#include "../util/alloc.h"
#include "snapshot.h"

/* Keys per node: one cache line. */
#define DM_HOT_FANOUT 8
/* Records per group, searched like a node. */
#define DM_HOT_GROUP 8
/* Levels over the groups of up to 2^32 regions in one target. */
#define DM_HOT_MAX_LEVELS 11
/* Segments of a target, each with its own buckets. */
#define DM_HOT_SEGS 4
/* A bucket: where to start, as the level (DM_HOT_BUCKET_LEVEL bits up;
 * nr_levels: the group itself) and the node (or group) in that level. */
#define DM_HOT_BUCKET_LEVEL 28
#define DM_HOT_BUCKET_REL   ((1u << DM_HOT_BUCKET_LEVEL) - 1)

/* One region, as hotness reads it: two to a cache line, so that the
 * records of 10 000 regions (320 KB) and their tree fit a 512 KB L2. */
struct dm_hot_rec {
	uint64_t start, end;
	uint32_t access_rate_bp, age;
	/* Writes x 10000 / accesses, at most 10000; DAMON_UNKNOWN: cannot
	 * tell. A question inside one region needs no more. */
	uint32_t write_bp;
	uint32_t pad;
};

/* The region's who fields as they are, read for a question over several
 * regions or in a table where some region tells its node or CPUs. */
struct dm_hot_cold {
	uint32_t nr_accesses;
	uint32_t nr_writes; /* DAMON_UNKNOWN: cannot tell */
	int32_t node;	    /* -1: cannot tell (with node_bp DAMON_UNKNOWN) */
	uint32_t node_bp;
	uint32_t nr_cpus; /* DAMON_UNKNOWN: cannot tell */
	uint32_t pad;
	uint64_t cpus;
};

/* The last region end under each of eight children (nodes or groups);
 * UINT64_MAX past the last child. */
struct dm_hot_node {
	uint64_t key[DM_HOT_FANOUT];
} __attribute__((aligned(64)));

/* One target of a table: two cache lines, read on the way to its bucket. */
struct dm_hot_target {
	/* What to compute the bucket from. */
	uint32_t id;	    /* the target's stable id in its context */
	uint32_t first, nr; /* records first..first+nr-1 (first: a group's) */
	uint32_t nr_levels; /* tree levels over the groups; 0: one group */
	uint64_t hi;	    /* the last region end */
	/* Segment s holds addresses from seg_lo[s] (UINT64_MAX: no segment;
	 * seg_lo[0] also holds those below it), 1 << seg_bits[s] buckets of
	 * 1 << seg_shift[s] bytes and one for the rest of the segment. */
	uint64_t seg_lo[DM_HOT_SEGS];
	uint8_t seg_shift[DM_HOT_SEGS];
	uint8_t seg_bits[DM_HOT_SEGS];
	/* Where to go from there. */
	uint32_t seg_bucket[DM_HOT_SEGS];  /* the segment's first bucket */
	uint32_t level[DM_HOT_MAX_LEVELS]; /* first node of each level, root first */
	uint32_t pad;
} __attribute__((aligned(64)));

/* The table of one latch slot, in one allocation: this header, then (at
 * the next cache line) the targets, nodes, records and the rest. */
struct dm_hot_table {
	struct dm_alloc alloc;
	size_t cap_regions, cap_targets, cap_recs, cap_nodes, cap_buckets;
	uint64_t seq;
	size_t nr_recs; /* records: regions and padding */
	uint32_t nr_targets;
	uint32_t has_cold; /* some region tells its node or CPUs */
	struct dm_hot_node *nodes;
	struct dm_hot_rec *recs;
	struct dm_hot_cold *cold; /* same index as recs */
	uint32_t *buckets;
	/* Not read by readers: the publisher's list of tables retired (grown
	 * out of) but kept, since a slow reader may still read them. */
	struct dm_hot_table *retired_next;
};

/* The targets, after the header, on a cache line. */
static inline struct dm_hot_target *dm_hot_targets(const struct dm_hot_table *t)
{
	return (struct dm_hot_target *)(((uintptr_t)(t + 1) + 63) & ~(uintptr_t)63);
}

/* A zeroed table for up to @cap_regions regions in @cap_targets targets
 * (any split among them), allocated with @a; NULL when out of memory or
 * the sizes overflow. */
struct dm_hot_table *dm_hot_table_new(const struct dm_alloc *a, size_t cap_regions,
				      size_t cap_targets);
void dm_hot_table_free(struct dm_hot_table *t);

/* Does @s fit in @t? */
int dm_hot_table_fits(const struct dm_hot_table *t, const struct damon_snapshot *s);

/* Copy @s into @t and build its index. @t must fit @s; each target's
 * regions sorted by address and apart, as snapshots have them. */
void dm_hot_table_write(struct dm_hot_table *t, const struct damon_snapshot *s);

/* What dm_hot_table_answer() returns when @t was rewritten under it. */
#define DM_HOT_TORN 1

/* Answer for target @target_id (UINT32_MAX: the first target) over
 * [@addr, @addr + @len), @len > 0 and not overflowing, from @t read while
 * the latch count @seq was @seq0. DM_HOT_TORN if @seq moved meanwhile
 * (nothing written: retry); else 0 with every field of @ret but sz
 * written, or -ENOENT (no such target, nothing monitored there), -EAGAIN
 * (@t is empty), @ret untouched. */
int dm_hot_table_answer(const struct dm_hot_table *t, uint32_t target_id, uint64_t addr,
			uint64_t len, const atomic_ulong *seq, unsigned long seq0,
			struct damon_hotness *ret);

#endif
