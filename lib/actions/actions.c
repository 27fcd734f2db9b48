// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/capability.h>

#ifdef HAVE_LIBNUMA
#include <numa.h>
#include <numaif.h>
#endif

#include "../ops/maps.h"
#include "../ops/uffd_abi.h"
#include "../probe/probe.h"
#include "../util/proc.h"
#include "actions.h"
#include "../util/fail.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

#define PAGE_SZ 4096ULL
#define HPAGE_SZ (2ULL << 20)

static const char *const names[] = {
	"stat", "cold", "pageout", "willneed", "hugepage", "nohugepage",
	"collapse", "migrate_hot", "migrate_cold", "lru_prio", "lru_deprio",
};

static const char *action_name(uint32_t a)
{
	return a <= DAMOS_LRU_DEPRIO ? names[a] : "unknown";
}

static int advice_of(uint32_t action)
{
	switch (action) {
	case DAMOS_COLD:
		return MADV_COLD;
	case DAMOS_PAGEOUT:
		return MADV_PAGEOUT;
	case DAMOS_WILLNEED:
		return MADV_WILLNEED;
	case DAMOS_HUGEPAGE:
		return MADV_HUGEPAGE;
	case DAMOS_NOHUGEPAGE:
		return MADV_NOHUGEPAGE;
	case DAMOS_COLLAPSE:
		return MADV_COLLAPSE;
	default:
		return -1;
	}
}

/* The advice process_madvise() takes for another process. */
static bool remote_advice(uint32_t action)
{
	return action == DAMOS_COLD || action == DAMOS_PAGEOUT || action == DAMOS_WILLNEED ||
	       action == DAMOS_COLLAPSE;
}

void dm_action_target_init(struct dm_action_target *t, pid_t pid, const char *proc_root)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid ? pid : getpid();
	t->self = t->pid == getpid();
	t->pidfd = -1;
	t->pagemap_fd = -1;
	t->proc_root = proc_root;
}

void dm_action_target_fini(struct dm_action_target *t)
{
	if (t->pidfd >= 0)
		close(t->pidfd);
	if (t->pagemap_fd >= 0)
		close(t->pagemap_fd);
	t->pidfd = t->pagemap_fd = -1;
}

int dm_action_check(uint32_t action, bool self, pid_t pid, uint32_t nid, struct dm_err *err)
{
	switch (action) {
	case DAMOS_STAT:
		return 0;
	case DAMOS_LRU_PRIO:
	case DAMOS_LRU_DEPRIO:
		return dm_err_set(err, -EOPNOTSUPP, "action \"%s\" reorders the kernel's LRU lists, "
				  "which no system call can do: it runs on the kernel backend only",
				  action_name(action));
	case DAMOS_MIGRATE_HOT:
	case DAMOS_MIGRATE_COLD:
#ifdef HAVE_LIBNUMA
		if (numa_available() < 0)
			return dm_err_set(err, -EOPNOTSUPP, "action \"%s\": this system has no "
					  "NUMA support (numa_available() failed)",
					  action_name(action));
		if ((int)nid > numa_max_node() || nid > INT32_MAX)
			return dm_err_set(err, -EINVAL, "action \"%s\": target_nid %u is not a "
					  "node of this system (nodes 0..%d)", action_name(action),
					  nid, numa_max_node());
		if (!self && !dm_has_cap(CAP_SYS_NICE))
			return dm_err_set(err, -EPERM, "action \"%s\" on process %d: moving another "
					  "process's pages needs CAP_SYS_NICE, which this process "
					  "lacks", action_name(action), (int)pid);
		return 0;
#else
		return dm_err_set(err, -EOPNOTSUPP, "action \"%s\" needs libnuma, which this "
				  "libdamon was built without", action_name(action));
#endif
	default:
		break;
	}
	if (action > DAMOS_LRU_DEPRIO)
		return dm_err_set(err, -EINVAL, "unknown action %u", action);
	if (self)
		return 0;
	if (!remote_advice(action))
		return dm_err_set(err, -EOPNOTSUPP, "action \"%s\" on process %d: the kernel changes "
				  "another process's VMA flags through no system call "
				  "(process_madvise() takes only cold, pageout, willneed and "
				  "collapse); only the process itself can do it",
				  action_name(action), (int)pid);
	if (!dm_has_cap(CAP_SYS_NICE))
		return dm_err_set(err, -EPERM, "action \"%s\" on process %d: process_madvise() on "
				  "another process needs CAP_SYS_NICE (and ptrace read access), "
				  "which this process lacks", action_name(action), (int)pid);
	return 0;
}

