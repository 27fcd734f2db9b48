/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Page-table and page-frame readers shared by the page_idle and soft_dirty
 * primitives: /proc/PID/pagemap, /proc/kpageflags, the idle page bitmap
 * (/sys/kernel/mm/page_idle/bitmap) and the "System RAM" ranges of
 * /proc/iomem. Every reader batches: entries that sit close together in the
 * file are read with one system call.
 */
#ifndef DAMON_OPS_PAGEMAP_H
#define DAMON_OPS_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/region.h"

/* /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst). */
#define DM_PM_PFN_MASK	 ((1ULL << 55) - 1) /* page frame number, when present */
#define DM_PM_SOFT_DIRTY (1ULL << 55)
#define DM_PM_EXCLUSIVE	 (1ULL << 56)
#define DM_PM_FILE	 (1ULL << 61) /* file page or shared anonymous */
#define DM_PM_SWAP	 (1ULL << 62)
#define DM_PM_PRESENT	 (1ULL << 63)

/* /proc/kpageflags bits used here. */
#define DM_KPF_LRU	     (1ULL << 5)
#define DM_KPF_COMPOUND_HEAD (1ULL << 15)
#define DM_KPF_COMPOUND_TAIL (1ULL << 16)
#define DM_KPF_HUGE	     (1ULL << 17) /* hugetlbfs */
#define DM_KPF_NOPAGE	     (1ULL << 20)
#define DM_KPF_THP	     (1ULL << 22)
#define DM_KPF_ZERO_PAGE     (1ULL << 24)
#define DM_KPF_IDLE	     (1ULL << 25)

/* At most this many 8-byte entries move per read or write (4 KiB: the most
 * the idle bitmap moves per call, and a good batch for the others). */
#define DM_PM_BATCH 512

/* pread/pwrite, replaceable by tests that emulate a kernel file's quirks. */
struct dm_pfile_io {
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off, void *arg);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off, void *arg);
	void *arg;
};

/*
 * Read the 8-byte entries at indexes @idx[0..n) of a file made of 8-byte
 * entries (pagemap: virtual page numbers; kpageflags: page frame numbers)
 * into @out[0..n). Indexes may come in any order; runs of ascending indexes
 * closer than DM_PM_BATCH entries are read with one pread. A read past the
 * end of the file (0 bytes) leaves the missing entries 0 and, for pagemap,
 * means the process is gone or the address is beyond its address space.
 * @io NULL: plain pread. @ret_calls, if not NULL, is increased by the number
 * of system calls made.
 * Return: the number of entries actually read, or -errno.
 */
ssize_t dm_pfile_read(int fd, const uint64_t *idx, size_t n, uint64_t *out,
		      const struct dm_pfile_io *io, uint64_t *ret_calls);

/*
 * Read (@write false) or write (@write true) the idle bitmap words at sorted,
 * unique word indexes @word[0..n) (word k holds page frames 64k..64k+63):
 * @val[i] is the word read, or the word written (1 bits set pages idle; 0
 * bits leave pages alone). Runs of consecutive words go in one call of at
 * most 4096 bytes. The kernel moves nothing for the last partial word at the
 * end of RAM (the call returns 0) and refuses words past it (ENXIO): such
 * words get @ok[i] = 0 and are never retried, so this always ends.
 * @io NULL: plain pread/pwrite.
 * Return: the number of words moved (ok[i] = 1), or -errno when the file
 * itself fails (EBADF, EPERM, ...).
 */
ssize_t dm_idle_bitmap_io(int fd, bool write, const uint64_t *word, uint64_t *val, uint8_t *ok,
			  size_t n, const struct dm_pfile_io *io, uint64_t *ret_calls);

/*
 * The top-level "System RAM" ranges of @proc_root/iomem, aligned inward to
 * pages, sorted. When there are more than @cap, the @cap biggest are kept.
 * Return: number of ranges, -ENOENT when there is none (or iomem shows only
 * zeros, as it does without CAP_SYS_ADMIN), or -errno.
 */
int dm_iomem_system_ram(const char *proc_root, struct dm_range *ret, size_t cap);

/* --- the primitives built on these (page_idle.c, soft_dirty.c) --- */

struct dm_ops_inst;
struct dm_ops_cfg;
struct dm_err;

/* page_idle's open() with emulated kernel files (tests); @io NULL: real I/O. */
int dm_page_idle_open_io(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg,
			 const struct dm_pfile_io *io, struct dm_err *err);
/* System calls page_idle made on pagemap, kpageflags and the bitmap. */
uint64_t dm_page_idle_nr_calls(const struct dm_ops_inst *in);

/*
 * Can the calling process sample process @pid (0: itself) with soft_dirty?
 * Checks CONFIG_MEM_SOFT_DIRTY on a fresh scratch mapping of its own (bit 55
 * of pagemap; nothing is cleared) and opens @pid's pagemap and clear_refs
 * (writing nothing). Return: 0, or -EOPNOTSUPP/-EPERM/-ESRCH with a sentence.
 */
int dm_soft_dirty_probe(const char *proc_root, pid_t pid, struct dm_err *err);

struct dm_soft_dirty_stats {
	uint64_t nr_clears;  /* clear_refs writes */
	uint64_t clear_ns;   /* time spent in them */
	uint64_t nr_reads;   /* pagemap preads */
	uint64_t nr_samples; /* sample pages drawn */
};
void dm_soft_dirty_get_stats(const struct dm_ops_inst *in, struct dm_soft_dirty_stats *ret);

#endif
