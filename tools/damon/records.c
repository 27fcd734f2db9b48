// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Records in damo's JSON record format: a list of records, one per
 * monitoring target, each with its kdamond and context index, the
 * monitoring intervals, the target id and its snapshots; a snapshot has
 * start and end times (ns), its regions (start, end, nr_accesses in
 * samples, age in aggregation intervals), the bytes it covers, DAMOS stats
 * and the sampling interval in force. damo writes it as plain JSON or
 * zlib-compressed JSON (its default); both are read and written here.
 *
 * damo writes some numbers as text ("4,096", "0 B", "300 ms"): the reader
 * takes numbers, digit strings with thousands separators, and sizes or
 * times with damo's units.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <damon/damon.h>

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#include "cli.h"

void rsnap_free(struct rsnap *s)
{
	free(s->r);
	s->r = NULL;
	s->nr = 0;
}

int record_add_snap(struct record *r, struct rsnap *s)
{
	if (r->nr == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct rsnap *v = realloc(r->s, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->s = v;
		r->cap = cap;
	}
	r->s[r->nr++] = *s;
	s->r = NULL;
	s->nr = 0;
	return 0;
}

void records_free(struct records *rs)
{
	for (size_t i = 0; i < rs->nr; i++) {
		for (size_t j = 0; j < rs->v[i].nr; j++)
			rsnap_free(&rs->v[i].s[j]);
		free(rs->v[i].s);
	}
	free(rs->v);
	*rs = (struct records){0};
}

uint64_t rsnap_sample_us(const struct record *r, const struct rsnap *s)
{
	if (s->sample_us)
		return s->sample_us;
	return r->sample_us ? r->sample_us : 5000; /* damo's default */
}

uint64_t rsnap_aggr_us(const struct record *r, const struct rsnap *s)
{
	if (s->aggr_us)
		return s->aggr_us;
	if (s->sample_us && r->sample_us && r->aggr_us) /* stretched: the ratio stays */
		return s->sample_us * (r->aggr_us / r->sample_us);
	return r->aggr_us ? r->aggr_us : 100000;
}

double rregion_rate(const struct record *r, const struct rsnap *s, const struct rregion *g)
{
	uint64_t max = rsnap_aggr_us(r, s) / rsnap_sample_us(r, s);
	double v;

	if (!max)
		max = 1;
	v = (double)g->nr_accesses / (double)max;
	return v > 1 ? 1 : v;
}

int rec_format_from_name(const char *name)
{
	if (!strcmp(name, "json"))
		return REC_JSON;
	if (!strcmp(name, "json_compressed"))
		return REC_JSON_COMPRESSED;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

enum qunit { Q_NR, Q_BYTES, Q_NS, Q_US };

/* One unit's factor for @kind, or 0 if it is not one of that kind's. */
static double unit_factor(const char *u, enum qunit kind)
{
	static const struct {
		const char *name;
		double ns;
	} times[] = {{"ns", 1},	  {"us", 1e3},	 {"ms", 1e6},	{"s", 1e9},
		     {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}};
	static const char *sizes[] = {"B", "K", "M", "G", "T", "P", "E"};

	if (!*u)
		return 1;
	if (kind == Q_NS || kind == Q_US) {
		for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
			if (!strcmp(u, times[i].name))
				return kind == Q_NS ? times[i].ns : times[i].ns / 1e3;
	}
	if (kind == Q_BYTES) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = strlen(sizes[i]);

			if (!strncmp(u, sizes[i], n) &&
			    (!u[n] || !strcmp(u + n, "iB") || (i && !strcmp(u + n, "B"))))
				return (double)(1ULL << (10 * i));
		}
	}
	return 0;
}

/* damo's numbers as text: "4,096", "12288", "0 B", "4.000 KiB", "1 s 500 ms",
 * "max". Return false if it is none of those. */
