// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Snapshots from tried_regions: the match-all stat scheme (kwrite.c) asks
 * the kdamond to list every region it tried, which is every region; read
 * when the tracepoint stream cannot be had (trace.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel_int.h"
#include "../util/fail.h"

#define MAX_TRIED (1u << 20)

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The region directories of @dir, ascending. Their names need not be
 * 0..n-1: 6.12 numbers tried regions across all schemes of a context (with
 * two schemes, the second one's are 1, 3, 5, ...).
 */
static int list_regions(struct dm_kernel *k, const char *dir, size_t *ret, struct dm_err *err)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int fd;

	fd = DM_FAIL(EACCES) ? -1 : openat(k->fs.fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return dm_err_set(err, -errno, "kernel: %s/%s cannot be listed: %s", k->fs.root,
				  dir, strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	}
	while ((de = readdir(d))) {
		uint64_t x;

		if (!dm_parse_u64(de->d_name, &x) || x >= UINT32_MAX)
			continue;
		if (n == MAX_TRIED) {
			closedir(d);
			return dm_err_set(err, -E2BIG, "kernel: %s/%s lists more than %u regions",
					  k->fs.root, dir, MAX_TRIED);
		}
		if (n == k->idxcap) {
			size_t cap = n ? n * 2 : 256;
			uint32_t *v =
				dm_realloc(k->alloc, k->idxbuf, n * sizeof(*v), cap * sizeof(*v));

			if (!v) {
				closedir(d);
				return dm_err_set(err, -ENOMEM, "kernel: out of memory");
			}
			k->idxbuf = v;
			k->idxcap = cap;
		}
		k->idxbuf[n++] = (uint32_t)x;
	}
	closedir(d);
	if (n)
		qsort(k->idxbuf, n, sizeof(*k->idxbuf), cmp_u32);
	*ret = n;
	return 0;
}

int dm_kernel_read_tried_dir(struct dm_kernel *k, const char *dir, size_t *ret_n,
			     struct dm_err *err)
{
	uint64_t prev_end = 0;
	uint32_t tpos = 0;
	size_t n = 0;
	int rc;

	rc = list_regions(k, dir, &n, err);
	if (rc)
		return rc;
	if (dm_kernel_regbuf(k, n))
		return dm_err_set(err, -ENOMEM, "kernel: out of memory");
	for (size_t j = 0; j < n; j++) {
		static const char *const f[] = {"start", "end", "nr_accesses", "age"};
		struct dm_kreg *g = &k->regbuf[j];
		uint32_t name = k->idxbuf[j];
		uint64_t v[4];

		for (int i = 0; i < 4; i++) {
			rc = dm_sysfs_read_u64(&k->fs, &v[i], err, "%s/%u/%s", dir, name, f[i]);
			if (rc)
				return rc;
		}
		if (v[1] <= v[0])
			return dm_err_set(err, -EINVAL,
					  "kernel: %s/%s/%u is an empty or reversed "
					  "region",
					  k->fs.root, dir, name);
		/*
		 * tried_regions carry no target: the kernel lists them target by
		 * target in address order, so an address going back starts the
		 * next target. (Targets whose ranges ascend across the boundary
		 * cannot be told apart this way; the tracepoint stream can.)
		 */
		if (j && v[0] < prev_end && tpos + 1 < k->nr_targets)
			tpos++;
		prev_end = v[1];
		g->tpos = tpos;
		g->start = v[0];
		g->end = v[1];
		g->nr_accesses = v[2] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[2];
		g->age = v[3] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[3];
	}
	*ret_n = n;
	return 0;
}

/*
 * tried_regions of the match-all scheme: ask, wait, read. Some kernels
 * return from the request while they still replace the directories, so a
 * region that vanishes under us means: read again.
 */
int dm_kernel_read_tried(struct dm_kernel *k, struct dm_err *err)
{
	char dir[160];
	size_t n = 0;
	int rc;

	rc = dm_sysfs_write(&k->fs, "update_schemes_tried_regions", err, DM_KDS "/0/state");
	if (rc)
		return rc;
	snprintf(dir, sizeof(dir), DM_KCTX "/schemes/%zu/tried_regions", k->nr_schemes);
	for (int tries = 0;; tries++) {
		rc = dm_kernel_read_tried_dir(k, dir, &n, err);
		if (rc != -ENOENT || tries == 20)
			break;
		k->tried_retries++;
		usleep(5000);
	}
	if (rc)
		return rc;
	return dm_kernel_publish(k, n, err);
}
