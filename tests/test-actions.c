// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * DAMOS actions on this host's real memory: lib/actions directly (collapse,
 * nohugepage, cold, pageout of a file mapping, ops filters, migration,
 * process_madvise on a child with and without CAP_SYS_NICE), then whole
 * schemes through the public API on the uffd_wp backend (collapse of a hot
 * range that stays huge while sampled, watermarks from an injected meminfo,
 * a user_input goal moving the quota, the writes-only refusal).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "actions/actions.h"
#include "api/internal.h"
#include "probe/probe.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define HPAGE (2 * MiB)

/* A 2 MiB-aligned anonymous mapping of @sz bytes (the spare head and tail
 * are unmapped again). */
static char *map_aligned(size_t sz)
{
	char *p = mmap(NULL, sz + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((char *)a + sz, (uintptr_t)p + HPAGE - a);
	return (char *)a;
}

/* A field of the smaps entry of the mapping holding @addr, in kB (or, for
 * "VmFlags", 1 when @flag is among them). -1 when not found. */
static long smaps_field(const void *addr, const char *field, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[1024];
	bool in = false;
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
			continue;
		}
		if (!in || strncmp(line, field, strlen(field)) || line[strlen(field)] != ':')
			continue;
		if (flag) {
			char want[8];

			snprintf(want, sizeof(want), " %s", flag);
			v = strstr(line, want) != NULL;
		} else {
			v = strtol(line + strlen(field) + 1, NULL, 10);
		}
		break;
	}
	fclose(f);
	return v;
}

static size_t resident_pages(void *p, size_t sz)
{
	unsigned char vec[4096];
	size_t n = sz / 4096, res = 0;

	if (n > sizeof(vec) || mincore(p, sz, vec))
		return (size_t)-1;
	for (size_t i = 0; i < n; i++)
		res += vec[i] & 1;
	return res;
}

/* ---- lib/actions on the calling process ------------------------------- */

static void test_collapse_self(void)
{
	struct dm_action_target t;
	struct dm_err err = { 0 };
	char *p = map_aligned(8 * MiB);
	int64_t r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 1, 8 * MiB); /* THP is "madvise" here: 4K pages at fault */
	EXPECT_EQ(smaps_field(p, "AnonHugePages", NULL), 0);
	dm_action_target_init(&t, 0, NULL);
	r = dm_action_apply(&t, DAMOS_COLLAPSE, (uintptr_t)p, (uintptr_t)p + 4 * MiB, 0, &err);
	EXPECT_EQ(r, 4 * MiB);
	EXPECT(smaps_field(p, "AnonHugePages", NULL) >= 4096, "AnonHugePages %ld kB after "
	       "collapsing 4 MiB", smaps_field(p, "AnonHugePages", NULL));
	/* only whole huge pages inside the range count: [6, 8) MiB here */
	r = dm_action_apply(&t, DAMOS_COLLAPSE, (uintptr_t)p + 4 * MiB + 4096,
			    (uintptr_t)p + 8 * MiB, 0, &err);
	EXPECT_EQ(r, 2 * MiB);
	EXPECT_EQ(smaps_field(p, "AnonHugePages", NULL), 6144);
	/* the hugepage_size filter sees them */
	{
		struct damos_filter_opts f = { .sz = sizeof(f), .type = DAMOS_FILTER_HUGEPAGE_SIZE,
					       .matching = 1, .allow = 1, .min_sz = HPAGE,
					       .max_sz = HPAGE };
		uint64_t passed = 0;

		r = dm_action_apply_filtered(&t, DAMOS_WILLNEED, (uintptr_t)p,
					     (uintptr_t)p + 8 * MiB, 0, &f, 1, &passed, &err);
		EXPECT_EQ(passed, 6 * MiB);
		EXPECT_EQ(r, 6 * MiB);
	}
	dm_action_target_fini(&t);
	munmap(p, 8 * MiB);
}