static bool quantity(const char *s, enum qunit kind, double *ret)
{
	double total = 0;
	bool any = false;

	if (!strcmp(s, "max")) {
		*ret = (double)UINT64_MAX;
		return true;
	}
	while (*s) {
		char num[64], unit[8];
		size_t n = 0, u = 0;
		double f;
		char *end;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		while ((*s >= '0' && *s <= '9') || *s == ',' || *s == '.' || *s == '-' ||
		       *s == '+' || *s == 'e') {
			if (*s != ',' && n + 1 < sizeof(num))
				num[n++] = *s;
			s++;
		}
		num[n] = '\0';
		while (*s == ' ')
			s++;
		while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) {
			if (u + 1 < sizeof(unit))
				unit[u++] = *s;
			s++;
		}
		unit[u] = '\0';
		if (!n)
			return false;
		f = strtod(num, &end);
		if (*end || !(kind == Q_NR ? !u : unit_factor(unit, kind) > 0))
			return false;
		total += f * (u ? unit_factor(unit, kind) : 1);
		any = true;
	}
	if (!any)
		return false;
	*ret = total;
	return true;
}

/* The next scalar as a number of @kind; a null gives @dflt. */
static int jr_num(struct jreader *jr, enum qunit kind, double dflt, double *ret)
{
	char buf[96];
	bool null;

	if (jr_scalar(jr, buf, sizeof(buf), &null))
		return -EINVAL;
	if (null) {
		*ret = dflt;
		return 0;
	}
	if (!quantity(buf, kind, ret)) {
		char m[140];

		snprintf(m, sizeof(m), "\"%.60s\" is not a number of the expected unit", buf);
		jr_fail(jr, m);
		return -EINVAL;
	}
	return 0;
}

/*
 * A number of the file as an integer. Converting a double the type cannot
 * hold is undefined: a file may say 1e30, or "1e999 -1e999" (infinity
 * minus infinity: NaN), so out-of-range values are clamped and NaN is 0.
 */
static uint64_t to_u64(double v)
{
	if (!(v > 0))
		return 0;
	if (v >= 18446744073709551615.0)
		return UINT64_MAX;
	return (uint64_t)(v + 0.5);
}

/* An index: negative or NaN is null (-1). */
static int64_t to_idx(double v)
{
	if (!(v >= 0))
		return -1;
	if (v >= 9223372036854775807.0)
		return INT64_MAX;
	return (int64_t)v;
}

