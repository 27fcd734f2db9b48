// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * page_idle and soft_dirty without their kernel features: the batched
 * readers against crafted files, the idle bitmap against an emulation of the
 * kernel's file (at most 4096 bytes per call, 0 bytes for the last partial
 * word, ENXIO past it, bits set on write and harvested on read), and both
 * primitives through their vtables on a crafted proc/sysfs tree (pagemap,
 * kpageflags, clear_refs, iomem).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"
#include <damon/damon.h>

#include "ops/ops.h"
#include "ops/pagemap.h"

#define PG 4096ULL

static char root[256];

static void mkdirs(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

static int open_rel(const char *rel, int flags)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return open(p, flags | O_CLOEXEC, 0644);
}

static void put_entry(const char *rel, uint64_t idx, uint64_t val)
{
	int fd = open_rel(rel, O_WRONLY | O_CREAT);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(pwrite(fd, &val, 8, (off_t)(idx * 8)) == 8);
	close(fd);
}

/* ------------------------------------------------------------------------ */
/* The emulated idle bitmap                                                 */
/* ------------------------------------------------------------------------ */

#define MAX_PFN 1000 /* 15 full words and a partial one (pfn 960..999) */

static struct emu {
	uint64_t idle[MAX_PFN / 64 + 1]; /* the pages' idle flags */
	int bitmap_fd;			 /* calls on other fds go to the real file */
	unsigned long calls, too_big;
} emu;

static ssize_t emu_pread(int fd, void *buf, size_t len, off_t off, void *arg)
{
	uint64_t *out = buf;
	size_t words, full = MAX_PFN / 64;

	if (fd != emu.bitmap_fd)
		return pread(fd, buf, len, off);
	emu.calls++;
	if (len > 4096)
		emu.too_big++;
	if (off % 8 || len % 8) {
		errno = EINVAL;
		return -1;
	}
	if (len > 4096)
		len = 4096;
	words = len / 8;
	if ((size_t)off / 8 >= full)
		return 0; /* the partial word, or past the end */
	if ((size_t)off / 8 + words > full)
		words = full - (size_t)off / 8;
	memcpy(out, &emu.idle[off / 8], words * 8);
	return (ssize_t)(words * 8);
}

static ssize_t emu_pwrite(int fd, const void *buf, size_t len, off_t off, void *arg)
{
	const uint64_t *in = buf;
	size_t words, full = MAX_PFN / 64;

	if (fd != emu.bitmap_fd)
		return pwrite(fd, buf, len, off);
	emu.calls++;
	if (len > 4096)
		emu.too_big++;
	if (off % 8 || len % 8) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)off / 8 > full) {
		errno = ENXIO;
		return -1;
	}
	if (len > 4096)
		len = 4096;
	words = len / 8;
	if ((size_t)off / 8 >= full)
		return 0;
	if ((size_t)off / 8 + words > full)
		words = full - (size_t)off / 8;
	for (size_t k = 0; k < words; k++)
		emu.idle[off / 8 + k] |= in[k];
	return (ssize_t)(words * 8);
}

static const struct dm_pfile_io emu_io = {.pread = emu_pread, .pwrite = emu_pwrite};

static void test_bitmap_io(void)
{
	uint64_t word[20], val[20];
	uint8_t ok[20];
	ssize_t r;

	memset(&emu, 0, sizeof(emu));
	emu.bitmap_fd = 99;
	/* words 3,4,5 (one call), 9 (one), 15 (partial: 0 bytes), 16 (past) */
	word[0] = 3, word[1] = 4, word[2] = 5, word[3] = 9, word[4] = 15, word[5] = 16;
	for (int i = 0; i < 6; i++)
		val[i] = 1ULL << i;
	r = dm_idle_bitmap_io(99, true, word, val, ok, 6, &emu_io, NULL);
	EXPECT_INT(r, 4);
	EXPECT_INT(emu.calls, 3); /* 3-5, 9, 15-16 (0 bytes: the rest is never retried) */
	EXPECT_INT(ok[0] + ok[1] + ok[2] + ok[3], 4);
	EXPECT_INT(ok[4], 0);
	EXPECT_INT(ok[5], 0);
	EXPECT_INT(emu.idle[4], 2);
	EXPECT_INT(emu.idle[9], 8);

	emu.calls = 0;
	memset(val, 0xff, sizeof(val));
	r = dm_idle_bitmap_io(99, false, word, val, ok, 6, &emu_io, NULL);
	EXPECT_INT(r, 4);
	EXPECT_INT(val[1], 2);
	EXPECT_INT(val[4], 0);
	EXPECT_INT(ok[4], 0);
	EXPECT_INT(emu.too_big, 0);
}

