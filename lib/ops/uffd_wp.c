// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * uffd_wp: write-access sampling of the calling process with asynchronous
 * userfaultfd write protection (Linux >= 6.7).
 *
 * A sample page is "armed" by write-protecting it through a userfaultfd whose
 * mappings are registered in WP mode with UFFD_FEATURE_WP_ASYNC: the first
 * write after arming is resolved by the kernel itself (no message, no
 * handler thread) and clears the page's uffd-wp bit. PAGEMAP_SCAN on
 * /proc/self/pagemap then reports the page as PAGE_IS_WRITTEN, and with
 * PM_SCAN_WP_MATCHING re-arms it in the same call. Reads are invisible: this
 * primitive sees writes only (DAMON_SEES_WRITES).
 *
 * Cost is bounded by the number of regions: every syscall touches one page
 * (arm, check, disarm); whole mappings are only ever registered, never
 * scanned.
 *
 * Known limits: the write-protect bit is one per page, so two contexts of
 * one process that draw the same sample page in the same interval see each
 * other's re-arming (an access is counted by at most one of them); an
 * application that starts using userfaultfd after monitoring began gets EBUSY
 * for the mappings we registered; memory mapped between two update() calls
 * is not sampled until the next one.
 *
 * Measured on the development machine (6.18, PVM guest), per page: arm with
 * UFFDIO_WRITEPROTECT 1.6-2.3 us (PAGEMAP_SCAN + WP_MATCHING 1.9-2.8 us, the
 * most on unpopulated pages), disarm 1.5 us, check only 1.8-2.2 us, check and
 * re-arm 1.5 us (not written) to 2.4-3.5 us (written).
 *
 * This file: instances, targets, mappings and the ops table; the shared
 * userfaultfd and the page operations are in uffd_fd.c and uffd_page.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <damon/damon.h>

#include "maps.h"
#include "ops.h"
#include "uffd.h"
#include "uffd_abi.h"
#include "../util/proc.h"
#include "../util/fail.h"

#define PAGE_SZ DM_UFFD_PAGE_SZ

static uint64_t page_of(uint64_t addr)
{
	return addr & ~(PAGE_SZ - 1);
}

struct dm_ops_inst {
	struct dm_alloc alloc;
	char *proc_root;
	uint32_t ops;
	pid_t pid; /* the process this instance belongs to */
	int uffd;  /* borrowed from shared_uffd; never closed here */
	int pagemap_fd;
	uint64_t features;
	uint64_t app_cost_ns;
};

enum map_state {
	MAP_UNKNOWN = 0, /* not registered yet, or must be registered again */
	MAP_OURS,	 /* registered with our userfaultfd */
	MAP_SKIPPED,	 /* not monitored (special mapping, outside the ranges) */
	MAP_REFUSED,	 /* the kernel refuses uffd-wp on it (EINVAL/EPERM) */
	MAP_FOREIGN,	 /* owned by another userfaultfd (EBUSY) */
};

struct map_ent {
	uint64_t start, end;
	uint32_t state;
	uint8_t vsyscall;
};

struct page_ent {
	uint64_t page;
	uint8_t armed; /* write-protected by us, as far as we know */
	uint8_t huge;  /* inside a huge page: left unarmed, reads DM_ACCESS_UNKNOWN */
	uint8_t watched; /* not there when drawn: written if there at check */
};

struct utarget {
	struct map_ent *maps; /* sorted by address, from the last update() */
	size_t nr_maps, cap_maps;
	struct map_ent *new_maps; /* update() scratch */
	size_t nr_new, cap_new;
	struct dm_range *ranges; /* update() scratch for the layout */
	size_t cap_ranges;

	struct page_ent *pages; /* sample pages, sorted: what may be armed */
	struct page_ent *spare;
	uint64_t *draw;
	size_t nr_pages, cap_pages;
	bool rearm_in_check;

	bool registered_once;
	size_t nr_refused_einval, nr_refused_eperm, nr_foreign, nr_registered;
};

