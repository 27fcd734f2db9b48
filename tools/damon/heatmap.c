// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon report heatmap: when which addresses were how often accessed. Time
 * runs along x, addresses along y, the access rate (nr_accesses of the
 * maximum, weighted by bytes and time within a cell) is the colour. For a
 * terminal it prints digits (the default); with -o FILE.png or FILE.svg it
 * draws a picture with labelled axes.
 *
 * A process's address space has huge holes between its three areas
 * (heap, mmap, stack), so by default the heatmap covers the contiguous
 * monitored span that was accessed most, as damo's does ("hottest"); --draw
 * all takes the whole range, --address-range any.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

void heat_rgb(double rate, uint8_t rgb[3])
{
	/* black -> dark red -> red -> yellow -> white, rising with the rate */
	static const double stops[][3] = {
		{24, 24, 48}, {128, 0, 0}, {230, 40, 0}, {255, 210, 0}, {255, 255, 255}};
	double x = rate < 0 ? 0 : rate > 1 ? 1 : rate;
	int i = x >= 1 ? 3 : (int)(x * 4);
	double f = x * 4 - i;

	for (int c = 0; c < 3; c++)
		rgb[c] = (uint8_t)(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f + 0.5);
}

struct span {
	uint64_t start, end;
	double weight;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The contiguous monitored span with the most accesses (bytes x rate x time). */
static int hottest_span(const struct record *r, uint64_t *a0, uint64_t *a1, bool all)
{
	size_t n = 0, k = 0, best = 0;
	struct span *v;

	for (size_t i = 0; i < r->nr; i++)
		n += r->s[i].nr;
	if (!n)
		return -ENODATA;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < r->nr; i++)
		for (size_t j = 0; j < r->s[i].nr; j++) {
			const struct rregion *g = &r->s[i].r[j];

			v[k++] = (struct span){g->start, g->end,
					       rregion_rate(r, &r->s[i], g) *
						       (double)(g->end - g->start)};
		}
	qsort(v, n, sizeof(*v), cmp_span);
	if (all) {
		*a0 = v[0].start;
		*a1 = v[0].end;
		for (size_t i = 1; i < n; i++)
			if (v[i].end > *a1)
				*a1 = v[i].end;
		free(v);
		return 0;
	}
	/* merge overlapping or touching regions into spans, in place */
	k = 0;
	for (size_t i = 1; i < n; i++) {
		if (v[i].start <= v[k].end) {
			if (v[i].end > v[k].end)
				v[k].end = v[i].end;
			v[k].weight += v[i].weight;
		} else {
			v[++k] = v[i];
		}
	}
	for (size_t i = 1; i <= k; i++)
		if (v[i].weight > v[best].weight ||
		    (v[i].weight == v[best].weight &&
		     v[i].end - v[i].start > v[best].end - v[best].start))
			best = i;
	*a0 = v[best].start;
	*a1 = v[best].end;
	free(v);
	return 0;
}

int heatmap_build(const struct record *r, unsigned int cols, unsigned int rows, uint64_t a0,
		  uint64_t a1, struct heatmap *ret)
{
	struct heatmap h = {.cols = cols, .rows = rows, .a0 = a0, .a1 = a1};
	double *wsum;
	double tspan, aspan;

	if (!r->nr || !cols || !rows || a1 <= a0)
		return -EINVAL;
	h.t0_ns = r->s[0].start_ns;
	h.t1_ns = r->s[r->nr - 1].end_ns;
	if (h.t1_ns <= h.t0_ns)
		h.t1_ns = h.t0_ns + 1;
	tspan = (double)(h.t1_ns - h.t0_ns);
	aspan = (double)(a1 - a0);
	h.v = calloc((size_t)cols * rows, sizeof(*h.v));
	wsum = calloc((size_t)cols * rows, sizeof(*wsum));
	if (!h.v || !wsum) {
		free(h.v);
		free(wsum);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nr; i++) {
		const struct rsnap *s = &r->s[i];
		double x0 = (double)(s->start_ns - h.t0_ns) / tspan * cols;
		double x1 = (double)(s->end_ns - h.t0_ns) / tspan * cols;

		for (size_t j = 0; j < s->nr; j++) {
			const struct rregion *g = &s->r[j];
			uint64_t gs = g->start > a0 ? g->start : a0, ge = g->end < a1 ? g->end : a1;
			double y0, y1, rate = rregion_rate(r, s, g);

			if (ge <= gs)
				continue;
			y0 = (double)(gs - a0) / aspan * rows;
			y1 = (double)(ge - a0) / aspan * rows;
			for (unsigned int y = (unsigned int)y0; y < rows && y < y1; y++) {
				double dy = (y1 < y + 1 ? y1 : y + 1) - (y0 > y ? y0 : y);

				for (unsigned int x = (unsigned int)x0; x < cols && x < x1; x++) {
					double dx = (x1 < x + 1 ? x1 : x + 1) - (x0 > x ? x0 : x);
					size_t c = (size_t)y * cols + x;

					h.v[c] += rate * dx * dy;
					wsum[c] += dx * dy;
				}
			}
		}
	}
	for (size_t c = 0; c < (size_t)cols * rows; c++)
		h.v[c] = wsum[c] > 0 ? h.v[c] / wsum[c] : -1;
	free(wsum);
	*ret = h;
	return 0;
}

