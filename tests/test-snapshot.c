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

#include "core/rng.h"
#include "core/snapshot.h"

#define BASE 0x100000000ULL
#define REGION 0x10000ULL
#define PUBLISHES 20000

static struct dm_publisher pub;
static atomic_bool done;
static atomic_ulong answers, bad, eagain;
static volatile sig_atomic_t sig_answers, sig_bad;
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
	int err = ask(&h);

	(void)sig;
	if (err == 0) {
		sig_answers++;
		if (!consistent(&h))
			sig_bad++;
	} else if (err != -EAGAIN) {
		sig_bad++;
	}
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
	       (unsigned long)atomic_load(&answers), (int)sig_answers,
	       (unsigned long)atomic_load(&eagain));
	CU_ASSERT(atomic_load(&answers) > 1000);
	CU_ASSERT(sig_answers > 10);
	CU_ASSERT_EQUAL(atomic_load(&bad), 0);
	CU_ASSERT_EQUAL(sig_bad, 0);

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

/* ---- the indexed lookup against a plain scan ---------------------------- */

static struct dm_rng rng;

/* 0 .. n-1 */
static uint64_t rnd_below(uint64_t n)
{
	return dm_rng_range(&rng, 0, n);
}

/* Bytes region @r shares with [addr, end). */
static uint64_t overlap(const struct dm_snap_region *r, uint64_t addr, uint64_t end)
{
	uint64_t lo = r->start > addr ? r->start : addr, hi = r->end < end ? r->end : end;

	return hi > lo ? hi - lo : 0;
}

/* A region's accesses weighed by the KiB it shares with the range. */
static uint64_t weight(uint64_t bytes, uint32_t count)
{
	return (bytes >> 10) * count;
}

/* What a hotness answer is, computed the plainest way, one quantity at a
 * time over every region of the target. */
static int reference(const struct damon_snapshot *s, uint32_t target_id, uint64_t addr,
		     uint64_t len, struct damon_hotness *h)
{
	const struct dm_snap_region *v;
	uint64_t end = addr + len, covered = 0, all = 0, writes = 0;
	unsigned __int128 weighted = 0;
	int32_t nodes[8];
	uint32_t t = 0, n, nr_nodes = 0;
	bool writes_known = true, nodes_known = true, cpus_known = true;

	if (!s->nr_targets)
		return -EAGAIN;
	while (target_id != UINT32_MAX && t < s->nr_targets && s->targets[t].id != target_id)
		t++;
	if (t == s->nr_targets)
		return -ENOENT;
	v = &s->regions[s->targets[t].first];
	n = s->targets[t].nr;
	memset(h, 0, sizeof(*h));
	h->min_age = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t b = overlap(&v[i], addr, end);

		if (!b)
			continue;
		covered += b;
		weighted += (unsigned __int128)b * v[i].access_rate_bp;
		h->min_age = v[i].age < h->min_age ? v[i].age : h->min_age;
		h->max_age = v[i].age > h->max_age ? v[i].age : h->max_age;
		all += weight(b, v[i].nr_accesses);
		if (v[i].write_bp == DAMON_UNKNOWN || v[i].nr_writes == DAMON_UNKNOWN)
			writes_known = false;
		writes += weight(b, v[i].nr_writes);
		if (v[i].nr_cpus == DAMON_UNKNOWN)
			cpus_known = false;
		else
			h->cpus |= v[i].cpus;
		if (v[i].node < 0 && v[i].node_bp == DAMON_UNKNOWN)
			nodes_known = false;
	}
	if (!covered)
		return -ENOENT;
	h->access_rate_bp = (uint32_t)(weighted / covered);
	h->bytes_covered = covered;
	h->snapshot_seq = s->info.seq;
	h->write_bp = DAMON_UNKNOWN;
	if (writes_known)
		h->write_bp = all ? (uint32_t)(writes * 10000 / all) : 0;
	if (writes_known && h->write_bp > 10000)
		h->write_bp = 10000;
	if (!cpus_known)
		h->cpus = 0;
	h->nr_cpus = cpus_known ? (uint32_t)__builtin_popcountll(h->cpus) : DAMON_UNKNOWN;
	/* The node that made most accesses, among the first eight met with
	 * some (the first of equals); its share of a region's accesses is
	 * node_bp of them, rounded down. */
	h->node = -1;
	h->node_bp = nodes_known ? 0 : DAMON_UNKNOWN;
	for (uint32_t i = 0; nodes_known && i < n; i++) {
		uint32_t k = 0;

		if (v[i].node < 0 || !weight(overlap(&v[i], addr, end), v[i].nr_accesses))
			continue;
		while (k < nr_nodes && nodes[k] != v[i].node)
			k++;
		if (k == nr_nodes && nr_nodes < 8)
			nodes[nr_nodes++] = v[i].node;
	}
	for (uint32_t k = 0; k < nr_nodes; k++) {
		uint64_t share = 0;
		uint32_t bp;

		for (uint32_t i = 0; i < n; i++) {
			uint64_t acc = weight(overlap(&v[i], addr, end), v[i].nr_accesses);

			if (v[i].node == nodes[k])
				share += acc / 10000 * v[i].node_bp + acc % 10000 * v[i].node_bp / 10000;
		}
		bp = all ? (uint32_t)(share * 10000 / all) : 0;
		if (h->node < 0 || bp > h->node_bp) {
			h->node = nodes[k];
			h->node_bp = bp;
		}
	}
	return 0;
}

