// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The kernel backend (kernel.h): one kdamond with one context, written
 * whole through sysfs, results read back into snapshots.
 *
 * Taking DAMON (dm_kernel_open):
 *  1. no exclusive module (DAMON_STAT, DAMON_RECLAIM, DAMON_LRU_SORT) runs;
 *  2. libdamon's lock (owner.h) is free;
 *  3. every kdamond directory is libdamon's: its record names a live owner
 *     (then DAMON is busy), or a dead one (an orphan: turned off and erased),
 *     or there is no record (someone else's: busy, unless the caller allows
 *     taking over idle ones). Only then is nr_kdamonds written, since that
 *     erases every kdamond directory;
 *  4. our record is written before the kdamond directory exists, so a crash
 *     at any point leaves something the next user recognises.
 * Files are probed by existence, never by kernel version.
 *
 * This file holds the backend's life: open, commit, pause, close. Who holds
 * DAMON is judged in claim.c, the context written in kwrite.c, a step taken
 * in kstep.c, snapshots read from trace.c or tried.c and published by ksnap.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernel_int.h"

static char *dup_str(const struct dm_alloc *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = dm_malloc(a, n);

	if (d)
		memcpy(d, s, n);
	return d;
}

static void release(struct dm_kernel *k, bool forked)
{
	char state[32];

	if (!forked && k->created) {
		if (dm_sysfs_read(&k->fs, state, sizeof(state), NULL, DM_KDS "/0/state") > 0 &&
		    strcmp(state, "off"))
			dm_sysfs_write(&k->fs, "off", NULL, DM_KDS "/0/state");
		/* Ours is the only kdamond directory (nr_kdamonds could not
		 * change while ours existed without erasing it). */
		dm_sysfs_write(&k->fs, "0", NULL, DM_KDS "/nr_kdamonds");
	}
	if (!forked && k->recorded)
		dm_owner_remove(k->run_dir, 0);
	if (forked)
		k->wake_epfd = -1; /* the epoll set is the parent's too: leave it */
	dm_ktrace_close(k);
	if (k->lock_fd >= 0)
		close(k->lock_fd); /* drops the record lock (a child has none to drop) */
	k->lock_fd = -1;
	dm_sysfs_close(&k->fs);
}

static void k_free(struct dm_kernel *k)
{
	const struct dm_alloc *a = k->alloc;

	dm_free(a, k->targets);
	dm_free(a, k->run_dir);
	dm_free(a, k->proc_root);
	dm_free(a, k->regbuf);
	dm_free(a, k->idxbuf);
	dm_free(a, k->stat_base);
	dm_free(a, k);
}

/* Turning on failed: say why, naming who holds DAMON when we can tell. */
static int on_failed(struct dm_kernel *k, int rc, struct dm_err *err)
{
	struct dm_err why = {0};

	if (rc == -EBUSY && dm_kernel_check_modules(&k->fs, &why))
		*err = why;
	else if (rc == -EBUSY)
		dm_err_append(err, "another DAMON user (a module or kdamond) holds DAMON");
	else if (rc == -EINVAL || rc == -ESRCH)
		dm_err_append(err, "the kernel refused the context (a target gone, or a value "
				   "out of range)");
	return err ? err->code : rc;
}

/* The kdamond's pid, read after every "on" and kept in our record. */
static int read_kdamond_pid(struct dm_kernel *k, struct dm_err *err)
{
	uint64_t pid;
	int rc = dm_sysfs_read_u64(&k->fs, &pid, err, DM_KDS "/0/pid");

	if (rc)
		return rc;
	/* a pid_t: a bigger number would be cut into another task's pid */
	if (!pid || pid > INT_MAX)
		return dm_err_set(err, -EINVAL, "kernel: %s/" DM_KDS "/0/pid reads %llu, not a pid",
				  k->fs.root, (unsigned long long)pid);
	k->kdamond_pid = (pid_t)pid;
	k->rec.kdamond_pid = k->kdamond_pid;
	dm_owner_write(k->run_dir, 0, &k->rec, NULL);
	return 0;
}

/*
 * Before a restart: the stats so far become the base the kernel's new
 * counts add to (dm_kernel_update_stats), so they never go back. They are
 * the values last read (what the kernel counted since is lost): k->schemes
 * may already be freed here, the caller having passed a new array in @cfg
 * (write_body); the schemes themselves outlive it.
 */
