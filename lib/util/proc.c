// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

int dm_proc_pid_alive(const char *proc_root, pid_t pid)
{
	char path[PATH_MAX], stat[512];
	const char *p;
	ssize_t n;
	int r;

	if (pid <= 0)
		return -ESRCH;
	r = dm_proc_path(path, sizeof(path), proc_root, pid, "stat");
	if (r < 0)
		return r;
	n = dm_proc_read_file(path, stat, sizeof(stat));
	if (n == -ERANGE)
		n = (ssize_t)strlen(stat);
	if (n == -ENOENT || n == -ESRCH)
		return -ESRCH;
	if (n < 0)
		return (int)n;
	/* "pid (comm) S ...": comm may hold ')' and spaces, the state follows the last ')'. */
	p = strrchr(stat, ')');
	if (!p || p[1] != ' ')
		return -ESRCH; /* an empty stat: the task is being torn down */
	if (p[2] == 'Z' || p[2] == 'X')
		return -ESRCH;
	/*
	 * An exiting task is not a zombie yet while its address space is torn
	 * down (tens of ms for a large one), but its files under /proc/PID
	 * already fail: gone too. Its flags are field 9 (after state, ppid,
	 * pgrp, session, tty_nr and tpgid); the walk never passes the NUL.
	 */
	p += 2;
	for (int field = 3; field < 9 && *p; field++) {
		p += strcspn(p, " ");
		if (*p)
			p++;
	}
	if (*p && strtoul(p, NULL, 10) & DM_PF_EXITING)
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
