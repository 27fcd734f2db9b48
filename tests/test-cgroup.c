// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * cgroup v2 targets (damon_ctx_add_cgroup()).
 *
 * The errors need nothing but this host. The live part needs root and a
 * cgroup2 mount: it makes a cgroup under it, moves a worker into it, and
 * runs a context on page_idle and on soft_dirty while the worker forks a
 * child that writes and exits, and a process from outside is moved in and
 * out again. Where a backend cannot run here, the same context runs on the
 * simulated primitive (white-box hook), whose model reports the worker's
 * hot buffer as accessed: the processes, the cgroup and its membership
 * stay real. It checks that members
 * come and go as targets (with the log callback's sentences), that the
 * worker's hot buffer is found hot in its own target and in the cgroup's
 * summary, and prints how long a fork took to appear in a snapshot and an
 * exit to drop its target. The cgroup is removed at the end, also when a
 * check failed.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

#include "api/internal.h"
#include "ops/sim.h"

#define MiB (1ul << 20)

#if defined(__SANITIZE_ADDRESS__)
static const bool asan_build = true;
#else
static const bool asan_build = false;
#endif

/* ------------------------------------------------------------------------ */
/* Errors */

static void test_errors(void)
{
	damon_ctx *ctx = NULL, *uf = NULL, *fv = NULL;
	char file[] = "/tmp/libdamon-cgroup-XXXXXX";
	DAMON_OPTS(damon_cgroup_opts, o, .path = "/nonexistent/libdamon-cgroup");
	DAMON_OPTS(damon_ctx_opts, uo, .backend = DAMON_BACKEND_UFFD_WP);
	DAMON_OPTS(damon_ctx_opts, fo, .ops = DAMON_OPS_FVADDR);
	damon_cgroup *cg = NULL;
	int fd;

	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, NULL), 0);
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -ENOENT);
	EXPECT(strstr(damon_ctx_errmsg(ctx), "no such directory") != NULL, "errmsg \"%s\"",
	       damon_ctx_errmsg(ctx));
	fd = mkstemp(file);
	CU_ASSERT_FATAL(fd >= 0);
	o.path = file;
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -ENOTDIR);
	o.path = "/tmp";
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -EINVAL);
	EXPECT(strstr(damon_ctx_errmsg(ctx), "cgroup v2") != NULL, "errmsg \"%s\"",
	       damon_ctx_errmsg(ctx));
	/* a cgroup v1 hierarchy, where this host has one */
	if (!access("/sys/fs/cgroup/memory/cgroup.procs", F_OK)) {
		o.path = "/sys/fs/cgroup/memory";
		EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -EINVAL);
	}
	/* neither a path nor an fd; an fd that is not open; a file's fd */
	o.path = NULL;
	o.fd = -1;
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -EINVAL);
	o.fd = 1000;
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -EINVAL);
	o.fd = fd;
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -ENOTDIR);
	o.sz = 8;
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -EINVAL);
	o.sz = sizeof(o);
	o.path = "/tmp";
	o.flags = 1;
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &o, &cg), -EINVAL);
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, NULL, &cg), -EINVAL);
	EXPECT_EQ(damon_ctx_add_cgroup(NULL, &o, &cg), -EINVAL);
	o.flags = 0;
	/* backends that watch the calling process only say so */
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&uf, &uo), 0);
	EXPECT_EQ(damon_ctx_add_cgroup(uf, &o, &cg), -EOPNOTSUPP);
	EXPECT(strstr(damon_ctx_errmsg(uf), "calling process only") != NULL, "errmsg \"%s\"",
	       damon_ctx_errmsg(uf));
	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&fv, &fo), 0);
	EXPECT_EQ(damon_ctx_add_cgroup(fv, &o, &cg), -EINVAL);
	/* nothing was left behind: no cgroup, so nothing to start */
	EXPECT_EQ(damon_ctx_start(ctx), -EINVAL);
	EXPECT(cg == NULL, "a failed call wrote ret");
	EXPECT(damon_target_cgroup(NULL) == NULL, "NULL target");
	EXPECT_EQ(damon_target_alive(NULL), -EINVAL);
	EXPECT_EQ(damon_target_idx(NULL), -EINVAL);
	EXPECT_EQ(damon_cgroup_members(NULL, NULL, 0), -EINVAL);
	close(fd);
	unlink(file);
	damon_ctx_unref(fv);
	damon_ctx_unref(uf);
	damon_ctx_unref(ctx);
}

