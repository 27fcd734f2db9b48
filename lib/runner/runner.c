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
 * Manual mode's fd: an epoll set, readable while any member is. The timer
 * is a member from the start; backends add fds that turn readable when
 * there is work (the kernel backend's perf event, trace.c). epoll keeps
 * the caller's fd number when members come and go.
 */
static int manual_fds(struct dm_runner *r)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int err;

	r->fd = DM_FAIL(EMFILE) ? -1 : epoll_create1(EPOLL_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	r->timer_fd =
		DM_FAIL(EMFILE) ? -1 : timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0 ||
	    (DM_FAIL(ENOMEM) ? -1 : epoll_ctl(r->fd, EPOLL_CTL_ADD, r->timer_fd, &ev)) < 0) {
		err = -errno;
		if (r->timer_fd >= 0)
			close(r->timer_fd);
		close(r->fd);
		r->fd = r->timer_fd = -1;
		return err;
	}
	return 0;
}

int dm_runner_init(struct dm_runner *r, bool manual)
{
	pthread_condattr_t ca;
	int err;

	memset(r, 0, sizeof(*r));
	r->manual = manual;
	r->timer_fd = -1;
	if (manual) {
		err = manual_fds(r);
		if (err)
			return err;
	} else {
		r->fd = DM_FAIL(EMFILE) ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->fd < 0)
			return -errno;
	}
	err = pthread_mutex_init(&r->lock, NULL);
	if (err)
		goto fail_fd;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err)
		goto fail_lock;
	return 0;
fail_lock:
	pthread_mutex_destroy(&r->lock);
fail_fd:
	close(r->fd);
	r->fd = -1;
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	r->timer_fd = -1;
	return -err;
}

void dm_runner_fini(struct dm_runner *r, bool forked)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	r->timer_fd = -1;
	if (forked)
		return;
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
}

static void deadline(struct timespec *ts, uint64_t us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(us / 1000000);
	ts->tv_nsec += (long)(us % 1000000) * 1000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void *runner_main(void *arg)
{
	struct dm_runner *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop_req) {
		uint64_t next = 0;
		struct timespec ts;
		int err = r->step(r->arg, &next);

		if (err < 0) {
			r->end_code = err;
			break;
		}
		if (!next)
			continue;
		if (next == DM_RUNNER_IDLE) {
			/* paused: one wake-up (resume, commit, stop), no timer */
			if (!r->stop_req)
				pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		deadline(&ts, next);
		while (!r->stop_req &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &ts) == EINTR)
			;
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
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->has_thread = false;
}

void dm_runner_kick(struct dm_runner *r)
{
	pthread_cond_signal(&r->cond);
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
	struct itimerspec its = { 0 };

	if (next_us == DM_RUNNER_IDLE)
		next_us = 0; /* an all-zero it_value disarms */
	else if (!next_us)
		next_us = 1; /* 0 would disarm: due now means readable now */
	its.it_value.tv_sec = (time_t)(next_us / 1000000);
	its.it_value.tv_nsec = (long)(next_us % 1000000) * 1000;
	timerfd_settime(r->timer_fd, 0, &its, NULL);
}
