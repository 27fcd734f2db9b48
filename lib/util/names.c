// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <damon/damon.h>

#include "names.h"

const char *dm_ops_name(uint32_t ops)
{
	switch (ops) {
	case DAMON_OPS_VADDR:
		return "vaddr";
	case DAMON_OPS_FVADDR:
		return "fvaddr";
	case DAMON_OPS_PADDR:
		return "paddr";
	}
	return NULL;
}

const char *dm_action_name(uint32_t action)
{
	static const char *const names[] = {
		[DAMOS_STAT] = "stat",
		[DAMOS_COLD] = "cold",
		[DAMOS_PAGEOUT] = "pageout",
		[DAMOS_WILLNEED] = "willneed",
		[DAMOS_HUGEPAGE] = "hugepage",
		[DAMOS_NOHUGEPAGE] = "nohugepage",
		[DAMOS_COLLAPSE] = "collapse",
		[DAMOS_MIGRATE_HOT] = "migrate_hot",
		[DAMOS_MIGRATE_COLD] = "migrate_cold",
		[DAMOS_LRU_PRIO] = "lru_prio",
		[DAMOS_LRU_DEPRIO] = "lru_deprio",
	};

	return action < sizeof(names) / sizeof(names[0]) ? names[action] : NULL;
}

const struct dm_exclusive_module dm_exclusive_modules[] = {
	{ "damon_stat", "DAMON_STAT" },
	{ "damon_reclaim", "DAMON_RECLAIM" },
	{ "damon_lru_sort", "DAMON_LRU_SORT" },
};

const size_t dm_nr_exclusive_modules =
	sizeof(dm_exclusive_modules) / sizeof(dm_exclusive_modules[0]);
