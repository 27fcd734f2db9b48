/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * /proc/PID/maps parser. One line:
 *   "start-end perms offset major:minor inode   [name]"
 * Hostile input is expected (fuzzing, recorded fixtures): a malformed line is
 * rejected with -EINVAL, never read past its end.
 */
#ifndef DAMON_OPS_MAPS_H
#define DAMON_OPS_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/region.h"
#include "../util/alloc.h"

enum dm_map_perm {
	DM_MAP_READ = 1u << 0,
	DM_MAP_WRITE = 1u << 1,
	DM_MAP_EXEC = 1u << 2,
	DM_MAP_SHARED = 1u << 3, /* 's'; 'p' (private) leaves it clear */
};

/* Longest name kept; longer names are cut and name_truncated set. */
#define DM_MAP_NAME_MAX 256

struct dm_map {
	uint64_t start, end; /* [start, end), start < end */
	uint64_t offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t perms; /* enum dm_map_perm */
	uint8_t name_truncated;
	char name[DM_MAP_NAME_MAX]; /* pathname, "[heap]", "[stack]", ... or "" */
};

/*
 * Parse one line (a trailing '\n' is allowed; the line ends at '\n' or NUL).
 * Pure: no allocation, no global state.
 * Return: 0, or -EINVAL for a malformed line (@ret then undefined).
 */
int dm_maps_parse_line(const char *line, struct dm_map *ret);

/* "[vsyscall]": listed by /proc but outside the kernel's VMA walk. */
bool dm_map_is_vsyscall(const struct dm_map *m);

/* Kernel-provided special mappings ([vdso], [vvar], [vvar_vclock],
 * [vsyscall], [uprobes], ...) that no user-space primitive can arm. Named
 * anonymous memory ("[anon:...]", "[anon_shmem:...]"), [heap] and [stack]
 * are ordinary memory. */
bool dm_map_is_special(const struct dm_map *m);

/* Called once per well-formed line; a non-zero return stops the walk and is
 * returned by dm_maps_foreach(). */
typedef int (*dm_maps_cb)(const struct dm_map *m, void *userdata);

/*
 * Stream the maps file at @path (no allocation; lines longer than 8 KiB are
 * skipped). Malformed lines are skipped.
 * Return: 0, the callback's non-zero value, or -errno (-ENOENT/-ESRCH when
 * the file or the process is gone).
 */
int dm_maps_foreach(const char *path, dm_maps_cb cb, void *userdata);

/* Same, over text in memory (@len bytes; NULs end lines too). */
int dm_maps_foreach_text(const char *text, size_t len, dm_maps_cb cb, void *userdata);

/*
 * Read every mapping of @path into an array allocated with @a (NULL:
 * malloc); free it with dm_free(@a, *ret).
 * Return: 0 and *ret, *ret_nr (NULL and 0 for an empty file), or -errno.
 */
int dm_maps_read(const char *path, const struct dm_alloc *a, struct dm_map **ret, size_t *ret_nr);

/*
 * The address ranges the kernel's VMA walk would see: @maps in order,
 * [vsyscall] left out, as well as lines that go backwards (start below the
 * previous end), which a consistent maps file never has.
 * Return: number of ranges written to @out (room for @nr is enough).
 */
size_t dm_maps_to_ranges(const struct dm_map *maps, size_t nr, struct dm_range *out);

#endif
