/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * How a context's work gets run: on one library thread (named, every signal
 * blocked, sleeping in epoll_wait() between steps), or by the caller
 * through damon_ctx_step() (DAMON_CTX_MANUAL). Either way the monitor steps
 * under `lock`, which API calls that touch the monitor (commit, stop) take
 * too: a commit waits for at most one step.
 */
#ifndef DAMON_RUNNER_RUNNER_H
#define DAMON_RUNNER_RUNNER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Do due work; set *next_us; < 0 ends the thread. Called with lock held. */
typedef int (*dm_step_fn)(void *arg, uint64_t *next_us);

/* *next_us meaning "nothing is due until someone kicks" (a paused context):
 * the thread sleeps without a timeout; in manual mode the fd is disarmed. */
#define DM_RUNNER_IDLE UINT64_MAX

struct dm_runner {
	pthread_mutex_t lock;
	pthread_t thread;
	bool has_thread;
	bool stop_req;
	bool manual;
	/* thread: an eventfd; manual: an epoll set holding timer_fd and what
	 * the backend adds (the kernel's perf fd), one number for the
	 * context's life whatever joins or leaves it */
	int fd;
	/* when the next step is due: manual mode arms it (dm_runner_arm()),
	 * the thread before each wait */
	int timer_fd;
	/* thread: the epoll set it sleeps on (kick_fd, timer_fd and what the
	 * backend adds), and the eventfd that wakes it; -1 in manual mode */
	int wait_fd;
	int kick_fd;
	dm_step_fn step;
	void *arg;
	int end_code;         /* what ended the thread by itself, or 0 */
};

int dm_runner_init(struct dm_runner *r, bool manual);
/* Close the fd and free what init made. @forked: in a child after fork():
 * no thread exists here and the locks may be in any state; only close. */
void dm_runner_fini(struct dm_runner *r, bool forked);

/* Start the library thread (not in manual mode). */
int dm_runner_start(struct dm_runner *r, dm_step_fn step, void *arg);
/* Ask the thread to stop and join it. Call without holding lock. */
void dm_runner_stop(struct dm_runner *r);
/* Wake the thread so that it re-reads what is due (after a commit). Call
 * with lock held. */
void dm_runner_kick(struct dm_runner *r);

/*
 * The epoll set whose members wake whoever steps: manual mode's fd, or the
 * thread's own set. A backend adds an fd that turns readable when it has
 * work (the kernel's perf event), so that it is stepped then, not when a
 * timer guesses; it removes it before it ends.
 */
int dm_runner_wait_set(const struct dm_runner *r);

/* Thread mode: make the fd readable (a new snapshot). */
void dm_runner_notify(struct dm_runner *r);
/* Manual mode: make the fd readable in @next_us microseconds
 * (DM_RUNNER_IDLE: never, until armed again). */
void dm_runner_arm(struct dm_runner *r, uint64_t next_us);

#endif