static void keep_stats(struct dm_kernel *k, const struct dm_kernel_cfg *cfg)
{
	struct dm_kstat_base *v = NULL;

	if (cfg->nr_schemes) {
		v = dm_calloc(k->alloc, cfg->nr_schemes, sizeof(*v));
		if (!v)
			return;
	}
	for (size_t i = 0; i < cfg->nr_schemes; i++) {
		v[i].sc = cfg->schemes[i];
		v[i].st = cfg->schemes[i]->stats;
	}
	dm_free(k->alloc, k->stat_base);
	k->stat_base = v;
	k->nr_stat_base = cfg->nr_schemes;
}

/*
 * Apply @cfg by turning the kdamond off and on again: "on" looks the
 * targets' pids up in our pid namespace, "commit" in the initial one
 * (write_target). The kernel's regions and their ages start over; the
 * schemes' stats are carried over (@keep).
 */
static int restart(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, bool keep,
		   struct dm_err *err)
{
	int rc;

	if (keep)
		keep_stats(k, cfg);
	rc = dm_sysfs_write(&k->fs, "off", err, DM_KDS "/0/state");
	if (!rc)
		rc = dm_kernel_write_attrs(k, &cfg->attrs, err);
	if (!rc)
		rc = dm_kernel_write_body(k, cfg, err);
	if (!rc) {
		rc = dm_sysfs_write(&k->fs, "on", err, DM_KDS "/0/state");
		if (rc)
			rc = on_failed(k, rc, err);
	}
	if (!rc)
		rc = read_kdamond_pid(k, err);
	return rc;
}

