/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * For the targets that feed the kernel backend: the newest snapshot of
 * k->pub is consistent (targets' region runs inside the region array, one
 * per live target, regions non-empty, ascending and apart, nr_accesses at most max_nr_accesses,
 * rates at most 10000 bp) and a hotness query of its first region answers
 * within 10000 bp. Aborts (FUZZ_CHECK) when not.
 */
#ifndef DAMON_FUZZ_KSNAP_H
#define DAMON_FUZZ_KSNAP_H

#include "kernel/kernel_int.h"

void fuzz_check_snapshot(struct dm_kernel *k);

#endif
