// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * lib/probe: backend verdicts against sysfs trees built at test time (and one
 * captured from the development machine), and against the real machine.
 *
 * The real /sys/kernel/mm/damon is only ever read, here as in the library: a
 * kdamond the machine owns may run there. The suite snapshots that tree
 * before the first test and checks after the last one that nothing in it
 * changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "probe/probe.h"

#ifndef DM_FIXTURES
#define DM_FIXTURES "tests/fixtures"
#endif

#define HOST_DAMON "/sys/kernel/mm/damon"
#define KD "kernel/mm/damon/admin/kdamonds"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

#define EXPECT_HAS(hay, needle)                                                               \
	do {                                                                                  \
		if (!strstr((hay), (needle)))                                                 \
			fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, \
				(needle), (hay));                                             \
		CU_ASSERT_PTR_NOT_NULL(strstr((hay), (needle)));                              \
	} while (0)

#define EXPECT_LACKS(hay, needle)                                                             \
	do {                                                                                  \
		if (strstr((hay), (needle)))                                                  \
			fprintf(stderr, "%s:%d: expected no \"%s\" in \"%s\"\n", __FILE__,       \
				__LINE__, (needle), (hay));                                   \
		CU_ASSERT_PTR_NULL(strstr((hay), (needle)));                                  \
	} while (0)

static char *fx_path(const char *root, const char *rel)
{
	static char buf[4][4096];
	static int i;
	char *p = buf[i++ & 3];

	snprintf(p, sizeof(buf[0]), "%s/%s", root, rel);
	return p;
}

static void mkdir_p(const char *path)
{
	char tmp[4096], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
	mkdir(tmp, 0755);
}

static void fx_mkdir(const char *root, const char *rel)
{
	mkdir_p(fx_path(root, rel));
}

/* Write @len bytes (or strlen) to root/rel with @mode, creating parents. */
static void fx_write_n(const char *root, const char *rel, const void *data, size_t len, int mode)
{
	char *path = fx_path(root, rel), dir[4096], *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	mkdir_p(dir);
	unlink(path); /* it may be read-only (0400) from before */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		fprintf(stderr, "fixture: cannot write %s: %s\n", path, strerror(errno));
		CU_FAIL_FATAL("fixture write");
	}
	fchmod(fd, (mode_t)mode);
	close(fd);
}

static void fx_write(const char *root, const char *rel, const char *text)
{
	fx_write_n(root, rel, text, strlen(text), 0600);
}

static char *fx_new(void)
{
	char tmpl[] = "/tmp/test-probe-XXXXXX";
	char *root = mkdtemp(tmpl);

	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	chmod(root, 0755); /* a non-root child must get in */
	return strdup(root);
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void fx_free(char *root)
{
	/* only ever a tree this test made */
	if (root && !strncmp(root, "/tmp/test-probe-", 16))
		nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(root);
}

/* Remove the kdamond directories of a fixture, keep nr_kdamonds = 0. */
static void fx_rm_rf_kdamonds(char *root)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/kernel/mm/damon/admin/kdamonds", root);
	if (!strncmp(root, "/tmp/test-probe-", 16))
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fx_write(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "0\n");
}

/* A DAMON tree with nr_kdamonds and nothing else. */
static void fx_damon_empty(const char *root)
{
	fx_write(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "0\n");
}

/* One kdamond with one context: @state, @pid, @avail (NULL: file left out). */
static void fx_kdamond(const char *root, const char *state, const char *pid, const char *avail)
{
	fx_write(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "1\n");
	if (state)
		fx_write(root, "kernel/mm/damon/admin/kdamonds/0/state", state);
	if (pid)
		fx_write(root, "kernel/mm/damon/admin/kdamonds/0/pid", pid);
	fx_write(root, "kernel/mm/damon/admin/kdamonds/0/contexts/nr_contexts", "1\n");
	if (avail)
		fx_write(root, "kernel/mm/damon/admin/kdamonds/0/contexts/0/avail_operations",
			 avail);
	else
		fx_mkdir(root, "kernel/mm/damon/admin/kdamonds/0/contexts/0");
}

/*
 * Run the kernel probe on @root and check what every verdict must satisfy:
 * one sentence starting "kernel: " within its buffer, the same through
 * dm_probe_backend(). The sentence is left in @reason; the verdict is
 * returned (callers that expect a refusal assert it).
 */
