// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * damon export --prometheus: DAMON's view of a process as Prometheus
 * metrics (text exposition format 0.0.4): bytes by access-rate bucket, hot
 * and cold bytes, regions, the intervals in force, the monitor's CPU time
 * and the stats of a DAMOS "stat" scheme on cold memory. Served over HTTP
 * (GET /metrics) by a small single-threaded server that never blocks the
 * monitor, or written to a textfile (node_exporter's textfile collector)
 * replaced atomically by rename after every snapshot.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <damon/damon.h>

#include "cli.h"

#define MAX_CONNS	16
#define CONN_TIMEOUT_NS (5 * 1000000000ULL)

struct conn {
	int fd;
	uint64_t since;
	char in[2048];
	size_t in_len;
	char *out; /* the response being sent */
	size_t out_len, out_off;
};

struct exporter {
	int lfd;
	struct conn c[MAX_CONNS];
	struct sbuf metrics; /* of the newest snapshot */
	uint64_t nr_snaps;
	uint32_t cold_min_age;
	const char *textfile;
};

/* Buckets of the access rate (nr_accesses of the maximum): 0, then (lo, hi]. */
static const struct {
	const char *label;
	double hi;
} buckets[] = {{"0", 0}, {"0-0.05", 0.05}, {"0.05-0.25", 0.25}, {"0.25-0.5", 0.5}, {"0.5-1", 1}};
#define NR_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void build_metrics(struct exporter *e, const struct record *h, const struct rsnap *s)
{
	uint64_t by[NR_BUCKETS] = {0}, hot = 0, cold = 0;
	struct sbuf *b = &e->metrics;
	char lab[96];

	b->len = 0;
	snprintf(lab, sizeof(lab), "target=\"%" PRIu64 "\",pid=\"%d\"", h->target_id, (int)h->pid);
	for (size_t i = 0; i < s->nr; i++) {
		double rate = rregion_rate(h, s, &s->r[i]);
		uint64_t sz = s->r[i].end - s->r[i].start;
		size_t k = 0;

		while (k + 1 < NR_BUCKETS && rate > buckets[k].hi)
			k++;
		by[k] += sz;
		*(s->r[i].nr_accesses ? &hot : &cold) += sz;
	}
	family(b, "damon_info", "gauge", "The monitored process and the backend that watches it.");
	sb_printf(b, "damon_info{%s,backend=\"%s\",sees=\"%s\"} 1\n", lab, h->backend,
		  h->sees == DAMON_SEES_WRITES ? "writes" : "reads_and_writes");
	family(b, "damon_bytes", "gauge",
	       "Monitored bytes by access rate (accesses seen of the samples taken) in the "
	       "newest snapshot; rate is 0 or a range (lo, hi].");
	for (size_t k = 0; k < NR_BUCKETS; k++)
		sb_printf(b, "damon_bytes{%s,rate=\"%s\"} %" PRIu64 "\n", lab, buckets[k].label,
			  by[k]);
	family(b, "damon_hot_bytes", "gauge", "Bytes accessed in the newest aggregation interval.");
	sb_printf(b, "damon_hot_bytes{%s} %" PRIu64 "\n", lab, hot);
	family(b, "damon_cold_bytes", "gauge",
	       "Bytes not accessed in the newest aggregation interval.");
	sb_printf(b, "damon_cold_bytes{%s} %" PRIu64 "\n", lab, cold);
	family(b, "damon_nr_regions", "gauge", "Regions in the newest snapshot.");
	sb_printf(b, "damon_nr_regions{%s} %zu\n", lab, s->nr);
	family(b, "damon_sample_interval_seconds", "gauge",
	       "Sampling interval in force (after the overhead budget).");
	sb_printf(b, "damon_sample_interval_seconds{%s} %.6f\n", lab,
		  (double)rsnap_sample_us(h, s) / 1e6);
	family(b, "damon_aggregation_interval_seconds", "gauge", "Aggregation interval in force.");
	sb_printf(b, "damon_aggregation_interval_seconds{%s} %.6f\n", lab,
		  (double)rsnap_aggr_us(h, s) / 1e6);
	family(b, "damon_snapshots", "counter", "Snapshots received since the start.");
	sb_printf(b, "damon_snapshots_total{%s} %" PRIu64 "\n", lab, e->nr_snaps);
	family(b, "damon_monitor_cpu_seconds", "counter",
	       "CPU time the monitor spent sampling and aggregating.");
	sb_printf(b, "damon_monitor_cpu_seconds_total{%s} %.6f\n", lab, (double)s->cpu_ns / 1e9);
	if (s->has_stats) {
		static const char *names[] = {"damos_tried_regions", "damos_tried_bytes",
					      "damos_applied_regions", "damos_applied_bytes",
					      "damos_quota_exceeds"};
		const uint64_t v[] = {s->stats.nr_tried, s->stats.sz_tried, s->stats.nr_applied,
				      s->stats.sz_applied, s->stats.qt_exceeds};
		char help[160];

		for (size_t i = 0; i < 5; i++) {
			snprintf(help, sizeof(help),
				 "DAMOS stats (kernel meaning) of a stat scheme on memory idle %u "
				 "aggregation intervals or more.",
				 e->cold_min_age);
			family(b, names[i], "counter", help);
			sb_printf(b, "%s_total{%s,scheme=\"cold\",action=\"stat\"} %" PRIu64 "\n",
				  names[i], lab, v[i]);
		}
	}
}

/* ------------------------------------------------------------------------ */
/* The textfile                                                             */
/* ------------------------------------------------------------------------ */

static int write_textfile(const char *path, const struct sbuf *m)
{
	char tmp[4096];
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < m->len && !err;) {
		ssize_t n = write(fd, m->p + off, m->len - off);

		if (n < 0 && errno != EINTR)
			err = -errno;
		else if (n > 0)
			off += (size_t)n;
	}
	if (close(fd) && !err)
		err = -errno;
	/* readers see the old file or the new one, never a half */
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* ------------------------------------------------------------------------ */
/* The HTTP server                                                          */
/* ------------------------------------------------------------------------ */

static int listen_on(const char *spec)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16], shown[300];
	const char *colon = strrchr(spec, ':');
	int fd = -1, one = 1, err;

	if (!colon || (size_t)(colon - spec) >= sizeof(host) || strlen(colon + 1) >= sizeof(port))
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (err) {
		fprintf(stderr, "damon export: %s: %s\n", spec, gai_strerror(err));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		err = -errno;
		fprintf(stderr, "damon export: cannot listen on %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return err;
	}
	freeaddrinfo(res);
	if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
		snprintf(shown, sizeof(shown), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
		/* with port 0 the kernel picked one: say which */
		fprintf(stderr, "damon export: serving http://%s/metrics\n", shown);
	}
	return fd;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->out);
	*c = (struct conn){.fd = -1};
}

