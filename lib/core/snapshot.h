/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Snapshots and how they reach readers.
 *
 * Two paths, because they have different needs:
 *  - struct damon_snapshot: an immutable, reference-counted copy of one
 *    aggregation, handed to callers by damon_ctx_snapshot(). The newest one
 *    sits behind a short mutex (taking a reference to an object another
 *    thread may be dropping needs either a lock or a reclamation scheme; a
 *    lock held for two instructions is the honest choice there).
 *  - the hotness latch: damon_ctx_hotness() must be lock-free,
 *    allocation-free and async-signal-safe. The publisher writes the
 *    regions, with a search index over them (hot_table.h), into two
 *    preallocated slots in turn under a sequence count (a seqcount latch):
 *    readers read the slot the count points at and retry if the count
 *    moved. One slot is always stable, so a reader in a signal
 *    handler that interrupted the publisher on its own thread still gets a
 *    consistent answer. Slot memory is never freed while the context lives
 *    (a slot that must grow is retired, not freed), so a reader racing with
 *    growth reads stale but valid memory and retries.
 */
#ifndef DAMON_CORE_SNAPSHOT_H
#define DAMON_CORE_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <damon/damon.h>

#include "../util/alloc.h"

/* One region as snapshots store it (the who fields: struct damon_region). */
struct dm_snap_region {
	uint64_t start, end;
	uint32_t nr_accesses, age;
	uint32_t access_rate_bp, target_idx;
	uint32_t nr_reads, nr_writes, write_bp;
	int32_t node;
	uint32_t node_bp, nr_cpus;
	uint64_t cpus;
};

/* A region's who fields when the backend can tell none of them. */
void dm_snap_region_who_unknown(struct dm_snap_region *r);

/* Where one target's regions are inside a snapshot. */
struct dm_snap_target {
	uint32_t id; /* the target's stable id in its context */
	uint32_t first, nr;
	uint32_t pad;
};

struct damon_snapshot {
	atomic_uint refcnt;
	struct dm_alloc alloc;
	struct damon_snapshot_info info;
	uint32_t nr_targets;
	size_t nr_regions;
	struct dm_snap_target *targets;
	struct dm_snap_region *regions;
};

/* Build one: caller fills info, targets and regions after this. */
struct damon_snapshot *dm_snapshot_new(const struct dm_alloc *a, uint32_t nr_targets,
				       size_t nr_regions);

/* Drop a reference; the last one frees the snapshot (NULL-safe). The
 * publisher and damon_snapshot_unref() both end here. */
void dm_snapshot_unref(struct damon_snapshot *s);

struct dm_hot_table;

struct dm_publisher {
	struct dm_alloc alloc;
	/* Newest snapshot for damon_ctx_snapshot(). */
	pthread_mutex_t lock;
	struct damon_snapshot *newest;
	/* Hotness latch: two tables (hot_table.h). */
	atomic_ulong latch_seq;
	_Atomic(struct dm_hot_table *) slot[2];
	struct dm_hot_table *retired;
};

int dm_publisher_init(struct dm_publisher *p, const struct dm_alloc *a);
void dm_publisher_fini(struct dm_publisher *p);

/* Publish @s (the publisher takes over the caller's reference). Only one
 * thread publishes at a time. -ENOMEM leaves the previous snapshot in place
 * for hotness readers (and still publishes @s for damon_ctx_snapshot()). */
int dm_publisher_publish(struct dm_publisher *p, struct damon_snapshot *s);

/* Newest snapshot with a reference for the caller, or NULL. */
struct damon_snapshot *dm_publisher_get(struct dm_publisher *p);

/* Lock-free hotness over target @target_id (UINT32_MAX: the first target of
 * the snapshot). -EAGAIN, -ENOENT as damon_ctx_hotness(). */
int dm_publisher_hotness(struct dm_publisher *p, uint32_t target_id, uint64_t addr, uint64_t len,
			 struct damon_hotness *ret);

#endif
