// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Judging backends for one (ops, target) and the AUTO choice. Each verdict is
 * one sentence "<backend>: <facts>; <facts>": the facts found on this machine
 * first, this version's own limits last, so a person learns why the thing
 * itself is unavailable even where libdamon could not use it anyway.
 * Nothing here writes a file or starts anything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/capability.h>

#include "probe.h"
#include "../ops/ops.h"
#include "../ops/pagemap.h"
#include "../util/proc.h"
#include "../util/fail.h"

/* The order AUTO tries; fault is opt-in only (it installs a SIGSEGV handler). */
static const int auto_order[] = {
	DAMON_BACKEND_KERNEL,
	DAMON_BACKEND_PAGE_IDLE,
	DAMON_BACKEND_UFFD_WP,
	DAMON_BACKEND_SOFT_DIRTY,
};

/* Append to a sentence, "; " between clauses, never past @sz. */
static void say(char *buf, size_t sz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t sz, const char *fmt, ...)
{
	size_t len = strnlen(buf, sz);
	va_list ap;

	if (len + 1 >= sz)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, sz - len, fmt, ap);
	va_end(ap);
}

static void clause(char *buf, size_t sz, bool *first, const char *text)
{
	say(buf, sz, "%s%s", *first ? "" : "; ", text);
	*first = false;
}

/* Who a virtual-memory backend of the calling process cannot monitor. */
static bool self_only(const struct dm_probe_in *in, char *buf, size_t sz, bool *first)
{
	char text[128];

	if (in->ops == DAMON_OPS_PADDR) {
		clause(buf, sz, first,
		       "it monitors only the calling process's virtual memory, not physical memory "
		       "(paddr)");
		return false;
	}
	if (!in->self) {
		snprintf(text, sizeof(text),
			 "it monitors only the calling process's virtual memory, not pid %d's",
			 (int)in->pid);
		clause(buf, sz, first, text);
		return false;
	}
	return true;
}

/* Is kernel DAMON sampling now (a kdamond "on", or a DAMON module enabled)?
 * Writes its name into @who. Root-only files that cannot be read count as
 * "not seen". */
static bool kernel_damon_runs(const char *sysfs_root, char *who, size_t sz)
{
	static const char *const mods[] = { "damon_reclaim", "damon_lru_sort", "damon_stat" };
	char path[320], val[8];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/kernel/mm/damon/admin/kdamonds", sysfs_root);
	d = DM_FAIL(EACCES) ? NULL : opendir(path);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/kernel/mm/damon/admin/kdamonds/%.16s/state",
			 sysfs_root, de->d_name);
		if (dm_proc_read_file(path, val, sizeof(val)) > 0 && !strncmp(val, "on", 2)) {
			snprintf(who, sz, "kdamond %.16s is on", de->d_name);
			closedir(d);
			return true;
		}
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(path, sizeof(path), "%s/module/%s/parameters/enabled", sysfs_root,
			 mods[i]);
		if (dm_proc_read_file(path, val, sizeof(val)) > 0 && val[0] == 'Y') {
			snprintf(who, sz, "%s is enabled", mods[i]);
			return true;
		}
	}
	return false;
}

static void judge_page_idle(const struct dm_probe_in *in, struct damon_backend_status *st)
{
	const char *sysfs_root = in->sysfs_root ? in->sysfs_root : "/sys";
	const char *proc_root = in->proc_root ? in->proc_root : "/proc";
	char path[256], text[384];
	struct stat sb;
	bool first = true;

	st->sees = DAMON_SEES_READS | DAMON_SEES_WRITES;
	snprintf(st->reason, sizeof(st->reason), "page_idle: ");
	snprintf(path, sizeof(path), "%s/kernel/mm/page_idle/bitmap", sysfs_root);
	if ((DM_FAIL(EACCES) ? -1 : stat(path, &sb)) < 0 || !S_ISREG(sb.st_mode)) {
		clause(st->reason, sizeof(st->reason), &first,
		       "this kernel has no idle page tracking (CONFIG_IDLE_PAGE_TRACKING)");
	} else {
		if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0) {
			/* a long test root would crowd out the rest of the sentence */
			snprintf(text, sizeof(text), "this process cannot read and write %s (%s)",
				 strlen(path) <= 48 ? path : "kernel/mm/page_idle/bitmap",
				 strerror(errno));
			clause(st->reason, sizeof(st->reason), &first, text);
		}
		if (!dm_has_cap(CAP_SYS_ADMIN))
			clause(st->reason, sizeof(st->reason), &first,
			       "pagemap shows page frame numbers only with CAP_SYS_ADMIN");
		snprintf(path, sizeof(path), "%s/kpageflags", proc_root);
		if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0) {
			snprintf(text, sizeof(text), "this process cannot read %s (%s)",
				 strlen(path) <= 48 ? path : "kpageflags", strerror(errno));
			clause(st->reason, sizeof(st->reason), &first, text);
		}
		if (in->ops != DAMON_OPS_PADDR) {
			dm_proc_path(path, sizeof(path), proc_root, in->self ? 0 : in->pid,
				     "pagemap");
			if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0) {
				snprintf(text, sizeof(text), "this process cannot read %s (%s)",
					 strlen(path) <= 48 ? path : "the target's pagemap",
					 strerror(errno));
				clause(st->reason, sizeof(st->reason), &first, text);
			}
		}
		if (first) {
			clause(st->reason, sizeof(st->reason), &first,
			       "idle page tracking is there and this process may use it; sees reads "
			       "and writes");
			st->usable = 1;
			if (kernel_damon_runs(sysfs_root, text, 64)) {
				say(st->reason, sizeof(st->reason),
				    "; but kernel DAMON is running (%s): it uses the same page flags, "
				    "so each misses accesses the other harvested first",
				    text);
			}
			return;
		}
	}
	st->usable = 0;
}