static bool kprobe_n(const char *root, uint32_t ops, unsigned int nr_targets,
		     char reason[256])
{
	struct dm_probe_in in = {
		.ops = ops, .pid = getpid(), .self = true, .nr_targets = nr_targets,
		.sysfs_root = root, .proc_root = "/proc",
	};
	struct damon_backend_status st = { .sz = sizeof(st) };
	size_t len;
	bool ok;

	memset(reason, 0x5a, 256);
	ok = dm_kernel_probe(&in, reason, 256);
	len = strnlen(reason, 256);
	CU_ASSERT(len > 0 && len < 256);
	if (len == 256)
		reason[255] = '\0';
	CU_ASSERT_EQUAL(strncmp(reason, "kernel: ", 8), 0);
	/* usable exactly when nothing stops it, and then the sentence says so first */
	CU_ASSERT_EQUAL(ok, !strncmp(reason, "kernel: nothing holds DAMON here", 32) ||
				    !strncmp(reason, "kernel: no kdamond holds DAMON here", 35));

	/* the same through dm_probe_backend() */
	dm_probe_backend(&in, DAMON_BACKEND_KERNEL, &st);
	CU_ASSERT_EQUAL(st.sz, sizeof(st));
	CU_ASSERT_EQUAL(st.backend, DAMON_BACKEND_KERNEL);
	CU_ASSERT_EQUAL(st.usable, ok);
	CU_ASSERT_EQUAL(st.sees, DAMON_SEES_READS | DAMON_SEES_WRITES);
	CU_ASSERT_STRING_EQUAL(st.reason, reason);
	return ok;
}

static bool kprobe(const char *root, char reason[256])
{
	return kprobe_n(root, DAMON_OPS_VADDR, 1, reason);
}

/* ------------------------------------------------------------------------ */
/* the host's tree, read only                                               */
/* ------------------------------------------------------------------------ */

/* Files whose values move while the machine's kdamond runs. */
static bool volatile_file(const char *path)
{
	return strstr(path, "/stats/") || strstr(path, "/tried_regions/") ||
	       strstr(path, "effective_bytes") || strstr(path, "current_value");
}

static char *host_state;
static size_t host_state_len, host_state_cap;

static void host_append(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void host_append(const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = host_state_cap - host_state_len;

		va_start(ap, fmt);
		n = vsnprintf(host_state ? host_state + host_state_len : NULL, room, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			host_state_len += (size_t)n;
			return;
		}
		host_state_cap = host_state_cap * 2 + (size_t)n + 4096;
		host_state = realloc(host_state, host_state_cap);
		if (!host_state)
			abort();
	}
}

static size_t read_file(const char *path, char *buf, size_t sz)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	buf[0] = '\0';
	if (fd < 0)
		return 0;
	n = read(fd, buf, sz - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

static int host_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	char val[4096];

	host_append("%s %o %d", path, (unsigned int)sb->st_mode, type);
	if (type == FTW_F && !volatile_file(path)) {
		read_file(path, val, sizeof(val));
		host_append(" = %s", val);
	}
	host_append("\n");
	return 0;
}

/* Everything under the host's /sys/kernel/mm/damon as text; NULL if it has none. */
static char *host_snapshot(void)
{
	char *ret;

	host_state = NULL;
	host_state_len = host_state_cap = 0;
	if (access(HOST_DAMON, F_OK) < 0)
		return NULL;
	host_append("%s", "");
	nftw(HOST_DAMON, host_one, 16, FTW_PHYS);
	ret = host_state;
	host_state = NULL;
	return ret;
}

static char *host_before;

/* Copy the host's tree (reading only) below @root/kernel/mm/damon. */
static const char *copy_root;

