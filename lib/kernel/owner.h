/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What libdamon owns in kernel DAMON, and the lock between libdamon users.
 *
 * The run directory (default /run/libdamon, mode 0700; tests inject their
 * own) holds:
 *  - "lock": a POSIX record lock (fcntl F_SETLK, whole file) held by the
 *    process that drives kernel DAMON, from dm_kernel_open() to
 *    dm_kernel_close(). A record lock belongs to a process: it is not
 *    inherited by fork() children (a flock() or OFD lock would be, and a
 *    crashed owner's forked workload would keep it alive) and the kernel
 *    drops it when the process dies, however it dies.
 *  - "kdamond-N.owner": one line
 *    "libdamon 2 OWNER_PID START_TIME KDAMOND_PID PIDNS_DEV PIDNS_INO"
 *    for each kdamond directory N libdamon created, written before the
 *    directory exists. START_TIME is field 22 of /proc/OWNER_PID/stat, so a
 *    recycled pid is not taken for the owner. A record whose owner is gone
 *    marks an orphan, which the next libdamon user turns off and removes.
 *    OWNER_PID counts in the owner's pid namespace, named by PIDNS_DEV and
 *    PIDNS_INO (st_dev, st_ino of /proc/self/ns/pid; 0 0: unknown). A
 *    container sharing /run with the host writes numbers that mean nothing
 *    here (or name an unrelated task), so an owner in another pid namespace
 *    is never judged: it counts as alive. Version 1 records (written before
 *    the namespace fields existed) are read and judged by pid as before.
 * /run is a tmpfs: records vanish at reboot, as kdamonds do.
 */
#ifndef DAMON_KERNEL_OWNER_H
#define DAMON_KERNEL_OWNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/err.h"

#define DM_RUN_DIR_DEFAULT "/run/libdamon"

/* A pid namespace: st_dev and st_ino of its /proc/PID/ns/pid (0, 0: unknown). */
struct dm_pidns {
	uint64_t dev, ino;
};

struct dm_owner_rec {
	pid_t owner;
	uint64_t start_time; /* field 22 of /proc/OWNER/stat */
	pid_t kdamond_pid;   /* 0 before it ran */
	struct dm_pidns ns;  /* the owner's; read (or written) as {0, 0} when unknown */
};

enum dm_owner_state {
	DM_OWNER_NONE,	 /* no record: not libdamon's */
	DM_OWNER_ALIVE,	 /* a live libdamon process owns it */
	DM_OWNER_ORPHAN, /* its libdamon owner is gone */
	DM_OWNER_BAD,	 /* a record that cannot be parsed */
	DM_OWNER_OTHER_NS, /* a libdamon process of another pid namespace owns it:
			    * taken as alive, never reclaimed from here */
};

/* Start time (jiffies since boot, /proc/PID/stat field 22) of @pid. */
int dm_proc_start_time(const char *proc_root, pid_t pid, uint64_t *ret);

/* The pid namespace of the calling process, seen through @proc_root
 * (NULL: /proc). -errno when it cannot be read (no CONFIG_PID_NS). */
int dm_proc_pidns(const char *proc_root, struct dm_pidns *ret);

/*
 * Parse the text of a record (version 1 or 2): blank-separated decimal
 * numbers, pids within 1..INT_MAX (the kdamond's 0..INT_MAX), nothing but
 * blanks after them. Return: 0, or -EINVAL.
 */
int dm_owner_parse(const char *text, struct dm_owner_rec *ret);

/* Read the record of kdamond @idx and judge its owner (pids of our own pid
 * namespace only; OTHER_NS otherwise). */
enum dm_owner_state dm_owner_read(const char *run_dir, const char *proc_root, unsigned long idx,
				  struct dm_owner_rec *ret);

/* Write @rec (version 2; @rec->ns as given, the caller fills it). */
int dm_owner_write(const char *run_dir, unsigned long idx, const struct dm_owner_rec *rec,
		   struct dm_err *err);
void dm_owner_remove(const char *run_dir, unsigned long idx);

/* Take the lock (mkdir -p the run dir). -EBUSY naming the holder's pid. */
int dm_owner_lock(const char *run_dir, int *ret_fd, struct dm_err *err);

#endif
