// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include "rng.h"

void dm_rng_seed(struct dm_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t dm_rng_next(struct dm_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t dm_rng_range(struct dm_rng *r, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	/* Modulo bias is at most (hi - lo) / 2^64: irrelevant for sampling. */
	return lo + dm_rng_next(r) % (hi - lo);
}
