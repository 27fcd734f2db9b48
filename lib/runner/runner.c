// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "../util/fail.h"

#define THREAD_NAME "damon-mon"

/*
 * An epoll set holding a fresh timerfd: manual mode's fd, or the thread's
 * wait set. Backends add fds that turn readable when there is work (the
 * kernel backend's perf event, trace.c); epoll keeps the set's number
 * when members come and go.
 */
static int timer_set(struct dm_runner *r, int *set)
{
	struct epoll_event ev = {.events = EPOLLIN};

	*set = DM_FAIL(EMFILE) ? -1 : epoll_create1(EPOLL_CLOEXEC);
	if (*set < 0)
		return -errno;
	r->timer_fd =
		DM_FAIL(EMFILE) ? -1 : timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0 ||
	    (DM_FAIL(ENOMEM) ? -1 : epoll_ctl(*set, EPOLL_CTL_ADD, r->timer_fd, &ev)) < 0)
		return -errno;
	return 0;
}

/* The thread's: the snapshot eventfd the caller polls, and a wait set
 * with a kick eventfd and the timer. */
static int thread_fds(struct dm_runner *r)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int err;

	r->fd = DM_FAIL(EMFILE) ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->fd < 0)
		return -errno;
	err = timer_set(r, &r->wait_fd);
	if (err)
		return err;
	r->kick_fd = DM_FAIL(EMFILE) ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->kick_fd < 0 ||
	    (DM_FAIL(ENOMEM) ? -1 : epoll_ctl(r->wait_fd, EPOLL_CTL_ADD, r->kick_fd, &ev)) < 0)
		return -errno;
	return 0;
}

static void close_fds(struct dm_runner *r)
{
	int *fds[] = {&r->fd, &r->timer_fd, &r->wait_fd, &r->kick_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int dm_runner_init(struct dm_runner *r, bool manual)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->manual = manual;
	r->fd = r->timer_fd = r->wait_fd = r->kick_fd = -1;
	err = manual ? timer_set(r, &r->fd) : thread_fds(r);
	if (!err)
		err = -pthread_mutex_init(&r->lock, NULL);
	if (err)
		close_fds(r);
	return err;
}

void dm_runner_fini(struct dm_runner *r, bool forked)
{
	close_fds(r);
	if (forked)
		return;
	pthread_mutex_destroy(&r->lock);
}

int dm_runner_wait_set(const struct dm_runner *r)
{
	return r->manual ? r->fd : r->wait_fd;
}

/* Arm the timer @us from now; DM_RUNNER_IDLE disarms it. */
static void set_timer(int fd, uint64_t us)
{
	struct itimerspec its = {0};

	if (us == DM_RUNNER_IDLE)
		us = 0; /* an all-zero it_value disarms */
	else if (!us)
		us = 1; /* 0 would disarm: due now means readable now */
	its.it_value.tv_sec = (time_t)(us / 1000000);
	its.it_value.tv_nsec = (long)(us % 1000000) * 1000;
	timerfd_settime(fd, 0, &its, NULL);
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return; /* EAGAIN: it was not this one that woke us */
}

/*
 * Step, then sleep until the timer, a kick (commit, resume, stop) or a
 * member the backend added wakes the thread. The lock is let go only while
 * it sleeps. A kick between the unlock and epoll_wait() is not lost: the
 * eventfd stays readable until drained.
 */
static void *runner_main(void *arg)
{
	struct dm_runner *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop_req) {
		struct epoll_event ev[4];
		uint64_t next = 0;
		int err = r->step(r->arg, &next);

		if (err < 0) {
			r->end_code = err;
			break;
		}
		if (!next)
			continue;
		/* paused (DM_RUNNER_IDLE): no timer, one kick wakes it */
		set_timer(r->timer_fd, next);
		pthread_mutex_unlock(&r->lock);
		while (epoll_wait(r->wait_fd, ev, 4, -1) < 0 && errno == EINTR)
			;
		pthread_mutex_lock(&r->lock);
		drain(r->kick_fd);
		drain(r->timer_fd);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int dm_runner_start(struct dm_runner *r, dm_step_fn step, void *arg)
{
	sigset_t all, old;
	int err;

	r->step = step;
	r->arg = arg;
	r->stop_req = false;
	r->end_code = 0;
	/* The thread inherits this mask: the application's signals go to
	 * its own threads, never to the monitor. Not the signals of a fault
	 * of the thread's own: blocked, they kill the process. The fault
	 * backend's sample pages are anywhere in the process, the monitor's
	 * own data included, and its SIGSEGV handler must resolve the
	 * monitor's touch of one as it does the application's. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = DM_FAIL(EAGAIN) ? EAGAIN : pthread_create(&r->thread, NULL, runner_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	pthread_setname_np(r->thread, THREAD_NAME);
	r->has_thread = true;
	return 0;
}

void dm_runner_stop(struct dm_runner *r)
{
	if (!r->has_thread)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop_req = true;
	dm_runner_kick(r);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->has_thread = false;
}

void dm_runner_kick(struct dm_runner *r)
{
	uint64_t one = 1;

	/* Non-blocking: a full counter already wakes the thread. */
	if (write(r->kick_fd, &one, sizeof(one)) < 0)
		return;
}

void dm_runner_notify(struct dm_runner *r)
{
	uint64_t one = 1;

	/* Non-blocking: a full counter already says "readable". */
	if (write(r->fd, &one, sizeof(one)) < 0)
		return;
}

void dm_runner_arm(struct dm_runner *r, uint64_t next_us)
{
	set_timer(r->timer_fd, next_us);
}
