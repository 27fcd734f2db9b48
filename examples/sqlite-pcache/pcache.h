// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * A SQLite page cache (sqlite3_pcache_methods2) whose pages live in one
 * pool (pool.h), and which gives cold pages back to the kernel when told
 * which address ranges are cold (reclaim.h).
 */
#ifndef SQLITE_PCACHE_PCACHE_H
#define SQLITE_PCACHE_PCACHE_H

#include <stdbool.h>
#include <stdint.h>

struct pc_module;

struct pc_stats {
	uint64_t hits;		 /* xFetch found the page */
	uint64_t misses;	 /* xFetch gave SQLite a new page to fill (a read from the file) */
	uint64_t refused;	 /* xFetch with createFlag > 0 answered NULL */
	uint64_t evicted;	 /* unpinned pages dropped to stay within the cache size */
	uint64_t released;	 /* unpinned pages dropped by pc_release_range() */
	uint64_t reread;	 /* misses on a page pc_release_range() had dropped */
	uint64_t pages;		 /* pages in the caches now, pinned or not */
	uint64_t resident_bytes; /* data of the slots not released since last used */
	uint64_t capacity_bytes; /* data part of the pool */
};

/*
 * A module serving caches of pages up to @page_sz bytes from a pool of
 * @nslots slots. -EINVAL (page_sz not a power of two in 512..65536), -ENOMEM.
 */
int pc_module_new(struct pc_module **ret, uint32_t page_sz, uint32_t nslots);
/* Only after sqlite3_shutdown(), when no cache is left. */
void pc_module_free(struct pc_module *m);

/* sqlite3_config(SQLITE_CONFIG_PCACHE2) with this module; before
 * sqlite3_initialize(). A SQLite result code. */
int pc_module_install(struct pc_module *m);

/* On every cache hit, write one byte of each system page of the page with
 * its own value: for a monitor that sees writes only (uffd_wp, soft_dirty),
 * a fetch then counts as an access. See pcache.c. */
void pc_module_set_touch(struct pc_module *m, bool touch);

/* The pool's data part: the range to monitor. */
void pc_module_data_range(const struct pc_module *m, uint64_t *ret_start, uint64_t *ret_end);
uint32_t pc_module_page_size(const struct pc_module *m);

void pc_module_stats(struct pc_module *m, struct pc_stats *ret);
/* mincore() of the pool: resident bytes of its data and meta parts. */
int pc_module_measure(struct pc_module *m, uint64_t *ret_data, uint64_t *ret_meta);

/*
 * Drop unpinned pages of purgeable caches whose slots lie wholly inside
 * [start, end), at most @max_pages of them, and give their memory back to
 * the kernel. Safe from any thread while SQLite runs. Return: pages dropped.
 */
uint64_t pc_release_range(struct pc_module *m, uint64_t start, uint64_t end, uint64_t max_pages);

#endif
