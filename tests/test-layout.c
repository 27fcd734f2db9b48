// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Layouts and the /proc/PID/maps parser: the kernel's three-region rule on
 * crafted mapping lists, the parser on good and garbage lines, and
 * dm_layout_vaddr() on live processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "ops/maps.h"
#include "ops/ops.h"
#include "util/proc.h"

#define EXPECT_RANGE(r, s, e)                                                                     \
	do {                                                                                      \
		if ((r).start != (uint64_t)(s) || (r).end != (uint64_t)(e))                       \
			fprintf(stderr, "\n%s:%d: expected [%#llx, %#llx), got [%#llx, %#llx)\n", \
				__FILE__, __LINE__, (unsigned long long)(s),                      \
				(unsigned long long)(e), (unsigned long long)(r).start,           \
				(unsigned long long)(r).end);                                     \
		CU_ASSERT((r).start == (uint64_t)(s) && (r).end == (uint64_t)(e));                \
	} while (0)

/* A typical x86-64 process, with [vsyscall] last. */
static const char *const typical_maps[] = {
	"555555554000-555555556000 r--p 00000000 08:01 1234                       /usr/bin/cat\n",
	"555555556000-55555555b000 r-xp 00002000 08:01 1234                       /usr/bin/cat\n",
	"55555555b000-55555555e000 rw-p 00007000 08:01 1234                       /usr/bin/cat\n",
	"55555555e000-55555557f000 rw-p 00000000 00:00 0                          [heap]\n",
	"7ffff7d80000-7ffff7da8000 r--p 00000000 08:01 5678                       "
	"/usr/lib/libc.so.6\n",
	"7ffff7da8000-7ffff7f3d000 r-xp 00028000 08:01 5678                       "
	"/usr/lib/libc.so.6\n",
	"7ffff7fc3000-7ffff7fc7000 r--p 00000000 00:00 0                          [vvar]\n",
	"7ffff7fc7000-7ffff7fc9000 r-xp 00000000 00:00 0                          [vdso]\n",
	"7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n",
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
};

#define N_TYPICAL (sizeof(typical_maps) / sizeof(typical_maps[0]))

static size_t parse_all(const char *const *lines, size_t n, struct dm_map *out)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (dm_maps_parse_line(lines[i], &out[k]) == 0)
			k++;
	return k;
}

static void test_parse_good(void)
{
	struct dm_map m;

	EXPECT_INT(dm_maps_parse_line(typical_maps[1], &m), 0);
	CU_ASSERT_EQUAL(m.start, 0x555555556000ULL);
	CU_ASSERT_EQUAL(m.end, 0x55555555b000ULL);
	EXPECT_INT(m.perms, DM_MAP_READ | DM_MAP_EXEC);
	CU_ASSERT_EQUAL(m.offset, 0x2000);
	EXPECT_INT(m.dev_major, 8);
	EXPECT_INT(m.dev_minor, 1);
	EXPECT_INT(m.inode, 1234);
	CU_ASSERT_STRING_EQUAL(m.name, "/usr/bin/cat");
	CU_ASSERT_FALSE(dm_map_is_special(&m));

	/* no name, no trailing newline */
	EXPECT_INT(dm_maps_parse_line("7f0000000000-7f0000001000 rw-s 00000000 00:05 99", &m), 0);
	EXPECT_INT(m.perms, DM_MAP_READ | DM_MAP_WRITE | DM_MAP_SHARED);
	CU_ASSERT_STRING_EQUAL(m.name, "");

	/* a name with spaces and " (deleted)" */
	EXPECT_INT(dm_maps_parse_line("1000-2000 ---p 00000000 fd:1a 7 /tmp/a b (deleted)\n", &m),
		   0);
	CU_ASSERT_STRING_EQUAL(m.name, "/tmp/a b (deleted)");
	EXPECT_INT(m.dev_major, 0xfd);
	EXPECT_INT(m.dev_minor, 0x1a);
	EXPECT_INT(m.perms, 0);

	EXPECT_INT(dm_maps_parse_line(typical_maps[9], &m), 0);
	CU_ASSERT_TRUE(dm_map_is_vsyscall(&m));
	CU_ASSERT_TRUE(dm_map_is_special(&m));
	EXPECT_INT(dm_maps_parse_line(typical_maps[7], &m), 0);
	CU_ASSERT_TRUE(dm_map_is_special(&m));
	CU_ASSERT_FALSE(dm_map_is_vsyscall(&m));
	EXPECT_INT(dm_maps_parse_line(typical_maps[3], &m), 0);
	CU_ASSERT_FALSE(dm_map_is_special(&m));
	EXPECT_INT(dm_maps_parse_line("1000-2000 rw-p 00000000 00:00 0 [anon:libc_malloc]", &m), 0);
	CU_ASSERT_FALSE(dm_map_is_special(&m));
	EXPECT_INT(dm_maps_parse_line("1000-2000 rw-p 00000000 00:00 0 [stack:123]", &m), 0);
	CU_ASSERT_FALSE(dm_map_is_special(&m));
}

