// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The load around a soaked context: a worker thread that writes the arena
 * and maps and unmaps memory while it is monitored, a reader thread that
 * reads snapshots and hotness from another thread than the context's
 * driver, and children that fork, write, fork grandchildren and die.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"

#define PAGE	     4096
#define MAX_LOOSE    8
#define CHILD_ECHILD 3 /* a child's exit status: the inherited context did not say -ECHILD */
#define CHILD_NOMEM  4 /* a child could not map its memory */

/* ---- time and randomness ---- */

static _Thread_local uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

void soak_srand(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

uint64_t soak_rand(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

uint64_t soak_between(uint64_t lo, uint64_t hi)
{
	return lo + soak_rand() % (hi - lo + 1);
}

uint64_t soak_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void soak_sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One byte per page of [p, p + len), @stride pages apart. */
static void touch(uint8_t *p, size_t len, size_t stride)
{
	for (size_t off = 0; off < len; off += stride * PAGE)
		((volatile uint8_t *)p)[off]++;
}

/* ---- the worker ---- */

static void *worker_main(void *arg)
{
	struct soak_worker *w = arg;
	struct {
		void *p;
		size_t len;
	} loose[MAX_LOOSE] = {0};
	size_t nr_slots = w->arena_sz / w->slot_sz, next = 0;

	soak_srand((uint64_t)(uintptr_t)w ^ soak_now_ms());
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		uint8_t *slot = w->arena + soak_between(0, nr_slots - 1) * w->slot_sz;
		unsigned int what = (unsigned int)soak_between(0, 99);

		if (what < 60) {
			/* the hot part: the first quarter, most often */
			if (what < 40)
				touch(w->arena, w->arena_sz / 4, soak_between(1, 8));
			else
				touch(slot, w->slot_sz, soak_between(1, 8));
		} else if (what < 70) {
			/* a fresh mapping in place of a slot: one call, never a hole */
			if (mmap(slot, w->slot_sz, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED)
				touch(slot, w->slot_sz, 2);
		} else if (what < 75) {
			madvise(slot, w->slot_sz, MADV_DONTNEED);
		} else if (what < 90) {
			/* a loose mapping elsewhere, the oldest unmapped */
			size_t len = soak_between(16, 1024) * PAGE;
			void *p;

			if (loose[next].p)
				munmap(loose[next].p, loose[next].len);
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
				 0);
			loose[next].p = p == MAP_FAILED ? NULL : p;
			loose[next].len = len;
			if (loose[next].p)
				touch(p, len, 1);
			next = (next + 1) % MAX_LOOSE;
		} else {
			/* a write to a loose mapping, if any */
			size_t i = soak_between(0, MAX_LOOSE - 1);

			if (loose[i].p)
				touch(loose[i].p, loose[i].len, 4);
		}
		soak_sleep_ms((unsigned int)soak_between(1, 5));
	}
	for (size_t i = 0; i < MAX_LOOSE; i++)
		if (loose[i].p)
			munmap(loose[i].p, loose[i].len);
	return NULL;
}

int soak_worker_start(struct soak_worker *w, uint8_t *arena, size_t arena_sz)
{
	int err;

	w->arena = arena;
	w->arena_sz = arena_sz;
	w->slot_sz = arena_sz / 32;
	atomic_init(&w->stop, false);
	err = pthread_create(&w->th, NULL, worker_main, w);
	w->running = !err;
	return -err;
}

void soak_worker_stop(struct soak_worker *w)
{
	if (!w->running)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->th, NULL);
	w->running = false;
}

/* ---- the reader ---- */

static void read_snapshot(struct soak_reader *r, damon_snapshot **kept)
{
	struct damon_snapshot_info info = {.sz = sizeof(info)};
	struct damon_region reg = {.sz = sizeof(reg)};
	damon_snapshot *s;
	size_t n;

	if (SOAK(SC_SNAPSHOT, r->ctx, damon_ctx_snapshot(r->ctx, &s), EAGAIN) < 0)
		return;
	n = damon_snapshot_nr_regions(s);
	for (size_t i = 0; i < n; i++)
		SOAK(SC_REGION, r->ctx, damon_snapshot_region(s, i, &reg));
	/* one past the end: the documented -ERANGE, not counted as an error */
	if (damon_snapshot_region(s, n, &reg) != -ERANGE)
		soak_unexpected(SC_REGION, "region %zu of %zu: not -ERANGE", n, n);
	if (SOAK(SC_REGION, r->ctx, damon_snapshot_info(s, &info)) == 0 &&
	    info.seq != r->last_seq) {
		r->last_seq = info.seq;
		soak_new_snapshot();
	}
	/* keep one snapshot across rounds, from a reference of its own */
	if (soak_between(0, 3) == 0) {
		damon_snapshot_unref(*kept);
		*kept = damon_snapshot_ref(s);
	}
	damon_snapshot_unref(s);
}

