// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The uffd_wp primitive, live in this process: hot and cold sample pages,
 * purged and replaced memory, one shared userfaultfd, no armed page left
 * behind, fork(). When run as root, the whole suite runs a second time as
 * uid/gid 65534 (re-executed), since uffd_wp is meant to work unprivileged.
 * Exit 77 only when the kernel lacks what uffd_wp needs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"
#include <damon/damon.h>

#include "ops/ops.h"
#include "ops/uffd_abi.h"

#define PG	  4096UL
#define MAP_SZ	  (64UL << 20)
#define NR_REG	  64 /* 1 MiB regions */
#define HOT_FIRST 8
#define HOT_NR	  4 /* regions 8..11: a hot 4 MiB */

static const char *who = "root";

struct fix {
	struct dm_ops_inst *inst;
	struct dm_ops_target t;
	struct dm_range fixed;
	char *mem;
	struct dm_region v[NR_REG];
};

static unsigned int seed = 4242;

static int fix_open(struct fix *f, char *mem, size_t size)
{
	struct dm_ops_cfg cfg = {.ops = DAMON_OPS_FVADDR};
	struct dm_err err = {0};
	struct dm_range out[4];
	int r;

	memset(f, 0, sizeof(*f));
	f->mem = mem;
	f->fixed.start = (uintptr_t)mem;
	f->fixed.end = (uintptr_t)mem + size;
	r = dm_ops_uffd_wp.open(&f->inst, &cfg, &err);
	if (r < 0) {
		fprintf(stderr, "\nopen: %d %s\n", r, err.msg);
		return r;
	}
	f->t.pid = getpid();
	f->t.fixed = &f->fixed;
	f->t.nr_fixed = 1;
	r = dm_ops_uffd_wp.target_init(f->inst, &f->t, &err);
	if (r < 0) {
		fprintf(stderr, "\ntarget_init: %d %s\n", r, err.msg);
		return r;
	}
	r = dm_ops_uffd_wp.update(f->inst, &f->t, out, 4, &err);
	if (r != 1 || out[0].start != f->fixed.start || out[0].end != f->fixed.end) {
		fprintf(stderr, "\nupdate: expected 1 range, got %d %s\n", r, err.msg);
		return r < 0 ? r : -EINVAL;
	}
	return 0;
}

static void fix_close(struct fix *f)
{
	if (f->t.priv)
		dm_ops_uffd_wp.target_fini(f->inst, &f->t);
	if (f->inst)
		dm_ops_uffd_wp.close(f->inst);
	f->inst = NULL;
}

static void draw_samples(struct fix *f, size_t nr, size_t region_sz)
{
	size_t i;

	for (i = 0; i < nr; i++) {
		f->v[i].start = (uintptr_t)f->mem + i * region_sz;
		f->v[i].end = f->v[i].start + region_sz;
		f->v[i].sampling_addr = f->v[i].start + (rand_r(&seed) % (region_sz / PG)) * PG +
					(rand_r(&seed) % PG);
		f->v[i].accessed = 0xff;
	}
}

static char *map_anon(size_t size)
{
	char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	madvise(m, size, MADV_NOHUGEPAGE);
	return m;
}

/* Number of pages of [start, start+len) still write-protected (armed):
 * there (present, swapped or a marker) and not written. A page that is not
 * there at all reads "not written" once its mapping is no longer
 * registered; it is not armed. */
static long count_armed(uint64_t start, uint64_t len)
{
	struct page_region vec[256];
	long total = 0;
	uint64_t pos = start, end = start + len;
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (pm < 0)
		return -errno;
	while (pos < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.start = pos,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = 256,
			.category_inverted = PAGE_IS_WRITTEN,
			.category_mask = PAGE_IS_WRITTEN,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_WRITTEN,
		};
		int n = ioctl(pm, PAGEMAP_SCAN, &a), i;

		if (n < 0) {
			total = -errno;
			break;
		}
		for (i = 0; i < n; i++)
			total += (long)((vec[i].end - vec[i].start) / PG);
		if (a.walk_end <= pos)
			break;
		pos = a.walk_end;
	}
	close(pm);
	return total;
}

