// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * jemalloc-thp: transparent huge pages for the hot part of a jemalloc heap
 * only, decided by libdamon.
 *
 * A key-value store (kvstore.c) keeps its items in a jemalloc arena whose
 * extent hooks (extents.c) map and unmap all of its memory, so the program
 * knows every extent jemalloc uses. libdamon monitors exactly those
 * extents (an fvaddr target whose ranges follow them, committed as they
 * change: policy.c) and applies the DAMON roadmap's THP policy with DAMOS:
 * hot regions of 2 MiB or more get MADV_HUGEPAGE and MADV_COLLAPSE, cold
 * ones MADV_NOHUGEPAGE. Three modes, each run in a process of its own:
 *
 *   always  every extent MADV_HUGEPAGE when mapped: huge pages everywhere,
 *           over cold memory too (the waste THP is known for)
 *   never   every extent MADV_NOHUGEPAGE: no huge page at all
 *   damon   extents MADV_NOHUGEPAGE when mapped, then the policy
 *
 * Measured per mode (measure.c): how much of the hot memory (pages of hot
 * items and of the index) is in huge pages, how much cold memory is (the
 * waste), resident and huge totals, operations per second, and the CPU time
 * of libdamon's monitor thread. "Waste removed" compares the huge-page
 * bytes over cold memory of damon with those of always. This program only
 * reads the host's THP mode: "always" and "madvise" both honour the advice
 * it gives; under "never" it says so and does nothing.
 *
 * On shadowed or emulated page tables (PVM guests, qemu TCG) huge pages buy
 * no speed, so ops/s there is reported, not compared: memory is the result.
 *
 * Usage: jemalloc-thp [--thp always|never|damon | --bench | --check] [options]
 * (--help lists them; doc/examples/jemalloc-thp.md has the measured table.)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jthp.h"

static const char usage[] =
	"usage: jemalloc-thp [--thp always|never|damon | --bench | --check] [options]\n"
	"  --thp MODE      one run: always (MADV_HUGEPAGE on every extent), never\n"
	"                  (MADV_NOHUGEPAGE), damon (libdamon's THP policy; default)\n"
	"  --bench         the three modes one after the other, and the table\n"
	"  --check         always (5 s) and damon; exit 0 if damon keeps >= 90% of the\n"
	"                  hot memory in huge pages, <= 25% of the resident cold\n"
	"                  memory, and removes > 76.15% of always's waste; 1 if not;\n"
	"                  77 if this host cannot tell (THP never, no backend)\n"
	"  --heap MiB      values loaded into the store (default 512)\n"
	"  --hot PCT       keys that are hot (default 10)\n"
	"  --zipf S        Zipf exponent of key popularity (default 1.2)\n"
	"  --sets PCT      sets among the operations (default 50, as YCSB's workload A)\n"
	"  --resize PCT    sets that give the value another size, a new item where\n"
	"                  jemalloc finds room (default 0: values are rewritten in place)\n"
	"  --seconds S     run after the load, per mode (default 40)\n"
	"  --rate OPS      operations offered per second (default 200000; 0: as fast\n"
	"                  as the machine goes, ops/s then varies with its load)\n"
	"  --backend NAME  libdamon backend: uffd_wp (default), fault, soft_dirty,\n"
	"                  page_idle, kernel (root; the kernel's DAMON for everyone:\n"
	"                  only on a machine of your own or a VM)\n"
	"  --sample-ms MS  DAMON sampling interval (default: in proportion to heap /\n"
	"                  rate, 40 ms for 256 MiB at 200000 ops/s, 5..500)\n"
	"  --aggr-ms MS    DAMON aggregation interval (default: 40 sampling intervals)\n"
	"  --hot-min PCT   hot: accessed in >= PCT % of an aggregation's samples\n"
	"                  (default 20)\n"
	"  --madv-cold     also MADV_COLD on cold regions\n"
	"  --seed N        workload seed (default 1)\n"
	"  --verbose       progress and DAMON's regions on stderr\n";

struct result {
	int err;
	char msg[256];
	struct kv_stats kv;
	struct mem_stats mem;
	struct policy_stats pol;
	struct ext_stats ext;
	double load_sec;
};

