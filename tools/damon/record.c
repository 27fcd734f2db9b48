// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon record: monitor one process (--pid, or a command it starts) and
 * write every snapshot to a file in damo's JSON record format, until the
 * duration passes, the target exits, or SIGINT/SIGTERM; each of those ends
 * the record the same way: the file is closed as a complete JSON document
 * holding every snapshot published before the end. With --cgroup the
 * processes of a cgroup v2 group are monitored as they come and go, and the
 * file holds one record per process; damo's format nests snapshots in
 * their record, so these are kept in memory and written at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: damon record [options] (--pid PID | --cgroup PATH | [--] CMD [ARGS...])\n"
		"Record snapshots of a process, or of each process of a cgroup v2 group\n"
		"(--cgroup: one record per process), in damo's JSON record format.\n"
		"  -o, --out FILE      output (default damon.data)\n"
		"  --format FMT        json (default) or json_compressed (zlib, damo's default)\n"
		"  -d, --duration S    stop after S seconds (default: when the target ends)\n"
		"  -q, --quiet         no status line\n" SRC_USAGE);
}

struct rec_state {
	struct rec_writer *w;
	struct source *src;
	struct records per; /* --cgroup: one record per process, written at the end */
	const char *out;
	bool tty;
	uint64_t t0, next_status;
	size_t nr_snaps, nr_regions;
};

static void status_line(struct rec_state *st, bool done)
{
	fprintf(stderr, "\r\033[Kdamon record: %.1f s, %zu snapshots, %zu regions%s",
		(double)(now_ns() - st->t0) / 1e9, st->nr_snaps, st->nr_regions, done ? "\n" : "");
}

/* The record of target @idx in st->per, added (with its pid) if new. */
static struct record *per_target(struct rec_state *st, const struct record *head, uint32_t idx)
{
	struct record *v;

	for (size_t i = 0; i < st->per.nr; i++)
		if (st->per.v[i].target_id == idx)
			return &st->per.v[i];
	v = realloc(st->per.v, (st->per.nr + 1) * sizeof(*v));
	if (!v)
		return NULL;
	st->per.v = v;
	v = &st->per.v[st->per.nr++];
	*v = *head;
	v->target_id = idx;
	v->pid = src_target_pid(st->src, idx);
	v->nr = v->cap = 0;
	v->s = NULL;
	return v;
}

/* --cgroup: a snapshot's regions go to their targets' records. */
static int keep_split(struct rec_state *st, const struct record *head, const struct rsnap *s)
{
	for (size_t i = 0, j; i < s->nr; i = j) {
		struct rsnap part = *s;
		struct record *r;

		for (j = i; j < s->nr && s->r[j].target == s->r[i].target; j++)
			;
		r = per_target(st, head, s->r[i].target);
		part.nr = j - i;
		part.r = malloc(part.nr * sizeof(*part.r));
		if (!r || !part.r) {
			free(part.r);
			return -ENOMEM;
		}
		memcpy(part.r, &s->r[i], part.nr * sizeof(*part.r));
		if (record_add_snap(r, &part)) {
			free(part.r);
			return -ENOMEM;
		}
	}
	return 0;
}

/* --cgroup: every process's record, one after the other. */
static int write_per(struct rec_state *st, int format)
{
	int err = rec_writer_open(&st->w, st->out, format,
				  st->per.nr ? &st->per.v[0] : src_head(st->src));

	for (size_t i = 0; !err && i < st->per.nr; i++) {
		if (i)
			err = rec_writer_next(st->w, &st->per.v[i]);
		for (size_t k = 0; !err && k < st->per.v[i].nr; k++)
			err = rec_writer_snap(st->w, &st->per.v[i], &st->per.v[i].s[k]);
	}
	if (err && st->w)
		fprintf(stderr, "damon record: cannot write %s: %s\n", st->out, strerror(-err));
	if (rec_writer_close(st->w, !err))
		err = err ? err : -EIO;
	return err;
}

static int on_snap(void *arg, const struct record *head, struct rsnap *s)
{
	struct rec_state *st = arg;
	int err = st->w ? rec_writer_snap(st->w, head, s) : keep_split(st, head, s);

	if (err) {
		fprintf(stderr, "\ndamon record: cannot write %s: %s\n", st->out, strerror(-err));
		return err;
	}
	st->nr_snaps++;
	st->nr_regions = s->nr;
	return 0;
}

/* on a terminal, a status line every second */
static void on_idle(void *arg)
{
	struct rec_state *st = arg;

	if (st->tty && now_ns() >= st->next_status) {
		status_line(st, false);
		st->next_status += 1000000000ULL;
	}
}

int cmd_record(int argc, char **argv)
{
	static const struct option lo[] = {
		{"out", required_argument, NULL, 'o'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"duration", required_argument, NULL, 'd'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		SRC_LONGOPTS,
		{0},
	};
	struct rec_state st = {.out = "damon.data"};
	struct run_hooks hooks = {.snap = on_snap, .idle = on_idle};
	struct source *src = NULL;
	struct src_opts so;
	uint64_t duration_ms = 0;
	int c, format = REC_JSON, status;
	bool quiet = false;

	src_opts_init(&so);
	while ((c = getopt_long(argc, argv, "+o:f:d:qhB:p:", lo, NULL)) != -1) {
		int r = sub_opt(&so, c, optarg, "record", usage);

		if (r != SUB_MINE) {
			if (r >= 0)
				return r;
			continue;
		}
		switch (c) {
		case 'o':
			st.out = optarg;
			break;
		case 'f':
			format = rec_format_from_name(optarg);
			if (format < 0) {
				usage_error("record",
					    "--format is json or json_compressed, not \"%s\"",
					    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			if (!parse_duration(optarg, &duration_ms)) {
				usage_error("record", "--duration needs seconds, not \"%s\"",
					    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'q':
			quiet = true;
			break;
		}
	}
	if (sub_target(&so, argc, argv, NULL, "record"))
		return EXIT_USAGE;
	st.tty = !quiet && isatty(STDERR_FILENO);
	so.quiet = quiet;

	dm_catch_signals();
	if (src_open(&src, &so))
		return 1;
	st.src = src;
	if (!so.cgroup && rec_writer_open(&st.w, st.out, format, src_head(src))) {
		src_close(src);
		return 1;
	}
	st.t0 = now_ns();
	st.next_status = st.t0 + 1000000000ULL;
	hooks.arg = &st;
	status = src_run(src, duration_ms, &hooks, "record", quiet);
	if (st.tty)
		status_line(&st, true);
	if (so.cgroup) {
		/* the members' pids are asked while the context still runs */
		int err = write_per(&st, format);

		records_free(&st.per);
		src_close(src);
		if (err)
			return 1;
	} else {
		src_close(src);
		if (rec_writer_close(st.w, true))
			return 1;
	}
	if (!quiet)
		fprintf(stderr, "damon record: %zu snapshots in %s%s\n", st.nr_snaps, st.out,
			dm_interrupted ? " (interrupted)" : "");
	return status;
}
