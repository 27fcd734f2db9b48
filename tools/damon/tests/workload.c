// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The process the damon(1) tests watch: it maps SIZE MiB, prints where the
 * buffer and its hot part are, then writes one byte per page of the first
 * HOT MiB over and over for SECONDS, and exits with status 0.
 *
 *   workload SIZE_MIB HOT_MIB SECONDS
 *   -> "buf 0xSTART 0xEND hot 0xSTART 0xEND"
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t size, hot;
	double secs, end;
	volatile uint8_t *buf;

	if (argc != 4) {
		fprintf(stderr, "usage: workload SIZE_MIB HOT_MIB SECONDS\n");
		return 2;
	}
	size = strtoull(argv[1], NULL, 0) << 20;
	hot = strtoull(argv[2], NULL, 0) << 20;
	secs = atof(argv[3]);
	if (!size || hot > size)
		return 2;
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	/* every page exists: the cold part is mapped, just never touched again */
	for (size_t off = 0; off < size; off += 4096)
		buf[off] = 1;
	printf("buf 0x%" PRIxPTR " 0x%" PRIxPTR " hot 0x%" PRIxPTR " 0x%" PRIxPTR "\n",
	       (uintptr_t)buf, (uintptr_t)buf + size, (uintptr_t)buf, (uintptr_t)buf + hot);
	fflush(stdout);
	end = now_s() + secs;
	while (now_s() < end) {
		for (size_t off = 0; off < hot; off += 4096)
			buf[off]++;
		usleep(2000);
	}
	return 0;
}
