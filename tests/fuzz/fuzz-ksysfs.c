// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Every sysfs file the kernel backend reads, and the files beside them that
 * decide what it makes of them: lib/kernel/sysfs.c (the reader, numbers),
 * claim.c (exclusive modules, whose kdamonds), tried.c (tried_regions),
 * kernel.c and kstep.c (stats), ksnap.c (snapshots), kscheme.c (effective
 * quotas), lib/probe/kernel_probe.c (the whole verdict), with the
 * ownership records and a /proc they judge by.
 *
 * A small tree shaped like the one recorded from Linux 7.2 is made once;
 * the input is a byte saying which readers run (and the operations set the
 * probe asks for), then chunks "file number, length, bytes" that replace
 * the default contents of the numbered files (length 255: the file is
 * removed). Files the input leaves alone keep sane values.
 *
 * Properties: every reader returns 0 or -errno with a NUL-terminated
 * sentence; the probe's verdict starts with "kernel: ", fits its buffer
 * whatever its size, and says why when it refuses (in a buffer of the
 * API's 256 bytes: a tiny one may hold no clause whole); the snapshot built from
 * tried_regions is consistent (ksnap.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "ksnap.h"

#include "kernel/kernel_int.h"
#include "kernel/kscheme.h"
#include "probe/probe.h"

#define KD  "sys/kernel/mm/damon/admin/kdamonds"
#define CTX KD "/0/contexts/0"

static const struct {
	const char *path, *value; /* value NULL: absent unless the input writes it */
} files[] = {
	{KD "/nr_kdamonds", "1\n"},
	{KD "/0/state", "on\n"},
	{KD "/0/pid", "4242\n"},
	{CTX "/avail_operations", "vaddr\nfvaddr\npaddr\n"},
	{KD "/1/state", "off\n"},
	{KD "/1/pid", "-1\n"},
	{KD "/1/contexts/0/avail_operations", "paddr\n"},
	{"sys/module/damon_stat/parameters/enabled", "N\n"},
	{"sys/module/damon_reclaim/parameters/enabled", "N\n"},
	{"sys/module/damon_lru_sort/parameters/enabled", "N\n"},
	{"run/kdamond-0.owner", NULL},
	{"run/kdamond-1.owner", NULL},
	{"proc/77/stat", "77 (app) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n"},
	{CTX "/schemes/0/stats/nr_tried", "12\n"},
	{CTX "/schemes/0/stats/sz_tried", "49152\n"},
	{CTX "/schemes/0/stats/nr_applied", "3\n"},
	{CTX "/schemes/0/stats/sz_applied", "12288\n"},
	{CTX "/schemes/0/stats/qt_exceeds", "0\n"},
	{CTX "/schemes/0/stats/sz_ops_filter_passed", "0\n"},
	{CTX "/schemes/0/stats/nr_snapshots", "40\n"},
	{CTX "/schemes/0/quotas/effective_bytes", "1048576\n"},
#define TRIED(n)                                                            \
	{CTX "/schemes/1/tried_regions/" #n "/start", "4096\n"},            \
		{CTX "/schemes/1/tried_regions/" #n "/end", "8192\n"},      \
		{CTX "/schemes/1/tried_regions/" #n "/nr_accesses", "3\n"}, \
	{                                                                   \
		CTX "/schemes/1/tried_regions/" #n "/age", "7\n"            \
	}
	TRIED(0),
	TRIED(1),
	TRIED(3),
	TRIED(12),
#undef TRIED
};
#define NR_FILES (sizeof(files) / sizeof(files[0]))

static const char *dir;
static char sys[600], run[600], proc[600];
static bool dirty[NR_FILES];

static void put_default(size_t i)
{
	char p[1024];

	if (files[i].value) {
		fuzz_put(dir, files[i].path, files[i].value, strlen(files[i].value));
	} else {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i].path);
		unlink(p);
	}
	dirty[i] = false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const dirs[] = {
		KD "/0/contexts/0/schemes/0/stats",
		KD "/0/contexts/0/schemes/0/quotas",
		KD "/0/contexts/0/schemes/1/tried_regions/0",
		KD "/0/contexts/0/schemes/1/tried_regions/1",
		KD "/0/contexts/0/schemes/1/tried_regions/3",
		KD "/0/contexts/0/schemes/1/tried_regions/12",
		KD "/1/contexts/0",
		"sys/module/damon_stat/parameters",
		"sys/module/damon_reclaim/parameters",
		"sys/module/damon_lru_sort/parameters",
		"run",
		"proc/77",
		"proc/self/ns",
	};

	dir = fuzz_scratch();
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		fuzz_mkdirs(dir, dirs[i]);
	fuzz_put(dir, "proc/self/ns/pid", "", 0);
	for (size_t i = 0; i < NR_FILES; i++)
		put_default(i);
	snprintf(sys, sizeof(sys), "%s/sys", dir);
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(proc, sizeof(proc), "%s/proc", dir);
	return 0;
}

static void check_err(int rc, const struct dm_err *err, const char *what)
{
	FUZZ_CHECK(rc <= 0 && rc > -4096, "%s returned %d", what, rc);
	FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)), "%s: sentence without NUL", what);
	if (rc)
		FUZZ_CHECK(err->msg[0], "%s failed (%d) without a sentence", what, rc);
}

