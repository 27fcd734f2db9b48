// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * smoke — the VM harness's first test: does the guest look like the kernel
 * we think we booted? Runs only inside the test VM (it creates a kdamond in
 * DAMON's sysfs to read avail_operations); it refuses to run anywhere else.
 *
 *   smoke --damon none|OPS[,OPS...] [--nodes N] [--swap] [--damon-stat on|off]
 *
 * --damon none      /sys/kernel/mm/damon must not exist
 * --damon OPS,...   avail_operations must list exactly these operation sets
 * --nodes N         N NUMA nodes online
 * --swap            a swap device is active (/proc/swaps)
 * --damon-stat X    /sys/module/damon_stat/parameters/enabled is Y (on) / N
 *
 * /proc/self/pagemap must be readable in every case. Exit 0 when every
 * check passes, 1 otherwise (each failure says what it expected and got).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define DAMON_SYSFS "/sys/kernel/mm/damon"
#define KDAMONDS DAMON_SYSFS "/admin/kdamonds"
/* Created by the harness's base initramfs; never present on a real system. */
#define VM_MARKER "/etc/libdamon-vm"

static int failures;

#define FAIL(...)                                \
	do {                                     \
		printf("smoke: FAIL: " __VA_ARGS__); \
		putchar('\n');                   \
		failures++;                      \
	} while (0)

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	if (n < 0)
		return -errno;
	return 0;
}

/* Is every word of a (separated by any of seps) in b, and vice versa? */
static int same_words(const char *a, const char *b, const char *seps)
{
	char x[512], y[512], *w, *save;
	int n = 0, m = 0;

	snprintf(x, sizeof(x), "%s", a);
	for (w = strtok_r(x, seps, &save); w; w = strtok_r(NULL, seps, &save)) {
		const char *p = b;
		size_t len = strlen(w);
		int found = 0;

		n++;
		while ((p = strstr(p, w))) {
			if ((p == b || strchr(seps, p[-1])) && (p[len] == '\0' || strchr(seps, p[len]))) {
				found = 1;
				break;
			}
			p += len;
		}
		if (!found)
			return 0;
	}
	snprintf(y, sizeof(y), "%s", b);
	for (w = strtok_r(y, seps, &save); w; w = strtok_r(NULL, seps, &save))
		m++;
	return n == m;
}

static void check_damon(const char *want)
{
	char ops[512], path[256], expect[512];
	struct stat st;
	int r;

	if (!strcmp(want, "none")) {
		if (stat(DAMON_SYSFS, &st) == 0)
			FAIL("expected no %s, but it exists", DAMON_SYSFS);
		else
			printf("smoke: ok: no %s\n", DAMON_SYSFS);
		return;
	}
	if (stat(KDAMONDS, &st) < 0) {
		FAIL("expected %s (DAMON_SYSFS), got %s", KDAMONDS, strerror(errno));
		return;
	}
	/* avail_operations lives in a context: make one kdamond with one. */
	r = write_file(KDAMONDS "/nr_kdamonds", "1");
	if (!r)
		r = write_file(KDAMONDS "/0/contexts/nr_contexts", "1");
	if (r) {
		FAIL("creating a kdamond and a context in %s: %s", KDAMONDS, strerror(-r));
		return;
	}
	snprintf(path, sizeof(path), "%s/0/contexts/0/avail_operations", KDAMONDS);
	r = read_file(path, ops, sizeof(ops));
	if (r)
		FAIL("reading %s: %s", path, strerror(-r));
	for (char *p = ops; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(expect, sizeof(expect), "%s", want);
	for (char *p = expect; *p; p++)
		if (*p == ',')
			*p = ' ';
	if (!r && !same_words(expect, ops, " \n"))
		FAIL("avail_operations: expected \"%s\", got \"%s\"", expect, ops);
	else if (!r)
		printf("smoke: ok: avail_operations \"%s\"\n", ops);
	write_file(KDAMONDS "/0/contexts/nr_contexts", "0");
	write_file(KDAMONDS "/nr_kdamonds", "0");
}

static void check_pagemap(void)
{
	static volatile char page[4096];
	uint64_t entry;
	long psize = sysconf(_SC_PAGESIZE);
	int fd;
	ssize_t n;

	page[0] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		FAIL("expected /proc/self/pagemap, got %s", strerror(errno));
		return;
	}
	n = pread(fd, &entry, sizeof(entry), (off_t)((uintptr_t)page / psize * sizeof(entry)));
	close(fd);
	if (n != (ssize_t)sizeof(entry))
		FAIL("pagemap read: expected 8 bytes, got %zd (%s)", n, n < 0 ? strerror(errno) : "short");
	else if (!(entry >> 63))
		FAIL("pagemap: expected a touched page to be present, entry 0x%llx",
		     (unsigned long long)entry);
	else
		printf("smoke: ok: /proc/self/pagemap (entry 0x%llx)\n", (unsigned long long)entry);
}

