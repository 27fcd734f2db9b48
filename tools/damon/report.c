// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon report access|wss|heatmap: what a record says (-i FILE: libdamon's
 * or damo's JSON record, plain or compressed), or what a process does now
 * (no -i: monitor --pid PID or a command for a few seconds, then report).
 * The numbers and their meanings are damo's: access rates in percent of
 * the samples, ages in time, working set sizes by percentile.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <damon/damon.h>

#include "cli.h"

static int add_snap(void *arg, const struct record *head, struct rsnap *s)
{
	struct record *r = arg;

	(void)head;
	if (record_add_snap(r, s)) {
		fprintf(stderr, "damon report: out of memory\n");
		return -ENOMEM;
	}
	return 0;
}

int collect_live(const struct src_opts *o, uint64_t duration_ms, struct records *ret)
{
	struct record r = {0};
	struct run_hooks hooks = {.snap = add_snap, .arg = &r};
	struct source *src;
	int err;

	dm_catch_signals();
	if (src_open(&src, o))
		return -EINVAL;
	err = src_run(src, duration_ms, &hooks, "report", false);
	{
		struct rsnap *keep = r.s;
		size_t nr = r.nr, cap = r.cap;

		r = *src_head(src);
		r.s = keep;
		r.nr = nr;
		r.cap = cap;
	}
	src_close(src);
	ret->v = malloc(sizeof(*ret->v));
	if (!ret->v)
		err = 1;
	if (!err && !r.nr)
		fprintf(stderr, "damon report: no snapshot was published in %" PRIu64 " ms\n",
			duration_ms);
	if (err || !r.nr) {
		for (size_t i = 0; i < r.nr; i++)
			rsnap_free(&r.s[i]);
		free(r.s);
		free(ret->v);
		ret->v = NULL;
		return -ENODATA;
	}
	ret->v[0] = r;
	ret->nr = 1;
	return 0;
}

static void fmt_addr(uint64_t a, bool raw, char *buf, size_t sz)
{
	if (raw)
		snprintf(buf, sz, "%" PRIu64, a);
	else
		snprintf(buf, sz, "0x%" PRIx64, a);
}

static void fmt_sz(uint64_t n, bool raw, char *buf, size_t sz)
{
	if (raw)
		snprintf(buf, sz, "%" PRIu64, n);
	else
		fmt_bytes(n, buf, sz);
}

static void fmt_time(uint64_t us, bool raw, char *buf, size_t sz)
{
	if (raw)
		snprintf(buf, sz, "%" PRIu64, us);
	else
		fmt_us(us, buf, sz);
}

static void record_head(const struct record *r, bool raw)
{
	char s[32], a[32], u[32];

	printf("record: target %" PRIu64, r->target_id);
	if (r->pid)
		printf(", pid %d", (int)r->pid);
	if (r->backend[0])
		printf(", backend %s (sees %s)", r->backend,
		       r->sees == DAMON_SEES_WRITES ? "writes only" : "reads and writes");
	printf(", %zu snapshots\n", r->nr);
	fmt_time(r->sample_us, raw, s, sizeof(s));
	fmt_time(r->aggr_us, raw, a, sizeof(a));
	fmt_time(r->update_us, raw, u, sizeof(u));
	if (r->sample_us)
		printf("intervals: sample %s, aggr %s, update %s\n", s, a, u);
	else
		printf("intervals: unknown (the record has none; damo's defaults assumed)\n");
}

static void report_snapshot(const struct record *r, size_t idx, bool raw)
{
	const struct rsnap *s = &r->s[idx];
	uint64_t base = r->s[0].start_ns, total = 0, accessed = 0;
	uint64_t sample = rsnap_sample_us(r, s), aggr = rsnap_aggr_us(r, s);
	char t0[32], t1[32], d[32], a[32], b[32], c[32];

	fmt_time((s->start_ns - base) / 1000, raw, t0, sizeof(t0));
	fmt_time((s->end_ns - base) / 1000, raw, t1, sizeof(t1));
	fmt_time((s->end_ns - s->start_ns) / 1000, raw, d, sizeof(d));
	printf("snapshot %zu time: [%s, %s] (%s)", idx, t0, t1, d);
	if (s->sample_us && s->sample_us != r->sample_us) {
		fmt_time(sample, raw, a, sizeof(a));
		fmt_time(aggr, raw, b, sizeof(b));
		printf(", intervals in force: sample %s, aggr %s", a, b);
	}
	printf("\n%-4s %-18s %-18s %13s %11s %8s %14s\n", "#", "start", "end", "size",
	       "nr_accesses", "rate", "age");
	for (size_t i = 0; i < s->nr; i++) {
		const struct rregion *g = &s->r[i];

		fmt_addr(g->start, raw, a, sizeof(a));
		fmt_addr(g->end, raw, b, sizeof(b));
		fmt_sz(g->end - g->start, raw, c, sizeof(c));
		fmt_time((uint64_t)g->age * aggr, raw, d, sizeof(d));
		printf("%-4zu %-18s %-18s %13s %5u/%-5" PRIu64 " %7.2f%% %14s\n", i, a, b, c,
		       g->nr_accesses, aggr / sample, 100.0 * rregion_rate(r, s, g), d);
		total += g->end - g->start;
		if (g->nr_accesses)
			accessed += g->end - g->start;
	}
	fmt_sz(total, raw, a, sizeof(a));
	fmt_sz(accessed, raw, b, sizeof(b));
	printf("total size: %s, accessed: %s\n", a, b);
	if (s->has_stats)
		printf("damos stats: tried %" PRIu64 " regions (%" PRIu64
		       " bytes), applied %" PRIu64 " (%" PRIu64 " bytes), quota exceeded %" PRIu64
		       " times\n",
		       s->stats.nr_tried, s->stats.sz_tried, s->stats.nr_applied,
		       s->stats.sz_applied, s->stats.qt_exceeds);
	printf("\n");
}

