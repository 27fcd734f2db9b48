// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * What the soak bench counts and how it judges: every API result by errno
 * (expected ones by name, others as unexpected with their sentence), log
 * messages by level, and after every cycle, when no context is alive, the
 * process's RSS, open fds and threads. The verdict compares a window after
 * the warm-up with the last one: RSS may grow by a small bound (malloc
 * arenas and thread stacks settle), fds and threads not at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "soak.h"

#define MAX_ERRNO	 200
#define PRINT_UNEXPECTED 20 /* the first ones are printed in full */

static const char *const call_names[SC_NR] = {
	[SC_NEW] = "damon_ctx_new",
	[SC_ADD_TARGET] = "damon_ctx_add_target",
	[SC_ADD_RANGE] = "damon_target_add_range",
	[SC_START] = "damon_ctx_start",
	[SC_STOP] = "damon_ctx_stop",
	[SC_COMMIT] = "damon_ctx_commit",
	[SC_SET_ATTRS] = "damon_ctx_set_attrs",
	[SC_PAUSE] = "damon_ctx_pause",
	[SC_RESUME] = "damon_ctx_resume",
	[SC_STEP] = "damon_ctx_step",
	[SC_STATUS] = "damon_ctx_status",
	[SC_SNAPSHOT] = "damon_ctx_snapshot",
	[SC_REGION] = "damon_snapshot_region/info",
	[SC_HOTNESS] = "damon_*_hotness",
	[SC_ADD_SCHEME] = "damon_ctx_add_scheme",
	[SC_ADD_FILTER] = "damos_add_filter",
	[SC_ADD_GOAL] = "damos_add_goal",
	[SC_SET_GOAL] = "damos_set_goal_current",
	[SC_STATS] = "damos_get_stats/quota",
	[SC_CHILD] = "child",
};

struct sample {
	double t;
	uint64_t cycles;
	uint64_t rss_kib;
	unsigned int fds, threads;
};

static struct {
	struct soak_report_opts o;
	atomic_ulong by_errno[MAX_ERRNO + 1]; /* expected errors */
	atomic_ulong calls;
	atomic_ulong unexpected;
	atomic_ulong log_by_level[8];
	atomic_ulong snapshots;
	struct sample first, *samples;
	size_t nr_samples, cap_samples;
	double next_print;
} rep;

int soak_ret(enum soak_call call, int ret, const damon_ctx *ctx, const int *ok, size_t nr_ok)
{
	int e = -ret;

	atomic_fetch_add_explicit(&rep.calls, 1, memory_order_relaxed);
	if (ret >= 0)
		return ret;
	/* ok[0] is the 0 that keeps the list non-empty */
	for (size_t i = 1; i < nr_ok; i++) {
		if (ok[i] == e) {
			atomic_fetch_add_explicit(&rep.by_errno[e <= MAX_ERRNO ? e : 0], 1,
						  memory_order_relaxed);
			return ret;
		}
	}
	soak_unexpected(call, "%d (%s): %s", ret, strerrorname_np(e) ?: "?",
			ctx ? damon_ctx_errmsg(ctx) : "");
	return ret;
}

void soak_unexpected(enum soak_call call, const char *fmt, ...)
{
	unsigned long n = atomic_fetch_add(&rep.unexpected, 1);
	va_list ap;

	if (n >= PRINT_UNEXPECTED)
		return;
	flockfile(stdout);
	printf("UNEXPECTED %s: ", call_names[call]);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	funlockfile(stdout);
	fflush(stdout);
}

void soak_new_snapshot(void)
{
	atomic_fetch_add_explicit(&rep.snapshots, 1, memory_order_relaxed);
}

void soak_log(damon_ctx *ctx, int level, const char *msg, void *userdata)
{
	atomic_fetch_add_explicit(&rep.log_by_level[level & 7], 1, memory_order_relaxed);
}