const char *thp_mode_name(enum thp_mode m)
{
	static const char *const names[] = {"always", "never", "damon"};

	return m <= THP_DAMON ? names[m] : "?";
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One mode, start to end, in the calling (fresh) process. */
static void run_mode(const struct cfg *c, enum thp_mode m, struct result *r)
{
	struct extents *x = NULL;
	struct policy *p = NULL;
	struct kv *kv = NULL;
	unsigned int arena;
	double t0;

	r->err = ext_create(&x, m, &arena);
	if (r->err) {
		snprintf(r->msg, sizeof(r->msg), "cannot create a jemalloc arena: %s",
			 strerror(-r->err));
		return;
	}
	r->err = kv_new(&kv, arena, c);
	/* The monitor starts first, so that it follows the heap as it grows. */
	if (!r->err && m == THP_DAMON)
		r->err = policy_start(&p, x, c, r->msg, sizeof(r->msg));
	if (r->err)
		return;
	t0 = now_sec();
	r->err = kv_load(kv);
	r->load_sec = now_sec() - t0;
	if (r->err) {
		snprintf(r->msg, sizeof(r->msg), "loading the store: %s", strerror(-r->err));
		return;
	}
	if (p) {
		r->err = policy_arm(p, c, r->msg, sizeof(r->msg));
		if (r->err)
			return;
	}
	if (c->verbose)
		fprintf(stderr, "%s: loaded in %.1f s, running %u s\n", thp_mode_name(m),
			r->load_sec, c->seconds);
	kv_run(kv, c->seconds);
	if (p && c->verbose) {
		struct damon_region *v = NULL;
		size_t n = policy_regions(p, &v);

		measure_regions(x, kv, v, n);
		free(v);
	}
	if (p)
		policy_stop(p, &r->pol);
	kv_get_stats(kv, &r->kv);
	ext_get_stats(x, &r->ext);
	r->err = measure(x, kv, &r->mem, r->msg, sizeof(r->msg));
	kv_free(kv);
}

/* Run @m in a child process; results in @r (shared memory). */
static int run_child(const struct cfg *c, enum thp_mode m, struct result *r)
{
	pid_t pid;
	int ws;

	memset(r, 0, sizeof(*r));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		run_mode(c, m, r);
		_exit(0);
	}
	if (waitpid(pid, &ws, 0) < 0)
		return -errno;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
		snprintf(r->msg, sizeof(r->msg), "the %s run died (status %#x)", thp_mode_name(m),
			 ws);
		r->err = -ECHILD;
	}
	return r->err;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

static double mib(uint64_t b)
{
	return (double)b / MiB;
}

static void print_header(const struct cfg *c, const struct result *r, const char *host)
{
	printf("jemalloc-thp: %.0f MiB of values in %" PRIu64 " keys of 64 B..64 KiB; %" PRIu64
	       " hot keys (%u%%, %.0f MiB) get %.1f%% of the accesses (Zipf s=%.2f);\n"
	       "%u%% sets (%u%% of them resize), %" PRIu64 " ops/s offered, %u s per mode after "
	       "the load; DAMON sampling %" PRIu64 " ms, aggregation %" PRIu64 " ms; host THP "
	       "\"%s\"\n",
	       mib(r->kv.live_bytes), r->kv.nr_keys, r->kv.nr_hot_keys, c->hot_pct,
	       mib(r->kv.hot_bytes), 100 * r->kv.hot_access_share, c->zipf_s, c->set_pct,
	       c->resize_pct, c->rate, c->seconds, c->sample_us / 1000, c->aggr_us / 1000, host);
	printf("%-7s %9s %8s %10s %9s %11s %8s %8s %11s  %s\n", "mode", "ops/s", "hot MiB",
	       "hot in THP", "cold MiB", "cold in THP", "RSS MiB", "THP MiB", "monitor CPU",
	       "notes");
}

static void print_row(enum thp_mode m, const struct cfg *c, const struct result *r)
{
	char cpu[32] = "-";

	if (r->err) {
		printf("%-7s failed: %s (%s)\n", thp_mode_name(m), strerror(-r->err), r->msg);
		return;
	}
	if (m == THP_DAMON && r->pol.monitor_cpu_sec >= 0)
		snprintf(cpu, sizeof(cpu), "%.2f%%",
			 100 * r->pol.monitor_cpu_sec / (r->load_sec + c->seconds));
	printf("%-7s %9.0f %8.1f %9.1f%% %9.1f %7.1f MiB %8.1f %8.1f %11s  ", thp_mode_name(m),
	       r->kv.ops_per_sec, mib(r->mem.hot), pct(r->mem.hot_huge, r->mem.hot),
	       mib(r->mem.cold), mib(r->mem.cold_huge), mib(r->mem.rss), mib(r->mem.huge), cpu);
	printf("extents: %" PRIu64 " maps, %" PRIu64 " unmaps, %" PRIu64 " purges/unmaps "
	       "refused in huge pages",
	       r->ext.maps, r->ext.unmaps, r->ext.kept);
	if (m == THP_DAMON)
		printf("; %s, %" PRIu64 " range commits, applied: hugepage %.0f MiB, collapse "
		       "%.0f MiB, nohugepage %.0f MiB",
		       r->pol.backend, r->pol.commits, mib(r->pol.hugepage_bytes),
		       mib(r->pol.collapse_bytes), mib(r->pol.nohuge_bytes));
	if (c->madv_cold && m == THP_DAMON)
		printf(", cold %.0f MiB", mib(r->pol.cold_bytes));
	printf("\n");
}

