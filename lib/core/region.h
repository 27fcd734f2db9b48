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

struct dm_region {
	uint64_t start, end;
	uint64_t sampling_addr;    /* page checked in the current sampling interval */
	uint32_t nr_accesses;      /* this aggregation interval so far */
	uint32_t last_nr_accesses; /* at the end of the previous aggregation interval */
	uint32_t age;
	uint8_t accessed;          /* set by the primitive's check(): 0, 1 or DM_ACCESS_UNKNOWN */
	uint8_t unseen;            /* core: no sample of the last aggregation could be checked */
	uint16_t nr_unknown;       /* core: samples of this aggregation that could not be checked */
};

/*
 * check() sets accessed to this when the sample page could not be checked
 * without disturbing the memory (uffd_wp: the page is inside a transparent
 * huge page, and arming it would split it). The core then judges the region
 * by its other samples, or keeps its last nr_accesses when it has none.
 */
#define DM_ACCESS_UNKNOWN 2

static inline uint64_t dm_region_size(const struct dm_region *r)
{
	return r->end - r->start;
}

#endif