static void test_parse_long_name(void)
{
	char line[1200];
	struct dm_map m;

	snprintf(line, sizeof(line), "1000-2000 rw-p 00000000 00:00 0 /%0900d\n", 7);
	EXPECT_INT(dm_maps_parse_line(line, &m), 0);
	EXPECT_INT(m.name_truncated, 1);
	EXPECT_INT(strlen(m.name), DM_MAP_NAME_MAX - 1);
}

static void test_parse_garbage(void)
{
	static const char *const bad[] = {
		"",
		"\n",
		"zzz",
		"1000",
		"1000-",
		"1000-2000",
		"1000-2000 ",
		"1000-2000 rw-p",
		"1000-2000 rw-p 0",
		"1000-2000 rw-p 0 00:00",
		"1000-2000 rw-p 0 00:00 ",
		"1000-2000 rw-p 0 0000 0",
		"2000-1000 rw-p 00000000 00:00 0", /* backwards */
		"1000-1000 rw-p 00000000 00:00 0", /* empty */
		"1000-2000 rwxq 00000000 00:00 0", /* bad sharing flag */
		"1000-2000 Rw-p 00000000 00:00 0",
		"1000-2000 rw-pp 00000000 00:00 0",
		"1000-2000 rw- 00000000 00:00 0",
		"10000000000000000-20000000000000000 rw-p 00000000 00:00 0", /* 17 digits */
		"1000-2000 rw-p 00000000 00:00 99999999999999999999999",     /* inode overflow */
		"1000-2000 rw-p 00000000 00:00 0x12",
		"1000-2000rw-p 00000000 00:00 0",
		"-2000 rw-p 00000000 00:00 0",
		"g000-2000 rw-p 00000000 00:00 0",
	};
	struct dm_map m;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = dm_maps_parse_line(bad[i], &m);

		if (r != -EINVAL)
			fprintf(stderr, "\nline \"%s\": expected -EINVAL, got %d\n", bad[i], r);
		CU_ASSERT_EQUAL(r, -EINVAL);
	}
	EXPECT_INT(dm_maps_parse_line(NULL, &m), -EINVAL);
}

/* Random bytes and mutated good lines: no crash, no read past the end (run
 * under ASan in CI). */
static void test_parse_fuzz(void)
{
	static const char alphabet[] = "0123456789abcdefx-: rwxps[]/\n\t";
	unsigned int seed = 12345;
	struct dm_map m;
	char buf[256];
	int i, ok = 0;

	for (i = 0; i < 200000; i++) {
		size_t len = (size_t)(rand_r(&seed) % (sizeof(buf) - 1)), j;

		if (i & 1) {
			const char *src = typical_maps[(size_t)rand_r(&seed) % N_TYPICAL];

			len = strlen(src);
			memcpy(buf, src, len);
			for (j = 0; j < 3; j++)
				buf[(size_t)rand_r(&seed) % len] =
					alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
		} else {
			for (j = 0; j < len; j++)
				buf[j] = (i & 2) ? (char)(rand_r(&seed) & 0xff)
						 : alphabet[(size_t)rand_r(&seed) %
							    (sizeof(alphabet) - 1)];
		}
		buf[len] = '\0';
		if (dm_maps_parse_line(buf, &m) == 0) {
			CU_ASSERT(m.start < m.end);
			ok++;
		}
	}
	CU_ASSERT(ok > 0);
}

static int count_cb(const struct dm_map *m, void *userdata)
{
	(*(size_t *)userdata)++;
	return 0;
}

