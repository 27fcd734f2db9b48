// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "owner.h"
#include "../util/proc.h"

int dm_proc_start_time(const char *proc_root, pid_t pid, uint64_t *ret)
{
	char path[PATH_MAX], buf[1024];
	const char *p;
	ssize_t n;
	int field;

	if (dm_proc_path(path, sizeof(path), proc_root, pid, "stat") < 0)
		return -EINVAL;
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n == -ERANGE)
		n = (ssize_t)strlen(buf);
	if (n < 0)
		return n == -ENOENT ? -ESRCH : (int)n;
	/* comm may hold ") "; the fields after it start at the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -ESRCH;
	p++;
	/* field 3 (state) is the first after ')' */
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -ESRCH;
	*ret = strtoull(p + 1, NULL, 10);
	return 0;
}

static void rec_path(char *buf, size_t sz, const char *run_dir, unsigned long idx)
{
	snprintf(buf, sz, "%s/kdamond-%lu.owner", run_dir ? run_dir : DM_RUN_DIR_DEFAULT, idx);
}

enum dm_owner_state dm_owner_read(const char *run_dir, const char *proc_root, unsigned long idx,
				  struct dm_owner_rec *ret)
{
	char path[PATH_MAX], buf[128];
	unsigned long long st;
	int owner, kpid, ver;
	uint64_t now_st;
	ssize_t n;

	memset(ret, 0, sizeof(*ret));
	rec_path(path, sizeof(path), run_dir, idx);
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n == -ENOENT)
		return DM_OWNER_NONE;
	if (n < 0)
		return DM_OWNER_BAD;
	if (sscanf(buf, "libdamon %d %d %llu %d", &ver, &owner, &st, &kpid) != 4 || ver != 1 ||
	    owner <= 0)
		return DM_OWNER_BAD;
	ret->owner = owner;
	ret->start_time = st;
	ret->kdamond_pid = kpid;
	if (dm_proc_pid_alive(proc_root, owner) == -ESRCH)
		return DM_OWNER_ORPHAN;
	if (dm_proc_start_time(proc_root, owner, &now_st) == 0 && now_st != st)
		return DM_OWNER_ORPHAN; /* the pid was recycled */
	return DM_OWNER_ALIVE;
}

int dm_owner_write(const char *run_dir, unsigned long idx, const struct dm_owner_rec *rec,
		   struct dm_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], line[128];
	int fd, len;

	rec_path(path, sizeof(path), run_dir, idx);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(line, sizeof(line), "libdamon 1 %d %llu %d\n", (int)rec->owner,
		       (unsigned long long)rec->start_time, (int)rec->kdamond_pid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: cannot write libdamon's record %s: %s", tmp,
				  strerror(errno));
	if (write(fd, line, (size_t)len) != len) {
		int e = errno ? errno : EIO;

		close(fd);
		unlink(tmp);
		return dm_err_set(err, -e, "kernel: cannot write libdamon's record %s: %s", tmp,
				  strerror(e));
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return dm_err_set(err, -e, "kernel: cannot rename %s to %s: %s", tmp, path,
				  strerror(e));
	}
	return 0;
}

void dm_owner_remove(const char *run_dir, unsigned long idx)
{
	char path[PATH_MAX];

	rec_path(path, sizeof(path), run_dir, idx);
	unlink(path);
}

int dm_owner_lock(const char *run_dir, int *ret_fd, struct dm_err *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[PATH_MAX];
	int fd;

	if (!run_dir)
		run_dir = DM_RUN_DIR_DEFAULT;
	if (mkdir(run_dir, 0700) < 0 && errno != EEXIST)
		return dm_err_set(err, -errno,
				  "kernel: cannot create libdamon's run directory %s: %s", run_dir,
				  strerror(errno));
	snprintf(path, sizeof(path), "%s/lock", run_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: cannot open libdamon's lock %s: %s", path,
				  strerror(errno));
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		int e = errno;
		struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

		if (e == EAGAIN || e == EACCES) {
			if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
				dm_err_set(err, -EBUSY,
					   "kernel: libdamon process %d drives kernel DAMON "
					   "(it holds %s); stop its context or use another backend",
					   (int)who.l_pid, path);
			else
				dm_err_set(err, -EBUSY,
					   "kernel: another libdamon process drives kernel DAMON "
					   "(it holds %s); stop its context or use another backend",
					   path);
			close(fd);
			return -EBUSY;
		}
		close(fd);
		return dm_err_set(err, -e, "kernel: cannot lock %s: %s", path, strerror(e));
	}
	*ret_fd = fd;
	return 0;
}