static void run_probe(uint8_t how, uint8_t room)
{
	static const uint32_t ops[] = {DAMON_OPS_VADDR, DAMON_OPS_FVADDR, DAMON_OPS_PADDR, 77};
	struct dm_probe_in in = {
		.ops = ops[how >> 4 & 3],
		.nr_targets = 1 + (how >> 6),
		.sysfs_root = sys,
		.proc_root = proc,
		.run_dir = run,
	};
	char reason[257];
	size_t sz = room ? room : sizeof(reason) - 1;
	bool ok;

	memset(reason, 'x', sizeof(reason));
	ok = dm_kernel_probe(&in, reason, sz);
	FUZZ_CHECK(reason[sz] == 'x', "the verdict wrote past its %zu bytes", sz);
	FUZZ_CHECK(memchr(reason, '\0', sz), "the verdict has no NUL");
	if (sz > 8)
		FUZZ_CHECK(!strncmp(reason, "kernel: ", 8), "verdict \"%s\"", reason);
	if (!ok && sz >= 256) /* the size damon_backend_status.reason has */
		FUZZ_CHECK(strlen(reason) > 8, "a refusal without a reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t how = fuzz_u8(&in), room = fuzz_u8(&in);
	struct dm_publisher pub;
	/* esz is the kernel's when it has effective_bytes, else left as it was */
	struct dm_scheme sc = {.opts.quota_ms = 10, .quota.esz = 12345};
	struct dm_scheme *schemes[] = {&sc};
	struct dm_ktarget targets[3] = {{.id = 1}, {.id = 2}, {.id = 3, .gone = true}};
	struct dm_kernel *k;
	struct dm_err err = {0};
	size_t n = 0;
	int rc;

	/* what the previous input changed goes back, then this one's files */
	for (size_t i = 0; i < NR_FILES; i++)
		if (dirty[i])
			put_default(i);
	while (in.left >= 2) {
		size_t i = fuzz_u8(&in) % NR_FILES, len;
		const uint8_t *p;

		if (in.p[0] == 255) {
			char path[1024];

			in.p++, in.left--;
			snprintf(path, sizeof(path), "%s/%s", dir, files[i].path);
			unlink(path);
		} else {
			p = fuzz_chunk(&in, 254, &len);
			fuzz_put(dir, files[i].path, p, len);
		}
		dirty[i] = true;
	}

	if (how & 1)
		run_probe(how, room);
	if (!(how & 14))
		return 0;

	k = calloc(1, sizeof(*k));
	if (!k || dm_publisher_init(&pub, NULL))
		abort();
	k->lock_fd = -1;
	k->trace_fd = -1;
	k->wake_epfd = -1;
	k->run_dir = run;
	k->proc_root = proc;
	k->pub = &pub;
	k->targets = targets;
	k->nr_targets = 1 + (how >> 6) % 3;
	k->schemes = schemes;
	k->nr_schemes = 1;
	k->attrs.sample_us = 5000;
	k->attrs.aggr_us = 100000;
	if (dm_sysfs_open(&k->fs, sys, NULL))
		abort();

	if (how & 2) {
		rc = dm_kernel_check_modules(&k->fs, &err);
		check_err(rc, &err, "modules");
		dm_err_clear(&err);
		rc = dm_kernel_judge_kdamonds(k, how & 0x80, false, &err);
		check_err(rc, &err, "judge");
		dm_err_clear(&err);
	}
	if (how & 4) {
		/* both write a request to the state file first */
		rc = dm_kernel_update_stats(k, &err);
		check_err(rc, &err, "stats");
		dm_err_clear(&err);
		rc = dm_kscheme_read_quotas(k, &err);
		check_err(rc, &err, "quotas");
		FUZZ_CHECK(rc || sc.quota.esz, "an effective quota of 0");
		dm_err_clear(&err);
		dirty[1] = true;
	}
	if (how & 8) {
		rc = dm_kernel_read_tried_dir(
			k,
			"kernel/mm/damon/admin/kdamonds/0/contexts/0/schemes/1/"
			"tried_regions",
			&n, &err);
		check_err(rc, &err, "tried_regions");
		if (!rc) {
			FUZZ_CHECK(n <= 4, "%zu regions from 4 directories", n);
			rc = dm_kernel_publish(k, n, &err);
			check_err(rc, &err, "publish");
			fuzz_check_snapshot(k);
		}
	}
	dm_sysfs_close(&k->fs);
	free(k->regbuf);
	free(k->idxbuf);
	free(k);
	dm_publisher_fini(&pub);
	return 0;
}