static struct map_ent *find_map(struct map_ent *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < v[mid].start)
			hi = mid;
		else if (addr >= v[mid].end)
			lo = mid + 1;
		else
			return &v[mid];
	}
	return NULL;
}

static struct page_ent *find_page(struct page_ent *v, size_t n, uint64_t page)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (page < v[mid].page)
			hi = mid;
		else if (page > v[mid].page)
			lo = mid + 1;
		else
			return &v[mid];
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void uffd_close(struct dm_ops_inst *inst)
{
	if (!inst)
		return;
	if (inst->pagemap_fd >= 0)
		close(inst->pagemap_fd);
	if (inst->uffd >= 0)
		dm_uffd_shared_put(inst->uffd, inst->pid);
	dm_free(&inst->alloc, inst->proc_root);
	dm_free(&inst->alloc, inst);
}

static int uffd_open(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg, struct dm_err *err)
{
	const struct dm_alloc *a = cfg ? cfg->alloc : NULL;
	struct dm_ops_inst *inst;
	const char *root;
	int r;

	if (!ret || !cfg)
		return dm_err_set(err, -EINVAL, "uffd_wp: invalid arguments");
	if (cfg->ops != DAMON_OPS_VADDR && cfg->ops != DAMON_OPS_FVADDR)
		return dm_err_set(err, -EOPNOTSUPP,
				  "uffd_wp: monitors virtual addresses of the calling process "
				  "only (vaddr or fvaddr), not physical memory");
	inst = dm_calloc(a, 1, sizeof(*inst));
	if (!inst)
		return dm_err_set(err, -ENOMEM, "uffd_wp: out of memory");
	if (a)
		inst->alloc = *a;
	inst->ops = cfg->ops;
	inst->pid = getpid();
	inst->uffd = -1;
	inst->pagemap_fd = -1;
	root = cfg->proc_root && *cfg->proc_root ? cfg->proc_root : DM_PROC_ROOT_DEFAULT;
	inst->proc_root = dm_malloc(&inst->alloc, strlen(root) + 1);
	if (!inst->proc_root) {
		r = dm_err_set(err, -ENOMEM, "uffd_wp: out of memory");
		goto fail;
	}
	strcpy(inst->proc_root, root);

	r = dm_uffd_shared_get(&inst->features, err);
	if (r < 0)
		goto fail;
	inst->uffd = r;
	r = dm_uffd_open_pagemap(inst->proc_root, err);
	if (r < 0)
		goto fail;
	inst->pagemap_fd = r;
	r = dm_uffd_scratch_check(inst->uffd, inst->pagemap_fd, &inst->app_cost_ns, err);
	if (r < 0)
		goto fail;
	*ret = inst;
	return 0;
fail:
	uffd_close(inst);
	return r;
}

static int uffd_target_init(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_err *err)
{
	struct utarget *ut;
	pid_t self = getpid();

	if (!inst || !t)
		return dm_err_set(err, -EINVAL, "uffd_wp: invalid arguments");
	if (self != inst->pid)
		return dm_err_set(err, -ECHILD, "uffd_wp: instance used after fork()");
	if (t->pid != self && t->pid != dm_proc_self_pid(inst->proc_root))
		return dm_err_set(err, -EOPNOTSUPP,
				  "uffd_wp: can monitor only the calling process (pid %d), not "
				  "pid %d; use the kernel or page_idle backend for other processes",
				  (int)self, (int)t->pid);
	ut = dm_calloc(&inst->alloc, 1, sizeof(*ut));
	if (!ut)
		return dm_err_set(err, -ENOMEM, "uffd_wp: out of memory");
	t->priv = ut;
	return 0;
}

/*
 * Unregister the mappings @ut registered, when this instance is the shared
 * userfaultfd's only user (with others alive they may be theirs as well:
 * they stay registered until the last close). Under the lock, so that no
 * instance opens meanwhile and registers what is being unregistered. A
 * mapping replaced since the last update may now be unregistered (the
 * kernel skips it) or unfit (EINVAL, nothing changes); recent kernels (7.2's
 * source) also refuse to unregister another userfaultfd's mapping.
 */