/* How many userfaultfd descriptors this process has; the number of one of
 * them in *@ret_fd (-1 if none) when @ret_fd is not NULL. */
static int uffd_fds(int *ret_fd)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (ret_fd)
		*ret_fd = -1;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[PATH_MAX], link[64];
		ssize_t l;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		if (!strstr(link, "userfaultfd"))
			continue;
		n++;
		if (ret_fd)
			*ret_fd = atoi(de->d_name);
	}
	closedir(d);
	return n;
}

static int count_uffd_fds(void)
{
	return uffd_fds(NULL);
}

static void write_hot(char *mem)
{
	size_t off;

	for (off = HOT_FIRST << 20; off < (HOT_FIRST + HOT_NR) << 20; off += PG)
		mem[off] = 1;
}

static void expect_hot_cold(struct fix *f, const char *what)
{
	int i, n, bad = 0;

	n = dm_ops_uffd_wp.check(f->inst, &f->t, f->v, NR_REG);
	if (n != HOT_NR)
		fprintf(stderr, "\n[%s] %s: expected %d accessed, got %d\n", who, what, HOT_NR, n);
	CU_ASSERT_EQUAL(n, HOT_NR);
	for (i = 0; i < NR_REG; i++) {
		int hot = i >= HOT_FIRST && i < HOT_FIRST + HOT_NR;

		if (f->v[i].accessed != hot) {
			fprintf(stderr, "\n[%s] %s: region %d (%s): expected accessed=%d, got %d\n",
				who, what, i, hot ? "hot" : "cold", hot, f->v[i].accessed);
			bad++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_hot_cold(void)
{
	char *mem = map_anon(MAP_SZ);
	struct fix f;
	long armed;

	CU_ASSERT_FATAL(mem != NULL);
	CU_ASSERT_FATAL(fix_open(&f, mem, MAP_SZ) == 0);

	/* 1: populated memory, fresh samples */
	memset(mem, 7, MAP_SZ);
	draw_samples(&f, NR_REG, 1 << 20);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	armed = count_armed(f.fixed.start, MAP_SZ);
	if (armed != NR_REG)
		fprintf(stderr, "\n[%s] armed pages: expected %d, got %ld\n", who, NR_REG, armed);
	CU_ASSERT_EQUAL(armed, NR_REG);
	write_hot(mem);
	expect_hot_cold(&f, "populated");

	/* 2: the same sample pages again (re-armed by prepare or by check) */
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG); /* idempotent */
	write_hot(mem);
	expect_hot_cold(&f, "same pages");
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	write_hot(mem);
	expect_hot_cold(&f, "same pages, re-armed by check");
	/* Nothing written since: nothing accessed. */
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	EXPECT_INT(dm_ops_uffd_wp.check(f.inst, &f.t, f.v, NR_REG), 0);

	/* 3: unpopulated memory (watched, not armed), new samples */
	madvise(mem, MAP_SZ, MADV_DONTNEED);
	draw_samples(&f, NR_REG, 1 << 20);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	write_hot(mem);
	expect_hot_cold(&f, "unpopulated");

	/* Samples moved: only the current ones stay armed, and only those
	 * there (the hot ones; the others are watched, not armed). */
	draw_samples(&f, NR_REG, 1 << 20);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	armed = count_armed(f.fixed.start, MAP_SZ);
	if (armed != HOT_NR)
		fprintf(stderr, "\n[%s] moved samples: expected %d armed, got %ld\n", who, HOT_NR,
			armed);
	CU_ASSERT_EQUAL(armed, HOT_NR);
	write_hot(mem);
	expect_hot_cold(&f, "moved samples");

	/* target_fini leaves no armed page, even with samples re-armed by check. */
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	write_hot(mem);
	dm_ops_uffd_wp.check(f.inst, &f.t, f.v, NR_REG);
	CU_ASSERT(count_armed(f.fixed.start, MAP_SZ) > 0);
	dm_ops_uffd_wp.target_fini(f.inst, &f.t);
	armed = count_armed(f.fixed.start, MAP_SZ);
	if (armed != 0)
		fprintf(stderr, "\n[%s] after target_fini: expected 0 armed pages, got %ld\n", who,
			armed);
	CU_ASSERT_EQUAL(armed, 0);
	fix_close(&f);
	EXPECT_INT(count_armed(f.fixed.start, MAP_SZ), 0);
	munmap(mem, MAP_SZ);
}

/* The process's page tables, in KiB (VmPTE). */
static long vm_pte_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPTE: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Sampling a huge mapping that is mostly never touched (ASan's shadow, a
 * reserved heap, a runtime's arenas) must not build page tables for it.
 * Arming an unpopulated page installs a write-protect marker, and a marker
 * needs a page table: every sample in a fresh 2 MiB then cost 4 KiB of
 * page tables that stay until the memory is unmapped (an ASan build of the
 * soak bench grew 19 GB of them in minutes, and the OOM killer ended it).
 * An unpopulated sample page is watched instead: it counts as written when
 * it is there at check time.
 */
#define SPARSE_SZ  (64UL << 30)
#define SPARSE_REG (SPARSE_SZ / NR_REG)

static void test_sparse_builds_no_page_tables(void)
{
	char *mem = mmap(NULL, SPARSE_SZ, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long before, after;
	struct fix f;
	int n = 0;

	CU_ASSERT_FATAL(mem != MAP_FAILED);
	madvise(mem, SPARSE_SZ, MADV_NOHUGEPAGE);
	CU_ASSERT_FATAL(fix_open(&f, mem, SPARSE_SZ) == 0);
	before = vm_pte_kib();
	for (int round = 0; round < 200; round++) {
		draw_samples(&f, NR_REG, SPARSE_REG);
		dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
		n += dm_ops_uffd_wp.check(f.inst, &f.t, f.v, NR_REG);
	}
	after = vm_pte_kib();
	if (after - before > 1024)
		fprintf(stderr, "\n[%s] 200 x %d samples in 64 GiB never touched: page tables "
				"%ld -> %ld KiB\n",
			who, NR_REG, before, after);
	CU_ASSERT(after - before <= 1024);
	EXPECT_INT(n, 0);

	/* A write to a page that was not there is seen, a read is not: a read
	 * maps the shared zero page. */
	draw_samples(&f, NR_REG, SPARSE_REG);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
	*(volatile char *)(uintptr_t)f.v[3].sampling_addr = 1;
	n = *(volatile char *)(uintptr_t)f.v[5].sampling_addr;
	EXPECT_INT(dm_ops_uffd_wp.check(f.inst, &f.t, f.v, NR_REG), 1);
	EXPECT_INT(f.v[3].accessed, 1);
	EXPECT_INT(f.v[5].accessed, 0);
	fix_close(&f);
	munmap(mem, SPARSE_SZ);
}

static void test_purged_and_replaced(void)
{
	char *mem = map_anon(MAP_SZ);
	struct fix f;
	int n, i;

	CU_ASSERT_FATAL(mem != NULL);
	CU_ASSERT_FATAL(fix_open(&f, mem, MAP_SZ) == 0);
	memset(mem, 7, MAP_SZ);
	draw_samples(&f, NR_REG, 1 << 20);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);

	/* Region 0: purged with MADV_DONTNEED (reads "written", not present). */
	madvise((void *)(uintptr_t)(f.v[0].sampling_addr & ~(PG - 1)), PG, MADV_DONTNEED);
	/* Region 1: purged, then written again: accessed. */
	madvise((void *)(uintptr_t)(f.v[1].sampling_addr & ~(PG - 1)), PG, MADV_DONTNEED);
	*(volatile char *)(uintptr_t)f.v[1].sampling_addr = 3;
	/* Region 2: unmapped. */
	CU_ASSERT(munmap(mem + (2 << 20), 1 << 20) == 0);
	/* Region 3: unmapped and replaced by another mapping, then written. */
	CU_ASSERT(mmap(mem + (3 << 20), 1 << 20, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == mem + (3 << 20));
	memset(mem + (3 << 20), 9, 1 << 20);
	/* Region 4: replaced by a read-only file mapping. */
	{
		int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

		CU_ASSERT(fd >= 0);
		CU_ASSERT(mmap(mem + (4 << 20), 1 << 20, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
			       0) != MAP_FAILED);
		close(fd);
	}

	n = dm_ops_uffd_wp.check(f.inst, &f.t, f.v, NR_REG);
	EXPECT_INT(n, 1);
	EXPECT_INT(f.v[0].accessed, 0);
	EXPECT_INT(f.v[1].accessed, 1);
	EXPECT_INT(f.v[2].accessed, 0);
	EXPECT_INT(f.v[3].accessed, 0);
	EXPECT_INT(f.v[4].accessed, 0);
	for (i = 5; i < NR_REG; i++)
		CU_ASSERT_EQUAL(f.v[i].accessed, 0);

	/* The next update registers the replacement; then it is sampled again. */
	{
		struct dm_range out[2];
		struct dm_err err = {0};

		EXPECT_INT(dm_ops_uffd_wp.update(f.inst, &f.t, out, 2, &err), 1);
		dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, NR_REG);
		mem[(3 << 20) + (f.v[3].sampling_addr & (((uint64_t)1 << 20) - 1))] = 1;
		n = dm_ops_uffd_wp.check(f.inst, &f.t, f.v, NR_REG);
		EXPECT_INT(f.v[3].accessed, 1);
		EXPECT_INT(f.v[2].accessed, 0);
		EXPECT_INT(n, 1);
	}
	fix_close(&f);
	munmap(mem, MAP_SZ);
}

static void test_shared_uffd(void)
{
	char *mem = map_anon(8 << 20);
	struct fix a, b;
	int before = count_uffd_fds();

	CU_ASSERT_FATAL(mem != NULL);
	/* Both monitor the same mapping: a second userfaultfd would get EBUSY. */
	CU_ASSERT_FATAL(fix_open(&a, mem, 8 << 20) == 0);
	CU_ASSERT_FATAL(fix_open(&b, mem, 8 << 20) == 0);
	EXPECT_INT(count_uffd_fds(), before + 1);
	memset(mem, 1, 8 << 20);
	draw_samples(&a, 8, 1 << 20);
	memcpy(b.v, a.v, sizeof(a.v)); /* a samples regions 0-3, b regions 4-7 */
	dm_ops_uffd_wp.prepare(a.inst, &a.t, a.v, 4);
	dm_ops_uffd_wp.prepare(b.inst, &b.t, b.v + 4, 4);
	mem[a.v[1].sampling_addr - (uintptr_t)mem] = 2;
	mem[b.v[5].sampling_addr - (uintptr_t)mem] = 2;
	EXPECT_INT(dm_ops_uffd_wp.check(a.inst, &a.t, a.v, 4), 1);
	EXPECT_INT(a.v[1].accessed, 1);
	EXPECT_INT(dm_ops_uffd_wp.check(b.inst, &b.t, b.v + 4, 4), 1);
	EXPECT_INT(b.v[5].accessed, 1);
	fix_close(&a);
	EXPECT_INT(count_uffd_fds(), before + 1);
	fix_close(&b);
	EXPECT_INT(count_uffd_fds(), before);
	EXPECT_INT(count_armed((uintptr_t)mem, 8 << 20), 0);
	munmap(mem, 8 << 20);
}

static void test_vaddr_self(void)
{
	struct dm_ops_cfg cfg = {.ops = DAMON_OPS_VADDR};
	struct dm_err err = {0};
	struct dm_ops_inst *inst = NULL;
	struct dm_ops_target t = {.pid = getpid()};
	struct dm_range out[3];
	struct dm_region v[2] = {0};
	char *heap = malloc(1 << 20);
	int r;

	CU_ASSERT_FATAL(heap != NULL);
	memset(heap, 1, 1 << 20);
	r = dm_ops_uffd_wp.open(&inst, &cfg, &err);
	CU_ASSERT_FATAL(r == 0);
	CU_ASSERT(dm_ops_uffd_wp.app_cost_ns(inst) > 0);
	CU_ASSERT(dm_ops_uffd_wp.app_cost_ns(inst) < 1000000000ULL);
	EXPECT_INT(dm_ops_uffd_wp.target_init(inst, &t, &err), 0);
	r = dm_ops_uffd_wp.update(inst, &t, out, 3, &err);
	if (r != 3)
		fprintf(stderr, "\n[%s] vaddr update: expected 3, got %d (%s)\n", who, r, err.msg);
	EXPECT_INT(r, 3);
	/* a second update: everything known, same answer */
	EXPECT_INT(dm_ops_uffd_wp.update(inst, &t, out, 3, &err), 3);
	v[0].start = (uintptr_t)heap;
	v[0].end = v[0].start + (512 << 10);
	v[0].sampling_addr = v[0].start + 3 * PG;
	v[1].start = v[0].end;
	v[1].end = v[1].start + (512 << 10);
	v[1].sampling_addr = v[1].start + 5 * PG;
	dm_ops_uffd_wp.prepare(inst, &t, v, 2);
	heap[3 * PG + 1] = 9;
	EXPECT_INT(dm_ops_uffd_wp.check(inst, &t, v, 2), 1);
	EXPECT_INT(v[0].accessed, 1);
	EXPECT_INT(v[1].accessed, 0);
	dm_ops_uffd_wp.target_fini(inst, &t);
	dm_ops_uffd_wp.close(inst);
	EXPECT_INT(count_armed((uintptr_t)heap & ~(PG - 1), 1 << 20), 0);
	free(heap);

	/* Other processes and paddr are refused with a sentence. */
	r = dm_ops_uffd_wp.open(&inst, &cfg, &err);
	CU_ASSERT_FATAL(r == 0);
	t.pid = 1;
	t.priv = NULL;
	EXPECT_INT(dm_ops_uffd_wp.target_init(inst, &t, &err), -EOPNOTSUPP);
	CU_ASSERT(strstr(err.msg, "calling process") != NULL);
	dm_ops_uffd_wp.close(inst);
	cfg.ops = DAMON_OPS_PADDR;
	EXPECT_INT(dm_ops_uffd_wp.open(&inst, &cfg, &err), -EOPNOTSUPP);
}

/* The application's own userfaultfd owns a mapping: refused at start. */
static void test_foreign_uffd(void)
{
	char *mem = map_anon(1 << 20);
	struct dm_ops_cfg cfg = {.ops = DAMON_OPS_FVADDR};
	struct dm_err err = {0};
	struct dm_ops_inst *inst = NULL;
	struct dm_range fixed, out[2];
	struct dm_ops_target t = {.pid = getpid(), .fixed = &fixed, .nr_fixed = 1};
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {0};
	int app_uffd;

	CU_ASSERT_FATAL(mem != NULL);
	app_uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	CU_ASSERT_FATAL(app_uffd >= 0);
	CU_ASSERT_FATAL(ioctl(app_uffd, UFFDIO_API, &api) == 0);
	reg.range.start = (uintptr_t)mem;
	reg.range.len = 1 << 20;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	CU_ASSERT_FATAL(ioctl(app_uffd, UFFDIO_REGISTER, &reg) == 0);

	fixed.start = (uintptr_t)mem;
	fixed.end = fixed.start + (1 << 20);
	CU_ASSERT_FATAL(dm_ops_uffd_wp.open(&inst, &cfg, &err) == 0);
	EXPECT_INT(dm_ops_uffd_wp.target_init(inst, &t, &err), 0);
	EXPECT_INT(dm_ops_uffd_wp.update(inst, &t, out, 2, &err), -EBUSY);
	CU_ASSERT(strstr(err.msg, "another userfaultfd") != NULL);
	dm_ops_uffd_wp.target_fini(inst, &t);
	dm_ops_uffd_wp.close(inst);
	close(app_uffd);
	munmap(mem, 1 << 20);
}

/* fork(): the child makes its own userfaultfd and never uses the parent's. */
static void test_fork(void)
{
	char *mem = map_anon(8 << 20);
	struct fix f;
	int status, i;
	pid_t pid;

	CU_ASSERT_FATAL(mem != NULL);
	CU_ASSERT_FATAL(fix_open(&f, mem, 8 << 20) == 0);
	memset(mem, 1, 8 << 20);
	draw_samples(&f, 8, 1 << 20);
	dm_ops_uffd_wp.prepare(f.inst, &f.t, f.v, 8);

	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct fix c;
		int fails = 0, n;

		/* The parent's instance refuses to work here. */
		if (dm_ops_uffd_wp.check(f.inst, &f.t, f.v, 8) != -ECHILD)
			fails |= 1;
		/* The child's copies lost the protection at fork: writing is free,
		 * and must not be seen by the parent. */
		memset(mem, 5, 8 << 20);
		if (fix_open(&c, mem, 8 << 20) != 0)
			_exit(2);
		/* The inherited userfaultfd was dropped: exactly one, ours. */
		if (count_uffd_fds() != 1)
			fails |= 4;
		draw_samples(&c, 8, 1 << 20);
		dm_ops_uffd_wp.prepare(c.inst, &c.t, c.v, 8);
		mem[c.v[2].sampling_addr - (uintptr_t)mem] = 1;
		n = dm_ops_uffd_wp.check(c.inst, &c.t, c.v, 8);
		if (n != 1 || !c.v[2].accessed)
			fails |= 8;
		fix_close(&c);
		if (count_armed((uintptr_t)mem, 8 << 20) != 0)
			fails |= 16;
		/* Leaving the parent's instance in the child touches nothing. */
		dm_ops_uffd_wp.target_fini(f.inst, &f.t);
		dm_ops_uffd_wp.close(f.inst);
		_exit(fails);
	}
	CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "\n[%s] child: expected exit 0, got status %#x\n", who, status);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* The parent's samples are intact: nothing written here, nothing seen. */
	EXPECT_INT(count_armed((uintptr_t)mem, 8 << 20), 8);
	EXPECT_INT(dm_ops_uffd_wp.check(f.inst, &f.t, f.v, 8), 0);
	for (i = 0; i < 8; i++)
		mem[f.v[i].sampling_addr - (uintptr_t)mem] = 1;
	EXPECT_INT(dm_ops_uffd_wp.check(f.inst, &f.t, f.v, 8), 8);
	fix_close(&f);
	EXPECT_INT(count_armed((uintptr_t)mem, 8 << 20), 0);
	munmap(mem, 8 << 20);
}

/*
 * A fork()ed child that outlives the parent's instance and never uses
 * libdamon: its copy of the userfaultfd is closed at fork, so the parent's
 * last close releases it and the next instance can register the same
 * mappings (it used to find them held by "another userfaultfd": EBUSY).
 */
static void test_fork_child_outlives(void)
{
	char *mem = map_anon(8 << 20);
	int pfd[2], in_child = -1, status;
	struct fix f;
	pid_t pid;

	CU_ASSERT_FATAL(mem != NULL);
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	CU_ASSERT_FATAL(fix_open(&f, mem, 8 << 20) == 0);
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		int n = count_uffd_fds();

		if (write(pfd[1], &n, sizeof(n)) != sizeof(n))
			_exit(1);
		pause(); /* alive, holding whatever it inherited */
		_exit(0);
	}
	CU_ASSERT(read(pfd[0], &in_child, sizeof(in_child)) == sizeof(in_child));
	if (in_child != 0)
		fprintf(stderr, "\n[%s] child: expected no userfaultfd, got %d\n", who, in_child);
	EXPECT_INT(in_child, 0);
	fix_close(&f);
	/* the child still runs: the same mapping, a new instance */
	EXPECT_INT(fix_open(&f, mem, 8 << 20), 0);
	fix_close(&f);
	kill(pid, SIGKILL);
	CU_ASSERT(waitpid(pid, &status, 0) == pid);
	close(pfd[0]);
	close(pfd[1]);
	munmap(mem, 8 << 20);
}

