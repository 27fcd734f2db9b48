// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The fault injection test's picture of what the process holds, and the
 * check that a scenario left nothing behind (tests/test-faultinj.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"
#include "faultinj.h"

#include "ops/uffd_abi.h"

void misbehaved(struct outcome *o, const char *fmt, ...)
{
	size_t n = strlen(o->why);
	va_list ap;

	o->bad = 1;
	va_start(ap, fmt);
	vsnprintf(o->why + n, sizeof(o->why) - n, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* What a scenario may leave behind: nothing                                */
/* ------------------------------------------------------------------------ */

/*
 * The mappings, without the heap and the anonymous read-write ones outside
 * the test's buffer: malloc grows and trims those as it likes. Under ASan
 * every anonymous mapping outside the buffer is left out: its allocator
 * reserves and gives back PROT_NONE ranges as it likes too. The buffer's
 * lines always count: an armed page or protection left there splits it.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ANON_NOISE(perms) true
#else
#define ANON_NOISE(perms) (!strcmp(perms, "rw-p"))
#endif
static char *read_maps(void)
{
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap), line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	if (!out || !f)
		abort();
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char perms[8] = "", name[256] = "";
		unsigned long long s = 0, e = 0;
		bool in_buf;

		sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &s, &e, perms, name);
		in_buf = s < (uintptr_t)buf + BUF_SZ && (uintptr_t)buf < e;
		if (!strcmp(name, "[heap]") || (!name[0] && !in_buf && ANON_NOISE(perms)))
			continue;
		if (len + strlen(line) + 1 > cap) {
			cap *= 2;
			out = realloc(out, cap);
			if (!out)
				abort();
		}
		strcpy(out + len, line);
		len += strlen(line);
	}
	fclose(f);
	return out;
}

static void read_fds(char *out, size_t sz)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	out[0] = '\0';
	while (d && (e = readdir(d))) {
		char p[300], l[256];
		ssize_t k;

		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		k = readlink(p, l, sizeof(l) - 1);
		l[k > 0 ? k : 0] = '\0';
		n += (size_t)snprintf(out + n, n < sz ? sz - n : 0, "%s=%s ", e->d_name, l);
	}
	if (d)
		closedir(d);
}

void trace_take(struct trace *t)
{
	t->threads = dm_test_count_dir("/proc/self/task");
	read_fds(t->fds, sizeof(t->fds));
	t->maps = read_maps();
}

/* Any mapping still registered with a userfaultfd for write protection. */
static bool wp_registered_left(char *what, size_t sz)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	bool found = false;

	while (pm >= 0 && f && !found && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		struct page_region pr;
		struct pm_scan_arg a = {.size = sizeof(a)};

		if (sscanf(line, "%llx-%llx", &s, &e) != 2)
			continue;
		a.start = s;
		a.end = e;
		a.vec = (uint64_t)(uintptr_t)&pr;
		a.vec_len = 1;
		a.category_mask = PAGE_IS_WPALLOWED;
		a.return_mask = PAGE_IS_WPALLOWED;
		if (ioctl(pm, PAGEMAP_SCAN, &a) > 0) {
			snprintf(what, sz, "%s", line);
			found = true;
		}
	}
	if (f)
		fclose(f);
	if (pm >= 0)
		close(pm);
	return found;
}

void trace_check(struct outcome *o, const struct trace *before)
{
	struct trace now;
	char what[512];

	/* the monitor thread may still be on its way out of a failed start */
	for (int i = 0; i < 100 && dm_test_count_dir("/proc/self/task") != before->threads; i++)
		usleep(10000);
	trace_take(&now);
	if (now.threads != before->threads) {
		misbehaved(o, "left %d threads, %d before; ", now.threads, before->threads);
	}
	if (strcmp(now.fds, before->fds))
		misbehaved(o, "left fds: before [%s] after [%s]; ", before->fds, now.fds);
	if (strcmp(now.maps, before->maps))
		misbehaved(o, "mappings changed:\n--- before\n%s--- after\n%s", before->maps,
			   now.maps);
	if (wp_registered_left(what, sizeof(what)))
		misbehaved(o, "a mapping is still registered for write protection: %s", what);
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		misbehaved(o, "a child process was left");
	free(now.maps);
}
