// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon(1): DAMON's data-access monitoring from the command line, in the
 * habits of damo (record, report access/wss/heatmap), on libdamon: any
 * backend this machine offers, without root where a user-space one runs.
 *
 *   damon probe | record | report | live | export   (see damon(1))
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

volatile sig_atomic_t dm_interrupted;

static void on_signal(int sig)
{
	(void)sig;
	dm_interrupted = 1;
}

void dm_catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};

	/* no SA_RESTART: poll() and read() return EINTR and the loops look */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

bool parse_duration(const char *s, uint64_t *ret_ms)
{
	char *end;
	double v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return false;
	if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m"))
		v *= 60000;
	else if (!strcmp(end, "h"))
		v *= 3600000;
	else if (strcmp(end, "ms"))
		return false;
	*ret_ms = (uint64_t)v;
	return true;
}

void fmt_bytes(uint64_t n, char *buf, size_t sz)
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double x = (double)n;
	int i = 0;

	while (x >= 1024 && i < 5) {
		x /= 1024;
		i++;
	}
	snprintf(buf, sz, i ? "%.3f %s" : "%.0f %s", x, u[i]);
}

void fmt_us(uint64_t us, char *buf, size_t sz)
{
	if (us >= 1000000 && us % 1000000 == 0)
		snprintf(buf, sz, "%llu s", (unsigned long long)(us / 1000000));
	else if (us >= 1000000)
		snprintf(buf, sz, "%.3f s", us / 1e6);
	else if (us >= 1000 && us % 1000 == 0)
		snprintf(buf, sz, "%llu ms", (unsigned long long)(us / 1000));
	else if (us >= 1000)
		snprintf(buf, sz, "%.3f ms", us / 1e3);
	else
		snprintf(buf, sz, "%llu us", (unsigned long long)us);
}

/* Each subcommand's synopsis, for the usage line of a bad command line. */
static const struct {
	const char *sub, *line;
} synopses[] = {
	{"probe", "damon probe [--pid PID] [--ops vaddr|paddr] [--json]"},
	{"record", "damon record [options] (--pid PID | [--] CMD [ARGS...])"},
	{"report", "damon report access|wss|heatmap [options] (-i FILE | --pid PID | -- CMD)"},
	{"report heatmap", "damon report heatmap [-o FILE.png|FILE.svg] [options] "
			   "(-i FILE | --pid PID | -- CMD)"},
	{"live", "damon live [options] (--pid PID | [--] CMD [ARGS...])"},
	{"export", "damon export --prometheus (--listen ADDR:PORT | --textfile PATH) [options] "
		   "(--pid PID | [--] CMD [ARGS...])"},
};

