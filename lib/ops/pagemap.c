// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Batched readers of pagemap, kpageflags and the idle page bitmap, and the
 * System RAM ranges of /proc/iomem (pagemap.h).
 *
 * Costs that shaped this (KERNELS.md): a pread costs 1.5-2.2 us on the
 * development machine whatever its size, an extra pagemap entry 4-19 ns. So
 * entries close together are fetched in one call, and a run never spans more
 * than DM_PM_BATCH entries (4 KiB, also the most the idle bitmap moves in
 * one call).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pagemap.h"
#include "../util/proc.h"
#include "../util/fail.h"

static ssize_t io_pread(const struct dm_pfile_io *io, int fd, void *buf, size_t len, off_t off)
{
	ssize_t r;

	do {
		r = io && io->pread ? io->pread(fd, buf, len, off, io->arg)
				    : (DM_FAIL(EIO) ? -1 : pread(fd, buf, len, off));
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static ssize_t io_pwrite(const struct dm_pfile_io *io, int fd, const void *buf, size_t len,
			 off_t off)
{
	ssize_t r;

	do {
		r = io && io->pwrite ? io->pwrite(fd, buf, len, off, io->arg)
				     : (DM_FAIL(EIO) ? -1 : pwrite(fd, buf, len, off));
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t dm_pfile_read(int fd, const uint64_t *idx, size_t n, uint64_t *out,
		      const struct dm_pfile_io *io, uint64_t *ret_calls)
{
	uint64_t buf[DM_PM_BATCH];
	size_t i = 0, got_total = 0;

	if ((!idx || !out) && n)
		return -EINVAL;
	while (i < n) {
		uint64_t lo = idx[i], hi = idx[i];
		size_t j = i + 1, want, have = 0;

		if (lo > (uint64_t)INT64_MAX / 8 - DM_PM_BATCH)
			return -EINVAL;
		/* Extend the run while the indexes ascend within one batch. */
		while (j < n && idx[j] >= idx[j - 1] && idx[j] - lo < DM_PM_BATCH) {
			hi = idx[j];
			j++;
		}
		want = (size_t)(hi - lo + 1) * 8;
		while (have < want) {
			ssize_t r = io_pread(io, fd, (char *)buf + have, want - have,
					     (off_t)(lo * 8 + have));

			if (ret_calls)
				(*ret_calls)++;
			if (r < 0)
				return r;
			if (r == 0)
				break; /* end of file: never retried */
			have += (size_t)r;
		}
		have /= 8;
		for (; i < j; i++) {
			uint64_t k = idx[i] - lo;

			if (k < have) {
				out[i] = buf[k];
				got_total++;
			} else {
				out[i] = 0;
			}
		}
	}
	return (ssize_t)got_total;
}

ssize_t dm_idle_bitmap_io(int fd, bool write, const uint64_t *word, uint64_t *val, uint8_t *ok,
			  size_t n, const struct dm_pfile_io *io, uint64_t *ret_calls)
{
	uint64_t buf[DM_PM_BATCH];
	size_t i = 0, moved = 0;

	if ((!word || !val || !ok) && n)
		return -EINVAL;
	while (i < n) {
		uint64_t lo = word[i];
		size_t j = i + 1, cnt, done = 0;
		bool end = false;

		if (lo > (uint64_t)INT64_MAX / 8 - DM_PM_BATCH)
			return -EINVAL;
		while (j < n && word[j] == word[j - 1] + 1 && j - i < DM_PM_BATCH)
			j++;
		cnt = j - i;
		if (write)
			memcpy(buf, &val[i], cnt * 8);
		while (done < cnt && !end) {
			ssize_t r;

			if (write)
				r = io_pwrite(io, fd, buf + done, (cnt - done) * 8,
					      (off_t)((lo + done) * 8));
			else
				r = io_pread(io, fd, buf + done, (cnt - done) * 8,
					     (off_t)((lo + done) * 8));
			if (ret_calls)
				(*ret_calls)++;
			if (r == -ENXIO || r == 0) {
				/* Past the end of RAM, or its last partial word:
				 * nothing will ever move there. */
				end = true;
				break;
			}
			if (r < 0)
				return r;
			done += (size_t)r / 8;
			if ((size_t)r % 8)
				end = true; /* never happens: the kernel moves whole words */
		}
		for (size_t k = 0; k < cnt; k++) {
			ok[i + k] = k < done;
			if (!write)
				val[i + k] = k < done ? buf[k] : 0;
		}
		moved += done;
		i = j;
	}
	return (ssize_t)moved;
}

static int cmp_range_size_desc(const void *a, const void *b)
{
	const struct dm_range *x = a, *y = b;
	uint64_t sx = x->end - x->start, sy = y->end - y->start;

	return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static int cmp_range_start(const void *a, const void *b)
{
	const struct dm_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int dm_iomem_system_ram(const char *proc_root, struct dm_range *ret, size_t cap)
{
	struct dm_range v[64];
	char path[PATH_MAX], line[256];
	size_t n = 0, k = 0;
	FILE *f;

	if (!ret || !cap)
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/iomem",
		     proc_root && *proc_root ? proc_root : DM_PROC_ROOT_DEFAULT) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	f = DM_FAIL(EACCES) ? NULL : fopen(path, "re");
	if (!f)
		return -errno;
	while (dm_proc_getline(f, line, sizeof(line))) {
		uint64_t s, e, start, end;

		/* no page starts in [s, e] when aligning s up wraps around */
		if (!dm_proc_iomem_ram(line, &s, &e) || s > UINT64_MAX - (DM_MIN_REGION - 1))
			continue;
		start = (s + DM_MIN_REGION - 1) & ~(DM_MIN_REGION - 1);
		end = (e + 1) & ~(DM_MIN_REGION - 1); /* iomem ends are inclusive */
		if (start >= end)
			continue;
		if (n == sizeof(v) / sizeof(v[0])) {
			/* Keep the biggest: replace the smallest when bigger. */
			qsort(v, n, sizeof(v[0]), cmp_range_size_desc);
			if (end - start > v[n - 1].end - v[n - 1].start)
				v[n - 1] = (struct dm_range){start, end};
			continue;
		}
		v[n++] = (struct dm_range){start, end};
	}
	fclose(f);
	if (!n)
		return -ENOENT;
	/* top-level entries never overlap; should two, their union counts once
	 * (regions of a context must not overlap) */
	qsort(v, n, sizeof(v[0]), cmp_range_start);
	for (size_t i = 1; i < n; i++) {
		if (v[i].start >= v[k].end)
			v[++k] = v[i];
		else if (v[i].end > v[k].end)
			v[k].end = v[i].end;
	}
	n = k + 1;
	if (n > cap) {
		qsort(v, n, sizeof(v[0]), cmp_range_size_desc);
		n = cap;
	}
	qsort(v, n, sizeof(v[0]), cmp_range_start);
	memcpy(ret, v, n * sizeof(v[0]));
	return (int)n;
}