static void read_hotness(struct soak_reader *r)
{
	struct damon_hotness h = {.sz = sizeof(h)};
	uint64_t len = r->hi - r->lo;
	uint64_t off = soak_between(0, len / PAGE - 1) * PAGE;
	size_t nr = atomic_load_explicit(&r->nr_targets, memory_order_acquire);

	SOAK(SC_HOTNESS, r->ctx, damon_ctx_hotness(r->ctx, r->lo, len, &h), EAGAIN, ENOENT);
	SOAK(SC_HOTNESS, r->ctx, damon_ctx_hotness(r->ctx, r->lo + off, PAGE, &h), EAGAIN, ENOENT);
	for (size_t i = 0; i < nr; i++)
		SOAK(SC_HOTNESS, r->ctx, damon_target_hotness(r->targets[i], 0, UINT64_MAX / 2, &h),
		     EAGAIN, ENOENT);
}

static void *reader_main(void *arg)
{
	struct soak_reader *r = arg;
	damon_snapshot *kept = NULL;
	struct pollfd p = {.fd = r->wake_fd, .events = POLLIN};

	soak_srand((uint64_t)(uintptr_t)r ^ soak_now_ms());
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		if (r->wake_fd >= 0) {
			uint64_t v;

			/* woken by each new snapshot (the library thread) */
			if (poll(&p, 1, 20) == 1 && read(r->wake_fd, &v, sizeof(v)) < 0)
				soak_sleep_ms(1);
		} else {
			soak_sleep_ms((unsigned int)soak_between(1, 10));
		}
		read_snapshot(r, &kept);
		read_hotness(r);
	}
	damon_snapshot_unref(kept);
	/* the last reference when the owner dropped its own first */
	damon_ctx_unref(r->ctx);
	return NULL;
}

int soak_reader_start(struct soak_reader *r, damon_ctx *ctx, int wake_fd, uint64_t lo, uint64_t hi)
{
	int err;

	r->ctx = damon_ctx_ref(ctx);
	r->wake_fd = wake_fd;
	r->lo = lo;
	r->hi = hi;
	atomic_init(&r->nr_targets, 0);
	atomic_init(&r->stop, false);
	r->last_seq = 0;
	err = pthread_create(&r->th, NULL, reader_main, r);
	r->running = !err;
	if (err)
		damon_ctx_unref(ctx);
	return -err;
}

void soak_reader_add(struct soak_reader *r, damon_target *t)
{
	size_t n = atomic_load_explicit(&r->nr_targets, memory_order_relaxed);

	if (n == SOAK_MAX_TARGETS)
		return;
	r->targets[n] = t;
	atomic_store_explicit(&r->nr_targets, n + 1, memory_order_release);
}

void soak_reader_stop(struct soak_reader *r)
{
	if (!r->running)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	r->running = false;
}

/* ---- children ---- */

static void __attribute__((noreturn))
child_main(damon_ctx *inherited, uint8_t *arena, size_t arena_sz, unsigned int life_ms)
{
	struct damon_ctx_status st = {.sz = sizeof(st)};
	uint64_t end = soak_now_ms() + life_ms;
	size_t len = soak_between(4, 16) * MiB;
	uint8_t *buf;

	soak_srand(soak_now_ms() ^ ((uint64_t)getpid() << 20));
	if (inherited) {
		if (damon_ctx_status(inherited, &st) != -ECHILD)
			_exit(CHILD_ECHILD);
		/* a child may drop what it inherited: it frees, touches nothing */
		if (soak_between(0, 1))
			damon_ctx_unref(inherited);
	}
	/* the parent's arena, copied on write, in the middle of its sampling */
	touch(arena, arena_sz, soak_between(8, 64));
	if (soak_between(0, 2) == 0) {
		pid_t g = fork();

		if (g == 0) {
			touch(arena, arena_sz / 4, 16);
			_exit(0);
		}
		if (g > 0)
			waitpid(g, NULL, 0);
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		_exit(CHILD_NOMEM);
	while (!life_ms || soak_now_ms() < end) {
		size_t piece = len / 8, at = soak_between(0, 7) * piece;

		touch(buf, len / 2, 1);
		if (soak_between(0, 9) == 0)
			mmap(buf + at, piece, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		soak_sleep_ms((unsigned int)soak_between(5, 30));
	}
	_exit(0);
}

pid_t soak_child(damon_ctx *inherited, uint8_t *arena, size_t arena_sz, unsigned int life_ms)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		child_main(inherited, arena, arena_sz, life_ms);
	return pid;
}

void soak_child_status(const struct soak_child *c, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (c->killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return;
	if (WIFEXITED(status))
		soak_unexpected(SC_CHILD, "child %d exited with %d%s", (int)c->pid,
				WEXITSTATUS(status),
				WEXITSTATUS(status) == CHILD_ECHILD
					? " (its inherited context did not answer -ECHILD)"
					: "");
	else if (WIFSIGNALED(status))
		soak_unexpected(
			SC_CHILD, "child %d died of signal %d%s", (int)c->pid, WTERMSIG(status),
			WTERMSIG(status) == SIGKILL ? " (we sent none: hung, killed late)" : "");
}