static int open_pidfd(struct dm_action_target *t, struct dm_err *err)
{
	long fd;

	if (t->pidfd >= 0)
		return 0;
	fd = DM_FAIL(ESRCH) ? -1 : syscall(SYS_pidfd_open, t->pid, 0);
	if (fd < 0)
		return dm_err_set(err, -errno, "pidfd_open(%d): %s", (int)t->pid, strerror(errno));
	t->pidfd = (int)fd;
	return 0;
}

/* One advice call over [start, end). 0 or -errno. */
static int advise(struct dm_action_target *t, int advice, uint64_t start, uint64_t end,
		  struct dm_err *err)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)start, .iov_len = end - start };
	long r;

	if (t->self) {
		if (DM_FAIL(EAGAIN))
			return -EAGAIN;
		return madvise((void *)(uintptr_t)start, end - start, advice) ? -errno : 0;
	}
	r = open_pidfd(t, err);
	if (r)
		return (int)r;
	r = DM_FAIL(EAGAIN) ? -1 : syscall(SYS_process_madvise, t->pidfd, &iov, 1, advice, 0);
	if (r < 0)
		return -errno;
	return (size_t)r == end - start ? 0 : -ENOMEM;
}

struct vma_walk {
	uint64_t start, end;
	struct dm_action_target *t;
	int advice;
	uint64_t applied;
	int hard; /* an error that is not about a hole or an unsuitable mapping */
};

static int vma_cb(const struct dm_map *m, void *arg)
{
	struct vma_walk *w = arg;
	uint64_t s = m->start > w->start ? m->start : w->start;
	uint64_t e = m->end < w->end ? m->end : w->end;
	int r;

	if (s >= e || dm_map_is_vsyscall(m))
		return 0;
	r = advise(w->t, w->advice, s, e, NULL);
	if (!r)
		w->applied += e - s;
	else if (r == -EPERM || r == -ESRCH)
		w->hard = r;
	return r == -ESRCH ? r : 0;
}

/* The advice went partly wrong over a range with holes: go mapping by
 * mapping and count what took. */
static int64_t advise_by_vma(struct dm_action_target *t, int advice, uint64_t start, uint64_t end,
			     struct dm_err *err)
{
	struct vma_walk w = { start, end, t, advice, 0, 0 };
	char path[256];
	int r;

	r = dm_proc_path(path, sizeof(path), t->proc_root, t->self ? 0 : t->pid, "maps");
	if (!r)
		r = dm_maps_foreach(path, vma_cb, &w);
	if (r == -ENOENT || r == -ESRCH || w.hard == -ESRCH)
		return dm_err_set(err, -ESRCH, "process %d exited", (int)t->pid);
	if (r < 0)
		return dm_err_set(err, r, "reading %s: %s", path, strerror(-r));
	if (w.hard == -EPERM && !w.applied)
		return dm_err_set(err, -EPERM, "process_madvise() on process %d: permission "
				  "denied (needs CAP_SYS_NICE and ptrace read access)", (int)t->pid);
	return (int64_t)w.applied;
}

/*
 * MADV_COLLAPSE 2 MiB block by block: count the blocks that are huge after.
 *
 * In a mapping registered with a userfaultfd (the uffd_wp backend's), the
 * kernel collapses only blocks whose 512 pages are all present: one
 * never-touched or freed page and it answers EBUSY (SCAN_EXCEED_NONE_PTE;
 * outside userfaultfd, MADV_COLLAPSE fills such holes itself). Sparse hot
 * memory, an allocator's heap with free slots, would never be collapsed.
 * So in the calling process an EBUSY block is populated (MADV_POPULATE_WRITE:
 * zero pages where the huge page would have put zeros anyway; sample pages
 * were released before the action, so no access is faked) and tried once
 * more.
 */
