// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The hotness index (lib/core/hot_table.h) against a plain scan.
 *
 * Each snapshot is published into one publisher, in turn, so that tables
 * are reused with other layouts and grown, and asked thousands of random
 * questions; every answer (and every error) must equal what a scan over
 * all the regions of the target gives, field by field. The layouts:
 *  - paddr as the monitor lays it out from System RAM: several disjoint
 *    ranges, far apart, at large physical addresses (above 4 GiB, and one
 *    range near the top of the address space, where an end computed
 *    carelessly wraps), with holes between them, adjacent regions within
 *    a range or small gaps between them; one target, as paddr has;
 *  - vaddr-like: one to four targets overlapping each other in address,
 *    regions adjacent or with gaps, who fields unknown, writes only,
 *    everything, or a mix, now and then a rate over 16 bits.
 * Questions: inside a region (a page, as idle-live asks), at region edges
 * and one byte around them, in holes, across holes, before the first and
 * past the last region, up to the end of the address space; for the
 * target by id, the first target and a missing one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "test-util.h"

#include "core/rng.h"
#include "core/snapshot.h"

#define PAGE 4096ULL

static struct dm_rng rng;
static struct dm_publisher pub;
static unsigned long nr_asked, nr_wrong, nr_found;
/* Now and then a rate over 16 bits (never from a backend): such a table
 * answers the general way. */
static bool wide;

static uint64_t below(uint64_t n)
{
	return dm_rng_range(&rng, 0, n);
}

static uint64_t overlap(const struct dm_snap_region *r, uint64_t addr, uint64_t end)
{
	uint64_t lo = r->start > addr ? r->start : addr, hi = r->end < end ? r->end : end;

	return hi > lo ? hi - lo : 0;
}

/* What an answer is, one quantity at a time over every region of the
 * target: no search, no shortcut. The who fields weigh a region's counts
 * by the KiB it shares with the range; node_bp is the share, rounded
 * down, of the node with the most accesses among the first eight met. */
static int scan(const struct damon_snapshot *s, uint32_t id, uint64_t addr, uint64_t len,
		struct damon_hotness *h)
{
	const struct dm_snap_region *v;
	uint64_t end = addr + len, covered = 0, acc = 0, wr = 0, share[8] = {0};
	unsigned __int128 weighted = 0;
	bool wr_known = true, node_known = true, cpu_known = true;
	int32_t nodes[8];
	uint32_t t = 0, n, nr_nodes = 0;

	if (!s->nr_targets)
		return -EAGAIN;
	while (id != UINT32_MAX && t < s->nr_targets && s->targets[t].id != id)
		t++;
	if (t == s->nr_targets)
		return -ENOENT;
	v = &s->regions[s->targets[t].first];
	n = s->targets[t].nr;
	memset(h, 0, sizeof(*h));
	h->min_age = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t b = overlap(&v[i], addr, end), a = (b >> 10) * v[i].nr_accesses;

		if (!b)
			continue;
		covered += b;
		weighted += (unsigned __int128)b * v[i].access_rate_bp;
		h->min_age = v[i].age < h->min_age ? v[i].age : h->min_age;
		h->max_age = v[i].age > h->max_age ? v[i].age : h->max_age;
		acc += a;
		if (v[i].write_bp == DAMON_UNKNOWN || v[i].nr_writes == DAMON_UNKNOWN)
			wr_known = false;
		else
			wr += (b >> 10) * v[i].nr_writes;
		if (v[i].nr_cpus == DAMON_UNKNOWN)
			cpu_known = false;
		else
			h->cpus |= v[i].cpus;
		if (v[i].node < 0 && v[i].node_bp == DAMON_UNKNOWN) {
			node_known = false;
		} else if (v[i].node >= 0 && a) {
			uint32_t k = 0;

			while (k < nr_nodes && nodes[k] != v[i].node)
				k++;
			if (k == nr_nodes && nr_nodes < 8)
				nodes[nr_nodes++] = v[i].node;
			if (k < nr_nodes)
				share[k] +=
					a / 10000 * v[i].node_bp + a % 10000 * v[i].node_bp / 10000;
		}
	}
	if (!covered)
		return -ENOENT;
	h->access_rate_bp = (uint32_t)(weighted / covered);
	h->bytes_covered = covered;
	h->snapshot_seq = s->info.seq;
	h->write_bp = !wr_known ? DAMON_UNKNOWN : acc ? (uint32_t)(wr * 10000 / acc) : 0;
	if (h->write_bp != DAMON_UNKNOWN && h->write_bp > 10000)
		h->write_bp = 10000;
	h->cpus = cpu_known ? h->cpus : 0;
	h->nr_cpus = cpu_known ? (uint32_t)__builtin_popcountll(h->cpus) : DAMON_UNKNOWN;
	h->node = -1;
	h->node_bp = node_known ? 0 : DAMON_UNKNOWN;
	for (uint32_t k = 0; node_known && k < nr_nodes; k++) {
		uint32_t bp = acc ? (uint32_t)(share[k] * 10000 / acc) : 0;

		if (h->node < 0 || bp > h->node_bp) {
			h->node = nodes[k];
			h->node_bp = bp;
		}
	}
	return 0;
}

