/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * cgroup v2 directories: checking that a directory is one, and reading
 * which processes it holds (cgroup.procs: thread-group leaders only, in the
 * reader's pid namespace).
 */
#ifndef DAMON_UTIL_CGROUP_H
#define DAMON_UTIL_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

#include "alloc.h"
#include "err.h"

/*
 * Open @path (or, @path NULL, a duplicate of the open directory @fd) as a
 * cgroup v2 directory: on a cgroup2 file system (statfs magic) and with a
 * cgroup.procs file. Return: an O_CLOEXEC directory fd, or -ENOENT (no such
 * directory), -ENOTDIR (not a directory), -EINVAL (a directory that is not
 * a cgroup v2 one: another file system, or cgroup v1; or @fd not open),
 * -EPERM (cgroup.procs unreadable), or another -errno, with a sentence in
 * @err.
 */
int dm_cgroup_open(const char *path, int fd, struct dm_err *err);

/*
 * The pids cgroup.procs of the cgroup directory @dirfd lists now, sorted
 * ascending, without 0 (processes outside this pid namespace). *@ret is
 * allocated with @a (free it with dm_free) and may be NULL when the count
 * is 0. Return: the count, or -errno (-ENOENT/-ENODEV: the cgroup was
 * removed) with a sentence in @err.
 */
ssize_t dm_cgroup_read_pids(int dirfd, const struct dm_alloc *a, pid_t **ret, struct dm_err *err);

/* Is @pid in the sorted array @v of @n pids? */
int dm_cgroup_has_pid(const pid_t *v, size_t n, pid_t pid);

#endif