/* Huge-page bytes over cold memory that damon removed, vs always, in %. */
static double waste_removed(const struct result *always, const struct result *damon)
{
	if (!always->mem.cold_huge)
		return 0;
	return 100.0 * (1.0 - (double)damon->mem.cold_huge / (double)always->mem.cold_huge);
}

static int check(const struct result *always, const struct result *damon)
{
	double hot = pct(damon->mem.hot_huge, damon->mem.hot);
	double cold = pct(damon->mem.cold_huge, damon->mem.cold_rss);
	double removed = waste_removed(always, damon);
	int bad = 0;

	if (pct(always->mem.huge, always->mem.rss) < 50) {
		printf("SKIP: with MADV_HUGEPAGE on every extent only %.1f%% of the memory got "
		       "huge pages: this host gives too few to judge a policy\n",
		       pct(always->mem.huge, always->mem.rss));
		return 77;
	}
	if (hot < 90) {
		printf("FAIL: damon kept %.1f%% of the hot memory in huge pages, expected >= "
		       "90%%\n",
		       hot);
		bad = 1;
	}
	if (cold > 25) {
		printf("FAIL: damon left %.1f%% of the resident cold memory in huge pages, "
		       "expected <= 25%%\n",
		       cold);
		bad = 1;
	}
	if (removed <= 76.15) {
		printf("FAIL: damon removed %.1f%% of always's huge pages over cold memory, "
		       "expected > 76.15%%\n",
		       removed);
		bad = 1;
	}
	if (!bad)
		printf("ok: damon: %.1f%% of the hot memory in huge pages, %.1f%% of the resident "
		       "cold memory; %.1f%% of always's waste removed\n",
		       hot, cold, removed);
	return bad;
}