static void test_bitmap_io_big(void)
{
	static uint64_t word[1200], val[1200];
	static uint8_t ok[1200];
	uint64_t calls = 0;
	ssize_t r;

	memset(&emu, 0, sizeof(emu));
	emu.bitmap_fd = 99;
	/* 1200 consecutive words, far beyond this emulated RAM: every call
	 * stays within 4096 bytes and the walk ends */
	for (int i = 0; i < 1200; i++)
		word[i] = (uint64_t)i, val[i] = 1;
	r = dm_idle_bitmap_io(99, true, word, val, ok, 1200, &emu_io, &calls);
	EXPECT_INT(r, MAX_PFN / 64);
	EXPECT_INT(emu.too_big, 0);
	CU_ASSERT(calls <= 4);
}

/* ------------------------------------------------------------------------ */
/* pagemap-like files                                                       */
/* ------------------------------------------------------------------------ */

static void test_pfile_read(void)
{
	uint64_t idx[6] = {10, 11, 600, 601, 5, 100000}, out[6];
	uint64_t calls = 0;
	ssize_t r;
	int fd;

	mkdirs("pf");
	for (int i = 0; i < 5; i++)
		put_entry("pf/file", idx[i], 1000 + idx[i]);
	fd = open_rel("pf/file", O_RDONLY);
	r = dm_pfile_read(fd, idx, 6, out, NULL, &calls);
	close(fd);
	EXPECT_INT(r, 5); /* 100000 is past the end */
	EXPECT_INT(out[0], 1010);
	EXPECT_INT(out[3], 1601);
	EXPECT_INT(out[4], 1005);
	EXPECT_INT(out[5], 0);
	/* 10-11 one run, 600-601 another (590 entries from 10: beyond one
	 * batch), 5 goes backwards: a new one, 100000 (0 bytes, not retried) */
	EXPECT_INT(calls, 4);
}

static void test_iomem(void)
{
	struct dm_range r[4];
	int fd, n;

	mkdirs("io");
	fd = open_rel("io/iomem", O_WRONLY | O_CREAT | O_TRUNC);
	dprintf(fd, "00000000-00000fff : Reserved\n"
		    "00001000-0009fbff : System RAM\n"
		    "000f0000-000fffff : Reserved\n"
		    "  000f0000-000fffff : System ROM\n"
		    "00100000-7ffdffff : System RAM\n"
		    "  01000000-01ffffff : Kernel code\n");
	close(fd);
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/io", root);
		n = dm_iomem_system_ram(p, r, 4);
		EXPECT_INT(n, 2);
		EXPECT_INT(r[0].start, 0x1000);
		EXPECT_INT(r[0].end, 0x9f000);
		EXPECT_INT(r[1].start, 0x100000);
		EXPECT_INT(r[1].end, 0x7ffe0000);
		n = dm_iomem_system_ram(p, r, 1); /* the biggest only */
		EXPECT_INT(n, 1);
		EXPECT_INT(r[0].start, 0x100000);
	}
}

/* ------------------------------------------------------------------------ */
/* page_idle through its vtable on a crafted tree                           */
/* ------------------------------------------------------------------------ */

#define PID 4321
#define VA  0x10000000ULL /* vpn 0x10000 */

static void set_pte(uint64_t va, uint64_t pfn)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "pi/proc/%d/pagemap", PID);
	put_entry(rel, va / PG, pfn ? (DM_PM_PRESENT | pfn) : 0);
}

static void set_kpf(uint64_t pfn, uint64_t flags)
{
	put_entry("pi/proc/kpageflags", pfn, flags);
}

