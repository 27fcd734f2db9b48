// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#include <errno.h>
#include <string.h>

#include "../ops/ops.h"
#include "regions.h"
#include "snapshot.h"

#define ALIGN_DOWN(x) ((x) & ~(DM_MIN_REGION - 1))
#define ALIGN_UP(x) (((x) + DM_MIN_REGION - 1) & ~(DM_MIN_REGION - 1))

void dm_regions_free(const struct dm_alloc *a, struct dm_regions *rs)
{
	dm_free(a, rs->v);
	rs->v = NULL;
	rs->n = rs->cap = 0;
}

int dm_regions_reserve(const struct dm_alloc *a, struct dm_regions *rs, size_t cap)
{
	struct dm_region *v;

	if (cap <= rs->cap)
		return 0;
	if (cap < 16)
		cap = 16;
	if (cap < rs->cap * 2)
		cap = rs->cap * 2;
	if (cap > SIZE_MAX / sizeof(*v))
		return -ENOMEM;
	v = dm_realloc(a, rs->v, rs->cap * sizeof(*v), cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rs->v = v;
	rs->cap = cap;
	return 0;
}

uint64_t dm_regions_total_size(const struct dm_regions *rs)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < rs->n; i++)
		sum += dm_region_size(&rs->v[i]);
	return sum;
}

static struct dm_region new_region(uint64_t start, uint64_t end)
{
	struct dm_region r;

	memset(&r, 0, sizeof(r));
	r.start = start;
	r.end = end;
	r.sampling_addr = start;
	return r;
}

int dm_regions_init(const struct dm_alloc *a, struct dm_regions *rs, const struct dm_range *ranges,
		    size_t nr, uint64_t sz_piece)
{
	size_t want = 0;
	int err;

	sz_piece = ALIGN_DOWN(sz_piece);
	if (sz_piece < DM_MIN_REGION)
		sz_piece = DM_MIN_REGION;
	for (size_t i = 0; i < nr; i++) {
		uint64_t sz = ALIGN_UP(ranges[i].end) - ALIGN_DOWN(ranges[i].start);

		want += sz / sz_piece + 1;
	}
	rs->n = 0;
	err = dm_regions_reserve(a, rs, want);
	if (err)
		return err;
	for (size_t i = 0; i < nr; i++) {
		uint64_t start = ALIGN_DOWN(ranges[i].start), end = ALIGN_UP(ranges[i].end);
		uint64_t pieces, piece;

		if (end <= start)
			continue;
		pieces = (end - start) / sz_piece;
		if (!pieces)
			pieces = 1;
		/* Even pieces on page boundaries; the last one takes the rest. */
		piece = ALIGN_DOWN((end - start) / pieces);
		if (!piece)
			piece = DM_MIN_REGION;
		for (uint64_t p = 0; p < pieces && start < end; p++) {
			uint64_t e = p + 1 == pieces ? end : start + piece;

			if (e > end)
				e = end;
			rs->v[rs->n++] = new_region(start, e);
			start = e;
		}
	}
	return 0;
}

int dm_regions_set_ranges(const struct dm_alloc *a, struct dm_regions *rs,
			  const struct dm_range *ranges, size_t nr)
{
	struct dm_regions out = { 0 };
	size_t j = 0;
	int err;

	err = dm_regions_reserve(a, &out, rs->n + nr + 1);
	if (err)
		return err;
	for (size_t i = 0; i < nr; i++) {
		uint64_t start = ALIGN_DOWN(ranges[i].start), end = ALIGN_UP(ranges[i].end);
		size_t first = out.n;

		if (end <= start)
			continue;
		/* Regions wholly before this range belong to no range: dropped. */
		while (j < rs->n && rs->v[j].end <= start)
			j++;
		for (size_t k = j; k < rs->n && rs->v[k].start < end; k++) {
			struct dm_region r = rs->v[k];

			if (r.start < start)
				r.start = start;
			if (r.end > end)
				r.end = end;
			if (out.n > first && out.v[out.n - 1].end < r.start)
				out.v[out.n - 1].end = r.start; /* fill the hole */
			err = dm_regions_reserve(a, &out, out.n + 1);
			if (err)
				goto fail;
			out.v[out.n++] = r;
		}
		err = dm_regions_reserve(a, &out, out.n + 1);
		if (err)
			goto fail;
		if (out.n == first) {
			out.v[out.n++] = new_region(start, end);
		} else {
			out.v[first].start = start;
			out.v[out.n - 1].end = end;
		}
	}
	dm_regions_free(a, rs);
	*rs = out;
	return 0;
fail:
	dm_regions_free(a, &out);
	return err;
}