static void test_nohugepage_cold_self(void)
{
	struct dm_action_target t;
	struct dm_err err = { 0 };
	char *p = map_aligned(4 * MiB);

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 1, 4 * MiB);
	dm_action_target_init(&t, 0, NULL);
	EXPECT_EQ(smaps_field(p, "VmFlags", "nh"), 0);
	EXPECT_EQ(dm_action_apply(&t, DAMOS_NOHUGEPAGE, (uintptr_t)p, (uintptr_t)p + 4 * MiB, 0,
				  &err), 4 * MiB);
	EXPECT_EQ(smaps_field(p, "VmFlags", "nh"), 1);
	EXPECT_EQ(smaps_field(p, "THPeligible", NULL), 0);
	/* collapse now refuses it (EINVAL): nothing applied, no error */
	EXPECT_EQ(dm_action_apply(&t, DAMOS_COLLAPSE, (uintptr_t)p, (uintptr_t)p + 4 * MiB, 0,
				  &err), 0);
	EXPECT_EQ(dm_action_apply(&t, DAMOS_HUGEPAGE, (uintptr_t)p, (uintptr_t)p + 4 * MiB, 0,
				  &err), 4 * MiB);
	EXPECT_EQ(smaps_field(p, "VmFlags", "hg"), 1);
	EXPECT_EQ(dm_action_apply(&t, DAMOS_COLD, (uintptr_t)p, (uintptr_t)p + 4 * MiB, 0, &err),
		  4 * MiB);
	/* a range with a hole: only the mapped part counts */
	munmap(p + MiB, MiB);
	EXPECT_EQ(dm_action_apply(&t, DAMOS_COLD, (uintptr_t)p, (uintptr_t)p + 4 * MiB, 0, &err),
		  3 * MiB);
	dm_action_target_fini(&t);
	munmap(p, 4 * MiB);
}

static char *tmp_file(const char *tag, size_t sz, int *ret_fd)
{
	char path[] = "/var/tmp/libdamon-test-XXXXXX";
	int fd = mkstemp(path);
	char *buf;

	(void)tag;
	if (fd < 0)
		return NULL;
	unlink(path);
	buf = malloc(sz);
	memset(buf, 7, sz);
	if (write(fd, buf, sz) != (ssize_t)sz) {
		free(buf);
		close(fd);
		return NULL;
	}
	free(buf);
	fsync(fd);
	*ret_fd = fd;
	return mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
}

static void test_pageout_file(void)
{
	struct dm_action_target t;
	struct dm_err err = { 0 };
	size_t sz = 8 * MiB, before, after;
	volatile char sum = 0;
	int fd = -1;
	char *p = tmp_file("pageout", sz, &fd);

	CU_ASSERT_FATAL(p != NULL && p != MAP_FAILED);
	for (size_t i = 0; i < sz; i += 4096)
		sum += p[i];
	(void)sum; /* read: clang counts a volatile only added to as unused */
	before = resident_pages(p, sz);
	dm_action_target_init(&t, 0, NULL);
	EXPECT_EQ(dm_action_apply(&t, DAMOS_PAGEOUT, (uintptr_t)p, (uintptr_t)p + sz, 0, &err), sz);
	after = resident_pages(p, sz);
	EXPECT(before == sz / 4096 && after < before / 10,
	       "file pages resident before %zu, after pageout %zu (of %zu)", before, after,
	       (size_t)(sz / 4096));

	/* anon filter: of a private file mapping, only the pages written since
	 * (copied on write, anonymous now) pass an allow-anon filter */
	for (size_t i = 0; i < sz; i += 4096)
		sum += p[i];
	for (size_t i = 0; i < sz / 2; i += 4096)
		p[i] = 1;
	{
		struct damos_filter_opts f = { .sz = sizeof(f), .type = DAMOS_FILTER_ANON,
					       .matching = 1, .allow = 1 };
		uint64_t passed = 0;
		int64_t r = dm_action_apply_filtered(&t, DAMOS_COLD, (uintptr_t)p,
						     (uintptr_t)p + sz, 0, &f, 1, &passed, &err);

		EXPECT_EQ(passed, sz / 2);
		EXPECT_EQ(r, sz / 2);
		/* reject anon instead: the file half passes */
		f.allow = 0;
		r = dm_action_apply_filtered(&t, DAMOS_PAGEOUT, (uintptr_t)p, (uintptr_t)p + sz, 0,
					     &f, 1, &passed, &err);
		EXPECT_EQ(passed, sz / 2);
		EXPECT(resident_pages(p + sz / 2, sz / 2) < sz / 2 / 4096 / 10,
		       "file half paged out: %zu resident", resident_pages(p + sz / 2, sz / 2));
		EXPECT_EQ(resident_pages(p, sz / 2), sz / 2 / 4096);
		/* memcg is the kernel's */
		f.type = DAMOS_FILTER_MEMCG;
		EXPECT_EQ(dm_action_apply_filtered(&t, DAMOS_COLD, (uintptr_t)p, (uintptr_t)p + sz,
						   0, &f, 1, &passed, &err), -EOPNOTSUPP);
		EXPECT(strstr(err.msg, "kernel backend") != NULL, "said: \"%s\"", err.msg);
	}
	dm_action_target_fini(&t);
	munmap(p, sz);
	close(fd);
}

