/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The hotness table: what one latch slot holds for damon_ctx_hotness() and
 * how a question is answered from it (the latch itself: snapshot.h).
 *
 * A lookup has some 50 ns, so the table is laid out for few cache lines
 * and few unpredictable branches, and built when the slot is written (at
 * publish time, in memory allocated with the slot: the reader allocates
 * nothing):
 *  - one 32-byte record per region with what an answer inside one region
 *    needs (its write_bp precomputed: no division); the rest of the who
 *    fields apart, read for answers over several regions or when some
 *    region tells its node or CPUs (the fault backend);
 *  - a target's records in groups of eight (four cache lines, the last
 *    group padded), and over the groups a static search tree of nodes of
 *    eight keys (one line), each key the last region end under a child.
 *    A node, and then the group, is searched by counting its keys <=
 *    addr: eight independent compares, no branch, and the count is the
 *    child to descend to. 10 000 regions are four levels and a group, the
 *    top three levels (24 lines) staying in L1; a binary search over the
 *    same ends walks 14 dependent steps through 80 KB and then reads the
 *    record.
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

#include "snapshot.h"

/* Keys per node: one cache line. */
#define DM_HOT_FANOUT 8
/* Levels over the groups of up to 2^32 regions in one target. */
#define DM_HOT_MAX_LEVELS 11

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
 * regions or in a table where some region tells its node or CPUs (the
 * fault backend). */
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

/* One target's tree over its groups of records: its levels, root first,
 * each a run of nodes. */
struct dm_hot_tree {
	uint32_t nr_levels;		   /* 0: one group (or none) */
	uint32_t root_n;		   /* keys in the root that are not padding */
	uint32_t level[DM_HOT_MAX_LEVELS]; /* first node of each level */
} __attribute__((aligned(64)));

/* The contents of one latch slot; the arrays live in memory the caller
 * provides (dm_hot_table_size() bytes, any alignment). */
struct dm_hot_table {
	size_t cap_regions, cap_targets, cap_recs, cap_nodes;
	uint64_t seq;
	size_t nr_recs; /* records: regions and padding */
	uint32_t nr_targets;
	uint32_t has_cold;		/* some region tells its node or CPUs */
	struct dm_snap_target *targets; /* first: in recs */
	struct dm_hot_tree *trees;	/* one per target, same order */
	struct dm_hot_node *nodes;
	struct dm_hot_rec *recs;
	struct dm_hot_cold *cold; /* same index as recs */
};

/* Bytes of memory a table for @cap_regions regions in @cap_targets
 * targets needs; 0 if that overflows. Every snapshot whose totals stay
 * within the caps fits, however its regions are split among targets. */
size_t dm_hot_table_size(size_t cap_regions, size_t cap_targets);

/* Lay out @t in @mem (dm_hot_table_size() bytes, zeroed). */
void dm_hot_table_init(struct dm_hot_table *t, void *mem, size_t cap_regions, size_t cap_targets);

/* Does @s fit in @t? */
int dm_hot_table_fits(const struct dm_hot_table *t, const struct damon_snapshot *s);

/* Copy @s into @t and build its trees. @t must fit @s. */
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