void usage_error(const char *sub, const char *fmt, ...)
{
	const char *line = "damon <command> [options]";
	va_list ap;

	for (size_t i = 0; i < sizeof(synopses) / sizeof(synopses[0]); i++)
		if (!strcmp(sub, synopses[i].sub))
			line = synopses[i].line;
	fprintf(stderr, "damon %s: ", sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n(damon %s --help tells more)\n", line, sub);
}

void src_opts_init(struct src_opts *o)
{
	*o = (struct src_opts){.backend = DAMON_BACKEND_AUTO};
}

/* 1: @c was a monitoring option; 0: it was not; -1: its value is bad (said). */
static int src_opt(struct src_opts *o, int c, const char *arg, const char *sub)
{
	uint64_t v;

	switch (c) {
	case 'B':
		o->backend = damon_backend_from_name(arg);
		if (o->backend < 0) {
			usage_error(sub, "unknown backend \"%s\"", arg);
			return -1;
		}
		return 1;
	case 'p':
		if (!parse_u64(arg, &v) || !v || v > INT32_MAX) {
			usage_error(sub, "--pid needs a process id, not \"%s\"", arg);
			return -1;
		}
		o->pid = (pid_t)v;
		return 1;
	case 1007:
		o->cgroup = arg;
		return 1;
	case 1001:
	case 1002:
	case 1003:
	case 1004:
	case 1005:
	case 1006:
		if (!parse_u64(arg, &v) || (c >= 1004 && v > UINT32_MAX)) {
			usage_error(sub, "a number is needed, not \"%s\"", arg);
			return -1;
		}
		if (c <= 1003)
			*(c == 1001 ? &o->sample_us : c == 1002 ? &o->aggr_us : &o->update_us) = v;
		else
			*(c == 1004   ? &o->min_nr_regions
			  : c == 1005 ? &o->max_nr_regions
				      : &o->budget) = (uint32_t)v;
		return 1;
	}
	return 0;
}

int sub_opt(struct src_opts *o, int c, const char *arg, const char *sub, void (*usage)(FILE *))
{
	int r = src_opt(o, c, arg, sub);

	if (r)
		return r > 0 ? SUB_NEXT : EXIT_USAGE;
	if (c == 'h') {
		usage(stdout);
		return 0;
	}
	if (c == '?' || c == ':') {
		usage(stderr);
		return EXIT_USAGE;
	}
	return SUB_MINE;
}

int sub_target(struct src_opts *o, int argc, char **argv, const char *input, const char *sub)
{
	/* getopt stops at "--" (or at the first word: "+" in the option
	 * strings) and leaves the command */
	if (optind < argc)
		o->cmd = &argv[optind];
	int nr = !!o->pid + !!o->cmd + !!o->cgroup;

	if (input && nr) {
		usage_error(sub, "-i FILE or a target to monitor, not both");
		return EXIT_USAGE;
	}
	if (o->cgroup && strcmp(sub, "record")) {
		usage_error(sub, "--cgroup is taken by damon record only (a record per process)");
		return EXIT_USAGE;
	}
	if (!input && nr != 1) {
		usage_error(sub, "give one target: --pid PID, --cgroup PATH (record) or -- CMD "
				 "[ARGS]");
		return EXIT_USAGE;
	}
	return 0;
}

int src_run(struct source *src, uint64_t duration_ms, const struct run_hooks *h, const char *sub,
	    bool quiet)
{
	uint64_t t0 = now_ns();
	const char *clear = isatty(STDERR_FILENO) ? "\r\033[K" : "";

	while (!dm_interrupted) {
		struct rsnap s = {0};
		int r = src_next(src, h->slice_ms ? h->slice_ms : 200, &s);

		if (r == 1)
			r = h->snap(h->arg, src_head(src), &s) < 0 ? -ECANCELED : 1;
		rsnap_free(&s);
		if (r == -ECANCELED)
			return 1; /* the hook said why */
		if (r == -ESRCH) {
			if (!quiet)
				fprintf(stderr, "%sdamon %s: monitoring ended: %s\n", clear, sub,
					src_why(src));
			return 0;
		}
		if (r < 0) {
			fprintf(stderr, "%sdamon %s: %s\n", clear, sub,
				r == -EPROTO ? src_why(src) : strerror(-r));
			return 1;
		}
		if (duration_ms && now_ns() - t0 >= duration_ms * 1000000ULL)
			return 0;
		if (h->idle)
			h->idle(h->arg);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: damon <command> [options]\n"
		"DAMON data-access monitoring with libdamon %s\n\n"
		"commands:\n"
		"  probe     which backends can monitor here, and why the others cannot\n"
		"  record    record snapshots of a process to a file (damo's JSON record format)\n"
		"  report    access, wss or heatmap of a record (-i FILE) or of a process now\n"
		"  live      watch which memory of a process is hot, live\n"
		"  export    serve DAMON metrics in Prometheus' text format\n\n"
		"'damon <command> --help' tells more; so does damon(1).\n",
		damon_version_string());
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {{"probe", cmd_probe},
		    {"record", cmd_record},
		    {"report", cmd_report},
		    {"live", cmd_live},
		    {"export", cmd_export}};

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("damon (libdamon) %s\n", damon_version_string());
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name)) {
			/* getopt_long starts afresh for the subcommand */
			optind = 1;
			return cmds[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "damon: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