/*
 * Another reference to the userfaultfd when the last instance closes, as a
 * child just forked holds until it runs its fork handler: the instance
 * unregisters its mappings itself, so the next one can register them.
 */
static void test_last_close_unregisters(void)
{
	char *mem = map_anon(8 << 20);
	struct fix f;
	int held;

	CU_ASSERT_FATAL(mem != NULL);
	CU_ASSERT_FATAL(fix_open(&f, mem, 8 << 20) == 0);
	uffd_fds(&held);
	CU_ASSERT_FATAL(held >= 0);
	held = dup(held);
	CU_ASSERT_FATAL(held >= 0);
	fix_close(&f);
	EXPECT_INT(fix_open(&f, mem, 8 << 20), 0);
	fix_close(&f);
	close(held);
	munmap(mem, 8 << 20);
}

static int run_suite(void)
{
	CU_pSuite s;
	unsigned int fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite(who, NULL, NULL);
	CU_add_test(s, "hot and cold samples", test_hot_cold);
	CU_add_test(s, "purged, unmapped and replaced memory", test_purged_and_replaced);
	CU_add_test(s, "a sparse mapping gets no page tables", test_sparse_builds_no_page_tables);
	CU_add_test(s, "two instances share one userfaultfd", test_shared_uffd);
	CU_add_test(s, "vaddr on self", test_vaddr_self);
	CU_add_test(s, "foreign userfaultfd refused", test_foreign_uffd);
	CU_add_test(s, "fork", test_fork);
	CU_add_test(s, "a child outliving the instance holds no registration",
		    test_fork_child_outlives);
	CU_add_test(s, "the last instance unregisters what it registered",
		    test_last_close_unregisters);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}