static void respond(struct conn *c, const struct exporter *e)
{
	const char *status = "200 OK", *body = e->metrics.p ? e->metrics.p : "";
	char method[16] = "", target[256] = "";
	size_t blen = e->metrics.len;

	sscanf(c->in, "%15s %255s", method, target);
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		status = "405 Method Not Allowed";
		body = "only GET\n";
	} else if (strcmp(target, "/metrics") && strncmp(target, "/metrics?", 9)) {
		status = "404 Not Found";
		body = "the metrics are at /metrics\n";
	} else if (!e->nr_snaps) {
		status = "503 Service Unavailable";
		body = "no snapshot yet\n";
	}
	if (strcmp(status, "200 OK"))
		blen = strlen(body);
	if (asprintf(&c->out,
		     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
		     status, blen, strcmp(method, "HEAD") ? (int)blen : 0, body) < 0) {
		c->out = NULL;
		conn_close(c);
		return;
	}
	c->out_len = strlen(c->out);
	c->out_off = 0;
}

/* Accept, read and write what can be, without blocking. */
static void serve(struct exporter *e)
{
	struct pollfd p[MAX_CONNS + 1];
	uint64_t now = now_ns();

	p[0] = (struct pollfd){.fd = e->lfd, .events = POLLIN};
	for (int i = 0; i < MAX_CONNS; i++)
		p[i + 1] =
			(struct pollfd){.fd = e->c[i].fd, .events = e->c[i].out ? POLLOUT : POLLIN};
	if (poll(p, MAX_CONNS + 1, 0) <= 0)
		goto timeouts;
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &e->c[i];
		ssize_t n;

		if (c->fd < 0 || !p[i + 1].revents)
			continue;
		if (c->out) {
			n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
			if (n > 0)
				c->out_off += (size_t)n;
			if (n < 0 ? errno != EAGAIN && errno != EINTR : c->out_off == c->out_len)
				conn_close(c);
			continue;
		}
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				conn_close(c);
			continue;
		}
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n") ||
		    c->in_len == sizeof(c->in) - 1)
			respond(c, e);
	}
	if (p[0].revents & POLLIN) {
		for (int i = 0; i < MAX_CONNS; i++) {
			int fd;

			if (e->c[i].fd >= 0)
				continue;
			fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0)
				break;
			e->c[i] = (struct conn){.fd = fd, .since = now};
		}
	}
