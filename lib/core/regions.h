/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The region list of one target and DAMON's adaptive regions adjustment:
 * fitting regions to the monitored ranges, age, merge and split, with the
 * kernel's rules (Documentation/mm/damon/design.rst, "Adaptive Regions
 * Adjustment" and "Age Tracking"). Pure functions over a sorted array.
 */
#ifndef DAMON_CORE_REGIONS_H
#define DAMON_CORE_REGIONS_H

#include <stddef.h>
#include <stdint.h>

#include "../util/alloc.h"
#include "region.h"
#include "rng.h"

struct dm_regions {
	struct dm_region *v; /* sorted by start, non-overlapping */
	size_t n, cap;
};

void dm_regions_free(const struct dm_alloc *a, struct dm_regions *rs);
int dm_regions_reserve(const struct dm_alloc *a, struct dm_regions *rs, size_t cap);
uint64_t dm_regions_total_size(const struct dm_regions *rs);

/*
 * Initial regions: each range split evenly into pieces of about @sz_piece
 * (at least one piece per range, boundaries on DM_MIN_REGION). The kernel
 * uses sz_piece = total size / min_nr_regions.
 */
int dm_regions_init(const struct dm_alloc *a, struct dm_regions *rs, const struct dm_range *ranges,
		    size_t nr, uint64_t sz_piece);

/*
 * Fit the regions to new ranges (the kernel's damon_set_regions()): regions
 * outside every range go, regions crossing a range edge are clipped, the
 * first and last region of a range are stretched to its edges and holes
 * between regions are filled by stretching the region before them; a range
 * holding no region gets a new one. Counters and ages are kept.
 */
int dm_regions_set_ranges(const struct dm_alloc *a, struct dm_regions *rs,
			  const struct dm_range *ranges, size_t nr);

/* Age: reset when nr_accesses moved by more than @thres from the previous
 * aggregation, or crossed zero; else one more interval. */
void dm_regions_update_age(struct dm_regions *rs, uint32_t thres);

/* One merge pass: adjacent regions whose nr_accesses differ by <= @thres
 * and whose sizes add up to <= @sz_limit become one (size-weighted
 * nr_accesses and age). Returns the new count. */
size_t dm_regions_merge(struct dm_regions *rs, uint32_t thres, uint64_t sz_limit);

/* Fold @r's who (of a region of @sr bytes) into @l's (@sl bytes):
 * size-weighted counts, CPU sets joined. */
void dm_who_merge(struct dm_who *l, uint64_t sl, const struct dm_who *r, uint64_t sr);

/* Merge the adjacent pair with the smallest combined size until at most
 * @max regions remain (only when the threshold passes could not get there). */
size_t dm_regions_merge_to(struct dm_regions *rs, size_t max);

/* Split every region into up to @nr_pieces (2 or 3) at random points at
 * 10% steps, never below 2 * DM_MIN_REGION. */
int dm_regions_split(const struct dm_alloc *a, struct dm_regions *rs, unsigned int nr_pieces,
		     struct dm_rng *rng);

/*
 * One sample's results (v[i].accessed, v[i].since as check() left them) into
 * the counters: nr_accesses, the moving sum nr_accesses_bp over
 * @aggr_samples samples (the kernel's damon_update_region_access_rate();
 * a sample that tells nothing keeps the sum where it is), and what
 * dm_regions_settle_unknown() needs.
 */
void dm_regions_account_sample(struct dm_regions *rs, uint32_t aggr_samples);

/*
 * Before merging at the end of an aggregation of @nr_samples samples:
 * - a region some of whose samples were DM_ACCESS_EARLIER gets the
 *   nr_accesses that best explains all its samples (see regions.c);
 * - else, in a region some of whose samples were DM_ACCESS_UNKNOWN, each such
 *   sample counts at the region's last rate (last_nr_accesses / @nr_samples);
 *   a region with no known sample keeps its last_nr_accesses (so its age
 *   grows) and is marked unseen.
 * nr_accesses_bp is set to nr_accesses * 10000 in every region.
 */
void dm_regions_settle_unknown(struct dm_regions *rs, uint32_t nr_samples);

/* The per-interval access probability that makes @w accesses in known
 * samples that stayed unaccessed for @clean sampling intervals in all, and
 * @nr_earlier earlier accesses within @since_earlier intervals on average,
 * most likely. In [0, 1]. Exposed for tests. */
double dm_access_rate_mle(uint32_t w, uint32_t clean, uint32_t nr_earlier, double since_earlier);

/* Split region @idx at @sz bytes from its start (DAMOS quota edges): both
 * pieces keep the counters. -EINVAL for a bad @idx/@sz, -ENOMEM. */
int dm_regions_split_at(const struct dm_alloc *a, struct dm_regions *rs, size_t idx, uint64_t sz);

/* End of an aggregation: last_nr_accesses = nr_accesses, nr_accesses = 0,
 * nr_accesses_bp = last_nr_accesses * 10000 (the kernel warns and fixes the
 * same when rounding left it elsewhere); the per-aggregation sample counters
 * start again. */
void dm_regions_reset_aggregated(struct dm_regions *rs);

/* The largest nr_accesses of the list. */
uint32_t dm_regions_max_nr_accesses(const struct dm_regions *rs);

/* Check the invariants (sorted, non-empty, non-overlapping, aligned);
 * 0 or -EINVAL. For tests and debug builds. */
int dm_regions_validate(const struct dm_regions *rs);

/* A region's who fields in a snapshot, as far as a primitive that @tells
 * (DM_TELLS_*) and @sees (DAMON_SEES_*) can tell; o->nr_accesses is set. */
struct dm_snap_region;
void dm_region_who_publish(uint32_t tells, uint32_t sees, const struct dm_region *r,
			   struct dm_snap_region *o);

#endif
