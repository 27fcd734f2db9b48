/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Small /proc helpers. Every path starts at a proc root that tests may
 * replace with a recorded tree; NULL means "/proc".
 */
#ifndef DAMON_UTIL_PROC_H
#define DAMON_UTIL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* The fields of /proc/PID/stat that libdamon reads. */
struct dm_proc_stat {
	char comm[64];		/* between the first '(' and the last ')', cut to fit */
	char state;		/* field 3: R, S, D, Z, X, ... */
	uint64_t flags;		/* field 9: PF_* */
	uint64_t start_time;	/* field 22: jiffies since boot */
	unsigned int nr_fields; /* fields read from the start: 3 = up to the state */
};

/*
 * Parse the text of /proc/PID/stat: "PID (COMM) S PPID ... FLAGS ...
 * STARTTIME ...". COMM may hold blanks and ')', so the fields after it
 * start at the last ')'. Fields are read up to 22; flags and start time must
 * be whole decimal numbers, and one that is not (or a text cut short) ends
 * the walk: nr_fields says how far it got. Never reads past the NUL.
 * Return: 0, or -EINVAL when there is no "(COMM) S" (garbage, or the empty
 * stat of a task being torn down).
 */
int dm_proc_stat_parse(const char *text, struct dm_proc_stat *ret);

/*
 * The next line of @f that fits in @buf (with its '\n'); longer lines are
 * skipped whole, so the tail of one is never taken for a line of its own.
 * Return: false at the end of the file.
 */
bool dm_proc_getline(FILE *f, char *buf, size_t size);

/* 1 to @max_digits hex digits at @p (either case) into *ret.
 * Return: the end of the number, or NULL (none, or too many). */
const char *dm_parse_hex(const char *p, unsigned int max_digits, uint64_t *ret);

/*
 * One line of /proc/iomem, if it is a top-level (not indented) System RAM
 * entry: "START-END : System RAM" in hex, END inclusive, START < END <
 * UINT64_MAX (a root-only file shows zeros to others: not an entry). The
 * line ends at '\n' or NUL.
 * Return: true and *ret_start, *ret_last.
 */
bool dm_proc_iomem_ram(const char *line, uint64_t *ret_start, uint64_t *ret_last);

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