static void judge_uffd_wp(const struct dm_probe_in *in, struct damon_backend_status *st)
{
	struct dm_err err;
	bool first = true;
	int rc;

	st->sees = DAMON_SEES_WRITES;
	st->usable = 0;
	snprintf(st->reason, sizeof(st->reason), "uffd_wp: ");
	if (!self_only(in, st->reason, sizeof(st->reason), &first))
		return;
	dm_err_clear(&err);
	rc = dm_uffd_wp_probe(in->proc_root ? in->proc_root : "/proc", &err);
	if (rc < 0) {
		const char *msg = err.msg;

		/* the sentence may already name the backend */
		if (!strncmp(msg, "uffd_wp: ", 9))
			msg += 9;
		if (msg[0])
			clause(st->reason, sizeof(st->reason), &first, msg);
		else
			say(st->reason, sizeof(st->reason), "it cannot run here (%s)",
			    strerror(-rc));
		return;
	}
	clause(st->reason, sizeof(st->reason), &first,
	       "userfaultfd write-protect + PAGEMAP_SCAN on the calling process; sees writes only");
	st->usable = 1;
}

static void judge_soft_dirty(const struct dm_probe_in *in, struct damon_backend_status *st)
{
	struct dm_err err;
	const char *msg;
	int rc;
	bool first = true;

	st->sees = DAMON_SEES_WRITES;
	st->usable = 0;
	snprintf(st->reason, sizeof(st->reason), "soft_dirty: ");
	if (in->ops == DAMON_OPS_PADDR) {
		clause(st->reason, sizeof(st->reason), &first,
		       "it monitors process memory only, not physical memory (paddr)");
		return;
	}
	dm_err_clear(&err);
	rc = dm_soft_dirty_probe(in->proc_root ? in->proc_root : "/proc", in->self ? 0 : in->pid,
				 &err);
	msg = err.msg;
	if (!strncmp(msg, "soft_dirty: ", 12))
		msg += 12;
	if (rc < 0) {
		if (msg[0])
			clause(st->reason, sizeof(st->reason), &first, msg);
		else
			say(st->reason, sizeof(st->reason), "it cannot run here (%s)",
			    strerror(-rc));
		return;
	}
	clause(st->reason, sizeof(st->reason), &first,
	       "soft-dirty bits of the target's page tables (clear_refs at most once per "
	       "aggregation interval); sees writes only");
	st->usable = 1;
}

static void judge_fault(const struct dm_probe_in *in, struct damon_backend_status *st)
{
	struct dm_err err;
	bool first = true;
	int rc;

	st->sees = DAMON_SEES_READS | DAMON_SEES_WRITES;
	st->usable = 0;
	snprintf(st->reason, sizeof(st->reason), "fault: ");
	if (!self_only(in, st->reason, sizeof(st->reason), &first))
		return;
	dm_err_clear(&err);
	rc = dm_fault_probe(&err);
	if (rc < 0) {
		const char *msg = err.msg;

		if (!strncmp(msg, "fault: ", 7))
			msg += 7;
		clause(st->reason, sizeof(st->reason), &first, msg[0] ? msg : strerror(-rc));
		return;
	}
	clause(st->reason, sizeof(st->reason), &first,
	       "page protection and a SIGSEGV handler (chained) on the calling process; sees "
	       "reads and writes, and which CPU; opt-in only: AUTO never picks it");
	st->usable = 1;
}

void dm_probe_backend(const struct dm_probe_in *in, int backend, struct damon_backend_status *out)
{
	struct damon_backend_status st;
	size_t n, reason_at = offsetof(struct damon_backend_status, reason);

	memset(&st, 0, sizeof(st));
	st.backend = (uint32_t)backend;
	switch (backend) {
	case DAMON_BACKEND_KERNEL:
		st.sees = DAMON_SEES_READS | DAMON_SEES_WRITES;
		st.usable = dm_kernel_probe(in, st.reason, sizeof(st.reason));
		break;
	case DAMON_BACKEND_PAGE_IDLE:
		judge_page_idle(in, &st);
		break;
	case DAMON_BACKEND_UFFD_WP:
		judge_uffd_wp(in, &st);
		break;
	case DAMON_BACKEND_SOFT_DIRTY:
		judge_soft_dirty(in, &st);
		break;
	case DAMON_BACKEND_FAULT:
		judge_fault(in, &st);
		break;
	default:
		snprintf(st.reason, sizeof(st.reason), "backend %d is not one this version knows",
			 backend);
		break;
	}

	/* Fill at most out->sz bytes (an older caller's struct may be shorter). */
	n = out->sz < sizeof(st) ? out->sz : sizeof(st);
	st.sz = out->sz;
	memcpy(out, &st, n);
	if (n > reason_at && n < reason_at + sizeof(st.reason))
		((char *)out)[n - 1] = '\0';
}

int dm_probe_auto_pick(const struct damon_backend_status all[DAMON_BACKEND_MAX + 1])
{
	for (size_t i = 0; i < sizeof(auto_order) / sizeof(auto_order[0]); i++)
		if (all[auto_order[i]].usable)
			return auto_order[i];
	return -EOPNOTSUPP;
}

int dm_probe_auto(const struct dm_probe_in *in,
		  struct damon_backend_status all[DAMON_BACKEND_MAX + 1])
{
	int b;

	/* @all is the library's own array: every element is full size */
	for (b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		all[b].sz = sizeof(all[b]);
		dm_probe_backend(in, b, &all[b]);
	}
	return dm_probe_auto_pick(all);
}
