// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Where the huge pages are. PAGEMAP_SCAN on /proc/self/pagemap (Linux 6.7,
 * unprivileged for one's own process) says per 4 KiB page of the extents
 * whether it is present and whether a huge page (PMD) maps it: what
 * AnonHugePages of smaps sums per mapping, but per page, so that hot and
 * cold can be told apart inside one mapping.
 *
 * Hot memory is counted in bytes: the bytes of the hot items and of the
 * index, and how many of those bytes lie in huge pages. (A small hot item
 * shares its page with cold ones in jemalloc's slabs; counting its whole
 * page as hot would make 100 bytes weigh 4 KiB.) Cold memory is counted in
 * pages: every page of the extents that holds no hot byte; the cold pages
 * in huge pages are the waste.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jthp.h"

#define MAX_RANGES 4096

/* Per page of the extents: */
#define PG_PRESENT 1
#define PG_HUGE	   2
#define PG_HOT	   4

struct pagemap {
	struct damon_addr_range r[MAX_RANGES];
	uint64_t first_page[MAX_RANGES]; /* index of each range's first page */
	size_t n;
	uint8_t *pg; /* PG_* per page */
	struct mem_stats *st;
};

/* The page index of @addr, or UINT64_MAX when outside the extents. */
static uint64_t page_index(const struct pagemap *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr < m->r[mid].start)
			hi = mid;
		else if (addr >= m->r[mid].end)
			lo = mid + 1;
		else
			return m->first_page[mid] + (addr - m->r[mid].start) / PAGE_SZ;
	}
	return UINT64_MAX;
}

/* Count the hot bytes of [start, end), page by page. */
static void count_hot(uint64_t start, uint64_t end, void *arg)
{
	struct pagemap *m = arg;

	for (uint64_t a = start; a < end;) {
		uint64_t next = (a & ~(PAGE_SZ - 1)) + PAGE_SZ, i = page_index(m, a);
		uint64_t bytes = (next < end ? next : end) - a;

		if (i != UINT64_MAX) {
			m->pg[i] |= PG_HOT;
			m->st->hot += bytes;
			if (m->pg[i] & PG_HUGE)
				m->st->hot_huge += bytes;
		}
		a = next;
	}
}

/* Mark the present pages of [start, end), and which are huge. */
static int scan(int fd, struct pagemap *m, uint64_t start, uint64_t end)
{
	struct pm_region vec[512];
	struct pm_scan a = {
		.size = sizeof(a),
		.start = start,
		.end = end,
		.vec = (uintptr_t)vec,
		.vec_len = 512,
		.category_anyof_mask = PM_PRESENT,
		.return_mask = PM_PRESENT | PM_HUGE,
	};

	while (a.start < end) {
		long n = ioctl(fd, PM_SCAN, &a);

		if (n < 0)
			return -errno;
		for (long k = 0; k < n; k++) {
			uint8_t f = PG_PRESENT | (vec[k].categories & PM_HUGE ? PG_HUGE : 0);

			for (uint64_t p = vec[k].start; p < vec[k].end; p += PAGE_SZ) {
				uint64_t i = page_index(m, p);

				if (i != UINT64_MAX)
					m->pg[i] |= f;
			}
		}
		if (a.walk_end <= a.start)
			break;
		a.start = a.walk_end;
	}
	return 0;
}