static void unregister_ours(struct dm_ops_inst *inst, struct utarget *ut)
{
	if (dm_uffd_sole_begin(inst->uffd)) {
		for (size_t i = 0; i < ut->nr_maps; i++) {
			struct uffdio_range r = {
				.start = ut->maps[i].start,
				.len = ut->maps[i].end - ut->maps[i].start,
			};

			if (ut->maps[i].state == MAP_OURS)
				ioctl(inst->uffd, UFFDIO_UNREGISTER, &r);
		}
	}
	dm_uffd_sole_end();
}

static void uffd_target_fini(struct dm_ops_inst *inst, struct dm_ops_target *t)
{
	struct utarget *ut;
	size_t i;

	if (!inst || !t || !t->priv)
		return;
	ut = t->priv;
	/* Leave no armed page behind. In a fork()ed child the pages are the
	 * parent's business (the child's copies lost their protection at fork)
	 * and the userfaultfd acts on the parent: touch nothing. */
	if (getpid() == inst->pid) {
		for (i = 0; i < ut->nr_pages; i++)
			if (ut->pages[i].armed)
				dm_uffd_wp_page(inst->uffd, ut->pages[i].page, false);
		unregister_ours(inst, ut);
	}
	dm_free(&inst->alloc, ut->maps);
	dm_free(&inst->alloc, ut->new_maps);
	dm_free(&inst->alloc, ut->ranges);
	dm_free(&inst->alloc, ut->pages);
	dm_free(&inst->alloc, ut->spare);
	dm_free(&inst->alloc, ut->draw);
	dm_free(&inst->alloc, ut);
	t->priv = NULL;
}

struct collect {
	struct dm_ops_inst *inst;
	struct utarget *ut;
};

static int collect_cb(const struct dm_map *m, void *userdata)
{
	struct collect *c = userdata;
	struct utarget *ut = c->ut;
	struct map_ent *e;

	if (ut->nr_new && m->start < ut->new_maps[ut->nr_new - 1].end)
		return 0; /* never in a consistent maps file */
	e = dm_grow(&c->inst->alloc, ut->new_maps, &ut->cap_new, ut->nr_new + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	ut->new_maps = e;
	e = &ut->new_maps[ut->nr_new++];
	e->start = m->start;
	e->end = m->end;
	/* vdso/vvar/vsyscall...: the kernel refuses them (EINVAL); don't ask. */
	e->state = dm_map_is_special(m) ? MAP_SKIPPED : MAP_UNKNOWN;
	e->vsyscall = dm_map_is_vsyscall(m);
	return 0;
}

static bool overlaps(const struct dm_range *r, size_t n, uint64_t start, uint64_t end)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (r[i].start < end && start < r[i].end)
			return true;
	return false;
}

/* Register @e with our userfaultfd. Return: 0, or -EBUSY when it belongs to
 * another userfaultfd. */