static uint32_t absdiff(uint32_t x, uint32_t y)
{
	return x > y ? x - y : y - x;
}

void dm_regions_update_age(struct dm_regions *rs, uint32_t thres)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];

		if (absdiff(r->nr_accesses, r->last_nr_accesses) > thres ||
		    (r->nr_accesses == 0) != (r->last_nr_accesses == 0))
			r->age = 0;
		else if (r->age < UINT32_MAX)
			r->age++;
	}
}

/* Fold @r into @l (adjacent, l before r): size-weighted nr_accesses and age,
 * as the kernel's damon_merge_two_regions(); nr_accesses_bp follows
 * nr_accesses. (last_nr_accesses stays the left one's, as in the kernel: it
 * is overwritten at the reset that follows every merge.) */
static uint16_t weigh16(uint16_t a, uint64_t sa, uint16_t b, uint64_t sb)
{
	return (uint16_t)(((uint64_t)a * sa + (uint64_t)b * sb) / (sa + sb));
}

void dm_who_merge(struct dm_who *l, uint64_t sl, const struct dm_who *r, uint64_t sr)
{
	l->nr_reads = weigh16(l->nr_reads, sl, r->nr_reads, sr);
	l->nr_writes = weigh16(l->nr_writes, sl, r->nr_writes, sr);
	l->nr_placed = weigh16(l->nr_placed, sl, r->nr_placed, sr);
	for (int i = 0; i < DM_WHO_NODES; i++)
		l->node[i] = weigh16(l->node[i], sl, r->node[i], sr);
	l->cpus |= r->cpus;
}

static void merge_two(struct dm_region *l, const struct dm_region *r)
{
	uint64_t sl = dm_region_size(l), sr = dm_region_size(r), s = sl + sr;

	l->nr_accesses = (uint32_t)(((uint64_t)l->nr_accesses * sl + (uint64_t)r->nr_accesses * sr) / s);
	l->nr_accesses_bp = l->nr_accesses * 10000;
	l->age = (uint32_t)(((uint64_t)l->age * sl + (uint64_t)r->age * sr) / s);
	dm_who_merge(&l->who, sl, &r->who, sr);
	l->unseen = l->unseen && r->unseen;
	l->end = r->end;
}

size_t dm_regions_merge(struct dm_regions *rs, uint32_t thres, uint64_t sz_limit)
{
	size_t w = 0;

	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];

		if (w > 0) {
			struct dm_region *prev = &rs->v[w - 1];

			if (prev->end == r->start &&
			    absdiff(prev->nr_accesses, r->nr_accesses) <= thres &&
			    dm_region_size(prev) + dm_region_size(r) <= sz_limit) {
				merge_two(prev, r);
				continue;
			}
		}
		rs->v[w++] = *r;
	}
	rs->n = w;
	return w;
}

size_t dm_regions_merge_to(struct dm_regions *rs, size_t max)
{
	while (rs->n > max) {
		size_t best = SIZE_MAX;
		uint64_t best_sz = UINT64_MAX;

		for (size_t i = 0; i + 1 < rs->n; i++) {
			uint64_t sz = dm_region_size(&rs->v[i]) + dm_region_size(&rs->v[i + 1]);

			if (rs->v[i].end == rs->v[i + 1].start && sz < best_sz) {
				best_sz = sz;
				best = i;
			}
		}
		if (best == SIZE_MAX)
			break; /* nothing adjacent left */
		merge_two(&rs->v[best], &rs->v[best + 1]);
		memmove(&rs->v[best + 1], &rs->v[best + 2],
			(rs->n - best - 2) * sizeof(rs->v[0]));
		rs->n--;
	}
	return rs->n;
}

int dm_regions_split(const struct dm_alloc *a, struct dm_regions *rs, unsigned int nr_pieces,
		     struct dm_rng *rng)
{
	struct dm_regions out = { 0 };
	int err;

	if (nr_pieces < 2)
		return 0;
	err = dm_regions_reserve(a, &out, rs->n * nr_pieces);
	if (err)
		return err;
	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region left = rs->v[i];
		struct dm_region tail[2];
		unsigned int nr_tail = 0;
		uint64_t sz = dm_region_size(&left);

