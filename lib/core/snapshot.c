// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "hot_table.h"
#include "snapshot.h"

/* How often a reader retries before answering -EAGAIN. A publish takes
 * microseconds and happens once per aggregation interval, so two tries
 * almost always suffice; the bound keeps a reader from spinning forever. */
#define HOTNESS_TRIES 64

void dm_snap_region_who_unknown(struct dm_snap_region *r)
{
	r->nr_reads = r->nr_writes = r->write_bp = DAMON_UNKNOWN;
	r->node = -1;
	r->node_bp = r->nr_cpus = DAMON_UNKNOWN;
	r->cpus = 0;
}

struct damon_snapshot *dm_snapshot_new(const struct dm_alloc *a, uint32_t nr_targets,
				       size_t nr_regions)
{
	struct damon_snapshot *s;
	size_t sz = sizeof(*s);

	if (nr_regions > (SIZE_MAX - sz) / sizeof(struct dm_snap_region) / 2)
		return NULL;
	sz += nr_targets * sizeof(struct dm_snap_target) + nr_regions * sizeof(struct dm_snap_region);
	s = dm_calloc(a, 1, sz);
	if (!s)
		return NULL;
	atomic_init(&s->refcnt, 1);
	if (a)
		s->alloc = *a;
	s->nr_targets = nr_targets;
	s->nr_regions = nr_regions;
	/* struct damon_snapshot and both arrays are 8-byte aligned. */
	s->targets = (struct dm_snap_target *)(s + 1);
	s->regions = (struct dm_snap_region *)(s->targets + nr_targets);
	s->info.sz = sizeof(s->info);
	s->info.nr_targets = nr_targets;
	return s;
}

void dm_snapshot_unref(struct damon_snapshot *s)
{
	if (s && atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) == 1) {
		struct dm_alloc a = s->alloc;

		dm_free(&a, s);
	}
}

int dm_publisher_init(struct dm_publisher *p, const struct dm_alloc *a)
{
	memset(p, 0, sizeof(*p));
	if (a)
		p->alloc = *a;
	atomic_init(&p->latch_seq, 0);
	atomic_init(&p->slot[0], NULL);
	atomic_init(&p->slot[1], NULL);
	return -pthread_mutex_init(&p->lock, NULL);
}

static void slot_free_list(struct dm_hot_table *t)
{
	while (t) {
		struct dm_hot_table *next = t->retired_next;

		dm_hot_table_free(t);
		t = next;
	}
}

void dm_publisher_fini(struct dm_publisher *p)
{
	dm_snapshot_unref(p->newest);
	p->newest = NULL;
	for (int i = 0; i < 2; i++) {
		dm_hot_table_free(atomic_load(&p->slot[i]));
		atomic_store(&p->slot[i], NULL);
	}
	slot_free_list(p->retired);
	p->retired = NULL;
	pthread_mutex_destroy(&p->lock);
}

/* Write @src into slot @i, growing it first if needed. The slot is not the
 * one readers are directed to while this runs. */
static int slot_write(struct dm_publisher *p, int i, const struct damon_snapshot *src)
{
	struct dm_hot_table *t = atomic_load_explicit(&p->slot[i], memory_order_relaxed);

	if (!t || !dm_hot_table_fits(t, src)) {
		/* Allocated here, at publish time, index and all: readers
		 * never allocate. */
		struct dm_hot_table *n = dm_hot_table_new(&p->alloc, src);

		if (!n)
			return -ENOMEM;
		if (t) {
			/* A slow reader may still be looking at it. */
			t->retired_next = p->retired;
			p->retired = t;
		}
		atomic_store_explicit(&p->slot[i], n, memory_order_release);
		t = n;
	}
	dm_hot_table_write(t, src);
	return 0;
}

int dm_publisher_publish(struct dm_publisher *p, struct damon_snapshot *s)
{
	struct damon_snapshot *old;
	int err;

	/* Latch: send readers to slot 1, rewrite slot 0, send them back to
	 * slot 0, rewrite slot 1. Each increment is a release so that the slot
	 * contents before it are visible to a reader that sees the count. */
	atomic_fetch_add_explicit(&p->latch_seq, 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	err = slot_write(p, 0, s);
	atomic_fetch_add_explicit(&p->latch_seq, 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (!err)
		err = slot_write(p, 1, s);
	else
		err = -ENOMEM;

	pthread_mutex_lock(&p->lock);
	old = p->newest;
	p->newest = s;
	pthread_mutex_unlock(&p->lock);
	dm_snapshot_unref(old);
	return err;
}

struct damon_snapshot *dm_publisher_get(struct dm_publisher *p)
{
	struct damon_snapshot *s;

	pthread_mutex_lock(&p->lock);
	s = p->newest;
	if (s)
		atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	return s;
}

int dm_publisher_hotness(struct dm_publisher *p, uint32_t target_id, uint64_t addr, uint64_t len,
			 struct damon_hotness *ret)
{
	for (int tries = 0; tries < HOTNESS_TRIES; tries++) {
		unsigned long seq = atomic_load_explicit(&p->latch_seq, memory_order_acquire);
		const struct dm_hot_table *t =
			atomic_load_explicit(&p->slot[seq & 1], memory_order_acquire);
		int err;

		if (!t)
			return -EAGAIN;
		err = dm_hot_table_answer(t, target_id, addr, len, &p->latch_seq, seq, ret);
		if (err != DM_HOT_TORN)
			return err;
	}
	return -EAGAIN;
}
