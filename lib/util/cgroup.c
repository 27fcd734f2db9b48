// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * cgroup v2 directories (cgroup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

int dm_cgroup_open(const char *path, int fd, struct dm_err *err)
{
	const char *what = path ? path : "the directory fd given";
	struct statfs sfs;
	struct stat st;
	int dfd, rc;

	if (path)
		dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else
		dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return dm_err_set(err, rc, "cgroup %s: no such directory", what);
		if (rc == -ENOTDIR)
			return dm_err_set(err, rc, "cgroup %s: not a directory", what);
		if (rc == -EBADF)
			return dm_err_set(err, -EINVAL, "cgroup: fd %d is not open", fd);
		return dm_err_set(err, rc, "cgroup %s: cannot open it: %s", what, strerror(-rc));
	}
	if (fstat(dfd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(dfd);
		return dm_err_set(err, -ENOTDIR, "cgroup %s: not a directory", what);
	}
	if (fstatfs(dfd, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		close(dfd);
		return dm_err_set(err, -EINVAL,
				  "cgroup %s: not on a cgroup v2 file system (cgroup2); cgroup v1 "
				  "hierarchies and other directories cannot be followed",
				  what);
	}
	if (faccessat(dfd, "cgroup.procs", R_OK, 0) < 0) {
		rc = -errno;
		close(dfd);
		if (rc == -ENOENT)
			return dm_err_set(err, -EINVAL, "cgroup %s: has no cgroup.procs file",
					  what);
		return dm_err_set(err, rc == -EACCES ? -EPERM : rc,
				  "cgroup %s: cannot read its cgroup.procs: %s", what,
				  strerror(-rc));
	}
	return dfd;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Append @pid to *@v (count *@n, capacity *@cap). */
static int push(const struct dm_alloc *a, pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	if (*n == *cap) {
		pid_t *w = dm_grow(a, *v, cap, *n + 1, sizeof(**v));

		if (!w)
			return -ENOMEM;
		*v = w;
	}
	(*v)[(*n)++] = pid;
	return 0;
}

ssize_t dm_cgroup_read_pids(int dirfd, const struct dm_alloc *a, pid_t **ret, struct dm_err *err)
{
	char buf[4096];
	pid_t *v = NULL;
	size_t n = 0, cap = 0;
	long cur = 0;
	bool in_num = false;
	int fd, rc = 0;

	fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dm_err_set(err, -errno, "cannot open cgroup.procs: %s", strerror(errno));
	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = dm_err_set(err, -errno, "cannot read cgroup.procs: %s",
					strerror(errno));
			break;
		}
		/* one pid per line; a number may span two reads */
		for (ssize_t i = 0; i < got && !rc; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = cur * 10 + (buf[i] - '0');
				in_num = true;
				continue;
			}
			if (in_num && cur > 0 && push(a, &v, &n, &cap, (pid_t)cur))
				rc = dm_err_set(err, -ENOMEM, "out of memory reading cgroup.procs");
			cur = 0;
			in_num = false;
		}
		if (rc || got == 0)
			break;
	}
	if (!rc && in_num && cur > 0 && push(a, &v, &n, &cap, (pid_t)cur))
		rc = dm_err_set(err, -ENOMEM, "out of memory reading cgroup.procs");
	close(fd);
	if (rc) {
		dm_free(a, v);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_pid);
	*ret = v;
	return (ssize_t)n;
}

int dm_cgroup_has_pid(const pid_t *v, size_t n, pid_t pid)
{
	return n && bsearch(&pid, v, n, sizeof(*v), cmp_pid) != NULL;
}