static void test_migrate_and_refusals(void)
{
	struct dm_action_target t;
	struct dm_err err = { 0 };
	char *p = map_aligned(2 * MiB);

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 1, 2 * MiB);
	dm_action_target_init(&t, 0, NULL);
#ifdef HAVE_LIBNUMA
	/* one node here: everything is on node 0 already, nothing moves */
	EXPECT_EQ(dm_action_apply(&t, DAMOS_MIGRATE_COLD, (uintptr_t)p, (uintptr_t)p + 2 * MiB, 0,
				  &err), 0);
	EXPECT_EQ(dm_action_apply(&t, DAMOS_MIGRATE_HOT, (uintptr_t)p, (uintptr_t)p + 2 * MiB, 63,
				  &err), -EINVAL);
	EXPECT(strstr(err.msg, "not a node") != NULL, "said: \"%s\"", err.msg);
#else
	EXPECT_EQ(dm_action_apply(&t, DAMOS_MIGRATE_COLD, (uintptr_t)p, (uintptr_t)p + 2 * MiB, 0,
				  &err), -EOPNOTSUPP);
#endif
	EXPECT_EQ(dm_action_apply(&t, DAMOS_LRU_PRIO, (uintptr_t)p, (uintptr_t)p + 2 * MiB, 0, &err),
		  -EOPNOTSUPP);
	EXPECT(strstr(err.msg, "kernel backend") != NULL, "said: \"%s\"", err.msg);
	/* another process's VMA flags: no system call */
	EXPECT_EQ(dm_action_check(DAMOS_NOHUGEPAGE, false, 1, 0, &err), -EOPNOTSUPP);
	EXPECT(strstr(err.msg, "process_madvise") != NULL, "said: \"%s\"", err.msg);
	dm_action_target_fini(&t);
	munmap(p, 2 * MiB);
}

/* A child with 4 MiB of its own; its address comes through a pipe. */
static pid_t spawn_child(uint64_t *ret_addr)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (!pid) {
		char *p = map_aligned(4 * MiB);
		uint64_t a = (uintptr_t)p;

		memset(p, 3, 4 * MiB);
		if (write(fds[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], ret_addr, sizeof(*ret_addr)) != sizeof(*ret_addr))
		pid = -1;
	close(fds[0]);
	return pid;
}

