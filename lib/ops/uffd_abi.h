/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Kernel uapi that the build machine's headers (Linux 6.1) predate, written
 * from include/uapi/linux/userfaultfd.h and include/uapi/linux/fs.h of Linux
 * >= 6.7. The kernel decides at run time; these only let us ask.
 */
#ifndef DAMON_OPS_UFFD_ABI_H
#define DAMON_OPS_UFFD_ABI_H

#include <stdint.h>
#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1 /* Linux 5.11 */
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12) /* Linux 5.19 */
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13) /* Linux 6.4 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15) /* Linux 6.7 */
#endif

#ifndef PAGEMAP_SCAN /* Linux 6.7 */
/* Categories: masks of struct pm_scan_arg, and page_region.categories. */
#define PAGE_IS_WPALLOWED  (1 << 0)
#define PAGE_IS_WRITTEN	   (1 << 1)
#define PAGE_IS_FILE	   (1 << 2)
#define PAGE_IS_PRESENT	   (1 << 3)
#define PAGE_IS_SWAPPED	   (1 << 4)
#define PAGE_IS_PFNZERO	   (1 << 5)
#define PAGE_IS_HUGE	   (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};

/* pm_scan_arg.flags */
#define PM_SCAN_WP_MATCHING   (1 << 0) /* write-protect the pages that match */
#define PM_SCAN_CHECK_WPASYNC (1 << 1) /* fail (EPERM) on a mapping without async uffd-wp */

struct pm_scan_arg {
	uint64_t size; /* sizeof(struct pm_scan_arg) */
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end; /* out: where the walk stopped */
	uint64_t vec;	   /* struct page_region array, may be 0 when vec_len is 0 */
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif /* PAGEMAP_SCAN */

#endif
