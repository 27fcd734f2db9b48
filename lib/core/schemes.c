// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "schemes.h"

bool dm_scheme_matches(const struct dm_scheme *s, const struct dm_region *r)
{
	const struct damos_opts *o = &s->opts;
	uint64_t sz = dm_region_size(r);

	return sz >= o->min_sz && sz <= o->max_sz && r->nr_accesses >= o->min_nr_accesses &&
	       r->nr_accesses <= o->max_nr_accesses && r->age >= o->min_age && r->age <= o->max_age;
}

bool dm_scheme_due(struct dm_scheme *s, uint64_t now_us, uint64_t aggr_us)
{
	uint64_t interval = s->opts.apply_interval_us ? s->opts.apply_interval_us : aggr_us;

	if (now_us < s->next_apply_us)
		return false;
	s->next_apply_us = now_us + interval;
	return true;
}

void dm_scheme_apply(struct dm_scheme *s, const struct dm_region *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!dm_scheme_matches(s, &v[i]))
			continue;
		s->stats.nr_tried++;
		s->stats.sz_tried += dm_region_size(&v[i]);
		/* DAMOS_STAT applies nothing: nr/sz_applied stay as they are,
		 * as in the kernel. Every region passes the (absent) ops filters. */
		s->stats.sz_ops_filter_passed += dm_region_size(&v[i]);
	}
}

void dm_scheme_count_round(struct dm_scheme *s)
{
	s->stats.nr_snapshots++;
}
