/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Which NUMA node each page of a range of this process is on, read often.
 * move_pages(2) with NULL nodes says it page by page: ~5 us a page in the
 * emulated guest (150-270 ms for 32768 pages). The page's frame number from
 * /proc/self/pagemap (root only) and the nodes' frame spans from
 * /proc/zoneinfo say the same in a quarter of that time. A caller compares
 * the two once (node_map_agree()) before trusting the second. A page under
 * migration reads as not present in pagemap (its entry is a swap-like
 * migration entry): -1, as move_pages says of a page not present.
 * Header-only, like vm-util.h.
 */
#ifndef DAMON_TESTS_VM_NODE_MAP_H
#define DAMON_TESTS_VM_NODE_MAP_H

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#define NODE_MAP_SPANS 16
#define NODE_MAP_PAGE  4096UL

struct node_map {
	struct {
		uint64_t start, end; /* frame numbers */
		int nid;
	} span[NODE_MAP_SPANS];
	int nr_spans;
	int pagemap_fd;
};

/* The zones' spans of every node. Return: 0, or -1 when there are none or
 * pagemap cannot be opened. */
static inline int node_map_init(struct node_map *m)
{
	unsigned long long v;
	uint64_t spanned = 0;
	char line[256];
	int nid = -1;
	FILE *f = fopen("/proc/zoneinfo", "re");

	m->nr_spans = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d, zone", &nid) == 1) {
			spanned = 0;
		} else if (sscanf(line, " spanned %llu", &v) == 1) {
			spanned = v;
		} else if (sscanf(line, " start_pfn: %llu", &v) == 1 && spanned &&
			   m->nr_spans < NODE_MAP_SPANS) {
			m->span[m->nr_spans].start = v;
			m->span[m->nr_spans].end = v + spanned;
			m->span[m->nr_spans++].nid = nid;
		}
	}
	if (f)
		fclose(f);
	m->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	return m->nr_spans && m->pagemap_fd >= 0 ? 0 : -1;
}

static inline int8_t node_map_pfn(const struct node_map *m, uint64_t pfn)
{
	for (int i = 0; i < m->nr_spans; i++)
		if (pfn >= m->span[i].start && pfn < m->span[i].end)
			return (int8_t)m->span[i].nid;
	return -1;
}

/* The node of each of the @n pages from @addr into @node, from pagemap. */
static inline int node_map_read(const struct node_map *m, const void *addr, size_t n, int8_t *node)
{
	enum { BATCH = 4096 };
	static uint64_t e[BATCH];

	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH;
		off_t at = (off_t)(((uintptr_t)addr / NODE_MAP_PAGE + i) * 8);

		if (pread(m->pagemap_fd, e, k * 8, at) != (ssize_t)(k * 8))
			return -EIO;
		for (size_t j = 0; j < k; j++)
			node[i + j] =
				(e[j] >> 63) ? node_map_pfn(m, e[j] & ((1ULL << 55) - 1)) : -1;
	}
	return 0;
}

/* The same from move_pages(2). Return: 0 or -errno. */
static inline int node_map_read_slow(const void *addr, size_t n, int8_t *node)
{
	enum { BATCH = 1024 };
	void *pages[BATCH];
	int status[BATCH];

	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH;

		for (size_t j = 0; j < k; j++)
			pages[j] = (char *)addr + (i + j) * NODE_MAP_PAGE;
		if (numa_move_pages(0, k, pages, NULL, status, 0))
			return -errno;
		for (size_t j = 0; j < k; j++)
			node[i + j] = (int8_t)(status[j] >= 0 ? status[j] : -1);
	}
	return 0;
}

/* Pages of the @n from @addr on which pagemap and move_pages disagree now
 * (@a, @b: n bytes of scratch each), or -1 when either cannot be read. */
static inline long node_map_agree(const struct node_map *m, const void *addr, size_t n, int8_t *a,
				  int8_t *b)
{
	long differ = 0;

	if (node_map_read(m, addr, n, a) || node_map_read_slow(addr, n, b))
		return -1;
	for (size_t i = 0; i < n; i++)
		differ += a[i] != b[i];
	return differ;
}

static inline void node_map_fini(struct node_map *m)
{
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
	m->pagemap_fd = -1;
}

#endif
