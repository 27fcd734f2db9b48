// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * uffd_wp: one page at a time. Arming (write-protecting) a sample page,
 * disarming it, asking PAGEMAP_SCAN whether it was written, and the
 * scratch-page check open() and the probe run (see uffd.h for the other
 * parts).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "uffd.h"
#include "uffd_abi.h"
#include "../util/proc.h"
#include "../util/fail.h"

#define PAGE_SZ DM_UFFD_PAGE_SZ

/*
 * Arm/disarm one page. Arming with UFFDIO_WRITEPROTECT rather than a
 * PAGEMAP_SCAN with PM_SCAN_WP_MATCHING: both cost one syscall walking one
 * page, but UFFDIO_WRITEPROTECT measured 10-35% cheaper on unpopulated pages
 * (it installs the marker directly) and the same on present ones. Only pages
 * of mappings registered with our userfaultfd are ever passed here.
 */
int dm_uffd_wp_page(int uffd, uint64_t page, bool arm)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = page, .len = PAGE_SZ},
		.mode = arm ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (((arm) && DM_FAIL(ENOMEM) ? -1 : ioctl(uffd, UFFDIO_WRITEPROTECT, &wp)) < 0)
		return -errno;
	return 0;
}

/* The page's PAGE_IS_* categories, from a PAGEMAP_SCAN that changes
 * nothing. Return: the categories, or -errno. */
int64_t dm_uffd_page_state(int pagemap_fd, uint64_t page)
{
	struct page_region pr = {0};
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.start = page,
		.end = page + PAGE_SZ,
		.vec = (uint64_t)(uintptr_t)&pr,
		.vec_len = 1,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO | PAGE_IS_HUGE,
	};
	int r = DM_FAIL(ENOMEM) ? -1 : ioctl(pagemap_fd, PAGEMAP_SCAN, &a);

	if (r < 0)
		return -errno;
	return r ? (int64_t)pr.categories : 0;
}

/*
 * Arm one page if it is there (present or swapped) and not inside a
 * transparent huge page. One PAGEMAP_SCAN does it: PM_SCAN_WP_MATCHING
 * write-protects only the pages that match, the inverted PAGE_IS_HUGE
 * category leaves huge pages out, and the any-of categories leave out pages
 * that are not there.
 * - Huge pages: arming a 4K page of a THP splits it (and an armed page makes
 *   MADV_COLLAPSE fail).
 * - Pages not there: arming one installs a write-protect marker, which needs
 *   a page table. In a large mapping never touched (ASan's shadow, reserved
 *   heaps) every sample in a fresh 2 MiB then built 4 KiB of page tables
 *   that lived until the memory was unmapped: gigabytes within minutes.
 *   Such a page is watched instead: it was written if it is there (and not
 *   the shared zero page a read maps) when it is checked.
 * Only when nothing was armed does a second scan tell which of the two.
 * Return: 0 armed, 1 inside a huge page, 2 not there (watched), or -errno.
 */
int dm_uffd_arm_page(int pagemap_fd, uint64_t page)
{
	struct page_region pr = {0};
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = page,
		.end = page + PAGE_SZ,
		.vec = (uint64_t)(uintptr_t)&pr,
		.vec_len = 1,
		.category_inverted = PAGE_IS_HUGE,
		.category_mask = PAGE_IS_HUGE,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_HUGE | PAGE_IS_WPALLOWED,
	};
	int r = DM_FAIL(ENOMEM) ? -1 : ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
	int64_t st;

	if (r < 0)
		return -errno;
	if (r)
		return 0;
	st = dm_uffd_page_state(pagemap_fd, page);
	if (st < 0)
		return (int)st;
	if (st & PAGE_IS_HUGE)
		return 1;
	/* there now but not at the first scan: it came meanwhile, and the
	 * check will see it there */
	return 2;
}

/*
 * PAGEMAP_SCAN of one page for PAGE_IS_WRITTEN. With @rearm the written page
 * is write-protected again in the same call. PM_SCAN_CHECK_WPASYNC makes a
 * page outside an async-WP mapping fail with EPERM instead of being touched.
 * Return: 0 not written, or the page's categories (PAGE_IS_WRITTEN set), or
 * -errno.
 */
int64_t dm_uffd_scan_page(int pagemap_fd, uint64_t page, bool rearm)
{
	struct page_region pr = {0};
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = PM_SCAN_CHECK_WPASYNC | (rearm ? PM_SCAN_WP_MATCHING : 0),
		.start = page,
		.end = page + PAGE_SZ,
		.vec = (uint64_t)(uintptr_t)&pr,
		.vec_len = 1,
		/* re-arming never splits a huge page the written page became part of
		 * (it then reads as not written, once) */
		.category_inverted = rearm ? PAGE_IS_HUGE : 0,
		.category_mask = PAGE_IS_WRITTEN | (rearm ? PAGE_IS_HUGE : 0),
		.return_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};
	int r = DM_FAIL(ENOMEM) ? -1 : ioctl(pagemap_fd, PAGEMAP_SCAN, &a);

	if (r < 0)
		return -errno;
	if (r == 0 || !(pr.categories & PAGE_IS_WRITTEN))
		return 0;
	return (int64_t)pr.categories;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Scratch-page check shared by open() and the probe: register a private page
 * in WP mode, arm it and scan it, and optionally time the application's
 * first write to an armed page (median of a few rounds, minus a plain write).
 */