timeouts:
	for (int i = 0; i < MAX_CONNS; i++)
		if (e->c[i].fd >= 0 && now - e->c[i].since > CONN_TIMEOUT_NS)
			conn_close(&e->c[i]);
}

static int on_snap(void *arg, const struct record *head, struct rsnap *s)
{
	struct exporter *e = arg;
	int err;

	e->nr_snaps++;
	build_metrics(e, head, s);
	if (e->metrics.oom) {
		fprintf(stderr, "damon export: out of memory\n");
		return -ENOMEM;
	}
	if (e->textfile && (err = write_textfile(e->textfile, &e->metrics)) < 0) {
		fprintf(stderr, "damon export: cannot write %s: %s\n", e->textfile, strerror(-err));
		return err;
	}
	return 0;
}

static void on_idle(void *arg)
{
	struct exporter *e = arg;

	if (e->lfd >= 0)
		serve(e);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: damon export --prometheus (--listen ADDR:PORT | --textfile PATH) "
		   "[options]\n"
		   "                    (--pid PID | [--] CMD [ARGS...])\n"
		   "Serve DAMON metrics of a process in Prometheus' text format.\n"
		   "  --listen ADDR:PORT  HTTP on ADDR:PORT (GET /metrics; port 0: any free port)\n"
		   "  --textfile PATH     rewrite PATH (atomically) after every snapshot\n"
		   "  --cold-age N        the DAMOS stat scheme counts memory idle N aggregation\n"
		   "                      intervals or more (default 10; 0: no scheme)\n"
		   "  -d, --duration S    stop after S seconds (default: until Ctrl-C or the "
		   "end)\n" SRC_USAGE);
}

int cmd_export(int argc, char **argv)
{
	static const struct option lo[] = {
		{"prometheus", no_argument, NULL, 'P'},
		{"listen", required_argument, NULL, 'l'},
		{"textfile", required_argument, NULL, 't'},
		{"cold-age", required_argument, NULL, 'c'},
		{"duration", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		SRC_LONGOPTS,
		{0},
	};
	struct exporter e = {.lfd = -1, .cold_min_age = 10};
	const char *listen_spec = NULL, *textfile = NULL;
	struct run_hooks hooks = {.snap = on_snap, .idle = on_idle, .arg = &e};
	uint64_t duration_ms = 0, v;
	bool prometheus = false;
	struct source *src;
	struct src_opts so;
	int c, status;

	src_opts_init(&so);
	while ((c = getopt_long(argc, argv, "+d:hB:p:", lo, NULL)) != -1) {
		int r = sub_opt(&so, c, optarg, "export", usage);

		if (r != SUB_MINE) {
			if (r >= 0)
				return r;
			continue;
		}
		switch (c) {
		case 'P':
			prometheus = true;
			break;
		case 'l':
			listen_spec = optarg;
			break;
		case 't':
			textfile = optarg;
			break;
		case 'c':
			if (!parse_u64(optarg, &v) || v > UINT32_MAX) {
				usage_error("export", "--cold-age needs a number");
				return EXIT_USAGE;
			}
			e.cold_min_age = (uint32_t)v;
			break;
		case 'd':
			if (!parse_duration(optarg, &duration_ms)) {
				usage_error("export", "--duration needs seconds, not \"%s\"",
					    optarg);
				return EXIT_USAGE;
			}
			break;
		}
	}
	if (!prometheus || !listen_spec == !textfile) {
		usage_error("export",
			    "--prometheus and one of --listen ADDR:PORT, --textfile PATH");
		return EXIT_USAGE;
	}
	if (sub_target(&so, argc, argv, NULL, "export"))
		return EXIT_USAGE;
	for (int i = 0; i < MAX_CONNS; i++)
		e.c[i].fd = -1;
	if (listen_spec) {
		e.lfd = listen_on(listen_spec);
		if (e.lfd == -EINVAL) {
			usage_error("export", "--listen is ADDR:PORT, not \"%s\"", listen_spec);
			return EXIT_USAGE;
		}
		if (e.lfd < 0)
			return 1;
	}
	so.cold_min_age = e.cold_min_age;
	/* short waits: the server is served between them */
	hooks.slice_ms = e.lfd >= 0 ? 20 : 200;
	dm_catch_signals();
	if (src_open(&src, &so)) {
		if (e.lfd >= 0)
			close(e.lfd);
		return 1;
	}
	e.textfile = textfile;
	status = src_run(src, duration_ms, &hooks, "export", false);
	src_close(src);
	for (int i = 0; i < MAX_CONNS; i++)
		if (e.c[i].fd >= 0)
			conn_close(&e.c[i]);
	if (e.lfd >= 0)
		close(e.lfd);
	sb_free(&e.metrics);
	return status;
}
