// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The heatmap as a picture: SVG written directly, PNG through libpng with a
 * small built-in bitmap font for the labels (no font files to find). Both
 * share one layout: title on top, address ticks on the left, time ticks
 * and "time (s)" below, the colour scale of the access rate on the right.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBPNG
#include <png.h>
#endif

#include "cli.h"

/* The plot area inside a picture of w x h. */
struct layout {
	unsigned int w, h, x0, y0, pw, ph, bar_x;
};

static struct layout layout_of(unsigned int w, unsigned int h)
{
	struct layout l = {.w = w, .h = h, .x0 = 130, .y0 = 40};

	l.pw = w - 200;
	l.ph = h - 90;
	l.bar_x = l.x0 + l.pw + 15;
	return l;
}

/* The colour of a cell; light grey where nothing was monitored. */
static void cell_rgb(double v, uint8_t rgb[3])
{
	if (v < 0)
		rgb[0] = rgb[1] = rgb[2] = 221;
	else
		heat_rgb(v, rgb);
}

static double cell_at(const struct heatmap *hm, const struct layout *l, unsigned int px,
		      unsigned int py)
{
	unsigned int x = (unsigned int)((uint64_t)px * hm->cols / l->pw);
	/* the picture's y grows downward, addresses upward */
	unsigned int y = (unsigned int)((uint64_t)(l->ph - 1 - py) * hm->rows / l->ph);

	return hm->v[(size_t)y * hm->cols + x];
}

/* Tick labels: time in seconds, addresses in hex. */
static void time_label(const struct heatmap *hm, int i, char *buf, size_t sz)
{
	double s = (double)(hm->t1_ns - hm->t0_ns) / 1e9 * i / 4;

	snprintf(buf, sz, s >= 100 ? "%.0f" : s >= 10 ? "%.1f" : "%.2f", s);
}

static uint64_t addr_at(const struct heatmap *hm, int i)
{
	return hm->a0 + (uint64_t)((double)(hm->a1 - hm->a0) * i / 4);
}

/* ------------------------------------------------------------------------ */
/* SVG                                                                      */
/* ------------------------------------------------------------------------ */

