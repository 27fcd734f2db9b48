// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The snapshot the kernel backend published last, checked (ksnap.h): the
 * targets it reads from (ring records, tried_regions) end up here.
 */
#include <errno.h>

#include "fuzz.h"
#include "ksnap.h"

void fuzz_check_snapshot(struct dm_kernel *k)
{
	struct damon_snapshot *s = dm_publisher_get(k->pub);
	size_t live = dm_kernel_nr_live(k), sum = 0;

	if (!s)
		return;
	FUZZ_CHECK(s->nr_targets == live, "%u targets in a snapshot, %zu live", s->nr_targets,
		   live);
	for (uint32_t t = 0; t < s->nr_targets; t++) {
		const struct dm_snap_target *st = &s->targets[t];
		struct damon_hotness h = {.sz = sizeof(h)};
		int rc;

		FUZZ_CHECK(st->first + (size_t)st->nr <= s->nr_regions, "target %u: %u+%u of %zu",
			   t, st->first, st->nr, s->nr_regions);
		sum += st->nr;
		for (uint32_t i = st->first; i < st->first + st->nr; i++) {
			const struct dm_snap_region *r = &s->regions[i];

			FUZZ_CHECK(r->start < r->end, "region %u empty", i);
			FUZZ_CHECK(i == st->first || r[-1].end <= r->start,
				   "region %u overlaps or goes back", i);
			FUZZ_CHECK(r->nr_accesses <= s->info.max_nr_accesses, "region %u: %u > %u",
				   i, r->nr_accesses, s->info.max_nr_accesses);
			FUZZ_CHECK(r->access_rate_bp <= 10000, "region %u: %u bp", i,
				   r->access_rate_bp);
			/* the target's id: its place in the context, not among the live */
			FUZZ_CHECK(r->target_idx == st->id, "region %u of target %u, not %u", i,
				   r->target_idx, st->id);
		}
		if (st->nr) {
			const struct dm_snap_region *r = &s->regions[st->first];

			rc = dm_publisher_hotness(k->pub, st->id, r->start, r->end - r->start, &h);
			FUZZ_CHECK(rc == 0 || rc == -ENOENT, "hotness: %d", rc);
			if (!rc)
				FUZZ_CHECK(h.access_rate_bp <= 10000, "hotness %u bp",
					   h.access_rate_bp);
		}
	}
	FUZZ_CHECK(sum == s->nr_regions, "%zu regions in targets, %zu in all", sum, s->nr_regions);
	damon_snapshot_unref(s);
}
