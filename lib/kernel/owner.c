// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "owner.h"
#include "../util/proc.h"
#include "../util/fail.h"

int dm_proc_start_time(const char *proc_root, pid_t pid, uint64_t *ret)
{
	char path[PATH_MAX], buf[1024];
	struct dm_proc_stat st;
	ssize_t n;

	if (dm_proc_path(path, sizeof(path), proc_root, pid, "stat") < 0)
		return -EINVAL;
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n < 0 && n != -ERANGE)
		return n == -ENOENT ? -ESRCH : (int)n;
	/* field 22 (until it was counted from 2, field 23, vsize, was read:
	 * it changes as the owner maps memory, and a live owner looked like
	 * a recycled pid) */
	if (dm_proc_stat_parse(buf, &st) < 0 || st.nr_fields < 22)
		return -ESRCH;
	*ret = st.start_time;
	return 0;
}

static void rec_path(char *buf, size_t sz, const char *run_dir, unsigned long idx)
{
	snprintf(buf, sz, "%s/kdamond-%lu.owner", run_dir ? run_dir : DM_RUN_DIR_DEFAULT, idx);
}

int dm_proc_pidns(const char *proc_root, struct dm_pidns *ret)
{
	char path[PATH_MAX];
	struct stat st;

	if (dm_proc_path(path, sizeof(path), proc_root, 0, "ns/pid") < 0)
		return -EINVAL;
	if ((DM_FAIL(ENOENT) ? -1 : stat(path, &st)) < 0)
		return -errno;
	ret->dev = (uint64_t)st.st_dev;
	ret->ino = (uint64_t)st.st_ino;
	return 0;
}

static bool ns_known(const struct dm_pidns *ns)
{
	return ns->dev || ns->ino;
}

/* The next blank-separated decimal number of *p, at most @max. */
static bool next_num(const char **p, uint64_t max, uint64_t *ret)
{
	const char *s = *p + strspn(*p, " \t\n");
	uint64_t v = 0;
	size_t n = 0;

	for (; s[n] >= '0' && s[n] <= '9'; n++) {
		uint64_t d = (uint64_t)(s[n] - '0');

		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (!n || (s[n] && !strchr(" \t\n", s[n])))
		return false;
	*p = s + n;
	*ret = v;
	return true;
}

int dm_owner_parse(const char *text, struct dm_owner_rec *ret)
{
	uint64_t ver = 0, owner = 0, st = 0, kpid = 0, dev = 0, ino = 0;
	const char *p = text + strspn(text, " \t\n");

	if (strncmp(p, "libdamon", 8) || !p[8] || !strchr(" \t\n", p[8]))
		return -EINVAL;
	p += 8;
	if (!next_num(&p, 2, &ver) || ver < 1 || !next_num(&p, INT_MAX, &owner) || !owner ||
	    !next_num(&p, UINT64_MAX, &st) || !next_num(&p, INT_MAX, &kpid))
		return -EINVAL;
	if (ver == 2 && (!next_num(&p, UINT64_MAX, &dev) || !next_num(&p, UINT64_MAX, &ino)))
		return -EINVAL;
	if (p[strspn(p, " \t\n")])
		return -EINVAL;
	ret->owner = (pid_t)owner;
	ret->start_time = st;
	ret->kdamond_pid = (pid_t)kpid;
	ret->ns.dev = dev;
	ret->ns.ino = ino;
	return 0;
}

enum dm_owner_state dm_owner_read(const char *run_dir, const char *proc_root, unsigned long idx,
				  struct dm_owner_rec *ret)
{
	char path[PATH_MAX], buf[160];
	struct dm_pidns mine = {0};
	uint64_t now_st;
	ssize_t n;

	memset(ret, 0, sizeof(*ret));
	rec_path(path, sizeof(path), run_dir, idx);
	n = dm_proc_read_file(path, buf, sizeof(buf));
	if (n == -ENOENT)
		return DM_OWNER_NONE;
	if (n < 0 || dm_owner_parse(buf, ret) < 0)
		return DM_OWNER_BAD;
	/*
	 * OWNER counts in the writer's pid namespace. Judged only when that
	 * is ours; when either side's namespace is unknown (a version 1
	 * record, a kernel without pid namespaces), by pid as before.
	 */
	if (ns_known(&ret->ns) && !dm_proc_pidns(proc_root, &mine) && ns_known(&mine) &&
	    (mine.dev != ret->ns.dev || mine.ino != ret->ns.ino))
		return DM_OWNER_OTHER_NS;
	if (dm_proc_pid_alive(proc_root, ret->owner) == -ESRCH)
		return DM_OWNER_ORPHAN;
	if (dm_proc_start_time(proc_root, ret->owner, &now_st) == 0 && now_st != ret->start_time)
		return DM_OWNER_ORPHAN; /* the pid was recycled */
	return DM_OWNER_ALIVE;
}

int dm_owner_write(const char *run_dir, unsigned long idx, const struct dm_owner_rec *rec,
		   struct dm_err *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], line[160];
	int fd, len;

	rec_path(path, sizeof(path), run_dir, idx);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(line, sizeof(line), "libdamon 2 %d %llu %d %llu %llu\n", (int)rec->owner,
		       (unsigned long long)rec->start_time, (int)rec->kdamond_pid,
		       (unsigned long long)rec->ns.dev, (unsigned long long)rec->ns.ino);
	fd = DM_FAIL(EACCES)
		     ? -1
		     : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: cannot write libdamon's record %s: %s", tmp,
				  strerror(errno));
	if ((DM_FAIL(ENOSPC) ? -1 : write(fd, line, (size_t)len)) != len) {
		int e = errno ? errno : EIO;

		close(fd);
		unlink(tmp);
		return dm_err_set(err, -e, "kernel: cannot write libdamon's record %s: %s", tmp,
				  strerror(e));
	}
	close(fd);
	if ((DM_FAIL(EACCES) ? -1 : rename(tmp, path)) < 0) {
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
	if ((DM_FAIL(EACCES) ? -1 : mkdir(run_dir, 0700)) < 0 && errno != EEXIST)
		return dm_err_set(err, -errno,
				  "kernel: cannot create libdamon's run directory %s: %s", run_dir,
				  strerror(errno));
	snprintf(path, sizeof(path), "%s/lock", run_dir);
	fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: cannot open libdamon's lock %s: %s", path,
				  strerror(errno));
	if ((DM_FAIL(ENOLCK) ? -1 : fcntl(fd, F_SETLK, &fl)) < 0) {
		int e = errno;
		struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

		if (e == EAGAIN || e == EACCES) {
			/* l_pid counts in our pid namespace: 0 when the holder
			 * lives in another one (a container sharing /run) */
			bool known = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK;

			if (known && who.l_pid > 0)
				dm_err_set(err, -EBUSY,
					   "kernel: libdamon process %d drives kernel DAMON "
					   "(it holds %s); stop its context or use another backend",
					   (int)who.l_pid, path);
			else
				dm_err_set(err, -EBUSY,
					   "kernel: another libdamon process drives kernel DAMON "
					   "(it holds %s%s); stop its context or use another backend",
					   path,
					   known ? " and lives in another pid namespace" : "");
			close(fd);
			return -EBUSY;
		}
		close(fd);
		return dm_err_set(err, -e, "kernel: cannot lock %s: %s", path, strerror(e));
	}
	*ret_fd = fd;
	return 0;
}