int heatmap_svg(const struct heatmap *hm, const char *path, unsigned int w, unsigned int h)
{
	struct layout l = layout_of(w, h);
	FILE *f = fopen(path, "w");
	char buf[64];
	int err = 0;

	if (!f) {
		fprintf(stderr, "damon: cannot write %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
		"viewBox=\"0 0 %u %u\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<title>damon heatmap of %s</title>\n"
		"<rect width=\"%u\" height=\"%u\" fill=\"white\"/>\n"
		"<text x=\"%u\" y=\"24\" font-size=\"14\">access rate of %s by time and "
		"address</text>\n<g shape-rendering=\"crispEdges\">\n",
		w, h, w, h, hm->target_desc, w, h, l.x0, hm->target_desc);
	/* one rect per run of equal cells along time */
	for (unsigned int y = 0; y < hm->rows; y++) {
		double y_top = l.y0 + (double)l.ph * (hm->rows - 1 - y) / hm->rows;
		double ch = (double)l.ph / hm->rows;

		for (unsigned int x = 0; x < hm->cols;) {
			uint8_t rgb[3], rgb2[3];
			unsigned int run = 1;

			cell_rgb(hm->v[(size_t)y * hm->cols + x], rgb);
			while (x + run < hm->cols) {
				cell_rgb(hm->v[(size_t)y * hm->cols + x + run], rgb2);
				if (memcmp(rgb, rgb2, 3))
					break;
				run++;
			}
			fprintf(f,
				"<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
				"fill=\"#%02x%02x%02x\"/>\n",
				l.x0 + (double)l.pw * x / hm->cols, y_top,
				(double)l.pw * run / hm->cols, ch, rgb[0], rgb[1], rgb[2]);
			x += run;
		}
	}
	fprintf(f,
		"</g>\n<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"none\" "
		"stroke=\"black\"/>\n",
		l.x0, l.y0, l.pw, l.ph);
	for (int i = 0; i <= 4; i++) {
		unsigned int tx = l.x0 + l.pw * (unsigned int)i / 4;
		unsigned int ty = l.y0 + l.ph - l.ph * (unsigned int)i / 4;

		time_label(hm, i, buf, sizeof(buf));
		fprintf(f,
			"<line x1=\"%u\" y1=\"%u\" x2=\"%u\" y2=\"%u\" stroke=\"black\"/>\n"
			"<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">%s</text>\n",
			tx, l.y0 + l.ph, tx, l.y0 + l.ph + 5, tx, l.y0 + l.ph + 18, buf);
		fprintf(f,
			"<line x1=\"%u\" y1=\"%u\" x2=\"%u\" y2=\"%u\" stroke=\"black\"/>\n"
			"<text x=\"%u\" y=\"%u\" text-anchor=\"end\">0x%" PRIx64 "</text>\n",
			l.x0 - 5, ty, l.x0, ty, l.x0 - 8, ty + 4, addr_at(hm, i));
	}
	fprintf(f,
		"<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">time (s)</text>\n"
		"<text x=\"%u\" y=\"%u\" text-anchor=\"end\">address (bytes)</text>\n",
		l.x0 + l.pw / 2, l.y0 + l.ph + 36, l.x0 - 8, l.y0 - 8);
	/* the colour scale: 0 % at the bottom, 100 % at the top */
	fprintf(f, "<defs><linearGradient id=\"rate\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
	for (int i = 0; i <= 8; i++) {
		uint8_t rgb[3];

		heat_rgb(i / 8.0, rgb);
		fprintf(f, "<stop offset=\"%.3f\" stop-color=\"#%02x%02x%02x\"/>\n", i / 8.0,
			rgb[0], rgb[1], rgb[2]);
	}
	fprintf(f,
		"</linearGradient></defs>\n"
		"<rect x=\"%u\" y=\"%u\" width=\"14\" height=\"%u\" fill=\"url(#rate)\" "
		"stroke=\"black\"/>\n",
		l.bar_x, l.y0, l.ph);
	for (int i = 0; i <= 2; i++)
		fprintf(f, "<text x=\"%u\" y=\"%u\">%d%%</text>\n", l.bar_x + 18,
			l.y0 + l.ph - l.ph * (unsigned int)i / 2 + 4, i * 50);
	fprintf(f, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">access rate</text>\n</svg>\n",
		l.bar_x + 7, l.y0 - 8);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (err)
		fprintf(stderr, "damon: cannot write %s: %s\n", path, strerror(-err));
	return err;
}

/* ------------------------------------------------------------------------ */
/* PNG                                                                      */
/* ------------------------------------------------------------------------ */

#ifdef HAVE_LIBPNG
/* 5x7 glyphs, a row per byte, bit 4 the leftmost pixel. Letters are lower
 * case; upper case is drawn as lower case. */
static const struct {
	char c;
	uint8_t rows[7];
} font[] = {
	{'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
	{'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
	{'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
	{'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
	{'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
	{'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
	{'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
	{'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
	{'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
	{'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
	{'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},
	{'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}},
	{'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}},
	{'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
	{'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
	{'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
	{'g', {0x00, 0x00, 0x0F, 0x11, 0x0F, 0x01, 0x0E}},
	{'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
	{'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}},
	{'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}},
	{'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}},
	{'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
	{'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}},
	{'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
	{'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}},
	{'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
	{'q', {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}},
	{'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
	{'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}},
	{'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
	{'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}},
	{'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
	{'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}},
	{'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
	{'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
	{'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
	{'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
	{')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
	{'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
	{',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
	{':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
	{'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
	{'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
	{'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
	{'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
	{'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
};

struct canvas {
	unsigned int w, h;
	uint8_t *px; /* RGB rows */
};

static void put_px(struct canvas *c, unsigned int x, unsigned int y, const uint8_t rgb[3])
{
	if (x < c->w && y < c->h)
		memcpy(c->px + ((size_t)y * c->w + x) * 3, rgb, 3);
}

/* Text with its left end at x (or its right end, @right) and top at y. */
static void draw_text(struct canvas *c, unsigned int x, unsigned int y, const char *s, bool right)
{
	static const uint8_t ink[3] = {0, 0, 0};

	if (right)
		x = x > 6 * strlen(s) ? x - 6 * (unsigned int)strlen(s) : 0;
	for (; *s; s++, x += 6) {
		char ch = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;

		for (size_t g = 0; g < sizeof(font) / sizeof(font[0]); g++) {
			if (font[g].c != ch)
				continue;
			for (unsigned int r = 0; r < 7; r++)
				for (unsigned int b = 0; b < 5; b++)
					if (font[g].rows[r] & (0x10 >> b))
						put_px(c, x + b, y + r, ink);
			break;
		}
	}
}

static void draw_rect(struct canvas *c, unsigned int x, unsigned int y, unsigned int w,
		      unsigned int h, const uint8_t rgb[3])
{
	for (unsigned int i = 0; i <= w; i++) {
		put_px(c, x + i, y, rgb);
		put_px(c, x + i, y + h, rgb);
	}
	for (unsigned int j = 0; j <= h; j++) {
		put_px(c, x, y + j, rgb);
		put_px(c, x + w, y + j, rgb);
	}
}

static void draw_picture(const struct heatmap *hm, const struct layout *l, struct canvas *c)
{
	static const uint8_t black[3] = {0, 0, 0};
	char buf[96];

	memset(c->px, 255, (size_t)c->w * c->h * 3);
	snprintf(buf, sizeof(buf), "access rate of %s by time and address", hm->target_desc);
	draw_text(c, l->x0, 14, buf, false);
	for (unsigned int py = 0; py < l->ph; py++)
		for (unsigned int px = 0; px < l->pw; px++) {
			uint8_t rgb[3];

			cell_rgb(cell_at(hm, l, px, py), rgb);
			put_px(c, l->x0 + px, l->y0 + py, rgb);
		}
	draw_rect(c, l->x0 - 1, l->y0 - 1, l->pw + 1, l->ph + 1, black);
	for (int i = 0; i <= 4; i++) {
		unsigned int tx = l->x0 + l->pw * (unsigned int)i / 4;
		unsigned int ty = l->y0 + l->ph - l->ph * (unsigned int)i / 4;

		for (unsigned int k = 1; k <= 5; k++) {
			put_px(c, tx, l->y0 + l->ph + k, black);
			put_px(c, l->x0 - 1 - k, ty, black);
		}
		time_label(hm, i, buf, sizeof(buf));
		draw_text(c, tx - 3 * (unsigned int)strlen(buf), l->y0 + l->ph + 9, buf, false);
		snprintf(buf, sizeof(buf), "0x%" PRIx64, addr_at(hm, i));
		draw_text(c, l->x0 - 9, ty - 3, buf, true);
	}
	draw_text(c, l->x0 + l->pw / 2 - 24, l->y0 + l->ph + 26, "time (s)", false);
	draw_text(c, l->x0 - 9, l->y0 - 14, "address (bytes)", true);
	for (unsigned int py = 0; py < l->ph; py++) {
		uint8_t rgb[3];

		heat_rgb(1.0 - (double)py / (l->ph - 1), rgb);
		for (unsigned int k = 0; k < 14; k++)
			put_px(c, l->bar_x + k, l->y0 + py, rgb);
	}
	draw_rect(c, l->bar_x - 1, l->y0 - 1, 15, l->ph + 1, black);
	for (int i = 0; i <= 2; i++) {
		snprintf(buf, sizeof(buf), "%d%%", i * 50);
		draw_text(c, l->bar_x + 19, l->y0 + l->ph - l->ph * (unsigned int)i / 2 - 3, buf,
			  false);
	}
	draw_text(c, l->bar_x - 26, l->y0 - 14, "access rate", false);
}

/* libpng reports errors by longjmp: only this function's locals, which
 * setjmp() does not outlive, are in its way. */
static int png_write(FILE *f, const struct canvas *c)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;

	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return -ENOMEM;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return -EIO;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, c->w, c->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (unsigned int y = 0; y < c->h; y++)
		png_write_row(png, c->px + (size_t)y * c->w * 3);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int heatmap_png(const struct heatmap *hm, const char *path, unsigned int w, unsigned int h)
{
	struct layout l = layout_of(w, h);
	struct canvas c = {.w = w, .h = h, .px = malloc((size_t)w * h * 3)};
	FILE *f;
	int err;

	if (!c.px)
		return -ENOMEM;
	draw_picture(hm, &l, &c);
	f = fopen(path, "wb");
	if (!f) {
		err = -errno;
	} else {
		err = png_write(f, &c);
		if (fclose(f) && !err)
			err = -errno;
		if (err)
			remove(path);
	}
	if (err)
		fprintf(stderr, "damon: cannot write %s: %s\n", path, strerror(-err));
	free(c.px);
	return err;
}
#else
int heatmap_png(const struct heatmap *hm, const char *path, unsigned int w, unsigned int h)
{
	(void)hm;
	(void)w;
	(void)h;
	fprintf(stderr,
		"damon: this damon was built without libpng: no PNG (%s); "
		"use an .svg file, or no -o for text\n",
		path);
	return -EOPNOTSUPP;
}
#endif
