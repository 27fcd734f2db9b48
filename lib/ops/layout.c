// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Address-space layouts: the kernel's "three regions" of a process
 * (Documentation/mm/damon/design.rst, VMA-based Target Address Range
 * Construction) and fixed ranges.
 *
 * The three regions cover the mappings minus the two biggest gaps between
 * consecutive mappings: in a usual process those are the gap between the
 * heap and the mmap area and the gap between the mmap area and the stack,
 * both huge and never accessed, so leaving them out keeps the regions
 * meaningful. Everything is computed in one pass with O(1) state, so the
 * maps file is streamed without allocation.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "maps.h"
#include "ops.h"
#include "../util/proc.h"

struct three_acc {
	uint64_t first_start, last_end;
	struct dm_range gap[2]; /* gap[0] the biggest, gap[1] the second; empty when start == end */
	size_t nr;
};

static uint64_t range_len(const struct dm_range *r)
{
	return r->end - r->start;
}

static void three_add(struct three_acc *acc, uint64_t start, uint64_t end)
{
	struct dm_range g;

	if (start >= end)
		return;
	if (!acc->nr++) {
		acc->first_start = start;
		acc->last_end = end;
		return;
	}
	if (start < acc->last_end) {
		/* Out of order or overlapping (garbage input): no gap, keep the hull. */
		if (end > acc->last_end)
			acc->last_end = end;
		return;
	}
	g.start = acc->last_end;
	g.end = start;
	acc->last_end = end;
	/* Strictly bigger wins, so among equal gaps the lowest one is kept. */
	if (range_len(&g) > range_len(&acc->gap[0])) {
		acc->gap[1] = acc->gap[0];
		acc->gap[0] = g;
	} else if (range_len(&g) > range_len(&acc->gap[1])) {
		acc->gap[1] = g;
	}
}

static uint64_t align_down(uint64_t v)
{
	return v & ~(DM_MIN_REGION - 1);
}

static uint64_t align_up(uint64_t v)
{
	if (v > UINT64_MAX - (DM_MIN_REGION - 1))
		return align_down(v); /* the top page of the space: never a mapping */
	return align_down(v + DM_MIN_REGION - 1);
}

/* Append [start, end) aligned outward; merged into the previous range when
 * the alignment closes the gap between them (a gap under one page). */
static size_t emit(struct dm_range *out, size_t n, uint64_t start, uint64_t end)
{
	start = align_down(start);
	end = align_up(end);
	if (start >= end)
		return n;
	if (n && start <= out[n - 1].end) {
		if (end > out[n - 1].end)
			out[n - 1].end = end;
		return n;
	}
	out[n].start = start;
	out[n].end = end;
	return n + 1;
}

static int three_finish(const struct three_acc *acc, struct dm_range *ret, size_t cap)
{
	struct dm_range tmp[3], cut[2];
	size_t nr_cut = 0, n = 0, i;
	uint64_t pos;

	if (!acc->nr)
		return 0;
	for (i = 0; i < 2; i++)
		if (range_len(&acc->gap[i]))
			cut[nr_cut++] = acc->gap[i];
	if (nr_cut == 2 && cut[1].start < cut[0].start) {
		struct dm_range t = cut[0];

		cut[0] = cut[1];
		cut[1] = t;
	}
	pos = acc->first_start;
	for (i = 0; i < nr_cut; i++) {
		n = emit(tmp, n, pos, cut[i].start);
		pos = cut[i].end;
	}
	n = emit(tmp, n, pos, acc->last_end);
	if (n > cap)
		return -ERANGE;
	for (i = 0; i < n; i++)
		ret[i] = tmp[i];
	return (int)n;
}

int dm_layout_three_regions(const struct dm_range *maps, size_t nr, struct dm_range *ret,
			    size_t cap)
{
	struct three_acc acc = {0};
	size_t i;

	if ((!maps && nr) || (!ret && cap))
		return -EINVAL;
	for (i = 0; i < nr; i++)
		three_add(&acc, maps[i].start, maps[i].end);
	return three_finish(&acc, ret, cap);
}

static int vaddr_cb(const struct dm_map *m, void *userdata)
{
	/* [vsyscall] is listed by /proc but not in the kernel's VMA walk: with it
	 * the biggest gap would be stack -> vsyscall. */
	if (!dm_map_is_vsyscall(m))
		three_add(userdata, m->start, m->end);
	return 0;
}

int dm_layout_vaddr(const char *proc_root, pid_t pid, struct dm_range *ret, size_t cap,
		    struct dm_err *err)
{
	struct three_acc acc = {0};
	char path[PATH_MAX];
	int r;

	if (pid < 0 || (!ret && cap))
		return dm_err_set(err, -EINVAL, "vaddr layout: invalid arguments");
	r = dm_proc_path(path, sizeof(path), proc_root, pid, "maps");
	if (r < 0)
		return dm_err_set(err, r, "vaddr layout: proc path too long");
	r = dm_maps_foreach(path, vaddr_cb, &acc);
	if (r == -ENOENT || r == -ESRCH)
		return dm_err_set(err, -ESRCH, "vaddr layout: process %d is gone", (int)pid);
	if (r < 0)
		return dm_err_set(err, r, "vaddr layout: cannot read %s: %s", path,
				  r == -EACCES || r == -EPERM
					  ? "permission denied (needs ptrace read access)"
					  : "read failed");
	if (!acc.nr) {
		/* No mapping: a zombie or a kernel thread. */
		r = dm_proc_pid_alive(proc_root, pid);
		if (r == -ESRCH)
			return dm_err_set(err, -ESRCH, "vaddr layout: process %d is gone",
					  (int)pid);
		return 0;
	}
	r = three_finish(&acc, ret, cap);
	if (r < 0)
		return dm_err_set(err, r, "vaddr layout: %zu ranges do not fit in %zu", (size_t)3,
				  cap);
	return r;
}

int dm_layout_fixed(const struct dm_range *fixed, size_t nr, struct dm_range *ret, size_t cap)
{
	size_t i, n = 0;

	if ((!fixed && nr) || (!ret && cap))
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		uint64_t start = align_up(fixed[i].start);
		uint64_t end = align_down(fixed[i].end);

		if (start >= end)
			continue;
		if (n && start < ret[n - 1].end)
			return -EINVAL; /* unsorted or overlapping */
		if (n == cap)
			return -ERANGE;
		ret[n].start = start;
		ret[n].end = end;
		n++;
	}
	if (n > INT_MAX)
		return -ERANGE;
	return (int)n;
}