static void test_page_idle_ops(void)
{
	char proc[512], sys[512], rel[64];
	struct dm_ops_cfg cfg = {.ops = DAMON_OPS_FVADDR};
	struct dm_range fixed = {VA, VA + 64 * PG};
	struct dm_ops_target t = {.pid = PID, .fixed = &fixed, .nr_fixed = 1};
	struct dm_region v[7];
	struct dm_ops_inst *in = NULL;
	struct dm_err err = {0};
	int fd, n;

	snprintf(rel, sizeof(rel), "pi/proc/%d", PID);
	mkdirs(rel);
	mkdirs("pi/sys/kernel/mm/page_idle");
	fd = open_rel("pi/sys/kernel/mm/page_idle/bitmap", O_WRONLY | O_CREAT);
	close(fd);
	snprintf(proc, sizeof(proc), "%s/pi/proc", root);
	snprintf(sys, sizeof(sys), "%s/pi/sys", root);
	cfg.proc_root = proc;
	cfg.sysfs_root = sys;

	/* v[0] 4K page, LRU;  v[1] THP tail (head 512);  v[2] not mapped;
	 * v[3] moved to 300 at check;  v[4] not on an LRU list;
	 * v[5] frame 990 (partial last word);  v[6] mapped only at check */
	set_pte(VA + 0 * PG, 100);
	set_kpf(100, DM_KPF_LRU);
	set_pte(VA + 1 * PG, 517);
	set_kpf(512, DM_KPF_LRU | DM_KPF_COMPOUND_HEAD | DM_KPF_THP);
	for (int k = 513; k < 520; k++)
		set_kpf((uint64_t)k, DM_KPF_COMPOUND_TAIL | DM_KPF_THP);
	set_pte(VA + 2 * PG, 0);
	set_pte(VA + 3 * PG, 200);
	set_kpf(200, DM_KPF_LRU);
	set_kpf(300, DM_KPF_LRU);
	set_pte(VA + 4 * PG, 250);
	set_kpf(250, 0);
	set_pte(VA + 5 * PG, 990);
	set_kpf(990, DM_KPF_LRU);
	set_pte(VA + 6 * PG, 0);
	set_kpf(400, DM_KPF_LRU);
	set_pte(VA + 63 * PG, 0); /* the file covers the range */

	memset(&emu, 0, sizeof(emu));
	n = dm_page_idle_open_io(&in, &cfg, &emu_io, &err);
	EXPECT_INT(n, 0);
	if (n) {
		fprintf(stderr, "\n%s\n", err.msg);
		return;
	}
	{
		char p[PATH_MAX];

		/* the emulator must know which fd is the bitmap: the newest
		 * open of it is the one the instance holds (same inode) */
		snprintf(p, sizeof(p), "%s/kernel/mm/page_idle/bitmap", sys);
		for (int cand = 3; cand < 256; cand++) {
			struct stat a, b;

			if (fstat(cand, &a) == 0 && stat(p, &b) == 0 && a.st_ino == b.st_ino &&
			    a.st_dev == b.st_dev)
				emu.bitmap_fd = cand;
		}
	}
	EXPECT_INT(dm_ops_page_idle.target_init(in, &t, &err), 0);
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 7; i++) {
		v[i].start = VA + (uint64_t)i * PG;
		v[i].end = v[i].start + PG;
		v[i].sampling_addr = v[i].start + 8; /* any byte of the page */
	}
	dm_ops_page_idle.prepare(in, &t, v, 7);
	EXPECT_INT((emu.idle[100 / 64] >> (100 % 64)) & 1, 1);
	EXPECT_INT((emu.idle[512 / 64] >> (512 % 64)) & 1, 1); /* the head */
	EXPECT_INT((emu.idle[517 / 64] >> (517 % 64)) & 1, 0); /* not the tail */
	EXPECT_INT((emu.idle[250 / 64] >> (250 % 64)) & 1, 0); /* not on an LRU */

	/* the application touches frame 100 and the huge page; page 3
	 * migrates to 300, idle flag carried over; page 6 is faulted in */
	emu.idle[100 / 64] &= ~(1ULL << (100 % 64));
	emu.idle[512 / 64] &= ~(1ULL << (512 % 64));
	set_pte(VA + 3 * PG, 300);
	emu.idle[300 / 64] |= 1ULL << (300 % 64);
	set_pte(VA + 6 * PG, 400);
	n = dm_ops_page_idle.check(in, &t, v, 7);
	EXPECT_INT(v[0].accessed, 1);
	EXPECT_INT(v[1].accessed, 1);
	EXPECT_INT(v[2].accessed, 0);
	EXPECT_INT(v[3].accessed, 0);
	EXPECT_INT(v[4].accessed, 0);
	EXPECT_INT(v[5].accessed, DM_ACCESS_UNKNOWN);
	EXPECT_INT(v[6].accessed, 1);
	EXPECT_INT(n, 3);

	/* a round where nothing is touched: all idle */
	set_pte(VA + 3 * PG, 200);
	dm_ops_page_idle.prepare(in, &t, v, 7);
	n = dm_ops_page_idle.check(in, &t, v, 7);
	EXPECT_INT(v[0].accessed, 0);
	EXPECT_INT(v[1].accessed, 0);
	EXPECT_INT(v[3].accessed, 0);
	EXPECT_INT(n, 0);
	EXPECT_INT(emu.too_big, 0);
	CU_ASSERT(dm_page_idle_nr_calls(in) > 0);

	/* the process goes away: its pagemap reads nothing */
	snprintf(rel, sizeof(rel), "pi/proc/%d/pagemap", PID);
	fd = open_rel(rel, O_WRONLY | O_TRUNC);
	close(fd);
	dm_ops_page_idle.prepare(in, &t, v, 7);
	n = dm_ops_page_idle.check(in, &t, v, 7);
	CU_ASSERT(n == -ESRCH || n == 0);
	dm_ops_page_idle.target_fini(in, &t);
	dm_ops_page_idle.close(in);
}

