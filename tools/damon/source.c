// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Where live snapshots come from: a libdamon context on a process (--pid,
 * or a command damon starts), driven here with DAMON_CTX_MANUAL so that no
 * snapshot is missed (one step publishes at most one); or, when only the
 * own-process backends (uffd_wp, fault) can watch the command, the agent
 * preloaded into it (agent.c), which sends its snapshots over a socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

#ifndef DAMON_AGENT_PATH
#define DAMON_AGENT_PATH "libdamon-agent.so"
#endif

struct source {
	struct record head;
	damon_ctx *ctx;	  /* outside */
	damon_cgroup *cg; /* --cgroup */
	damos *scheme;
	uint64_t last_seq, prev_end_ns, cpu_ns;
	pid_t child;
	int child_status; /* as waitpid's, valid once reaped */
	bool reaped;
	int sock; /* agent */
	char *in;
	size_t in_len, in_cap;
	struct rsnap cur; /* the agent's snapshot being received */
	size_t cur_left;
	bool cur_on, cur_stats;
	char why[512];
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void print_reasons(damon_ctx *ctx, pid_t pid)
{
	fprintf(stderr, "backends:\n");
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		struct damon_backend_status st = {.sz = sizeof(st)};

		if ((ctx ? damon_ctx_backend_status(ctx, b, &st)
			 : damon_probe(DAMON_OPS_VADDR, pid, b, &st)) == 0)
			fprintf(stderr, "  %-10s %s  %s\n", damon_backend_name(b),
				st.usable ? "usable " : "refused", st.reason);
	}
}

static void reap(struct source *s, bool wait)
{
	if (s->child <= 0 || s->reaped)
		return;
	if (waitpid(s->child, &s->child_status, wait ? 0 : WNOHANG) == s->child)
		s->reaped = true;
}

static void describe_exit(struct source *s)
{
	if (!s->reaped)
		return;
	if (WIFEXITED(s->child_status))
		snprintf(s->why, sizeof(s->why), "the command exited with status %d",
			 WEXITSTATUS(s->child_status));
	else if (WIFSIGNALED(s->child_status))
		snprintf(s->why, sizeof(s->why), "the command was killed by signal %d",
			 WTERMSIG(s->child_status));
}

/* ------------------------------------------------------------------------ */
/* Starting a command                                                       */
/* ------------------------------------------------------------------------ */

/* Where libdamon-agent.so is: $DAMON_AGENT, beside this executable (the
 * build tree), or where it was installed. */
static int agent_path(char *buf, size_t sz)
{
	const char *env = getenv("DAMON_AGENT");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(buf, sz, "%s", env);
		return access(buf, R_OK) ? -ENOENT : 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(buf, sz, "%s/libdamon-agent.so", exe) < (int)sz &&
			    !access(buf, R_OK))
				return 0;
		}
	}
	snprintf(buf, sz, "%s", DAMON_AGENT_PATH);
	return access(buf, R_OK) ? -ENOENT : 0;
}

/*
 * Fork the command; it waits for a byte on @go_r before it executes, so the
 * way to monitor it is decided first: 'a' gives it the agent's environment
 * (the socket @sock, @agent preloaded), 'o' runs it as it is. Return the pid
 * or -errno.
 */
