// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The workload: point lookups and updates of rows picked with a Zipf law.
 *
 * The row of popularity rank r (1 = most asked for) is id = rows + 1 - r:
 * recent rows are the hot ones, as in a table of orders or messages. The
 * lookup goes through the index on k (a scramble of id: index pages are hot
 * all over) to the table (hot pages together at its end). The run database
 * is in WAL mode with synchronous=NORMAL, as a service would run it; each
 * operation is its own transaction.
 *
 * Every answer enters a checksum, in order: two runs of the same sequence
 * on the same database give the same checksum only if every lookup read the
 * same bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "workload.h"

/*
 * Zipf sampling by rejection-inversion (W. Hörmann, G. Derflinger,
 * "Rejection-inversion to generate variates from monotone discrete
 * distributions", 1996): O(1) per draw, no table, any exponent s > 0.
 * Ranks 1..n with P(k) proportional to k^-s.
 */
struct zipf {
	double s, n, h_x1, h_n, thr;
};

/* expm1(t) / t and log1p(t) / t, well-behaved near 0 (s close to 1). */
static double expm1_over(double t)
{
	return fabs(t) > 1e-8 ? expm1(t) / t : 1 + t / 2 * (1 + t / 3 * (1 + t / 4));
}

static double log1p_over(double t)
{
	return fabs(t) > 1e-8 ? log1p(t) / t : 1 - t * (0.5 - t * (1.0 / 3 - t / 4));
}

/* An antiderivative of x^-s: (x^(1-s) - 1) / (1-s), and log x at s = 1. */
static double zipf_H(const struct zipf *z, double x)
{
	double lx = log(x);

	return expm1_over((1 - z->s) * lx) * lx;
}

static double zipf_H_inv(const struct zipf *z, double y)
{
	double t = y * (1 - z->s);

	if (t < -1)
		t = -1; /* rounding at the far end */
	return exp(log1p_over(t) * y);
}

