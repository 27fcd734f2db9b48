// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The database: generated once per size into a cache directory, then copied
 * for each run (runs update rows; both runs of a comparison must start from
 * the same content).
 *
 * Generation is one transaction of prepared inserts in id order, with
 * journal_mode=OFF and synchronous=OFF (nothing to recover: an interrupted
 * generation leaves only a .tmp file, renamed into place once complete),
 * and the index built after the rows (CREATE INDEX sorts once instead of
 * inserting in random order). About 35 s of CPU per GiB on the development
 * machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "workload.h"

/* Change when the content changes: cached files of another version are not used. */
#define GEN_VERSION 1
/* Bytes of file per row: a table cell of ~120 bytes (34 per 4 KiB page)
 * and an index cell of ~19. */
#define BYTES_PER_ROW 140

void value_of(uint64_t id, uint64_t ver, uint8_t v[VALUE_SZ])
{
	uint64_t st = mix64(id) ^ (ver * 0xd1b54a32d192ed03ULL), w;

	for (size_t i = 0; i < VALUE_SZ; i += sizeof(w)) {
		w = rng_next(&st);
		memcpy(v + i, &w, VALUE_SZ - i < sizeof(w) ? VALUE_SZ - i : sizeof(w));
	}
}

static int mkdirs(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i])
			continue;
		buf[i] = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		buf[i] = dir[i];
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sql_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
	return -EIO;
}

static int read_rows(const char *path, uint64_t *ret_rows, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -EIO;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT rows FROM meta", -1, &st, NULL) != SQLITE_OK)
		sql_fail(db, path, err, errlen);
	else if (sqlite3_step(st) != SQLITE_ROW)
		sql_fail(db, "reading the row count", err, errlen);
	else {
		*ret_rows = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int fill(sqlite3 *db, uint64_t rows, bool verbose, char *err, size_t errlen)
{
	sqlite3_stmt *ins = NULL;
	uint8_t v[VALUE_SZ];
	double t0 = now_s();

	if (sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?1, ?2, ?3)", -1, &ins, NULL))
		return sql_fail(db, "preparing the insert", err, errlen);
	for (uint64_t id = 1; id <= rows; id++) {
		value_of(id, 0, v);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)id);
		sqlite3_bind_int64(ins, 2, key_of(id));
		sqlite3_bind_blob(ins, 3, v, VALUE_SZ, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			sqlite3_finalize(ins);
			return sql_fail(db, "inserting", err, errlen);
		}
		sqlite3_reset(ins);
		if (verbose && id % 1000000 == 0)
			fprintf(stderr, "gen: %" PRIu64 " of %" PRIu64 " rows, %.1f s\n", id, rows,
				now_s() - t0);
	}
	sqlite3_finalize(ins);
	return 0;
}

static int generate(const char *tmp, uint64_t rows, bool verbose, char *err, size_t errlen)
{
	static const char *const setup =
		"PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
		"PRAGMA locking_mode = EXCLUSIVE; PRAGMA cache_size = -262144;"
		"CREATE TABLE kv (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v BLOB NOT NULL);"
		"CREATE TABLE meta (rows INTEGER NOT NULL, version INTEGER NOT NULL);"
		"BEGIN;";
	char sql[128];
	sqlite3 *db = NULL;
	double t0 = now_s();
	int rc;

	if (sqlite3_open(tmp, &db) != SQLITE_OK) {
		rc = sql_fail(db, tmp, err, errlen);
		goto out;
	}
	if (sqlite3_exec(db, setup, NULL, NULL, NULL) != SQLITE_OK) {
		rc = sql_fail(db, "creating the schema", err, errlen);
		goto out;
	}
	rc = fill(db, rows, verbose, err, errlen);
	if (rc)
		goto out;
	if (verbose)
		fprintf(stderr, "gen: rows in %.1f s, building the index\n", now_s() - t0);
	snprintf(sql, sizeof(sql),
		 "CREATE INDEX kv_k ON kv (k); INSERT INTO meta VALUES (%" PRIu64 ", %d); COMMIT;",
		 rows, GEN_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		rc = sql_fail(db, "indexing", err, errlen);
out:
	if (sqlite3_close(db) != SQLITE_OK && !rc)
		rc = sql_fail(db, "closing", err, errlen);
	if (verbose && !rc)
		fprintf(stderr, "gen: done in %.1f s\n", now_s() - t0);
	return rc;
}

static int sync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

int gen_database(const char *dir, uint64_t size_mib, bool verbose, char *path, size_t pathlen,
		 uint64_t *ret_rows, char *err, size_t errlen)
{
	uint64_t rows = (size_mib << 20) / BYTES_PER_ROW;
	char tmp[4200];
	int rc;

	if (!size_mib || rows >= (1ULL << 31)) {
		snprintf(err, errlen, "a database of %" PRIu64 " MiB is out of range", size_mib);
		return -EINVAL;
	}
	rc = mkdirs(dir);
	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	if ((size_t)snprintf(path, pathlen, "%s/kv-%" PRIu64 "MiB-v%d.db", dir, size_mib,
			     GEN_VERSION) >= pathlen ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "the path of the cache directory is too long");
		return -ENAMETOOLONG;
	}
	if (access(path, R_OK) == 0)
		return read_rows(path, ret_rows, err, errlen);
	if (verbose)
		fprintf(stderr, "gen: %s: %" PRIu64 " rows (about %" PRIu64 " MiB)\n", path, rows,
			size_mib);
	gen_remove(tmp);
	rc = generate(tmp, rows, verbose, err, errlen);
	if (!rc)
		rc = sync_file(tmp);
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "writing %s: %s", tmp, strerror(-rc));
		gen_remove(tmp);
		return rc;
	}
	*ret_rows = rows;
	return 0;
}

int gen_copy(const char *src, const char *dst, char *err, size_t errlen)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	char buf[1 << 16];
	ssize_t n;

	if (in >= 0)
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0) {
		rc = -errno;
		goto out;
	}
	while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
		;
	if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP)) {
		/* No in-kernel copy between these: plain read/write. */
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n) {
				n = -1;
				break;
			}
	}
	if (n < 0 || fsync(out))
		rc = -errno;
out:
	if (rc)
		snprintf(err, errlen, "copying %s to %s: %s", src, dst, strerror(-rc));
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc)
		unlink(dst);
	return rc;
}

void gen_remove(const char *path)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char buf[4200];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(buf, sizeof(buf), "%s%s", path, suffix[i]);
		unlink(buf);
	}
}