/* As root: run again as nobody, by re-executing this binary. */
static int run_unprivileged(char **argv)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
			perror("dropping privileges");
			_exit(1);
		}
		setenv("DM_TEST_UNPRIVILEGED", "1", 1);
		execv("/proc/self/exe", argv);
		/* Not executable by nobody (e.g. a private build dir): run here.
		 * setuid() made us non-dumpable, which hides /proc/self/pagemap
		 * from our new uid. */
		prctl(PR_SET_DUMPABLE, 1);
		who = "uid 65534 (no exec)";
		_exit(run_suite());
	}
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	if (!WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	struct dm_err err = {0};
	int r, r2;

	(void)argc;
	if (getenv("DM_TEST_UNPRIVILEGED"))
		who = "uid 65534";
	if (dm_test_on_valgrind()) {
		printf("SKIP: under valgrind, which implements neither userfaultfd nor "
		       "PAGEMAP_SCAN: uffd_wp cannot run\n");
		return 77;
	}
	r = dm_uffd_wp_probe(NULL, &err);
	if (r == -EOPNOTSUPP) {
		printf("SKIP: %s\n", err.msg);
		return 77;
	}
	if (r < 0) {
		fprintf(stderr, "[%s] probe: expected 0, got %d: %s\n", who, r, err.msg);
		return 1;
	}
	r = run_suite();
	if (geteuid() != 0 || getenv("DM_TEST_UNPRIVILEGED"))
		return r;
	r2 = run_unprivileged(argv);
	if (r2)
		fprintf(stderr, "unprivileged run failed (%d)\n", r2);
	return r || r2 ? 1 : 0;
}