static double zipf_h(const struct zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static void zipf_init(struct zipf *z, double s, uint64_t n)
{
	z->s = s;
	z->n = (double)n;
	z->h_x1 = zipf_H(z, 1.5) - 1;
	z->h_n = zipf_H(z, z->n + 0.5);
	z->thr = 2 - zipf_H_inv(z, zipf_H(z, 2.5) - zipf_h(z, 2));
}

static uint64_t zipf_next(const struct zipf *z, uint64_t *rng)
{
	for (;;) {
		double u01 = (double)(rng_next(rng) >> 11) * 0x1p-53;
		double u = z->h_n + u01 * (z->h_x1 - z->h_n);
		double x = zipf_H_inv(z, u), k = floor(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > z->n)
			k = z->n;
		/* Accept: inside the part of the hat that is always under the
		 * distribution, or under it at k. */
		if (k - x <= z->thr || u >= zipf_H(z, k + 0.5) - zipf_h(z, k))
			return (uint64_t)k;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double clock_s(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t self_rss(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

/* FNV-1a over @len bytes, folded into @h. */
static uint64_t fold(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

struct run {
	sqlite3 *db;
	sqlite3_stmt *get, *put;
	struct zipf z;
	uint64_t rng, rows;
	uint32_t update_pct;
	struct wl_result *res;
	char *err;
	size_t errlen;
};

static int sql_fail(struct run *r, const char *what)
{
	snprintf(r->err, r->errlen, "%s: %s", what, sqlite3_errmsg(r->db));
	return -EIO;
}

static int one_op(struct run *r, uint64_t seq)
{
	uint64_t rank = zipf_next(&r->z, &r->rng), id = r->rows + 1 - rank;
	bool update = rng_next(&r->rng) % 100 < r->update_pct;
	struct wl_result *res = r->res;
	uint8_t v[VALUE_SZ];
	int rc;

	if (update) {
		value_of(id, seq + 1, v);
		sqlite3_bind_int64(r->put, 1, key_of(id));
		sqlite3_bind_blob(r->put, 2, v, VALUE_SZ, SQLITE_STATIC);
		rc = sqlite3_step(r->put);
		sqlite3_reset(r->put);
		if (rc != SQLITE_DONE)
			return sql_fail(r, "update");
		res->updates++;
		res->checksum = fold(res->checksum, "u", 1);
		return 0;
	}
	sqlite3_bind_int64(r->get, 1, key_of(id));
	while ((rc = sqlite3_step(r->get)) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(r->get, 0);
		int n = sqlite3_column_bytes(r->get, 0);

		res->found++;
		res->checksum = fold(res->checksum, b, (size_t)n);
	}
	sqlite3_reset(r->get);
	if (rc != SQLITE_DONE)
		return sql_fail(r, "lookup");
	res->lookups++;
	res->checksum = fold(res->checksum, "l", 1);
	return 0;
}

static int open_run(struct run *r, const struct wl_opts *o)
{
	char sql[256];

	if (sqlite3_open_v2(o->db_path, &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return sql_fail(r, o->db_path);
	snprintf(sql, sizeof(sql),
		 "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL;"
		 "PRAGMA synchronous = NORMAL;"
		 "PRAGMA wal_autocheckpoint = 10000;"
		 "PRAGMA cache_size = -%lld;",
		 (long long)o->cache_kib);
	if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sql_fail(r, "setting up the connection");
	if (sqlite3_prepare_v2(r->db, "SELECT v FROM kv WHERE k = ?1", -1, &r->get, NULL) ||
	    sqlite3_prepare_v2(r->db, "UPDATE kv SET v = ?2 WHERE k = ?1", -1, &r->put, NULL))
		return sql_fail(r, "preparing");
	return 0;
}

static int count_rows(struct run *r)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;

	if (sqlite3_prepare_v2(r->db, "SELECT rows FROM meta", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		r->rows = (uint64_t)sqlite3_column_int64(st, 0);
		rc = r->rows ? 0 : -EINVAL;
	}
	sqlite3_finalize(st);
	if (rc)
		snprintf(r->err, r->errlen, "%s has no rows", sqlite3_db_filename(r->db, "main"));
	return rc;
}

int wl_run(const struct wl_opts *o, void (*at_end)(void *arg), void *arg, struct wl_result *ret,
	   char *err, size_t errlen)
{
	struct wl_result res = {0};
	struct run r = {.rng = o->seed,
			.update_pct = o->update_pct,
			.res = &res,
			.err = err,
			.errlen = errlen};
	double t0, t_mark, t_end = 0, t_last, cpu_mark, thread_mark;
	uint64_t seq = 0, ops_mark = 0, ops_last = 0;
	int cur, hi, rc;

	rc = open_run(&r, o);
	if (!rc)
		rc = count_rows(&r);
	if (rc)
		goto out;
	zipf_init(&r.z, o->zipf_s, r.rows);
	t0 = t_mark = t_last = now_s();
	cpu_mark = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	thread_mark = clock_s(CLOCK_THREAD_CPUTIME_ID);
	if (!o->queries)
		t_end = t0 + o->warm_s + o->run_s;
	for (bool measuring = o->queries || o->warm_s <= 0;; seq++) {
		if (o->queries ? seq == o->queries : seq % 256 == 0 && now_s() >= t_end)
			break;
		if (!measuring && seq % 256 == 0 && now_s() >= t0 + o->warm_s) {
			/* The measured part starts: reset SQLite's counters. */
			measuring = true;
			t_mark = now_s();
			ops_mark = seq;
			cpu_mark = clock_s(CLOCK_PROCESS_CPUTIME_ID);
			thread_mark = clock_s(CLOCK_THREAD_CPUTIME_ID);
			sqlite3_db_status(r.db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1);
			sqlite3_db_status(r.db, SQLITE_DBSTATUS_CACHE_HIT, &cur, &hi, 1);
		}
		if (o->queries && seq == o->queries / 2 && o->halfway)
			o->halfway(o->arg);
		rc = one_op(&r, seq);
		if (rc)
			goto out;
		if (seq % 1024 == 0 && o->progress && now_s() >= t_last + 1) {
			double t = now_s();

			o->progress(o->arg, t - t0, seq, (double)(seq - ops_last) / (t - t_last));
			t_last = t;
			ops_last = seq;
		}
	}
	res.ops = seq;
	res.cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu_mark;
	res.thread_cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - thread_mark;
	res.seconds = now_s() - t_mark;
	res.ops_per_s = (double)(seq - ops_mark) / res.seconds;
	res.rows = r.rows;
	sqlite3_db_status(r.db, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
	res.cache_miss = cur;
	sqlite3_db_status(r.db, SQLITE_DBSTATUS_CACHE_HIT, &cur, &hi, 0);
	res.cache_hit = cur;
	sqlite3_db_status(r.db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0);
	res.cache_used = cur;
	if (at_end)
		at_end(arg);
	res.rss = self_rss();
	*ret = res;
out:
	sqlite3_finalize(r.get);
	sqlite3_finalize(r.put);
	if (r.db && sqlite3_close(r.db) != SQLITE_OK && !rc)
		rc = -EIO;
	return rc;
}
