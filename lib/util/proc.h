/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Small /proc helpers. Every path starts at a proc root that tests may
 * replace with a recorded tree; NULL means "/proc".
 */
#ifndef DAMON_UTIL_PROC_H
#define DAMON_UTIL_PROC_H

#include <stddef.h>
#include <sys/types.h>

#define DM_PROC_ROOT_DEFAULT "/proc"

/*
 * Write "<proc_root>/<pid>/<file>" into @buf; @pid 0 means "self".
 * @file may be NULL or "" for the pid directory itself.
 * Return: 0, -EINVAL (negative pid, NULL buf) or -ENAMETOOLONG.
 */
int dm_proc_path(char *buf, size_t size, const char *proc_root, pid_t pid, const char *file);

/*
 * Read the whole of a small file into @buf (NUL-terminated), retrying short
 * reads until EOF.
 * Return: bytes read (excluding the NUL), -ERANGE when the file does not fit
 * (@buf then holds the first size-1 bytes), or -errno of open/read.
 */
ssize_t dm_proc_read_file(const char *path, char *buf, size_t size);

/*
 * Is process @pid alive under @proc_root? A zombie counts as gone: it has no
 * address space left to monitor.
 * Return: 0, -ESRCH (no such process, or a zombie), or -errno when /proc
 * cannot tell (e.g. -EACCES).
 */
int dm_proc_pid_alive(const char *proc_root, pid_t pid);

/*
 * The calling process's pid as @proc_root numbers it ("self" link), which
 * differs from getpid() only when @proc_root belongs to another pid
 * namespace; getpid() when the link cannot be read.
 */
pid_t dm_proc_self_pid(const char *proc_root);

#endif
