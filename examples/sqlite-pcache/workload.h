// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * The database (gen.c) and the queries run on it (workload.c).
 *
 * Table kv(id INTEGER PRIMARY KEY, k INTEGER, v BLOB) with an index on k;
 * k is a bijective scramble of id, so the index is in another order than
 * the table. A query looks a row up by k (index, then table) and reads v;
 * an update writes a new v.
 */
#ifndef SQLITE_PCACHE_WORKLOAD_H
#define SQLITE_PCACHE_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VALUE_SZ 100

/* splitmix64's output function: a bijection of 64-bit integers. */
static inline uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The next number of a splitmix64 sequence. */
static inline uint64_t rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

static inline int64_t key_of(uint64_t id)
{
	return (int64_t)mix64(id);
}

/* Fill v with the value of row @id, version @ver (0 at generation). */
void value_of(uint64_t id, uint64_t ver, uint8_t v[VALUE_SZ]);

/*
 * The database of about @size_mib MiB in @dir, generated unless a complete
 * one is there already. Its path goes to @path; its row count to *ret_rows.
 * 0 or -errno with a sentence in @err.
 */
int gen_database(const char *dir, uint64_t size_mib, bool verbose, char *path, size_t pathlen,
		 uint64_t *ret_rows, char *err, size_t errlen);
/* A private copy of @src at @dst for one run (runs update rows), synced. */
int gen_copy(const char *src, const char *dst, char *err, size_t errlen);
/* Remove @path and its -wal and -shm files. */
void gen_remove(const char *path);

struct wl_opts {
	const char *db_path;
	double zipf_s;	      /* skew of the rows' popularity */
	uint32_t update_pct;  /* percent of operations that update */
	uint64_t seed;	      /* of the operation sequence */
	uint64_t queries;     /* > 0: run exactly this many operations */
	double warm_s, run_s; /* else: warm up, then measure for run_s */
	int64_t cache_kib;    /* PRAGMA cache_size = -cache_kib */
	/* Called about once a second (may be NULL). */
	void (*progress)(void *arg, double t, uint64_t ops, double ops_per_s);
	/* With @queries: called once halfway (may be NULL). */
	void (*halfway)(void *arg);
	void *arg;
};

struct wl_result {
	uint64_t ops, lookups, updates, found;
	uint64_t checksum;	       /* of every answer, in order */
	double seconds;		       /* measured part */
	double ops_per_s;	       /* measured part */
	double cpu_s;		       /* CPU time of the process (every thread), measured part */
	double thread_cpu_s;	       /* CPU time of the thread running the operations, same */
	int64_t cache_miss, cache_hit; /* sqlite3_db_status, measured part */
	int64_t cache_used;	       /* SQLITE_DBSTATUS_CACHE_USED at the end */
	uint64_t rss;		       /* the process's, at the end (before closing) */
	uint64_t rows;
};

/* Run the workload; @at_end (may be NULL) is called before the database is
 * closed (to measure memory). 0 or -errno with a sentence in @err. */
int wl_run(const struct wl_opts *o, void (*at_end)(void *arg), void *arg, struct wl_result *ret,
	   char *err, size_t errlen);

/* VmRSS of this process in bytes, 0 if unknown. */
uint64_t self_rss(void);

#endif
