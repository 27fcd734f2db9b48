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
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"
#include "kernel_int.h"
#include "owner.h"
#include "kscheme.h"
#include "sysfs.h"
#include "../util/names.h"
#include "../util/proc.h"

#define KDS "kernel/mm/damon/admin/kdamonds"
#define CTX KDS "/0/contexts/0"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static char *dup_str(const struct dm_alloc *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = dm_malloc(a, n);

	if (d)
		memcpy(d, s, n);
	return d;
}


/* ------------------------------------------------------------------------ */
/* Who holds DAMON */

/* -EBUSY naming an exclusive module that runs, else 0. */
static int check_modules(const struct dm_sysfs *fs, struct dm_err *err)
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
				dm_exclusive_modules[i].name, fs->root, dm_exclusive_modules[i].module);
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

	fd = openat(fs->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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

#define MAX_KDAMONDS 64

/*
 * Decide whether DAMON can be taken; reclaim orphans. On success the tree
 * holds only kdamond directories that may be erased.
 */
static int judge_kdamonds(struct dm_kernel *k, bool allow_takeover, bool reclaim,
			  struct dm_err *err)
{
	unsigned long idx[MAX_KDAMONDS];
	size_t n = 0;
	char state[32];
	int rc;

	rc = list_index_dirs(&k->fs, KDS, idx, MAX_KDAMONDS, &n, err);
	if (rc)
		return rc;
	/* first pass: anything in the way? */
	for (size_t i = 0; i < n; i++) {
		struct dm_owner_rec rec;
		enum dm_owner_state os = dm_owner_read(k->run_dir, k->proc_root, idx[i], &rec);
		int sn =
			dm_sysfs_read(&k->fs, state, sizeof(state), NULL, KDS "/%lu/state", idx[i]);
		bool on = sn > 0 && strcmp(state, "off");
		char pidtxt[48] = "";
		uint64_t pid;

		if (on && !dm_sysfs_read_u64(&k->fs, &pid, NULL, KDS "/%lu/pid", idx[i]))
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
			return dm_err_set(err, -EBUSY,
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
				"%s/" KDS "/%lu/state) or use another backend",
				idx[i], pidtxt, k->fs.root, idx[i]);
		if (!allow_takeover)
			return dm_err_set(
				err, -EBUSY,
				"kernel: kdamond %lu exists (%s) and is not libdamon's, and "
				"writing nr_kdamonds would erase it; remove it (write 0 to "
				"%s/" KDS "/nr_kdamonds) or use another backend",
				idx[i], sn > 0 ? state : "state unreadable", k->fs.root);
	}
	if (!reclaim)
		return 0;
	/* second pass: turn orphans off (a running kdamond blocks nr_kdamonds) */
	for (size_t i = 0; i < n; i++) {
		struct dm_owner_rec rec;

		if (dm_owner_read(k->run_dir, k->proc_root, idx[i], &rec) != DM_OWNER_ORPHAN)
			continue;
		if (dm_sysfs_read(&k->fs, state, sizeof(state), NULL, KDS "/%lu/state", idx[i]) >
			    0 &&
		    strcmp(state, "off")) {
			rc = dm_sysfs_write(&k->fs, "off", err, KDS "/%lu/state", idx[i]);
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

/* ------------------------------------------------------------------------ */
/* Writing the context */

/* The top-level "System RAM" ranges of /proc/iomem. */
static int system_ram(struct dm_kernel *k, struct dm_range *v, size_t cap, size_t *ret_n,
		      struct dm_err *err)
{
	char path[PATH_MAX], line[256];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/iomem", k->proc_root);
	f = fopen(path, "re");
	if (!f)
		return dm_err_set(err, -errno,
				  "kernel: %s cannot be read for paddr's default "
				  "regions: %s",
				  path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (line[0] == ' ' || !strstr(line, ": System RAM"))
			continue;
		if (sscanf(line, "%llx-%llx", &s, &e) != 2 || e <= s)
			continue;
		if (n < cap) {
			v[n].start = s;
			v[n].end = e + 1;
			n++;
		}
	}
	fclose(f);
	if (!n || (n == 1 && !v[0].start && v[0].end <= 1))
		return dm_err_set(err, -EINVAL,
				  "kernel: %s lists no System RAM (or only zeros: "
				  "reading it needs root)",
				  path);
	*ret_n = n;
	return 0;
}

static int write_target(struct dm_kernel *k, size_t i, const struct dm_kernel_target *t,
			struct dm_err *err)
{
	struct dm_range ram[32];
	const struct dm_range *r = t->fixed;
	size_t nr = t->nr_fixed;
	int rc;

	if (k->ops != DAMON_OPS_PADDR) {
		/*
		 * Pids of our own pid namespace: "on" builds the kernel's
		 * context in the writing task (damon_sysfs_turn_damon_on ->
		 * damon_sysfs_add_target -> find_get_pid -> find_vpid, which
		 * looks in task_active_pid_ns(current)). "commit" does not: the
		 * kdamond builds it (a damon_call() since 6.15, an aggregation
		 * callback before), so it looks them up in the initial
		 * namespace - which is why k->pidns_foreign commits by off + on.
		 */
		pid_t pid = t->pid ? t->pid : getpid();

		rc = dm_sysfs_write_u64(&k->fs, (uint64_t)pid, err, CTX "/targets/%zu/pid_target",
					i);
		if (rc)
			return rc;
	}
	if (k->ops == DAMON_OPS_PADDR && !nr) {
		rc = system_ram(k, ram, 32, &nr, err);
		if (rc)
			return rc;
		r = ram;
	}
	if (k->ops == DAMON_OPS_VADDR)
		nr = 0; /* the kernel lays vaddr out itself */
	rc = dm_sysfs_write_u64(&k->fs, nr, err, CTX "/targets/%zu/regions/nr_regions", i);
	for (size_t j = 0; j < nr && !rc; j++) {
		rc = dm_sysfs_write_u64(&k->fs, r[j].start, err,
					CTX "/targets/%zu/regions/%zu/start", i, j);
		if (!rc)
			rc = dm_sysfs_write_u64(&k->fs, r[j].end, err,
						CTX "/targets/%zu/regions/%zu/end", i, j);
	}
	return rc;
}

static int write_scheme(struct dm_kernel *k, size_t i, const struct damos_opts *o,
			struct dm_err *err)
{
	const struct dm_sysfs *fs = &k->fs;
	static const char *const wm[] = {"none", "free_mem_rate"};
	int rc;

	if (!dm_action_name(o->action))
		return dm_err_set(err, -EINVAL, "kernel: scheme %zu: action %u is unknown", i,
				  o->action);
	if (o->wmarks_metric > 1)
		return dm_err_set(err, -EINVAL,
				  "kernel: scheme %zu: watermark metric %u is "
				  "unknown",
				  i, o->wmarks_metric);
	rc = dm_sysfs_write(fs, dm_action_name(o->action), err, CTX "/schemes/%zu/action", i);
	if (rc == -EINVAL) {
		/* the kernel takes only the actions it knows (6.12 has no
		 * collapse): that is "not supported here", not a bad argument */
		struct utsname u;

		if (uname(&u))
			strcpy(u.release, "?");
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: scheme %zu: this kernel's DAMON (Linux %s) has no "
				"action %s (writing it to the scheme's action file failed with "
				"EINVAL); use a user-space backend, which executes it itself",
				i, u.release, dm_action_name(o->action));
	}
#define W(val, path)                                                                          \
	do {                                                                                  \
		if (!rc)                                                                      \
			rc = dm_sysfs_write_u64(fs, (val), err, CTX "/schemes/%zu/" path, i); \
	} while (0)
	/* UINT32_MAX / UINT64_MAX are also the kernel's own "no bound" */
	W(o->min_sz, "access_pattern/sz/min");
	W(o->max_sz, "access_pattern/sz/max");
	W(o->min_nr_accesses, "access_pattern/nr_accesses/min");
	W(o->max_nr_accesses, "access_pattern/nr_accesses/max");
	W(o->min_age, "access_pattern/age/min");
	W(o->max_age, "access_pattern/age/max");
	/* 0 is "no such limit" in both */
	W(o->quota_ms, "quotas/ms");
	W(o->quota_bytes, "quotas/bytes");
	W(o->quota_reset_interval_ms, "quotas/reset_interval_ms");
	W(o->weight_sz, "quotas/weights/sz_permil");
	W(o->weight_nr_accesses, "quotas/weights/nr_accesses_permil");
	W(o->weight_age, "quotas/weights/age_permil");
	if (!rc)
		rc = dm_sysfs_write(fs, wm[o->wmarks_metric], err,
				    CTX "/schemes/%zu/watermarks/metric", i);
	W(o->wmarks_interval_us, "watermarks/interval_us");
	W(o->wmarks_high, "watermarks/high");
	W(o->wmarks_mid, "watermarks/mid");
	W(o->wmarks_low, "watermarks/low");
	if (!rc && dm_sysfs_exists(fs, CTX "/schemes/%zu/apply_interval_us", i))
		W(o->apply_interval_us, "apply_interval_us");
	else if (!rc && o->apply_interval_us)
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: this kernel's DAMON has no per-scheme "
				"apply interval (no apply_interval_us file)");
	if (!rc && (o->action == DAMOS_MIGRATE_HOT || o->action == DAMOS_MIGRATE_COLD) &&
	    k->ops != DAMON_OPS_PADDR && !dm_sysfs_is_dir(fs, CTX "/schemes/%zu/dests", i))
		/*
		 * Kernels before vaddr migration (6.12) take migrate_* for any
		 * ops but only paddr implements it: vaddr would try every
		 * region and move nothing. vaddr migration came in the same
		 * series as the schemes' dests directory, so that directory is
		 * the file that tells.
		 */
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: scheme %zu: this kernel's DAMON accepts %s for %s but "
				"its virtual address operations do not implement it (no "
				"schemes/%zu/dests directory, which came with vaddr migration): "
				"it would move nothing; use paddr or a user-space backend",
				i, dm_action_name(o->action), dm_ops_name(k->ops), i);
	if (!rc && (o->action == DAMOS_MIGRATE_HOT || o->action == DAMOS_MIGRATE_COLD))
		W(o->target_nid, "target_nid");
#undef W
	return rc;
}

/* The scheme whose tried_regions make a full snapshot: stat, everything. */
static const struct dm_scheme match_all = {
	.opts.sz = sizeof(struct damos_opts),
	.opts.action = DAMOS_STAT,
	.opts.max_sz = UINT64_MAX,
	.opts.max_nr_accesses = UINT32_MAX,
	.opts.max_age = UINT32_MAX,
};

static int write_attrs(struct dm_kernel *k, const struct dm_mon_attrs *a, struct dm_err *err)
{
	int rc;

	if (!a->sample_us || a->aggr_us < a->sample_us)
		return dm_err_set(err, -EINVAL,
				  "kernel: aggr_us (%llu) must be at least sample_us "
				  "(%llu), which must not be 0",
				  (unsigned long long)a->aggr_us, (unsigned long long)a->sample_us);
	if (dm_intervals_goal_on(&a->goal))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: the intervals goal is not written to DAMON's sysfs yet; "
				  "libdamon's engine runs it on the user-space backends");
	rc = dm_sysfs_write_u64(&k->fs, a->sample_us, err,
				CTX "/monitoring_attrs/intervals/sample_us");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->aggr_us, err,
					CTX "/monitoring_attrs/intervals/aggr_us");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->update_us, err,
					CTX "/monitoring_attrs/intervals/update_us");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->min_nr_regions, err,
					CTX "/monitoring_attrs/nr_regions/min");
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, a->max_nr_regions, err,
					CTX "/monitoring_attrs/nr_regions/max");
	return rc;
}