/* A region length: mostly pages, sometimes under 1 KiB (weighs no
 * access), sometimes past 256 MiB (the general arithmetic). */
static uint64_t rnd_len(void)
{
	switch (rnd_below(10)) {
	case 0:
		return 1 + rnd_below(1500);
	case 1:
		return (1ULL << 28) + rnd_below(1ULL << 32);
	default:
		return 4096 * (1 + rnd_below(64));
	}
}

/* Regions of @nr_targets targets, @per_target[t] each, sorted and apart
 * within a target (adjacent or with gaps), targets overlapping each other
 * in address. @who: 0 all unknown (as kernel, page_idle), 1 writes known
 * (uffd_wp), 2 everything known (fault), 3 a mix. */
static struct damon_snapshot *random_snapshot(uint64_t seq, uint32_t nr_targets,
					      const size_t *per_target, int who)
{
	size_t total = 0, k = 0;
	struct damon_snapshot *s;

	for (uint32_t t = 0; t < nr_targets; t++)
		total += per_target[t];
	s = dm_snapshot_new(NULL, nr_targets, total);
	if (!s)
		return NULL;
	s->info.seq = seq;
	for (uint32_t t = 0; t < nr_targets; t++) {
		uint64_t at = BASE + rnd_below(4) * 0x10000;

		s->targets[t] = (struct dm_snap_target){ .id = 10 + t * 3, .first = (uint32_t)k,
							 .nr = (uint32_t)per_target[t] };
		for (size_t i = 0; i < per_target[t]; i++, k++) {
			struct dm_snap_region *r = &s->regions[k];
			int w = who == 3 ? (int)rnd_below(3) : who;

			if (rnd_below(3) == 0)
				at += rnd_len(); /* a gap */
			r->start = at;
			r->end = at += rnd_len();
			/* now and then counts whose products overflow 64 bits */
			r->nr_accesses = (uint32_t)(rnd_below(20) ? rnd_below(21)
								 : rnd_below(DAMON_UNKNOWN));
			r->access_rate_bp = (uint32_t)rnd_below(10001);
			r->age = (uint32_t)rnd_below(1000);
			dm_snap_region_who_unknown(r);
			if (w >= 1) {
				r->nr_writes = (uint32_t)rnd_below(r->nr_accesses + 1);
				r->write_bp = 0; /* known */
			}
			if (w == 2) {
				/* -1: no node; more than eight nodes in some */
				r->node = (int32_t)rnd_below(rnd_below(2) ? 4 : 12) - 1;
				r->node_bp = (uint32_t)rnd_below(10001);
				r->cpus = dm_rng_next(&rng);
				r->nr_cpus = (uint32_t)__builtin_popcountll(r->cpus);
			}
		}
	}
	return s;
}

/* Where to ask: anywhere from before the first region to past the last
 * one of a random target, any length from 0 to all of it. */
static void random_range(const struct damon_snapshot *s, uint64_t *addr, uint64_t *len)
{
	uint64_t lo = BASE, hi = BASE + 1;

	if (s->nr_regions) {
		lo = s->regions[rnd_below(s->nr_regions)].start;
		hi = s->regions[rnd_below(s->nr_regions)].end;
		if (hi < lo) {
			uint64_t x = lo;

			lo = hi;
			hi = x;
		}
	}
	switch (rnd_below(8)) {
	case 0: /* before everything */
		*addr = rnd_below(BASE);
		break;
	case 1: /* a region's very start or end */
		*addr = rnd_below(2) ? lo : hi;
		break;
	default:
		*addr = lo - 0x1000 + rnd_below(hi - lo + 0x2000);
	}
	switch (rnd_below(6)) {
	case 0:
		*len = rnd_below(2); /* 0 or 1 */
		break;
	case 1:
		*len = rnd_below(hi - lo + 0x10000) + 1;
		break;
	case 2:
		*len = UINT64_MAX - *addr; /* to the end of the address space */
		break;
	default:
		*len = 1 + rnd_below(0x20000);
	}
}

