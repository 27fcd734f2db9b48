/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The hotness table: what one latch slot (snapshot.h) holds for
 * damon_ctx_hotness(). hot_table.c builds it when a snapshot is published,
 * hot_lookup.c answers from it.
 *
 * A question costs a few dependent memory reads, so the table is laid out
 * for them, all of it computed at publish time in memory allocated with
 * the table (a reader allocates nothing):
 *  - ends[]: each target's region ends, packed, in blocks of eight (one
 *    cache line; a target's last block padded with UINT64_MAX), the keys
 *    the search compares;
 *  - over a target's blocks a static search tree of nodes of sixteen keys
 *    (two cache lines) and seventeen children: key c is the last region
 *    end under child c. A node and then a block are searched by counting
 *    their keys <= addr, compares and no branch; the count is the child
 *    (or, in a block, the region) to go to;
 *  - recs[], same index as ends[]: a region's start, age (as the seq it
 *    was born at), rate and share of writes in 16 bytes, what an answer
 *    inside one region needs;
 *  - cold[], same index: the who fields as they are, read for a question
 *    over several regions or when some region tells its node or CPUs.
 * Nothing is ordered across targets: each has its own blocks and tree and
 * is found by id, so targets overlapping in address (two processes) or
 * far apart (paddr's System RAM ranges) are all the same to the search.
 *
 * The publisher stores a value only where it differs from what the slot
 * holds: keys of a layout that did not change stay in the readers' caches.
 * It stores with relaxed atomics while readers may race with it (the
 * latch's count makes them retry); a reader clamps every position it
 * derives from the table to the table's capacity, so a torn read reads
 * wrong but valid memory.
 */
#ifndef DAMON_CORE_HOT_TABLE_H
#define DAMON_CORE_HOT_TABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <damon/damon.h>

#include "../util/alloc.h"

struct damon_snapshot;

/* Keys (region ends) of a block: one cache line. */
#define DM_HOT_KEYS 8
/* Keys of a node, two cache lines loaded side by side: a level fewer than
 * nodes of one line for 1 000 and for 10 000 regions. */
#define DM_HOT_NODE_KEYS 16
/* Children of a node. */
#define DM_HOT_FANOUT (DM_HOT_NODE_KEYS + 1)
/* Node levels over the blocks of up to 2^32 regions (17^8 blocks). */
#define DM_HOT_MAX_LEVELS 10
/* write_bp of a record when writes are not known. */
#define DM_HOT_WBP_UNKNOWN 0xffff

/* One target: one cache line, read first. */
struct dm_hot_target {
	uint32_t id;			   /* the target's stable id in its context */
	uint32_t first;			   /* its first region in ends[]: a block's first */
	uint32_t nr;			   /* its regions */
	uint32_t nr_levels;		   /* node levels; 0: one block */
	uint64_t hi;			   /* its last region end: no answer at or past it */
	uint32_t level[DM_HOT_MAX_LEVELS]; /* first node of each level, root first */
} __attribute__((aligned(64)));

struct dm_hot_node {
	uint64_t key[DM_HOT_NODE_KEYS];
} __attribute__((aligned(128)));

/* A region as an answer inside it reads it (its end: ends[]). Its age is
 * kept as the snapshot seq it would have at age 0: the monitor ages a
 * region by one each snapshot, so the record does not change while only
 * its age does, and the line stays valid in the readers' caches. */
struct dm_hot_rec {
	uint64_t start;
	uint32_t born;	   /* (uint32_t)seq - age: age is (uint32_t)seq - born */
	uint16_t rate_bp;  /* access_rate_bp; see has_cold */
	uint16_t write_bp; /* writes x 10000 / accesses, at most 10000; or
			    * DM_HOT_WBP_UNKNOWN */
};

/* The rest of a region. */
struct dm_hot_cold {
	uint32_t access_rate_bp;
	uint32_t nr_accesses;
	uint32_t nr_writes; /* DAMON_UNKNOWN: cannot tell */
	int32_t node;	    /* -1: cannot tell (with node_bp DAMON_UNKNOWN) */
	uint32_t node_bp;
	uint32_t nr_cpus; /* DAMON_UNKNOWN: cannot tell */
	uint64_t cpus;
};

/* One slot's table, in one allocation: this header, then the arrays. */
struct dm_hot_table {
	struct dm_alloc alloc;
	size_t cap_targets, cap_keys, cap_nodes;
	uint64_t seq;
	uint32_t nr_targets;
	/* Some region tells its node or CPUs, or has a rate over 16 bits:
	 * every answer reads cold[]. */
	uint32_t has_cold;
	struct dm_hot_target *targets;
	struct dm_hot_node *nodes;
	uint64_t *ends;
	struct dm_hot_rec *recs;
	struct dm_hot_cold *cold;
	/* Not read by readers: the publisher's list of tables grown out of
	 * but kept, since a slow reader may still be reading them. */
	struct dm_hot_table *retired_next;
};

/* A table for snapshots like @s with room to spare, allocated with @a;
 * NULL when out of memory or too big. */
struct dm_hot_table *dm_hot_table_new(const struct dm_alloc *a, const struct damon_snapshot *s);
void dm_hot_table_free(struct dm_hot_table *t);

/* Does @s fit in @t? */
int dm_hot_table_fits(const struct dm_hot_table *t, const struct damon_snapshot *s);

/* Write @s, which fits, into @t: regions, trees and the rest. Each
 * target's regions must be sorted by address and apart (as every
 * snapshot has them). */
void dm_hot_table_write(struct dm_hot_table *t, const struct damon_snapshot *s);

/* What dm_hot_table_answer() returns when the table was rewritten under
 * it: nothing written, retry. */
#define DM_HOT_TORN 1

/* Answer for target @target_id (UINT32_MAX: the first target) over
 * [@addr, @addr + @len) (not wrapping) from @t, read while the latch's
 * count @seq was @seq0. DM_HOT_TORN when @seq moved meanwhile; else 0 with
 * every field of @ret but sz written, or -ENOENT (no such target, nothing
 * monitored there) or -EAGAIN (an empty table), @ret untouched. */
int dm_hot_table_answer(const struct dm_hot_table *t, uint32_t target_id, uint64_t addr,
			uint64_t len, const atomic_ulong *seq, unsigned long seq0,
			struct damon_hotness *ret);

#endif