/* Keep a copy of the targets: id + pid + position in the kernel's list. */
static int keep_targets(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	struct dm_ktarget *v =
		dm_calloc(k->alloc, cfg->nr_targets ? cfg->nr_targets : 1, sizeof(*v));

	if (!v)
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	for (size_t i = 0; i < cfg->nr_targets; i++) {
		v[i].id = cfg->targets[i].id;
		v[i].pid = cfg->targets[i].pid ? cfg->targets[i].pid : getpid();
		for (size_t j = 0; j < k->nr_targets; j++)
			if (k->targets[j].id == v[i].id)
				v[i].gone = k->targets[j].gone;
	}
	dm_free(k->alloc, k->targets);
	k->targets = v;
	k->nr_targets = cfg->nr_targets;
	return 0;
}

/* Write targets and schemes (nr_* writes recreate their directories). */
static int write_body(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	size_t nr_schemes = cfg->nr_schemes + (k->path == DM_KSNAP_TRIED);
	int rc;

	if (k->ops == DAMON_OPS_PADDR && cfg->nr_targets != 1)
		return dm_err_set(err, -EINVAL, "kernel: paddr takes exactly one target, not %zu",
				  cfg->nr_targets);
	/* the caller's array may replace the one we had (which it may free) */
	k->schemes = cfg->schemes;
	k->nr_schemes = cfg->nr_schemes;
	rc = dm_sysfs_write_u64(&k->fs, cfg->nr_targets, err, CTX "/targets/nr_targets");
	for (size_t i = 0; i < cfg->nr_targets && !rc; i++)
		rc = write_target(k, i, &cfg->targets[i], err);
	if (!rc)
		rc = dm_sysfs_write_u64(&k->fs, nr_schemes, err, CTX "/schemes/nr_schemes");
	for (size_t i = 0; i < cfg->nr_schemes && !rc; i++) {
		rc = write_scheme(k, i, &cfg->schemes[i]->opts, err);
		if (!rc)
			rc = dm_kscheme_write(k, i, cfg->schemes[i], err);
	}
	if (!rc && k->path == DM_KSNAP_TRIED)
		rc = write_scheme(k, cfg->nr_schemes, &match_all.opts, err);
	if (!rc && k->path == DM_KSNAP_TRIED)
		rc = dm_kscheme_write(k, cfg->nr_schemes, &match_all, err);
	if (!rc)
		rc = keep_targets(k, cfg, err);
	return rc;
}

