// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The small /proc (and /sys) text files libdamon reads, each input given
 * to every parser as if it were that file:
 *  - /proc/PID/stat (lib/util/proc.c: pid alive, an owner's start time, is
 *    the kdamond a kthread);
 *  - /proc/iomem, line by line and whole (util/proc.c, ops/pagemap.c; the
 *    kernel backend's paddr regions come from the same reader);
 *  - /proc/meminfo, a node's meminfo and /proc/pressure/memory
 *    (lib/actions/env.c);
 *  - the CapEff line of /proc/PID/status (lib/probe/caps.c).
 * The input is one text; the seeds are real files of each kind.
 *
 * Properties: no read past the NUL; a stat parsed has a state and a
 * NUL-terminated comm; an iomem line accepted has start < end; the System
 * RAM ranges are sorted, page-aligned, apart, and begin and end inside
 * lines the parser accepted; dm_proc_getline() returns only whole lines of the
 * text (or its last line), never the tail of a long one; a free rate is at
 * most 1000 permil.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "actions/actions.h"
#include "ops/pagemap.h"
#include "probe/probe.h"
#include "util/proc.h"

#define LINE_SZ 64 /* small, so that long lines are met often */

static const char *proc_root;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	proc_root = fuzz_scratch();
	return 0;
}

static void check_stat(const char *text)
{
	struct dm_proc_stat st;

	if (dm_proc_stat_parse(text, &st) < 0)
		return;
	FUZZ_CHECK(st.nr_fields >= 3 && st.nr_fields <= 22, "%u fields", st.nr_fields);
	FUZZ_CHECK(st.state && st.state != ' ', "state %d", st.state);
	FUZZ_CHECK(memchr(st.comm, '\0', sizeof(st.comm)), "comm without NUL");
	FUZZ_CHECK(strlen(st.comm) < strlen(text), "comm longer than the text");
}

/* Is @addr inside a System RAM line of @text? */
static bool in_some_line(const char *text, uint64_t addr)
{
	for (const char *line = text; line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		uint64_t a, b;

		if (dm_proc_iomem_ram(line, &a, &b) && a <= addr && addr <= b)
			return true;
	}
	return false;
}

static void check_iomem(const char *text, const uint8_t *data, size_t size)
{
	struct dm_range r[8];
	int n;

	for (const char *line = text; line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		uint64_t s, e;

		if (dm_proc_iomem_ram(line, &s, &e))
			FUZZ_CHECK(s < e && e != UINT64_MAX, "iomem %llx-%llx",
				   (unsigned long long)s, (unsigned long long)e);
	}
	/* whole, as page_idle's paddr layout reads it (through a file: only
	 * texts that can hold a System RAM line, the others cost a write for
	 * nothing) */
	if (!strstr(text, "RAM"))
		return;
	fuzz_put(proc_root, "iomem", data, size);
	n = dm_iomem_system_ram(proc_root, r, 1 + size % 8);
	FUZZ_CHECK(n == -ENOENT || (n > 0 && n <= 8), "%d ranges", n);
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(r[i].start < r[i].end, "range %d empty", i);
		FUZZ_CHECK(!(r[i].start % 4096) && !(r[i].end % 4096), "range %d unaligned", i);
		FUZZ_CHECK(!i || r[i - 1].end <= r[i].start, "ranges %d, %d", i - 1, i);
		/* both ends within System RAM (overlapping lines are merged);
		 * a line cut by a NUL ends there for fgets only */
		if (!memchr(data, '\0', size))
			FUZZ_CHECK(in_some_line(text, r[i].start) &&
					   in_some_line(text, r[i].end - 1),
				   "range %d (%llx-%llx) from no line", i,
				   (unsigned long long)r[i].start, (unsigned long long)r[i].end);
	}
}

/* Every line dm_proc_getline() returns is a whole line of @data. */
static void check_getline(const uint8_t *data, size_t size)
{
	char line[LINE_SZ];
	size_t pos = 0;
	FILE *f;

	if (memchr(data, '\0', size))
		return; /* fgets' lines end at NUL for strlen only */
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return;
	while (dm_proc_getline(f, line, sizeof(line))) {
		size_t n = strlen(line);
		const char *at;

		FUZZ_CHECK(n < sizeof(line), "line of %zu", n);
		/* a whole line of the text (the last one may lack its '\n'),
		 * at or after where the previous one ended */
		for (at = (const char *)data + pos;; at++) {
			at = memmem(at, size - (size_t)(at - (const char *)data), line, n);
			FUZZ_CHECK(at, "\"%s\" is not a whole line of the text", line);
			if ((at == (const char *)data || at[-1] == '\n') &&
			    (line[n - 1] == '\n' || at + n == (const char *)data + size))
				break;
		}
		pos = (size_t)(at - (const char *)data) + n;
	}
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	uint64_t total = 0, fr = 0, v;
	uint32_t rate;

	check_stat(text);
	check_iomem(text, data, size);
	check_getline(data, size);

	if (!dm_meminfo_field(text, "MemTotal", &total) &&
	    !dm_meminfo_field(text, "MemFree", &fr) && !dm_free_rate(total, fr, &rate))
		FUZZ_CHECK(rate <= 1000, "free rate %u", rate);
	dm_meminfo_field(text, "", &v);
	dm_psi_some_total(text, &v);
	dm_status_capeff(text, &v);
	free(text);
	return 0;
}