static int parse(int argc, char **argv, struct cfg *c, int *mode, int *what)
{
	static const struct option lo[] = {
		{"thp", required_argument, NULL, 't'},
		{"bench", no_argument, NULL, 'B'},
		{"check", no_argument, NULL, 'C'},
		{"heap", required_argument, NULL, 'H'},
		{"hot", required_argument, NULL, 'h'},
		{"zipf", required_argument, NULL, 'z'},
		{"sets", required_argument, NULL, 's'},
		{"resize", required_argument, NULL, 'r'},
		{"seconds", required_argument, NULL, 'S'},
		{"rate", required_argument, NULL, 'R'},
		{"backend", required_argument, NULL, 'b'},
		{"sample-ms", required_argument, NULL, 'i'},
		{"aggr-ms", required_argument, NULL, 'a'},
		{"hot-min", required_argument, NULL, 'm'},
		{"madv-cold", no_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 'x'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, '?' + 256},
		{NULL, 0, NULL, 0},
	};
	int opt, idx = 0;

	while ((opt = getopt_long(argc, argv, "", lo, &idx)) != -1) {
		char *end = NULL;
		unsigned long long v = optarg ? strtoull(optarg, &end, 10) : 0;
		bool num = optarg && *optarg && end && !*end;

		switch (opt) {
		case 't':
			for (*mode = THP_ALWAYS; *mode <= THP_DAMON; (*mode)++)
				if (!strcmp(optarg, thp_mode_name((enum thp_mode) * mode)))
					break;
			if (*mode > THP_DAMON)
				goto bad;
			*what = 't';
			break;
		case 'B':
		case 'C':
			*what = opt;
			break;
		case 'H':
			if (!num || !v || v > (1ULL << 20))
				goto bad;
			c->heap = v * MiB;
			break;
		case 'h':
			if (!num || !v || v >= 100)
				goto bad;
			c->hot_pct = (unsigned int)v;
			break;
		case 'z':
			c->zipf_s = strtod(optarg, &end);
			if (*end || !(c->zipf_s > 0 && c->zipf_s < 10))
				goto bad;
			break;
		case 's':
		case 'r':
			if (!num || v > 100)
				goto bad;
			*(opt == 's' ? &c->set_pct : &c->resize_pct) = (unsigned int)v;
			break;
		case 'S':
			if (!num || !v || v > 86400)
				goto bad;
			c->seconds = (unsigned int)v;
			break;
		case 'R':
			if (!num || v > 100000000)
				goto bad;
			c->rate = v;
			break;
		case 'b':
			c->backend = damon_backend_from_name(optarg);
			if (c->backend <= DAMON_BACKEND_AUTO)
				goto bad;
			break;
		case 'i':
		case 'a':
			if (!num || !v || v > 60000)
				goto bad;
			*(opt == 'i' ? &c->sample_us : &c->aggr_us) = v * 1000;
			break;
		case 'm':
			if (!num || !v || v > 100)
				goto bad;
			c->hot_min_pct = (unsigned int)v;
			break;
		case 'c':
			c->madv_cold = true;
			break;
		case 'x':
			if (!num)
				goto bad;
			c->seed = v;
			break;
		case 'v':
			c->verbose = true;
			break;
		case '?' + 256:
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -EINVAL;
		}
		continue;
	bad:
		fprintf(stderr, "jemalloc-thp: invalid value for --%s: %s\n%s", lo[idx].name,
			optarg, usage);
		return -EINVAL;
	}
	/*
	 * A page is touched at a rate that grows with the operations per second
	 * and falls as they spread over a bigger heap: the sampling interval in
	 * which a hot page is likely written, and a cold one not, is in
	 * proportion to heap / rate. Measured with 256 MiB at 200000 ops/s,
	 * 40 ms and 40 samples per aggregation, one region per 2 MiB block
	 * (policy.c): hot blocks at 8-16 samples, cold ones at 6 or less.
	 */
	if (!c->sample_us) {
		uint64_t rate = c->rate ? c->rate : 400000;

		c->sample_us = (uint64_t)((double)c->heap / (256.0 * MiB) * 200000.0 /
					  (double)rate * 40000.0);
		c->sample_us = c->sample_us < 5000     ? 5000
			       : c->sample_us > 500000 ? 500000
						       : c->sample_us;
	}
	if (!c->aggr_us)
		c->aggr_us = 40 * c->sample_us;
	if (optind < argc || c->sample_us > c->aggr_us) {
		fprintf(stderr, "jemalloc-thp: %s\n%s",
			optind < argc ? "unexpected argument" : "--sample-ms above --aggr-ms",
			usage);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c = {
		.heap = 512 * MiB,
		.hot_pct = 10,
		.zipf_s = 1.2,
		.set_pct = 50,
		.resize_pct = 0,
		.seconds = 40,
		.backend = DAMON_BACKEND_UFFD_WP,
		.rate = 200000,
		.hot_min_pct = 20,
		.seed = 1,
	};
	struct damon_backend_status bs = {.sz = sizeof(bs)};
	int mode = THP_DAMON, what = 't', status = 0;
	struct result *r;
	char host_buf[32];
	const char *host;

	if (parse(argc, argv, &c, &mode, &what))
		return 2;
	host = host_thp_mode(host_buf, sizeof(host_buf));
	if (!host || !strcmp(host, "never")) {
		printf("SKIP: transparent huge pages are %s on this host; this program does not "
		       "change host settings\n",
		       host ? "\"never\"" : "not available");
		return 77;
	}
	if ((what != 't' || mode == THP_DAMON) &&
	    (damon_probe(DAMON_OPS_FVADDR, 0, c.backend, &bs) < 0 || !bs.usable)) {
		printf("SKIP: backend %s cannot monitor this process here: %s\n",
		       damon_backend_name(c.backend), bs.reason);
		return 77;
	}
	r = mmap(NULL, 3 * sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return 1;
	if (what == 't') {
		run_child(&c, (enum thp_mode)mode, &r[0]);
		print_header(&c, &r[0], host);
		print_row((enum thp_mode)mode, &c, &r[0]);
		return r[0].err ? 1 : 0;
	}
	for (int m = THP_ALWAYS; m <= THP_DAMON; m++) {
		struct cfg mc = c;

		if (what == 'C' && m == THP_NEVER)
			continue;
		/* --check: always's huge pages come at fault, during the load;
		 * its run only has to exist */
		if (what == 'C' && m == THP_ALWAYS && mc.seconds > 5)
			mc.seconds = 5;
		if (run_child(&mc, (enum thp_mode)m, &r[m]) &&
		    (r[m].err == -EOPNOTSUPP || r[m].err == -EPERM)) {
			printf("SKIP: %s: %s\n", thp_mode_name((enum thp_mode)m), r[m].msg);
			return 77;
		}
	}
	print_header(&c, r[THP_DAMON].err ? &r[THP_ALWAYS] : &r[THP_DAMON], host);
	for (int m = THP_ALWAYS; m <= THP_DAMON; m++)
		if (what != 'C' || m != THP_NEVER)
			print_row((enum thp_mode)m, &c, &r[m]);
	if (r[THP_ALWAYS].err || r[THP_DAMON].err)
		return 1;
	printf("THP waste (huge-page bytes over cold memory): always %.1f MiB, damon %.1f MiB: "
	       "%.1f%% removed\n",
	       mib(r[THP_ALWAYS].mem.cold_huge), mib(r[THP_DAMON].mem.cold_huge),
	       waste_removed(&r[THP_ALWAYS], &r[THP_DAMON]));
	if (what == 'C')
		status = check(&r[THP_ALWAYS], &r[THP_DAMON]);
	return status;
}
