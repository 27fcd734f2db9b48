// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The record files damon(1) reads (tools/damon/records.c and json.c): the
 * input is the file given to `damon report --input`, damo's JSON record
 * format, plain or zlib-compressed. A record file comes from anywhere
 * (another machine, damo, a download), so none of it is trusted.
 *
 * Properties: the loader returns 0 or one of its documented -errno values;
 * a loaded file holds at least one record and no region that ends before
 * it starts, and every access rate is within 0..1; each loaded record,
 * written again by damon's own writer (recwrite.c) and loaded back, is the
 * same record except for what the writer defines (a null kdamond or context
 * index written as 0, a snapshot's sampling interval written out, damo's
 * fake last snapshot dropped once more).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#include "cli.h"

static const char *dir;
static char in_path[PATH_MAX], out_path[PATH_MAX];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	(void)argc;
	(void)argv;
	/* The writer fsyncs every record it closes: on tmpfs that costs
	 * nothing, on a disk it would cost each execution milliseconds.
	 * scripts/fuzz.sh gives a directory on tmpfs already. */
	if (!getenv("TMPDIR") && !stat("/dev/shm", &st) && S_ISDIR(st.st_mode) &&
	    !access("/dev/shm", W_OK))
		setenv("TMPDIR", "/dev/shm", 1);
	dir = fuzz_scratch();
	snprintf(in_path, sizeof(in_path), "%s/in.data", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.data", dir);
	devnull = fopen("/dev/null", "we");
	if (!devnull)
		abort();
	return 0;
}

/* records_load() with its sentences about a bad file (to stderr) sent
 * nowhere: not once per execution. Sanitizers write to fd 2 directly and
 * FUZZ_CHECK runs after stderr is back. */
static int load_quiet(const char *path, struct records *rs)
{
	FILE *saved = stderr;
	int err;

	stderr = devnull;
	err = records_load(path, rs);
	stderr = saved;
	return err;
}

static bool fake_last(const struct record *r)
{
	const struct rsnap *s = r->nr ? &r->s[r->nr - 1] : NULL;

	return r->nr >= 2 && s->nr == 1 && !s->r[0].start && !s->r[0].end;
}

static void check_loaded(const struct records *rs)
{
	FUZZ_CHECK(rs->nr >= 1, "loaded, but no record");
	for (size_t i = 0; i < rs->nr; i++) {
		const struct record *r = &rs->v[i];

		for (size_t j = 0; j < r->nr; j++)
			for (size_t k = 0; k < r->s[j].nr; k++) {
				const struct rregion *g = &r->s[j].r[k];
				double rate = rregion_rate(r, &r->s[j], g);

				FUZZ_CHECK(g->start <= g->end, "record %zu snapshot %zu region %zu",
					   i, j, k);
				FUZZ_CHECK(rate >= 0 && rate <= 1, "rate %f", rate);
			}
	}
}

static void same_region(const struct rregion *a, const struct rregion *b)
{
	FUZZ_CHECK(a->start == b->start && a->end == b->end, "region %llx-%llx came back %llx-%llx",
		   (unsigned long long)a->start, (unsigned long long)a->end,
		   (unsigned long long)b->start, (unsigned long long)b->end);
	FUZZ_CHECK(a->nr_accesses == b->nr_accesses && a->age == b->age,
		   "nr_accesses %u age %u came back %u %u", a->nr_accesses, a->age, b->nr_accesses,
		   b->age);
}

/* @b is @a written by damon and read back. */
static void same_record(const struct record *a, const struct record *b)
{
	size_t nr = a->nr - fake_last(a);

	FUZZ_CHECK(b->kdamond_idx == (a->kdamond_idx < 0 ? 0 : a->kdamond_idx) &&
			   b->context_idx == (a->context_idx < 0 ? 0 : a->context_idx),
		   "indexes %lld %lld came back %lld %lld", (long long)a->kdamond_idx,
		   (long long)a->context_idx, (long long)b->kdamond_idx, (long long)b->context_idx);
	FUZZ_CHECK(a->target_id == b->target_id && a->sample_us == b->sample_us &&
			   a->aggr_us == b->aggr_us && a->update_us == b->update_us,
		   "target id or intervals changed");
	FUZZ_CHECK(a->pid == b->pid && a->sees == b->sees && !strcmp(a->backend, b->backend),
		   "pid %d sees %u backend \"%s\" came back %d %u \"%s\"", (int)a->pid, a->sees,
		   a->backend, (int)b->pid, b->sees, b->backend);
	FUZZ_CHECK(b->nr == nr, "%zu snapshots came back as %zu", nr, b->nr);
	for (size_t j = 0; j < nr; j++) {
		const struct rsnap *x = &a->s[j], *y = &b->s[j];

		FUZZ_CHECK(x->start_ns == y->start_ns && x->end_ns == y->end_ns,
			   "snapshot %zu times changed", j);
		FUZZ_CHECK(y->sample_us == rsnap_sample_us(a, x), "snapshot %zu sample_us %llu", j,
			   (unsigned long long)y->sample_us);
		FUZZ_CHECK(
			x->has_stats == y->has_stats &&
				(!x->has_stats || !memcmp(&x->stats, &y->stats, sizeof(x->stats))),
			"snapshot %zu DAMOS stats changed", j);
		FUZZ_CHECK(x->nr == y->nr, "snapshot %zu: %zu regions came back as %zu", j, x->nr,
			   y->nr);
		for (size_t k = 0; k < x->nr; k++)
			same_region(&x->r[k], &y->r[k]);
	}
}

static void round_trip(const struct record *r, int format)
{
	struct records back = {0};
	struct rec_writer *w;
	int err;

	err = rec_writer_open(&w, out_path, format, r);
	FUZZ_CHECK(!err, "writer open: %d", err);
	for (size_t j = 0; j < r->nr && !err; j++)
		err = rec_writer_snap(w, r, &r->s[j]);
	FUZZ_CHECK(!err, "writing a snapshot: %d", err);
	err = rec_writer_close(w, true);
	FUZZ_CHECK(!err, "writer close: %d", err);
	err = load_quiet(out_path, &back);
	FUZZ_CHECK(!err, "damon's own record does not load: %d", err);
	FUZZ_CHECK(back.nr == 1, "one record written, %zu read", back.nr);
	same_record(r, &back.v[0]);
	records_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct records rs = {0};
	int err;

	fuzz_put(dir, "in.data", data, size);
	err = load_quiet(in_path, &rs);
	FUZZ_CHECK(!err || err == -EINVAL || err == -ENODATA || err == -ENOMEM ||
			   err == -EOPNOTSUPP,
		   "records_load returned %d", err);
	if (err)
		return 0;
	check_loaded(&rs);
	/* both formats, the compressed one for the first record only (slower) */
	for (size_t i = 0; i < rs.nr && i < 4; i++) {
		round_trip(&rs.v[i], REC_JSON);
#ifdef HAVE_ZLIB
		if (!i)
			round_trip(&rs.v[i], REC_JSON_COMPRESSED);
#endif
	}
	records_free(&rs);
	return 0;
}
