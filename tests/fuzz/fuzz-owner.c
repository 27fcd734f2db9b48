// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Ownership records of kernel DAMON (lib/kernel/owner.c): the input is the
 * text of a run directory's kdamond-N.owner, which any root process (or a
 * container sharing /run) may have written.
 *
 * Properties: a record parses, or is judged DM_OWNER_BAD, never anything in
 * between; a parsed record has an owner pid within 1..INT_MAX; writing a
 * parsed record and reading it back gives the same record; the judgement of
 * the file (against a recorded /proc where pid 77 lives in our namespace)
 * is one of the five states, and BAD exactly when the text does not parse.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#include "kernel/owner.h"

static char run[512], proc[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_scratch();
	static const char stat[] = "77 (owner) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 "
				   "5000 1000 100\n";

	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(proc, sizeof(proc), "%s/proc", dir);
	fuzz_mkdirs(dir, "run");
	fuzz_mkdirs(dir, "proc/self/ns");
	fuzz_mkdirs(dir, "proc/77");
	fuzz_put(dir, "proc/self/ns/pid", "", 0);
	fuzz_put(dir, "proc/77/stat", stat, sizeof(stat) - 1);
	return 0;
}

static int same(const struct dm_owner_rec *a, const struct dm_owner_rec *b)
{
	return a->owner == b->owner && a->start_time == b->start_time &&
	       a->kdamond_pid == b->kdamond_pid && a->ns.dev == b->ns.dev && a->ns.ino == b->ns.ino;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dm_owner_rec rec, back;
	char *text = fuzz_text(data, size);
	enum dm_owner_state st;
	int parsed = dm_owner_parse(text, &rec);

	FUZZ_CHECK(parsed == 0 || parsed == -EINVAL, "parse returned %d", parsed);
	if (!parsed) {
		FUZZ_CHECK(rec.owner > 0 && rec.kdamond_pid >= 0, "owner %d, kdamond %d",
			   (int)rec.owner, (int)rec.kdamond_pid);
		FUZZ_CHECK(dm_owner_write(run, 1, &rec, NULL) == 0, "write failed");
		st = dm_owner_read(run, proc, 1, &back);
		FUZZ_CHECK(st != DM_OWNER_BAD && st != DM_OWNER_NONE, "own record judged %d", st);
		FUZZ_CHECK(same(&rec, &back), "record changed on the way back");
	}

	/* the text as the file itself (a record's file is small: what does
	 * not fit the reader's buffer is bad too) */
	{
		fuzz_put(run, "kdamond-0.owner", data, size);
		st = dm_owner_read(run, proc, 0, &back);
		FUZZ_CHECK(st <= DM_OWNER_OTHER_NS, "state %d", st);
		if (size < 160 && !memchr(data, '\0', size))
			FUZZ_CHECK((st == DM_OWNER_BAD) == (parsed != 0), "judged %d, parsed %d",
				   st, parsed);
	}
	free(text);
	return 0;
}