static pid_t spawn(char **cmd, int go_r, int go_w, int sock, const char *agent,
		   const struct src_opts *o)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char c = 0, v[256];
		struct stat st;

		close(go_w);
		if (read(go_r, &c, 1) != 1 || (c != 'a' && c != 'o'))
			_exit(127);
		if (c == 'a' && !fstat(sock, &st)) {
			const char *orig = getenv("LD_PRELOAD");

			fcntl(sock, F_SETFD, 0); /* it must survive exec */
			snprintf(v, sizeof(v), "%d", sock);
			setenv("DAMON_AGENT_FD", v, 1);
			snprintf(v, sizeof(v), "%llu", (unsigned long long)st.st_ino);
			setenv("DAMON_AGENT_INO", v, 1);
			snprintf(v, sizeof(v), "%d", (int)getpid());
			setenv("DAMON_AGENT_PID", v, 1);
			snprintf(v, sizeof(v), "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u %u %u",
				 o->backend, o->sample_us, o->aggr_us, o->update_us,
				 o->min_nr_regions, o->max_nr_regions, o->budget, o->cold_min_age);
			setenv("DAMON_AGENT_OPTS", v, 1);
			setenv("DAMON_AGENT_PRELOAD", orig ? orig : "", 1);
			if (orig && *orig) {
				char *both;

				if (asprintf(&both, "%s:%s", agent, orig) > 0)
					setenv("LD_PRELOAD", both, 1);
			} else {
				setenv("LD_PRELOAD", agent, 1);
			}
		}
		execvp(cmd[0], cmd);
		fprintf(stderr, "damon: cannot execute %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Wait until the child has executed its program (or died): the write end
 * of @ex is CLOEXEC in the child, so reading it ends then. */
static void wait_exec(int ex_r)
{
	char c;

	while (read(ex_r, &c, 1) < 0 && errno == EINTR)
		;
}

/* Is a backend that watches another process usable for @pid? */
static bool outside_usable(pid_t pid, int backend)
{
	static const int outside[] = {DAMON_BACKEND_KERNEL, DAMON_BACKEND_PAGE_IDLE,
				      DAMON_BACKEND_SOFT_DIRTY};

	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		struct damon_backend_status st = {.sz = sizeof(st)};

		if (backend != DAMON_BACKEND_AUTO && backend != outside[i])
			continue;
		if (!damon_probe(DAMON_OPS_VADDR, pid, outside[i], &st) && st.usable)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* A context on a process                                                   */
/* ------------------------------------------------------------------------ */

static int open_ctx(struct source *s, const struct src_opts *o, pid_t pid)
{
	DAMON_OPTS(damon_ctx_opts, co, .ops = DAMON_OPS_VADDR, .backend = (uint32_t)o->backend,
		   .sample_us = o->sample_us, .aggr_us = o->aggr_us, .update_us = o->update_us,
		   .min_nr_regions = o->min_nr_regions, .max_nr_regions = o->max_nr_regions,
		   .cpu_budget_permille = o->budget, .flags = DAMON_CTX_MANUAL);
	struct damon_ctx_status st = {.sz = sizeof(st)};
	struct damon_backend_status bs = {.sz = sizeof(bs)};
	struct damon_attrs a = {.sz = sizeof(a)};
	int err;

	err = damon_ctx_new(&s->ctx, &co);
	if (err) {
		fprintf(stderr, "damon: the monitoring options were refused: %s\n", strerror(-err));
		return err;
	}
	if (o->cgroup) {
		DAMON_OPTS(damon_cgroup_opts, cgo, .path = o->cgroup);

		err = damon_ctx_add_cgroup(s->ctx, &cgo, &s->cg);
	} else {
		err = damon_ctx_add_target(s->ctx, pid, NULL);
	}
	if (!err && o->cold_min_age) {
		DAMOS_OPTS(so, .action = DAMOS_STAT, .max_nr_accesses = 0,
			   .min_age = o->cold_min_age);

		err = damon_ctx_add_scheme(s->ctx, &so, &s->scheme);
	}
	if (!err)
		err = damon_ctx_start(s->ctx);
	if (err) {
		if (o->cgroup)
			fprintf(stderr, "damon: cannot monitor cgroup %s: %s\n", o->cgroup,
				damon_ctx_errmsg(s->ctx));
		else
			fprintf(stderr, "damon: cannot monitor process %d: %s\n", (int)pid,
				damon_ctx_errmsg(s->ctx));
		print_reasons(s->ctx, pid);
		return err;
	}
	damon_ctx_status(s->ctx, &st);
	damon_ctx_get_attrs(s->ctx, &a);
	damon_ctx_backend_status(s->ctx, damon_ctx_backend(s->ctx), &bs);
	snprintf(s->head.backend, sizeof(s->head.backend), "%s",
		 damon_backend_name(damon_ctx_backend(s->ctx)));
	s->head.sees = bs.sees;
	s->head.sample_us = a.sample_us;
	s->head.aggr_us = a.aggr_us;
	s->head.update_us = a.update_us;
	return 0;
}

static void fill_snap(struct source *s, damon_snapshot *ds, struct rsnap *ret)
{
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damos_stats st = {.sz = sizeof(st)};
	size_t n = damon_snapshot_nr_regions(ds);

	damon_snapshot_info(ds, &info);
	*ret = (struct rsnap){.end_ns = info.time_ns,
			      .sample_us = info.sample_us,
			      .aggr_us = info.aggr_us,
			      .nr_samples = info.nr_samples,
			      .cpu_ns = s->cpu_ns};
	ret->start_ns = s->prev_end_ns ? s->prev_end_ns : info.time_ns - info.aggr_us * 1000;
	s->prev_end_ns = info.time_ns;
	ret->r = calloc(n ? n : 1, sizeof(*ret->r));
	for (size_t i = 0; ret->r && i < n; i++) {
		struct damon_region r = {.sz = sizeof(r)};

		if (damon_snapshot_region(ds, i, &r))
			continue;
		ret->r[ret->nr++] =
			(struct rregion){r.start, r.end, r.nr_accesses, r.age, r.target_idx};
	}
	if (s->scheme && !damos_get_stats(s->scheme, &st)) {
		ret->has_stats = true;
		ret->stats = (struct rstats){st.nr_tried, st.sz_tried, st.nr_applied, st.sz_applied,
					     st.qt_exceeds};
	}
}

static int ctx_next(struct source *s, int timeout_ms, struct rsnap *ret)
{
	uint64_t until = now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		struct pollfd p = {.fd = damon_ctx_fd(s->ctx), .events = POLLIN};
		uint64_t now = now_ns(), c0;
		damon_snapshot *ds = NULL;
		int n, err;

		if (dm_interrupted)
			return 0;
		n = poll(&p, 1, now >= until ? 0 : (int)((until - now) / 1000000 + 1));
		if (n < 0 && errno == EINTR)
			return 0;
		if (n <= 0)
			return 0;
		c0 = thread_cpu_ns();
		err = damon_ctx_step(s->ctx, NULL);
		s->cpu_ns += thread_cpu_ns() - c0;
		if (damon_ctx_snapshot(s->ctx, &ds) == 0) {
			struct damon_snapshot_info info = {.sz = sizeof(info)};

			damon_snapshot_info(ds, &info);
			if (info.seq != s->last_seq) {
				s->last_seq = info.seq;
				fill_snap(s, ds, ret);
				damon_snapshot_unref(ds);
				return ret->r ? 1 : -ENOMEM;
			}
			damon_snapshot_unref(ds);
		}
		if (err < 0) {
			struct damon_ctx_status st = {.sz = sizeof(st)};

			damon_ctx_status(s->ctx, &st);
			snprintf(s->why, sizeof(s->why), "%s",
				 st.message[0] ? st.message : damon_ctx_errmsg(s->ctx));
			reap(s, true);
			describe_exit(s);
			return -ESRCH;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* The agent's stream                                                       */
/* ------------------------------------------------------------------------ */

/* One line from the agent; 1 when a snapshot is complete in s->cur. */
static int agent_line(struct source *s, char *l)
{
	unsigned long long v[9];

	switch (l[0]) {
	case 'H': {
		char backend[32];
		unsigned int sees;

		if (sscanf(l, "H %31s %u %llu %llu %llu", backend, &sees, &v[0], &v[1], &v[2]) != 5)
			return -EPROTO;
		/* a new program image (exec) starts over: a partial snapshot is dropped */
		rsnap_free(&s->cur);
		s->cur_on = false;
		snprintf(s->head.backend, sizeof(s->head.backend), "%s", backend);
		s->head.sees = sees;
		s->head.sample_us = v[0];
		s->head.aggr_us = v[1];
		s->head.update_us = v[2];
		return 2;
	}
	case 'B':
		fprintf(stderr, "  %s\n", l + 2);
		return 0;
	case 'E':
		snprintf(s->why, sizeof(s->why), "%s",
			 strchr(l + 2, ' ') ? strchr(l + 2, ' ') + 1 : l);
		return -ECANCELED;
	case 'S': {
		int st;

		if (sscanf(l, "S %llu %llu %llu %llu %llu %llu %llu %d %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &st, &v[8]) != 9 ||
		    v[6] > (1ULL << 24))
			return -EPROTO;
		rsnap_free(&s->cur);
		s->cur = (struct rsnap){.end_ns = v[1],
					.sample_us = v[2],
					.aggr_us = v[3],
					.nr_samples = (uint32_t)v[5],
					.cpu_ns = v[8]};
		s->cur.start_ns = s->prev_end_ns && s->prev_end_ns < v[1] ? s->prev_end_ns
									  : v[1] - v[3] * 1000;
		s->cur.r = calloc(v[6] ? v[6] : 1, sizeof(*s->cur.r));
		if (!s->cur.r)
			return -ENOMEM;
		s->cur_left = v[6];
		s->cur_stats = st;
		s->cur_on = true;
		break;
	}
	case 'R':
		if (!s->cur_on || !s->cur_left ||
		    sscanf(l, "R %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4)
			return -EPROTO;
		s->cur.r[s->cur.nr++] =
			(struct rregion){v[0], v[1], (uint32_t)v[2], (uint32_t)v[3]};
		s->cur_left--;
		break;
	case 'D':
		if (!s->cur_on || s->cur_left ||
		    sscanf(l, "D %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4]) != 5)
			return -EPROTO;
		s->cur.has_stats = true;
		s->cur.stats = (struct rstats){v[0], v[1], v[2], v[3], v[4]};
		s->cur_stats = false;
		break;
	default:
		return -EPROTO;
	}
	if (s->cur_on && !s->cur_left && !s->cur_stats) {
		s->cur_on = false;
		s->prev_end_ns = s->cur.end_ns;
		return 1;
	}
	return 0;
}

/* Read and handle lines; 1: a snapshot is complete, 2: "H", 0: nothing
 * yet (timeout, signal), -ESRCH: the stream ended, or -errno. */
static int agent_next(struct source *s, int timeout_ms, struct rsnap *ret)
{
	for (;;) {
		char *nl = s->in_len ? memchr(s->in, '\n', s->in_len) : NULL;
		struct pollfd p = {.fd = s->sock, .events = POLLIN};
		ssize_t n;
		int r;

		if (nl) {
			size_t used = (size_t)(nl - s->in) + 1;

			*nl = '\0';
			r = agent_line(s, s->in);
			memmove(s->in, s->in + used, s->in_len - used);
			s->in_len -= used;
			if (r == 1) {
				*ret = s->cur;
				s->cur = (struct rsnap){0};
				return 1;
			}
			if (r == -EPROTO)
				snprintf(s->why, sizeof(s->why),
					 "the agent sent what damon cannot read");
			if (r)
				return r;
			continue;
		}
		if (dm_interrupted)
			return 0;
		r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			return 0;
		if (r <= 0)
			return r < 0 ? -errno : 0;
		if (s->in_cap - s->in_len < 4096) {
			char *b = realloc(s->in, s->in_cap * 2 + 65536);

			if (!b)
				return -ENOMEM;
			s->in = b;
			s->in_cap = s->in_cap * 2 + 65536;
		}
		n = read(s->sock, s->in + s->in_len, s->in_cap - s->in_len);
		if (n < 0 && errno == EINTR)
			return 0;
		if (n <= 0) {
			/* the process exited (or closed the socket): give it a moment to be reaped
			 */
			for (int i = 0; i < 200 && !s->reaped; i++) {
				reap(s, false);
				if (!s->reaped)
					usleep(10000);
			}
			snprintf(s->why, sizeof(s->why),
				 "the command closed its connection to damon");
			describe_exit(s);
			return -ESRCH;
		}
		s->in_len += (size_t)n;
	}
}

static int open_agent(struct source *s)
{
	struct rsnap none;
	int r;

	/* the agent says "H" once it monitors, or why it cannot */
	do
		r = agent_next(s, 10000, &none);
	while (r == 0 && !dm_interrupted && !s->why[0]);
	if (r == 2)
		return 0;
	if (r == 0 && !dm_interrupted)
		snprintf(s->why, sizeof(s->why), "the agent did not answer within 10 s");
	/* 127: it was never executed (said above by the child) */
	fprintf(stderr, "damon: cannot monitor the command through libdamon-agent.so: %s%s\n",
		r == -ESRCH && !(s->reaped && WIFEXITED(s->child_status) &&
				 WEXITSTATUS(s->child_status) == 127)
			? "it ended before the agent started (a static or setuid program "
			  "does not load it); "
			: "",
		s->why[0] ? s->why : "interrupted");
	return r < 0 && r != -ECANCELED ? r : -ECANCELED;
}

static int open_cmd(struct source *s, const struct src_opts *o)
{
	bool use_agent = o->backend == DAMON_BACKEND_UFFD_WP || o->backend == DAMON_BACKEND_FAULT;
	int go[2] = {-1, -1}, ex[2] = {-1, -1}, sp[2] = {-1, -1}, err = 0;
	char agent[PATH_MAX];
	bool have_agent = agent_path(agent, sizeof(agent)) == 0;

	if (pipe2(go, O_CLOEXEC) || pipe2(ex, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		err = -errno;
		goto out;
	}
	s->child = spawn(o->cmd, go[0], go[1], sp[1], agent, o);
	if (s->child < 0) {
		err = (int)s->child;
		s->child = 0;
		goto out;
	}
	close(ex[1]);
	ex[1] = -1;
	s->head.pid = s->child;
	if (!use_agent && o->backend == DAMON_BACKEND_AUTO)
		use_agent = !outside_usable(s->child, o->backend);
	if (use_agent && !have_agent) {
		fprintf(stderr,
			"damon: only the own-process backends can watch the command here, "
			"and libdamon-agent.so is not found (%s); set DAMON_AGENT\n",
			agent);
		err = -ENOENT;
		goto out; /* closing go[1] makes the child exit */
	}
	if (write(go[1], use_agent ? "a" : "o", 1) != 1) {
		err = -EPIPE;
		goto out;
	}
	wait_exec(ex[0]);
	if (use_agent) {
		s->sock = sp[0];
		sp[0] = -1;
		close(sp[1]);
		sp[1] = -1;
		err = open_agent(s);
	} else {
		err = open_ctx(s, o, s->child);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (ex[i] >= 0)
			close(ex[i]);
		if (sp[i] >= 0)
			close(sp[i]);
	}
	return err;
}

int src_open(struct source **ret, const struct src_opts *o)
{
	struct source *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	s->sock = -1;
	s->head.kdamond_idx = 0;
	s->head.context_idx = 0;
	if (o->cmd) {
		err = open_cmd(s, o);
	} else if (o->cgroup) {
		err = open_ctx(s, o, 0);
	} else {
		s->head.pid = o->pid;
		err = open_ctx(s, o, o->pid);
	}
	if (err) {
		src_close(s);
		return err;
	}
	if (!o->quiet && o->cgroup)
		fprintf(stderr, "damon: monitoring cgroup %s with the %s backend (sees %s)\n",
			o->cgroup, s->head.backend,
			s->head.sees == DAMON_SEES_WRITES ? "writes only" : "reads and writes");
	else if (!o->quiet)
		fprintf(stderr, "damon: monitoring %s %d with the %s backend (sees %s)\n",
			o->cmd ? "command, pid" : "pid", (int)s->head.pid, s->head.backend,
			s->head.sees == DAMON_SEES_WRITES ? "writes only" : "reads and writes");
	*ret = s;
	return 0;
}

int src_next(struct source *s, int timeout_ms, struct rsnap *ret)
{
	int r;

	if (s->ctx)
		return ctx_next(s, timeout_ms, ret);
	do
		r = agent_next(s, timeout_ms, ret);
	while (r == 2); /* a new image of the process: go on */
	return r == -ECANCELED ? -ESRCH : r;
}

const char *src_why(const struct source *s)
{
	return s->why[0] ? s->why : "monitoring ended";
}

pid_t src_target_pid(const struct source *s, uint32_t idx)
{
	damon_target *v[256];
	int n;

	if (!s->cg)
		return s->head.pid;
	n = damon_cgroup_members(s->cg, v, sizeof(v) / sizeof(v[0]));
	for (int i = 0; i < n; i++)
		if (damon_target_idx(v[i]) == (int)idx)
			return damon_target_pid(v[i]);
	return 0;
}

const struct record *src_head(const struct source *s)
{
	return &s->head;
}

int src_close(struct source *s)
{
	int status = 0;

	if (!s)
		return 0;
	s->ctx = damon_ctx_unref(s->ctx);
	if (s->sock >= 0)
		close(s->sock);
	if (s->child > 0) {
		reap(s, false);
		if (!s->reaped) {
			kill(s->child, SIGTERM);
			reap(s, true);
		}
		if (WIFEXITED(s->child_status))
			status = WEXITSTATUS(s->child_status);
		else if (WIFSIGNALED(s->child_status))
			status = 128 + WTERMSIG(s->child_status);
	}
	rsnap_free(&s->cur);
	free(s->in);
	free(s);
	return status;
}
