/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The kernel's words for libdamon's enums: operations sets, DAMOS actions,
 * quota goal metrics, filter types and the exclusive DAMON modules. One table each, shared by the API's sentences,
 * the kernel backend's sysfs writes and the probe's verdicts.
 */
#ifndef DAMON_UTIL_NAMES_H
#define DAMON_UTIL_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* "vaddr", "fvaddr", "paddr"; NULL for anything else. */
const char *dm_ops_name(uint32_t ops);

/* "stat", "cold", ... as the kernel's schemes/N/action file spells them;
 * NULL for anything else. */
const char *dm_action_name(uint32_t action);

/* "user_input", ... as goals/M/target_metric spells them; NULL for anything
 * else. */
const char *dm_goal_metric_name(uint32_t metric);

/* "anon", ..., "target" as filters/M/type spells them; NULL for anything else. */
const char *dm_filter_type_name(uint32_t type);

/* libdamon's own words for its backends (damon_backend_name()): "auto",
 * "kernel", "page_idle", ...; "unknown" for anything else. */
const char *dm_backend_name(int backend);

/* Modules whose running kdamond makes every other kdamond start fail. */
struct dm_exclusive_module {
	const char *module; /* /sys/module/<module> */
	const char *name;   /* what a person calls it */
};

extern const struct dm_exclusive_module dm_exclusive_modules[];
extern const size_t dm_nr_exclusive_modules;

#endif
