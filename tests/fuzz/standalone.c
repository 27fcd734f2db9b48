// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * main() for a fuzz target built without libFuzzer (gcc, or any build
 * without -Dfuzz=enabled): it runs every file of the corpus directories
 * given, then deterministic mutations of them, through the same
 * LLVMFuzzerTestOneInput(). meson test runs each target this way, so the
 * corpus (seeds and the inputs that once crashed) is replayed by every build,
 * the sanitizer builds included.
 *
 *   fuzz-NAME [-runs=N] [-seed=S] DIR_OR_FILE...
 *
 * The mutations are the ones that find bugs in text parsers: a byte
 * changed, the input cut, a huge number or a separator put in, a chunk
 * repeated, two inputs spliced.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define INPUT_MAX (1 << 16)
#define MAX_SEEDS 4096

struct seed {
	uint8_t *data;
	size_t len;
};

static struct seed seeds[MAX_SEEDS];
static uint8_t no_input[1];
static size_t nr_seeds;
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	buf = malloc(INPUT_MAX);
	if (!buf)
		abort();
	n = fread(buf, 1, INPUT_MAX, f);
	fclose(f);
	/* each seed runs as read, in a buffer of its own size (ASan sees
	 * every byte read past its end) */
	LLVMFuzzerTestOneInput(buf, n);
	if (nr_seeds < MAX_SEEDS)
		seeds[nr_seeds++] = (struct seed){buf, n};
	else
		free(buf);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void add_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		add_file(path);
		return;
	}
	/* sorted: the same order, so the same mutations, on every machine */
	n = scandir(path, &names, NULL, by_name);
	for (int i = 0; i < n; i++) {
		char p[4096];

		if (names[i]->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", path, names[i]->d_name);
			add_file(p);
		}
		free(names[i]);
	}
	free(names);
}

/* One mutation of @buf[0..*n) in place (room for INPUT_MAX bytes). */
static void mutate(uint8_t *buf, size_t *n)
{
	size_t len = *n, at = len ? next() % len : 0;

	switch (next() % 7) {
	case 0: /* a byte changed */
		if (len)
			buf[at] = (uint8_t)next();
		break;
	case 1: /* cut short */
		len = at;
		break;
	case 2: /* a huge or odd number put in */
	{
		static const char *const nums[] = {
			"18446744073709551616", "ffffffffffffffff", "4294967296", "-1", "0",
			"99999999999999999999"};
		const char *s = nums[next() % 6];
		size_t l = strlen(s);

		if (len + l <= INPUT_MAX) {
			memmove(buf + at + l, buf + at, len - at);
			memcpy(buf + at, s, l);
			len += l;
		}
		break;
	}
	case 3: /* a chunk repeated */
	{
		size_t cut = (size_t)(next() % (len - at + 1));

		if (len + cut <= INPUT_MAX) {
			memmove(buf + at + cut, buf + at, len - at);
			len += cut;
		}
		break;
	}
	case 4: /* a separator where something else was */
		if (len)
			buf[at] = (uint8_t) "- \n:/[()\t;=\0"[next() % 12];
		break;
	case 5: /* a run of random bytes (binary inputs: records, entries) */
		for (size_t k = 0, m = 1 + next() % 16; k < m && at + k < len; k++)
			buf[at + k] = (uint8_t)next();
		break;
	default: /* spliced with another seed */
	{
		const struct seed *o = &seeds[next() % nr_seeds];
		size_t from = o->len ? next() % o->len : 0, l = o->len - from;

		if (at + l > INPUT_MAX)
			l = INPUT_MAX - at;
		memcpy(buf + at, o->data + from, l);
		len = at + l;
		break;
	}
	}
	*n = len;
}

int main(int argc, char **argv)
{
	unsigned long runs = 10000, r;
	int nr_paths = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "-runs=", 6))
			runs = strtoul(argv[i] + 6, NULL, 0);
		else if (!strncmp(argv[i], "-seed=", 6))
			rng = strtoull(argv[i] + 6, NULL, 0) | 1;
		else if (argv[i][0] == '-')
			continue; /* a libFuzzer flag: meaningless here */
		else
			add_path(argv[i]), nr_paths++;
	}
	if (!nr_seeds)
		seeds[nr_seeds++] = (struct seed){no_input, 0};
	for (r = 0; r < runs; r++) {
		const struct seed *s = &seeds[next() % nr_seeds];
		size_t n = s->len;
		uint8_t *buf = malloc(INPUT_MAX), *exact;

		if (!buf)
			abort();
		memcpy(buf, s->data, n);
		for (int k = 0, edits = 1 + (int)(next() % 8); k < edits; k++)
			mutate(buf, &n);
		/* a buffer of the input's own size, as libFuzzer passes it */
		exact = malloc(n ? n : 1);
		if (!exact)
			abort();
		memcpy(exact, buf, n);
		free(buf);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	printf("%s: %zu corpus inputs from %d paths, %lu mutations: no crash, every property "
	       "held\n",
	       argv[0], nr_seeds, nr_paths, runs);
	for (size_t i = 0; i < nr_seeds; i++)
		if (seeds[i].data != no_input)
			free(seeds[i].data);
	return 0;
}
