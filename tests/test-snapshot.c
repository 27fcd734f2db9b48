// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Snapshot publishing under fire: readers in several threads and in a
 * signal handler (also one interrupting the publisher itself) hammer the
 * hotness latch while snapshots are published as fast as possible. Every
 * snapshot k is built so that any answer can be checked against k alone:
 * its regions all have access_rate_bp = k % 10001 and age = k, and their
 * number (hence bytes_covered) is a function of k that changes every time,
 * so that slots are regrown while readers read. A torn read shows up as a
 * mismatch. TSan cannot judge a seqcount latch; this test can.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "core/snapshot.h"

#define BASE 0x100000000ULL
#define REGION 0x10000ULL
#define PUBLISHES 20000

static struct dm_publisher pub;
static atomic_bool done;
static atomic_ulong answers, bad, eagain;
/* lock-free atomics: the handler runs on the publisher and a reader at once */
static atomic_int sig_answers, sig_bad;
static pthread_t publisher_thread;

static size_t regions_of(uint64_t k)
{
	return 50 + (k * 37) % 900;
}

static struct damon_snapshot *make(uint64_t k)
{
	size_t n = regions_of(k);
	struct damon_snapshot *s = dm_snapshot_new(NULL, 1, n);

	if (!s)
		return NULL;
	s->info.seq = k;
	s->targets[0].id = 7;
	s->targets[0].first = 0;
	s->targets[0].nr = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		s->regions[i].start = BASE + i * REGION;
		s->regions[i].end = BASE + (i + 1) * REGION;
		s->regions[i].access_rate_bp = (uint32_t)(k % 10001);
		s->regions[i].age = (uint32_t)k;
	}
	return s;
}

/* Is @h exactly what snapshot h->snapshot_seq says? */
static bool consistent(const struct damon_hotness *h)
{
	uint64_t k = h->snapshot_seq;

	return h->access_rate_bp == k % 10001 && h->min_age == k && h->max_age == k &&
	       h->bytes_covered == regions_of(k) * REGION;
}

static int ask(struct damon_hotness *h)
{
	h->sz = sizeof(*h);
	return dm_publisher_hotness(&pub, 7, BASE, 1ULL << 40, h);
}

static void on_signal(int sig)
{
	struct damon_hotness h;
	int saved = errno, err = ask(&h);

	(void)sig;
	if (err == 0) {
		atomic_fetch_add(&sig_answers, 1);
		if (!consistent(&h))
			atomic_fetch_add(&sig_bad, 1);
	} else if (err != -EAGAIN) {
		atomic_fetch_add(&sig_bad, 1);
	}
	errno = saved; /* a handler leaves errno as it found it */
}

static void *reader(void *arg)
{
	uint64_t last = 0;

	while (!atomic_load(&done)) {
		struct damon_hotness h;
		int err = ask(&h);

		if (err == -EAGAIN) {
			atomic_fetch_add(&eagain, 1);
			continue;
		}
		atomic_fetch_add(&answers, 1);
		if (err || !consistent(&h) || h.snapshot_seq < last) {
			if (atomic_fetch_add(&bad, 1) < 5)
				fprintf(stderr, "\n  bad answer: err %d seq %llu rate %u ages %u..%u "
					"covered %llu (want rate %llu covered %llu)\n",
					err, (unsigned long long)h.snapshot_seq, h.access_rate_bp,
					h.min_age, h.max_age, (unsigned long long)h.bytes_covered,
					(unsigned long long)(h.snapshot_seq % 10001),
					(unsigned long long)(regions_of(h.snapshot_seq) * REGION));
		}
		last = h.snapshot_seq;
	}
	return NULL;
}

/* Interrupts the publisher thread and the readers with signals whose
 * handler reads too. */