static int copy_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	char val[4096];
	const char *rel = path + strlen("/sys/");
	size_t n;

	if (type == FTW_D) {
		fx_mkdir(copy_root, rel);
	} else if (type == FTW_F) {
		n = read_file(path, val, sizeof(val));
		fx_write_n(copy_root, rel, val, n, (int)(sb->st_mode & 0777));
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* (a) no DAMON                                                             */
/* ------------------------------------------------------------------------ */

static void test_no_damon(void)
{
	char *root = fx_new(), reason[256];

	kprobe(root, reason);
	EXPECT_HAS(reason, "kernel: this kernel has no DAMON sysfs interface (CONFIG_DAMON_SYSFS)");

	/* kernel/mm exists but not damon */
	fx_mkdir(root, "kernel/mm/transparent_hugepage");
	kprobe(root, reason);
	EXPECT_HAS(reason, "no DAMON sysfs interface");

	/* a file where the directory should be */
	fx_write(root, "kernel/mm/damon", "x");
	kprobe(root, reason);
	EXPECT_HAS(reason, "no DAMON sysfs interface");
	fx_free(root);

	/* a root that does not exist */
	kprobe("/nonexistent/test-probe", reason);
	EXPECT_HAS(reason, "/nonexistent/test-probe cannot be opened");
}

/* ------------------------------------------------------------------------ */
/* (b) the development machine's tree                                       */
/* ------------------------------------------------------------------------ */

static void check_host_like(const char *root, const char *kd_pid, const char *avail)
{
	char reason[256], want[128], kd[128];

	kprobe(root, reason);
	printf("\n    vaddr on %s: %s", root, reason);
	snprintf(kd, sizeof(kd), "kdamond 0 (pid %s) is running and is not libdamon's", kd_pid);
	EXPECT_HAS(reason, kd);
	if (!strstr(avail, "vaddr"))
		EXPECT_HAS(reason, "no vaddr");
	/* all in full unless the files are not this user's (a checkout owned by root) */
	if (!faccessat(AT_FDCWD, fx_path(root, KD "/nr_kdamonds"), W_OK, AT_EACCESS)) {
		EXPECT_HAS(reason, "nr_kdamonds cannot change; stop it or use another backend");
		if (!strstr(avail, "vaddr")) {
			snprintf(want, sizeof(want), "this kernel's DAMON offers %s only, no vaddr",
				 avail);
			EXPECT_HAS(reason, want);
		}
	} else {
		EXPECT_HAS(reason, "the DAMON sysfs files are root-only");
	}

	kprobe_n(root, DAMON_OPS_FVADDR, 1, reason);
	if (!strstr(avail, "fvaddr"))
		EXPECT_HAS(reason, "no fvaddr");

	kprobe_n(root, DAMON_OPS_PADDR, 1, reason);
	printf("\n    paddr on %s: %s", root, reason);
	EXPECT_HAS(reason, kd); /* the running kdamond */
	EXPECT_LACKS(reason, "no paddr");
	kprobe_n(root, DAMON_OPS_PADDR, 2, reason);
	EXPECT_HAS(reason, "paddr takes exactly one target, not 2");
}

static void test_host_captured(void)
{
	check_host_like(DM_FIXTURES "/sysfs-host-6.18", "71", "paddr");
}

static void test_host_copied(void)
{
	char pid[64], state[64], avail[128], *root;

	if (access(HOST_DAMON "/admin/kdamonds/0/state", F_OK) < 0) {
		printf("\n    skipped: this machine has no kdamond 0 in " HOST_DAMON);
		return;
	}
	root = fx_new();
	copy_root = root;
	nftw(HOST_DAMON, copy_one, 16, FTW_PHYS);

	read_file(fx_path(root, "kernel/mm/damon/admin/kdamonds/0/state"), state, sizeof(state));
	read_file(fx_path(root, "kernel/mm/damon/admin/kdamonds/0/pid"), pid, sizeof(pid));
	read_file(fx_path(root, "kernel/mm/damon/admin/kdamonds/0/contexts/0/avail_operations"),
		  avail, sizeof(avail));
	pid[strcspn(pid, "\n")] = '\0';
	avail[strcspn(avail, "\n")] = '\0';
	if (strncmp(state, "on", 2)) {
		printf("\n    skipped: kdamond 0 of this machine is not running");
	} else {
		check_host_like(root, pid, avail);
	}
	fx_free(root);
}

/* ------------------------------------------------------------------------ */
/* (c) exclusive modules, and free trees                                    */
/* ------------------------------------------------------------------------ */

static void test_damon_stat(void)
{
	char *root = fx_new(), reason[256], want[512];

	fx_damon_empty(root);
	fx_write(root, "module/damon_stat/parameters/enabled", "Y\n");
	fx_write(root, "module/damon_reclaim/parameters/enabled", "N\n");
	kprobe(root, reason);
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "kernel: DAMON_STAT is running and DAMON allows no other kdamond while "
			   "it runs; write N to ");
	snprintf(want, sizeof(want),
		 "%s/module/damon_stat/parameters/enabled or use another backend", root);
	EXPECT_HAS(reason, want);
	EXPECT_LACKS(reason, "DAMON_RECLAIM");
	EXPECT_LACKS(reason, "nothing holds DAMON");

	fx_write(root, "module/damon_stat/parameters/enabled", "N\n");
	fx_write(root, "module/damon_lru_sort/parameters/enabled", "Y\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "DAMON_LRU_SORT is running");
	EXPECT_LACKS(reason, "DAMON_STAT");

	/* with a running kdamond too: both facts */
	fx_kdamond(root, "on\n", "4242\n", "vaddr fvaddr paddr\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "DAMON_LRU_SORT is running");
	EXPECT_HAS(reason, "kdamond 0 (pid 4242) is running");
	EXPECT_LACKS(reason, "no vaddr");
	fx_free(root);
}

static void test_free_trees(void)
{
	char *root = fx_new(), reason[256];

	fx_damon_empty(root);
	/* nothing stops the kernel backend: usable (lib/kernel does the rest) */
	CU_ASSERT_TRUE(kprobe(root, reason));
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "kernel: nothing holds DAMON here (no exclusive module, no kdamond)");
	EXPECT_HAS(reason, "whether this kernel's DAMON offers vaddr cannot be read without "
			   "writing nr_kdamonds");

	/* a stopped kdamond of someone else */
	fx_kdamond(root, "off\n", "-1\n", "vaddr fvaddr paddr\n");
	kprobe(root, reason);
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "kdamond 0 exists (off) and is not libdamon's");
	EXPECT_LACKS(reason, "offers");

	/* several kdamonds, two running */
	fx_write(root, "kernel/mm/damon/admin/kdamonds/nr_kdamonds", "3\n");
	fx_write(root, "kernel/mm/damon/admin/kdamonds/1/state", "on\n");
	fx_write(root, "kernel/mm/damon/admin/kdamonds/1/pid", "11\n");
	fx_write(root, "kernel/mm/damon/admin/kdamonds/2/state", "on\n");
	fx_write(root, "kernel/mm/damon/admin/kdamonds/2/pid", "12\n");
	kprobe(root, reason);
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "kdamond 1 (pid 11) and 1 more are running");
	fx_free(root);
}