/* Lay the extents out page by page, flagged present / huge / hot. */
static int build(struct pagemap *m, struct extents *x, const struct kv *kv, struct mem_stats *st,
		 char *msg, size_t msg_sz)
{
	uint64_t pages = 0;
	int fd, n, err = 0;

	memset(st, 0, sizeof(*st));
	m->st = st;
	n = ext_ranges(x, m->r, MAX_RANGES, NULL);
	if (n < 0) {
		snprintf(msg, msg_sz, "more than %d extent ranges", MAX_RANGES);
		return n;
	}
	m->n = (size_t)n;
	for (size_t i = 0; i < m->n; i++) {
		m->first_page[i] = pages;
		pages += (m->r[i].end - m->r[i].start) / PAGE_SZ;
	}
	m->pg = calloc(pages ? pages : 1, 1);
	if (!m->pg)
		return -ENOMEM;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		snprintf(msg, msg_sz, "cannot open /proc/self/pagemap: %s", strerror(-err));
		return err;
	}
	for (size_t i = 0; i < m->n && !err; i++)
		err = scan(fd, m, m->r[i].start, m->r[i].end);
	close(fd);
	if (err) {
		snprintf(msg, msg_sz,
			 "PAGEMAP_SCAN on /proc/self/pagemap: %s (Linux 6.7 or later "
			 "needed)",
			 strerror(-err));
		return err;
	}
	kv_for_each_hot(kv, count_hot, m);
	return 0;
}

int measure(struct extents *x, const struct kv *kv, struct mem_stats *ret, char *msg, size_t msg_sz)
{
	struct pagemap *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	err = build(m, x, kv, ret, msg, msg_sz);
	for (size_t r = 0; r < m->n && !err; r++) {
		for (uint64_t a = m->r[r].start; a < m->r[r].end; a += PAGE_SZ) {
			uint8_t f = m->pg[page_index(m, a)];

			ret->rss += f & PG_PRESENT ? PAGE_SZ : 0;
			ret->huge += f & PG_HUGE ? PAGE_SZ : 0;
			if (f & PG_HOT)
				continue;
			ret->cold += PAGE_SZ;
			ret->cold_rss += f & PG_PRESENT ? PAGE_SZ : 0;
			ret->cold_huge += f & PG_HUGE ? PAGE_SZ : 0;
		}
	}
	free(m->pg);
	free(m);
	return err;
}

void measure_regions(struct extents *x, const struct kv *kv, const struct damon_region *v, size_t n)
{
	struct pagemap *m = calloc(1, sizeof(*m));
	struct mem_stats st;
	char msg[160];

	if (!m || build(m, x, kv, &st, msg, sizeof(msg))) {
		free(m ? m->pg : NULL);
		free(m);
		return;
	}
	fprintf(stderr, "%-29s %8s %5s %4s %9s %9s\n", "region", "MiB", "acc", "age", "hot pages",
		"huge MiB");
	for (size_t i = 0; i < n; i++) {
		uint64_t hot = 0, huge = 0;

		for (uint64_t a = v[i].start; a < v[i].end; a += PAGE_SZ) {
			uint64_t k = page_index(m, a);
			uint8_t f = k == UINT64_MAX ? 0 : m->pg[k];

			hot += f & PG_HOT ? PAGE_SZ : 0;
			huge += f & PG_HUGE ? PAGE_SZ : 0;
		}
		fprintf(stderr, "%#" PRIx64 "-%#" PRIx64 " %8.1f %5u %4u %8.1f%% %9.1f\n",
			v[i].start, v[i].end, (double)(v[i].end - v[i].start) / MiB,
			v[i].nr_accesses, v[i].age,
			100.0 * (double)hot / (double)(v[i].end - v[i].start), (double)huge / MiB);
	}
	free(m->pg);
	free(m);
}

double thread_cpu_sec(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	double sec = -1;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], buf[512], *p;
		unsigned long ut, st;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		/* "pid (comm) state ppid ... utime stime": fields 14 and 15 */
		if (!p || strncmp(strchr(buf, '(') + 1, comm, strlen(comm)) ||
		    strchr(buf, '(')[1 + strlen(comm)] != ')')
			continue;
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			   &st) == 2)
			sec = (sec < 0 ? 0 : sec) +
			      (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	closedir(d);
	return sec;
}

const char *host_thp_mode(char *buf, size_t sz)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	char line[128], *a, *b;

	if (!f)
		return NULL;
	a = fgets(line, sizeof(line), f) ? strchr(line, '[') : NULL;
	fclose(f);
	b = a ? strchr(a, ']') : NULL;
	if (!b)
		return NULL;
	*b = '\0';
	snprintf(buf, sz, "%s", a + 1);
	return buf;
}