/* Counts and who fields of one region. @who: 0 nothing known (kernel,
 * page_idle), 1 writes known (uffd_wp), 2 everything (fault). */
static void fill(struct dm_snap_region *r, int who)
{
	r->nr_accesses = (uint32_t)(below(20) ? below(21) : below(DAMON_UNKNOWN));
	r->access_rate_bp =
		(uint32_t)(!wide || below(200) ? below(10001) : 10001 + below(1u << 20));
	r->age = (uint32_t)below(1000);
	dm_snap_region_who_unknown(r);
	if (who >= 1) {
		r->nr_writes = (uint32_t)below((uint64_t)r->nr_accesses + 2);
		r->write_bp = 0; /* known */
	}
	if (who == 2) {
		/* -1: no node; more than eight nodes in some */
		r->node = (int32_t)below(below(2) ? 4 : 12) - 1;
		r->node_bp = (uint32_t)below(10001);
		r->cpus = dm_rng_next(&rng);
		r->nr_cpus = (uint32_t)__builtin_popcountll(r->cpus);
	}
}

/* System RAM of a guest with memory above 4 GiB and far above, and a
 * range just under the top of the address space. */
static const struct {
	uint64_t start, end;
} ram[] = {
	{0x1000, 0x9f000},
	{0x100000, 0xbffe0000},
	{0x100000000, 0x240000000},
	{0x3f8000000000, 0x3f8040000000},
	{0xffffffff00000000, 0xfffffffffffff000},
};
#define NR_RAM (sizeof(ram) / sizeof(ram[0]))

/* @nr (>= NR_RAM) regions over the ranges of ram[], as paddr's target:
 * each range cut into adjacent regions of random sizes, or with a gap of
 * a few pages now and then when @gaps. */
static struct damon_snapshot *paddr_snapshot(uint64_t seq, size_t nr, bool gaps, int who)
{
	struct damon_snapshot *s = dm_snapshot_new(NULL, 1, nr);
	size_t per[NR_RAM], k = 0, left = nr - NR_RAM;

	if (!s)
		return NULL;
	s->info.seq = seq;
	s->targets[0] = (struct dm_snap_target){.id = 5, .first = 0, .nr = (uint32_t)nr};
	/* at least one region a range, the rest anywhere (a range of few
	 * pages gets few) */
	for (size_t i = 0; i < NR_RAM; i++)
		per[i] = 1;
	while (left) {
		size_t i = below(NR_RAM);

		if (per[i] < (ram[i].end - ram[i].start) / PAGE / 4) {
			per[i]++;
			left--;
		}
	}
	for (size_t i = 0; i < NR_RAM; i++) {
		uint64_t at = ram[i].start;

		for (size_t j = 0; j < per[i]; j++, k++) {
			struct dm_snap_region *r = &s->regions[k];
			uint64_t pages = (ram[i].end - at) / PAGE, rest = per[i] - j;
			/* each later region keeps a page, and its gap one */
			uint64_t room = pages - 2 * (rest - 1), len;

			if (gaps && j && below(4) == 0 && room > 2) {
				at += PAGE;
				room--;
			}
			len = rest == 1 ? room : 1 + below(2 * room / rest);
			len = len > room ? room : len;
			r->start = at;
			r->end = at += len * PAGE;
			fill(r, who);
		}
	}
	return s;
}