static long child_anon_huge_kb(pid_t pid, uint64_t addr)
{
	char path[64], line[512];
	FILE *f;
	bool in = false;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = addr >= s && addr < e;
			continue;
		}
		if (in && !strncmp(line, "AnonHugePages:", 14)) {
			v = strtol(line + 14, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static void test_process_madvise_child(void)
{
	uint64_t addr = 0;
	pid_t child = spawn_child(&addr), helper;
	struct dm_action_target t;
	struct dm_err err = { 0 };
	int wst;

	CU_ASSERT_FATAL(child > 0);
	if (!dm_has_cap(CAP_SYS_NICE)) {
		fprintf(stderr, "\n  (not root: the CAP_SYS_NICE half is skipped)\n");
	} else {
		dm_action_target_init(&t, child, NULL);
		EXPECT_EQ(dm_action_check(DAMOS_COLLAPSE, false, child, 0, &err), 0);
		EXPECT_EQ(dm_action_apply(&t, DAMOS_COLD, addr, addr + 4 * MiB, 0, &err), 4 * MiB);
		EXPECT_EQ(dm_action_apply(&t, DAMOS_COLLAPSE, addr, addr + 4 * MiB, 0, &err),
			  4 * MiB);
		EXPECT(child_anon_huge_kb(child, addr) >= 4096,
		       "child's range collapsed through process_madvise: %ld kB",
		       child_anon_huge_kb(child, addr));
		dm_action_target_fini(&t);
	}
	/* Without CAP_SYS_NICE: the kernel says EPERM, and so do we, first. */
	helper = fork();
	if (!helper) {
		cap_value_t v = CAP_SYS_NICE;
		cap_t c = cap_get_proc();
		struct iovec iov = { (void *)(uintptr_t)addr, 4096 };
		int bad = 0, pidfd;

		cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
		cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR);
		if (cap_set_proc(c))
			_exit(10);
		cap_free(c);
		if (dm_has_cap(CAP_SYS_NICE))
			_exit(11);
		pidfd = (int)syscall(SYS_pidfd_open, child, 0);
		if (pidfd < 0 || syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_COLD, 0) >= 0 ||
		    errno != EPERM)
			bad |= 1; /* the kernel's own answer */
		dm_action_target_init(&t, child, NULL);
		if (dm_action_apply(&t, DAMOS_PAGEOUT, addr, addr + 4 * MiB, 0, &err) != -EPERM ||
		    !strstr(err.msg, "CAP_SYS_NICE"))
			bad |= 2;
		if (dm_action_check(DAMOS_COLD, false, child, 0, &err) != -EPERM)
			bad |= 4;
		_exit(bad);
	}
	waitpid(helper, &wst, 0);
	EXPECT(WIFEXITED(wst) && WEXITSTATUS(wst) == 0,
	       "without CAP_SYS_NICE: kernel and libdamon say EPERM (helper status %d; "
	       "1: kernel allowed, 2/4: libdamon did not refuse)", WEXITSTATUS(wst));
	kill(child, SIGKILL);
	waitpid(child, &wst, 0);
}

/* ---- whole schemes through the public API, uffd_wp --------------------- */

static atomic_int stop_writer;

struct writer {
	volatile char *p;
	size_t sz;
	size_t stride; /* bytes from one written page to the next */
};

static void *writer_fn(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load(&stop_writer))
		for (size_t i = 0; i < w->sz; i += w->stride)
			w->p[i]++;
	return NULL;
}

static void run_for_ms(damon_ctx *ctx, unsigned int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		uint64_t next = 0;

		if (damon_ctx_step(ctx, &next) < 0)
			return;
		if (next > 2000)
			next = 2000;
		usleep((useconds_t)next);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* The calling process on uffd_wp, manual drive; with @range_sz, only the
 * fixed range [@range, @range + @range_sz) (fvaddr: sanitizer shadow maps
 * make a whole address space too big to resolve a few MiB). */
static damon_ctx *uffd_ctx_range(const char *proc_root, uint32_t min_nr_regions, void *range,
				 uint64_t range_sz)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = range_sz ? DAMON_OPS_FVADDR : DAMON_OPS_VADDR,
		   .backend = DAMON_BACKEND_UFFD_WP, .sample_us = 2000,
		   .aggr_us = 40000, .update_us = 200000, .flags = DAMON_CTX_MANUAL,
		   .cpu_budget_permille = 1000, .proc_root = proc_root, .seed = 5,
		   .min_nr_regions = min_nr_regions);
	damon_ctx *ctx = NULL;
	damon_target *t = NULL;

	if (damon_ctx_new(&ctx, &o))
		return NULL;
	if (damon_ctx_add_target(ctx, 0, &t) ||
	    (range_sz && damon_target_add_range(t, (uintptr_t)range, (uintptr_t)range + range_sz))) {
		damon_ctx_unref(ctx);
		return NULL;
	}
	return ctx;
}

