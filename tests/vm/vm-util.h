/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the VM test programs share: what they read of a workload process (its
 * resident set, which of its pages are in memory, and on which node), and
 * the TLB flush a workload needs under TCG. Header-only (static inline: a
 * program that uses one of them only compiles without warnings).
 */
#ifndef DAMON_TESTS_VM_UTIL_H
#define DAMON_TESTS_VM_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <numa.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
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

/* CPU seconds (utime + stime) of the tasks listed in @dir (/proc: every
 * process, /proc/self/task: this process's threads) whose name starts with
 * @comm: "kdamond" for kernel DAMON's threads, "damon-mon" for libdamon's. */
static inline double cpu_of_comm(const char *dir, const char *comm)
{
	char path[320], buf[512], pat[32];
	double sum = 0;
	DIR *d = opendir(dir);
	struct dirent *de;

	snprintf(pat, sizeof(pat), "(%s", comm);
	while (d && (de = readdir(d))) {
		unsigned long ut, st;
		ssize_t n;
		char *p;
		int fd;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		if (!strstr(buf, pat))
			continue;
		p = strrchr(buf, ')');
		/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
		 * majflt cmajflt utime stime */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
				&st) == 2)
			sum += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	}
	if (d)
		closedir(d);
	return sum;
}

/*
 * Under TCG qemu sets a page's accessed bit only on a miss in its software
 * TLB, which grows until the guest flushes it: a workload that does not
 * flush about every millisecond is invisible to kernel DAMON and page_idle
 * (KERNELS.md). Toggling mprotect on 34+ touched pages forces a full flush.
 * A workload calls tlb_flush_tick() every few dozen pages it touches.
 */
#define TLB_FLUSH_PAGES 40

struct tlb_flusher {
	uint8_t *scratch;
	uint64_t last_ns;
};

static inline uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Return: 0, or -1 when the scratch pages cannot be mapped. */
static inline int tlb_flusher_init(struct tlb_flusher *f)
{
	f->scratch = mmap(NULL, TLB_FLUSH_PAGES * 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->scratch == MAP_FAILED)
		return -1;
	memset(f->scratch, 1, TLB_FLUSH_PAGES * 4096);
	f->last_ns = vm_now_ns();
	return 0;
}

/* Flush when a millisecond has passed since the last flush. */
static inline void tlb_flush_tick(struct tlb_flusher *f)
{
	if (vm_now_ns() - f->last_ns < 1000000)
		return;
	mprotect(f->scratch, TLB_FLUSH_PAGES * 4096, PROT_READ);
	mprotect(f->scratch, TLB_FLUSH_PAGES * 4096, PROT_READ | PROT_WRITE);
	for (int i = 0; i < TLB_FLUSH_PAGES; i++)
		f->scratch[i * 4096]++;
	f->last_ns = vm_now_ns();
}

static inline void tlb_flusher_fini(struct tlb_flusher *f)
{
	munmap(f->scratch, TLB_FLUSH_PAGES * 4096);
}

#endif