static int register_map(struct dm_ops_inst *inst, struct utarget *ut, struct map_ent *e)
{
	struct uffdio_register reg = {
		.range = {.start = e->start, .len = e->end - e->start},
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if ((DM_FAIL(ENOMEM) ? -1 : ioctl(inst->uffd, UFFDIO_REGISTER, &reg)) == 0) {
		e->state = MAP_OURS;
		ut->nr_registered++;
		return 0;
	}
	switch (errno) {
	case EBUSY:
		e->state = MAP_FOREIGN;
		ut->nr_foreign++;
		return -EBUSY;
	case EINVAL: /* VM_DROPPABLE, shadow stack, special, hugetlb/shmem unsupported */
		e->state = MAP_REFUSED;
		ut->nr_refused_einval++;
		return 0;
	case EPERM: /* shared read-only file mapping: no VM_MAYWRITE */
		e->state = MAP_REFUSED;
		ut->nr_refused_eperm++;
		return 0;
	default: /* ENOMEM (gone meanwhile), ...: try again at the next update */
		e->state = MAP_UNKNOWN;
		return 0;
	}
}

/*
 * Register, mapping by mapping, every mapping of /proc/self/maps that
 * overlaps the monitored ranges (one refused mapping would fail a whole
 * UFFDIO_REGISTER call). Mappings already known with the same bounds keep
 * their state without a syscall.
 *
 * A mapping owned by another userfaultfd (the application uses userfaultfd
 * itself) makes the first update() fail with -EBUSY and a sentence naming it:
 * the application's own userfaultfd and ours cannot share memory, and quietly
 * monitoring around it would give a wrong picture from the start. Found at a
 * later update, such a mapping is left out and counted (nr_foreign): the
 * monitor keeps running on the rest.
 */
static int uffd_update(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_range *ret,
		       size_t cap, struct dm_err *err)
{
	struct collect c;
	struct utarget *ut;
	char path[PATH_MAX];
	size_t i, j, nr_ranges = 0;
	int r, nret;

	if (!inst || !t || !t->priv || (!ret && cap))
		return dm_err_set(err, -EINVAL, "uffd_wp: invalid arguments");
	if (getpid() != inst->pid)
		return dm_err_set(err, -ECHILD, "uffd_wp: instance used after fork()");
	ut = t->priv;
	c.inst = inst;
	c.ut = ut;
	ut->nr_new = 0;
	r = dm_proc_path(path, sizeof(path), inst->proc_root, 0, "maps");
	if (r < 0)
		return dm_err_set(err, r, "uffd_wp: proc path too long");
	r = dm_maps_foreach(path, collect_cb, &c);
	if (r < 0)
		return dm_err_set(err, r, "uffd_wp: cannot read %s: %s", path, strerror(-r));

	if (inst->ops == DAMON_OPS_FVADDR) {
		nret = dm_layout_fixed(t->fixed, t->nr_fixed, ret, cap);
		if (nret < 0)
			return dm_err_set(err, nret, "uffd_wp: invalid fixed ranges");
	} else {
		struct dm_range *rg = dm_grow(&inst->alloc, ut->ranges, &ut->cap_ranges,
					      ut->nr_new ? ut->nr_new : 1, sizeof(*rg));

		if (!rg)
			return dm_err_set(err, -ENOMEM, "uffd_wp: out of memory");
		ut->ranges = rg;
		for (i = 0; i < ut->nr_new; i++) {
			/* The kernel's VMA walk does not see [vsyscall]; with it the
			 * biggest gap would be stack -> vsyscall. */
			if (ut->new_maps[i].vsyscall)
				continue;
			rg[nr_ranges].start = ut->new_maps[i].start;
			rg[nr_ranges].end = ut->new_maps[i].end;
			nr_ranges++;
		}
		nret = dm_layout_three_regions(rg, nr_ranges, ret, cap);
		if (nret < 0)
			return dm_err_set(err, nret,
					  "uffd_wp: the layout needs more than %zu ranges", cap);
	}

	/* Carry over what the previous update learned; register the rest. */
	for (i = 0, j = 0; i < ut->nr_new; i++) {
		struct map_ent *e = &ut->new_maps[i];

		if (e->state == MAP_SKIPPED)
			continue;
		if (!overlaps(ret, (size_t)nret, e->start, e->end)) {
			e->state = MAP_SKIPPED;
			continue;
		}
		while (j < ut->nr_maps && ut->maps[j].end <= e->start)
			j++;
		if (j < ut->nr_maps && ut->maps[j].start == e->start && ut->maps[j].end == e->end &&
		    ut->maps[j].state != MAP_UNKNOWN && ut->maps[j].state != MAP_SKIPPED) {
			e->state = ut->maps[j].state;
			continue;
		}
		if (register_map(inst, ut, e) == -EBUSY && !ut->registered_once)
			return dm_err_set(
				err, -EBUSY,
				"uffd_wp: mapping %llx-%llx is registered with another "
				"userfaultfd (the application's own?); uffd_wp cannot share "
				"it: use another backend",
				(unsigned long long)e->start, (unsigned long long)e->end);
	}
	ut->registered_once = true;

	/* Swap in the new list. */
	{
		struct map_ent *tmp = ut->maps;
		size_t tcap = ut->cap_maps;

		ut->maps = ut->new_maps;
		ut->cap_maps = ut->cap_new;
		ut->nr_maps = ut->nr_new;
		ut->new_maps = tmp;
		ut->cap_new = tcap;
		ut->nr_new = 0;
	}
	return nret;
}

/*
 * Arm the sample page of every region. The previous sample pages that are no
 * longer drawn are disarmed: left armed they would cost the application a
 * fault each on its next write for nothing, and the set to clean up at
 * target_fini() would grow without bound. So the armed set is always at most
 * one page per region.
 *
 * Whether check() re-arms in the same PAGEMAP_SCAN call is chosen from what
 * prepare() sees: when most sample pages are drawn again (a core keeping its
 * sampling addresses), re-arming while checking saves the arm call; when
 * they move every time (the kernel's way), re-arming would only have to be
 * undone here, so check() then only reads, and a written page needs no
 * disarm (the write already lifted the protection).
 */
static void uffd_prepare(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_region *v,
			 size_t n)
{
	struct utarget *ut;
	struct page_ent *np;
	size_t i, j, k, nd = 0, reused = 0;
	bool sorted = true;

	if (!inst || !t || !t->priv || getpid() != inst->pid)
		return;
	ut = t->priv;
	if (n > ut->cap_pages) {
		size_t c1 = ut->cap_pages, c2 = ut->cap_pages, c3 = ut->cap_pages;
		void *p;

		p = dm_grow(&inst->alloc, ut->pages, &c1, n, sizeof(*ut->pages));
		if (p)
			ut->pages = p;
		p = p ? dm_grow(&inst->alloc, ut->spare, &c2, n, sizeof(*ut->spare)) : NULL;
		if (p)
			ut->spare = p;
		p = p ? dm_grow(&inst->alloc, ut->draw, &c3, n, sizeof(*ut->draw)) : NULL;
		if (p)
			ut->draw = p;
		if (!p)
			n = ut->cap_pages; /* out of memory: sample what fits */
		else
			ut->cap_pages = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
	}
	for (i = 0; i < n; i++) {
		uint64_t pg = page_of(v[i].sampling_addr);
		struct map_ent *m = find_map(ut->maps, ut->nr_maps, pg);

		if (!m || m->state != MAP_OURS)
			continue;
		if (nd && pg <= ut->draw[nd - 1])
			sorted = false;
		ut->draw[nd++] = pg;
	}
	if (!sorted)
		qsort(ut->draw, nd, sizeof(ut->draw[0]), cmp_u64);

	/* Merge the armed set with the drawn pages. */
	np = ut->spare;
	for (i = 0, j = 0, k = 0; i < ut->nr_pages || j < nd;) {
		if (j < nd && k && np[k - 1].page == ut->draw[j]) {
			j++; /* a duplicate draw */
			continue;
		}
		if (j >= nd || (i < ut->nr_pages && ut->pages[i].page < ut->draw[j])) {
			if (ut->pages[i].armed)
				dm_uffd_wp_page(inst->uffd, ut->pages[i].page, false);
			i++;
			continue;
		}
		np[k].page = ut->draw[j];
		if (i < ut->nr_pages && ut->pages[i].page == ut->draw[j]) {
			np[k].armed = ut->pages[i].armed;
			reused++;
			i++;
		} else {
			np[k].armed = 0;
		}
		np[k].huge = 0;
		np[k].watched = 0;
		if (!np[k].armed) {
			int r = dm_uffd_arm_page(inst->pagemap_fd, np[k].page);

			np[k].huge = r == 1;
			np[k].armed = r == 0;
			np[k].watched = r == 2;
			if (r == -EINVAL) {
				/* e.g. a hugetlb page cannot be armed 4K at a time */
				struct map_ent *m = find_map(ut->maps, ut->nr_maps, np[k].page);

				if (m) {
					m->state = MAP_REFUSED;
					ut->nr_refused_einval++;
				}
			}
		}
		j++;
		k++;
	}
	ut->spare = ut->pages;
	ut->pages = np;
	ut->nr_pages = k;
	ut->rearm_in_check = k && reused * 2 > k;
}

/*
 * One PAGEMAP_SCAN per armed or watched sample page. A watched page (not
 * there when drawn) counts as accessed when it is there now. An armed page
 * counts as accessed when it
 * was written and is still there (present or swapped): a page zapped by
 * MADV_DONTNEED loses its write-protect marker and reads "written" although
 * nobody wrote it. Failures mean the memory went away or was replaced since
 * prepare(): not accessed (EPERM: the new memory is not registered, so its
 * mapping is registered again at the next update()).
 */
static int uffd_check(struct dm_ops_inst *inst, struct dm_ops_target *t, struct dm_region *v,
		      size_t n)
{
	struct utarget *ut;
	size_t i;
	int nr = 0;

	if (!inst || !t || !t->priv)
		return -EINVAL;
	if (getpid() != inst->pid)
		return -ECHILD;
	ut = t->priv;
	for (i = 0; i < n; i++) {
		struct page_ent *pe;
		int64_t s;

		v[i].accessed = 0;
		pe = find_page(ut->pages, ut->nr_pages, page_of(v[i].sampling_addr));
		if (pe && pe->huge) {
			v[i].accessed = DM_ACCESS_UNKNOWN;
			continue;
		}
		if (pe && pe->watched) {
			/* not there when drawn: there now (not the zero page a
			 * read maps) means written; prepare() arms it next */
			s = dm_uffd_page_state(inst->pagemap_fd, pe->page);
			if (s > 0 && (s & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) &&
			    !(s & PAGE_IS_PFNZERO)) {
				v[i].accessed = 1;
				nr++;
			}
			continue;
		}
		if (!pe || !pe->armed)
			continue;
		s = dm_uffd_scan_page(inst->pagemap_fd, pe->page, ut->rearm_in_check);
		if (s < 0) {
			pe->armed = 0;
			if (s == -EPERM) {
				struct map_ent *m = find_map(ut->maps, ut->nr_maps, pe->page);

				if (m && m->state == MAP_OURS)
					m->state = MAP_UNKNOWN;
			}
			continue;
		}
		if (s && (s & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED))) {
			v[i].accessed = 1;
			nr++;
		}
		/* Re-armed by the scan, or left armed because nobody wrote it. */
		pe->armed = ut->rearm_in_check || !s;
	}
	return nr;
}