static int64_t collapse(struct dm_action_target *t, uint64_t start, uint64_t end,
			struct dm_err *err)
{
	uint64_t b = (start + HPAGE_SZ - 1) & ~(HPAGE_SZ - 1), applied = 0;

	for (; b + HPAGE_SZ <= end; b += HPAGE_SZ) {
		int r = advise(t, MADV_COLLAPSE, b, b + HPAGE_SZ, err);

		if (r == -EBUSY && t->self &&
		    (DM_FAIL(ENOMEM)
			     ? -1
			     : madvise((void *)(uintptr_t)b, HPAGE_SZ, MADV_POPULATE_WRITE)) == 0)
			r = advise(t, MADV_COLLAPSE, b, b + HPAGE_SZ, err);

		if (!r)
			applied += HPAGE_SZ;
		else if (r == -EPERM)
			return dm_err_set(err, -EPERM, "process_madvise(MADV_COLLAPSE) on process "
					  "%d: permission denied (needs CAP_SYS_NICE and ptrace "
					  "read access)", (int)t->pid);
		else if (r == -ESRCH)
			return dm_err_set(err, -ESRCH, "process %d exited", (int)t->pid);
		/* EINVAL (not eligible: nohugepage, unpopulated, armed pages),
		 * EAGAIN, ENOMEM (a hole): this block stays as it is. */
	}
	return (int64_t)applied;
}

#ifdef HAVE_LIBNUMA
/* Move the present pages of [start, end) that are not on @nid there. */
static int64_t migrate(struct dm_action_target *t, uint64_t start, uint64_t end, uint32_t nid,
		       struct dm_err *err)
{
	enum { BATCH = 512 };
	void *pages[BATCH];
	int nodes[BATCH], status[BATCH];
	uint64_t moved = 0;
	int pid = t->self ? 0 : t->pid;

	for (uint64_t a = start; a < end;) {
		unsigned long n = 0, k = 0;

		for (; a < end && n < BATCH; a += PAGE_SZ)
			pages[n++] = (void *)(uintptr_t)a;
		/* Where are they now? (nodes NULL: a query) */
		if ((DM_FAIL(ENOMEM) ? -1 : numa_move_pages(pid, n, pages, NULL, status, 0)) < 0) {
			if (errno == ESRCH)
				return dm_err_set(err, -ESRCH, "process %d exited", (int)t->pid);
			if (errno == EPERM)
				return dm_err_set(err, -EPERM, "move_pages() on process %d: permission "
						  "denied (needs CAP_SYS_NICE)", (int)t->pid);
			continue;
		}
		for (unsigned long i = 0; i < n; i++)
			if (status[i] >= 0 && status[i] != (int)nid) {
				pages[k] = pages[i];
				nodes[k] = (int)nid;
				k++;
			}
		if (!k)
			continue;
		if ((DM_FAIL(ENOMEM)
			     ? -1
			     : numa_move_pages(pid, k, pages, nodes, status, MPOL_MF_MOVE)) < 0 &&
		    errno != ENOENT)
			continue;
		for (unsigned long i = 0; i < k; i++)
			if (status[i] == (int)nid)
				moved += PAGE_SZ;
	}
	return (int64_t)moved;
}
#endif

/* Resident bytes of [start, end) of the calling process (mincore), or -1
 * when part of it is not mapped. */
static int64_t resident_self(uint64_t start, uint64_t end)
{
	unsigned char vec[1024];
	int64_t res = 0;

	for (uint64_t a = start; a < end;) {
		uint64_t len = end - a < sizeof(vec) * PAGE_SZ ? end - a : sizeof(vec) * PAGE_SZ;

		if (mincore((void *)(uintptr_t)a, len, vec))
			return -1;
		for (uint64_t i = 0; i < len / PAGE_SZ; i++)
			res += vec[i] & 1;
		a += len;
	}
	return res * (int64_t)PAGE_SZ;
}