static void test_foreach_text(void)
{
	static const char text[] = "1000-2000 rw-p 00000000 00:00 0\n"
				   "garbage line\n"
				   "3000-4000 r--p 00000000 00:00 0 [heap]\n"
				   "\n"
				   "5000-6000 rw-p 00000000 00:00 0"; /* no final newline */
	size_t n = 0;

	EXPECT_INT(dm_maps_foreach_text(text, sizeof(text) - 1, count_cb, &n), 0);
	EXPECT_INT(n, 3);
	n = 0;
	/* Cut inside the last line: it must not be read past @len. */
	EXPECT_INT(dm_maps_foreach_text(text, sizeof(text) - 5, count_cb, &n), 0);
	EXPECT_INT(n, 2); /* the last line, cut to "...00000000 00:", is malformed */
}

static void test_three_typical(void)
{
	struct dm_map maps[N_TYPICAL];
	struct dm_range rg[N_TYPICAL], out[3];
	size_t n, nr;
	int r;

	n = parse_all(typical_maps, N_TYPICAL, maps);
	EXPECT_INT(n, N_TYPICAL);
	nr = dm_maps_to_ranges(maps, n, rg);
	EXPECT_INT(nr, N_TYPICAL - 1); /* [vsyscall] left out */
	r = dm_layout_three_regions(rg, nr, out, 3);
	EXPECT_INT(r, 3);
	/* Biggest gaps: heap -> libc and vdso -> stack. */
	EXPECT_RANGE(out[0], 0x555555554000ULL, 0x55555557f000ULL);
	EXPECT_RANGE(out[1], 0x7ffff7d80000ULL, 0x7ffff7fc9000ULL);
	EXPECT_RANGE(out[2], 0x7ffffffde000ULL, 0x7ffffffff000ULL);

	/* With [vsyscall] kept, the biggest gap would be stack -> vsyscall. */
	{
		struct dm_range raw[N_TYPICAL];
		size_t i;

		for (i = 0; i < n; i++) {
			raw[i].start = maps[i].start;
			raw[i].end = maps[i].end;
		}
		r = dm_layout_three_regions(raw, n, out, 3);
		EXPECT_INT(r, 3);
		EXPECT_RANGE(out[2], 0xffffffffff600000ULL, 0xffffffffff601000ULL);
	}
}

static void test_three_small(void)
{
	struct dm_range in[4], out[3];

	EXPECT_INT(dm_layout_three_regions(NULL, 0, out, 3), 0);

	in[0] = (struct dm_range){0x1000, 0x5000};
	EXPECT_INT(dm_layout_three_regions(in, 1, out, 3), 1);
	EXPECT_RANGE(out[0], 0x1000, 0x5000);

	/* contiguous: no gap */
	in[1] = (struct dm_range){0x5000, 0x9000};
	EXPECT_INT(dm_layout_three_regions(in, 2, out, 3), 1);
	EXPECT_RANGE(out[0], 0x1000, 0x9000);

	/* one gap */
	in[1] = (struct dm_range){0x8000, 0x9000};
	EXPECT_INT(dm_layout_three_regions(in, 2, out, 3), 2);
	EXPECT_RANGE(out[0], 0x1000, 0x5000);
	EXPECT_RANGE(out[1], 0x8000, 0x9000);

	/* two gaps of equal size + a smaller one: the lowest equal gaps win */
	in[0] = (struct dm_range){0x1000, 0x2000};
	in[1] = (struct dm_range){0x4000, 0x5000};
	in[2] = (struct dm_range){0x7000, 0x8000};
	in[3] = (struct dm_range){0x9000, 0xa000};
	EXPECT_INT(dm_layout_three_regions(in, 4, out, 3), 3);
	EXPECT_RANGE(out[0], 0x1000, 0x2000);
	EXPECT_RANGE(out[1], 0x4000, 0x5000);
	EXPECT_RANGE(out[2], 0x7000, 0xa000);

	/* room for fewer */
	EXPECT_INT(dm_layout_three_regions(in, 4, out, 2), -ERANGE);
	EXPECT_INT(dm_layout_three_regions(NULL, 4, out, 3), -EINVAL);
}