static void *signaller(void *arg)
{
	pthread_t *readers = arg;
	struct timespec ts = { 0, 20000 };

	while (!atomic_load(&done)) {
		pthread_kill(publisher_thread, SIGUSR1);
		pthread_kill(readers[0], SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void test_latch_stress(void)
{
	pthread_t readers[3], sig;
	struct sigaction sa;
	struct damon_hotness h = { .sz = sizeof(h) };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	publisher_thread = pthread_self();

	CU_ASSERT_EQUAL_FATAL(dm_publisher_init(&pub, NULL), 0);
	CU_ASSERT_EQUAL(dm_publisher_hotness(&pub, 7, BASE, 4096, &h), -EAGAIN);
	CU_ASSERT_EQUAL_FATAL(dm_publisher_publish(&pub, make(1)), 0);
	for (int i = 0; i < 3; i++)
		pthread_create(&readers[i], NULL, reader, NULL);
	pthread_create(&sig, NULL, signaller, readers);
	for (uint64_t k = 2; k <= PUBLISHES; k++)
		CU_ASSERT_EQUAL_FATAL(dm_publisher_publish(&pub, make(k)), 0);
	atomic_store(&done, true);
	for (int i = 0; i < 3; i++)
		pthread_join(readers[i], NULL);
	pthread_join(sig, NULL);
	signal(SIGUSR1, SIG_IGN);

	printf("\n  %lu thread answers, %d signal-handler answers, %lu EAGAIN\n",
	       (unsigned long)atomic_load(&answers), atomic_load(&sig_answers),
	       (unsigned long)atomic_load(&eagain));
	CU_ASSERT(atomic_load(&answers) > 1000);
	CU_ASSERT(atomic_load(&sig_answers) > 10);
	CU_ASSERT_EQUAL(atomic_load(&bad), 0);
	CU_ASSERT_EQUAL(atomic_load(&sig_bad), 0);

	/* The newest is what a plain read gets now. */
	CU_ASSERT_EQUAL(ask(&h), 0);
	CU_ASSERT_EQUAL(h.snapshot_seq, PUBLISHES);
	dm_publisher_fini(&pub);
}

static void test_hotness_edges(void)
{
	struct damon_snapshot *s;
	struct damon_hotness h = { .sz = sizeof(h) };

	dm_publisher_init(&pub, NULL);
	s = dm_snapshot_new(NULL, 2, 3);
	s->info.seq = 1;
	s->targets[0] = (struct dm_snap_target){ .id = 1, .first = 0, .nr = 2 };
	s->targets[1] = (struct dm_snap_target){ .id = 2, .first = 2, .nr = 1 };
	s->regions[0] = (struct dm_snap_region){ .start = 0x1000, .end = 0x3000,
						 .access_rate_bp = 10000, .age = 4 };
	s->regions[1] = (struct dm_snap_region){ .start = 0x5000, .end = 0x6000,
						 .access_rate_bp = 0, .age = 9 };
	s->regions[2] = (struct dm_snap_region){ .start = 0x1000, .end = 0x2000,
						 .access_rate_bp = 5000, .age = 1 };
	dm_publisher_publish(&pub, s);

	/* Half of the range hot, a hole, a cold page: size-weighted. */
	CU_ASSERT_EQUAL(dm_publisher_hotness(&pub, 1, 0x2000, 0x5000, &h), 0);
	CU_ASSERT_EQUAL(h.bytes_covered, 0x2000);
	CU_ASSERT_EQUAL(h.access_rate_bp, 5000);
	CU_ASSERT_EQUAL(h.min_age, 4);
	CU_ASSERT_EQUAL(h.max_age, 9);
	/* First target when asked for UINT32_MAX. */
	CU_ASSERT_EQUAL(dm_publisher_hotness(&pub, UINT32_MAX, 0x1000, 0x1000, &h), 0);
	CU_ASSERT_EQUAL(h.access_rate_bp, 10000);
	/* Overlapping address ranges of two targets stay apart. */
	CU_ASSERT_EQUAL(dm_publisher_hotness(&pub, 2, 0x1000, 0x1000, &h), 0);
	CU_ASSERT_EQUAL(h.access_rate_bp, 5000);
	/* Nothing monitored there; a target not in the snapshot. */
	CU_ASSERT_EQUAL(dm_publisher_hotness(&pub, 1, 0x3000, 0x2000, &h), -ENOENT);
	CU_ASSERT_EQUAL(dm_publisher_hotness(&pub, 3, 0x1000, 0x1000, &h), -ENOENT);
	dm_publisher_fini(&pub);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "hotness answers come from one snapshot", test_latch_stress },
		{ "hotness arithmetic and edges", test_hotness_edges },
		{ NULL, NULL },
	};

	return dm_test_run("snapshot", tests);
}
