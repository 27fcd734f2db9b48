/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Regions and ranges: the data the DAMON algorithm works on. Shared by the
 * core engine and the operations sets (lib/ops), which see nothing else of
 * the core.
 */
#ifndef DAMON_CORE_REGION_H
#define DAMON_CORE_REGION_H

#include <stddef.h>
#include <stdint.h>

/* Smallest region, and the granularity of every boundary (the kernel's
 * DAMON_MIN_REGION = PAGE_SIZE). */
#define DM_MIN_REGION 4096ULL

struct dm_range {
	uint64_t start, end; /* [start, end) */
};

/* Nodes counted per region; accesses from higher nodes count in the last. */
#define DM_WHO_NODES 8

/* What a sampled access was, when the primitive can tell (fault). */
#define DM_ACC_READ  1u
#define DM_ACC_WRITE 2u

/*
 * Who accessed a region in this aggregation interval, over the samples that
 * saw an access and could tell: counts in samples (the range of
 * nr_accesses), merged size-weighted like nr_accesses, CPUs as a set.
 */
struct dm_who {
	uint16_t nr_reads, nr_writes; /* samples that saw a read, a write (both: both) */
	uint16_t nr_placed;	      /* samples whose CPU was known */
	uint16_t pad;
	uint16_t node[DM_WHO_NODES];  /* samples by the node of the accessing CPU */
	uint64_t cpus;		      /* CPUs seen, bit (cpu % 64) */
};

struct dm_region {
	uint64_t start, end;
	uint64_t sampling_addr;    /* page checked in the current sampling interval */
	uint32_t nr_accesses;      /* this aggregation interval so far */
	uint32_t last_nr_accesses; /* at the end of the previous aggregation interval */
	/*
	 * The kernel's nr_accesses_bp: a pseudo moving sum of the last
	 * aggregation's worth of samples, in bp of one sample (10000 per access
	 * seen). Each sample takes away last_nr_accesses * 10000 / samples per
	 * aggregation and adds 10000 when it saw an access, so that between two
	 * aggregations it tells the rate of the most recent samples. DAMOS judges
	 * regions by nr_accesses_bp / 10000 (applied at any sample, not only at
	 * aggregations); at an aggregation it is exactly nr_accesses * 10000.
	 */
	uint32_t nr_accesses_bp;
	uint32_t age;
	uint8_t accessed;          /* set by the primitive's check(): 0, 1, or DM_ACCESS_* */
	uint8_t unseen;            /* core: no sample of the last aggregation could be checked */
	uint16_t nr_unknown;       /* core: samples of this aggregation that could not be checked */
	/*
	 * Set by check() with accessed: for 0 and 1, the sampling intervals
	 * before this one during which the sample page is known to have stayed
	 * unaccessed (0 for a primitive that arms a page for one interval only);
	 * for DM_ACCESS_EARLIER, the intervals within which that earlier access
	 * happened. See dm_regions_settle_unknown().
	 */
	uint16_t since;
	uint16_t nr_earlier;       /* core: DM_ACCESS_EARLIER samples of this aggregation */
	uint32_t sum_clean;        /* core: sum of since + 1 - accessed over known samples */
	uint32_t sum_earlier;      /* core: sum of since over DM_ACCESS_EARLIER samples */
	/* Set by check() with accessed = 1, by a primitive that can tell (fault;
	 * the core resets them before every prepare()): */
	uint8_t acc_how;           /* DM_ACC_READ | DM_ACC_WRITE; 0: cannot tell */
	int8_t acc_node;           /* -1: cannot tell */
	int16_t acc_cpu;           /* -1: cannot tell */
	uint32_t pad;
	struct dm_who who;         /* core */
};

/*
 * check() sets accessed to this when the sample page could not be checked
 * without disturbing the memory (uffd_wp: the page is inside a transparent
 * huge page, and arming it would split it). The core then judges the region
 * by its other samples, or keeps its last nr_accesses when it has none.
 */
#define DM_ACCESS_UNKNOWN 2

/*
 * check() sets accessed to this when the sample page had already been
 * accessed earlier in this aggregation interval, within the last
 * region->since sampling intervals, so that whether it was accessed again in
 * this one cannot be told (soft_dirty: the page was dirty when drawn). The
 * earlier access is evidence of heat: the core estimates the region's rate
 * from these and its known samples together (dm_regions_settle_unknown()).
 */
#define DM_ACCESS_EARLIER 3

static inline uint64_t dm_region_size(const struct dm_region *r)
{
	return r->end - r->start;
}

#endif