/* "KEY:  N" of /proc/self/status (kB for VmRSS). */
static uint64_t status_field(const char *key)
{
	size_t kl = strlen(key);
	unsigned long long v = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtoull(line + kl + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

/* Open fds, not counting the one that reads the directory. */
static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n ? n - 1 : 0;
}

static void measure(struct sample *s, double t, uint64_t cycles)
{
	s->t = t;
	s->cycles = cycles;
	s->rss_kib = status_field("VmRSS");
	s->fds = count_fds();
	s->threads = (unsigned int)status_field("Threads");
}

void soak_report_init(const struct soak_report_opts *o)
{
	rep.o = *o;
	/* One sample per cycle, and a cycle lasts 1 s or more: room for all of
	 * them, allocated and touched now, so the record is no growth itself. */
	rep.cap_samples = (size_t)o->duration + 1024;
	rep.samples = mmap(NULL, rep.cap_samples * sizeof(*rep.samples), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (rep.samples == MAP_FAILED) {
		rep.samples = NULL;
		rep.cap_samples = 0;
	}
	measure(&rep.first, 0, 0);
	rep.next_print = o->interval;
	printf("%8s %8s %10s %5s %8s  %s\n", "elapsed", "cycles", "rss_kib", "fds", "threads",
	       "errors (expected ones by name; log messages; calls, new snapshots read)");
	printf("%7.0fs %8d %10llu %5u %8u  (before the first cycle)\n", 0.0, 0,
	       (unsigned long long)rep.first.rss_kib, rep.first.fds, rep.first.threads);
	fflush(stdout);
}

static void print_errors(void)
{
	printf(" unexpected %lu;", atomic_load(&rep.unexpected));
	for (int e = 0; e <= MAX_ERRNO; e++) {
		unsigned long n = atomic_load(&rep.by_errno[e]);

		if (n)
			printf(" %s %lu", e ? strerrorname_np(e) ?: "?" : "other", n);
	}
	printf("; log warn %lu err %lu; calls %lu, snapshots %lu",
	       atomic_load(&rep.log_by_level[DAMON_LOG_WARNING]),
	       atomic_load(&rep.log_by_level[DAMON_LOG_ERR]), atomic_load(&rep.calls),
	       atomic_load(&rep.snapshots));
}

void soak_report_sample(double t, uint64_t cycles)
{
	struct sample s;

	measure(&s, t, cycles);
	if (rep.nr_samples < rep.cap_samples)
		rep.samples[rep.nr_samples++] = s;
	if (t < rep.next_print)
		return;
	while (rep.next_print <= t)
		rep.next_print += rep.o.interval;
	printf("%7.0fs %8llu %10llu %5u %8u ", t, (unsigned long long)cycles,
	       (unsigned long long)s.rss_kib, s.fds, s.threads);
	print_errors();
	printf("\n");
	fflush(stdout);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct window {
	double from, to;
	size_t n;
	uint64_t rss_median, rss_max;
	unsigned int fds_max, threads_max;
};

/* The samples taken in [from, to). */
static void window_of(struct window *w, double from, double to)
{
	uint64_t *rss = calloc(rep.nr_samples + 1, sizeof(*rss));

	w->from = from;
	w->to = to;
	w->n = 0;
	w->rss_max = w->rss_median = 0;
	w->fds_max = w->threads_max = 0;
	for (size_t i = 0; rss && i < rep.nr_samples; i++) {
		const struct sample *s = &rep.samples[i];

		if (s->t < from || s->t >= to)
			continue;
		rss[w->n++] = s->rss_kib;
		if (s->rss_kib > w->rss_max)
			w->rss_max = s->rss_kib;
		if (s->fds > w->fds_max)
			w->fds_max = s->fds;
		if (s->threads > w->threads_max)
			w->threads_max = s->threads;
	}
	if (w->n) {
		qsort(rss, w->n, sizeof(*rss), cmp_u64);
		w->rss_median = rss[w->n / 2];
	}
	free(rss);
}

static bool row(const char *what, long long first, long long last, long long bound)
{
	bool ok = last - first <= bound;

	printf("  %-22s %10lld %10lld %+10lld %10lld  %s\n", what, first, last, last - first, bound,
	       ok ? "ok" : "FAIL");
	return ok;
}

int soak_report_verdict(double t, uint64_t cycles)
{
	double len = rep.o.window;
	struct window a, b;
	bool ok = true;

	window_of(&a, rep.o.warmup, rep.o.warmup + len);
	window_of(&b, t - len, t + 1);
	printf("verdict after %.0f s, %llu cycles: window [%.0f s, %.0f s) (%zu samples) "
	       "against [%.0f s, %.0f s] (%zu samples)\n",
	       t, (unsigned long long)cycles, a.from, a.to, a.n, b.from, t, b.n);
	printf("  %-22s %10s %10s %10s %10s\n", "", "first", "last", "growth", "bound");
	if (!a.n || !b.n) {
		printf("  too few cycles to compare: FAIL\n");
		ok = false;
	} else {
		ok &= row("RSS median (KiB)", (long long)a.rss_median, (long long)b.rss_median,
			  (long long)rep.o.rss_bound_kib);
		printf("  %-22s %10llu %10llu %+10lld %10s  (not judged)\n", "RSS max (KiB)",
		       (unsigned long long)a.rss_max, (unsigned long long)b.rss_max,
		       (long long)b.rss_max - (long long)a.rss_max, "");
		ok &= row("open fds (max)", a.fds_max, b.fds_max, 0);
		ok &= row("threads (max)", a.threads_max, b.threads_max, 0);
	}
	printf("  %-22s %10s %10lu %10s %10d  %s\n", "unexpected errors", "",
	       atomic_load(&rep.unexpected), "", 0, atomic_load(&rep.unexpected) ? "FAIL" : "ok");
	ok &= !atomic_load(&rep.unexpected);
	printf("  before the first cycle: RSS %llu KiB, %u fds, %u threads\n",
	       (unsigned long long)rep.first.rss_kib, rep.first.fds, rep.first.threads);
	printf(" ");
	print_errors();
	printf("\nSOAK %s\n", ok ? "PASS" : "FAIL");
	fflush(stdout);
	return ok ? 0 : 1;
}