int dm_kernel_open(struct dm_kernel **ret, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	const struct dm_alloc *a = cfg->alloc;
	struct dm_owner_rec *rec;
	struct dm_kernel *k;
	int rc;

	if (!cfg->pub || !cfg->nr_targets || (cfg->nr_schemes && !cfg->schemes))
		return dm_err_set(err, -EINVAL, "kernel: no target or no publisher");
	k = dm_calloc(a, 1, sizeof(*k));
	if (!k)
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	k->alloc = a;
	k->lock_fd = -1;
	k->fs.fd = -1;
	k->trace_fd = -1;
	k->wake_epfd = cfg->wake_on_data ? cfg->wake_epfd : -1;
	k->ops = cfg->ops;
	k->attrs = cfg->attrs;
	k->seq = cfg->seq_base;
	k->pub = cfg->pub;
	k->run_dir = dup_str(a, cfg->run_dir ? cfg->run_dir : DM_RUN_DIR_DEFAULT);
	k->proc_root = dup_str(a, cfg->proc_root ? cfg->proc_root : "/proc");
	if (!k->run_dir || !k->proc_root) {
		rc = dm_err_set(err, -ENOMEM, "kernel: out of memory");
		goto fail;
	}
	rc = dm_sysfs_open(&k->fs, cfg->sysfs_root, err);
	if (rc)
		goto fail;
	if (!dm_sysfs_is_dir(&k->fs, "kernel/mm/damon")) {
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: this kernel has no DAMON sysfs "
				"interface (CONFIG_DAMON_SYSFS)");
		goto fail;
	}
	if (!dm_sysfs_is_dir(&k->fs, DM_KDS)) {
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: %s/kernel/mm/damon has no "
				"admin/kdamonds directory",
				k->fs.root);
		goto fail;
	}
	if (faccessat(k->fs.fd, DM_KDS "/nr_kdamonds", W_OK, AT_EACCESS) < 0) {
		rc = -errno;
		if (rc == -EACCES || rc == -EPERM)
			dm_err_set(err, -EPERM,
				   "kernel: the DAMON sysfs files are root-only and "
				   "this process cannot write %s/" DM_KDS "/nr_kdamonds",
				   k->fs.root);
		else
			dm_err_set(err, rc,
				   "kernel: %s/" DM_KDS "/nr_kdamonds cannot be written: %s",
				   k->fs.root, strerror(-rc));
		rc = err ? err->code : rc;
		goto fail;
	}
	rc = dm_kernel_check_modules(&k->fs, err);
	if (rc)
		goto fail;
	/*
	 * A second context of this process: refuse before locking. Record
	 * locks belong to the process, so our F_SETLK would succeed, and
	 * closing our lock fd on the way out would drop the first context's
	 * lock with it.
	 */
	for (unsigned long i = 0; i < MAX_KDAMONDS; i++) {
		struct dm_owner_rec mine;

		if (dm_owner_read(k->run_dir, k->proc_root, i, &mine) == DM_OWNER_ALIVE &&
		    mine.owner == getpid()) {
			rc = dm_err_set(err, -EBUSY,
					"kernel: this process already drives kernel "
					"DAMON (kdamond %lu) with another context; stop that one "
					"first",
					i);
			goto fail;
		}
	}
	/* refuse by reading only, before creating anything (run dir, lock) */
	rc = dm_kernel_judge_kdamonds(k, cfg->allow_takeover, false, err);
	if (rc)
		goto fail;
	rc = dm_owner_lock(k->run_dir, &k->lock_fd, err);
	if (rc)
		goto fail;
	/* again under the lock: now it counts, and orphans are reclaimed */
	rc = dm_kernel_judge_kdamonds(k, cfg->allow_takeover, true, err);
	if (rc)
		goto fail;

	/* our record first, then the directory it describes */
	rec = &k->rec;
	rec->owner = getpid();
	rc = dm_proc_start_time(k->proc_root, 0, &rec->start_time);
	if (rc) {
		dm_err_set(err, rc,
			   "kernel: cannot read this process's start time from %s/self/stat",
			   k->proc_root);
		goto fail;
	}
	/* unknown ({0, 0}) without pid namespaces: judged by pid then */
	dm_proc_pidns(k->proc_root, &rec->ns);
	rc = dm_owner_write(k->run_dir, 0, rec, err);
	if (rc)
		goto fail;
	k->recorded = true;
	rc = dm_sysfs_write(&k->fs, "1", err, DM_KDS "/nr_kdamonds");
	if (rc) {
		if (rc == -EBUSY)
			dm_err_append(err, "a kdamond is running, so nr_kdamonds cannot change");
		goto fail;
	}
	k->created = true;
	if (!dm_sysfs_is_dir(&k->fs, DM_KDS "/0/contexts")) {
		rc = dm_err_set(err, -EIO,
				"kernel: writing 1 to %s/" DM_KDS "/nr_kdamonds made no "
				"kdamond directory",
				k->fs.root);
		goto fail;
	}

	k->path = cfg->snapshots == DM_KSNAP_TRIED ? DM_KSNAP_TRIED : DM_KSNAP_TRACE;
	if (k->path == DM_KSNAP_TRACE && !dm_ktrace_available(k)) {
		if (cfg->snapshots == DM_KSNAP_TRACE) {
			rc = dm_err_set(err, -EOPNOTSUPP,
					"kernel: the damon:damon_aggregated "
					"tracepoint is not available (tracefs not mounted at %s/"
					"kernel/tracing?)",
					k->fs.root);
			goto fail;
		}
		k->path = DM_KSNAP_TRIED;
	}
	rc = dm_kernel_write_ctx(k, cfg, err);
	if (rc)
		goto fail;
	rc = dm_sysfs_write(&k->fs, "on", err, DM_KDS "/0/state");
	if (rc) {
		rc = on_failed(k, rc, err);
		goto fail;
	}
	rc = read_kdamond_pid(k, err);
	if (rc)
		goto fail;
	k->pidns_foreign = !dm_ktrace_kdamond_visible(k->proc_root, k->kdamond_pid);
	if (k->pidns_foreign && k->path == DM_KSNAP_TRACE) {
		/* perf_event_open() would find no kdamond here, or a stranger */
		if (cfg->snapshots == DM_KSNAP_TRACE) {
			rc = dm_err_set(err, -EOPNOTSUPP,
					"kernel: the kdamond (pid %d in the initial pid "
					"namespace) is not visible from this process's pid "
					"namespace, so the damon:damon_aggregated stream cannot be "
					"bound to it; let snapshots come from tried_regions",
					(int)k->kdamond_pid);
			goto fail;
		}
		snprintf(k->note, sizeof(k->note),
			 "kernel: the kdamond (pid %d in the initial pid namespace) is not "
			 "visible from this process's pid namespace; snapshots come from "
			 "tried_regions",
			 (int)k->kdamond_pid);
		/* the match-all scheme, by off + on: a commit would look our
		 * targets' pids up in the initial namespace */
		k->path = DM_KSNAP_TRIED;
		rc = restart(k, cfg, false, err);
		if (rc)
			goto fail;
	}
	if (k->path == DM_KSNAP_TRACE) {
		struct dm_err terr = {0};

		rc = dm_ktrace_open(k, &terr);
		if (rc && cfg->snapshots == DM_KSNAP_TRACE) {
			if (err)
				*err = terr;
			goto fail;
		}
		if (rc) {
			/* fall back: add the match-all scheme and commit */
			k->path = DM_KSNAP_TRIED;
			rc = dm_kernel_write_body(k, cfg, err);
			if (!rc)
				rc = dm_sysfs_write(&k->fs, "commit", err, DM_KDS "/0/state");
			if (rc)
				goto fail;
		}
	}
	k->next_due_us = dm_kernel_now_us() + k->attrs.aggr_us;
	*ret = k;
	return 0;
