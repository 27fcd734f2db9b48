/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Small reads and writes of sysfs files under an injectable root (tests
 * point it at a recorded tree in a temp dir). Paths are relative to the
 * root and given printf-style. Every failure comes back as -errno plus a
 * sentence naming the file, so a caller only adds what it was doing.
 */
#ifndef DAMON_KERNEL_SYSFS_H
#define DAMON_KERNEL_SYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

/* Values DAMON's files hold are short; tried_regions numbers included. */
#define DM_SYSFS_VAL_MAX 256

struct dm_sysfs {
	int fd;		/* O_PATH directory of the root */
	char root[256]; /* for sentences */
};

/* Open @root (NULL: "/sys"). */
int dm_sysfs_open(struct dm_sysfs *s, const char *root, struct dm_err *err);
void dm_sysfs_close(struct dm_sysfs *s);

/* Does the path exist (any type)? */
bool dm_sysfs_exists(const struct dm_sysfs *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool dm_sysfs_is_dir(const struct dm_sysfs *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Read a regular file into @buf (NUL-terminated, trailing white space cut).
 * Return: the length, or -errno (-EINVAL: not a regular file, NUL inside,
 * too long for @buf). */
int dm_sysfs_read(const struct dm_sysfs *s, char *buf, size_t sz, struct dm_err *err,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A decimal unsigned number and nothing else. -EINVAL with the value quoted. */
int dm_sysfs_read_u64(const struct dm_sysfs *s, uint64_t *ret, struct dm_err *err, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

/* Write @val with one write() (sysfs takes a value in one piece). */
int dm_sysfs_write(const struct dm_sysfs *s, const char *val, struct dm_err *err, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));
int dm_sysfs_write_u64(const struct dm_sysfs *s, uint64_t val, struct dm_err *err, const char *fmt,
		       ...) __attribute__((format(printf, 4, 5)));

/* Parse a whole decimal unsigned number (no sign, no blanks, no overflow). */
bool dm_parse_u64(const char *s, uint64_t *ret);

/* Is @word one of the blank-separated words of @list (avail_operations)? */
bool dm_sysfs_has_word(const char *list, const char *word);

/* Quote at most 32 bytes of @in for a sentence, printable ASCII only. */
const char *dm_sysfs_show(char out[40], const char *in);

#endif