/* MADV_PAGEOUT on the calling process: the bytes that left memory, as the
 * kernel's pageout counts what it reclaimed (madvise itself does not say). */
static int64_t pageout_self(struct dm_action_target *t, uint64_t start, uint64_t end,
			    struct dm_err *err)
{
	int64_t before = resident_self(start, end), after;
	int r;

	if (before < 0) /* a hole: advise mapping by mapping, count advised bytes */
		return advise_by_vma(t, MADV_PAGEOUT, start, end, err);
	r = advise(t, MADV_PAGEOUT, start, end, err);
	if (r && r != -ENOMEM && r != -EINVAL)
		return dm_err_set(err, r, "madvise(MADV_PAGEOUT): %s", strerror(-r));
	after = resident_self(start, end);
	return after >= 0 && after < before ? before - after : 0;
}

int64_t dm_action_apply(struct dm_action_target *t, uint32_t action, uint64_t start,
			uint64_t end, uint32_t nid, struct dm_err *err)
{
	int advice, r;

	if (start >= end)
		return 0;
	r = dm_action_check(action, t->self, t->pid, nid, err);
	if (r)
		return r;
	if (action == DAMOS_STAT)
		return 0;
	if (action == DAMOS_MIGRATE_HOT || action == DAMOS_MIGRATE_COLD) {
#ifdef HAVE_LIBNUMA
		return migrate(t, start, end, nid, err);
#else
		return -EOPNOTSUPP; /* dm_action_check() said why */
#endif
	}
	if (action == DAMOS_COLLAPSE)
		return collapse(t, start, end, err);
	if (action == DAMOS_PAGEOUT && t->self)
		return pageout_self(t, start, end, err);
	advice = advice_of(action);
	r = advise(t, advice, start, end, err);
	if (!r)
		return (int64_t)(end - start);
	if (r == -ESRCH)
		return dm_err_set(err, -ESRCH, "process %d exited", (int)t->pid);
	if (r == -EPERM)
		return dm_err_set(err, -EPERM, "%s on process %d: permission denied (process_madvise() "
				  "needs CAP_SYS_NICE and ptrace read access)", action_name(action),
				  (int)t->pid);
	/* ENOMEM: holes in the range; EINVAL: a mapping that takes no such
	 * advice. Go mapping by mapping. */
	return advise_by_vma(t, advice, start, end, err);
}

/* ---- ops-layer filters -------------------------------------------------- */

static bool ops_filter(const struct damos_filter_opts *f)
{
	return f->type == DAMOS_FILTER_ANON || f->type == DAMOS_FILTER_HUGEPAGE_SIZE ||
	       f->type == DAMOS_FILTER_MEMCG || f->type == DAMOS_FILTER_YOUNG ||
	       f->type == DAMOS_FILTER_UNMAPPED;
}

int dm_action_filters_check(const struct damos_filter_opts *f, size_t n, struct dm_err *err)
{
	static const char *const why[] = {
		[DAMOS_FILTER_MEMCG] = "memcg (page-to-cgroup needs kpagecgroup and root; "
				       "use the kernel backend)",
		[DAMOS_FILTER_YOUNG] = "young (the accessed bit of each page is the kernel's)",
		[DAMOS_FILTER_UNMAPPED] = "unmapped (a physical-memory filter; user-space "
					  "backends act on virtual memory)",
	};

	for (size_t i = 0; i < n; i++)
		if (f[i].type == DAMOS_FILTER_MEMCG || f[i].type == DAMOS_FILTER_YOUNG ||
		    f[i].type == DAMOS_FILTER_UNMAPPED)
			return dm_err_set(err, -EOPNOTSUPP, "filter %s runs on the kernel backend "
					  "only", why[f[i].type]);
	return 0;
}