static int report_access(const struct records *rs, bool raw, long snap_idx)
{
	for (size_t i = 0; i < rs->nr; i++) {
		const struct record *r = &rs->v[i];

		record_head(r, raw);
		if (!r->nr) {
			printf("no snapshot\n");
			continue;
		}
		printf("\n");
		if (snap_idx >= 0 && (size_t)snap_idx >= r->nr) {
			fprintf(stderr, "damon report: the record has %zu snapshots, no %ld\n",
				r->nr, snap_idx);
			return 1;
		}
		for (size_t j = 0; j < r->nr; j++)
			if (snap_idx == -1 || (size_t)snap_idx == j ||
			    (snap_idx == -2 && j == r->nr - 1))
				report_snapshot(r, j, raw);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct wss_opts {
	uint64_t acc_thres, sz_thres, exclude;
	uint64_t range[3];
	bool raw, all, sort_time;
};

/* The working set of each snapshot: the bytes of regions accessed at least
 * acc_thres times and at least sz_thres large (damo's definition). */
static int report_wss(const struct records *rs, const struct wss_opts *o)
{
	for (size_t i = 0; i < rs->nr; i++) {
		const struct record *r = &rs->v[i];
		size_t n = r->nr > o->exclude ? r->nr - o->exclude : 0, bar = 59;
		uint64_t *w = calloc(n ? n : 1, sizeof(*w)), max = 0;
		double sum = 0;
		char a[32];

		if (!w)
			return 1;
		for (size_t j = 0; j < n; j++) {
			const struct rsnap *s = &r->s[o->exclude + j];

			for (size_t k = 0; k < s->nr; k++)
				if (s->r[k].nr_accesses >= o->acc_thres &&
				    s->r[k].end - s->r[k].start >= o->sz_thres)
					w[j] += s->r[k].end - s->r[k].start;
			sum += (double)w[j];
		}
		if (!o->sort_time)
			qsort(w, n, sizeof(*w), cmp_u64);
		printf("# target_id\t%" PRIu64 "\n# <percentile> <wss>\n", r->target_id);
		if (!n) {
			printf("# no snapshot\n");
			free(w);
			continue;
		}
		fmt_sz((uint64_t)(sum / (double)n), o->raw, a, sizeof(a));
		printf("# avr:\t%s\n", a);
		if (o->all) {
			for (size_t j = 0; j < n; j++) {
				fmt_sz(w[j], o->raw, a, sizeof(a));
				printf("%zu %s\n", j, a);
			}
			free(w);
			continue;
		}
		for (uint64_t p = o->range[0]; p < o->range[1]; p += o->range[2]) {
			size_t idx = (size_t)((double)p / 100.0 * (double)n);

			if (idx >= n)
				idx = n - 1;
			if (w[idx] > max)
				max = w[idx];
		}
		for (uint64_t p = o->range[0]; p < o->range[1]; p += o->range[2]) {
			size_t idx = (size_t)((double)p / 100.0 * (double)n), cols;

			if (idx >= n)
				idx = n - 1;
			cols = max ? (size_t)((double)w[idx] * (double)bar / (double)max) : 0;
			fmt_sz(w[idx], o->raw, a, sizeof(a));
			printf("%3" PRIu64 " %15s |%.*s%*s|\n", p, a, (int)cols,
			       "***********************************************************",
			       (int)(bar - cols), "");
		}
		free(w);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: damon report access|wss|heatmap [-i FILE] [options]\n"
		"       damon report access|wss|heatmap [options] (--pid PID | -- CMD [ARGS...])\n"
		"Report a record (libdamon's or damo's JSON record, plain or compressed), or\n"
		"monitor a process for --duration seconds (default 3) and report that.\n"
		"  -i, --input FILE     the record\n"
		"  -d, --duration S     live: how long to monitor\n"
		"  --raw_number         numbers without units\n"
		"access: --snapshot N|last   one snapshot only\n"
		"wss:    --range START STOP STEP (percentiles, default 0 101 25),\n"
		"        --acc_thres N (1), --sz_thres BYTES (1), --exclude_samples N (0),\n"
		"        --all_wss, --sortby size|time\n"
		"heatmap: see 'damon report heatmap --help'\n" SRC_USAGE);
}

int cmd_report(int argc, char **argv)
{
	static const struct option lo[] = {
		{"input", required_argument, NULL, 'i'},
		{"duration", required_argument, NULL, 'd'},
		{"raw_number", no_argument, NULL, 'r'},
		{"raw-number", no_argument, NULL, 'r'},
		{"snapshot", required_argument, NULL, 's'},
		{"range", required_argument, NULL, 'R'},
		{"acc_thres", required_argument, NULL, 'a'},
		{"acc-thres", required_argument, NULL, 'a'},
		{"sz_thres", required_argument, NULL, 'z'},
		{"sz-thres", required_argument, NULL, 'z'},
		{"exclude_samples", required_argument, NULL, 'x'},
		{"exclude-samples", required_argument, NULL, 'x'},
		{"all_wss", no_argument, NULL, 'A'},
		{"all-wss", no_argument, NULL, 'A'},
		{"sortby", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		SRC_LONGOPTS,
		{0},
	};
	struct wss_opts wo = {.acc_thres = 1, .sz_thres = 1, .range = {0, 101, 25}};
	const char *what, *input = NULL;
	uint64_t duration_ms = 3000, v;
	struct records rs = {0};
	struct src_opts so;
	long snap_idx = -1;
	int c, ret;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	what = argv[1];
	if (strcmp(what, "access") && strcmp(what, "wss") && strcmp(what, "heatmap")) {
		usage_error("report", "unknown report \"%s\" (access, wss or heatmap)", what);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	if (!strcmp(what, "heatmap"))
		return cmd_heatmap(NULL, argc, argv);
	src_opts_init(&so);
	while ((c = getopt_long(argc, argv, "+i:d:hB:p:", lo, NULL)) != -1) {
		int r = sub_opt(&so, c, optarg, "report", usage);

		if (r != SUB_MINE) {
			if (r >= 0)
				return r;
			continue;
		}
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'd':
			if (!parse_duration(optarg, &duration_ms) || !duration_ms) {
				usage_error("report", "--duration needs seconds, not \"%s\"",
					    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'r':
			wo.raw = true;
			break;
		case 's':
			if (!strcmp(optarg, "last"))
				snap_idx = -2;
			else if (parse_u64(optarg, &v) && v < (1UL << 30))
				snap_idx = (long)v;
			else {
				usage_error("report", "--snapshot is a number or last");
				return EXIT_USAGE;
			}
			break;
		case 'R':
			/* three numbers: this one and the next two arguments */
			if (optind + 1 >= argc || !parse_u64(optarg, &wo.range[0]) ||
			    !parse_u64(argv[optind], &wo.range[1]) ||
			    !parse_u64(argv[optind + 1], &wo.range[2]) || !wo.range[2]) {
				usage_error("report", "--range needs START STOP STEP");
				return EXIT_USAGE;
			}
			optind += 2;
			break;
		case 'a':
		case 'z':
		case 'x':
			if (!parse_u64(optarg, &v)) {
				usage_error("report", "a number is needed, not \"%s\"", optarg);
				return EXIT_USAGE;
			}
			*(c == 'a' ? &wo.acc_thres : c == 'z' ? &wo.sz_thres : &wo.exclude) = v;
			break;
		case 'A':
			wo.all = true;
			break;
		case 'S':
			if (strcmp(optarg, "size") && strcmp(optarg, "time")) {
				usage_error("report", "--sortby is size or time");
				return EXIT_USAGE;
			}
			wo.sort_time = !strcmp(optarg, "time");
			break;
		}
	}
	if (sub_target(&so, argc, argv, input, "report"))
		return EXIT_USAGE;
	if (input ? records_load(input, &rs) : collect_live(&so, duration_ms, &rs))
		return 1;
	ret = !strcmp(what, "access") ? report_access(&rs, wo.raw, snap_idx) : report_wss(&rs, &wo);
	records_free(&rs);
	return ret;
}