		/*
		 * As the kernel does: cut at a random tenth of the region,
		 * keep cutting the left piece; the pieces cut off keep the
		 * counters and age of the whole.
		 */
		for (unsigned int p = 0; p + 1 < nr_pieces && sz > 2 * DM_MIN_REGION; p++) {
			uint64_t sub = ALIGN_DOWN(dm_rng_range(rng, 1, 10) * sz / 10);

			if (!sub || sub >= sz)
				continue;
			tail[nr_tail] = left;
			tail[nr_tail].start = left.start + sub;
			tail[nr_tail].sampling_addr = tail[nr_tail].start;
			nr_tail++;
			left.end = left.start + sub;
			if (left.sampling_addr >= left.end)
				left.sampling_addr = left.start;
			sz = sub;
		}
		out.v[out.n++] = left;
		while (nr_tail)
			out.v[out.n++] = tail[--nr_tail];
	}
	dm_regions_free(a, rs);
	*rs = out;
	return 0;
}

void dm_regions_account_sample(struct dm_regions *rs, uint32_t aggr_samples)
{
	uint32_t n = aggr_samples ? aggr_samples : 1;

	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];
		uint32_t drop = (uint32_t)((uint64_t)r->last_nr_accesses * 10000 / n);

		switch (r->accessed) {
		case 1:
			if (r->acc_how & DM_ACC_READ)
				r->who.nr_reads++;
			if (r->acc_how & DM_ACC_WRITE)
				r->who.nr_writes++;
			if (r->acc_cpu >= 0) {
				int node = r->acc_node < 0		  ? -1
					   : r->acc_node >= DM_WHO_NODES ? DM_WHO_NODES - 1
									  : r->acc_node;

				r->who.cpus |= 1ULL << (r->acc_cpu % 64);
				r->who.nr_placed++;
				if (node >= 0)
					r->who.node[node]++;
			}
			/* fall through */
		case 0:
			r->nr_accesses += r->accessed;
			r->nr_accesses_bp = (r->nr_accesses_bp > drop ? r->nr_accesses_bp - drop : 0) +
					    r->accessed * 10000u;
			if (r->sum_clean <= UINT32_MAX - 0x10000u)
				r->sum_clean += (uint32_t)r->since + 1 - r->accessed;
			break;
		case DM_ACCESS_EARLIER:
			if (r->nr_earlier < UINT16_MAX) {
				r->nr_earlier++;
				r->sum_earlier += r->since ? r->since : 1;
			}
			break; /* the moving sum waits for the estimate */
		default:
			if (r->nr_unknown < UINT16_MAX)
				r->nr_unknown++;
			break; /* tells nothing: the moving sum stays */
		}
	}
}

/* x^k for a whole k, by squaring (no libm for one power). */
static double pow_u(double x, uint32_t k)
{
	double r = 1.0;

	for (; k; k >>= 1, x *= x)
		if (k & 1)
			r *= x;
	return r;
}

/*
 * The estimate for a primitive that cannot re-arm one page at a time
 * (soft_dirty clears the whole process once per aggregation). Under DAMON's
 * own assumption that a region's pages are accessed alike, each page is
 * accessed in a sampling interval with one probability p; the kernel's
 * nr_accesses estimates p times the samples. A known sample that stayed
 * unaccessed for c intervals and then was (w = 1) or was not (w = 0) in its
 * own has likelihood (1-p)^(c+1-w) p^w; an earlier access within s intervals
 * has likelihood 1 - (1-p)^s. With q = 1 - p, the log-likelihood
 *   w log(1-q) + clean log q + nr_earlier log(1 - q^s)
 * (the s of each earlier access replaced by their mean) has a derivative
 * that falls strictly with q, so its root is found by bisection.
 */
double dm_access_rate_mle(uint32_t w, uint32_t clean, uint32_t nr_earlier, double since_earlier)
{
	uint32_t s = since_earlier < 1.0 ? 1 : (uint32_t)(since_earlier + 0.5);
	double lo = 0.0, hi = 1.0;

	if (!nr_earlier)
		return w + clean ? (double)w / (double)(w + clean) : 0.0;
	if (!clean)
		return 1.0; /* nothing was ever seen unaccessed */
	for (int it = 0; it < 60; it++) {
		double q = (lo + hi) / 2, qs1 = pow_u(q, s - 1), qs = qs1 * q;
		double d = (double)clean / q - (double)w / (1.0 - q) -
			   (double)nr_earlier * s * qs1 / (1.0 - qs);

		if (d > 0)
			lo = q;
		else
			hi = q;
	}
	return 1.0 - (lo + hi) / 2;
}

