// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Who holds DAMON (kernel.h, "Taking DAMON"): an exclusive module that
 * runs, a kdamond of another libdamon process, a kdamond that is nobody's
 * of ours; and orphans left by a crashed libdamon process, reclaimed.
 * Everything here reads, except the reclaiming pass under the lock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel_int.h"
#include "../util/names.h"
#include "../util/fail.h"

/* -EBUSY naming an exclusive module that runs, else 0. */
int dm_kernel_check_modules(const struct dm_sysfs *fs, struct dm_err *err)
{
	char val[16];

	for (size_t i = 0; i < dm_nr_exclusive_modules; i++) {
		int n = dm_sysfs_read(fs, val, sizeof(val), NULL, "module/%s/parameters/enabled",
				      dm_exclusive_modules[i].module);

		if (n > 0 && (!strcmp(val, "Y") || !strcmp(val, "y") || !strcmp(val, "1")))
			return dm_err_set(
				err, -EBUSY,
				"kernel: %s is running and DAMON allows no other kdamond "
				"while it runs; write N to %s/module/%s/parameters/enabled "
				"or use another backend",
				dm_exclusive_modules[i].name, fs->root,
				dm_exclusive_modules[i].module);
	}
	return 0;
}

/* Indexes of the kdamond directories, ascending. */
static int list_index_dirs(const struct dm_sysfs *fs, const char *path, unsigned long *v,
			   size_t cap, size_t *ret_n, struct dm_err *err)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int fd;

	fd = DM_FAIL(EACCES) ? -1 : openat(fs->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: %s/%s cannot be listed: %s", fs->root, path,
				  strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return dm_err_set(err, -ENOMEM, "kernel: %s/%s cannot be listed", fs->root, path);
	}
	while ((de = readdir(d))) {
		uint64_t x;
		struct stat st;

		if (!dm_parse_u64(de->d_name, &x) || (de->d_name[0] == '0' && de->d_name[1]))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (n == cap) {
			closedir(d);
			return dm_err_set(err, -E2BIG, "kernel: %s/%s has more than %zu entries",
					  fs->root, path, cap);
		}
		/* insertion keeps them sorted */
		size_t j = n++;
		while (j && v[j - 1] > x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = (unsigned long)x;
	}
	closedir(d);
	*ret_n = n;
	return 0;
}

/*
 * Decide whether DAMON can be taken; reclaim orphans. On success the tree
 * holds only kdamond directories that may be erased.
 */
int dm_kernel_judge_kdamonds(struct dm_kernel *k, bool allow_takeover, bool reclaim,
			     struct dm_err *err)
{
	unsigned long idx[MAX_KDAMONDS];
	size_t n = 0;
	char state[32];
	int rc;

	rc = list_index_dirs(&k->fs, DM_KDS, idx, MAX_KDAMONDS, &n, err);
	if (rc)
		return rc;
	/* first pass: anything in the way? */
	for (size_t i = 0; i < n; i++) {
		struct dm_owner_rec rec;
		enum dm_owner_state os = dm_owner_read(k->run_dir, k->proc_root, idx[i], &rec);
		int sn = dm_sysfs_read(&k->fs, state, sizeof(state), NULL, DM_KDS "/%lu/state",
				       idx[i]);
		bool on = sn > 0 && strcmp(state, "off");
		char pidtxt[48] = "";
		uint64_t pid;

		if (on && !dm_sysfs_read_u64(&k->fs, &pid, NULL, DM_KDS "/%lu/pid", idx[i]))
			snprintf(pidtxt, sizeof(pidtxt), " (pid %llu)", (unsigned long long)pid);
		if (os == DM_OWNER_ALIVE && rec.owner == getpid())
			return dm_err_set(err, -EBUSY,
					  "kernel: this process already drives kernel DAMON "
					  "(kdamond %lu) with another context; stop that one first",
					  idx[i]);
		if (os == DM_OWNER_ALIVE)
			return dm_err_set(err, -EBUSY,
					  "kernel: kdamond %lu%s belongs to libdamon process %d, "
					  "which is still running; stop its context or use another "
					  "backend",
					  idx[i], pidtxt, (int)rec.owner);
		if (os == DM_OWNER_OTHER_NS)
			return dm_err_set(
				err, -EBUSY,
				"kernel: kdamond %lu%s belongs to libdamon process %d in "
				"another pid namespace, which cannot be checked from here "
				"and so counts as running; stop its context there or use "
				"another backend",
				idx[i], pidtxt, (int)rec.owner);
		if (os == DM_OWNER_ORPHAN)
			continue;
		if (on)
			return dm_err_set(
				err, -EBUSY,
				"kernel: kdamond %lu%s is running and is not libdamon's, so "
				"nr_kdamonds cannot change; stop it (write off to "
				"%s/" DM_KDS "/%lu/state) or use another backend",
				idx[i], pidtxt, k->fs.root, idx[i]);
		if (!allow_takeover)
			return dm_err_set(
				err, -EBUSY,
				"kernel: kdamond %lu exists (%s) and is not libdamon's, and "
				"writing nr_kdamonds would erase it; remove it (write 0 to "
				"%s/" DM_KDS "/nr_kdamonds) or use another backend",
				idx[i], sn > 0 ? state : "state unreadable", k->fs.root);
	}
	if (!reclaim)
		return 0;
	/* second pass: turn orphans off (a running kdamond blocks nr_kdamonds) */
	for (size_t i = 0; i < n; i++) {
		struct dm_owner_rec rec;

		if (dm_owner_read(k->run_dir, k->proc_root, idx[i], &rec) != DM_OWNER_ORPHAN)
			continue;
		if (dm_sysfs_read(&k->fs, state, sizeof(state), NULL, DM_KDS "/%lu/state", idx[i]) >
			    0 &&
		    strcmp(state, "off")) {
			rc = dm_sysfs_write(&k->fs, "off", err, DM_KDS "/%lu/state", idx[i]);
			if (rc) {
				dm_err_append(err,
					      "while reclaiming kdamond %lu left by libdamon "
					      "process %d, which is gone",
					      idx[i], (int)rec.owner);
				return rc;
			}
		}
		k->reclaimed++;
	}
	/* records of kdamonds that no longer exist, and of orphans: drop */
	for (unsigned long i = 0; i < MAX_KDAMONDS; i++) {
		struct dm_owner_rec rec;

		if (dm_owner_read(k->run_dir, k->proc_root, i, &rec) == DM_OWNER_ORPHAN)
			dm_owner_remove(k->run_dir, i);
	}
	return 0;
}
