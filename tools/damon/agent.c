// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * libdamon-agent.so: damon(1) preloads it into a command it starts when the
 * only backends that can watch that command are those that monitor the
 * calling process (uffd_wp, fault): where soft-dirty, idle page tracking
 * and kernel DAMON are all missing or refused, a program can still be
 * watched from inside, without privilege.
 *
 * Its constructor reads what damon(1) put in the environment
 * (DAMON_AGENT_PID: the process to watch; DAMON_AGENT_FD and _INO: a socket
 * to damon; DAMON_AGENT_OPTS: backend and intervals). In that process it
 * starts a context with DAMON_CTX_MANUAL and drives it from one thread of
 * its own, which sends every snapshot to damon as text lines:
 *
 *   H backend sees sample_us aggr_us update_us      started
 *   B backend usable sees reason                     (start failed) a verdict
 *   E errno message                                  start failed
 *   S seq time_ns sample_us aggr_us max_nr_accesses nr_samples nr_regions has_stats cpu_ns
 *   R start end nr_accesses age                      nr_regions times
 *   D nr_tried sz_tried nr_applied sz_applied qt_exceeds   if has_stats
 *
 * The socket is closed when the process exits: damon then has every
 * snapshot that was complete. The environment stays, so when the process
 * executes another program (a shell running the last command of a
 * script), the agent loaded into the new image carries on with a new "H".
 * Other processes the command starts are not the target: a fork closes the
 * socket at once, and an agent loaded into another process closes its copy
 * (if it is still that socket: the inode tells), removes the variables and
 * itself from LD_PRELOAD, and does nothing else. Writes use MSG_NOSIGNAL:
 * if damon is gone the agent stops, the program goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

struct agent {
	int fd;
	unsigned long long opts[8]; /* DAMON_AGENT_OPTS */
	sem_t started;
	damon_ctx *ctx;
	damos *scheme;
	char *buf;
	size_t len, cap;
};

static struct agent agent = {.fd = -1};

__attribute__((format(printf, 2, 3))) static void put(struct agent *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(a->buf + a->len, a->cap - a->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (a->len + (size_t)n < a->cap)
			break;
		{
			size_t cap = (a->cap ? a->cap * 2 : 65536) + (size_t)n;
			char *b = realloc(a->buf, cap);

			if (!b)
				return;
			a->buf = b;
			a->cap = cap;
		}
	}
	a->len += (size_t)n;
}

