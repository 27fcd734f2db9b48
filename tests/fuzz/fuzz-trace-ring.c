// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The perf ring of the damon:damon_aggregated stream (lib/kernel/trace.c,
 * dm_ktrace_read) and the snapshots built from its records
 * (lib/kernel/ksnap.c, dm_kernel_publish). Field offsets come from the
 * format file recorded from Linux 7.2 (tests/fixtures), as in a real run.
 *
 * Input: a header (targets and which are gone, the intervals, where in the
 * ring the data starts and where the first read stops), then the bytes the
 * kernel would have written into the ring: perf_event_header records of any
 * type and size, wrapping around the ring's end. The ring is read twice, as
 * a running context reads it while records arrive.
 *
 * Properties: the reader never reads outside the ring or a record (ASan),
 * always moves data_tail forward and never past data_head; every snapshot
 * published is consistent: targets' region runs inside the region array,
 * regions non-empty, nr_accesses at most max_nr_accesses, rates at most
 * 10000 bp, every region of a live target; a hotness query of it answers.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "ksnap.h"

#include "kernel/kernel_int.h"

#define DATA_PAGES 2

static struct dm_kfield layout[6];
static size_t pg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct dm_kernel *k = calloc(1, sizeof(*k));
	char text[4096];
	FILE *f = fopen(
		DM_FIXTURES "/sysfs-7.2/kernel/tracing/events/damon/damon_aggregated/format", "r");
	size_t n;

	if (!f || !k)
		abort();
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (dm_ktrace_parse_format(k, text, "format", NULL))
		abort();
	layout[0] = k->f_target;
	layout[1] = k->f_nr_regions;
	layout[2] = k->f_start;
	layout[3] = k->f_end;
	layout[4] = k->f_nr_accesses;
	layout[5] = k->f_age;
	free(k);
	pg = (size_t)sysconf(_SC_PAGESIZE);
	return 0;
}

/* Read the ring up to @head and check what the reader did. */
static void read_to(struct dm_kernel *k, uint64_t head)
{
	struct perf_event_mmap_page *meta = k->ring;
	uint64_t before = meta->data_tail;
	struct dm_err err = {0};
	int rc;

	atomic_store_explicit((_Atomic uint64_t *)&meta->data_head, head, memory_order_release);
	rc = dm_ktrace_read(k, &err);
	FUZZ_CHECK(rc == 0 || (rc == -ENOMEM && err.msg[0]), "read: %d", rc);
	FUZZ_CHECK(meta->data_tail >= before && meta->data_tail <= head,
		   "tail %llu -> %llu of %llu", (unsigned long long)before,
		   (unsigned long long)meta->data_tail, (unsigned long long)head);
	fuzz_check_snapshot(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct dm_publisher pub;
	struct dm_kernel *k = calloc(1, sizeof(*k));
	struct perf_event_mmap_page *meta;
	uint8_t shape = fuzz_u8(&in), split = fuzz_u8(&in);
	uint64_t dsize = DATA_PAGES * pg, start, len;
	uint8_t *ring;

	if (!k || dm_publisher_init(&pub, NULL))
		abort();
	k->pub = &pub;
	k->nr_targets = 1 + (shape & 3);
	k->targets = calloc(k->nr_targets, sizeof(*k->targets));
	if (!k->targets)
		abort();
	for (size_t i = 0; i < k->nr_targets; i++) {
		k->targets[i].id = 10 + (uint32_t)i;
		k->targets[i].gone = (shape >> (4 + i)) & 1;
	}
	k->attrs.sample_us = 1 + fuzz_u8(&in) * 1000u;
	k->attrs.aggr_us = k->attrs.sample_us * (1 + fuzz_u8(&in));
	k->f_target = layout[0];
	k->f_nr_regions = layout[1];
	k->f_start = layout[2];
	k->f_end = layout[3];
	k->f_nr_accesses = layout[4];
	k->f_age = layout[5];
	k->resync = true; /* as dm_ktrace_open leaves it */
	k->trace_fd = -1;
	k->wake_epfd = -1;

	/* the ring: a metadata page, then the data pages */
	k->ring_sz = (DATA_PAGES + 1) * pg;
	ring = aligned_alloc(pg, k->ring_sz);
	if (!ring)
		abort();
	memset(ring, 0, k->ring_sz);
	k->ring = ring;
	meta = k->ring;
	/* anywhere in the ring, and counters well past the first lap */
	start = fuzz_bytes(&in, 2) % dsize + dsize * (shape >> 2 & 3);
	len = in.left < dsize ? in.left : dsize;
	for (uint64_t i = 0; i < len; i++)
		ring[pg + (start + i) % dsize] = in.p[i];
	meta->data_tail = start;

	read_to(k, start + len * split / 255);
	read_to(k, start + len);

	free(ring);
	k->ring = NULL;
	free(k->targets);
	free(k->regbuf);
	free(k);
	dm_publisher_fini(&pub);
	return 0;
}