void dm_regions_settle_unknown(struct dm_regions *rs, uint32_t nr_samples)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];
		uint32_t known;

		if (r->nr_earlier) {
			double p = dm_access_rate_mle(r->nr_accesses, r->sum_clean, r->nr_earlier,
						      (double)r->sum_earlier / r->nr_earlier);

			r->nr_accesses = (uint32_t)(p * nr_samples + 0.5);
			r->unseen = 0;
		} else if (!r->nr_unknown) {
			r->unseen = 0;
		} else {
			known = nr_samples > r->nr_unknown ? nr_samples - r->nr_unknown : 0;
			if (!known) {
				r->nr_accesses = r->last_nr_accesses;
				r->unseen = 1;
			} else {
				/* The samples that could not be checked count at the
				 * region's last rate; the checked ones as they were.
				 * (Scaling the checked ones up instead would let a small
				 * hot part of a mostly unseen region make all of it hot.) */
				r->nr_accesses += (uint32_t)(((uint64_t)r->last_nr_accesses *
								  r->nr_unknown +
							      nr_samples / 2) /
							     nr_samples);
				r->unseen = 0;
			}
		}
		if (r->nr_accesses > nr_samples)
			r->nr_accesses = nr_samples;
		r->nr_accesses_bp = r->nr_accesses * 10000;
		r->nr_unknown = 0;
		r->nr_earlier = 0;
		r->sum_clean = r->sum_earlier = 0;
	}
}

int dm_regions_split_at(const struct dm_alloc *a, struct dm_regions *rs, size_t idx, uint64_t sz)
{
	struct dm_region *r;
	int err;

	if (idx >= rs->n || !sz || sz >= dm_region_size(&rs->v[idx]) || sz % DM_MIN_REGION)
		return -EINVAL;
	err = dm_regions_reserve(a, rs, rs->n + 1);
	if (err)
		return err;
	memmove(&rs->v[idx + 2], &rs->v[idx + 1], (rs->n - idx - 1) * sizeof(rs->v[0]));
	rs->n++;
	r = &rs->v[idx];
	rs->v[idx + 1] = *r;
	rs->v[idx + 1].start = r->start + sz;
	if (rs->v[idx + 1].sampling_addr < rs->v[idx + 1].start)
		rs->v[idx + 1].sampling_addr = rs->v[idx + 1].start;
	r->end = r->start + sz;
	if (r->sampling_addr >= r->end)
		r->sampling_addr = r->start;
	return 0;
}

void dm_regions_reset_aggregated(struct dm_regions *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct dm_region *r = &rs->v[i];

		r->last_nr_accesses = r->nr_accesses;
		r->nr_accesses_bp = r->nr_accesses * 10000;
		r->nr_accesses = 0;
		r->nr_unknown = r->nr_earlier = 0;
		r->sum_clean = r->sum_earlier = 0;
		memset(&r->who, 0, sizeof(r->who));
	}
}

uint32_t dm_regions_max_nr_accesses(const struct dm_regions *rs)
{
	uint32_t max = 0;

	for (size_t i = 0; i < rs->n; i++)
		if (rs->v[i].nr_accesses > max)
			max = rs->v[i].nr_accesses;
	return max;
}

int dm_regions_validate(const struct dm_regions *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		const struct dm_region *r = &rs->v[i];

		if (r->start >= r->end || r->start % DM_MIN_REGION || r->end % DM_MIN_REGION)
			return -EINVAL;
		if (i && rs->v[i - 1].end > r->start)
			return -EINVAL;
	}
	return 0;
}

/* A region's who fields in a snapshot, as far as the primitive can tell. */
void dm_region_who_publish(uint32_t tells, uint32_t sees, const struct dm_region *r,
			   struct dm_snap_region *o)
{
	const struct dm_who *w = &r->who;
	uint32_t best = 0;

	dm_snap_region_who_unknown(o);
	if (tells & DM_TELLS_RW) {
		o->nr_reads = w->nr_reads < o->nr_accesses ? w->nr_reads : o->nr_accesses;
		o->nr_writes = w->nr_writes < o->nr_accesses ? w->nr_writes : o->nr_accesses;
		o->write_bp = o->nr_accesses ? o->nr_writes * 10000 / o->nr_accesses : 0;
	} else if (sees == DAMON_SEES_WRITES) {
		o->nr_writes = o->nr_accesses; /* every access it sees is a write */
	}
	if (tells & DM_TELLS_CPU) {
		o->cpus = w->cpus;
		o->nr_cpus = (uint32_t)__builtin_popcountll(w->cpus);
		o->node_bp = 0;
		for (int i = 0; i < DM_WHO_NODES; i++)
			if (w->node[i] > best) {
				best = w->node[i];
				o->node = i;
			}
		if (best && w->nr_placed)
			o->node_bp = best * 10000 / w->nr_placed > 10000 ? 10000
									 : best * 10000 / w->nr_placed;
	}
}