static void check_nodes(int want)
{
	char online[128];
	int got = 0, a, b, r;
	char *p;

	r = read_file("/sys/devices/system/node/online", online, sizeof(online));
	if (r) {
		FAIL("expected %d NUMA nodes, reading node/online: %s", want, strerror(-r));
		return;
	}
	/* A list such as "0-1" or "0,2-3". */
	for (p = online; *p;) {
		if (sscanf(p, "%d-%d", &a, &b) == 2)
			got += b - a + 1;
		else if (sscanf(p, "%d", &a) == 1)
			got++;
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	if (got != want)
		FAIL("expected %d NUMA nodes online, got %d (\"%s\")", want, got, online);
	else
		printf("smoke: ok: %d NUMA nodes online (%s)\n", got, online);
}

static void check_swap(void)
{
	char buf[1024];
	int r = read_file("/proc/swaps", buf, sizeof(buf));

	/* The first line is a header; a device adds a second. */
	if (r)
		FAIL("expected /proc/swaps, got %s", strerror(-r));
	else if (!strchr(buf, '\n'))
		FAIL("expected an active swap device, /proc/swaps lists none");
	else
		printf("smoke: ok: swap active (%s)\n", strchr(buf, '\n') + 1);
}

static void check_damon_stat(const char *want)
{
	char buf[16];
	const char *path = "/sys/module/damon_stat/parameters/enabled";
	int r = read_file(path, buf, sizeof(buf));
	const char *expect = !strcmp(want, "on") ? "Y" : "N";

	if (r)
		FAIL("expected %s = %s, got %s", path, expect, strerror(-r));
	else if (strcmp(buf, expect))
		FAIL("expected %s = %s, got %s", path, expect, buf);
	else
		printf("smoke: ok: damon_stat enabled=%s\n", buf);
}

static int usage(void)
{
	fprintf(stderr, "usage: smoke --damon none|OPS[,OPS...] [--nodes N] [--swap] "
			"[--damon-stat on|off]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *damon = NULL, *damon_stat = NULL;
	int nodes = 0, swap = 0;
	struct utsname u;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--damon") && i + 1 < argc)
			damon = argv[++i];
		else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			nodes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--swap"))
			swap = 1;
		else if (!strcmp(argv[i], "--damon-stat") && i + 1 < argc)
			damon_stat = argv[++i];
		else
			return usage();
	}
	if (!damon)
		return usage();
	/* Never touch a real system's DAMON: only the harness's guest has this file. */
	if (stat(VM_MARKER, &st) < 0) {
		fprintf(stderr, "smoke: refusing to run outside the test VM (no %s)\n", VM_MARKER);
		return 2;
	}
	uname(&u);
	printf("smoke: kernel %s\n", u.release);

	check_pagemap();
	check_damon(damon);
	if (nodes)
		check_nodes(nodes);
	if (swap)
		check_swap();
	if (damon_stat)
		check_damon_stat(damon_stat);

	printf("smoke: %s (%d failure%s)\n", failures ? "FAILED" : "passed", failures,
	       failures == 1 ? "" : "s");
	return failures ? 1 : 0;
}