void heatmap_free(struct heatmap *h)
{
	free(h->v);
	h->v = NULL;
}

/* ' ' not monitored, '.' not accessed, 1..9 the access rate in ninths. */
static char cell_char(double v)
{
	if (v < 0)
		return ' ';
	if (v <= 0)
		return '.';
	return (char)('0' + (v * 9 >= 8.5 ? 9 : (int)(v * 9) + 1));
}

int heatmap_ascii(const struct heatmap *h, FILE *f, bool color)
{
	char t[32];

	fprintf(f, "heatmap of %s: time (x) by address (y, high at the top)\n", h->target_desc);
	for (unsigned int y = h->rows; y-- > 0;) {
		uint64_t a = h->a0 + (uint64_t)((double)(h->a1 - h->a0) * y / h->rows);

		fprintf(f, "0x%014" PRIx64 " |", a);
		for (unsigned int x = 0; x < h->cols; x++) {
			double v = h->v[(size_t)y * h->cols + x];

			if (color && v >= 0) {
				uint8_t rgb[3];

				heat_rgb(v, rgb);
				fprintf(f, "\033[48;2;%u;%u;%um\033[38;2;%u;%u;%um%c\033[0m",
					rgb[0], rgb[1], rgb[2], v > 0.5 ? 0 : 255,
					v > 0.5 ? 0 : 255, v > 0.5 ? 0 : 255, cell_char(v));
			} else {
				fputc(cell_char(v), f);
			}
		}
		fprintf(f, "|\n");
	}
	fmt_us((h->t1_ns - h->t0_ns) / 1000, t, sizeof(t));
	fprintf(f, "%17s0 s%*s%s\n", "",
		(int)(h->cols > strlen(t) + 3 ? h->cols - strlen(t) - 2 : 1), "", t);
	fprintf(f, "time: 0 to %s in %u columns; address: 0x%" PRIx64 "-0x%" PRIx64 " in %u rows\n",
		t, h->cols, h->a0, h->a1, h->rows);
	fprintf(f, "access rate: ' ' not monitored, '.' none, 1-9 up to 100%% (9: over 89%%)\n");
	return ferror(f) ? -EIO : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: damon report heatmap [-i FILE | --pid PID | -- CMD] [options]\n"
		"Access rate by time (x) and address (y): digits on the terminal, or a picture.\n"
		"  -i, --input FILE        the record (default: monitor a target for --duration)\n"
		"  -o, --output FILE       FILE.png or FILE.svg (default: text on stdout)\n"
		"  --resol TIME ADDR       cells along time and address (text: 64 20; picture:\n"
		"                          the plot's width and height in pixels)\n"
		"  --size WxH              picture size in pixels (default 900x540)\n"
		"  --draw_range hottest|all  the most accessed contiguous span (default) or all\n"
		"  --address_range START END  this range instead\n"
		"  --tid ID                the record's target id (default: the first)\n"
		"  --color / --no-color    colours on the terminal (default: if it is one)\n"
		"  -d, --duration S        live: how long to monitor (default 3)\n" SRC_USAGE);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcasecmp(s + a - b, suffix);
}