int dm_uffd_scratch_check(int uffd, int pagemap_fd, uint64_t *ret_cost_ns, struct dm_err *err)
{
	enum { ROUNDS = 7 };
	uint64_t armed[ROUNDS], plain[ROUNDS];
	struct uffdio_register reg = {0};
	struct uffdio_range unreg;
	volatile char *p;
	int64_t s;
	int i, r = 0;
	void *m;

	m = DM_FAIL(ENOMEM) ? MAP_FAILED
			    : mmap(NULL, 2 * PAGE_SZ, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return dm_err_set(err, -errno, "uffd_wp: mmap of a scratch page failed");
	p = m;
	p[0] = 1;
	p[PAGE_SZ] = 1;
	reg.range.start = (uint64_t)(uintptr_t)m;
	reg.range.len = 2 * PAGE_SZ;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if ((DM_FAIL(ENOMEM) ? -1 : ioctl(uffd, UFFDIO_REGISTER, &reg)) < 0) {
		r = dm_err_set(err, errno == EINVAL ? -EOPNOTSUPP : -errno,
			       "uffd_wp: UFFDIO_REGISTER in write-protect mode failed on anonymous "
			       "memory: %s",
			       strerror(errno));
		goto out;
	}
	r = dm_uffd_wp_page(uffd, reg.range.start, true);
	if (r < 0) {
		r = dm_err_set(err, -EOPNOTSUPP, "uffd_wp: UFFDIO_WRITEPROTECT failed: %s",
			       strerror(-r));
		goto out_unreg;
	}
	s = dm_uffd_scan_page(pagemap_fd, reg.range.start, true);
	if (s == -ENOTTY || s == -EINVAL || s == -EOPNOTSUPP) {
		r = dm_err_set(err, -EOPNOTSUPP,
			       "uffd_wp: this kernel's /proc/PID/pagemap lacks the PAGEMAP_SCAN "
			       "ioctl (needs Linux >= 6.7)");
		goto out_unreg;
	}
	if (s < 0) {
		r = dm_err_set(err, (int)s, "uffd_wp: PAGEMAP_SCAN failed: %s", strerror((int)-s));
		goto out_unreg;
	}
	if (s & PAGE_IS_WRITTEN) {
		r = dm_err_set(err, -EOPNOTSUPP,
			       "uffd_wp: an armed page reads as written: asynchronous "
			       "write protection does not work on this kernel");
		goto out_unreg;
	}
	if (!ret_cost_ns)
		goto out_unreg;
	for (i = 0; i < ROUNDS; i++) {
		uint64_t t0, t1, t2;

		if (dm_uffd_wp_page(uffd, reg.range.start, true) < 0)
			break;
		t0 = now_ns();
		p[0] = (char)i;
		t1 = now_ns();
		p[PAGE_SZ] = (char)i;
		t2 = now_ns();
		armed[i] = t1 - t0;
		plain[i] = t2 - t1;
	}
	if (i == ROUNDS) {
		qsort(armed, ROUNDS, sizeof(armed[0]), cmp_u64);
		qsort(plain, ROUNDS, sizeof(plain[0]), cmp_u64);
		*ret_cost_ns = armed[ROUNDS / 2] > plain[ROUNDS / 2]
				       ? armed[ROUNDS / 2] - plain[ROUNDS / 2]
				       : 0;
	}
out_unreg:
	unreg.start = reg.range.start;
	unreg.len = reg.range.len;
	ioctl(uffd, UFFDIO_UNREGISTER, &unreg);
out:
	munmap(m, 2 * PAGE_SZ);
	return r;
}

int dm_uffd_open_pagemap(const char *proc_root, struct dm_err *err)
{
	char path[PATH_MAX];
	int fd, r;

	r = dm_proc_path(path, sizeof(path), proc_root, 0, "pagemap");
	if (r < 0)
		return dm_err_set(err, r, "uffd_wp: proc path too long");
	fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dm_err_set(err, -errno, "uffd_wp: cannot open %s: %s", path,
				  strerror(errno));
	return fd;
}

int dm_uffd_wp_probe(const char *proc_root, struct dm_err *err)
{
	uint64_t features;
	int uffd, pm, r;

	/* A userfaultfd of its own: the scratch page is new memory, so it does
	 * not conflict with the shared one, and closing it leaves nothing. */
	uffd = dm_uffd_create(&features, err);
	if (uffd < 0)
		return uffd;
	pm = dm_uffd_open_pagemap(proc_root, err);
	if (pm < 0) {
		close(uffd);
		return pm;
	}
	r = dm_uffd_scratch_check(uffd, pm, NULL, err);
	close(pm);
	close(uffd);
	return r;
}
