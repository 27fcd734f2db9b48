/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * DAMOS quota goals and filters on the kernel backend (kscheme.c): a
 * scheme's goals and filters written to its sysfs directory, a user_input
 * goal's value passed to the running kdamond, the kernel's effective quotas
 * read back. kwrite.c writes the rest of the scheme.
 */
#ifndef DAMON_KERNEL_KSCHEME_H
#define DAMON_KERNEL_KSCHEME_H

#include <stddef.h>

#include "kernel_int.h"

/* libdamon's one kdamond, and the schemes of its one context. */
#define DM_KDAMOND  "kernel/mm/damon/admin/kdamonds/0"
#define DM_KSCHEMES DM_KDAMOND "/contexts/0/schemes"

/*
 * Write the goals and filters of @sc to schemes/@i (whose directory is
 * fresh: nr_schemes was just written). -EOPNOTSUPP with a sentence when this
 * kernel lacks a file, a metric or a filter type the scheme needs, or would
 * give its filters another meaning than libdamon's; else what a write met.
 */
int dm_kscheme_write(struct dm_kernel *k, size_t i, const struct dm_scheme *sc, struct dm_err *err);

/* Ask the kdamond for its effective quotas (update_schemes_effective_quotas)
 * and store them in each scheme's quota.esz; nothing on a kernel without
 * quotas/effective_bytes. */
int dm_kscheme_read_quotas(struct dm_kernel *k, struct dm_err *err);

#endif