int cmd_heatmap(struct records *unused, int argc, char **argv)
{
	static const struct option lo[] = {
		{"input", required_argument, NULL, 'i'},
		{"output", required_argument, NULL, 'o'},
		{"resol", required_argument, NULL, 'r'},
		{"size", required_argument, NULL, 'S'},
		{"draw_range", required_argument, NULL, 'D'},
		{"draw-range", required_argument, NULL, 'D'},
		{"address_range", required_argument, NULL, 'a'},
		{"address-range", required_argument, NULL, 'a'},
		{"tid", required_argument, NULL, 't'},
		{"color", no_argument, NULL, 'c'},
		{"no-color", no_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		SRC_LONGOPTS,
		{0},
	};
	const char *input = NULL, *output = NULL;
	uint64_t cols = 0, rows = 0, a0 = 0, a1 = 0, tid = 0, duration_ms = 3000;
	unsigned int width = 900, height = 540;
	bool all = false, has_tid = false, has_range = false;
	int color = -1, c, err;
	struct records rs = {0};
	struct heatmap h;
	struct src_opts so;
	const struct record *r = NULL;
	char desc[96];

	(void)unused;
	src_opts_init(&so);
	while ((c = getopt_long(argc, argv, "+i:o:d:hB:p:", lo, NULL)) != -1) {
		int sr = sub_opt(&so, c, optarg, "report heatmap", usage);

		if (sr != SUB_MINE) {
			if (sr >= 0)
				return sr;
			continue;
		}
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'r':
		case 'a':
			if (optind >= argc || !parse_u64(optarg, c == 'r' ? &cols : &a0) ||
			    !parse_u64(argv[optind], c == 'r' ? &rows : &a1)) {
				usage_error("report heatmap", "--%s needs two numbers",
					    c == 'r' ? "resol" : "address_range");
				return EXIT_USAGE;
			}
			optind++;
			if (c == 'a')
				has_range = true;
			break;
		case 'S':
			if (sscanf(optarg, "%ux%u", &width, &height) != 2 || width < 200 ||
			    height < 150 || width > 10000 || height > 10000) {
				usage_error("report heatmap",
					    "--size is WxH, 200x150 to 10000x10000");
				return EXIT_USAGE;
			}
			break;
		case 'D':
			if (strcmp(optarg, "hottest") && strcmp(optarg, "all")) {
				usage_error("report heatmap", "--draw_range is hottest or all");
				return EXIT_USAGE;
			}
			all = !strcmp(optarg, "all");
			break;
		case 't':
			if (!parse_u64(optarg, &tid)) {
				usage_error("report heatmap", "--tid needs a number");
				return EXIT_USAGE;
			}
			has_tid = true;
			break;
		case 'c':
			color = 1;
			break;
		case 'n':
			color = 0;
			break;
		case 'd':
			if (!parse_duration(optarg, &duration_ms) || !duration_ms) {
				usage_error("report heatmap", "--duration needs seconds");
				return EXIT_USAGE;
			}
			break;
		}
	}
	if (sub_target(&so, argc, argv, input, "report heatmap"))
		return EXIT_USAGE;
	if (output && !ends_with(output, ".png") && !ends_with(output, ".svg")) {
		usage_error("report heatmap", "-o takes a .png or .svg file");
		return EXIT_USAGE;
	}
	if ((cols && cols > 10000) || (rows && rows > 10000) || (has_range && a1 <= a0) ||
	    (!cols) != (!rows)) {
		usage_error("report heatmap",
			    "--resol is 1..10000 each; --address_range START < END");
		return EXIT_USAGE;
	}
	if (input ? records_load(input, &rs) : collect_live(&so, duration_ms, &rs))
		return 1;
	for (size_t i = 0; i < rs.nr && !r; i++)
		if (!has_tid || rs.v[i].target_id == tid)
			r = &rs.v[i];
	err = r ? 0 : -ENOENT;
	if (!r)
		fprintf(stderr, "damon report heatmap: no record of target id %" PRIu64 "\n", tid);
	if (!err && !has_range && (err = hottest_span(r, &a0, &a1, all)))
		fprintf(stderr, "damon report heatmap: the record has no region\n");
	if (!err) {
		if (!cols) {
			cols = output ? 0 : 64;
			rows = output ? 0 : 20;
		}
		/* pictures: one cell per pixel of the plot unless told */
		if (!cols) {
			cols = width - 200;
			rows = height - 90;
		}
		err = heatmap_build(r, (unsigned int)cols, (unsigned int)rows, a0, a1, &h);
	}
	if (err) {
		records_free(&rs);
		return 1;
	}
	if (r->pid)
		snprintf(desc, sizeof(desc), "target %" PRIu64 " (pid %d)", r->target_id,
			 (int)r->pid);
	else
		snprintf(desc, sizeof(desc), "target %" PRIu64, r->target_id);
	h.target_desc = desc;
	if (!output)
		err = heatmap_ascii(&h, stdout, color < 0 ? isatty(STDOUT_FILENO) : color);
	else if (ends_with(output, ".svg"))
		err = heatmap_svg(&h, output, width, height);
	else
		err = heatmap_png(&h, output, width, height);
	heatmap_free(&h);
	records_free(&rs);
	return err ? 1 : 0;
}
