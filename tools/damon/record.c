// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon record: monitor one process (--pid, or a command it starts) and
 * write every snapshot to a file in damo's JSON record format, until the
 * duration passes, the target exits, or SIGINT/SIGTERM; each of those ends
 * the record the same way: the file is closed as a complete JSON document
 * holding every snapshot published before the end.
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: damon record [options] (--pid PID | [--] CMD [ARGS...])\n"
		"Record snapshots of a process in damo's JSON record format.\n"
		"  -o, --out FILE      output (default damon.data)\n"
		"  --format FMT        json (default) or json_compressed (zlib, damo's default)\n"
		"  -d, --duration S    stop after S seconds (default: when the target ends)\n"
		"  -q, --quiet         no status line\n" SRC_USAGE);
}

struct rec_state {
	struct rec_writer *w;
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

static int on_snap(void *arg, const struct record *head, struct rsnap *s)
{
	struct rec_state *st = arg;
	int err = rec_writer_snap(st->w, head, s);

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
	if (rec_writer_open(&st.w, st.out, format, src_head(src))) {
		src_close(src);
		return 1;
	}
	st.t0 = now_ns();
	st.next_status = st.t0 + 1000000000ULL;
	hooks.arg = &st;
	status = src_run(src, duration_ms, &hooks, "record", quiet);
	if (st.tty)
		status_line(&st, true);
	src_close(src);
	if (rec_writer_close(st.w, true))
		return 1;
	if (!quiet)
		fprintf(stderr, "damon record: %zu snapshots in %s%s\n", st.nr_snaps, st.out,
			dm_interrupted ? " (interrupted)" : "");
	return status;
}
