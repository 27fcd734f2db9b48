// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon live: the view of examples/damon-hot for any process: each new
 * snapshot's regions with their size, nr_accesses, age and a heat bar,
 * redrawn in place; or one JSON object per snapshot (--json) for scripts.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

struct live_opts {
	bool json, clear;
	uint64_t top;
};

static int by_heat(const void *a, const void *b)
{
	const struct rregion *x = a, *y = b;

	if (x->nr_accesses != y->nr_accesses)
		return x->nr_accesses > y->nr_accesses ? -1 : 1;
	if (x->age != y->age)
		return x->age > y->age ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int by_addr(const void *a, const void *b)
{
	const struct rregion *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static void show_json(const struct record *h, const struct rsnap *s, uint64_t seq)
{
	struct sbuf b = {0};

	sb_printf(&b, "{\"seq\": %" PRIu64 ", \"time_ns\": %" PRIu64 ", \"pid\": %d, \"backend\": ",
		  seq, s->end_ns, (int)h->pid);
	sb_json_str(&b, h->backend);
	sb_printf(&b,
		  ", \"sample_us\": %" PRIu64 ", \"aggr_us\": %" PRIu64 ", \"nr_samples\": %u, "
		  "\"regions\": [",
		  rsnap_sample_us(h, s), rsnap_aggr_us(h, s), s->nr_samples);
	for (size_t i = 0; i < s->nr; i++)
		sb_printf(&b,
			  "%s{\"start\": %" PRIu64 ", \"end\": %" PRIu64
			  ", \"nr_accesses\": %u, \"age\": %u, \"access_rate_bp\": %u}",
			  i ? ", " : "", s->r[i].start, s->r[i].end, s->r[i].nr_accesses,
			  s->r[i].age, (unsigned int)(rregion_rate(h, s, &s->r[i]) * 10000 + 0.5));
	sb_puts(&b, "]}\n");
	if (b.p)
		fputs(b.p, stdout);
	fflush(stdout);
	sb_free(&b);
}

static void show_view(const struct record *h, struct rsnap *s, uint64_t seq,
		      const struct live_opts *o)
{
	uint64_t max = rsnap_aggr_us(h, s) / rsnap_sample_us(h, s), total = 0, hot = 0;
	size_t shown = s->nr;
	char a[32], b[32], c[32];

	if (o->clear)
		fputs("\033[H\033[2J", stdout);
	for (size_t i = 0; i < s->nr; i++) {
		total += s->r[i].end - s->r[i].start;
		if (s->r[i].nr_accesses)
			hot += s->r[i].end - s->r[i].start;
	}
	fmt_us(rsnap_sample_us(h, s), a, sizeof(a));
	fmt_us(rsnap_aggr_us(h, s), b, sizeof(b));
	printf("damon live: pid %d, snapshot %" PRIu64 ", backend %s (sees %s), sample %s, "
	       "aggregation %s, %zu regions\n",
	       (int)h->pid, seq, h->backend,
	       h->sees == DAMON_SEES_WRITES ? "writes only" : "reads and writes", a, b, s->nr);
	fmt_bytes(total, a, sizeof(a));
	fmt_bytes(hot, b, sizeof(b));
	printf("monitored %s, accessed in this interval %s\n\n", a, b);
	if (o->top && o->top < s->nr) {
		qsort(s->r, s->nr, sizeof(*s->r), by_heat);
		shown = (size_t)o->top;
		qsort(s->r, shown, sizeof(*s->r), by_addr);
	}
	printf("%-33s %12s %11s %10s  %-30s\n", "range", "size", "accesses", "age", "heat");
	for (size_t i = 0; i < shown; i++) {
		const struct rregion *g = &s->r[i];
		int len = (int)(rregion_rate(h, s, g) * 30 + 0.5);
		char bar[31];

		memset(bar, '#', (size_t)len);
		memset(bar + len, '.', (size_t)(30 - len));
		bar[30] = '\0';
		fmt_bytes(g->end - g->start, a, sizeof(a));
		fmt_us((uint64_t)g->age * rsnap_aggr_us(h, s), c, sizeof(c));
		printf("%016" PRIx64 "-%016" PRIx64 " %12s %5u/%-5" PRIu64 " %10s  %s\n", g->start,
		       g->end, a, g->nr_accesses, max, c, bar);
	}
	if (shown < s->nr)
		printf("(%zu cooler regions not shown)\n", s->nr - shown);
	fflush(stdout);
}

struct live_state {
	const struct live_opts *o;
	uint64_t seq;
};

static int on_snap(void *arg, const struct record *head, struct rsnap *s)
{
	struct live_state *st = arg;

	st->seq++;
	if (st->o->json)
		show_json(head, s, st->seq);
	else
		show_view(head, s, st->seq, st->o);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: damon live [options] (--pid PID | [--] CMD [ARGS...])\n"
		   "Watch which memory of a process is hot, one view per snapshot.\n"
		   "  -d, --duration S    stop after S seconds (default: until Ctrl-C or the end)\n"
		   "  --top N             only the N hottest regions\n"
		   "  --json              one JSON object per snapshot instead\n"
		   "  --no-clear          do not clear the screen between views\n" SRC_USAGE);
}

int cmd_live(int argc, char **argv)
{
	static const struct option lo[] = {
		{"duration", required_argument, NULL, 'd'},
		{"top", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"no-clear", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		SRC_LONGOPTS,
		{0},
	};
	struct live_opts lo_ = {.clear = isatty(STDOUT_FILENO)};
	struct live_state st = {.o = &lo_};
	struct run_hooks hooks = {.snap = on_snap, .arg = &st};
	uint64_t duration_ms = 0;
	struct source *src;
	struct src_opts so;
	int c, status;

	src_opts_init(&so);
	while ((c = getopt_long(argc, argv, "+d:hB:p:", lo, NULL)) != -1) {
		int r = sub_opt(&so, c, optarg, "live", usage);

		if (r != SUB_MINE) {
			if (r >= 0)
				return r;
			continue;
		}
		switch (c) {
		case 'd':
			if (!parse_duration(optarg, &duration_ms)) {
				usage_error("live", "--duration needs seconds, not \"%s\"", optarg);
				return EXIT_USAGE;
			}
			break;
		case 't':
			if (!parse_u64(optarg, &lo_.top) || !lo_.top) {
				usage_error("live", "--top needs a positive number");
				return EXIT_USAGE;
			}
			break;
		case 'j':
			lo_.json = true;
			break;
		case 'n':
			lo_.clear = false;
			break;
		}
	}
	if (sub_target(&so, argc, argv, NULL, "live"))
		return EXIT_USAGE;
	if (lo_.json)
		lo_.clear = false;
	so.quiet = lo_.json;
	dm_catch_signals();
	if (src_open(&src, &so))
		return 1;
	status = src_run(src, duration_ms, &hooks, "live", false);
	src_close(src);
	return status;
}