static int send_buf(struct agent *a)
{
	size_t off = 0;

	while (off < a->len) {
		ssize_t n = send(a->fd, a->buf + off, a->len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	a->len = 0;
	return 0;
}

/* A sentence on one line. */
static const char *one_line(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return s;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void send_snapshot(struct agent *a, damon_snapshot *s)
{
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damos_stats st = {.sz = sizeof(st)};
	size_t n = damon_snapshot_nr_regions(s);
	bool stats = a->scheme && !damos_get_stats(a->scheme, &st);

	damon_snapshot_info(s, &info);
	put(a, "S %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u %zu %d %" PRIu64 "\n",
	    info.seq, info.time_ns, info.sample_us, info.aggr_us, info.max_nr_accesses,
	    info.nr_samples, n, stats, thread_cpu_ns());
	for (size_t i = 0; i < n; i++) {
		struct damon_region r = {.sz = sizeof(r)};

		if (damon_snapshot_region(s, i, &r))
			r = (struct damon_region){0};
		put(a, "R %" PRIu64 " %" PRIu64 " %u %u\n", r.start, r.end, r.nr_accesses, r.age);
	}
	if (stats)
		put(a, "D %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		    st.nr_tried, st.sz_tried, st.nr_applied, st.sz_applied, st.qt_exceeds);
}

static void *agent_main(void *arg)
{
	struct agent *a = arg;
	uint64_t last_seq = 0;

	for (;;) {
		struct pollfd p[2] = {{.fd = damon_ctx_fd(a->ctx), .events = POLLIN},
				      {.fd = a->fd, .events = POLLIN}};
		uint64_t next_us = 0;
		damon_snapshot *s = NULL;

		/* damon closing its end (POLLHUP, or data it never sends) ends us */
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		if (damon_ctx_step(a->ctx, &next_us) < 0)
			break; /* the monitor ended; closing the socket says so */
		if (damon_ctx_snapshot(a->ctx, &s) == 0) {
			struct damon_snapshot_info info = {.sz = sizeof(info)};

			damon_snapshot_info(s, &info);
			if (info.seq != last_seq) {
				last_seq = info.seq;
				send_snapshot(a, s);
				if (send_buf(a) < 0) {
					damon_snapshot_unref(s);
					break;
				}
			}
			damon_snapshot_unref(s);
		}
	}
	damon_ctx_stop(a->ctx);
	close(a->fd);
	a->fd = -1;
	return NULL;
}

/* A child of the command is not the target: it lets go of the socket. */
static void agent_atfork_child(void)
{
	if (agent.fd >= 0)
		close(agent.fd);
	agent.fd = -1;
}

/* Not the target: let go of damon's socket (if the fd still is that socket)
 * and keep the agent out of the programs this one runs. */
static bool is_damons(int fd)
{
	const char *ino_s = getenv("DAMON_AGENT_INO");
	struct stat st;

	return fd >= 0 && ino_s && !fstat(fd, &st) && S_ISSOCK(st.st_mode) &&
	       (unsigned long long)st.st_ino == strtoull(ino_s, NULL, 10);
}

static void let_go(int fd)
{
	const char *orig = getenv("DAMON_AGENT_PRELOAD");

	if (is_damons(fd))
		close(fd);
	if (orig && *orig)
		setenv("LD_PRELOAD", orig, 1);
	else
		unsetenv("LD_PRELOAD");
	unsetenv("DAMON_AGENT_PRELOAD");
	unsetenv("DAMON_AGENT_FD");
	unsetenv("DAMON_AGENT_INO");
	unsetenv("DAMON_AGENT_OPTS");
	unsetenv("DAMON_AGENT_PID");
}

static void refuse(struct agent *a, int err)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", damon_ctx_errmsg(a->ctx));
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		struct damon_backend_status st = {.sz = sizeof(st)};

		if (damon_ctx_backend_status(a->ctx, b, &st) == 0)
			put(a, "B %s %u %u %s\n", damon_backend_name(b), st.usable, st.sees,
			    one_line(st.reason));
	}
	put(a, "E %d %s\n", -err, one_line(msg));
	send_buf(a);
}

/*
 * Start the context on the agent's own thread: the monitor's overhead budget
 * counts the CPU time of the thread that drives it, from damon_ctx_start()
 * on, so start and steps must run on one thread. Return 0 once "H" is sent.
 */
static int agent_start(struct agent *a)
{
	unsigned long long *v = a->opts;
	struct damon_ctx_status st = {.sz = sizeof(st)};
	struct damon_backend_status bs = {.sz = sizeof(bs)};
	int err;

	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_VADDR, .backend = (uint32_t)v[0],
		   .sample_us = v[1], .aggr_us = v[2], .update_us = v[3],
		   .min_nr_regions = (uint32_t)v[4], .max_nr_regions = (uint32_t)v[5],
		   .cpu_budget_permille = (uint32_t)v[6], .flags = DAMON_CTX_MANUAL);
	err = damon_ctx_new(&a->ctx, &o);
	if (err) {
		put(a, "E %d the monitoring options were refused\n", -err);
		send_buf(a);
		return err;
	}
	err = damon_ctx_add_target(a->ctx, 0, NULL);
	if (!err && v[7]) {
		DAMOS_OPTS(so, .action = DAMOS_STAT, .max_nr_accesses = 0,
			   .min_age = (uint32_t)v[7]);

		err = damon_ctx_add_scheme(a->ctx, &so, &a->scheme);
	}
	if (!err)
		err = damon_ctx_start(a->ctx);
	if (err) {
		refuse(a, err);
		return err;
	}
	damon_ctx_status(a->ctx, &st);
	damon_ctx_backend_status(a->ctx, damon_ctx_backend(a->ctx), &bs);
	put(a, "H %s %u %" PRIu64 " %" PRIu64 " %llu\n",
	    damon_backend_name(damon_ctx_backend(a->ctx)), bs.sees, st.sample_us, st.aggr_us,
	    v[3] ? v[3] : 1000000ULL);
	return send_buf(a);
}

static void *agent_thread(void *arg)
{
	struct agent *a = arg;
	int err = agent_start(a);

	/* the program goes on once it is monitored, or once that failed */
	sem_post(&a->started);
	if (err) {
		a->ctx = damon_ctx_unref(a->ctx);
		close(a->fd);
		a->fd = -1;
		return NULL;
	}
	return agent_main(a);
}

__attribute__((constructor)) static void agent_init(void)
{
	const char *fd_s = getenv("DAMON_AGENT_FD"), *opts_s = getenv("DAMON_AGENT_OPTS");
	const char *pid_s = getenv("DAMON_AGENT_PID");
	unsigned long long *v = agent.opts;
	sigset_t all, old;
	pthread_t th;
	int err;

	if (!fd_s || !opts_s || !pid_s)
		return;
	if (atoi(pid_s) != (int)getpid()) {
		let_go(atoi(fd_s));
		return;
	}
	agent.fd = atoi(fd_s);
	if (!is_damons(agent.fd)) {
		/* the socket is gone (a failed start closed it; the program closed it) */
		agent.fd = -1;
		let_go(-1);
		return;
	}
	if (sscanf(opts_s, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) != 8 ||
	    sem_init(&agent.started, 0, 0)) {
		agent.fd = -1;
		return;
	}
	pthread_atfork(NULL, NULL, agent_atfork_child);
	/* the program's signals are its own: the agent's thread takes none */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&th, NULL, agent_thread, &agent);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		close(agent.fd);
		agent.fd = -1;
		return;
	}
	pthread_setname_np(th, "damon-agent");
	pthread_detach(th);
	while (sem_wait(&agent.started) && errno == EINTR)
		;
}
