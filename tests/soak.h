/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The soak bench (soak.c): what its three files share. soak.c runs the
 * cycles, soak-work.c the load around a context (mappings that come and go,
 * children that fork and die, a thread reading results), soak-report.c
 * counts errors, samples RSS/fds/threads and judges the run.
 */
#ifndef DAMON_TESTS_SOAK_H
#define DAMON_TESTS_SOAK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <damon/damon.h>

#define KiB 1024ULL
#define MiB (1024 * KiB)

/* ---- soak-report.c: errors, samples, verdict ---- */

/* The calls whose results are counted. */
enum soak_call {
	SC_NEW,
	SC_ADD_TARGET,
	SC_ADD_RANGE,
	SC_START,
	SC_STOP,
	SC_COMMIT,
	SC_SET_ATTRS,
	SC_PAUSE,
	SC_RESUME,
	SC_STEP,
	SC_STATUS,
	SC_SNAPSHOT,
	SC_REGION,
	SC_HOTNESS,
	SC_ADD_SCHEME,
	SC_ADD_FILTER,
	SC_ADD_GOAL,
	SC_SET_GOAL,
	SC_STATS,
	SC_CHILD, /* a child that ended other than by exit(0) or our SIGKILL */
	SC_NR
};

/*
 * Count @ret of @call: >= 0 passes; an error among the @nr_ok codes in
 * @ok (positive errno values) is counted by name; any other is counted as
 * unexpected and printed with damon_ctx_errmsg(@ctx) (the first few).
 * Return: @ret. Safe from any thread.
 */
int soak_ret(enum soak_call call, int ret, const damon_ctx *ctx, const int *ok, size_t nr_ok);

/* SOAK(SC_X, ctx, expr, EAGAIN, ENOENT): soak_ret() with the codes listed. */
#define SOAK(call, ctx, expr, ...)                                       \
	soak_ret((call), (expr), (ctx), (const int[]){0, ##__VA_ARGS__}, \
		 sizeof((const int[]){0, ##__VA_ARGS__}) / sizeof(int))

/* An unexpected event that is not a call's result (a child's end). */
void soak_unexpected(enum soak_call call, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A snapshot the reader had not seen yet (counted: proof of monitoring). */
void soak_new_snapshot(void);

/* The log callback of every context: messages counted by level. */
void soak_log(damon_ctx *ctx, int level, const char *msg, void *userdata);

struct soak_report_opts {
	double duration;	/* seconds */
	double interval;	/* between progress lines */
	double warmup;		/* seconds before the first window */
	double window;		/* length of each compared window */
	uint64_t rss_bound_kib; /* allowed RSS growth, last window vs first */
};

/* Measure the baseline and print the header line. */
void soak_report_init(const struct soak_report_opts *o);

/* After cycle @cycles, with no context alive: record RSS, fds, threads;
 * print a progress line when one is due. @t: seconds since the start. */
void soak_report_sample(double t, uint64_t cycles);

/* Print the verdict table. Return: 0 (PASS) or 1 (FAIL). */
int soak_report_verdict(double t, uint64_t cycles);

/* ---- soak-work.c: the load ---- */

/* A small xorshift generator: the run is repeatable from its seed. */
uint64_t soak_rand(void);
void soak_srand(uint64_t seed);
/* Uniform in [lo, hi]. */
uint64_t soak_between(uint64_t lo, uint64_t hi);

/*
 * The arena: anonymous memory this process monitors (vaddr or fvaddr). The
 * worker thread writes it, replaces slots of it with fresh mappings
 * (mmap MAP_FIXED over them, one call: always mapped, so a child forked
 * at any moment may touch it), purges slots (MADV_DONTNEED, as allocators
 * do), and maps and unmaps loose mappings elsewhere, all while monitored.
 */
struct soak_worker {
	uint8_t *arena;
	size_t arena_sz, slot_sz;
	atomic_bool stop;
	pthread_t th;
	bool running;
};
int soak_worker_start(struct soak_worker *w, uint8_t *arena, size_t arena_sz);
void soak_worker_stop(struct soak_worker *w); /* joins; unmaps its loose mappings */

/*
 * The reader thread: snapshots (every region, info, one kept across
 * rounds), hotness of the arena and of every target, from another thread
 * than the one driving the context. It holds its own reference to the
 * context (taken before the thread starts); if the owner dropped its
 * reference first, the reader's unref is the last one and stops the context
 * there.
 */
#define SOAK_MAX_TARGETS 64
struct soak_reader {
	damon_ctx *ctx;
	int wake_fd;	 /* the library thread's eventfd, or -1 (manual) */
	uint64_t lo, hi; /* the arena */
	damon_target *targets[SOAK_MAX_TARGETS];
	atomic_size_t nr_targets; /* published after targets[] is written */
	atomic_bool stop;
	uint64_t last_seq; /* of the newest snapshot read */
	pthread_t th;
	bool running;
};
int soak_reader_start(struct soak_reader *r, damon_ctx *ctx, int wake_fd, uint64_t lo, uint64_t hi);
void soak_reader_add(struct soak_reader *r, damon_target *t);
void soak_reader_stop(struct soak_reader *r);

/*
 * Children. soak_child() forks one: it checks that the inherited context
 * (may be NULL) answers -ECHILD, sometimes drops it (damon_ctx_unref() in a
 * child only frees), sometimes forks a grandchild that writes and exits,
 * then maps memory, writes it, and remaps parts of it until @life_ms have
 * passed (exit 0) or forever (0: until SIGKILL).
 */
struct soak_child {
	pid_t pid;
	uint64_t exit_at_ms; /* when it should have exited by itself; 0: killed */
	bool killed;	     /* we sent SIGKILL */
};
pid_t soak_child(damon_ctx *inherited, uint8_t *arena, size_t arena_sz, unsigned int life_ms);
/* Judge a child's wait status (ours was SIGKILL if @killed). */
void soak_child_status(const struct soak_child *c, int status);

uint64_t soak_now_ms(void);
void soak_sleep_ms(unsigned int ms);

#endif