/* Is @word among the white-space separated words of @list? */
static bool has_word(const char *list, const char *word)
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

static int write_ctx(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	char avail[DM_SYSFS_VAL_MAX], q[40];
	const char *ops = dm_ops_name(cfg->ops);
	int rc;

	if (!ops)
		return dm_err_set(err, -EINVAL, "kernel: operations set %u is unknown", cfg->ops);
	rc = dm_sysfs_write_u64(&k->fs, 1, err, KDS "/0/contexts/nr_contexts");
	if (rc)
		return rc;
	rc = dm_sysfs_read(&k->fs, avail, sizeof(avail), err, CTX "/avail_operations");
	if (rc < 0)
		return rc;
	if (!has_word(avail, ops))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: this kernel's DAMON offers \"%s\", "
				  "no %s",
				  dm_sysfs_show(q, avail), ops);
	rc = dm_sysfs_write(&k->fs, ops, err, CTX "/operations");
	if (!rc)
		rc = write_attrs(k, &cfg->attrs, err);
	if (!rc)
		rc = write_body(k, cfg, err);
	return rc;
}

/* ------------------------------------------------------------------------ */

static void release(struct dm_kernel *k, bool forked)
{
	char state[32];

	if (!forked && k->created) {
		if (dm_sysfs_read(&k->fs, state, sizeof(state), NULL, KDS "/0/state") > 0 &&
		    strcmp(state, "off"))
			dm_sysfs_write(&k->fs, "off", NULL, KDS "/0/state");
		/* Ours is the only kdamond directory (nr_kdamonds could not
		 * change while ours existed without erasing it). */
		dm_sysfs_write(&k->fs, "0", NULL, KDS "/nr_kdamonds");
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

	if (rc == -EBUSY && check_modules(&k->fs, &why))
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
	int rc = dm_sysfs_read_u64(&k->fs, &pid, err, KDS "/0/pid");

	if (rc)
		return rc;
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
	rc = dm_sysfs_write(&k->fs, "off", err, KDS "/0/state");
	if (!rc)
		rc = write_attrs(k, &cfg->attrs, err);
	if (!rc)
		rc = write_body(k, cfg, err);
	if (!rc) {
		rc = dm_sysfs_write(&k->fs, "on", err, KDS "/0/state");
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
	if (!dm_sysfs_is_dir(&k->fs, KDS)) {
		rc = dm_err_set(err, -EOPNOTSUPP,
				"kernel: %s/kernel/mm/damon has no "
				"admin/kdamonds directory",
				k->fs.root);
		goto fail;
	}
	if (faccessat(k->fs.fd, KDS "/nr_kdamonds", W_OK, AT_EACCESS) < 0) {
		rc = -errno;
		if (rc == -EACCES || rc == -EPERM)
			dm_err_set(err, -EPERM,
				   "kernel: the DAMON sysfs files are root-only and "
				   "this process cannot write %s/" KDS "/nr_kdamonds",
				   k->fs.root);
		else
			dm_err_set(err, rc, "kernel: %s/" KDS "/nr_kdamonds cannot be written: %s",
				   k->fs.root, strerror(-rc));
		rc = err ? err->code : rc;
		goto fail;
	}
	rc = check_modules(&k->fs, err);
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
	rc = judge_kdamonds(k, cfg->allow_takeover, false, err);
	if (rc)
		goto fail;
	rc = dm_owner_lock(k->run_dir, &k->lock_fd, err);
	if (rc)
		goto fail;
	/* again under the lock: now it counts, and orphans are reclaimed */
	rc = judge_kdamonds(k, cfg->allow_takeover, true, err);
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
	rc = dm_sysfs_write(&k->fs, "1", err, KDS "/nr_kdamonds");
	if (rc) {
		if (rc == -EBUSY)
			dm_err_append(err, "a kdamond is running, so nr_kdamonds cannot change");
		goto fail;
	}
	k->created = true;
	if (!dm_sysfs_is_dir(&k->fs, KDS "/0/contexts")) {
		rc = dm_err_set(err, -EIO,
				"kernel: writing 1 to %s/" KDS "/nr_kdamonds made no "
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
	rc = write_ctx(k, cfg, err);
	if (rc)
		goto fail;
	rc = dm_sysfs_write(&k->fs, "on", err, KDS "/0/state");
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
			rc = write_body(k, cfg, err);
			if (!rc)
				rc = dm_sysfs_write(&k->fs, "commit", err, KDS "/0/state");
			if (rc)
				goto fail;
		}
	}
	k->next_due_us = now_us() + k->attrs.aggr_us;
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

size_t dm_kernel_nr_live(const struct dm_kernel *k)
{
	size_t n = 0;

	for (size_t i = 0; i < k->nr_targets; i++)
		n += !k->targets[i].gone;
	return n;
}

pid_t dm_kernel_kdamond_pid(const struct dm_kernel *k)
{
	return k->kdamond_pid;
}

const char *dm_kernel_note(const struct dm_kernel *k)
{
	return k->note;
}

int dm_kernel_regbuf(struct dm_kernel *k, size_t n)
{
	if (n <= k->regcap)
		return 0;
	size_t cap = n < 64 ? 64 : n * 2;
	struct dm_kreg *v =
		dm_realloc(k->alloc, k->regbuf, k->regcap * sizeof(*v), cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	k->regbuf = v;
	k->regcap = cap;
	return 0;
}

/* Publish k->regbuf[0..n) (sorted by target position, then address). */
int dm_kernel_publish(struct dm_kernel *k, size_t n, struct dm_err *err)
{
	uint32_t max_acc =
		(uint32_t)(k->attrs.aggr_us / (k->attrs.sample_us ? k->attrs.sample_us : 1));
	uint32_t nr_t = 0, ti = 0;
	struct damon_snapshot *s;
	size_t kept = 0, r = 0;

	if (!max_acc)
		max_acc = 1;
	for (size_t i = 0; i < k->nr_targets; i++)
		nr_t += !k->targets[i].gone;
	for (size_t j = 0; j < n; j++)
		kept += k->regbuf[j].tpos < k->nr_targets && !k->targets[k->regbuf[j].tpos].gone;
	s = dm_snapshot_new(k->alloc, nr_t, kept);
	if (!s)
		return dm_err_set(err, -ENOMEM, "kernel: out of memory building a snapshot");
	s->info.seq = ++k->seq;
	s->info.time_ns = now_us() * 1000;
	s->info.sample_us = k->attrs.sample_us;
	s->info.aggr_us = k->attrs.aggr_us;
	s->info.backend = DAMON_BACKEND_KERNEL;
	s->info.sees = DAMON_SEES_READS | DAMON_SEES_WRITES;
	s->info.max_nr_accesses = max_acc;
	s->info.nr_samples = max_acc;
	for (size_t i = 0; i < k->nr_targets; i++) {
		if (k->targets[i].gone)
			continue;
		s->targets[ti].id = k->targets[i].id;
		s->targets[ti].first = (uint32_t)r;
		for (size_t j = 0; j < n; j++) {
			const struct dm_kreg *g = &k->regbuf[j];
			struct dm_snap_region *o;
			uint32_t acc;

			if (g->tpos != i)
				continue;
			o = &s->regions[r++];
			acc = g->nr_accesses > max_acc ? max_acc : g->nr_accesses;
			o->start = g->start;
			o->end = g->end;
			o->nr_accesses = acc;
			o->age = g->age;
			o->access_rate_bp = (uint32_t)((uint64_t)acc * 10000 / max_acc);
			o->target_idx = ti;
			dm_snap_region_who_unknown(o); /* the accessed bit tells nobody */
		}
		s->targets[ti].nr = (uint32_t)r - s->targets[ti].first;
		ti++;
	}
	if (dm_publisher_publish(k->pub, s))
		return dm_err_set(err, -ENOMEM, "kernel: out of memory publishing hotness");
	return 0;
}

#define MAX_TRIED (1u << 20)

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The region directories of @dir, ascending. Their names need not be
 * 0..n-1: 6.12 numbers tried regions across all schemes of a context (with
 * two schemes, the second one's are 1, 3, 5, ...).
 */
static int list_regions(struct dm_kernel *k, const char *dir, size_t *ret, struct dm_err *err)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int fd;

	fd = openat(k->fs.fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: %s/%s cannot be listed: %s", k->fs.root,
				  dir, strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	}
	while ((de = readdir(d))) {
		uint64_t x;

		if (!dm_parse_u64(de->d_name, &x) || x >= UINT32_MAX)
			continue;
		if (n == MAX_TRIED) {
			closedir(d);
			return dm_err_set(err, -E2BIG, "kernel: %s/%s lists more than %u regions",
					  k->fs.root, dir, MAX_TRIED);
		}
		if (n == k->idxcap) {
			size_t cap = n ? n * 2 : 256;
			uint32_t *v =
				dm_realloc(k->alloc, k->idxbuf, n * sizeof(*v), cap * sizeof(*v));

			if (!v) {
				closedir(d);
				return dm_err_set(err, -ENOMEM, "kernel: out of memory");
			}
			k->idxbuf = v;
			k->idxcap = cap;
		}
		k->idxbuf[n++] = (uint32_t)x;
	}
	closedir(d);
	if (n)
		qsort(k->idxbuf, n, sizeof(*k->idxbuf), cmp_u32);
	*ret = n;
	return 0;
}

static int read_tried_once(struct dm_kernel *k, const char *dir, size_t *ret_n, struct dm_err *err)
{
	uint64_t prev_end = 0;
	uint32_t tpos = 0;
	size_t n = 0;
	int rc;

	rc = list_regions(k, dir, &n, err);
	if (rc)
		return rc;
	if (dm_kernel_regbuf(k, n))
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	for (size_t j = 0; j < n; j++) {
		static const char *const f[] = {"start", "end", "nr_accesses", "age"};
		struct dm_kreg *g = &k->regbuf[j];
		uint32_t name = k->idxbuf[j];
		uint64_t v[4];

		for (int i = 0; i < 4; i++) {
			rc = dm_sysfs_read_u64(&k->fs, &v[i], err, "%s/%u/%s", dir, name, f[i]);
			if (rc)
				return rc;
		}
		if (v[1] <= v[0])
			return dm_err_set(err, -EINVAL,
					  "kernel: %s/%s/%u is an empty or reversed "
					  "region",
					  k->fs.root, dir, name);
		/*
		 * tried_regions carry no target: the kernel lists them target by
		 * target in address order, so an address going back starts the
		 * next target. (Targets whose ranges ascend across the boundary
		 * cannot be told apart this way; the tracepoint stream can.)
		 */
		if (j && v[0] < prev_end && tpos + 1 < k->nr_targets)
			tpos++;
		prev_end = v[1];
		g->tpos = tpos;
		g->start = v[0];
		g->end = v[1];
		g->nr_accesses = v[2] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[2];
		g->age = v[3] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[3];
	}
	*ret_n = n;
	return 0;
}

/*
 * tried_regions of the match-all scheme: ask, wait, read. Some kernels
 * return from the request while they still replace the directories, so a
 * region that vanishes under us means: read again.
 */
static int read_tried(struct dm_kernel *k, struct dm_err *err)
{
	char dir[160];
	size_t n = 0;
	int rc;

	rc = dm_sysfs_write(&k->fs, "update_schemes_tried_regions", err, KDS "/0/state");
	if (rc)
		return rc;
	snprintf(dir, sizeof(dir), CTX "/schemes/%zu/tried_regions", k->nr_schemes);
	for (int tries = 0;; tries++) {
		rc = read_tried_once(k, dir, &n, err);
		if (rc != -ENOENT || tries == 20)
			break;
		k->tried_retries++;
		usleep(5000);
	}
	if (rc)
		return rc;
	return dm_kernel_publish(k, n, err);
}

/* Mark targets whose process exited; log-worthy news goes to err. */
static void check_targets(struct dm_kernel *k)
{
	if (k->ops == DAMON_OPS_PADDR)
		return;
	for (size_t i = 0; i < k->nr_targets; i++)
		if (!k->targets[i].gone &&
		    dm_proc_pid_alive(k->proc_root, k->targets[i].pid) == -ESRCH)
			k->targets[i].gone = true;
}

/* The kdamond is off: why. */
static int stopped(struct dm_kernel *k, struct dm_err *err)
{
	check_targets(k);
	for (size_t i = 0; i < k->nr_targets; i++)
		if (!k->targets[i].gone)
			return dm_err_set(err, -ESRCH, "kernel: kdamond 0 stopped by itself");
	return dm_err_set(err, -ESRCH, "kernel: every target exited, so the kdamond stopped");
}

static int step_body(struct dm_kernel *k, uint64_t now, uint64_t *next_us, struct dm_err *err)
{
	int rc;

	if (k->paused) {
		/* a paused kdamond makes nothing and cancels walks: ask it nothing */
		*next_us = k->attrs.aggr_us;
		return k->path == DM_KSNAP_TRACE ? dm_ktrace_read(k, err) : 0;
	}
	if (k->nr_schemes && now >= k->next_stats_us) {
		/* damos_get_stats() and damos_get_quota() read what this leaves in
		 * the schemes */
		rc = dm_kernel_update_stats(k, err);
		if (!rc)
			rc = dm_kscheme_read_quotas(k, err);
		if (rc)
			return rc;
		k->next_stats_us =
			now + (k->attrs.update_us > 100000 ? k->attrs.update_us : 100000);
	}
	if (k->path == DM_KSNAP_TRACE) {
		uint64_t due, slack = k->attrs.aggr_us / 4;

		rc = dm_ktrace_read(k, err);
		if (rc < 0)
			return rc;
		/*
		 * Wake just after the next aggregation should end, then every
		 * millisecond until it arrives (a snapshot readable within ~1 ms
		 * of kdamond's aggregation, with few wake-ups); if it is late by
		 * more than a quarter interval, back to a quarter interval.
		 */
		/* kdamond may take longer than aggr_us per aggregation (a busy or
		 * emulated CPU): expect the period it actually keeps */
		uint64_t period = k->agg_period_us ? k->agg_period_us : k->attrs.aggr_us;

		if (slack < period / 4)
			slack = period / 4;
		if (k->wake_epfd >= 0) {
			/* the perf fd wakes the caller when records land (trace.c);
			 * the timer only backs it up: the kdamond's state, a stall */
			*next_us = 2 * period;
			return 0;
		}
		/* from three quarters of the period on, look every millisecond */
		due = k->last_agg_ns / 1000 + period - period / 4;
		now = now_us();
		if (!k->last_agg_ns) {
			*next_us = slack ? slack : 1000;
		} else if (now > due + period / 4) {
			/* late: back off with the lateness (an eighth of it) */
			uint64_t late = (now - due) / 8;

			*next_us = late < 1000 ? 1000 : late > slack ? slack : late;
		} else if (now + 1000 < due)
			*next_us = due - now;
		else
			*next_us = 1000;
		return 0;
	}
	if (now + 1000 < k->next_due_us) {
		*next_us = k->next_due_us - now;
		return 0;
	}
	rc = read_tried(k, err);
	if (rc == -EBUSY) {
		/* another DAMON sysfs user holds its lock (a state read of
		 * another libdamon process judging kdamonds): again soon */
		dm_err_clear(err);
		*next_us = 1000;
		return 0;
	}
	if (rc)
		return rc;
	k->next_due_us += k->attrs.aggr_us;
	now = now_us();
	/*
	 * Reading took longer than an interval (many regions, a slow or
	 * emulated CPU): still leave a millisecond. The library thread holds
	 * the runner's lock while it steps and lets go only while it waits,
	 * so a next_us of 0 again and again would starve damon_ctx_stop(),
	 * damon_ctx_commit() and damos_get_stats() (seen under TCG with two
	 * targets from a pid namespace: each read of tried_regions outlasted
	 * the 100 ms interval).
	 */
	if (k->next_due_us < now + 1000)
		k->next_due_us = now + 1000;
	*next_us = k->next_due_us - now;
	return 0;
}

/* Once per aggregation interval: has the kdamond stopped, which targets
 * exited. -ESRCH (stopped()) when it is off. */
static int check_state(struct dm_kernel *k, uint64_t now, struct dm_err *err)
{
	char state[32];
	int n;

	if (now < k->next_state_us)
		return 0;
	n = dm_sysfs_read(&k->fs, state, sizeof(state), err, KDS "/0/state");
	if (n == -EBUSY)
		return 0; /* another DAMON sysfs user holds its lock: next step */
	if (n < 0)
		return n;
	if (!strcmp(state, "off"))
		return stopped(k, err);
	check_targets(k);
	k->next_state_us = now + k->attrs.aggr_us;
	return 0;
}

int dm_kernel_step(struct dm_kernel *k, uint64_t *next_us, struct dm_err *err)
{
	uint64_t now = now_us();
	bool trace = k->path == DM_KSNAP_TRACE;
	char state[32];
	int rc;

	/*
	 * The state once per aggregation interval (the tracepoint path steps
	 * more often than that); on the tracepoint path after the stream is
	 * read, so that a snapshot is published before the sysfs and /proc
	 * reads (about 1 ms under TCG) of the step that wakes on its records.
	 */
	if (!trace) {
		rc = check_state(k, now, err);
		if (rc)
			return rc;
	}
	rc = step_body(k, now, next_us, err);
	if (!rc && trace)
		rc = check_state(k, now, err);
	/* the kdamond may have stopped meanwhile: a request to it then fails
	 * (7.2: ECANCELED; older kernels: EINVAL or EBUSY) */
	if (rc && dm_sysfs_read(&k->fs, state, sizeof(state), NULL, KDS "/0/state") > 0 &&
	    !strcmp(state, "off"))
		return stopped(k, err);
	return rc;
}

int dm_kernel_commit(struct dm_kernel *k, const struct dm_kernel_cfg *cfg, struct dm_err *err)
{
	int rc;

	if (cfg->ops != k->ops)
		return dm_err_set(err, -EINVAL,
				  "kernel: the operations set cannot change while "
				  "running");
	if (k->pidns_foreign && k->ops != DAMON_OPS_PADDR) {
		/* targets by pid from a child pid namespace: see write_target */
		rc = restart(k, cfg, true, err);
	} else {
		rc = write_attrs(k, &cfg->attrs, err);
		if (!rc)
			rc = write_body(k, cfg, err);
		if (!rc)
			rc = dm_sysfs_write(&k->fs, "commit", err, KDS "/0/state");
	}
	if (rc)
		return rc;
	k->attrs = cfg->attrs;
	k->next_due_us = now_us() + k->attrs.aggr_us;
	dm_ktrace_committed(k);
	return 0;
}

int dm_kernel_pause(struct dm_kernel *k, bool pause, struct dm_err *err)
{
	int rc;

	if (k->paused == pause)
		return 0;
	if (!dm_sysfs_exists(&k->fs, CTX "/pause"))
		return dm_err_set(err, -EOPNOTSUPP,
				  "kernel: this kernel's DAMON cannot pause a context (%s/" CTX
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
	rc = dm_sysfs_write(&k->fs, pause ? "Y" : "N", err, CTX "/pause");
	if (!rc)
		rc = dm_sysfs_write(&k->fs, "commit", err, KDS "/0/state");
	if (rc) {
		/* the file must say what the kdamond does: every commit reads it */
		dm_sysfs_write(&k->fs, pause ? "N" : "Y", NULL, CTX "/pause");
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
	k->next_due_us = now_us() + k->attrs.aggr_us;
	return 0;
}

int dm_kernel_update_stats(struct dm_kernel *k, struct dm_err *err)
{
	static const char *const f[] = {"nr_tried",    "sz_tried",   "nr_applied",
					"sz_applied",  "qt_exceeds", "sz_ops_filter_passed",
					"nr_snapshots"};
	int rc;

	rc = dm_sysfs_write(&k->fs, "update_schemes_stats", err, KDS "/0/state");
	if (rc)
		return rc;
	for (size_t i = 0; i < k->nr_schemes; i++) {
		struct damos_stats *st = &k->schemes[i]->stats, base = {0};
		uint64_t *dst[] = {&st->nr_tried,    &st->sz_tried,   &st->nr_applied,
				   &st->sz_applied,  &st->qt_exceeds, &st->sz_ops_filter_passed,
				   &st->nr_snapshots};
		const uint64_t *add[] = {&base.nr_tried,    &base.sz_tried,
					 &base.nr_applied,  &base.sz_applied,
					 &base.qt_exceeds,  &base.sz_ops_filter_passed,
					 &base.nr_snapshots};

		/* what the kernel counted before the kdamond last restarted */
		for (size_t b = 0; b < k->nr_stat_base; b++)
			if (k->stat_base[b].sc == k->schemes[i])
				base = k->stat_base[b].st;

		for (size_t j = 0; j < 7; j++) {
			uint64_t v;

			if (j >= 5 &&
			    !dm_sysfs_exists(&k->fs, CTX "/schemes/%zu/stats/%s", i, f[j]))
				continue; /* newer kernels only */
			rc = dm_sysfs_read_u64(&k->fs, &v, err, CTX "/schemes/%zu/stats/%s", i,
					       f[j]);
			if (rc)
				return rc;
			*dst[j] = *add[j] + v;
		}
	}
	return 0;
}

void dm_kernel_close(struct dm_kernel *k, bool forked)
{
	if (!k)
		return;
	release(k, forked);
	k_free(k);
}