static uint32_t to_u32(double v)
{
	uint64_t x = to_u64(v);

	return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

/*
 * Walk an object: @fn gets each key and reads (or skips) its value. A null
 * instead of the object is taken as an empty one when @null_ok. Return 0,
 * or the first error (-EINVAL with jr->err set, -ENOMEM).
 */
typedef int (*key_fn)(struct jreader *jr, const char *key, void *ctx);

static int read_object(struct jreader *jr, key_fn fn, void *ctx, bool null_ok)
{
	char key[32];
	bool first = true;
	int m;

	if (null_ok && jr_peek(jr) != '{')
		return jr_skip(jr);
	if (jr_expect(jr, '{'))
		return -EINVAL;
	while ((m = jr_more(jr, '}', &first)) == 1) {
		int err = jr_key(jr, key, sizeof(key)) ? -EINVAL : fn(jr, key, ctx);

		if (err)
			return err;
	}
	return m < 0 ? -EINVAL : 0;
}

/* An array: @fn reads each element. */
static int read_array(struct jreader *jr, int (*fn)(struct jreader *jr, void *ctx), void *ctx)
{
	bool first = true;
	int m;

	if (jr_expect(jr, '['))
		return -EINVAL;
	while ((m = jr_more(jr, ']', &first)) == 1) {
		int err = fn(jr, ctx);

		if (err)
			return err;
	}
	return m < 0 ? -EINVAL : 0;
}

/* Objects of numbers: the fields named are read into their doubles (set to
 * their defaults by the caller: a missing key or a null keeps it). */
struct jfield {
	const char *name;
	enum qunit kind;
	double *dst;
};

struct jfields {
	const struct jfield *f;
	size_t n;
	bool present;
};

static int field_key(struct jreader *jr, const char *key, void *ctx)
{
	struct jfields *fs = ctx;

	fs->present = true;
	for (size_t i = 0; i < fs->n; i++)
		if (!strcmp(key, fs->f[i].name))
			return jr_num(jr, fs->f[i].kind, *fs->f[i].dst, fs->f[i].dst);
	return jr_skip(jr);
}

static int read_fields(struct jreader *jr, const struct jfield *f, size_t n, bool *ret_present)
{
	struct jfields fs = {f, n, false};
	int err = read_object(jr, field_key, &fs, true);

	if (!err && ret_present)
		*ret_present = fs.present || *ret_present;
	return err;
}

static int read_nr_accesses(struct jreader *jr, const struct record *r, uint32_t *ret)
{
	double samples = -1, percent = -1;
	const struct jfield f[] = {{"samples", Q_NR, &samples}, {"percent", Q_NR, &percent}};

	if (read_fields(jr, f, 2, NULL))
		return -EINVAL;
	if (samples < 0 && percent >= 0) {
		uint64_t sample = r->sample_us ? r->sample_us : 5000;
		uint64_t aggr = r->aggr_us ? r->aggr_us : 100000;

		samples = percent * (double)(aggr / sample) / 100;
	}
	*ret = to_u32(samples);
	return 0;
}

static int read_age(struct jreader *jr, const struct record *r, uint32_t *ret)
{
	double usec = -1, aggrs = -1;
	const struct jfield f[] = {{"usec", Q_US, &usec}, {"aggr_intervals", Q_NR, &aggrs}};

	if (read_fields(jr, f, 2, NULL))
		return -EINVAL;
	if (aggrs < 0 && usec >= 0)
		aggrs = usec / (double)(r->aggr_us ? r->aggr_us : 100000);
	*ret = to_u32(aggrs);
	return 0;
}

/* What the handlers of a snapshot and its regions fill. */
struct snap_ctx {
	const struct record *r;
	struct rsnap *s;
	size_t cap;
};

static int region_key(struct jreader *jr, const char *key, void *ctx)
{
	struct snap_ctx *sc = ctx;
	struct rregion *g = &sc->s->r[sc->s->nr];
	double v;
	int err;

	if (!strcmp(key, "start") || !strcmp(key, "end")) {
		err = jr_num(jr, Q_BYTES, 0, &v);
		*(key[0] == 's' ? &g->start : &g->end) = to_u64(v);
		return err;
	}
	if (!strcmp(key, "nr_accesses"))
		return read_nr_accesses(jr, sc->r, &g->nr_accesses);
	if (!strcmp(key, "age"))
		return read_age(jr, sc->r, &g->age);
	return jr_skip(jr);
}

static int read_region(struct jreader *jr, void *ctx)
{
	struct snap_ctx *sc = ctx;
	int err;

	if (sc->s->nr == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 16;
		struct rregion *n = realloc(sc->s->r, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		sc->s->r = n;
		sc->cap = cap;
	}
	sc->s->r[sc->s->nr] = (struct rregion){0};
	err = read_object(jr, region_key, sc, false);
	if (err)
		return err;
	if (sc->s->r[sc->s->nr].end < sc->s->r[sc->s->nr].start) {
		jr_fail(jr, "a region ends before it starts");
		return -EINVAL;
	}
	sc->s->nr++;
	return 0;
}

static int read_stats(struct jreader *jr, struct rsnap *s)
{
	double v[5] = {0};
	const struct jfield f[] = {{"nr_tried", Q_NR, &v[0]},
				   {"sz_tried", Q_BYTES, &v[1]},
				   {"nr_applied", Q_NR, &v[2]},
				   {"sz_applied", Q_BYTES, &v[3]},
				   {"qt_exceeds", Q_NR, &v[4]}};

	if (read_fields(jr, f, 5, &s->has_stats))
		return -EINVAL;
	s->stats = (struct rstats){to_u64(v[0]), to_u64(v[1]), to_u64(v[2]), to_u64(v[3]),
				   to_u64(v[4])};
	return 0;
}

static int snapshot_key(struct jreader *jr, const char *key, void *ctx)
{
	struct snap_ctx *sc = ctx;
	double v;
	int err;

	if (!strcmp(key, "start_time") || !strcmp(key, "end_time")) {
		err = jr_num(jr, Q_NS, 0, &v);
		*(key[0] == 's' ? &sc->s->start_ns : &sc->s->end_ns) = to_u64(v);
		return err;
	}
	if (!strcmp(key, "sample_interval_us")) {
		err = jr_num(jr, Q_US, 0, &v);
		sc->s->sample_us = to_u64(v);
		return err;
	}
	if (!strcmp(key, "damos_stats"))
		return read_stats(jr, sc->s);
	if (!strcmp(key, "regions"))
		return read_array(jr, read_region, sc);
	return jr_skip(jr);
}

static int read_snapshot(struct jreader *jr, void *ctx)
{
	struct record *r = ctx;
	struct rsnap s = {0};
	struct snap_ctx sc = {r, &s, 0};
	int err = read_object(jr, snapshot_key, &sc, false);

	if (!err)
		err = record_add_snap(r, &s);
	rsnap_free(&s);
	return err;
}

static int libdamon_key(struct jreader *jr, const char *key, void *ctx)
{
	struct record *r = ctx;
	char buf[32];
	bool null;

	if (jr_scalar(jr, buf, sizeof(buf), &null))
		return -EINVAL;
	if (null)
		return 0;
	if (!strcmp(key, "backend"))
		snprintf(r->backend, sizeof(r->backend), "%s", buf);
	else if (!strcmp(key, "pid"))
		r->pid = (pid_t)atoi(buf);
	else if (!strcmp(key, "sees") && !strcmp(buf, "writes"))
		r->sees = DAMON_SEES_WRITES;
	else if (!strcmp(key, "sees") && !strcmp(buf, "reads and writes"))
		r->sees = DAMON_SEES_READS | DAMON_SEES_WRITES;
	return 0;
}

static int record_key(struct jreader *jr, const char *key, void *ctx)
{
	struct record *r = ctx;
	double v[3] = {-1, 0, 0};
	const struct jfield f[] = {{"sample_us", Q_US, &v[0]},
				   {"aggr_us", Q_US, &v[1]},
				   {"ops_update_us", Q_US, &v[2]}};
	int err;

	if (!strcmp(key, "kdamond_idx") || !strcmp(key, "context_idx") ||
	    !strcmp(key, "target_id")) {
		err = jr_num(jr, Q_NR, -1, &v[0]);
		if (key[0] == 'k')
			r->kdamond_idx = to_idx(v[0]);
		else if (key[0] == 'c')
			r->context_idx = to_idx(v[0]);
		else
			r->target_id = to_u64(v[0]);
		return err;
	}
	if (!strcmp(key, "intervals")) {
		v[0] = 0;
		err = read_fields(jr, f, 3, NULL);
		r->sample_us = to_u64(v[0]);
		r->aggr_us = to_u64(v[1]);
		r->update_us = to_u64(v[2]);
		return err;
	}
	if (!strcmp(key, "libdamon"))
		return read_object(jr, libdamon_key, r, true);
	if (!strcmp(key, "snapshots"))
		return read_array(jr, read_snapshot, r);
	return jr_skip(jr);
}

static int read_record(struct jreader *jr, void *ctx)
{
	struct records *rs = ctx;
	struct record *r;
	int err;

	if (!(rs->nr & (rs->nr + 1)) || !rs->v) {
		/* grow at 0, 1, 3, 7, ...: the next power of two */
		struct record *n = realloc(rs->v, (rs->nr + 1) * 2 * sizeof(*n));

		if (!n)
			return -ENOMEM;
		rs->v = n;
	}
	r = &rs->v[rs->nr++]; /* a half-read record is freed with the rest */
	*r = (struct record){.kdamond_idx = -1, .context_idx = -1};
	err = read_object(jr, record_key, r, false);
	if (err)
		return err;
	/* damo's writer adds a fake last snapshot to a one-snapshot record
	 * (one region 0-0, nr_accesses and age -1): not data. */
	if (r->nr >= 2 && r->s[r->nr - 1].nr == 1 && !r->s[r->nr - 1].r[0].start &&
	    !r->s[r->nr - 1].r[0].end)
		rsnap_free(&r->s[--r->nr]);
	return 0;
}

static int slurp(const char *path, char **ret, size_t *ret_len)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0 || !buf) {
		err = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* zlib's header: CM 8 (deflate), and the 16-bit header divisible by 31. */
static bool is_zlib(const char *p, size_t len)
{
	return len >= 2 && ((unsigned char)p[0] & 0x0f) == 8 &&
	       (((unsigned char)p[0] << 8) | (unsigned char)p[1]) % 31 == 0;
}

static int inflate_all(const char *path, char *in, size_t len, char **ret, size_t *ret_len)
{
#ifdef HAVE_ZLIB
	size_t cap = len * 8 + 4096;
	z_stream z = {0};
	char *out = malloc(cap);
	int zr;

	if (!out || inflateInit(&z) != Z_OK) {
		free(out);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	do {
		if (z.total_out == cap) {
			char *n = realloc(out, cap * 2);

			if (!n) {
				zr = Z_MEM_ERROR;
				break;
			}
			out = n;
			cap *= 2;
		}
		z.next_out = (Bytef *)out + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out > UINT_MAX ? UINT_MAX : cap - z.total_out);
		zr = inflate(&z, Z_NO_FLUSH);
	} while (zr == Z_OK);
	*ret_len = z.total_out;
	inflateEnd(&z);
	if (zr != Z_STREAM_END) {
		fprintf(stderr, "damon: %s: the zlib-compressed record is damaged (%s)\n", path,
			z.msg ? z.msg : "truncated");
		free(out);
		return -EINVAL;
	}
	*ret = out;
	return 0;
#else
	(void)in;
	(void)len;
	(void)ret;
	(void)ret_len;
	fprintf(stderr, "damon: %s is zlib-compressed and this damon was built without zlib\n",
		path);
	return -EOPNOTSUPP;
#endif
}

int records_load(const char *path, struct records *ret)
{
	struct records rs = {0};
	struct jreader jr = {0};
	size_t len;
	char *buf, *text;
	int err;

	err = slurp(path, &buf, &len);
	if (err) {
		fprintf(stderr, "damon: cannot read %s: %s\n", path, strerror(-err));
		return err;
	}
	text = buf;
	if (is_zlib(buf, len)) {
		err = inflate_all(path, buf, len, &text, &len);
		free(buf);
		if (err)
			return err;
	}
	jr.p = jr.start = text;
	jr.end = text + len;
	err = read_array(&jr, read_record, &rs);
	if (!err && jr_peek(&jr)) {
		jr_fail(&jr, "text after the list of records");
		err = -EINVAL;
	}
	free(text);
	if (err) {
		if (err == -ENOMEM)
			fprintf(stderr, "damon: %s: out of memory\n", path);
		else
			fprintf(stderr, "damon: %s is not a record in damo's JSON format: %s\n",
				path, jr.err[0] ? jr.err : "bad structure");
		records_free(&rs);
		return err;
	}
	if (!rs.nr) {
		fprintf(stderr, "damon: %s holds no record\n", path);
		return -ENODATA;
	}
	*ret = rs;
	return 0;
}