/* ------------------------------------------------------------------------ */
/* The cgroup made for the live test */

static char cg_root[256], cg_dir[320];

/* Where cgroup v2 is mounted, from /proc/self/mountinfo; false if nowhere. */
static bool find_cgroup2(void)
{
	char line[1024], mnt[256], fstype[64];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (!strcmp(fstype, "cgroup2")) {
			snprintf(cg_root, sizeof(cg_root), "%s", mnt);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static int write_pid(const char *dir, pid_t pid)
{
	char path[400], buf[32];
	int fd, n, rc = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, (size_t)n) != n)
		rc = -errno;
	close(fd);
	return rc;
}

static void remove_cgroup(void)
{
	if (!cg_dir[0])
		return;
	/* members may take a moment to be reaped */
	for (int i = 0; i < 100 && rmdir(cg_dir) && errno == EBUSY; i++)
		usleep(20000);
	cg_dir[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Processes */

struct report {
	pid_t pid;
	uint32_t kind; /* 1: the worker's buffer, 2: a child forked, 3: it exits */
	uint64_t addr, len;
	uint64_t t_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void send_report(int fd, uint32_t kind, pid_t pid, void *addr, size_t len)
{
	struct report r = {pid, kind, (uintptr_t)addr, len, now_ns()};

	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

static void write_pages(volatile char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 4096)
		p[i]++;
}

/*
 * The worker: writes 4 MiB over and over (its hot part; 12 MiB more stay
 * untouched), and once told (a byte on @go) forks a child that writes its
 * own 4 MiB for 1.5 s and exits.
 */
static void worker(int out, int go)
{
	char *buf =
		mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char c;

	if (buf == MAP_FAILED)
		_exit(2);
	memset(buf, 1, 16 * MiB);
	send_report(out, 1, getpid(), buf, 4 * MiB);
	fcntl(go, F_SETFL, O_NONBLOCK);
	for (;;) {
		write_pages(buf, 4 * MiB);
		if (read(go, &c, 1) == 1) {
			pid_t kid = fork();

			if (kid == 0) {
				char *mine = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				uint64_t end = now_ns() + 1500000000ull;

				while (now_ns() < end)
					write_pages(mine, 4 * MiB);
				send_report(out, 3, getpid(), NULL, 0);
				_exit(0);
			}
			send_report(out, 2, kid, NULL, 0);
		}
		usleep(1000);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

/* ------------------------------------------------------------------------ */
/* What the log callback heard */

#define MAX_EVENTS 64

struct event {
	pid_t pid;
	bool joined;
	uint32_t id;
	uint64_t t_ns;
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event events[MAX_EVENTS];
static int nr_events;

static void on_log(damon_ctx *ctx, int level, const char *msg, void *ud)
{
	const char *p = strstr(msg, ": process ");
	struct event e = {.t_ns = now_ns()};
	const char *tid;

	if (!p || !strstr(msg, "cgroup ") || !(tid = strstr(p, "target ")))
		return;
	e.pid = (pid_t)atoi(p + strlen(": process "));
	e.joined = strstr(p, " joined ") != NULL;
	e.id = (uint32_t)strtoul(tid + strlen("target "), NULL, 10);
	pthread_mutex_lock(&ev_lock);
	if (nr_events < MAX_EVENTS)
		events[nr_events++] = e;
	pthread_mutex_unlock(&ev_lock);
}

/* The event for @pid (joined or left), waiting up to @ms; false if none. */
static bool wait_event(pid_t pid, bool joined, unsigned int ms, struct event *ret)
{
	uint64_t end = dm_test_now_ms() + ms;

	do {
		bool found = false;

		pthread_mutex_lock(&ev_lock);
		for (int i = 0; i < nr_events && !found; i++)
			if (events[i].pid == pid && events[i].joined == joined) {
				*ret = events[i];
				found = true;
			}
		pthread_mutex_unlock(&ev_lock);
		if (found)
			return true;
		usleep(5000);
	} while (dm_test_now_ms() < end);
	return false;
}

/* The time of the first snapshot holding regions of target @id; 0 if none
 * came within @ms. */
static uint64_t first_snapshot_with(damon_ctx *ctx, uint32_t id, unsigned int ms)
{
	uint64_t end = dm_test_now_ms() + ms;

	do {
		struct damon_snapshot_info info = {.sz = sizeof(info)};
		damon_snapshot *s;

		if (damon_ctx_snapshot(ctx, &s) == 0) {
			size_t n = damon_snapshot_nr_regions(s);
			bool has = false;

			for (size_t i = 0; i < n && !has; i++) {
				struct damon_region r = {.sz = sizeof(r)};

				has = !damon_snapshot_region(s, i, &r) && r.target_idx == id;
			}
			damon_snapshot_info(s, &info);
			damon_snapshot_unref(s);
			if (has)
				return info.time_ns;
		}
		usleep(2000);
	} while (dm_test_now_ms() < end);
	return 0;
}

static struct report read_report(int fd, uint32_t kind)
{
	struct report r = {0};

	while (read(fd, &r, sizeof(r)) == sizeof(r) && r.kind != kind)
		;
	return r;
}

/* ------------------------------------------------------------------------ */
/* Live */

/* The simulated primitive's model: the worker's hot buffer is accessed. */
static struct report sim_hot;

static bool sim_accessed(void *arg, pid_t pid, uint64_t addr)
{
	return pid == sim_hot.pid && addr >= sim_hot.addr && addr < sim_hot.addr + sim_hot.len;
}

static void run_live(int backend)
{
	struct damon_cgroup_summary sum = {.sz = sizeof(sum)};
	struct damon_backend_status bst = {.sz = sizeof(bst)};
	struct damon_hotness h = {.sz = sizeof(h)};
	struct report buf, forked, exiting;
	struct event joined, left, e;
	damon_target *members[8], *t = NULL;
	pid_t w, outsider;
	int rep[2], go[2], n;
	damon_ctx *ctx = NULL;
	damon_cgroup *cg = NULL;
	uint64_t t_first;
	DAMON_OPTS(damon_ctx_opts, o, .backend = (uint32_t)backend, .sample_us = 5000,
		   .aggr_us = 50000, .update_us = 100000, .log_fn = on_log);
	DAMON_OPTS(damon_cgroup_opts, co, .path = cg_dir);

	struct dm_sim_model model = {.accessed = sim_accessed};
	bool sim;

	damon_probe(DAMON_OPS_VADDR, getppid(), backend, &bst);
	sim = !bst.usable;
	if (sim)
		printf("\n  %s cannot run here (%s): simulated accesses\n  ",
		       damon_backend_name(backend), bst.reason);
	nr_events = 0;
	CU_ASSERT_FATAL(pipe2(rep, O_CLOEXEC) == 0 && pipe2(go, O_CLOEXEC) == 0);
	w = fork();
	CU_ASSERT_FATAL(w >= 0);
	if (!w) {
		close(rep[0]);
		close(go[1]);
		raise(SIGSTOP); /* until it is in the cgroup */
		worker(rep[1], go[0]);
	}
	close(go[0]);
	outsider = fork();
	if (!outsider) {
		for (;;)
			pause();
	}
	waitpid(w, NULL, WUNTRACED);
	EXPECT_EQ(write_pid(cg_dir, w), 0);
	kill(w, SIGCONT);
	buf = read_report(rep[0], 1);
	EXPECT_EQ(buf.pid, w);
	sim_hot = buf;

	CU_ASSERT_EQUAL_FATAL(damon_ctx_new(&ctx, &o), 0);
	EXPECT_EQ(damon_ctx_add_cgroup(ctx, &co, &cg), 0);
	CU_ASSERT_FATAL(cg != NULL);
	if (sim)
		dm_ctx_set_ops_override(ctx, &dm_ops_sim, &model, NULL);
	EXPECT_EQ(damon_ctx_start(ctx), 0);
	EXPECT_EQ(damon_ctx_backend(ctx), backend);
	n = damon_cgroup_members(cg, members, 8);
	EXPECT_EQ(n, 1);
	if (n == 1) {
		t = members[0];
		EXPECT_EQ(damon_target_pid(t), w);
		EXPECT(damon_target_cgroup(t) == cg, "the member names its cgroup");
	}
	EXPECT_EQ(damon_cgroup_members(cg, members, 0), -ERANGE);

	/* a fork inside: a new member, then its exit drops it */
	EXPECT_EQ(write(go[1], "f", 1), 1);
	forked = read_report(rep[0], 2);
	EXPECT(wait_event(forked.pid, true, 3000, &joined), "child %d never joined",
	       (int)forked.pid);
	n = damon_cgroup_members(cg, members, 8);
	for (int i = 0; i < n; i++)
		if (damon_target_pid(members[i]) == forked.pid)
			EXPECT_EQ(damon_target_idx(members[i]), joined.id);
	EXPECT_EQ(n, 2);
	t_first = first_snapshot_with(ctx, joined.id, 3000);
	EXPECT(t_first > 0, "no snapshot held target %u", joined.id);
	exiting = read_report(rep[0], 3);
	EXPECT(wait_event(forked.pid, false, 3000, &left), "child %d never left", (int)forked.pid);
	EXPECT_EQ(left.id, joined.id);
	printf("\n  %s%s: fork -> joined %.1f ms, fork -> first snapshot %.1f ms, "
	       "exit -> dropped %.1f ms (update_us 100 ms)\n  ",
	       damon_backend_name(backend), sim ? " (simulated)" : "",
	       (joined.t_ns - forked.t_ns) / 1e6, t_first ? (t_first - forked.t_ns) / 1e6 : -1.0,
	       (left.t_ns - exiting.t_ns) / 1e6);

	/* moved in, moved out */
	EXPECT_EQ(write_pid(cg_dir, outsider), 0);
	EXPECT(wait_event(outsider, true, 3000, &e), "process %d moved in never joined",
	       (int)outsider);
	EXPECT_EQ(write_pid(cg_root, outsider), 0);
	EXPECT(wait_event(outsider, false, 3000, &e), "process %d moved out never left",
	       (int)outsider);

	/*
	 * The worker's hot part, in its own target and in the cgroup's sum.
	 * Not under AddressSanitizer: the worker's address space then holds
	 * ASan's ~20 TB shadow, so vaddr's regions are tens of GB and a 4 MiB
	 * hot part is sampled too rarely to show within seconds (the build
	 * without sanitizers checks it).
	 */
	if (asan_build)
		printf("\n  (hot part not judged: AddressSanitizer build, %s)\n  ",
		       "the worker's layout includes ASan's shadow");
	if (t && !asan_build) {
		uint64_t end = dm_test_now_ms() + 5000;

		do {
			usleep(100000);
		} while ((damon_target_hotness(t, buf.addr, buf.len, &h) ||
			  h.access_rate_bp < 1000) &&
			 dm_test_now_ms() < end);
		EXPECT(h.access_rate_bp >= 1000, "the worker's written 4 MiB at %u bp",
		       h.access_rate_bp);
		EXPECT_EQ(damon_target_alive(t), 1);
	}
	EXPECT_EQ(damon_cgroup_summary(cg, NULL, &sum), 0);
	EXPECT_EQ(sum.nr_members, 1);
	EXPECT_EQ(sum.nr_joined, 3);
	EXPECT_EQ(sum.nr_left, 2);
	EXPECT((asan_build || sum.accessed_bytes >= 2 * MiB) && sum.bytes >= 16 * MiB,
	       "accessed %llu of %llu bytes", (unsigned long long)sum.accessed_bytes,
	       (unsigned long long)sum.bytes);
	EXPECT(asan_build || sum.access_rate_bp > 0, "cgroup access rate %u bp",
	       sum.access_rate_bp);

	EXPECT_EQ(damon_ctx_stop(ctx), 0);
	damon_ctx_unref(ctx);
	kill(w, SIGKILL);
	kill(outsider, SIGKILL);
	waitpid(w, NULL, 0);
	waitpid(outsider, NULL, 0);
	close(rep[0]);
	close(rep[1]);
	close(go[1]);
}

static void test_live(void)
{
	static const int backends[] = {DAMON_BACKEND_PAGE_IDLE, DAMON_BACKEND_SOFT_DIRTY};

	if (geteuid() || !find_cgroup2()) {
		printf("\n  needs root and a cgroup2 mount to make a cgroup: skipped\n  ");
		return;
	}
	snprintf(cg_dir, sizeof(cg_dir), "%s/libdamon-test-%d", cg_root, (int)getpid());
	if (mkdir(cg_dir, 0755)) {
		printf("\n  cannot make %s (%s): skipped\n  ", cg_dir, strerror(errno));
		cg_dir[0] = '\0';
		return;
	}
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		run_live(backends[i]);
	remove_cgroup();
}

int main(void)
{
	static const struct dm_test tests[] = {
		{"errors", test_errors},
		{"live: fork, exit, move in and out", test_live},
		{NULL},
	};

	atexit(remove_cgroup);
	return dm_test_run("cgroup", tests);
}