/* One to four targets overlapping in address, regions adjacent or with
 * gaps, lengths from under 1 KiB to over 4 GiB. */
static struct damon_snapshot *vaddr_snapshot(uint64_t seq, size_t nr, int who)
{
	uint32_t nr_t = 1 + (uint32_t)below(4);
	struct damon_snapshot *s = dm_snapshot_new(NULL, nr_t, nr);
	size_t k = 0;

	if (!s)
		return NULL;
	s->info.seq = seq;
	for (uint32_t t = 0; t < nr_t; t++) {
		size_t n = t + 1 < nr_t ? below(nr - k + 1) : nr - k;
		uint64_t at = 0x7f0000000000ULL + below(4) * 0x10000;

		s->targets[t] = (struct dm_snap_target){
			.id = 10 + 3 * t, .first = (uint32_t)k, .nr = (uint32_t)n};
		for (size_t i = 0; i < n; i++, k++) {
			struct dm_snap_region *r = &s->regions[k];
			uint64_t len = below(10) == 0	? 1 + below(1500)
				       : below(10) == 0 ? (1ULL << 28) + below(1ULL << 32)
							: PAGE * (1 + below(64));

			if (below(3) == 0)
				at += PAGE * (1 + below(1000)); /* a gap */
			r->start = at;
			r->end = at += len;
			fill(r, who == 3 ? (int)below(3) : who);
		}
	}
	return s;
}

/* A question about @s: where and how long. */
static void question(const struct damon_snapshot *s, uint64_t *addr, uint64_t *len)
{
	const struct dm_snap_region *r = &s->regions[below(s->nr_regions)];
	const struct dm_snap_region *q = &s->regions[below(s->nr_regions)];

	switch (below(10)) {
	case 0: /* a page inside a region (idle-live's frames) */
	case 1:
		*addr = r->start + below((r->end - r->start + PAGE - 1) / PAGE) * PAGE;
		*len = PAGE;
		return;
	case 2: /* a region's edges, a byte around them */
		*addr = (below(2) ? r->start : r->end) + below(3) - 1;
		break;
	case 3: /* in the hole after a RAM range, or across it */
		*addr = ram[below(NR_RAM)].end + below(0x100000) - 0x800;
		break;
	case 4: /* before everything, or anywhere at all */
		*addr = below(2) ? below(0x1000) : dm_rng_next(&rng);
		break;
	default: { /* around two random regions and between them */
		uint64_t lo = r->start < q->start ? r->start : q->start;
		uint64_t hi = r->end > q->end ? r->end : q->end;

		*addr = lo - 0x1000 + below(hi - lo + 0x2000);
	}
	}
	switch (below(6)) {
	case 0:
		*len = 1;
		break;
	case 1:
		*len = 1 + below(1ULL << 34);
		break;
	case 2:
		*len = 0; /* to the end of the address space */
		break;
	default:
		*len = 1 + below(0x20000);
	}
	if (*len > UINT64_MAX - *addr || *len == 0)
		*len = UINT64_MAX - *addr;
}

static void print_hotness(const char *what, int err, const struct damon_hotness *h)
{
	fprintf(stderr,
		"    %s: %d rate %u ages %u-%u covered %llu seq %llu write %u node %d/%u "
		"cpus %u/%llx\n",
		what, err, h->access_rate_bp, h->min_age, h->max_age,
		(unsigned long long)h->bytes_covered, (unsigned long long)h->snapshot_seq,
		h->write_bp, h->node, h->node_bp, h->nr_cpus, (unsigned long long)h->cpus);
}

/* Ask @s, published, about [addr, addr + len) of target @id: the same
 * answer as the scan, or say what differed. */