static damon_ctx *uffd_ctx(const char *proc_root, uint32_t min_nr_regions)
{
	return uffd_ctx_range(proc_root, min_nr_regions, NULL, 0);
}

/* A collapse scheme turns a hot 2 MiB-aligned range into huge pages, and
 * sampling with uffd_wp leaves them huge. With @stride 8192 every other
 * page was never touched: in a mapping registered with a userfaultfd the
 * kernel refuses such a block (EBUSY) until it is populated. */
static void scheme_collapse_live(size_t stride)
{
	struct damon_backend_status st = { .sz = sizeof(st) };
	damon_ctx *ctx;
	damos *s = NULL;
	struct damos_stats ds = { .sz = sizeof(ds) };
	char *p = map_aligned(64 * MiB);
	struct writer w;
	pthread_t th;
	long huge_mid, huge_end;

	if (damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_UFFD_WP, &st) || !st.usable) {
		fprintf(stderr, "\n  skipped: uffd_wp unusable: %s\n", st.reason);
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (size_t i = 0; i < 64 * MiB; i += stride)
		p[i] = 1;
	w.p = p + 16 * MiB;
	w.sz = 8 * MiB;
	w.stride = stride;
	ctx = uffd_ctx_range(NULL, 20, p, 64 * MiB);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	{
		DAMOS_OPTS(o, .action = DAMOS_COLLAPSE, .min_nr_accesses = 3, .min_sz = HPAGE);

		EXPECT_EQ(damon_ctx_add_scheme(ctx, &o, &s), 0);
	}
	atomic_store(&stop_writer, 0);
	pthread_create(&th, NULL, writer_fn, &w);
	EXPECT_EQ(damon_ctx_start(ctx), 0);
	run_for_ms(ctx, 3000);
	huge_mid = smaps_field(p, "AnonHugePages", NULL);
	run_for_ms(ctx, 2000);
	huge_end = smaps_field(p, "AnonHugePages", NULL);
	atomic_store(&stop_writer, 1);
	pthread_join(th, NULL);
	damos_get_stats(s, &ds);
	if (!ds.sz_applied) {
		damon_snapshot *sn = NULL;

		if (!damon_ctx_snapshot(ctx, &sn)) {
			for (size_t i = 0; i < damon_snapshot_nr_regions(sn); i++) {
				struct damon_region r = { .sz = sizeof(r) };

				damon_snapshot_region(sn, i, &r);
				if (r.end > (uintptr_t)p && r.start < (uintptr_t)p + 64 * MiB)
					fprintf(stderr, "\n  region [%+.2f, %+.2f) MiB nr_accesses %u "
						"age %u", ((double)r.start - (double)(uintptr_t)p) / MiB,
						((double)r.end - (double)(uintptr_t)p) / MiB,
						r.nr_accesses, r.age);
			}
			damon_snapshot_unref(sn);
		}
	}
	printf("\n  (hot 8 MiB in 64 MiB, a page written every %zu KiB: AnonHugePages %ld kB "
	       "after 3 s, %ld kB after 5 s; collapse tried %llu B, applied %llu B) ",
	       stride / 1024, huge_mid, huge_end, (unsigned long long)ds.sz_tried,
	       (unsigned long long)ds.sz_applied);
	/* dense: most of it; with holes, at least one block (none before
	 * collapse populated such a block) */
	EXPECT(huge_mid >= (stride == 4096 ? 4096 : 2048),
	       "hot 8 MiB collapsed: AnonHugePages %ld kB, stats tried %llu applied %llu",
	       huge_mid, (unsigned long long)ds.sz_tried, (unsigned long long)ds.sz_applied);
	EXPECT(huge_end >= huge_mid, "sampling kept them huge: %ld kB then %ld kB", huge_mid,
	       huge_end);
	EXPECT(huge_end <= 16 * 1024, "cold memory left alone: %ld kB huge", huge_end);
	EXPECT(ds.sz_applied > 0 && ds.nr_applied > 0, "applied %llu",
	       (unsigned long long)ds.sz_applied);
	damon_ctx_unref(ctx);
	munmap(p, 64 * MiB);
}

static void test_scheme_collapse_live(void)
{
	scheme_collapse_live(4096);
}