fail:
	release(k, false);
	k_free(k);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Snapshots */

uint32_t dm_kernel_snap_path(const struct dm_kernel *k)
{
	return k->path;
}

uint64_t dm_kernel_nr_published(const struct dm_kernel *k)
{
	return k ? k->seq : 0;
}

void dm_kernel_intervals(const struct dm_kernel *k, uint64_t *sample_us, uint64_t *aggr_us)
{
	*sample_us = k->attrs.sample_us;
	*aggr_us = k->attrs.aggr_us;
}

size_t dm_kernel_nr_live(const struct dm_kernel *k)
{
	size_t n = 0;

	for (size_t i = 0; i < k->nr_targets; i++)
		n += !k->targets[i].gone;
	return n;
}

bool dm_kernel_target_gone(const struct dm_kernel *k, uint32_t id)
{
	for (size_t i = 0; k && i < k->nr_targets; i++)
		if (k->targets[i].id == id)
			return k->targets[i].gone;
	return false;
}

pid_t dm_kernel_kdamond_pid(const struct dm_kernel *k)
{
	return k->kdamond_pid;
}

const char *dm_kernel_note(const struct dm_kernel *k)
{
	return k->note;
}

int dm_kernel_commit(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	int rc;

	/* the caller may free the scheme array it passed before: take the new
	 * one now, whatever fails below (what ran is a prefix of it) */
	k->schemes = cfg->schemes;
	if (cfg->ops != k->ops)
		return dm_err_set(err, -EINVAL,
				  "kernel: the operations set cannot change while "
				  "running");
	if (k->pidns_foreign && k->ops != DAMON_OPS_PADDR) {
		/* targets by pid from a child pid namespace: see write_target */
		rc = restart(k, cfg, true, err);
	} else {
		rc = dm_kernel_write_attrs(k, &cfg->attrs, err);
		if (!rc)
			rc = dm_kernel_write_body(k, cfg, err);
		if (!rc)
			rc = dm_sysfs_write(&k->fs, "commit", err, DM_KDS "/0/state");
	}
	if (rc)
		return rc;
	k->attrs = cfg->attrs;
	k->next_due_us = dm_kernel_now_us() + k->attrs.aggr_us;
	dm_ktrace_committed(k);
	return 0;
}

int dm_kernel_pause(struct dm_kernel *k, bool pause, struct dm_err *err)
{
	int rc;

	if (k->paused == pause)
		return 0;
	if (!dm_sysfs_exists(&k->fs, DM_KCTX "/pause"))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: this kernel's DAMON cannot pause a context (%s/" DM_KCTX
				  " has no pause file); stop the context and start it again "
				  "instead, which starts over with fresh regions",
				  k->fs.root);
	if (k->pidns_foreign && k->ops != DAMON_OPS_PADDR)
		/* its commits are restarts (dm_kernel_commit): regions lost */
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: the kdamond runs outside this process's pid "
				  "namespace, so it can take no commit and cannot pause with "
				  "its regions kept; stop the context and start it again "
				  "instead");
	/* the file is staged input: the kdamond reads it at the commit */
	rc = dm_sysfs_write(&k->fs, pause ? "Y" : "N", err, DM_KCTX "/pause");
	if (!rc)
		rc = dm_sysfs_write(&k->fs, "commit", err, DM_KDS "/0/state");
	if (rc) {
		/* the file must say what the kdamond does: every commit reads it */
		dm_sysfs_write(&k->fs, pause ? "N" : "Y", NULL, DM_KCTX "/pause");
		return rc;
	}
	k->paused = pause;
	if (pause) {
		/* the commit returns once the kdamond took it: no aggregation
		 * ends from now on; publish what the stream holds from before */
		if (k->path == DM_KSNAP_TRACE)
			dm_ktrace_read(k, NULL);
		return 0;
	}
	/* the pause is no aggregation period; the state is looked at first */
	k->last_agg_ns = 0;
	k->next_state_us = 0;
	k->next_due_us = dm_kernel_now_us() + k->attrs.aggr_us;
	return 0;
}

void dm_kernel_close(struct dm_kernel *k, bool forked)
{
	if (!k)
		return;
	release(k, forked);
	k_free(k);
}