static void check(const struct damon_snapshot *s, uint32_t id, uint64_t addr, uint64_t len)
{
	struct damon_hotness got = {.sz = sizeof(got)}, want;
	int e_got, e_want;

	if (len > UINT64_MAX - addr)
		len = UINT64_MAX - addr; /* the API refuses ranges that wrap */
	e_got = dm_publisher_hotness(&pub, id, addr, len, &got);
	e_want = scan(s, id, addr, len, &want);

	nr_asked++;
	nr_found += !e_want;
	if (e_got == e_want &&
	    (e_got || (got.access_rate_bp == want.access_rate_bp && got.min_age == want.min_age &&
		       got.max_age == want.max_age && got.bytes_covered == want.bytes_covered &&
		       got.snapshot_seq == want.snapshot_seq && got.write_bp == want.write_bp &&
		       got.node == want.node && got.node_bp == want.node_bp &&
		       got.nr_cpus == want.nr_cpus && got.cpus == want.cpus)))
		return;
	if (nr_wrong++ < 5) {
		fprintf(stderr,
			"\n  snapshot %llu (%zu regions, %u targets), target %u, "
			"[%#llx, +%#llx):\n",
			(unsigned long long)s->info.seq, s->nr_regions, s->nr_targets, id,
			(unsigned long long)addr, (unsigned long long)len);
		print_hotness("index", e_got, &got);
		print_hotness("scan ", e_want, &want);
	}
}

/* Publish @s (keeping a reference) and ask it @n random questions and
 * every region's edges. */
static void publish_and_ask(struct damon_snapshot *s, size_t n)
{
	CU_ASSERT_EQUAL_FATAL(dm_publisher_publish(&pub, damon_snapshot_ref(s)), 0);
	for (size_t i = 0; i < n; i++) {
		uint32_t t = (uint32_t)below(s->nr_targets);
		uint64_t addr, len;
		uint32_t id = below(8) ? s->targets[t].id : below(2) ? UINT32_MAX : 99;

		question(s, &addr, &len);
		check(s, id, addr, len);
	}
	for (size_t i = 0; i < s->nr_regions; i += 1 + below(4)) {
		const struct dm_snap_region *r = &s->regions[i];
		uint32_t id = s->targets[0].id;

		check(s, id, r->start, PAGE);
		check(s, id, r->end - 1, 1);
		check(s, id, r->end, PAGE);
		check(s, id, r->start - 1, 2);
	}
	damon_snapshot_unref(s);
}

static void report(const char *what)
{
	printf("\n  %s: %lu questions (%lu answered), %lu wrong", what, nr_asked, nr_found,
	       nr_wrong);
	EXPECT_EQ(nr_wrong, 0);
	nr_asked = nr_found = nr_wrong = 0;
}

static void test_paddr(void)
{
	static const size_t sizes[] = {5, 6, 13, 80, 1000, 1001, 4097, 10000, 12000, 300};
	uint64_t seq = 1;

	dm_rng_seed(&rng, 20261203);
	CU_ASSERT_EQUAL_FATAL(dm_publisher_init(&pub, NULL), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (int gaps = 0; gaps < 2; gaps++)
			for (int who = 0; who < 3; who += 2)
				publish_and_ask(paddr_snapshot(seq++, sizes[i], gaps, who), 5000);
	/* counts as the monitor's wobble between min and max regions */
	for (int i = 0; i < 40; i++)
		publish_and_ask(paddr_snapshot(seq++, NR_RAM + below(3000), below(2), 0), 2000);
	dm_publisher_fini(&pub);
	report("paddr");
}

static void test_vaddr(void)
{
	uint64_t seq = 1;

	dm_rng_seed(&rng, 4242);
	CU_ASSERT_EQUAL_FATAL(dm_publisher_init(&pub, NULL), 0);
	for (int i = 0; i < 200; i++) {
		wide = i % 10 == 9;
		publish_and_ask(
			vaddr_snapshot(seq++, 1 + below(below(4) ? 200 : 5000), (int)below(4)),
			2000);
	}
	wide = false;
	publish_and_ask(vaddr_snapshot(seq++, 10000, 0), 20000);
	publish_and_ask(vaddr_snapshot(seq++, 10000, 3), 20000);
	dm_publisher_fini(&pub);
	report("vaddr");
}

int main(void)
{
	static const struct dm_test tests[] = {
		{"paddr layouts: indexed answers equal a scan", test_paddr},
		{"vaddr layouts: indexed answers equal a scan", test_vaddr},
		{NULL, NULL},
	};

	return dm_test_run("hotness-index", tests);
}
