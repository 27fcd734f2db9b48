// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Fuzz target for the /proc/PID/maps parser and the three-region layout.
 *
 * Built two ways: with clang -fsanitize=fuzzer it is a libFuzzer target
 * (LLVMFuzzerTestOneInput); as a plain meson test (FUZZ_STANDALONE) its own
 * main() feeds it this process's real maps text and a few hundred thousand
 * deterministic mutations of it (bytes flipped, cut, duplicated, numbers
 * blown up), under the sanitizers in the ASan build. The property: no crash,
 * no read out of bounds, and every accepted mapping has start < end, and
 * every layout it produces is sorted, page-aligned and non-overlapping.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/maps.h"
#include "ops/ops.h"

struct collect {
	struct dm_map maps[256];
	size_t n;
	int bad;
};

static int collect_cb(const struct dm_map *m, void *ud)
{
	struct collect *c = ud;

	if (m->start >= m->end)
		c->bad++;
	if (c->n < 256)
		c->maps[c->n++] = *m;
	return 0;
}

static int check_layout(const struct dm_range *r, int n)
{
	for (int i = 0; i < n; i++) {
		if (r[i].start >= r[i].end || r[i].start % DM_MIN_REGION || r[i].end % DM_MIN_REGION)
			return -1;
		if (i && r[i - 1].end > r[i].start)
			return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct collect c;
	struct dm_range ranges[256], three[3];
	char *text = malloc(size + 1);
	size_t nr;
	int n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	c.n = 0;
	c.bad = 0;
	dm_maps_foreach_text(text, size, collect_cb, &c);
	if (c.bad)
		abort();
	/* And line by line through the pure parser. */
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		struct dm_map m;

		if (dm_maps_parse_line(line, &m) == 0 && m.start >= m.end)
			abort();
	}
	free(text);
	nr = dm_maps_to_ranges(c.maps, c.n, ranges);
	n = dm_layout_three_regions(ranges, nr, three, 3);
	if (n > 0 && check_layout(three, n))
		abort();
	return 0;
}

#ifdef FUZZ_STANDALONE
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	static char seed[1 << 16], buf[1 << 17];
	unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 0) : 200000;
	size_t len = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (f) {
		len = fread(seed, 1, sizeof(seed) - 1, f);
		fclose(f);
	}
	LLVMFuzzerTestOneInput((const uint8_t *)seed, len);
	for (unsigned long r = 0; r < rounds; r++) {
		size_t n = len;

		memcpy(buf, seed, len);
		for (int k = 0, edits = 1 + (int)(next() % 8); k < edits && n; k++) {
			size_t at = next() % n;

			switch (next() % 5) {
			case 0: /* flip a byte */
				buf[at] = (char)next();
				break;
			case 1: /* cut the text short */
				n = at;
				break;
			case 2: /* a huge number */
				if (n + 20 < sizeof(buf)) {
					memmove(buf + at + 20, buf + at, n - at);
					memcpy(buf + at, "ffffffffffffffffffff", 20);
					n += 20;
				}
				break;
			case 3: /* duplicate a chunk */
				if (n * 2 < sizeof(buf)) {
					size_t cut = next() % (n - at + 1);

					memmove(buf + at + cut, buf + at, n - at);
					n += cut;
				}
				break;
			default: /* a separator where a digit was */
				buf[at] = "- \n:/["[next() % 6];
				break;
			}
		}
		LLVMFuzzerTestOneInput((const uint8_t *)buf, n);
	}
	printf("fuzz-maps: %lu mutated inputs, no crash, every accepted mapping and layout valid\n",
	       rounds);
	return 0;
}
#endif
