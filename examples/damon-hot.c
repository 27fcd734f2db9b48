// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon-hot: watch which memory is hot, live.
 *
 *   damon-hot demo [options]      run a built-in workload in this process
 *                                 (threads writing a hot set that moves
 *                                 through a 1 GiB buffer) and watch it
 *   damon-hot --pid N [options]   watch process N, where a backend allows
 *
 * Options: --json (one JSON object per snapshot), --duration S (0: until
 * Ctrl-C), --phase S, --size MiB, --hot MiB, --aggr-ms N, --sample-ms N,
 * --budget PERMILLE, --max-regions N, --backend NAME, --no-clear.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#define MiB (1024ULL * 1024)

struct opts {
	bool demo, json, clear;
	pid_t pid;
	unsigned int duration_s, phase_s, nr_threads;
	uint64_t size, hot;
	uint64_t aggr_us, sample_us;
	uint32_t budget, max_regions;
	int backend;
};

/* The demo workload: threads writing one byte per page of the hot set, over
 * and over; the hot set moves to the next slot of the buffer each phase. */
struct workload {
	uint8_t *buf;
	uint64_t size, hot;
	unsigned int nr_slots;
	atomic_uint slot;
	atomic_bool stop;
	pthread_t threads[8];
	unsigned int nr_threads;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *worker(void *arg)
{
	struct workload *w = arg;
	uint64_t i = 0;

	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		uint64_t base = (uint64_t)atomic_load_explicit(&w->slot, memory_order_relaxed) * w->hot;

		/* A write per page: uffd_wp sees writes. */
		for (uint64_t off = 0; off < w->hot; off += 4096)
			w->buf[base + ((off + i * 64) % w->hot)] += 1;
		i++;
	}
	return NULL;
}

static int workload_start(struct workload *w, const struct opts *o)
{
	w->size = o->size;
	w->hot = o->hot;
	w->nr_slots = (unsigned int)(o->size / o->hot);
	w->buf = mmap(NULL, w->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->buf == MAP_FAILED)
		return -errno;
	atomic_init(&w->slot, 0);
	atomic_init(&w->stop, false);
	w->nr_threads = o->nr_threads;
	for (unsigned int i = 0; i < w->nr_threads; i++)
		if (pthread_create(&w->threads[i], NULL, worker, w))
			return -EAGAIN;
	return 0;
}

static void workload_stop(struct workload *w)
{
	atomic_store(&w->stop, true);
	for (unsigned int i = 0; i < w->nr_threads; i++)
		pthread_join(w->threads[i], NULL);
	munmap(w->buf, w->size);
}

static void human(uint64_t n, char *buf, size_t sz)
{
	const char *u[] = { "B", "K", "M", "G", "T" };
	int i = 0;
	double x = (double)n;

	while (x >= 1024 && i < 4) {
		x /= 1024;
		i++;
	}
	snprintf(buf, sz, i ? "%.1f%s" : "%.0f%s", x, u[i]);
}