static int nr_mismatches;

static void compare(const struct damon_snapshot *s, uint32_t id, uint64_t addr, uint64_t len)
{
	struct damon_hotness got = { .sz = sizeof(got) }, want = { .sz = sizeof(want) };
	int e_got = dm_publisher_hotness(&pub, id, addr, len, &got);
	int e_want = reference(s, id, addr, len, &want);

	got.sz = want.sz = 0;
	if (e_got == e_want && (e_got || !memcmp(&got, &want, sizeof(got))))
		return;
	if (nr_mismatches++ < 5)
		fprintf(stderr,
			"\n  %zu regions, target %u, [%#llx, +%#llx): got %d rate %u ages %u..%u "
			"covered %llu write_bp %u node %d/%u cpus %u; want %d rate %u ages %u..%u "
			"covered %llu write_bp %u node %d/%u cpus %u\n",
			s->nr_regions, id, (unsigned long long)addr, (unsigned long long)len, e_got,
			got.access_rate_bp, got.min_age, got.max_age,
			(unsigned long long)got.bytes_covered, got.write_bp, got.node, got.node_bp,
			got.nr_cpus, e_want, want.access_rate_bp, want.min_age, want.max_age,
			(unsigned long long)want.bytes_covered, want.write_bp, want.node,
			want.node_bp, want.nr_cpus);
}

/* Publish @s and ask it @nr_q random questions, and one at each region
 * boundary of the first target; every answer must equal the plain
 * scan's. */
static void check_snapshot(struct damon_snapshot *s, int nr_q)
{
	CU_ASSERT_EQUAL_FATAL(dm_publisher_publish(&pub, damon_snapshot_ref(s)), 0);
	for (int q = 0; q < nr_q; q++) {
		uint64_t addr, len;
		uint32_t t = (uint32_t)rnd_below(s->nr_targets + 2);
		/* a target, the first (UINT32_MAX), or one not there */
		uint32_t id = t < s->nr_targets ? s->targets[t].id
			      : t == s->nr_targets ? UINT32_MAX
						   : 1000;

		random_range(s, &addr, &len);
		compare(s, id, addr, len);
	}
	/* (some 300 of them: the plain scan of 10 000 regions is slow) */
	for (uint32_t i = 0; s->nr_targets && i < s->targets[0].nr;
	     i += 1 + (uint32_t)rnd_below(1 + s->targets[0].nr / 150)) {
		const struct dm_snap_region *r = &s->regions[s->targets[0].first + i];

		compare(s, UINT32_MAX, r->start, 1);
		compare(s, UINT32_MAX, r->end - 1, 1);
		compare(s, UINT32_MAX, r->end, 4096);
		compare(s, UINT32_MAX, r->start - 1, 2);
	}
	damon_snapshot_unref(s);
}

static void test_index_random(void)
{
	/* Region counts around the tree's steps (groups of 8, nodes of 8),
	 * with some of them as the only target. */
	static const size_t sizes[] = { 0, 1, 2, 7, 8, 9, 63, 64, 65, 511, 512, 513, 1000, 4097 };
	size_t per[4];

	nr_mismatches = 0;
	dm_rng_seed(&rng, 20240601);
	CU_ASSERT_EQUAL_FATAL(dm_publisher_init(&pub, NULL), 0);
	for (uint64_t k = 1; k <= 400; k++) {
		uint32_t nr_t = 1 + (uint32_t)rnd_below(4);

		for (uint32_t t = 0; t < nr_t; t++)
			per[t] = rnd_below(3) ? rnd_below(40) : sizes[rnd_below(14)];
		check_snapshot(random_snapshot(k, nr_t, per, (int)(k % 4)), 300);
	}
	/* 10 000 regions in one target, then in two, for each kind of who. */
	for (int who = 0; who < 4; who++) {
		per[0] = 10000;
		check_snapshot(random_snapshot(1000 + who, 1, per, who), 2000);
		per[0] = 3;
		per[1] = 10000;
		check_snapshot(random_snapshot(2000 + who, 2, per, who), 2000);
	}
	/* A snapshot without targets: nothing to answer yet. */
	check_snapshot(random_snapshot(3000, 0, per, 0), 10);
	dm_publisher_fini(&pub);
	EXPECT_EQ(nr_mismatches, 0);
}

int main(void)
{
	static const struct dm_test tests[] = {
		{ "hotness answers come from one snapshot", test_latch_stress },
		{ "hotness arithmetic and edges", test_hotness_edges },
		{ "indexed hotness equals a plain scan", test_index_random },
		{ NULL, NULL },
	};

	return dm_test_run("snapshot", tests);
}