/* ------------------------------------------------------------------------ */
/* (d) malformed trees                                                      */
/* ------------------------------------------------------------------------ */

static void test_malformed(void)
{
	static const char junk[] = "\x01\xffon\0\x7f";
	char *root, reason[256], *big;

	/* damon without admin */
	root = fx_new();
	fx_mkdir(root, "kernel/mm/damon");
	kprobe(root, reason);
	EXPECT_HAS(reason, "has no admin/kdamonds directory");
	/* kdamonds is a file */
	fx_write(root, KD, "0\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "has no admin/kdamonds directory");
	fx_free(root);

	/* nr_kdamonds missing, a kdamond running */
	root = fx_new();
	fx_kdamond(root, "on\n", "5\n", "vaddr\n");
	unlink(fx_path(root, KD "/nr_kdamonds"));
	kprobe(root, reason);
	EXPECT_HAS(reason, "has no admin/kdamonds/nr_kdamonds");
	EXPECT_HAS(reason, "kdamond 0 (pid 5) is running");

	/* nr_kdamonds garbage */
	fx_write(root, KD "/nr_kdamonds", "zzz\n");
	kprobe(root, reason);
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "admin/kdamonds/nr_kdamonds reads \"zzz\", not a number");

	/* nr_kdamonds binary junk, huge number, and disagreeing with the directories */
	fx_write_n(root, KD "/nr_kdamonds", junk, sizeof(junk) - 1, 0600);
	kprobe(root, reason);
	EXPECT_HAS(reason, "reads \"??on??\", not a number");
	fx_write(root, KD "/nr_kdamonds", "99999999999999999999999\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "not a number");
	fx_write(root, KD "/nr_kdamonds", "7\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "nr_kdamonds reads 7 but 1 kdamond directories exist");

	/* nr_kdamonds a directory */
	unlink(fx_path(root, KD "/nr_kdamonds"));
	fx_mkdir(root, KD "/nr_kdamonds");
	kprobe(root, reason);
	EXPECT_HAS(reason, "admin/kdamonds/nr_kdamonds is unreadable");
	fx_free(root);

	/* state binary junk */
	root = fx_new();
	fx_kdamond(root, NULL, "5\n", "vaddr\n");
	fx_write_n(root, KD "/0/state", junk, sizeof(junk) - 1, 0600);
	kprobe(root, reason);
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "kdamond 0 exists and is not libdamon's (its state reads \"??on??\")");

	/* "on" followed by junk after a NUL is not "on" */
	fx_write_n(root, KD "/0/state", "on\0zz", 5, 0600);
	kprobe(root, reason);
	EXPECT_HAS(reason, "its state reads \"on?zz\"");

	/* state missing */
	unlink(fx_path(root, KD "/0/state"));
	kprobe(root, reason);
	EXPECT_HAS(reason, "its state is unreadable: No such file or directory");

	/* state a directory (what stands for an unreadable file when running as root) */
	fx_mkdir(root, KD "/0/state");
	kprobe(root, reason);
	EXPECT_HAS(reason, "its state is unreadable: Is a directory");
	rmdir(fx_path(root, KD "/0/state"));

	/* state a FIFO: must not hang */
	mkfifo(fx_path(root, KD "/0/state"), 0600);
	kprobe(root, reason);
	EXPECT_HAS(reason, "its state is unreadable");
	unlink(fx_path(root, KD "/0/state"));

	/* state a symlink loop */
	symlink("state", fx_path(root, KD "/0/state"));
	kprobe(root, reason);
	EXPECT_HAS(reason, "its state is unreadable");
	unlink(fx_path(root, KD "/0/state"));

	/* pid garbage, missing, a directory */
	fx_write(root, KD "/0/state", "on\n");
	fx_write(root, KD "/0/pid", "-3\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "kdamond 0 (pid unknown) is running");
	unlink(fx_path(root, KD "/0/pid"));
	kprobe(root, reason);
	EXPECT_HAS(reason, "kdamond 0 (pid unknown) is running");
	fx_mkdir(root, KD "/0/pid");
	kprobe(root, reason);
	EXPECT_HAS(reason, "kdamond 0 (pid unknown) is running");
	fx_free(root);

	/* avail_operations: a directory, junk, empty, missing, huge, no context */
	root = fx_new();
	fx_kdamond(root, "off\n", NULL, NULL);
	fx_mkdir(root, KD "/0/contexts/0/avail_operations");
	kprobe(root, reason);
	EXPECT_HAS(reason, "offers vaddr is unknown");
	rmdir(fx_path(root, KD "/0/contexts/0/avail_operations"));
	fx_write_n(root, KD "/0/contexts/0/avail_operations", junk, sizeof(junk) - 1, 0400);
	kprobe(root, reason);
	EXPECT_HAS(reason, "avail_operations reads \"??on??\", so vaddr is not offered");
	fx_write(root, KD "/0/contexts/0/avail_operations", "\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "offers no operations set, so no vaddr");
	fx_write(root, KD "/0/contexts/0/avail_operations", "vaddrx paddr\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "offers vaddrx paddr only, no vaddr");
	unlink(fx_path(root, KD "/0/contexts/0/avail_operations"));
	kprobe(root, reason);
	EXPECT_HAS(reason, "offers vaddr is unknown");
	big = malloc(1 << 20);
	memset(big, 'a', 1 << 20);
	fx_write_n(root, KD "/0/contexts/0/avail_operations", big, 1 << 20, 0400);
	free(big);
	kprobe(root, reason);
	EXPECT_HAS(reason, "only, no vaddr");
	fx_free(root);

	root = fx_new();
	fx_write(root, KD "/nr_kdamonds", "1\n");
	fx_write(root, KD "/0/state", "off\n");
	fx_write(root, KD "/0/contexts/0", "not a directory\n");
	kprobe(root, reason);
	EXPECT_HAS(reason, "offers vaddr is unknown");
	/* names that are not indexes are ignored */
	fx_write(root, KD "/01/state", "on\n");
	fx_write(root, KD "/x/state", "on\n");
	fx_write(root, KD "/3", "on\n");
	kprobe(root, reason);
	EXPECT_LACKS(reason, "running");

	/* module parameter unreadable, or junk */
	fx_mkdir(root, "module/damon_stat/parameters/enabled");
	fx_write(root, "module/damon_reclaim/parameters/enabled", "maybe\n");
	kprobe(root, reason);
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "whether DAMON_STAT runs is unknown");
	/* three informative facts and a stopping one: the last has no room left */
	EXPECT_HAS(reason, "kdamond 0 exists (off)");
	/* alone: in full */
	fx_rm_rf_kdamonds(root);
	rmdir(fx_path(root, "module/damon_stat/parameters/enabled"));
	CU_ASSERT_TRUE(kprobe(root, reason));
	printf("\n    %s", reason);
	EXPECT_HAS(reason, "kernel: no kdamond holds DAMON here; whether DAMON_RECLAIM runs is "
			   "unknown (its enabled parameter reads \"maybe\")");
	fx_free(root);
}

/* Not root: the 0600 files tell this process nothing but that they exist. */
static void check_unprivileged(const char *root, int fd)
{
	char reason[256];

	kprobe(root, reason);
	if (write(fd, reason, strlen(reason) + 1) < 0)
		_exit(2);
}

static void test_unprivileged(void)
{
	char *root = fx_new(), reason[256] = "";
	int p[2], status;
	pid_t pid;
	ssize_t n;

	fx_kdamond(root, "on\n", "71\n", "paddr\n");
	fx_write(root, "module/damon_reclaim/parameters/enabled", "Y\n");
	if (geteuid() != 0) {
		/* the files are this user's: make one unreadable the ordinary way */
		chmod(fx_path(root, KD "/0/state"), 0);
		kprobe(root, reason);
		EXPECT_HAS(reason, "DAMON_RECLAIM is running");
		EXPECT_HAS(reason, "kdamond 0 exists and is not libdamon's");
		fx_write(root, "module/damon_reclaim/parameters/enabled", "N\n");
		kprobe(root, reason);
		EXPECT_HAS(reason, "kdamond 0 exists and is not libdamon's (its state is "
				   "unreadable: Permission denied)");
		fx_free(root);
		return;
	}
	CU_ASSERT_FATAL(pipe(p) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (!pid) {
		close(p[0]);
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		check_unprivileged(root, p[1]);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], reason, sizeof(reason) - 1);
	close(p[0]);
	waitpid(pid, &status, 0);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT(n > 0);
	reason[n > 0 ? n : 0] = '\0';
	printf("\n    as nobody: %s", reason);
	EXPECT_HAS(reason, "kernel: the DAMON sysfs files are root-only and this process cannot "
			   "write admin/kdamonds/nr_kdamonds");
	EXPECT_HAS(reason, "kdamond 0 exists and is not libdamon's (its state is root-only)");
	EXPECT_LACKS(reason, "DAMON_RECLAIM"); /* 0600 in sysfs: unknowable, said as root-only */
	fx_free(root);
}

/* Buffers too small and output structs too short: no byte past the limit. */
static void test_bounds(void)
{
	struct dm_probe_in in = {
		.ops = DAMON_OPS_VADDR, .self = true, .nr_targets = 1,
		.sysfs_root = DM_FIXTURES "/sysfs-host-6.18", .proc_root = "/proc",
	};
	struct damon_backend_status st;
	size_t sizes[] = { 1, 2, 9, 40, 60, 100, 150, 200 }, i;
	size_t at = offsetof(struct damon_backend_status, reason);
	char buf[300];
	int b;

	in.pid = getpid();
	CU_ASSERT_FALSE(dm_kernel_probe(&in, NULL, 0));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(buf, 0x5a, sizeof(buf));
		dm_kernel_probe(&in, buf, sizes[i]);
		CU_ASSERT(strnlen(buf, sizes[i]) < sizes[i]);
		CU_ASSERT_EQUAL(buf[sizes[i]], 0x5a);
	}
	for (b = DAMON_BACKEND_AUTO; b <= DAMON_BACKEND_MAX + 1; b++) {
		size_t szs[] = { sizeof(size_t), at, at + 10, sizeof(st) };

		for (i = 0; i < 4; i++) {
			memset(&st, 0x5a, sizeof(st));
			st.sz = szs[i];
			dm_probe_backend(&in, b, &st);
			CU_ASSERT_EQUAL(st.sz, szs[i]);
			if (szs[i] > at) {
				CU_ASSERT(strnlen(st.reason, szs[i] - at) < szs[i] - at);
			}
			if (szs[i] < sizeof(st)) {
				CU_ASSERT_EQUAL(((unsigned char *)&st)[szs[i]], 0x5a);
			}
		}
	}
	st.sz = sizeof(st);
	dm_probe_backend(&in, 99, &st);
	CU_ASSERT_EQUAL(st.usable, 0);
	EXPECT_HAS(st.reason, "backend 99");
}

/* ------------------------------------------------------------------------ */
/* the other backends                                                       */
/* ------------------------------------------------------------------------ */

static void test_page_idle(void)
{
	char *root = fx_new();
	struct dm_probe_in in = {
		.ops = DAMON_OPS_VADDR, .self = true, .nr_targets = 1,
		.sysfs_root = root, .proc_root = "/proc",
	};
	struct damon_backend_status st = { .sz = sizeof(st) };

	in.pid = getpid();
	dm_probe_backend(&in, DAMON_BACKEND_PAGE_IDLE, &st);
	CU_ASSERT_EQUAL(st.usable, 0);
	CU_ASSERT_EQUAL(st.sees, DAMON_SEES_READS | DAMON_SEES_WRITES);
	EXPECT_HAS(st.reason, "page_idle: this kernel has no idle page tracking "
			      "(CONFIG_IDLE_PAGE_TRACKING)");

	fx_write(root, "kernel/mm/page_idle/bitmap", "");
	dm_probe_backend(&in, DAMON_BACKEND_PAGE_IDLE, &st);
	printf("\n    %s", st.reason);
	EXPECT_LACKS(st.reason, "no idle page tracking");
	if (dm_has_cap(CAP_SYS_ADMIN) && access("/proc/kpageflags", R_OK) == 0) {
		CU_ASSERT_EQUAL(st.usable, 1);
		EXPECT_HAS(st.reason, "idle page tracking is there and this process may use it");
		EXPECT_LACKS(st.reason, "kernel DAMON is running");
		/* a kdamond that is on: the probe says both use the same flags */
		fx_write(root, "kernel/mm/damon/admin/kdamonds/0/state", "on\n");
		dm_probe_backend(&in, DAMON_BACKEND_PAGE_IDLE, &st);
		CU_ASSERT_EQUAL(st.usable, 1);
		EXPECT_HAS(st.reason, "kernel DAMON is running (kdamond 0 is on): it uses the same "
				      "page flags");
	} else {
		CU_ASSERT_EQUAL(st.usable, 0);
		EXPECT_HAS(st.reason, "CAP_SYS_ADMIN");
	}
	fx_free(root);
}

static void test_self_only(void)
{
	struct dm_probe_in in = {
		.ops = DAMON_OPS_PADDR, .self = false, .pid = 0, .nr_targets = 1,
		.sysfs_root = DM_FIXTURES "/sysfs-host-6.18", .proc_root = "/proc",
	};
	struct damon_backend_status st = { .sz = sizeof(st) };

	dm_probe_backend(&in, DAMON_BACKEND_UFFD_WP, &st);
	CU_ASSERT_EQUAL(st.usable, 0);
	CU_ASSERT_EQUAL(st.sees, DAMON_SEES_WRITES);
	EXPECT_HAS(st.reason, "uffd_wp: it monitors only the calling process's virtual memory, not "
			      "physical memory (paddr)");

	in.ops = DAMON_OPS_VADDR;
	in.pid = 1;
	dm_probe_backend(&in, DAMON_BACKEND_UFFD_WP, &st);
	CU_ASSERT_EQUAL(st.usable, 0);
	EXPECT_HAS(st.reason, "not pid 1's");

	dm_probe_backend(&in, DAMON_BACKEND_SOFT_DIRTY, &st);
	CU_ASSERT_EQUAL(st.usable, 0);
	CU_ASSERT_EQUAL(st.sees, DAMON_SEES_WRITES);
	/* pid 1 of another uid, or a kernel without soft-dirty: refused either way
	 * unless root on a kernel with CONFIG_MEM_SOFT_DIRTY */
	printf("\n    %s", st.reason);
	EXPECT_HAS(st.reason, "soft_dirty: ");
	if (!st.usable)
		CU_ASSERT_TRUE(strstr(st.reason, "CONFIG_MEM_SOFT_DIRTY") ||
			       strstr(st.reason, "may not"));

	in.self = true;
	in.pid = getpid();
	dm_probe_backend(&in, DAMON_BACKEND_FAULT, &st);
	/* x86-64 and Linux >= 6.11 (PROCMAP_QUERY), as on this host */
	CU_ASSERT_EQUAL(st.usable, 1);
	CU_ASSERT_EQUAL(st.sees, DAMON_SEES_READS | DAMON_SEES_WRITES);
	EXPECT_HAS(st.reason, "fault: page protection and a SIGSEGV handler");
	EXPECT_HAS(st.reason, "AUTO never picks it");
	/* another process: refused */
	in.self = false;
	in.pid = 1;
	dm_probe_backend(&in, DAMON_BACKEND_FAULT, &st);
	CU_ASSERT_EQUAL(st.usable, 0);
	EXPECT_HAS(st.reason, "fault: it monitors only the calling process's virtual memory");
}

static void test_caps(void)
{
	char buf[8192], *p;
	unsigned long long eff = 0;

	CU_ASSERT_FALSE(dm_has_cap(-1));
	CU_ASSERT_FALSE(dm_has_cap(4096));
	read_file("/proc/self/status", buf, sizeof(buf));
	p = strstr(buf, "CapEff:");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	eff = strtoull(p + 7, NULL, 16);
	CU_ASSERT_EQUAL(dm_has_cap(CAP_SYS_ADMIN), !!(eff & (1ull << CAP_SYS_ADMIN)));
	CU_ASSERT_EQUAL(dm_has_cap(CAP_SYS_NICE), !!(eff & (1ull << CAP_SYS_NICE)));
	CU_ASSERT_EQUAL(dm_has_cap(CAP_SYS_RESOURCE), !!(eff & (1ull << CAP_SYS_RESOURCE)));
}

/* ------------------------------------------------------------------------ */
/* (e) the real machine                                                     */
/* ------------------------------------------------------------------------ */

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

static void test_host_auto(void)
{
	struct damon_backend_status all[DAMON_BACKEND_MAX + 1];
	struct dm_probe_in in = {
		.ops = DAMON_OPS_VADDR, .self = true, .nr_targets = 1,
		.sysfs_root = NULL, .proc_root = NULL, /* the defaults: /sys, /proc */
	};
	int b, pick;

	in.pid = getpid();
	memset(all, 0, sizeof(all));
	pick = dm_probe_auto(&in, all);
	for (b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		printf("\n    %d usable=%u sees=%u %s", b, all[b].usable, all[b].sees,
		       all[b].reason);
		CU_ASSERT_EQUAL(all[b].sz, sizeof(all[b]));
		CU_ASSERT_EQUAL(all[b].backend, (uint32_t)b);
		CU_ASSERT(all[b].reason[0] != '\0');
	}
	CU_ASSERT_EQUAL(strncmp(all[DAMON_BACKEND_KERNEL].reason, "kernel: ", 8), 0);
	/* fault may be usable (it is on this host), but AUTO never picks it */
	CU_ASSERT_NOT_EQUAL(pick, DAMON_BACKEND_FAULT);
	if (dm_test_on_valgrind() && !all[DAMON_BACKEND_UFFD_WP].usable) {
		printf("\n    not judged: under valgrind, which has no userfaultfd, uffd_wp "
		       "cannot be usable");
	} else if (kernel_at_least(6, 7) || all[DAMON_BACKEND_UFFD_WP].usable) {
		if (pick != DAMON_BACKEND_UFFD_WP)
			fprintf(stderr, "expected AUTO to pick uffd_wp (%d), got %d\n",
				DAMON_BACKEND_UFFD_WP, pick);
		CU_ASSERT_EQUAL(pick, DAMON_BACKEND_UFFD_WP);
		EXPECT_HAS(all[DAMON_BACKEND_UFFD_WP].reason,
			   "uffd_wp: userfaultfd write-protect + PAGEMAP_SCAN on the calling "
			   "process; sees writes only");
	} else {
		CU_ASSERT_EQUAL(pick, -EOPNOTSUPP);
	}

	/* paddr: nothing in this version can */
	in.ops = DAMON_OPS_PADDR;
	in.self = false;
	in.pid = 0;
	CU_ASSERT_EQUAL(dm_probe_auto(&in, all), -EOPNOTSUPP);
}

/* Runs last: the probes above must have left the machine's DAMON as it was. */
static void test_host_untouched(void)
{
	char *after = host_snapshot();

	if (!host_before && !after) {
		printf("\n    (no %s on this machine)", HOST_DAMON);
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(host_before);
	CU_ASSERT_PTR_NOT_NULL_FATAL(after);
	if (strcmp(host_before, after))
		fprintf(stderr, "%s changed during the tests:\n--- before\n%s--- after\n%s",
			HOST_DAMON, host_before, after);
	CU_ASSERT_STRING_EQUAL(host_before, after);
	free(after);
}

int main(void)
{
	CU_pSuite s;
	unsigned int failed;

	host_before = host_snapshot();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("probe", NULL, NULL);
	CU_add_test(s, "no DAMON sysfs", test_no_damon);
	CU_add_test(s, "captured host tree", test_host_captured);
	CU_add_test(s, "host tree copied now", test_host_copied);
	CU_add_test(s, "exclusive modules", test_damon_stat);
	CU_add_test(s, "free trees", test_free_trees);
	CU_add_test(s, "malformed trees", test_malformed);
	CU_add_test(s, "unprivileged", test_unprivileged);
	CU_add_test(s, "bounds", test_bounds);
	CU_add_test(s, "page_idle", test_page_idle);
	CU_add_test(s, "self-only backends", test_self_only);
	CU_add_test(s, "capabilities", test_caps);
	CU_add_test(s, "AUTO on this machine", test_host_auto);
	CU_add_test(s, "host DAMON untouched", test_host_untouched);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	free(host_before);
	return failed ? 1 : 0;
}