static void test_page_idle_refusals(void)
{
	char proc[512], sys[512];
	struct dm_ops_cfg cfg = {.ops = DAMON_OPS_VADDR};
	struct dm_ops_inst *in = NULL;
	struct dm_err err = {0};
	int r;

	mkdirs("none/sys/kernel/mm");
	mkdirs("none/proc");
	snprintf(proc, sizeof(proc), "%s/none/proc", root);
	snprintf(sys, sizeof(sys), "%s/none/sys", root);
	cfg.proc_root = proc;
	cfg.sysfs_root = sys;
	r = dm_ops_page_idle.open(&in, &cfg, &err);
	EXPECT_INT(r, -EOPNOTSUPP);
	CU_ASSERT(strstr(err.msg, "CONFIG_IDLE_PAGE_TRACKING") != NULL);

	/* a bitmap this process may not write (unless root: DAC is bypassed) */
	mkdirs("none/sys/kernel/mm/page_idle");
	close(open_rel("none/sys/kernel/mm/page_idle/bitmap", O_WRONLY | O_CREAT));
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/kernel/mm/page_idle/bitmap", sys);
		chmod(p, 0400);
	}
	r = dm_ops_page_idle.open(&in, &cfg, &err);
	EXPECT_INT(r, -EPERM);
	printf("\n    %s", err.msg);
	CU_ASSERT(strstr(err.msg, geteuid() ? "read and write" : "kpageflags") != NULL);
}

/* ------------------------------------------------------------------------ */
/* soft_dirty's estimator through its vtable                                */
/* ------------------------------------------------------------------------ */

static char sd_rel[64];

static void sd_set(int page, bool dirty)
{
	put_entry(sd_rel, VA / PG + (uint64_t)page,
		  DM_PM_PRESENT | (dirty ? DM_PM_SOFT_DIRTY : 0) | (uint64_t)(1000 + page));
}

/* Did the primitive write clear_refs? Then do what the kernel does. */
static int sd_cleared(int nr_pages)
{
	char p[PATH_MAX], buf[8] = "";
	struct stat sb;
	int fd;

	snprintf(p, sizeof(p), "%s/sd/proc/%d/clear_refs", root, PID);
	if (stat(p, &sb) || !sb.st_size)
		return 0;
	fd = open(p, O_RDONLY);
	CU_ASSERT(read(fd, buf, sizeof(buf)) == 1 && buf[0] == '4');
	close(fd);
	truncate(p, 0);
	for (int i = 0; i < nr_pages; i++)
		sd_set(i, false);
	return 1;
}

