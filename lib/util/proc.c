// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "fail.h"

#define DM_PF_EXITING 0x00000004 /* the kernel's PF_EXITING, in /proc/PID/stat flags */

int dm_proc_path(char *buf, size_t size, const char *proc_root, pid_t pid, const char *file)
{
	int n;

	if (!buf || !size || pid < 0)
		return -EINVAL;
	if (!proc_root || !*proc_root)
		proc_root = DM_PROC_ROOT_DEFAULT;
	if (!file)
		file = "";
	if (pid == 0)
		n = snprintf(buf, size, "%s/self%s%s", proc_root, *file ? "/" : "", file);
	else
		n = snprintf(buf, size, "%s/%d%s%s", proc_root, (int)pid, *file ? "/" : "", file);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

ssize_t dm_proc_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, ret = 0;

	if (!path || !buf || !size)
		return -EINVAL;
	fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (len + 1 >= size) {
			char probe;

			/* Full: is there more? */
			do
				n = DM_FAIL(EIO) ? -1 : read(fd, &probe, 1);
			while (n < 0 && errno == EINTR);
			if (n > 0)
				ret = -ERANGE;
			else if (n < 0)
				ret = -errno;
			break;
		}
		n = DM_FAIL(EIO) ? -1 : read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return ret ? ret : (ssize_t)len;
}

/* A whole unsigned decimal number in [p, end), no sign, no overflow. */
static bool parse_u64_span(const char *p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;

	if (p == end)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ret = v;
	return true;
}

int dm_proc_stat_parse(const char *text, struct dm_proc_stat *ret)
{
	const char *open, *close, *p;
	size_t n;

	memset(ret, 0, sizeof(*ret));
	open = strchr(text, '(');
	close = strrchr(text, ')');
	/* the state is one character after ") " */
	if (!open || !close || close < open || close[1] != ' ' || !close[2] || close[2] == ' ' ||
	    close[2] == '\n')
		return -EINVAL;
	n = (size_t)(close - open - 1);
	if (n >= sizeof(ret->comm))
		n = sizeof(ret->comm) - 1;
	memcpy(ret->comm, open + 1, n);
	ret->comm[n] = '\0';
	ret->state = close[2];
	/* field by field from the state on; the kernel separates them by one blank */
	p = close + 2;
	for (unsigned int field = 3;; field++) {
		const char *end = p + strcspn(p, " \n");

		if (field == 9 && !parse_u64_span(p, end, &ret->flags))
			break;
		if (field == 22 && !parse_u64_span(p, end, &ret->start_time))
			break;
		ret->nr_fields = field;
		if (field == 22 || *end != ' ')
			break;
		p = end + 1;
	}
	return 0;
}

bool dm_proc_getline(FILE *f, char *buf, size_t size)
{
	bool skip = false;

	while (fgets(buf, (int)size, f)) {
		size_t n = strlen(buf);
		bool whole = n && buf[n - 1] == '\n';

		if (!whole && n + 1 < size)
			whole = true; /* the last line, without '\n' (or a NUL inside) */
		if (!skip && whole)
			return true;
		skip = !whole;
	}
	return false;
}

const char *dm_parse_hex(const char *p, unsigned int max_digits, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned int n = 0;

	for (;; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			break;
		if (++n > max_digits)
			return NULL;
		v = (v << 4) | d;
	}
	if (!n)
		return NULL;
	*ret = v;
	return p;
}

bool dm_proc_iomem_ram(const char *line, uint64_t *ret_start, uint64_t *ret_last)
{
	static const char tail[] = " : System RAM";
	uint64_t s, e;
	const char *p = dm_parse_hex(line, 16, &s);

	if (!p || *p != '-' || !(p = dm_parse_hex(p + 1, 16, &e)))
		return false;
	if (strncmp(p, tail, sizeof(tail) - 1) ||
	    (p[sizeof(tail) - 1] && p[sizeof(tail) - 1] != '\n'))
		return false;
	if (s >= e || e == UINT64_MAX)
		return false;
	*ret_start = s;
	*ret_last = e;
	return true;
}

int dm_proc_pid_alive(const char *proc_root, pid_t pid)
{
	char path[PATH_MAX], stat[512];
	struct dm_proc_stat st;
	ssize_t n;
	int r;

	if (pid <= 0)
		return -ESRCH;
	r = dm_proc_path(path, sizeof(path), proc_root, pid, "stat");
	if (r < 0)
		return r;
	n = dm_proc_read_file(path, stat, sizeof(stat));
	if (n == -ENOENT || n == -ESRCH)
		return -ESRCH;
	if (n < 0 && n != -ERANGE)
		return (int)n;
	/* no "(comm) S": an empty stat, the task is being torn down */
	if (dm_proc_stat_parse(stat, &st) < 0)
		return -ESRCH;
	if (st.state == 'Z' || st.state == 'X')
		return -ESRCH;
	/*
	 * An exiting task is not a zombie yet while its address space is torn
	 * down (tens of ms for a large one), but its files under /proc/PID
	 * already fail: gone too. Its flags are field 9 (after state, ppid,
	 * pgrp, session, tty_nr and tpgid).
	 */
	if (st.nr_fields >= 9 && (st.flags & DM_PF_EXITING))
		return -ESRCH;
	return 0;
}

pid_t dm_proc_self_pid(const char *proc_root)
{
	char path[PATH_MAX], link[32];
	ssize_t n;
	char *end;
	long v;

	if (!proc_root || !*proc_root)
		proc_root = DM_PROC_ROOT_DEFAULT;
	if (snprintf(path, sizeof(path), "%s/self", proc_root) >= (int)sizeof(path))
		return getpid();
	n = DM_FAIL(EACCES) ? -1 : readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return getpid();
	link[n] = '\0';
	errno = 0;
	v = strtol(link, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return getpid();
	return (pid_t)v;
}