static void test_three_unaligned_garbage(void)
{
	struct dm_range in[5], out[3];
	int r, i;

	/* Unaligned bounds are aligned outward. */
	in[0] = (struct dm_range){0x1010, 0x1ff0};
	in[1] = (struct dm_range){0x10010, 0x10020};
	r = dm_layout_three_regions(in, 2, out, 3);
	EXPECT_INT(r, 2);
	EXPECT_RANGE(out[0], 0x1000, 0x2000);
	EXPECT_RANGE(out[1], 0x10000, 0x11000);

	/* A gap smaller than a page vanishes in the alignment. */
	in[0] = (struct dm_range){0x1000, 0x1800};
	in[1] = (struct dm_range){0x1900, 0x3000};
	r = dm_layout_three_regions(in, 2, out, 3);
	EXPECT_INT(r, 1);
	EXPECT_RANGE(out[0], 0x1000, 0x3000);

	/* Out of order, overlapping, empty, top of the space: sorted disjoint output. */
	in[0] = (struct dm_range){0x9000, 0xa000};
	in[1] = (struct dm_range){0x1000, 0x2000};
	in[2] = (struct dm_range){0x5000, 0x5000};
	in[3] = (struct dm_range){0xc000, 0xb000};
	in[4] = (struct dm_range){0xfffffffffffff000ULL, UINT64_MAX};
	r = dm_layout_three_regions(in, 5, out, 3);
	CU_ASSERT(r >= 1 && r <= 3);
	for (i = 0; i < r; i++) {
		CU_ASSERT(out[i].start < out[i].end);
		CU_ASSERT(out[i].start % DM_MIN_REGION == 0 && out[i].end % DM_MIN_REGION == 0);
		if (i)
			CU_ASSERT(out[i - 1].end <= out[i].start);
	}
}

static void test_fixed(void)
{
	struct dm_range in[3], out[3];

	in[0] = (struct dm_range){0x1001, 0x5fff}; /* inward: [0x2000, 0x5000) */
	in[1] = (struct dm_range){0x6000, 0x6800}; /* less than a page: dropped */
	in[2] = (struct dm_range){0x8000, 0x9000};
	EXPECT_INT(dm_layout_fixed(in, 3, out, 3), 2);
	EXPECT_RANGE(out[0], 0x2000, 0x5000);
	EXPECT_RANGE(out[1], 0x8000, 0x9000);
	EXPECT_INT(dm_layout_fixed(in, 3, out, 1), -ERANGE);
	in[2] = (struct dm_range){0x3000, 0x9000}; /* overlapping */
	EXPECT_INT(dm_layout_fixed(in, 3, out, 3), -EINVAL);
	EXPECT_INT(dm_layout_fixed(NULL, 0, out, 3), 0);
}

static bool covered(const struct dm_range *r, int n, uint64_t addr)
{
	int i;

	for (i = 0; i < n; i++)
		if (addr >= r[i].start && addr < r[i].end)
			return true;
	return false;
}

static void check_layout_sane(const struct dm_range *r, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		CU_ASSERT(r[i].start < r[i].end);
		CU_ASSERT(r[i].start % DM_MIN_REGION == 0 && r[i].end % DM_MIN_REGION == 0);
		if (i)
			CU_ASSERT(r[i - 1].end < r[i].start);
	}
}

static void test_vaddr_self(void)
{
	struct dm_range r[3];
	struct dm_err err = {0};
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *heap = malloc(100);
	int stack_var = 0, n;

	CU_ASSERT_FATAL(m != MAP_FAILED);
	n = dm_layout_vaddr(NULL, getpid(), r, 3, &err);
	if (n != 3)
		fprintf(stderr, "\nexpected 3 ranges, got %d (%s)\n", n, err.msg);
	EXPECT_INT(n, 3);
	if (n > 0) {
		check_layout_sane(r, n);
		CU_ASSERT(covered(r, n, (uintptr_t)m));
		CU_ASSERT(covered(r, n, (uintptr_t)heap));
		CU_ASSERT(covered(r, n, (uintptr_t)&stack_var));
		CU_ASSERT(r[n - 1].end < 0xffffffffff600000ULL); /* no [vsyscall] */
	}
	/* pid 0 means self */
	EXPECT_INT(dm_layout_vaddr(NULL, 0, r, 3, &err), n);
	EXPECT_INT(dm_layout_vaddr(NULL, getpid(), r, 2, &err), -ERANGE);
	free(heap);
	munmap(m, 1 << 20);
}