/* Is ops filter @f about a run of pages with PAGEMAP_SCAN categories @c? */
static bool page_filter_about(const struct damos_filter_opts *f, uint64_t c)
{
	bool m = false;

	if (f->type == DAMOS_FILTER_ANON) {
		m = (c & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) && !(c & PAGE_IS_FILE);
	} else if (f->type == DAMOS_FILTER_HUGEPAGE_SIZE) {
		/* folio size as pagemap shows it: PMD-mapped or a base page */
		uint64_t sz = (c & PAGE_IS_HUGE) ? HPAGE_SZ : PAGE_SZ;

		m = (c & PAGE_IS_PRESENT) && sz >= f->min_sz && sz <= f->max_sz;
	}
	return m == !!f->matching;
}

static bool pages_pass(const struct damos_filter_opts *f, size_t n, uint64_t c)
{
	const struct damos_filter_opts *last = NULL;

	for (size_t i = 0; i < n; i++) {
		if (f[i].type != DAMOS_FILTER_ANON && f[i].type != DAMOS_FILTER_HUGEPAGE_SIZE)
			continue;
		if (page_filter_about(&f[i], c))
			return f[i].allow;
		last = &f[i];
	}
	return !last || !last->allow;
}

static int open_pagemap(struct dm_action_target *t, struct dm_err *err)
{
	char path[256];
	int r;

	if (t->pagemap_fd >= 0)
		return 0;
	r = dm_proc_path(path, sizeof(path), t->proc_root, t->self ? 0 : t->pid, "pagemap");
	if (r)
		return dm_err_set(err, r, "pagemap path too long");
	t->pagemap_fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (t->pagemap_fd < 0)
		return dm_err_set(err, errno == ENOENT ? -ESRCH : -errno, "opening %s: %s", path,
				  strerror(errno));
	return 0;
}

int64_t dm_action_apply_filtered(struct dm_action_target *t, uint32_t action, uint64_t start,
				 uint64_t end, uint32_t nid, const struct damos_filter_opts *f,
				 size_t n, uint64_t *ret_passed, struct dm_err *err)
{
	struct page_region vec[256];
	uint64_t at = start, run_start = 0, run_end = 0, passed = 0;
	int64_t applied = 0, r;
	bool any = false;
	int rc;

	for (size_t i = 0; i < n; i++)
		any |= ops_filter(&f[i]);
	if (!any) {
		*ret_passed = end - start;
		return dm_action_apply(t, action, start, end, nid, err);
	}
	rc = dm_action_filters_check(f, n, err);
	if (rc)
		return rc;
	rc = open_pagemap(t, err);
	if (rc)
		return rc;
	while (at < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.start = at,
			.end = end,
			.vec = (uint64_t)(uintptr_t)vec,
			.vec_len = sizeof(vec) / sizeof(vec[0]),
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | PAGE_IS_HUGE,
		};
		long k = DM_FAIL(ENOMEM) ? -1 : ioctl(t->pagemap_fd, PAGEMAP_SCAN, &a);

		if (k < 0) {
			if (errno == ENOTTY || errno == EINVAL)
				return dm_err_set(err, -EOPNOTSUPP, "anon/hugepage_size filters need "
						  "PAGEMAP_SCAN (Linux >= 6.7)");
			return dm_err_set(err, -errno, "PAGEMAP_SCAN of process %d: %s",
					  (int)t->pid, strerror(errno));
		}
		for (long i = 0; i < k; i++) {
			if (!pages_pass(f, n, vec[i].categories))
				continue;
			passed += vec[i].end - vec[i].start;
			if (run_end == vec[i].start) {
				run_end = vec[i].end;
				continue;
			}
			if (run_end > run_start) {
				r = dm_action_apply(t, action, run_start, run_end, nid, err);
				if (r < 0)
					return r;
				applied += r;
			}
			run_start = vec[i].start;
			run_end = vec[i].end;
		}
		if (a.walk_end <= at)
			break;
		at = a.walk_end;
	}
	/* Pages PAGEMAP_SCAN did not list (holes between mappings) take no
	 * filter's side; they carry no memory either. */
	if (run_end > run_start) {
		r = dm_action_apply(t, action, run_start, run_end, nid, err);
		if (r < 0)
			return r;
		applied += r;
	}
	*ret_passed = passed;
	return applied;
}
