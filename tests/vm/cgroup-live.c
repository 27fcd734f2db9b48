// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * cgroup-live BACKEND — a cgroup v2 group followed by a context
 * (damon_ctx_add_cgroup()) on BACKEND (kernel, page_idle or soft_dirty),
 * in the guest.
 *
 * A worker in the cgroup writes 4 MiB of its 16 MiB over and over and forks
 * three children, one after the other, each writing 4 MiB of its own for
 * 3 s and exiting. The context runs with a CPU budget of one CPU: at the
 * default 2% the emulated guest stretches the user-space backends'
 * intervals many times over, and a child could come and go between two
 * snapshots. Checked: each child joins as a target and leaves
 * again (the log callback's sentences, damon_target_alive()), the worker
 * stays; the worker's hot 4 MiB reads hot in its target and the cgroup's
 * summary has accessed bytes. On the kernel backend members are written to
 * the kdamond at commits: nr_targets in sysfs follows the member count, the
 * kdamond keeps its pid (commits, not restarts), and the pids written are
 * the members'. Prints the time from each fork to its join, to the first
 * snapshot with its regions, and from each exit to its drop.
 * Exit 0 passed, 1 failed, 77 skipped (no cgroup v2, backend refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#define MiB	(1ul << 20)
#define CG	"/sys/fs/cgroup/libdamon-cgroup-live"
#define KCTX	"/sys/kernel/mm/damon/admin/kdamonds/0"
#define NR_KIDS 3

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* A small sysfs/cgroupfs number; -1 when unreadable. */
static long read_long(const char *path)
{
	char buf[64] = "";
	long v = -1;
	FILE *f = fopen(path, "re");

	if (f && fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int write_str(const char *path, const char *s)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fputs(s, f);
	return fclose(f) ? -errno : 0;
}

static void write_pages(volatile char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 4096)
		p[i]++;
}

struct report {
	pid_t pid;
	uint32_t kind; /* 1: the worker's hot buffer, 2: a child forked, 3: it exits */
	uint64_t addr, t_ns;
};

static void send_report(int fd, uint32_t kind, pid_t pid, void *addr)
{
	struct report r = {pid, kind, (uintptr_t)addr, now_ns()};

	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

/* The worker: hot 4 MiB; a child every 4.5 s that writes for 3 s and exits. */
static void worker(int out)
{
	char *buf =
		mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t next = now_ns() + 1500000000ull;
	int kids = 0;

	if (buf == MAP_FAILED)
		_exit(2);
	memset(buf, 1, 16 * MiB);
	send_report(out, 1, getpid(), buf);
	for (;;) {
		write_pages(buf, 4 * MiB);
		if (kids < NR_KIDS && now_ns() >= next) {
			pid_t kid = fork();

			if (kid == 0) {
				char *mine = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				uint64_t end = now_ns() + 3000000000ull;

				while (now_ns() < end) {
					write_pages(mine, 4 * MiB);
					usleep(2000); /* one vCPU: leave the kdamond some */
				}
				send_report(out, 3, getpid(), NULL);
				_exit(0);
			}
			send_report(out, 2, kid, NULL);
			kids++;
			next = now_ns() + 4500000000ull;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		usleep(2000);
	}
}

/* ------------------------------------------------------------------------ */

struct event {
	pid_t pid;
	int joined;
	uint32_t id;
	uint64_t t_ns;
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event events[64];
static int nr_events;
/* kernel backend: nr_targets in sysfs after each membership change */
static long max_nr_targets = -1, min_nr_targets = 1000;

static void on_log(damon_ctx *ctx, int level, const char *msg, void *ud)
{
	const char *p = strstr(msg, ": process "), *tid;
	struct event e = {.t_ns = now_ns()};

	if (level <= DAMON_LOG_WARNING)
		printf("cgroup-live: log: %s\n", msg);
	if (!p || !(tid = strstr(p, "target ")))
		return;
	e.pid = atoi(p + strlen(": process "));
	e.joined = strstr(p, " joined ") != NULL;
	e.id = (uint32_t)strtoul(tid + strlen("target "), NULL, 10);
	pthread_mutex_lock(&ev_lock);
	if (nr_events < 64)
		events[nr_events++] = e;
	pthread_mutex_unlock(&ev_lock);
}

static int find_event(pid_t pid, int joined, struct event *ret)
{
	int found = 0;

	pthread_mutex_lock(&ev_lock);
	for (int i = 0; i < nr_events && !found; i++)
		if (events[i].pid == pid && events[i].joined == joined) {
			*ret = events[i];
			found = 1;
		}
	pthread_mutex_unlock(&ev_lock);
	return found;
}

/* CLOCK_MONOTONIC of the newest snapshot when it holds target @id, else 0. */
static uint64_t snapshot_with(damon_ctx *ctx, uint32_t id)
{
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	damon_snapshot *s;
	int has = 0;

	if (damon_ctx_snapshot(ctx, &s))
		return 0;
	for (size_t i = 0; i < damon_snapshot_nr_regions(s) && !has; i++) {
		struct damon_region r = {.sz = sizeof(r)};

		has = !damon_snapshot_region(s, i, &r) && r.target_idx == id;
	}
	damon_snapshot_info(s, &info);
	damon_snapshot_unref(s);
	return has ? info.time_ns : 0;
}

static int ensure_cgroup2(void)
{
	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.procs", F_OK) &&
	    mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL))
		return -errno;
	if (mkdir(CG, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct damon_cgroup_summary sum = {.sz = sizeof(sum)};
	struct damon_hotness h = {.sz = sizeof(h)};
	uint64_t first_snap[NR_KIDS] = {0}, end;
	struct report hot = {0}, forks[NR_KIDS], exits[NR_KIDS];
	int backend, rep[2], nr_forks = 0, nr_exits = 0, fail = 0, rc;
	long kdamond_pid = -1;
	damon_target *members[8], *wt = NULL;
	damon_ctx *ctx = NULL;
	damon_cgroup *cg = NULL;
	char pidstr[32];
	pid_t w;
	DAMON_OPTS(damon_cgroup_opts, co, .path = CG);

	if (argc < 2 || (backend = damon_backend_from_name(argv[1])) <= 0) {
		fprintf(stderr, "usage: cgroup-live kernel|page_idle|soft_dirty\n");
		return 2;
	}
	rc = ensure_cgroup2();
	if (rc) {
		printf("cgroup-live: SKIP: no cgroup v2 at /sys/fs/cgroup: %s\n", strerror(-rc));
		return 77;
	}
	if (pipe2(rep, O_CLOEXEC))
		return 1;
	w = fork();
	if (w == 0) {
		raise(SIGSTOP);
		worker(rep[1]);
	}
	waitpid(w, NULL, WUNTRACED);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)w);
	if (write_str(CG "/cgroup.procs", pidstr)) {
		printf("cgroup-live: FAIL: cannot move %d into " CG "\n", (int)w);
		kill(w, SIGKILL);
		return 1;
	}
	kill(w, SIGCONT);
	if (read(rep[0], &hot, sizeof(hot)) != sizeof(hot) || hot.kind != 1) {
		printf("cgroup-live: FAIL: no word from the worker\n");
		kill(w, SIGKILL);
		return 1;
	}

	{
		DAMON_OPTS(damon_ctx_opts, o, .backend = (uint32_t)backend, .sample_us = 5000,
			   .aggr_us = 100000, .update_us = 200000, .cpu_budget_permille = 1000,
			   .log_fn = on_log);

		if (damon_ctx_new(&ctx, &o) || damon_ctx_add_cgroup(ctx, &co, &cg)) {
			printf("cgroup-live: FAIL: add_cgroup: %s\n", damon_ctx_errmsg(ctx));
			kill(w, SIGKILL);
			return 1;
		}
	}
	rc = damon_ctx_start(ctx);
	if (rc == -EOPNOTSUPP || rc == -EPERM) {
		printf("cgroup-live: SKIP: %s cannot run here: %s\n", argv[1],
		       damon_ctx_errmsg(ctx));
		kill(w, SIGKILL);
		return 77;
	}
	if (rc) {
		printf("cgroup-live: FAIL: start: %s\n", damon_ctx_errmsg(ctx));
		kill(w, SIGKILL);
		return 1;
	}
	if (damon_cgroup_members(cg, members, 8) != 1 || damon_target_pid(members[0]) != w) {
		printf("cgroup-live: FAIL: expected the worker %d as the one member\n", (int)w);
		fail = 1;
	} else {
		wt = members[0];
	}
	if (backend == DAMON_BACKEND_KERNEL)
		kdamond_pid = read_long(KCTX "/pid");

	/* follow the children until the last one has been dropped */
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	end = now_ns() + (uint64_t)(4 + NR_KIDS * 6) * 1000000000ull;
	while (now_ns() < end && !(nr_exits == NR_KIDS &&
				   find_event(exits[NR_KIDS - 1].pid, 0, &(struct event){0}))) {
		struct report r;
		struct event e;

		while (read(rep[0], &r, sizeof(r)) == sizeof(r)) {
			if (r.kind == 2 && nr_forks < NR_KIDS)
				forks[nr_forks++] = r;
			if (r.kind == 3 && nr_exits < NR_KIDS)
				exits[nr_exits++] = r;
		}
		for (int i = 0; i < nr_forks; i++)
			if (!first_snap[i] && find_event(forks[i].pid, 1, &e))
				first_snap[i] = snapshot_with(ctx, e.id);
		if (backend == DAMON_BACKEND_KERNEL) {
			long n = read_long(KCTX "/contexts/0/targets/nr_targets");

			if (n > max_nr_targets)
				max_nr_targets = n;
			if (n >= 0 && n < min_nr_targets)
				min_nr_targets = n;
		}
		usleep(5000);
	}

	for (int i = 0; i < NR_KIDS; i++) {
		struct event j = {0}, l = {0};
		int joined = i < nr_forks && find_event(forks[i].pid, 1, &j);
		int left = i < nr_exits && find_event(exits[i].pid, 0, &l);

		if (!joined || !left || j.id != l.id || !first_snap[i]) {
			printf("cgroup-live: FAIL: child %d: joined %d, left %d, in a snapshot "
			       "%d\n",
			       i < nr_forks ? (int)forks[i].pid : -1, joined, left,
			       first_snap[i] != 0);
			fail = 1;
			continue;
		}
		printf("cgroup-live: %s: child %d: fork -> joined %.1f ms, fork -> first snapshot "
		       "%.1f ms, exit -> dropped %.1f ms\n",
		       argv[1], (int)forks[i].pid, (j.t_ns - forks[i].t_ns) / 1e6,
		       (first_snap[i] - forks[i].t_ns) / 1e6, (l.t_ns - exits[i].t_ns) / 1e6);
	}
	if (wt) {
		uint64_t until = now_ns() + 5000000000ull;

		while ((damon_target_hotness(wt, hot.addr, 4 * MiB, &h) ||
			h.access_rate_bp < 500) &&
		       now_ns() < until)
			usleep(100000);
		printf("cgroup-live: worker's hot 4 MiB: %u bp\n", h.access_rate_bp);
		if (h.access_rate_bp < 500 || damon_target_alive(wt) != 1) {
			printf("cgroup-live: FAIL: expected the worker alive and hot\n");
			fail = 1;
		}
	}
	if (damon_cgroup_summary(cg, NULL, &sum) || sum.nr_members != 1 ||
	    sum.nr_joined != 1 + NR_KIDS || sum.nr_left != NR_KIDS ||
	    sum.accessed_bytes < 2 * MiB) {
		printf("cgroup-live: FAIL: summary: %u members, %llu joined, %llu left, %llu of "
		       "%llu "
		       "bytes accessed\n",
		       sum.nr_members, (unsigned long long)sum.nr_joined,
		       (unsigned long long)sum.nr_left, (unsigned long long)sum.accessed_bytes,
		       (unsigned long long)sum.bytes);
		fail = 1;
	} else {
		printf("cgroup-live: summary: %u member, %llu joined, %llu left, %llu of %llu "
		       "bytes "
		       "accessed, %u bp\n",
		       sum.nr_members, (unsigned long long)sum.nr_joined,
		       (unsigned long long)sum.nr_left, (unsigned long long)sum.accessed_bytes,
		       (unsigned long long)sum.bytes, sum.access_rate_bp);
	}
	if (backend == DAMON_BACKEND_KERNEL) {
		long kp = read_long(KCTX "/pid");
		long n = read_long(KCTX "/contexts/0/targets/nr_targets");
		long p0 = read_long(KCTX "/contexts/0/targets/0/pid_target");

		printf("cgroup-live: kernel: nr_targets %ld..%ld, now %ld (pid_target %ld); "
		       "kdamond "
		       "%ld -> %ld\n",
		       min_nr_targets, max_nr_targets, n, p0, kdamond_pid, kp);
		if (max_nr_targets != 2 || n != 1 || p0 != w || kp != kdamond_pid || kp <= 0) {
			printf("cgroup-live: FAIL: expected 1..2 targets committed, the worker's "
			       "pid left, and one kdamond throughout\n");
			fail = 1;
		}
	}
	damon_ctx_stop(ctx);
	damon_ctx_unref(ctx);
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	for (int i = 0; i < 100 && rmdir(CG) && errno == EBUSY; i++)
		usleep(20000);
	printf("cgroup-live: %s\n", fail ? "FAIL" : "PASS");
	return fail;
}
