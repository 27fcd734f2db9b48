/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the VM test programs read of a workload process: its resident set,
 * which of its pages are in memory, and on which node. Header-only (static
 * inline: a program that uses one of them only compiles without warnings).
 */
#ifndef DAMON_TESTS_VM_UTIL_H
#define DAMON_TESTS_VM_UTIL_H

#include <fcntl.h>
#include <numa.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The "KEY: N kB" line of /proc/PID/FILE in bytes (0 when unreadable). */
static inline uint64_t proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[128];
	size_t kl = strlen(key);
	unsigned long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':' &&
		    sscanf(line + kl + 1, " %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

/* VmRSS of @pid in bytes (0 when unreadable). */
static inline uint64_t vmrss(pid_t pid)
{
	return proc_kb(pid, "status", "VmRSS");
}

/* Bytes of [addr, addr + sz) of @pid present in memory (pagemap bit 63),
 * 4 KiB pages. */
static inline uint64_t present(pid_t pid, uint64_t addr, uint64_t sz)
{
	enum { BATCH = 512, PG = 4096 };
	uint64_t e[BATCH], n = 0;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (uint64_t off = 0; off < sz; off += BATCH * PG) {
		uint64_t k = (sz - off) / PG < BATCH ? (sz - off) / PG : BATCH;
		ssize_t got = pread(fd, e, k * 8, (off_t)((addr + off) / PG * 8));

		for (ssize_t i = 0; i < got / 8; i++)
			n += e[i] >> 63;
	}
	close(fd);
	return n * PG;
}

/* Bytes of @pid's [addr, addr + sz) on node @nid (@pid 0: this process). */
static inline uint64_t on_node(pid_t pid, uintptr_t addr, size_t sz, int nid)
{
	enum { BATCH = 512, PG = 4096 };
	void *pages[BATCH];
	int status[BATCH];
	uint64_t n = 0;

	for (size_t off = 0; off < sz; off += BATCH * PG) {
		size_t k = 0;

		for (; k < BATCH && off + k * PG < sz; k++)
			pages[k] = (void *)(addr + off + k * PG);
		if (numa_move_pages(pid, k, pages, NULL, status, 0))
			continue;
		for (size_t i = 0; i < k; i++)
			n += status[i] == nid;
	}
	return n * PG;
}

#endif