/* A DAMOS action is about to change [start, end): disarm our sample pages
 * there (MADV_COLLAPSE fails while any is armed). */
static void uffd_release(struct dm_ops_inst *inst, struct dm_ops_target *t, uint64_t start,
			 uint64_t end)
{
	struct utarget *ut;

	if (!inst || !t || !t->priv || getpid() != inst->pid)
		return;
	ut = t->priv;
	for (size_t i = 0; i < ut->nr_pages; i++) {
		struct page_ent *pe = &ut->pages[i];

		if (pe->page < start || pe->page >= end || !pe->armed)
			continue;
		dm_uffd_wp_page(inst->uffd, pe->page, false);
		pe->armed = 0;
	}
}

static uint64_t uffd_app_cost_ns(struct dm_ops_inst *inst)
{
	return inst ? inst->app_cost_ns : 0;
}

const struct dm_ops dm_ops_uffd_wp = {
	.name = "uffd_wp",
	.sees = DAMON_SEES_WRITES,
	.open = uffd_open,
	.close = uffd_close,
	.target_init = uffd_target_init,
	.target_fini = uffd_target_fini,
	.update = uffd_update,
	.prepare = uffd_prepare,
	.check = uffd_check,
	.app_cost_ns = uffd_app_cost_ns,
	.release = uffd_release,
};
