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

const char *dm_goal_metric_name(uint32_t metric)
{
	static const char *const names[] = {
		[DAMOS_GOAL_USER_INPUT] = "user_input",
		[DAMOS_GOAL_SOME_MEM_PSI_US] = "some_mem_psi_us",
		[DAMOS_GOAL_NODE_MEM_USED_BP] = "node_mem_used_bp",
		[DAMOS_GOAL_NODE_MEM_FREE_BP] = "node_mem_free_bp",
	};

	return metric < sizeof(names) / sizeof(names[0]) ? names[metric] : NULL;
}

const char *dm_filter_type_name(uint32_t type)
{
	static const char *const names[] = {
		[DAMOS_FILTER_ANON] = "anon",
		[DAMOS_FILTER_MEMCG] = "memcg",
		[DAMOS_FILTER_YOUNG] = "young",
		[DAMOS_FILTER_HUGEPAGE_SIZE] = "hugepage_size",
		[DAMOS_FILTER_UNMAPPED] = "unmapped",
		[DAMOS_FILTER_ADDR] = "addr",
		[DAMOS_FILTER_TARGET] = "target",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
}

const char *dm_backend_name(int backend)
{
	static const char *const names[] = {
		[DAMON_BACKEND_AUTO] = "auto",
		[DAMON_BACKEND_KERNEL] = "kernel",
		[DAMON_BACKEND_PAGE_IDLE] = "page_idle",
		[DAMON_BACKEND_UFFD_WP] = "uffd_wp",
		[DAMON_BACKEND_SOFT_DIRTY] = "soft_dirty",
		[DAMON_BACKEND_FAULT] = "fault",
	};

	if (backend < 0 || (size_t)backend >= sizeof(names) / sizeof(names[0]) || !names[backend])
		return "unknown";
	return names[backend];
}

const struct dm_exclusive_module dm_exclusive_modules[] = {
	{ "damon_stat", "DAMON_STAT" },
	{ "damon_reclaim", "DAMON_RECLAIM" },
	{ "damon_lru_sort", "DAMON_LRU_SORT" },
};

const size_t dm_nr_exclusive_modules =
	sizeof(dm_exclusive_modules) / sizeof(dm_exclusive_modules[0]);