static void test_vaddr_child(void)
{
	struct dm_err err = {0};
	struct dm_range r[3];
	int p[2], n, status;
	uint64_t addr = 0;
	pid_t pid;

	CU_ASSERT_FATAL(pipe(p) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		void *m = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		uint64_t a = (uintptr_t)m;

		close(p[0]);
		if (write(p[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	CU_ASSERT_FATAL(read(p[0], &addr, sizeof(addr)) == sizeof(addr));
	close(p[0]);
	n = dm_layout_vaddr(NULL, pid, r, 3, &err);
	if (n != 3)
		fprintf(stderr, "\nchild: expected 3 ranges, got %d (%s)\n", n, err.msg);
	EXPECT_INT(n, 3);
	if (n > 0) {
		check_layout_sane(r, n);
		CU_ASSERT(covered(r, n, addr));
	}
	EXPECT_INT(dm_proc_pid_alive(NULL, pid), 0);

	kill(pid, SIGKILL);
	/* A zombie has no address space: gone. Tearing down an address space
	 * takes a while (ASan's shadow under load: > 50 ms), so wait for the
	 * exit to finish rather than a fixed time, up to 10 s. */
	for (int i = 0; i < 1000 && dm_proc_pid_alive(NULL, pid) == 0; i++)
		usleep(10000);
	EXPECT_INT(dm_proc_pid_alive(NULL, pid), -ESRCH);
	EXPECT_INT(dm_layout_vaddr(NULL, pid, r, 3, &err), -ESRCH);
	CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
	/* Reaped: gone for good. */
	err.msg[0] = '\0';
	EXPECT_INT(dm_layout_vaddr(NULL, pid, r, 3, &err), -ESRCH);
	CU_ASSERT(strstr(err.msg, "gone") != NULL);
	EXPECT_INT(dm_proc_pid_alive(NULL, pid), -ESRCH);
}

static void test_proc_helpers(void)
{
	char buf[64], small[4];
	ssize_t n;

	EXPECT_INT(dm_proc_path(buf, sizeof(buf), NULL, 42, "maps"), 0);
	CU_ASSERT_STRING_EQUAL(buf, "/proc/42/maps");
	EXPECT_INT(dm_proc_path(buf, sizeof(buf), "/tmp/fx", 0, "stat"), 0);
	CU_ASSERT_STRING_EQUAL(buf, "/tmp/fx/self/stat");
	EXPECT_INT(dm_proc_path(buf, sizeof(buf), "", 7, NULL), 0);
	CU_ASSERT_STRING_EQUAL(buf, "/proc/7");
	EXPECT_INT(dm_proc_path(small, sizeof(small), NULL, 42, "maps"), -ENAMETOOLONG);
	EXPECT_INT(dm_proc_path(buf, sizeof(buf), NULL, -1, "maps"), -EINVAL);

	n = dm_proc_read_file("/proc/self/stat", buf, sizeof(buf));
	CU_ASSERT(n == -ERANGE); /* stat is longer than 63 bytes */
	CU_ASSERT(strlen(buf) == sizeof(buf) - 1);
	n = dm_proc_read_file("/proc/sys/kernel/ostype", buf, sizeof(buf));
	EXPECT_INT(n, 6);
	CU_ASSERT_STRING_EQUAL(buf, "Linux\n");
	EXPECT_INT(dm_proc_read_file("/nonexistent/x", buf, sizeof(buf)), -ENOENT);

	EXPECT_INT(dm_proc_pid_alive(NULL, getpid()), 0);
	EXPECT_INT(dm_proc_pid_alive(NULL, 0), -ESRCH);
	/* running, then exiting (PF_EXITING in the flags: its address space
	 * is going), under a fixture root; comm with spaces and ')' */
	{
		char root[] = "/tmp/dm-proc-XXXXXX", path[PATH_MAX];
		static const char *const stats[] = {
			"77 (a) b) S 1 77 77 0 -1 4194560 120 0 0 0 5 2 0 0 20 0 1 0 9 0\n",
			"77 (a) b) S 1 77 77 0 -1 4194564 120 0 0 0 5 2 0 0 20 0 1 0 9 0\n",
		};
		FILE *f;

		CU_ASSERT_FATAL(mkdtemp(root) != NULL);
		snprintf(path, sizeof(path), "%s/77", root);
		CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
		snprintf(path, sizeof(path), "%s/77/stat", root);
		for (int i = 0; i < 2; i++) {
			f = fopen(path, "w");
			CU_ASSERT_FATAL(f != NULL);
			fputs(stats[i], f);
			fclose(f);
			EXPECT_INT(dm_proc_pid_alive(root, 77), i ? -ESRCH : 0);
		}
		unlink(path);
		snprintf(path, sizeof(path), "%s/77", root);
		rmdir(path);
		rmdir(root);
	}
	EXPECT_INT(dm_proc_self_pid(NULL), getpid());
	EXPECT_INT(dm_proc_self_pid("/nonexistent"), getpid());
}

static void test_maps_read_self(void)
{
	struct dm_map *maps = NULL;
	size_t n = 0, i;
	bool found = false;
	void *m = mmap(NULL, 1 << 16, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	EXPECT_INT(dm_maps_read("/proc/self/maps", NULL, &maps, &n), 0);
	CU_ASSERT(n > 5);
	for (i = 0; i < n; i++) {
		if (i)
			CU_ASSERT(maps[i - 1].end <= maps[i].start);
		if (maps[i].start <= (uintptr_t)m && (uintptr_t)m < maps[i].end)
			found = true;
	}
	CU_ASSERT(found);
	free(maps);
	munmap(m, 1 << 16);
	EXPECT_INT(dm_maps_read("/proc/0/maps", NULL, &maps, &n), -ENOENT);
}

/* Read a whole /proc file with no allocation (nothing maps memory meanwhile). */
static size_t slurp(const char *path, char *buf, size_t sz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while (len < sz && (n = read(fd, buf + len, sz - len)) > 0)
		len += (size_t)n;
	close(fd);
	return len;
}

struct maps_seen {
	struct dm_range r[512];
	size_t n;
};

static int seen_cb(const struct dm_map *m, void *ud)
{
	struct maps_seen *s = ud;

	if (s->n < 512)
		s->r[s->n++] = (struct dm_range){m->start, m->end};
	return 0;
}

/* smaps is maps with "Key: value" lines after each mapping: the maps parser
 * must take exactly the same mappings from it (lib has no smaps parser). */
static void test_smaps_as_maps(void)
{
	static char maps[1 << 18], smaps[1 << 21];
	static struct maps_seen a, b;
	size_t la = slurp("/proc/self/maps", maps, sizeof(maps));
	size_t lb = slurp("/proc/self/smaps", smaps, sizeof(smaps));

	CU_ASSERT_FATAL(la > 0 && la < sizeof(maps) && lb > la && lb < sizeof(smaps));
	EXPECT_INT(dm_maps_foreach_text(maps, la, seen_cb, &a), 0);
	EXPECT_INT(dm_maps_foreach_text(smaps, lb, seen_cb, &b), 0);
	EXPECT_INT(b.n, a.n);
	for (size_t i = 0; i < a.n && i < b.n; i++)
		EXPECT(a.r[i].start == b.r[i].start && a.r[i].end == b.r[i].end,
		       "mapping %zu: maps %llx-%llx, smaps %llx-%llx", i,
		       (unsigned long long)a.r[i].start, (unsigned long long)a.r[i].end,
		       (unsigned long long)b.r[i].start, (unsigned long long)b.r[i].end);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "parse good lines", test_parse_good },
		{ "parse a long name", test_parse_long_name },
		{ "parse garbage", test_parse_garbage },
		{ "parse fuzz", test_parse_fuzz },
		{ "foreach over text", test_foreach_text },
		{ "three regions, typical process", test_three_typical },
		{ "three regions, tiny spaces", test_three_small },
		{ "three regions, unaligned and garbage", test_three_unaligned_garbage },
		{ "fixed ranges", test_fixed },
		{ "proc helpers", test_proc_helpers },
		{ "maps of self", test_maps_read_self },
		{ "smaps of self read as maps", test_smaps_as_maps },
		{ "vaddr layout of self", test_vaddr_self },
		{ "vaddr layout of a child, then dead", test_vaddr_child },
		{ NULL, NULL },
	};

	return dm_test_run("layout", tests);
}
