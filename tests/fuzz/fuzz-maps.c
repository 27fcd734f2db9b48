// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * /proc/PID/maps and smaps (lib/ops/maps.c) and the three-region layout
 * built on them (lib/ops/layout.c). The input is the text of a maps or smaps
 * file; smaps is maps with "Key: value" lines after each mapping, which the
 * parser must pass over (lib has no smaps parser of its own).
 *
 * Properties: every mapping accepted has start < end and a NUL-terminated
 * name; the text reader and the file reader (a memfd, read in 8 KiB pieces)
 * accept the same mappings when the text has no NUL and no line near 8 KiB;
 * the ranges handed to the layout ascend; the layout is sorted, page-aligned
 * and without overlap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#include "ops/maps.h"
#include "ops/ops.h"

#define MAX_MAPS 256

struct collect {
	struct dm_map maps[MAX_MAPS];
	size_t n, total;
};

static int collect_cb(const struct dm_map *m, void *ud)
{
	struct collect *c = ud;

	FUZZ_CHECK(m->start < m->end, "%llx-%llx", (unsigned long long)m->start,
		   (unsigned long long)m->end);
	FUZZ_CHECK(memchr(m->name, '\0', sizeof(m->name)), "name without NUL");
	if (c->n < MAX_MAPS)
		c->maps[c->n++] = *m;
	c->total++;
	return 0;
}

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	memfd = memfd_create("fuzz-maps", MFD_CLOEXEC);
	if (memfd < 0)
		abort();
	snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	return 0;
}

/* Lines the two readers treat alike: no NUL, none of 8190 bytes or more. */
static int readers_agree(const uint8_t *data, size_t size)
{
	size_t line = 0;

	for (size_t i = 0; i < size; i++) {
		if (!data[i])
			return 0;
		line = data[i] == '\n' ? 0 : line + 1;
		if (line >= 8190)
			return 0;
	}
	return 1;
}

static void check_layout(const struct dm_range *r, int n)
{
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(r[i].start < r[i].end, "layout range %d empty", i);
		FUZZ_CHECK(!(r[i].start % DM_MIN_REGION) && !(r[i].end % DM_MIN_REGION),
			   "layout range %d not aligned", i);
		FUZZ_CHECK(!i || r[i - 1].end <= r[i].start, "layout ranges %d, %d overlap", i - 1,
			   i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct collect c, f;
	struct dm_range ranges[MAX_MAPS], three[3];
	char *text = fuzz_text(data, size), *save = NULL;
	size_t nr;
	int n;

	c.n = c.total = 0;
	FUZZ_CHECK(dm_maps_foreach_text(text, size, collect_cb, &c) == 0, "text reader failed");

	/* the file reader, on the same bytes */
	if (ftruncate(memfd, 0) == 0 && pwrite(memfd, data, size, 0) == (ssize_t)size) {
		f.n = f.total = 0;
		FUZZ_CHECK(dm_maps_foreach(memfd_path, collect_cb, &f) == 0, "file reader failed");
		if (readers_agree(data, size)) {
			FUZZ_CHECK(f.total == c.total, "file reader %zu mappings, text reader %zu",
				   f.total, c.total);
			for (size_t i = 0; i < c.n; i++)
				FUZZ_CHECK(!memcmp(&f.maps[i], &c.maps[i],
						   offsetof(struct dm_map, name)) &&
						   !strcmp(f.maps[i].name, c.maps[i].name),
					   "mapping %zu differs", i);
		}
	}

	/* line by line through the pure parser */
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct dm_map m;

		if (dm_maps_parse_line(line, &m) == 0)
			FUZZ_CHECK(m.start < m.end, "line accepted with start >= end");
	}
	free(text);

	nr = dm_maps_to_ranges(c.maps, c.n, ranges);
	FUZZ_CHECK(nr <= c.n, "more ranges than mappings");
	for (size_t i = 1; i < nr; i++)
		FUZZ_CHECK(ranges[i - 1].end <= ranges[i].start, "ranges %zu, %zu go back", i - 1,
			   i);
	n = dm_layout_three_regions(ranges, nr, three, 3);
	FUZZ_CHECK(n <= 3, "%d layout ranges", n);
	if (n > 0)
		check_layout(three, n);
	return 0;
}
