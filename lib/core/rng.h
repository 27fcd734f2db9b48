/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/* A small seeded generator (splitmix64): sampling addresses and split points
 * must be reproducible from a seed in tests, and cost nothing. */
#ifndef DAMON_CORE_RNG_H
#define DAMON_CORE_RNG_H

#include <stdint.h>

struct dm_rng {
	uint64_t state;
};

void dm_rng_seed(struct dm_rng *r, uint64_t seed);
uint64_t dm_rng_next(struct dm_rng *r);
/* Uniform in [lo, hi); returns lo when hi <= lo. */
uint64_t dm_rng_range(struct dm_rng *r, uint64_t lo, uint64_t hi);

#endif
