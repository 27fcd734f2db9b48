/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * damon(1): what the subcommands share. The tool uses libdamon's public API
 * only (<damon/damon.h>); nothing here reaches into lib/.
 */
#ifndef DAMON_CLI_H
#define DAMON_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes: damo's and the usual ones. */
#define EXIT_USAGE 2

/* ------------------------------------------------------------------------ */
/* The in-memory model of a record (damo's: one record per target)          */
/* ------------------------------------------------------------------------ */

struct rregion {
	uint64_t start, end;
	uint32_t nr_accesses; /* samples that saw an access in the aggregation */
	uint32_t age;	      /* aggregation intervals */
	uint32_t target;      /* its target's target_idx (live; a cgroup's members) */
	uint32_t pad;
};

/* DAMOS counters, kernel meaning (struct damos_stats). */
struct rstats {
	uint64_t nr_tried, sz_tried, nr_applied, sz_applied, qt_exceeds;
};

struct rsnap {
	uint64_t start_ns, end_ns; /* CLOCK_MONOTONIC of the aggregation interval */
	uint64_t sample_us;	   /* sampling interval in force; 0: the record's */
	uint64_t aggr_us;	   /* aggregation interval in force; 0: the record's */
	uint32_t nr_samples;	   /* samples taken (live only; 0: unknown) */
	bool has_stats;
	struct rstats stats;
	uint64_t cpu_ns; /* the monitor's CPU time so far (live only) */
	size_t nr;
	struct rregion *r;
};

struct record {
	int64_t kdamond_idx, context_idx; /* -1: null */
	uint64_t target_id;
	uint64_t sample_us, aggr_us, update_us; /* 0: unknown (null intervals) */
	pid_t pid;				/* 0: unknown */
	char backend[32];			/* "" unknown */
	uint32_t sees;				/* enum damon_sees; 0 unknown */
	size_t nr, cap;
	struct rsnap *s;
};

struct records {
	size_t nr;
	struct record *v;
};

void rsnap_free(struct rsnap *s);
int record_add_snap(struct record *r, struct rsnap *s); /* takes over s->r */
void records_free(struct records *rs);
/* The intervals a snapshot was taken with (its own, else its record's). */
uint64_t rsnap_sample_us(const struct record *r, const struct rsnap *s);
uint64_t rsnap_aggr_us(const struct record *r, const struct rsnap *s);
/* nr_accesses / (aggr / sample) in 0..1 */
double rregion_rate(const struct record *r, const struct rsnap *s, const struct rregion *g);

/* records.c: damo's JSON record format, plain or zlib-compressed. */
enum rec_format { REC_JSON = 0, REC_JSON_COMPRESSED = 1 };
int rec_format_from_name(const char *name);		 /* -1: unknown */
int records_load(const char *path, struct records *ret); /* prints why on failure */

struct rec_writer;
int rec_writer_open(struct rec_writer **ret, const char *path, int format,
		    const struct record *head);
int rec_writer_snap(struct rec_writer *w, const struct record *head, const struct rsnap *s);
/* End the record under way and start the next one, of @head's target. */
int rec_writer_next(struct rec_writer *w, const struct record *head);
int rec_writer_close(struct rec_writer *w, bool keep); /* keep: rename into place */

/* ------------------------------------------------------------------------ */
/* json.c: a writer to a growing buffer and a pull reader                   */
/* ------------------------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_puts(struct sbuf *b, const char *s);
void sb_json_str(struct sbuf *b, const char *s);
void sb_free(struct sbuf *b);

struct jreader {
	const char *p, *end, *start;
	int depth; /* of jr_skip(), bounded: a hostile file must not overflow the stack */
	char err[160];
};
/* Each returns 0 on success, -EINVAL with jr->err set otherwise. */
int jr_peek(struct jreader *jr);			  /* next significant char, or 0 at end */
int jr_expect(struct jreader *jr, char c);		  /* '[' or '{' */
int jr_more(struct jreader *jr, char close, bool *first); /* 1: an element follows; 0: closed */
int jr_key(struct jreader *jr, char *buf, size_t sz);	  /* a key and its ':' */
int jr_scalar(struct jreader *jr, char *buf, size_t sz, bool *is_null);
int jr_skip(struct jreader *jr);
void jr_fail(struct jreader *jr, const char *what);

/* ------------------------------------------------------------------------ */
/* source.c: where snapshots come from (a live context or a record)         */
/* ------------------------------------------------------------------------ */

struct src_opts {
	int backend;	    /* enum damon_backend */
	pid_t pid;	    /* --pid */
	const char *cgroup; /* --cgroup: a cgroup v2 directory (record only) */
	char **cmd;	    /* -- CMD ARGS (NULL-terminated) */
	uint64_t sample_us, aggr_us, update_us;
	uint32_t min_nr_regions, max_nr_regions, budget;
	uint32_t cold_min_age; /* >0: a DAMOS stat scheme on memory idle that long */
	bool quiet;	       /* do not print the backend chosen */
};

struct source;
/* Starts monitoring; prints why it cannot. Return 0 or -errno. */
int src_open(struct source **ret, const struct src_opts *o);
/*
 * Wait up to @timeout_ms for the next snapshot. Return 1 and fill @ret (the
 * caller frees it with rsnap_free), 0 when none came (timeout or a signal),
 * -ESRCH when the monitoring ended (src_why() says why), or another -errno.
 */