static void test_scheme_collapse_sparse(void)
{
	scheme_collapse_live(8192);
}

/* A proc root whose meminfo we write, everything else the real /proc. */
static char fake_root[64];

static void write_meminfo(unsigned int free_permil)
{
	char path[128], tmp[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/meminfo", fake_root);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	fprintf(f, "MemTotal:       1000000 kB\nMemFree:        %u kB\nMemAvailable:   %u kB\n",
		free_permil * 1000, free_permil * 1000);
	fclose(f);
	rename(tmp, path);
}

static int make_fake_root(void)
{
	char path[128], target[64];

	snprintf(fake_root, sizeof(fake_root), "/tmp/libdamon-proc-XXXXXX");
	if (!mkdtemp(fake_root))
		return -1;
	snprintf(path, sizeof(path), "%s/self", fake_root);
	if (symlink("/proc/self", path))
		return -1;
	snprintf(path, sizeof(path), "%s/%d", fake_root, (int)getpid());
	snprintf(target, sizeof(target), "/proc/%d", (int)getpid());
	if (symlink(target, path))
		return -1;
	write_meminfo(800);
	return 0;
}

static void remove_fake_root(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/self", fake_root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%d", fake_root, (int)getpid());
	unlink(path);
	snprintf(path, sizeof(path), "%s/meminfo", fake_root);
	unlink(path);
	rmdir(fake_root);
}

