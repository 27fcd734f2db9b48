// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The soak bench: hours of a context's whole life, over and over, through
 * the public API only, while the process's RSS, open fds and threads are
 * watched. Not a test (it takes an hour): scripts/soak.sh runs it on the
 * host (uffd_wp) and in the VM (page_idle); doc/soak.md says what it checks.
 *
 * One cycle: a context is created (library thread or DAMON_CTX_MANUAL;
 * vaddr or fvaddr; random intervals and budget), given targets (this
 * process, or forked children monitored by pid) and schemes (with quotas,
 * goals, watermarks, filters), started; for 1-6 s a worker thread maps,
 * writes and unmaps memory, a reader thread reads snapshots and hotness,
 * and the driver commits new intervals, targets and schemes, pauses and
 * resumes, stops and starts again, forks children that exit or are
 * killed; then the context is stopped (or not: the last unref stops it,
 * sometimes on the reader's thread) and freed. Between cycles, with no
 * context alive, RSS, fds and threads are sampled.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"

#define ARENA_SZ    (32 * MiB)
#define MAX_KIDS    8
#define MAX_SCHEMES 8
#define HUNG_MS	    5000 /* a child this late to exit by itself is hung */

struct opts {
	double duration, interval, warmup, window;
	int backend;
	bool children; /* targets: forked children (else this process) */
	uint64_t rss_bound_kib;
	uint64_t seed;
};

struct run {
	const struct opts *o;
	damon_ctx *ctx;
	bool manual, running, paused;
	uint32_t ops;
	uint8_t *arena;
	struct soak_worker worker;
	struct soak_reader reader;
	struct soak_child kids[MAX_KIDS];
	size_t nr_kids;
	damos *schemes[MAX_SCHEMES];
	int goal[MAX_SCHEMES]; /* a user_input goal's index, or -1 */
	size_t nr_schemes;
	size_t nr_targets;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

/*
 * A crash prints where it happened before the process dies of it: an hour
 * into a run in the VM there is no debugger, only the console. Raw
 * addresses (the VM's binary is static): `addr2line -e tests/vm/soak`.
 */
static void on_crash(int sig)
{
	static const char head[] = "soak: crashed, backtrace:\n";
	void *frames[48];
	int n = backtrace(frames, 48);

	if (write(STDOUT_FILENO, head, sizeof(head) - 1) < 0)
		_exit(128 + sig);
	backtrace_symbols_fd(frames, n, STDOUT_FILENO);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_crashes(void)
{
	static char stack[64 * 1024];
	stack_t ss = {.ss_sp = stack, .ss_size = sizeof(stack)};
	struct sigaction sa = {.sa_handler = on_crash, .sa_flags = SA_ONSTACK | SA_RESETHAND};
	void *warm[1];

	backtrace(warm, 1); /* loads the unwinder now, not in the handler */
	sigaltstack(&ss, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
}

/*
 * Count @ret of @call on the context, where @code and -ESRCH are expected
 * when the targets are children: one that died makes a commit, pause,
 * resume, step, stop or start answer so. With this process as the target
 * every error is unexpected.
 */
static int child_ret(const struct run *r, enum soak_call call, int ret, int code)
{
	if (r->o->children)
		return soak_ret(call, ret, r->ctx, (const int[]){0, code, ESRCH}, 3);
	return soak_ret(call, ret, r->ctx, (const int[]){0}, 1);
}

/* ---- start, stop, commit ---- */

static int start(struct run *r)
{
	int ret = child_ret(r, SC_START, damon_ctx_start(r->ctx), ESRCH);

	r->running = ret == 0;
	r->paused = false;
	return ret;
}

static void stop(struct run *r)
{
	if (!r->running)
		return;
	child_ret(r, SC_STOP, damon_ctx_stop(r->ctx), EALREADY);
	r->running = r->paused = false;
}

/* Commit; when the monitor ended (every child gone), stop: that cleans up. */
static void commit(struct run *r)
{
	if (child_ret(r, SC_COMMIT, damon_ctx_commit(r->ctx), EALREADY) == -EALREADY)
		stop(r);
}

/* ---- children ---- */

/* Collect the children that ended. */
static void reap(struct run *r)
{
	for (size_t i = 0; i < r->nr_kids;) {
		struct soak_child *c = &r->kids[i];
		int status;

		if (waitpid(c->pid, &status, WNOHANG) != c->pid) {
			i++;
			continue;
		}
		soak_child_status(c, status);
		r->kids[i] = r->kids[--r->nr_kids];
	}
}

/* End of a cycle: wait for the children that end by themselves (one
 * HUNG_MS late is hung: counted, killed), kill the others, collect all. */
static void reap_all(struct run *r)
{
	for (size_t i = 0; i < r->nr_kids; i++)
		if (!r->kids[i].exit_at_ms && !r->kids[i].killed &&
		    kill(r->kids[i].pid, SIGKILL) == 0)
			r->kids[i].killed = true;
	while (r->nr_kids) {
		uint64_t now = soak_now_ms();

		for (size_t i = 0; i < r->nr_kids; i++) {
			struct soak_child *c = &r->kids[i];

			if (c->killed || now < c->exit_at_ms + HUNG_MS)
				continue;
			soak_unexpected(SC_CHILD, "child %d still runs %d ms after its end",
					(int)c->pid, HUNG_MS);
			if (kill(c->pid, SIGKILL) == 0)
				c->killed = true;
		}
		reap(r);
		if (r->nr_kids)
			soak_sleep_ms(5);
	}
}

static void kill_one(struct run *r)
{
	if (!r->nr_kids)
		return;
	struct soak_child *c = &r->kids[soak_between(0, r->nr_kids - 1)];

	if (!c->killed && kill(c->pid, SIGKILL) == 0)
		c->killed = true;
}

/* Fork a child; in children mode make it a target (committed if running). */
static void spawn(struct run *r)
{
	unsigned int life = soak_between(0, 2) ? (unsigned int)soak_between(100, 3000) : 0;
	struct soak_child *c;
	damon_target *t;
	pid_t pid;

	if (r->nr_kids == MAX_KIDS)
		return;
	pid = soak_child(r->ctx, r->arena, ARENA_SZ, life);
	if (pid < 0)
		return;
	c = &r->kids[r->nr_kids++];
	c->pid = pid;
	c->exit_at_ms = life ? soak_now_ms() + life : 0;
	c->killed = false;
	if (!r->o->children || r->nr_targets == SOAK_MAX_TARGETS)
		return;
	if (child_ret(r, SC_ADD_TARGET, damon_ctx_add_target(r->ctx, pid, &t), ESRCH) < 0)
		return;
	r->nr_targets++;
	soak_reader_add(&r->reader, t);
	if (r->running)
		commit(r);
}

/* ---- the context ---- */

static void random_attrs(struct damon_attrs *a)
{
	static const uint64_t samples[] = {1000, 2000, 5000, 10000};

	/* every field is taken as given: those of later versions (the
	 * intervals goal) zero, as DAMON_OPTS() would leave them */
	memset(a, 0, sizeof(*a));
	a->sz = sizeof(*a);
	a->sample_us = samples[soak_between(0, 3)];
	a->aggr_us = a->sample_us * soak_between(2, 20);
	a->update_us = a->aggr_us * soak_between(1, 10);
	a->min_nr_regions = (uint32_t)soak_between(3, 20);
	a->max_nr_regions = a->min_nr_regions * (uint32_t)soak_between(1, 50);
}

static void add_scheme(struct run *r)
{
	static const uint32_t actions[] = {DAMOS_STAT, DAMOS_STAT, DAMOS_WILLNEED, DAMOS_COLD};
	DAMOS_OPTS(o, .action = actions[soak_between(0, 3)], .flags = DAMOS_F_ALLOW_WRITES_ONLY);
	damos *s;
	size_t i = r->nr_schemes;

	if (i == MAX_SCHEMES)
		return;
	o.min_nr_accesses = (uint32_t)soak_between(0, 2);
	o.min_age = (uint32_t)soak_between(0, 5);
	if (o.action == DAMOS_COLD) {
		/* never accessed, for a while */
		o.min_nr_accesses = o.max_nr_accesses = 0;
		o.min_age = 3;
	}
	o.apply_interval_us = soak_between(0, 1) * soak_between(10, 500) * 1000;
	o.quota_bytes = soak_between(0, 1) * soak_between(1, 64) * MiB;
	o.quota_ms = soak_between(0, 1) * soak_between(1, 20);
	o.quota_reset_interval_ms = soak_between(10, 1000);
	o.weight_sz = (uint32_t)soak_between(0, 1000);
	o.weight_nr_accesses = (uint32_t)soak_between(0, 1000);
	o.weight_age = (uint32_t)soak_between(0, 1000);
	if (soak_between(0, 3) == 0) {
		/* free memory rate in permil: active (always above 0) or idle */
		bool active = soak_between(0, 1);

		o.wmarks_metric = DAMOS_WMARK_FREE_MEM_RATE;
		o.wmarks_interval_us = soak_between(10, 500) * 1000;
		o.wmarks_high = active ? 1000 : 1;
		o.wmarks_mid = active ? 999 : 0;
		o.wmarks_low = 0;
	}
	if (SOAK(SC_ADD_SCHEME, r->ctx, damon_ctx_add_scheme(r->ctx, &o, &s)) < 0)
		return;
	r->schemes[i] = s;
	r->goal[i] = -1;
	r->nr_schemes++;
	if (soak_between(0, 2) == 0) {
		DAMON_OPTS(damos_goal_opts, g, .metric = DAMOS_GOAL_USER_INPUT,
			   .target_value = 1000, .current_value = soak_between(0, 2000));
		r->goal[i] = SOAK(SC_ADD_GOAL, r->ctx, damos_add_goal(s, &g));
	}
	if (soak_between(0, 2) == 0) {
		DAMON_OPTS(damos_filter_opts, f, .type = DAMOS_FILTER_ADDR,
			   .matching = (uint32_t)soak_between(0, 1),
			   .allow = (uint32_t)soak_between(0, 1), .addr_start = (uintptr_t)r->arena,
			   .addr_end = (uintptr_t)r->arena + ARENA_SZ / 2);
		SOAK(SC_ADD_FILTER, r->ctx, damos_add_filter(s, &f));
	}
	/* the kernel's vaddr judges no page filter for these actions: refused */
	if (soak_between(0, 3) == 0 && r->o->backend != DAMON_BACKEND_KERNEL &&
	    r->o->backend != DAMON_BACKEND_AUTO) {
		DAMON_OPTS(damos_filter_opts, f, .type = DAMOS_FILTER_ANON, .matching = 1,
			   .allow = 1);
		SOAK(SC_ADD_FILTER, r->ctx, damos_add_filter(s, &f));
	}
}

static void look(struct run *r)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};
	struct damos_stats ds = {.sz = sizeof(ds)};
	struct damos_quota_state q = {.sz = sizeof(q)};

	if (SOAK(SC_STATUS, r->ctx, damon_ctx_status(r->ctx, &st)) == 0 && r->running &&
	    !st.running && !r->o->children)
		soak_unexpected(SC_STATUS, "the monitor of this process ended: %d %s", st.error,
				st.message);
	for (size_t i = 0; i < r->nr_schemes; i++) {
		SOAK(SC_STATS, r->ctx, damos_get_stats(r->schemes[i], &ds));
		SOAK(SC_STATS, r->ctx, damos_get_quota(r->schemes[i], &q));
		if (r->goal[i] >= 0)
			SOAK(SC_SET_GOAL, r->ctx,
			     damos_set_goal_current(r->schemes[i], (unsigned int)r->goal[i],
						    soak_between(0, 3000)));
	}
}

/* In manual mode, step whenever the fd says so for @ms; else wait. */
static void drive(struct run *r, unsigned int ms)
{
	uint64_t end = soak_now_ms() + ms, now;
	struct pollfd p = {.fd = damon_ctx_fd(r->ctx), .events = POLLIN};

	while ((now = soak_now_ms()) < end) {
		unsigned int left = (unsigned int)(end - now);

		reap(r);
		if (!r->manual || !r->running) {
			soak_sleep_ms(left < 10 ? left : 10);
			continue;
		}
		/* the monitor ended (every child gone): stop, which cleans up */
		if (poll(&p, 1, left < 10 ? (int)left : 10) == 1 &&
		    child_ret(r, SC_STEP, damon_ctx_step(r->ctx, NULL), EALREADY) < 0)
			stop(r);
	}
}

static void new_attrs(struct run *r)
{
	struct damon_attrs a;

	random_attrs(&a);
	SOAK(SC_SET_ATTRS, r->ctx, damon_ctx_set_attrs(r->ctx, &a));
}

/* Pause, wait, maybe commit, resume (or stay paused, to be stopped so). */
static void pause_resume(struct run *r)
{
	if (child_ret(r, SC_PAUSE, damon_ctx_pause(r->ctx), EINVAL) < 0) {
		stop(r);
		return;
	}
	r->paused = true;
	drive(r, (unsigned int)soak_between(20, 300));
	if (soak_between(0, 2) == 0) {
		new_attrs(r);
		commit(r);
	}
	if (!r->running || soak_between(0, 5) == 0)
		return;
	if (child_ret(r, SC_RESUME, damon_ctx_resume(r->ctx), EINVAL) < 0)
		stop(r);
	r->paused = false;
}

/* One of the things a context's user does while it runs. */
static void act(struct run *r)
{
	unsigned int what = (unsigned int)soak_between(0, 99);

	if (!r->running) {
		/* stopped, or the monitor ended: start again, with a new
		 * child when the targets are children */
		if (r->o->children)
			spawn(r);
		start(r);
		return;
	}
	if (what < 15) {
		new_attrs(r);
		commit(r);
	} else if (what < 28) {
		pause_resume(r);
	} else if (what < 38) {
		add_scheme(r);
		commit(r);
	} else if (what < 55) {
		spawn(r);
	} else if (what < 62) {
		kill_one(r);
	} else if (what < 68) {
		stop(r);
		if (soak_between(0, 1))
			new_attrs(r);
		if (r->o->children)
			spawn(r);
		start(r);
	} else if (what < 80) {
		look(r);
	}
}

/* ---- one cycle ---- */

static int open_ctx(struct run *r)
{
	static const uint32_t budgets[] = {0, 0, 50, 200};
	bool self_fault = r->o->backend == DAMON_BACKEND_FAULT;
	struct damon_attrs a;
	damon_target *t;

	random_attrs(&a);
	r->manual = soak_between(0, 1);
	/* fault samples by protection: fixed ranges keep its armed pages off
	 * the stacks and buffers of system calls */
	r->ops = !r->o->children && (self_fault || soak_between(0, 3) == 0) ? DAMON_OPS_FVADDR
									    : DAMON_OPS_VADDR;
	DAMON_OPTS(damon_ctx_opts, o, .ops = r->ops, .backend = (uint32_t)r->o->backend,
		   .sample_us = a.sample_us, .aggr_us = a.aggr_us, .update_us = a.update_us,
		   .min_nr_regions = a.min_nr_regions, .max_nr_regions = a.max_nr_regions,
		   .flags = r->manual ? DAMON_CTX_MANUAL : 0,
		   .cpu_budget_permille = budgets[soak_between(0, 3)], .log_fn = soak_log);
	if (SOAK(SC_NEW, NULL, damon_ctx_new(&r->ctx, &o)) < 0)
		return -1;
	r->nr_targets = r->nr_schemes = 0;
	r->running = r->paused = false;
	if (soak_reader_start(&r->reader, r->ctx, r->manual ? -1 : damon_ctx_fd(r->ctx),
			      (uintptr_t)r->arena, (uintptr_t)r->arena + ARENA_SZ) < 0)
		return -1;
	if (r->o->children) {
		for (unsigned int i = (unsigned int)soak_between(1, 3); i; i--)
			spawn(r);
	} else if (SOAK(SC_ADD_TARGET, r->ctx, damon_ctx_add_target(r->ctx, 0, &t)) == 0) {
		r->nr_targets++;
		soak_reader_add(&r->reader, t);
		if (r->ops == DAMON_OPS_FVADDR) {
			uintptr_t lo = (uintptr_t)r->arena, mid = lo + ARENA_SZ / 2;

			SOAK(SC_ADD_RANGE, r->ctx, damon_target_add_range(t, lo, mid - 4096));
			SOAK(SC_ADD_RANGE, r->ctx, damon_target_add_range(t, mid, lo + ARENA_SZ));
		}
	}
	for (unsigned int i = (unsigned int)soak_between(0, 2); i; i--)
		add_scheme(r);
	start(r);
	return 0;
}

/* End the cycle: stop or not, drop the context (on this thread or, the
 * reader's reference being the last, on the reader's), reap every child. */
static void close_ctx(struct run *r)
{
	unsigned int how = (unsigned int)soak_between(0, 3);

	if (how == 0)
		stop(r);
	soak_worker_stop(&r->worker);
	if (how == 1) {
		r->ctx = damon_ctx_unref(r->ctx);
		soak_reader_stop(&r->reader);
	} else {
		soak_reader_stop(&r->reader);
		r->ctx = damon_ctx_unref(r->ctx);
	}
	reap_all(r);
}

static void cycle(struct run *r, uint64_t soak_end_ms)
{
	uint64_t end = soak_now_ms() + soak_between(1000, 6000);

	if (end > soak_end_ms)
		end = soak_end_ms;
	r->arena = mmap(NULL, ARENA_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->arena == MAP_FAILED) {
		soak_unexpected(SC_NEW, "no memory for the arena");
		soak_sleep_ms(1000);
		return;
	}
	memset(&r->worker, 0, sizeof(r->worker));
	memset(&r->reader, 0, sizeof(r->reader));
	soak_worker_start(&r->worker, r->arena, ARENA_SZ);
	if (open_ctx(r) == 0) {
		while (soak_now_ms() < end && !interrupted) {
			act(r);
			drive(r, (unsigned int)soak_between(20, 300));
		}
	}
	close_ctx(r);
	munmap(r->arena, ARENA_SZ);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: soak [options]\n"
		"Cycles of a libdamon context's life (create, targets, schemes, start, commit,\n"
		"pause/resume, stop, free) with mappings and children coming and going, while\n"
		"the RSS, open fds and threads of this process are watched; a verdict at the end.\n"
		"  --duration S     seconds to run (default 3600)\n"
		"  --backend NAME   uffd_wp (default), page_idle, soft_dirty, fault, kernel, auto\n"
		"  --targets WHAT   self: this process's own mappings (children are forked but\n"
		"                   not monitored); children: forked children monitored by pid\n"
		"                   (default: self for uffd_wp and fault, else children)\n"
		"  --interval S     seconds between progress lines (default 60; 15 under 20 min)\n"
		"  --warmup S       seconds before the first window (default 10%%, <= 120)\n"
		"  --window S       length of the compared windows (default a third of what\n"
		"                   follows the warm-up, <= 600)\n"
		"  --rss-bound KIB  RSS growth allowed from the first window to the last\n"
		"                   (default 1024)\n"
		"  --seed N         random seed (default: from the clock; printed)\n"
		"Exit: 0 PASS, 1 FAIL, 2 bad usage, 77 the backend cannot run here.\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{"duration", required_argument, NULL, 'd'},
		{"backend", required_argument, NULL, 'b'},
		{"targets", required_argument, NULL, 't'},
		{"interval", required_argument, NULL, 'i'},
		{"warmup", required_argument, NULL, 'w'},
		{"window", required_argument, NULL, 'W'},
		{"rss-bound", required_argument, NULL, 'r'},
		{"seed", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *targets = NULL;
	int c;

	*o = (struct opts){.duration = 3600,
			   .backend = DAMON_BACKEND_UFFD_WP,
			   .interval = -1,
			   .warmup = -1,
			   .window = -1,
			   .rss_bound_kib = 1024};
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->duration = atof(optarg);
			break;
		case 'b':
			o->backend = damon_backend_from_name(optarg);
			break;
		case 't':
			targets = optarg;
			break;
		case 'i':
			o->interval = atof(optarg);
			break;
		case 'w':
			o->warmup = atof(optarg);
			break;
		case 'W':
			o->window = atof(optarg);
			break;
		case 'r':
			o->rss_bound_kib = strtoull(optarg, NULL, 0);
			break;
		case 's':
			o->seed = strtoull(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || o->backend < 0 || o->duration < 10 ||
	    (targets && strcmp(targets, "self") && strcmp(targets, "children"))) {
		fprintf(stderr, "soak: bad arguments (a known backend, --targets self|children, "
				"--duration of 10 s or more)\n");
		usage(stderr);
		return -1;
	}
	o->children =
		targets ? !strcmp(targets, "children")
			: o->backend != DAMON_BACKEND_UFFD_WP && o->backend != DAMON_BACKEND_FAULT;
	if (o->interval <= 0)
		o->interval = o->duration >= 1200 ? 60 : 15;
	if (o->warmup < 0)
		o->warmup = o->duration / 10 < 120 ? o->duration / 10 : 120;
	if (o->window <= 0)
		o->window =
			(o->duration - o->warmup) / 3 < 600 ? (o->duration - o->warmup) / 3 : 600;
	if (!o->seed) {
		/* the wall clock: a VM's monotonic clock starts anew each boot */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
		o->seed ^= (uint64_t)getpid() << 40;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct damon_backend_status st = {.sz = sizeof(st)};
	struct sigaction sa = {.sa_handler = on_signal};
	struct opts o;
	struct run r = {.o = &o};
	uint64_t t0, soak_end, cycles = 0;

	if (parse(argc, argv, &o) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	catch_crashes();
	printf("soak: libdamon %s, backend %s, targets %s, %.0f s, seed %llu, pid %d\n",
	       damon_version_string(), damon_backend_name(o.backend),
	       o.children ? "children (by pid)" : "this process", o.duration,
	       (unsigned long long)o.seed, (int)getpid());
	if (o.backend != DAMON_BACKEND_AUTO &&
	    (damon_probe(DAMON_OPS_VADDR, 0, o.backend, &st) < 0 || !st.usable)) {
		printf("soak: SKIP: %s cannot run here: %s\n", damon_backend_name(o.backend),
		       st.reason);
		return 77;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	soak_srand(o.seed);
	soak_report_init(&(struct soak_report_opts){.duration = o.duration,
						    .interval = o.interval,
						    .warmup = o.warmup,
						    .window = o.window,
						    .rss_bound_kib = o.rss_bound_kib});
	t0 = soak_now_ms();
	soak_end = t0 + (uint64_t)(o.duration * 1000);
	while (soak_now_ms() < soak_end && !interrupted) {
		cycle(&r, soak_end);
		soak_report_sample((double)(soak_now_ms() - t0) / 1000, ++cycles);
	}
	if (interrupted)
		printf("soak: interrupted\n");
	return soak_report_verdict((double)(soak_now_ms() - t0) / 1000, cycles);
}