int src_next(struct source *s, int timeout_ms, struct rsnap *ret);
const char *src_why(const struct source *s);
/* The record head: intervals, pid, backend (filled by src_open). */
const struct record *src_head(const struct source *s);
/* The pid of the target at @idx (struct rregion.target): the process of
 * --pid or the command, or a cgroup's member (0 when no longer known). */
pid_t src_target_pid(const struct source *s, uint32_t idx);
/* Stop; a command we started gets SIGTERM if it still runs, and is reaped.
 * Return its exit status as a shell would (0..255), or 0. */
int src_close(struct source *s);

/* ------------------------------------------------------------------------ */
/* main.c: options every subcommand shares                                   */
/* ------------------------------------------------------------------------ */

extern volatile sig_atomic_t dm_interrupted;
void dm_catch_signals(void);

void src_opts_init(struct src_opts *o);
/* clang-format off */
#define SRC_LONGOPTS \
	{ "backend", required_argument, NULL, 'B' }, { "pid", required_argument, NULL, 'p' }, \
	{ "sample", required_argument, NULL, 1001 }, { "aggr", required_argument, NULL, 1002 }, \
	{ "updr", required_argument, NULL, 1003 }, { "minr", required_argument, NULL, 1004 }, \
	{ "maxr", required_argument, NULL, 1005 }, { "budget", required_argument, NULL, 1006 }, \
	{ "cgroup", required_argument, NULL, 1007 }
/* clang-format on */
#define SRC_USAGE                                                                          \
	"  -B, --backend NAME  auto|kernel|page_idle|uffd_wp|soft_dirty|fault\n"           \
	"  -p, --pid PID       monitor process PID (or: -- CMD ARGS to start one)\n"       \
	"  --cgroup PATH       record: each process of a cgroup v2 group, a record each\n" \
	"  --sample US --aggr US --updr US   intervals (default 5000 100000 1000000)\n"    \
	"  --minr N --maxr N   number of regions (default 10 1000)\n"                      \
	"  --budget PERMILLE   user-space backends' CPU budget (default 20)\n"
/*
 * A subcommand's option @c: the monitoring options, --help and unknown
 * ones are handled here. Return SUB_NEXT (handled), SUB_MINE (the
 * subcommand's own) or the exit code to return (0 after --help, 2).
 */
enum { SUB_NEXT = -1, SUB_MINE = -2 };
int sub_opt(struct src_opts *o, int c, const char *arg, const char *sub, void (*usage)(FILE *));
/* After the options: the command after "--" (o->cmd points into argv), and
 * exactly one of -i @input (NULL where the subcommand takes none), --pid, a
 * command. Return 0 or EXIT_USAGE (said why). */
int sub_target(struct src_opts *o, int argc, char **argv, const char *input, const char *sub);

/* What src_run() calls: @snap for each snapshot (a negative return stops
 * with an error), @idle after each wait. */
struct run_hooks {
	int (*snap)(void *arg, const struct record *head, struct rsnap *s);
	void (*idle)(void *arg);
	void *arg;
	int slice_ms;
};
/* Drive @src until @duration_ms pass (0: no limit), SIGINT/SIGTERM, or the
 * target's end (said on stderr unless @quiet). Return 0, or 1 on a failure. */
int src_run(struct source *src, uint64_t duration_ms, const struct run_hooks *h, const char *sub,
	    bool quiet);

bool parse_u64(const char *s, uint64_t *ret);
bool parse_duration(const char *s, uint64_t *ret_ms); /* "3", "2.5", "500ms", "1m" */
void fmt_bytes(uint64_t n, char *buf, size_t sz);
void fmt_us(uint64_t us, char *buf, size_t sz);
uint64_t now_ns(void);
void usage_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Subcommands (argv[0] is the subcommand's name). */
int cmd_probe(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_live(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* report.c: collect a live record for "report" without -i */
int collect_live(const struct src_opts *o, uint64_t duration_ms, struct records *ret);

/* heatmap.c */
struct heatmap {
	unsigned int cols, rows; /* time x address cells */
	uint64_t t0_ns, t1_ns;	 /* time covered, relative origin t0 */
	uint64_t a0, a1;	 /* address range [a0, a1) */
	double *v;		 /* rows * cols: access rate 0..1, <0: not monitored */
	const char *target_desc;
};
int heatmap_build(const struct record *r, unsigned int cols, unsigned int rows, uint64_t a0,
		  uint64_t a1, struct heatmap *ret);
void heatmap_free(struct heatmap *h);
int heatmap_ascii(const struct heatmap *h, FILE *f, bool color);
int heatmap_svg(const struct heatmap *h, const char *path, unsigned int w, unsigned int hgt);
int heatmap_png(const struct heatmap *h, const char *path, unsigned int w, unsigned int hgt);
/* The colour of an access rate (0..1): black - red - yellow - white. */
void heat_rgb(double rate, uint8_t rgb[3]);
int cmd_heatmap(struct records *rs, int argc, char **argv);

#endif /* DAMON_CLI_H */
