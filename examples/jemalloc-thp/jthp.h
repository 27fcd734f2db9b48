/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * jemalloc-thp: what the files of the example share. One job per file:
 *   extents.c  jemalloc extent hooks: map/unmap the arena's memory and keep
 *              the set of mapped extents (what libdamon monitors)
 *   kvstore.c  the workload: a key-value store in that arena, Zipf gets/sets
 *   policy.c   libdamon: the context over the extents, the THP schemes, and
 *              the thread that commits the extents' ranges when they change
 *   measure.c  huge pages in the hot and cold memory (PAGEMAP_SCAN), the
 *              monitor thread's CPU time
 *   main.c     options, one run per mode in its own process, the table
 */
#ifndef JTHP_H
#define JTHP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include <damon/damon.h>

#define KiB	 ((uint64_t)1024)
#define MiB	 (1024 * KiB)
#define PAGE_SZ	 (4 * KiB)
#define HPAGE_SZ (2 * MiB)

/* PAGEMAP_SCAN on /proc/self/pagemap (linux/fs.h of Linux 6.7; older
 * headers lack it): which pages of a range are present, or huge. */
struct pm_region {
	uint64_t start, end, categories;
};
struct pm_scan {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PM_SCAN	   _IOWR('f', 16, struct pm_scan)
#define PM_PRESENT (1ULL << 3)
#define PM_HUGE	   (1ULL << 6)

/* How the arena's memory gets transparent huge pages. */
enum thp_mode {
	THP_ALWAYS, /* MADV_HUGEPAGE on every extent when it is mapped */
	THP_NEVER,  /* MADV_NOHUGEPAGE on every extent when it is mapped */
	THP_DAMON,  /* MADV_NOHUGEPAGE when mapped; libdamon's schemes decide */
};

const char *thp_mode_name(enum thp_mode m);

struct cfg {
	uint64_t heap;		 /* bytes of live values to load */
	unsigned int hot_pct;	 /* share of the keys that are hot, % */
	double zipf_s;		 /* Zipf exponent of key popularity */
	unsigned int set_pct;	 /* sets among the operations, % */
	unsigned int resize_pct; /* sets that change the value's size, % */
	unsigned int seconds;	 /* measured run after the load */
	uint64_t rate;		 /* operations per second offered; 0: as fast as possible */
	int backend;		 /* enum damon_backend */
	uint64_t sample_us, aggr_us;
	unsigned int hot_min_pct; /* hot: sampled accessed in >= this % of samples */
	bool madv_cold;		  /* also MADV_COLD on cold regions */
	bool verbose;
	uint64_t seed;
};

/* ------------------------------------------------------------------------ */
/* extents.c                                                                */
/* ------------------------------------------------------------------------ */

struct ext_stats {
	uint64_t maps, unmaps, splits, merges, purges, decommits, failed;
	uint64_t kept;	       /* purges and unmaps refused to keep a huge page whole */
	uint64_t mapped_bytes; /* now */
};

struct extents;

/* Set up the hooks for @mode and create a jemalloc arena that uses them.
 * Return: 0 (arena index in *ret_arena) or -errno. */
int ext_create(struct extents **ret, enum thp_mode mode, unsigned int *ret_arena);

/* Bumped by every map and unmap: compare to know when to look again. */
uint64_t ext_generation(struct extents *x);

/* The mapped extents now, sorted and coalesced, at most @cap of them.
 * Return: how many (-ENOSPC when more than @cap). */
int ext_ranges(struct extents *x, struct damon_addr_range *v, size_t cap, uint64_t *ret_gen);

void ext_get_stats(struct extents *x, struct ext_stats *ret);

/* ------------------------------------------------------------------------ */
/* kvstore.c                                                                */
/* ------------------------------------------------------------------------ */

struct kv;

struct kv_stats {
	uint64_t nr_keys, nr_hot_keys;
	uint64_t live_bytes, hot_bytes; /* values and headers */
	double hot_access_share;	/* share of operations on hot keys */
	uint64_t gets, sets, resizes;
	double ops_per_sec;
};

/* An empty store whose memory comes from jemalloc arena @arena. */
int kv_new(struct kv **ret, unsigned int arena, const struct cfg *c);
/* Insert keys until the values take c->heap bytes. */
int kv_load(struct kv *kv);
/* Zipf-distributed gets and sets for @seconds, at c->rate per second. */
void kv_run(struct kv *kv, unsigned int seconds);
void kv_get_stats(const struct kv *kv, struct kv_stats *ret);
/* Call @fn for the memory of every hot item and of the index (hot too:
 * every operation probes it). */
void kv_for_each_hot(const struct kv *kv, void (*fn)(uint64_t start, uint64_t end, void *arg),
		     void *arg);
void kv_free(struct kv *kv);

/* ------------------------------------------------------------------------ */
/* policy.c                                                                 */
/* ------------------------------------------------------------------------ */

struct policy;

struct policy_stats {
	uint64_t commits; /* range updates committed while running */
	uint64_t hugepage_bytes, collapse_bytes, nohuge_bytes, cold_bytes; /* applied */
	uint64_t nr_snapshots;
	double monitor_cpu_sec;
	char backend[32];
};

/* Start monitoring the extents of @x (no scheme yet). */
int policy_start(struct policy **ret, struct extents *x, const struct cfg *c, char *msg,
		 size_t msg_sz);
/* Add the THP schemes and commit them. */
int policy_arm(struct policy *p, const struct cfg *c, char *msg, size_t msg_sz);
/* The newest snapshot's regions, malloc()ed; how many (0 if none). */
size_t policy_regions(struct policy *p, struct damon_region **ret);
/* Stop, collect the statistics, free. */
void policy_stop(struct policy *p, struct policy_stats *ret);

/* ------------------------------------------------------------------------ */
/* measure.c                                                                */
/* ------------------------------------------------------------------------ */

struct mem_stats {
	/* bytes of the hot items and the index, and how many lie in huge pages */
	uint64_t hot, hot_huge;
	/* bytes of the pages that hold no hot byte, and of those in huge pages */
	uint64_t cold, cold_huge;
	uint64_t rss;	   /* present pages of the extents */
	uint64_t cold_rss; /* present cold pages */
	uint64_t huge;	   /* bytes in huge pages (AnonHugePages of the extents) */
};

int measure(struct extents *x, const struct kv *kv, struct mem_stats *ret, char *msg,
	    size_t msg_sz);

/* Print each region of @v with its share of hot pages and its huge pages. */
void measure_regions(struct extents *x, const struct kv *kv, const struct damon_region *v,
		     size_t n);

/* CPU seconds used so far by this process's thread named @comm; -1 if none. */
double thread_cpu_sec(const char *comm);

/* The host's THP mode: "always", "madvise", "never", or NULL if unknown. */
const char *host_thp_mode(char *buf, size_t sz);

#endif
