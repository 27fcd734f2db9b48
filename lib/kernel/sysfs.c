// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysfs.h"
#include "../util/fail.h"

#define PATH_SZ 512

int dm_sysfs_open(struct dm_sysfs *s, const char *root, struct dm_err *err)
{
	if (!root)
		root = "/sys";
	snprintf(s->root, sizeof(s->root), "%s", root);
	s->fd = DM_FAIL(EACCES) ? -1 : open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0)
		return dm_err_set(err, -errno, "kernel: %s cannot be opened: %s", root,
				  strerror(errno));
	return 0;
}

void dm_sysfs_close(struct dm_sysfs *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static bool vpath(char *p, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static bool vpath(char *p, const char *fmt, va_list ap)
{
	int n = vsnprintf(p, PATH_SZ, fmt, ap);

	return n > 0 && n < PATH_SZ;
}

bool dm_sysfs_exists(const struct dm_sysfs *s, const char *fmt, ...)
{
	char p[PATH_SZ];
	struct stat st;
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = vpath(p, fmt, ap);
	va_end(ap);
	return ok && fstatat(s->fd, p, &st, 0) == 0;
}

bool dm_sysfs_is_dir(const struct dm_sysfs *s, const char *fmt, ...)
{
	char p[PATH_SZ];
	struct stat st;
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = vpath(p, fmt, ap);
	va_end(ap);
	return ok && fstatat(s->fd, p, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

const char *dm_sysfs_show(char out[40], const char *in)
{
	size_t i, n = strnlen(in, 33);

	for (i = 0; i < n && i < 32; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[i] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
	}
	if (n > 32)
		memcpy(out + i, "...", 3), i += 3;
	out[i] = '\0';
	return out;
}

static int vread(const struct dm_sysfs *s, char *buf, size_t sz, struct dm_err *err, const char *p)
{
	struct stat st;
	size_t len = 0;
	int fd, rc;

	buf[0] = '\0';
	/* O_NONBLOCK: a FIFO planted where a file should be must not hang us. */
	fd = DM_FAIL(EACCES) ? -1 : openat(s->fd, p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: %s/%s cannot be read: %s", s->root, p,
				  strerror(errno));
	if ((DM_FAIL(EIO) ? -1 : fstat(fd, &st)) < 0 || !S_ISREG(st.st_mode)) {
		rc = dm_err_set(err, -EINVAL, "kernel: %s/%s is not a regular file", s->root, p);
		goto out;
	}
	for (;;) {
		ssize_t n = DM_FAIL(EIO) ? -1 : read(fd, buf + len, sz - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = dm_err_set(err, -errno, "kernel: reading %s/%s failed: %s", s->root, p,
					strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sz - 1) {
			rc = dm_err_set(err, -EINVAL, "kernel: %s/%s holds more than %zu bytes",
					s->root, p, sz - 1);
			goto out;
		}
	}
	if (memchr(buf, '\0', len)) {
		rc = dm_err_set(err, -EINVAL, "kernel: %s/%s holds a NUL byte", s->root, p);
		goto out;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	rc = (int)len;
out:
	close(fd);
	return rc;
}

int dm_sysfs_read(const struct dm_sysfs *s, char *buf, size_t sz, struct dm_err *err,
		  const char *fmt, ...)
{
	char p[PATH_SZ];
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = vpath(p, fmt, ap);
	va_end(ap);
	if (!ok)
		return dm_err_set(err, -ENAMETOOLONG, "kernel: a sysfs path is too long");
	return vread(s, buf, sz, err, p);
}

bool dm_parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return true;
}

bool dm_sysfs_has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; *p;) {
		size_t l;

		p += strspn(p, " \t\n");
		l = strcspn(p, " \t\n");
		if (l == wl && !memcmp(p, word, wl))
			return true;
		p += l;
	}
	return false;
}

int dm_sysfs_read_u64(const struct dm_sysfs *s, uint64_t *ret, struct dm_err *err, const char *fmt,
		      ...)
{
	char p[PATH_SZ], buf[64], q[40];
	va_list ap;
	bool ok;
	int n;

	va_start(ap, fmt);
	ok = vpath(p, fmt, ap);
	va_end(ap);
	if (!ok)
		return dm_err_set(err, -ENAMETOOLONG, "kernel: a sysfs path is too long");
	n = vread(s, buf, sizeof(buf), err, p);
	if (n < 0)
		return n;
	if (!dm_parse_u64(buf, ret))
		return dm_err_set(err, -EINVAL, "kernel: %s/%s reads \"%s\", not a number", s->root,
				  p, dm_sysfs_show(q, buf));
	return 0;
}

static int vwrite(const struct dm_sysfs *s, const char *val, struct dm_err *err, const char *p)
{
	size_t len = strlen(val);
	char q[40];
	ssize_t n;
	int fd;

	/* O_TRUNC as a shell's ">" does: sysfs ignores it, a recorded tree needs it */
	fd = DM_FAIL(EACCES)
		     ? -1
		     : openat(s->fd, p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: %s/%s cannot be opened for writing: %s",
				  s->root, p, strerror(errno));
	do
		n = DM_FAIL(EIO) ? -1 : write(fd, val, len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;

		close(fd);
		return dm_err_set(err, -e, "kernel: writing \"%s\" to %s/%s failed: %s",
				  dm_sysfs_show(q, val), s->root, p, strerror(e));
	}
	close(fd);
	if ((size_t)n != len)
		return dm_err_set(err, -EIO, "kernel: %s/%s took %zd of %zu bytes of \"%s\"",
				  s->root, p, n, len, dm_sysfs_show(q, val));
	return 0;
}

int dm_sysfs_write(const struct dm_sysfs *s, const char *val, struct dm_err *err, const char *fmt,
		   ...)
{
	char p[PATH_SZ];
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = vpath(p, fmt, ap);
	va_end(ap);
	if (!ok)
		return dm_err_set(err, -ENAMETOOLONG, "kernel: a sysfs path is too long");
	return vwrite(s, val, err, p);
}

int dm_sysfs_write_u64(const struct dm_sysfs *s, uint64_t val, struct dm_err *err, const char *fmt,
		       ...)
{
	char p[PATH_SZ], v[24];
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = vpath(p, fmt, ap);
	va_end(ap);
	if (!ok)
		return dm_err_set(err, -ENAMETOOLONG, "kernel: a sysfs path is too long");
	snprintf(v, sizeof(v), "%llu", (unsigned long long)val);
	return vwrite(s, v, err, p);
}