static void print_reasons(damon_ctx *ctx, FILE *f, const char *indent)
{
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		struct damon_backend_status st = { .sz = sizeof(st) };

		if (damon_ctx_backend_status(ctx, b, &st))
			continue;
		fprintf(f, "%s%-10s %s  %s\n", indent, damon_backend_name(b),
			st.usable ? "usable " : "refused", st.reason);
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void show_json(damon_snapshot *s, const struct workload *w, int backend)
{
	struct damon_snapshot_info info = { .sz = sizeof(info) };
	size_t n = damon_snapshot_nr_regions(s);

	damon_snapshot_info(s, &info);
	printf("{\"seq\":%" PRIu64 ",\"time_ns\":%" PRIu64 ",\"backend\":", info.seq, info.time_ns);
	json_string(damon_backend_name(backend));
	printf(",\"sample_us\":%" PRIu64 ",\"aggr_us\":%" PRIu64 ",\"max_nr_accesses\":%u"
	       ",\"nr_samples\":%u",
	       info.sample_us, info.aggr_us, info.max_nr_accesses, info.nr_samples);
	if (w)
		printf(",\"hot_start\":%" PRIu64 ",\"hot_end\":%" PRIu64,
		       (uint64_t)(uintptr_t)w->buf + atomic_load(&w->slot) * w->hot,
		       (uint64_t)(uintptr_t)w->buf + (atomic_load(&w->slot) + 1) * w->hot);
	printf(",\"regions\":[");
	for (size_t i = 0; i < n; i++) {
		struct damon_region r = { .sz = sizeof(r) };

		damon_snapshot_region(s, i, &r);
		printf("%s{\"start\":%" PRIu64 ",\"end\":%" PRIu64 ",\"nr_accesses\":%u,"
		       "\"age\":%u,\"access_rate_bp\":%u,\"target_idx\":%u}",
		       i ? "," : "", r.start, r.end, r.nr_accesses, r.age, r.access_rate_bp,
		       r.target_idx);
	}
	printf("]}\n");
	fflush(stdout);
}

/* Is most of the region inside the hot set? */
static bool marks_hot(const struct damon_region *r, uint64_t lo, uint64_t hi)
{
	uint64_t s = r->start > lo ? r->start : lo, e = r->end < hi ? r->end : hi;

	return e > s && (e - s) * 2 >= r->end - r->start;
}

static void show_view(damon_ctx *ctx, damon_snapshot *s, const struct workload *w,
		      const struct opts *o)
{
	struct damon_snapshot_info info = { .sz = sizeof(info) };
	size_t n = damon_snapshot_nr_regions(s), outside = 0;
	uint64_t lo = 0, hi = UINT64_MAX, hot_lo = 0, hot_hi = 0;
	char a[16], b[16];

	damon_snapshot_info(s, &info);
	if (o->clear)
		fputs("\033[H\033[2J", stdout);
	printf("damon-hot: snapshot %" PRIu64 ", backend %s (sees %s), sample %.1f ms, "
	       "aggregation %.1f ms, %zu regions\n",
	       info.seq, damon_backend_name(info.backend),
	       info.sees == DAMON_SEES_WRITES ? "writes only" : "reads and writes",
	       info.sample_us / 1000.0, info.aggr_us / 1000.0, n);
	print_reasons(ctx, stdout, "  ");
	if (w) {
		lo = (uint64_t)(uintptr_t)w->buf;
		hi = lo + w->size;
		hot_lo = lo + atomic_load(&w->slot) * w->hot;
		hot_hi = hot_lo + w->hot;
		human(w->hot, a, sizeof(a));
		human(w->size, b, sizeof(b));
		printf("workload: %u threads write a %s hot set, now at +%" PRIu64 " MiB of a %s "
		       "buffer; it moves every %u s\n",
		       w->nr_threads, a, (uint64_t)((hot_lo - lo) / MiB), b, o->phase_s);
	}
	printf("\n%-33s %8s %9s %5s  %-30s\n", "range", "size", "accesses", "age", "heat");
	for (size_t i = 0; i < n; i++) {
		struct damon_region r = { .sz = sizeof(r) };
		char bar[31];
		int len;

		damon_snapshot_region(s, i, &r);
		if (r.end <= lo || r.start >= hi) {
			outside++;
			continue;
		}
		len = (int)(r.access_rate_bp * 30 / 10000);
		memset(bar, '#', (size_t)len);
		memset(bar + len, '.', (size_t)(30 - len));
		bar[30] = '\0';
		human(r.end - r.start, a, sizeof(a));
		printf("%016" PRIx64 "-%016" PRIx64 " %8s %4u/%-4u %5u  %s%s\n", r.start, r.end, a,
		       r.nr_accesses, info.nr_samples, r.age, bar, marks_hot(&r, hot_lo, hot_hi) ?
		       "  <- hot set" : "");
	}
	if (w && outside)
		printf("(%zu more regions outside the workload's buffer: libraries, heap, stacks)\n",
		       outside);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: damon-hot demo [options]\n"
		   "       damon-hot --pid N [options]\n"
		   "options: --json --duration S --phase S --size MiB --hot MiB --threads N\n"
		   "         --aggr-ms N --sample-ms N --budget PERMILLE --max-regions N\n"
		   "         --backend auto|kernel|page_idle|uffd_wp|soft_dirty|fault --no-clear\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "phase", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 's' },
		{ "hot", required_argument, NULL, 'H' },
		{ "threads", required_argument, NULL, 't' },
		{ "aggr-ms", required_argument, NULL, 'a' },
		{ "sample-ms", required_argument, NULL, 'S' },
		{ "budget", required_argument, NULL, 'b' },
		{ "max-regions", required_argument, NULL, 'm' },
		{ "backend", required_argument, NULL, 'B' },
		{ "no-clear", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .clear = true, .duration_s = 30, .phase_s = 5, .nr_threads = 2,
			    .size = 1024 * MiB, .hot = 64 * MiB, .aggr_us = 100000,
			    .sample_us = 5000, .budget = 50, .max_regions = 200 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'j': o->json = true; break;
		case 'p': o->pid = (pid_t)atoi(optarg); break;
		case 'd': o->duration_s = (unsigned int)atoi(optarg); break;
		case 'P': o->phase_s = (unsigned int)atoi(optarg); break;
		case 's': o->size = strtoull(optarg, NULL, 0) * MiB; break;
		case 'H': o->hot = strtoull(optarg, NULL, 0) * MiB; break;
		case 't': o->nr_threads = (unsigned int)atoi(optarg); break;
		case 'a': o->aggr_us = strtoull(optarg, NULL, 0) * 1000; break;
		case 'S': o->sample_us = strtoull(optarg, NULL, 0) * 1000; break;
		case 'b': o->budget = (uint32_t)atoi(optarg); break;
		case 'm': o->max_regions = (uint32_t)atoi(optarg); break;
		case 'B':
			o->backend = damon_backend_from_name(optarg);
			if (o->backend < 0) {
				fprintf(stderr, "damon-hot: unknown backend \"%s\"\n", optarg);
				return -1;
			}
			break;
		case 'n': o->clear = false; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "demo")) {
		o->demo = true;
		optind++;
	}
	if (optind != argc || o->demo == (o->pid > 0)) {
		usage(stderr);
		return -1;
	}
	if (!o->hot || o->hot > o->size || o->nr_threads < 1 || o->nr_threads > 8) {
		fprintf(stderr, "damon-hot: need 0 < --hot <= --size and 1..8 threads\n");
		return -1;
	}
	if (o->json)
		o->clear = false;
	return 0;
}