static void test_scheme_watermarks_goal_live(void)
{
	struct damon_backend_status st = { .sz = sizeof(st) };
	struct damos_quota_state q = { .sz = sizeof(q) };
	struct damos_stats ds = { .sz = sizeof(ds) };
	struct damon_ctx_status cs = { .sz = sizeof(cs) };
	damon_ctx *ctx;
	damos *s = NULL, *g = NULL;
	char *p = map_aligned(16 * MiB);
	uint64_t snaps_idle, esz_low, esz_high;
	int gi;

	if (damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_UFFD_WP, &st) || !st.usable) {
		fprintf(stderr, "\n  skipped: uffd_wp unusable: %s\n", st.reason);
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(p, 1, 16 * MiB);
	CU_ASSERT_FATAL(make_fake_root() == 0);
	ctx = uffd_ctx(fake_root, 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	{
		DAMOS_OPTS(o, .action = DAMOS_STAT, .wmarks_metric = DAMOS_WMARK_FREE_MEM_RATE,
			   .wmarks_interval_us = 50000, .wmarks_high = 500, .wmarks_mid = 400,
			   .wmarks_low = 100);

		EXPECT_EQ(damon_ctx_add_scheme(ctx, &o, &s), 0);
	}
	EXPECT_EQ(damon_ctx_start(ctx), 0);
	run_for_ms(ctx, 500);
	damon_ctx_status(ctx, &cs);
	damos_get_quota(s, &q);
	EXPECT_EQ(q.active, 0);
	EXPECT_EQ(cs.nr_snapshots, 0); /* 80% free: idle, not one aggregation */
	snaps_idle = cs.nr_snapshots;
	write_meminfo(300); /* below mid: active */
	run_for_ms(ctx, 500);
	damon_ctx_status(ctx, &cs);
	damos_get_quota(s, &q);
	damos_get_stats(s, &ds);
	EXPECT_EQ(q.active, 1);
	EXPECT(cs.nr_snapshots > snaps_idle + 5, "monitoring resumed: %llu snapshots",
	       (unsigned long long)cs.nr_snapshots);
	EXPECT(ds.nr_snapshots > 0, "the scheme ran %llu times", (unsigned long long)ds.nr_snapshots);
	write_meminfo(50); /* below low: off again */
	run_for_ms(ctx, 200);
	damos_get_quota(s, &q);
	EXPECT_EQ(q.active, 0);
	damon_ctx_stop(ctx);

	/* A user_input goal on a (harmless) willneed scheme. */
	write_meminfo(300);
	{
		DAMOS_OPTS(o, .action = DAMOS_WILLNEED, .quota_reset_interval_ms = 40);
		DAMON_OPTS(damos_goal_opts, go, .metric = DAMOS_GOAL_USER_INPUT,
			   .target_value = 100, .current_value = 0);

		EXPECT_EQ(damon_ctx_add_scheme(ctx, &o, &g), 0);
		gi = damos_add_goal(g, &go);
		EXPECT_EQ(gi, 0);
		go.metric = 99;
		EXPECT_EQ(damos_add_goal(g, &go), -EINVAL);
		EXPECT_EQ(damos_set_goal_current(g, 1, 5), -EINVAL);
	}
	EXPECT_EQ(damon_ctx_start(ctx), 0);
	/* the kernel's loop starts from 1 byte and at most doubles per reset */
	run_for_ms(ctx, 2000);
	damos_get_quota(g, &q);
	esz_high = q.esz;
	EXPECT(esz_high > 256 * KiB, "under-achieved goal grew the quota to %llu",
	       (unsigned long long)esz_high);
	EXPECT_EQ(damos_set_goal_current(g, (unsigned int)gi, 1000), 0); /* 10x over */
	run_for_ms(ctx, 300);
	damos_get_quota(g, &q);
	esz_low = q.esz;
	EXPECT(esz_low < esz_high / 100, "over-achieved goal shrank the quota: %llu -> %llu",
	       (unsigned long long)esz_high, (unsigned long long)esz_low);
	damon_ctx_unref(ctx);
	remove_fake_root();
	munmap(p, 16 * MiB);
}

static void test_scheme_writes_only_refusal(void)
{
	damon_ctx *ctx = NULL;
	DAMOS_OPTS(o, .action = DAMOS_PAGEOUT, .max_nr_accesses = 0);
	damos *s = NULL;

	/* AUTO: accepted at add time, refused at start on uffd_wp */
	EXPECT_EQ(damon_ctx_new(&ctx, NULL), 0);
	EXPECT_EQ(damon_ctx_add_target(ctx, 0, NULL), 0);
	EXPECT_EQ(damon_ctx_add_scheme(ctx, &o, &s), 0);
	EXPECT_EQ(damon_ctx_start(ctx), -EOPNOTSUPP);
	EXPECT(strstr(damon_ctx_errmsg(ctx), "writes only") != NULL, "said: \"%s\"",
	       damon_ctx_errmsg(ctx));
	damon_ctx_unref(ctx);
	/* opted in: runs */
	ctx = uffd_ctx(NULL, 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	o.flags = DAMOS_F_ALLOW_WRITES_ONLY;
	EXPECT_EQ(damon_ctx_add_scheme(ctx, &o, &s), 0);
	/* a memcg filter cannot run in user space: refused at start */
	{
		DAMON_OPTS(damos_filter_opts, f, .type = DAMOS_FILTER_YOUNG, .matching = 1);

		EXPECT_EQ(damos_add_filter(s, &f), 0);
		EXPECT_EQ(damon_ctx_start(ctx), -EOPNOTSUPP);
		EXPECT(strstr(damon_ctx_errmsg(ctx), "young") != NULL, "said: \"%s\"",
		       damon_ctx_errmsg(ctx));
		f.type = DAMOS_FILTER_ADDR;
		f.addr_start = 10;
		f.addr_end = 5;
		EXPECT_EQ(damos_add_filter(s, &f), -EINVAL);
	}
	damon_ctx_unref(ctx);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "collapse own memory into THP", test_collapse_self },
		{ "nohugepage, hugepage, cold on own memory", test_nohugepage_cold_self },
		{ "pageout of a file mapping; anon filter", test_pageout_file },
		{ "migrate (one node) and refusals", test_migrate_and_refusals },
		{ "process_madvise on a child, with and without CAP_SYS_NICE", test_process_madvise_child },
		{ "scheme: collapse a hot range under uffd_wp", test_scheme_collapse_live },
		{ "scheme: collapse a hot range with holes under uffd_wp",
		  test_scheme_collapse_sparse },
		{ "scheme: watermarks and a user_input goal", test_scheme_watermarks_goal_live },
		{ "scheme: writes-only refusal, filters refused", test_scheme_writes_only_refusal },
		{ NULL, NULL },
	};

	return dm_test_run("actions", tests);
}