static void test_soft_dirty_estimator(void)
{
	char proc[PATH_MAX], rel[64];
	struct dm_ops_cfg cfg = {.ops = DAMON_OPS_FVADDR};
	struct dm_range fixed = {VA, VA + 4 * PG};
	struct dm_ops_target t = {.pid = PID, .fixed = &fixed, .nr_fixed = 1};
	struct dm_soft_dirty_stats st;
	struct dm_ops_inst *in = NULL;
	struct dm_err err = {0};
	struct dm_region v[4];
	int n;

	snprintf(rel, sizeof(rel), "sd/proc/%d", PID);
	mkdirs(rel);
	snprintf(sd_rel, sizeof(sd_rel), "sd/proc/%d/pagemap", PID);
	snprintf(rel, sizeof(rel), "sd/proc/%d/clear_refs", PID);
	close(open_rel(rel, O_WRONLY | O_CREAT | O_TRUNC));
	for (int i = 0; i < 4; i++)
		sd_set(i, true); /* a fresh process: all dirty */
	snprintf(proc, sizeof(proc), "%s/sd/proc", root);
	cfg.proc_root = proc;
	EXPECT_INT(dm_ops_soft_dirty.open(&in, &cfg, &err), 0);
	EXPECT_INT(dm_ops_soft_dirty.target_init(in, &t, &err), 0);
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 4; i++) {
		v[i].start = VA + (uint64_t)i * PG;
		v[i].end = v[i].start + PG;
		v[i].sampling_addr = v[i].start;
	}

	/* sample 1: dirty samples at the first prepare: one clear */
	dm_ops_soft_dirty.prepare(in, &t, v, 4);
	EXPECT_INT(sd_cleared(4), 1);
	sd_set(0, true); /* written during the interval */
	n = dm_ops_soft_dirty.check(in, &t, v, 4);
	EXPECT_INT(n, 1);
	EXPECT_INT(v[0].accessed, 1);
	EXPECT_INT(v[1].accessed, 0);
	v[0].nr_accesses = 1; /* what the core counts */

	EXPECT_INT(v[0].since, 0); /* cleared at this prepare */

	/* sample 2, same aggregation: page 0 is dirty already, written within
	 * the 1 interval since the clear: an earlier access; no second clear;
	 * clean pages tell of this interval only */
	dm_ops_soft_dirty.prepare(in, &t, v, 4);
	EXPECT_INT(sd_cleared(4), 0);
	sd_set(1, true);
	n = dm_ops_soft_dirty.check(in, &t, v, 4);
	EXPECT_INT(v[0].accessed, DM_ACCESS_EARLIER);
	EXPECT_INT(v[0].since, 1);
	EXPECT_INT(v[1].accessed, 1);
	EXPECT_INT(v[1].since, 0);
	EXPECT_INT(v[2].accessed, 0);
	EXPECT_INT(v[2].since, 0);
	EXPECT_INT(n, 1);

	/* sample 3: two intervals since the clear */
	dm_ops_soft_dirty.prepare(in, &t, v, 4);
	EXPECT_INT(sd_cleared(4), 0);
	n = dm_ops_soft_dirty.check(in, &t, v, 4);
	EXPECT_INT(v[1].accessed, DM_ACCESS_EARLIER);
	EXPECT_INT(v[1].since, 2);
	EXPECT_INT(v[3].accessed, 0);
	EXPECT_INT(v[3].since, 0);

	/* the core says an aggregation ended; dirty samples: clear */
	dm_ops_soft_dirty.aggregated(in, &t);
	dm_ops_soft_dirty.prepare(in, &t, v, 4);
	EXPECT_INT(sd_cleared(4), 1);
	n = dm_ops_soft_dirty.check(in, &t, v, 4);
	EXPECT_INT(n, 0);
	EXPECT_INT(v[0].accessed, 0);
	EXPECT_INT(v[0].since, 0);

	/* nothing dirty at the next boundary: no walk of the process */
	dm_ops_soft_dirty.aggregated(in, &t);
	dm_ops_soft_dirty.prepare(in, &t, v, 4);
	EXPECT_INT(sd_cleared(4), 0);
	n = dm_ops_soft_dirty.check(in, &t, v, 4);
	EXPECT_INT(v[0].accessed, 0);
	EXPECT_INT(v[0].since, 0);
	/* a page found dirty later in that aggregation: the clear happens then */
	sd_set(2, true);
	dm_ops_soft_dirty.prepare(in, &t, v, 4);
	EXPECT_INT(sd_cleared(4), 1);
	dm_soft_dirty_get_stats(in, &st);
	EXPECT_INT(st.nr_clears, 3);
	dm_ops_soft_dirty.target_fini(in, &t);
	dm_ops_soft_dirty.close(in);
}

int main(void)
{
	CU_pSuite s;
	int fails;

	snprintf(root, sizeof(root), "%s/libdamon-pagemap-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root))
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("pagemap", NULL, NULL);
	CU_add_test(s, "idle bitmap batching and end of RAM", test_bitmap_io);
	CU_add_test(s, "idle bitmap: 4096 bytes per call", test_bitmap_io_big);
	CU_add_test(s, "pagemap-like files read in runs", test_pfile_read);
	CU_add_test(s, "System RAM from iomem", test_iomem);
	CU_add_test(s, "page_idle: THP heads, moved, unmapped, faulted pages", test_page_idle_ops);
	CU_add_test(s, "page_idle: refusals", test_page_idle_refusals);
	CU_add_test(s, "soft_dirty: estimator and clears", test_soft_dirty_estimator);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = (int)(CU_get_number_of_failures() + CU_get_number_of_tests_failed());
	CU_cleanup_registry();
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", root);
	}
	return fails ? 1 : 0;
}