int main(int argc, char **argv)
{
	struct workload w = { 0 };
	struct opts o;
	damon_ctx *ctx = NULL;
	uint64_t t0, next_phase;
	int err, status = 1;

	if (parse(argc, argv, &o))
		return 2;
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);

	DAMON_OPTS(damon_ctx_opts, copts, .ops = DAMON_OPS_VADDR, .backend = (uint32_t)o.backend,
		   .sample_us = o.sample_us, .aggr_us = o.aggr_us,
		   .max_nr_regions = o.max_regions, .cpu_budget_permille = o.budget);
	err = damon_ctx_new(&ctx, &copts);
	if (err) {
		fprintf(stderr, "damon-hot: %s\n", strerror(-err));
		return 1;
	}
	err = damon_ctx_add_target(ctx, o.demo ? 0 : o.pid, NULL);
	if (err) {
		fprintf(stderr, "damon-hot: %s\n", damon_ctx_errmsg(ctx));
		goto out;
	}
	if (o.demo) {
		err = workload_start(&w, &o);
		if (err) {
			fprintf(stderr, "damon-hot: cannot start the workload: %s\n",
				strerror(-err));
			goto out;
		}
	}
	err = damon_ctx_start(ctx);
	if (err) {
		fprintf(stderr, "damon-hot: cannot monitor %s: %s\n",
			o.demo ? "this process" : "that process", damon_ctx_errmsg(ctx));
		fprintf(stderr, "backends:\n");
		print_reasons(ctx, stderr, "  ");
		goto out;
	}

	t0 = now_ms();
	next_phase = t0 + o.phase_s * 1000ULL;
	while (!interrupted) {
		struct pollfd pfd = { .fd = damon_ctx_fd(ctx), .events = POLLIN };
		struct damon_ctx_status st = { .sz = sizeof(st) };
		damon_snapshot *s = NULL;
		uint64_t cnt;

		if (poll(&pfd, 1, 200) > 0 && read(pfd.fd, &cnt, sizeof(cnt)) == sizeof(cnt) &&
		    damon_ctx_snapshot(ctx, &s) == 0) {
			if (o.json)
				show_json(s, o.demo ? &w : NULL, damon_ctx_backend(ctx));
			else
				show_view(ctx, s, o.demo ? &w : NULL, &o);
			damon_snapshot_unref(s);
		}
		if (o.demo && now_ms() >= next_phase) {
			atomic_store(&w.slot, (atomic_load(&w.slot) + 1) % w.nr_slots);
			next_phase += o.phase_s * 1000ULL;
		}
		if (o.duration_s && now_ms() - t0 >= o.duration_s * 1000ULL)
			break;
		damon_ctx_status(ctx, &st);
		if (!st.running) {
			fprintf(stderr, "damon-hot: monitoring ended: %s\n", st.message);
			goto out;
		}
	}
	status = 0;
out:
	damon_ctx_unref(ctx);
	if (o.demo && w.buf)
		workload_stop(&w);
	return status;
}
