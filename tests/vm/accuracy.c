// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * accuracy — one meaning on every backend: the same workload, phase after
 * phase, watched by kernel DAMON and by libdamon's own engine on page_idle,
 * soft_dirty, uffd_wp and fault, one backend after the other in one guest.
 *
 *   accuracy [--phase N] [--backends LIST] [--check [--goals LIST]] [--quick]
 *            [--thp] [--child [--vaddr]] [--budget PERMILLE] [--seconds S] [-v]
 *
 * The workload is a thread of this process (uffd_wp monitors only its own
 * process; the others watch the same process through its pid) accessing one
 * byte per page of a window of a 256 MiB buffer, with a full TLB flush about
 * every millisecond (under TCG qemu sets accessed bits only on a software-TLB
 * miss). Every backend monitors exactly the buffer (fvaddr), sample 5 ms,
 * aggregation 100 ms, 10..1000 regions. Phases last N aggregation intervals
 * (counted in snapshots, so a slow emulated CPU changes nothing):
 *
 *   steady     a 32 MiB window written, 2N intervals (ages grow)
 *   move1..3   the window jumps to another place, N intervals each
 *   cold       nothing accessed
 *   read       a window only read
 *   write      a window only written
 *
 * Per phase, at its last snapshot: precision and recall of the hot bytes
 * (access rate >= 20%) against the window, F1; the aggregation intervals
 * until the old window stopped reading hot (< 10% of it) and until the new
 * one was found (recall >= 0.9); the size-weighted median age of the hot and
 * of the cold bytes; and what two stat schemes selected per round over the
 * phase's second half: a working-set scheme (nr_accesses >= 4 of 20,
 * age >= 2, the kernel selftests' kind) and a cold scheme (nr_accesses 0,
 * age >= 10). Per backend: aggregation intervals and seconds, the monitor's
 * CPU (libdamon's thread, or kdamond), its cost per region and sample, and
 * how fast the workload went under it (passes over its window per second).
 *
 * Writes-only backends (uffd_wp, soft_dirty) are judged on the write phases
 * only; in the read phase the window must read cold for them.
 * --check compares each backend with kernel DAMON (run first) and exits 1
 * when a goal is missed (--goals: a subset of f1, drop, age, cold): F1
 * within 0.05 in every phase, the old window dropped at most 2 intervals
 * later, the median age of the steady hot set no more than 20% younger (the
 * kernel's own vary under emulation; older is noted), no more hot bytes than
 * 5% of the buffer where nothing is to be seen.
 * --quick: steady, two moves and the read phase, for the suite.
 * --thp: the buffer in transparent huge pages (else 4 KiB pages).
 * --child: the workload in a child process (not for uffd_wp), --vaddr with
 * the child's whole address space as the target.
 * --budget: cpu_budget_permille of the user-space backends (default: the
 * library's, 20). The kdamond has none: to compare the algorithms alone,
 * give them what kernel DAMON takes (--budget 1000 lets them take it).
 * --seconds S: phases last S seconds (steady 2S) instead of N intervals, as
 * a user's workload changes; drop and find are then in seconds.
 *
 * Runs only in the test VM (it writes DAMON's sysfs and the idle bitmap),
 * except with --backends uffd_wp, fault or soft_dirty (without --child):
 * these touch this process only (soft_dirty clears its own soft-dirty bits).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "vm-util.h"

#define MiB    (1024UL * 1024)
#define PAGE   4096UL
#define BUF_SZ (256 * MiB)
#define WIN_SZ (32 * MiB)
#define HOT_BP 2000

enum wl_mode { WL_NONE, WL_WRITE, WL_READ };

/* What the workload is told, in a shared page (--child: another process). */
struct wl_ctl {
	volatile uint64_t win; /* offset of the window */
	volatile int mode;     /* enum wl_mode */
	volatile int stop;
	volatile uint64_t passes; /* whole passes over the window */
};

static struct {
	uint8_t *buf; /* at the same address in a --child */
	struct wl_ctl *ctl;
	pid_t pid;    /* 0: a thread of this process */
	uint32_t ops; /* fvaddr: the buffer; vaddr (--child --vaddr): all */
} wl;

static void *workload(void *arg)
{
	volatile uint64_t sink = 0;
	struct tlb_flusher fl;

	(void)arg;
	if (tlb_flusher_init(&fl))
		return NULL;
	while (!wl.ctl->stop) {
		int mode = wl.ctl->mode;
		uint8_t *w = wl.buf + wl.ctl->win;

		for (size_t off = 0; off < WIN_SZ && mode == wl.ctl->mode; off += PAGE) {
			if (mode == WL_WRITE)
				w[off]++;
			else if (mode == WL_READ)
				sink += w[off];
			if ((off & (64 * PAGE - 1)) == 0)
				tlb_flush_tick(&fl);
		}
		if (mode == WL_NONE)
			usleep(1000);
		else
			wl.ctl->passes++;
	}
	tlb_flusher_fini(&fl);
	return NULL;
}

struct phase {
	const char *name;
	int mode;
	uint64_t win;	  /* offset of the window */
	unsigned int len; /* in N */
};

static const struct phase full_phases[] = {
	{"steady", WL_WRITE, 0, 2},	   {"move1", WL_WRITE, 96 * MiB, 1},
	{"move2", WL_WRITE, 192 * MiB, 1}, {"move3", WL_WRITE, 48 * MiB, 1},
	{"cold", WL_NONE, 0, 1},	   {"read", WL_READ, 144 * MiB, 1},
	{"write", WL_WRITE, 208 * MiB, 1},
};

static const struct phase quick_phases[] = {
	{"steady", WL_WRITE, 0, 2},
	{"move1", WL_WRITE, 96 * MiB, 1},
	{"move2", WL_WRITE, 192 * MiB, 1},
	{"read", WL_READ, 144 * MiB, 1},
};

#define MAX_PHASES 8

#define NA (-2) /* drop/find: nothing to drop or to find in this phase */

struct result {
	bool ran;
	bool truth;		    /* something should read hot */
	double prec, rec, f1;	    /* when truth */
	uint64_t hot_mib;	    /* bytes read hot, MiB */
	int drop, find;		    /* aggregation intervals; -1: never; NA */
	double drop_s, find_s;	    /* the same in seconds */
	uint32_t age_hot, age_cold; /* size-weighted medians */
	uint64_t wss_mib, cold_mib; /* selected by the stat schemes' last round */
};

struct region_view {
	uint64_t start, end;
	uint32_t bp, age, nr;
};

static bool verbose;	    /* -v: a line per snapshot */
static uint32_t budget = 0; /* --budget: cpu_budget_permille, 0 = the default */
static uint64_t seconds_ns; /* --seconds: phases timed in seconds, not intervals */

/* The goals --check judges (--goals f1,drop,age,cold; default all). */
enum { G_F1 = 1, G_DROP = 2, G_AGE = 4, G_COLD = 8 };
static unsigned int goals = G_F1 | G_DROP | G_AGE | G_COLD;

static int parse_goals(char *list)
{
	char *tok, *save = NULL;

	goals = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "f1"))
			goals |= G_F1;
		else if (!strcmp(tok, "drop"))
			goals |= G_DROP;
		else if (!strcmp(tok, "age"))
			goals |= G_AGE;
		else if (!strcmp(tok, "cold"))
			goals |= G_COLD;
		else
			return -1;
	}
	return 0;
}

static int cmp_age(const void *a, const void *b)
{
	const struct region_view *x = a, *y = b;

	return x->age < y->age ? -1 : x->age > y->age;
}

static uint64_t overlap(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint64_t s = a > c ? a : c, e = b < d ? b : d;

	return e > s ? e - s : 0;
}

/* Size-weighted median age of the part of @v inside (or, @inside false,
 * outside) [ws, we), over regions read hot (@hot) or not. */
static uint32_t median_age(struct region_view *v, size_t n, bool hot)
{
	uint64_t total = 0, acc = 0;

	qsort(v, n, sizeof(*v), cmp_age);
	for (size_t i = 0; i < n; i++)
		if ((v[i].bp >= HOT_BP) == hot)
			total += v[i].end - v[i].start;
	for (size_t i = 0; i < n; i++) {
		if ((v[i].bp >= HOT_BP) != hot)
			continue;
		acc += v[i].end - v[i].start;
		if (acc * 2 >= total)
			return v[i].age;
	}
	return 0;
}

/* The newest snapshot's regions clipped to the buffer. Return: count, and
 * the snapshot's sequence number in *ret_seq. */
static size_t read_snapshot(damon_ctx *ctx, struct region_view *v, size_t cap, uint64_t *ret_seq)
{
	uint64_t b = (uintptr_t)wl.buf, e = b + BUF_SZ;
	struct damon_snapshot_info si = {.sz = sizeof(si)};
	damon_snapshot *s = NULL;
	size_t n = 0;

	*ret_seq = 0;
	if (damon_ctx_snapshot(ctx, &s))
		return 0;
	damon_snapshot_info(s, &si);
	*ret_seq = si.seq;
	for (size_t i = 0; i < damon_snapshot_nr_regions(s) && n < cap; i++) {
		struct damon_region r = {.sz = sizeof(r)};

		if (damon_snapshot_region(s, i, &r) || !overlap(r.start, r.end, b, e))
			continue;
		v[n].start = r.start < b ? b : r.start;
		v[n].end = r.end > e ? e : r.end;
		v[n].bp = r.access_rate_bp;
		v[n].age = r.age;
		v[n].nr = r.nr_accesses;
		n++;
	}
	damon_snapshot_unref(s);
	return n;
}

/* Hot bytes of @v inside [a, b) and in all. */
static void hot_bytes(const struct region_view *v, size_t n, uint64_t a, uint64_t b,
		      uint64_t *ret_in, uint64_t *ret_all)
{
	*ret_in = *ret_all = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].bp < HOT_BP)
			continue;
		*ret_all += v[i].end - v[i].start;
		*ret_in += overlap(v[i].start, v[i].end, a, b);
	}
}

static uint64_t stat_round(damos *s, struct damos_stats *last)
{
	struct damos_stats st = {.sz = sizeof(st)};
	uint64_t per = 0;

	if (!s || damos_get_stats(s, &st))
		return 0;
	if (st.nr_snapshots > last->nr_snapshots)
		per = (st.sz_tried - last->sz_tried) / (st.nr_snapshots - last->nr_snapshots);
	*last = st;
	return per;
}

static bool sees_reads(int backend)
{
	return backend == DAMON_BACKEND_KERNEL || backend == DAMON_BACKEND_PAGE_IDLE ||
	       backend == DAMON_BACKEND_FAULT;
}

/* Wait for the snapshot after @seq; at most @max_s seconds. */
static uint64_t wait_next(damon_ctx *ctx, uint64_t seq, int max_s, struct region_view *v,
			  size_t cap, size_t *ret_n)
{
	uint64_t t0 = vm_now_ns(), s = 0;

	for (;;) {
		*ret_n = read_snapshot(ctx, v, cap, &s);
		if (s > seq || vm_now_ns() - t0 > (uint64_t)max_s * 1000000000ULL)
			return s;
		usleep(10000);
	}
}

/* What a backend cost over its whole run. */
struct cost {
	double wall_s, cpu_s;
	uint64_t snapshots;
	uint64_t passes;  /* the workload's passes over its window */
	uint64_t regions; /* summed over the snapshots read */
	uint64_t nr_reads;
};

static double monitor_cpu_s(void)
{
	return cpu_of_comm("/proc/self/task", "damon-mon") + cpu_of_comm("/proc", "kdamond");
}

static int run_backend(int backend, const struct phase *ph, size_t nph, unsigned int N,
		       struct result *res, struct cost *cost)
{
	uint64_t t_start, seq_start;
	double cpu_start;
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = (uint32_t)backend,
		   .sample_us = 5000, .aggr_us = 100000, .update_us = 100000, .min_nr_regions = 10,
		   .max_nr_regions = 1000, .cpu_budget_permille = budget);
	struct damos_stats wss_st = {.sz = sizeof(wss_st)}, cold_st = {.sz = sizeof(cold_st)};
	static struct region_view v[4096];
	damos *wss = NULL, *cold = NULL;
	damon_ctx *ctx = NULL;
	damon_target *t;
	uint64_t seq = 0, prev_win = 0;
	int prev_mode = WL_NONE, err;
	size_t n = 0;

	wl.ctl->mode = WL_NONE;
	o.ops = wl.ops;
	if ((err = damon_ctx_new(&ctx, &o)) || (err = damon_ctx_add_target(ctx, wl.pid, &t)) ||
	    (wl.ops == DAMON_OPS_FVADDR &&
	     (err = damon_target_add_range(t, (uintptr_t)wl.buf, (uintptr_t)wl.buf + BUF_SZ)))) {
		printf("%-10s cannot be set up: %s\n", damon_backend_name(backend),
		       ctx ? damon_ctx_errmsg(ctx) : strerror(-err));
		damon_ctx_unref(ctx);
		return -1;
	}
	{
		DAMOS_OPTS(w, .action = DAMOS_STAT, .min_nr_accesses = 4, .min_age = 2);
		DAMOS_OPTS(c, .action = DAMOS_STAT, .max_nr_accesses = 0, .min_age = 10);

		if (damon_ctx_add_scheme(ctx, &w, &wss) || damon_ctx_add_scheme(ctx, &c, &cold))
			printf("%-10s stat schemes refused: %s\n", damon_backend_name(backend),
			       damon_ctx_errmsg(ctx));
	}
	err = damon_ctx_start(ctx);
	if (err) {
		printf("%-10s cannot run here: %s\n", damon_backend_name(backend),
		       damon_ctx_errmsg(ctx));
		damon_ctx_unref(ctx);
		return -1;
	}
	/* settle on an idle buffer for 3 intervals */
	for (int i = 0; i < 3; i++)
		seq = wait_next(ctx, seq, 120, v, 4096, &n);
	t_start = vm_now_ns();
	seq_start = seq;
	cpu_start = monitor_cpu_s();
	cost->passes = wl.ctl->passes;
	for (size_t p = 0; p < nph; p++) {
		struct result *r = &res[p];
		unsigned int len = ph[p].len * N;
		uint64_t ws = (uintptr_t)wl.buf + ph[p].win, we = ws + WIN_SZ;
		uint64_t os = (uintptr_t)wl.buf + prev_win, oe = os + WIN_SZ;
		bool judge_new =
			ph[p].mode == WL_WRITE || (ph[p].mode == WL_READ && sees_reads(backend));
		bool had_old =
			prev_mode == WL_WRITE || (prev_mode == WL_READ && sees_reads(backend));

		uint64_t t_phase;
		bool half_read = false;

		memset(r, 0, sizeof(*r));
		r->ran = true;
		r->drop = had_old && !(judge_new && ph[p].win == prev_win) ? -1 : NA;
		r->find = judge_new ? -1 : NA;
		r->truth = judge_new;
		wl.ctl->win = ph[p].win;
		wl.ctl->mode = ph[p].mode;
		t_phase = vm_now_ns();
		for (unsigned int k = 1;; k++) {
			uint64_t in, all, old_in, dummy;
			uint64_t t_end = t_phase + (uint64_t)ph[p].len * seconds_ns;
			bool last;

			if (seconds_ns) {
				/* time mode: the phase ends at its time, whatever the
				 * monitor managed meanwhile */
				uint64_t s0 = seq;

				while (seq == s0 && vm_now_ns() < t_end) {
					usleep(10000);
					n = read_snapshot(ctx, v, 4096, &seq);
				}
				last = vm_now_ns() >= t_end;
			} else {
				seq = wait_next(ctx, seq, 120, v, 4096, &n);
				last = k == len;
			}
			hot_bytes(v, n, ws, we, &in, &all);
			hot_bytes(v, n, os, oe, &old_in, &dummy);
			cost->regions += n;
			cost->nr_reads++;
			if (verbose) {
				printf("  %s seq %llu: hot %llu MiB (%llu in window):", ph[p].name,
				       (unsigned long long)seq, (unsigned long long)(all / MiB),
				       (unsigned long long)(in / MiB));
				for (size_t i = 0; i < n; i++)
					if (overlap(v[i].start, v[i].end, ws, we))
						printf(" [%llu+%llu n%u a%u]",
						       (unsigned long long)((v[i].start -
									     (uintptr_t)wl.buf) /
									    MiB),
						       (unsigned long long)((v[i].end -
									     v[i].start) >>
									    10),
						       v[i].nr, v[i].age);
				printf("\n");
			}
			if (r->drop == -1 && old_in < WIN_SZ / 10) {
				r->drop = (int)k;
				r->drop_s = (double)(vm_now_ns() - t_phase) / 1e9;
			}
			if (r->find == -1 && in >= WIN_SZ / 10 * 9) {
				r->find = (int)k;
				r->find_s = (double)(vm_now_ns() - t_phase) / 1e9;
			}
			if (last) {
				r->hot_mib = all / MiB;
				r->prec = all ? (double)in / (double)all : 0;
				r->rec = (double)in / (double)WIN_SZ;
				r->f1 = r->prec + r->rec > 0
						? 2 * r->prec * r->rec / (r->prec + r->rec)
						: 0;
				r->wss_mib = stat_round(wss, &wss_st) / MiB;
				r->cold_mib = stat_round(cold, &cold_st) / MiB;
				r->age_hot = median_age(v, n, true);
				r->age_cold = median_age(v, n, false);
				break;
			}
			if (!half_read &&
			    (seconds_ns ? vm_now_ns() >= t_phase + (t_end - t_phase) / 2
					: k == len / 2)) {
				/* the kernel backend reads the kernel's stats about
				 * once a second: average over the phase's second half */
				stat_round(wss, &wss_st);
				stat_round(cold, &cold_st);
				half_read = true;
			}
		}
		prev_win = ph[p].win;
		prev_mode = ph[p].mode;
	}
	cost->wall_s = (double)(vm_now_ns() - t_start) / 1e9;
	cost->cpu_s = monitor_cpu_s() - cpu_start;
	cost->snapshots = seq - seq_start;
	cost->passes = wl.ctl->passes - cost->passes;
	wl.ctl->mode = WL_NONE;
	damon_ctx_unref(ctx);
	return 0;
}

static void fmt_intervals(char *buf, size_t sz, int v, double s)
{
	if (v == NA)
		snprintf(buf, sz, "-");
	else if (v < 0)
		snprintf(buf, sz, "never");
	else if (seconds_ns)
		snprintf(buf, sz, "%.1fs", s); /* time mode: seconds */
	else
		snprintf(buf, sz, "%d", v);
}

static void print_row(const char *backend, const struct phase *ph, const struct result *r)
{
	char drop[16], find[16], p[8] = "-", rc[8] = "-", f1[8] = "-";

	fmt_intervals(drop, sizeof(drop), r->drop, r->drop_s);
	fmt_intervals(find, sizeof(find), r->find, r->find_s);
	if (r->truth) {
		snprintf(p, sizeof(p), "%.2f", r->prec);
		snprintf(rc, sizeof(rc), "%.2f", r->rec);
		snprintf(f1, sizeof(f1), "%.2f", r->f1);
	}
	printf("%-10s %-7s %5s %5s %5s %6llu %6s %6s %7u %8u %8llu %8llu\n", backend, ph->name, p,
	       rc, f1, (unsigned long long)r->hot_mib, drop, find, r->age_hot, r->age_cold,
	       (unsigned long long)r->wss_mib, (unsigned long long)r->cold_mib);
}

int main(int argc, char **argv)
{
	static const int all_backends[] = {DAMON_BACKEND_KERNEL, DAMON_BACKEND_PAGE_IDLE,
					   DAMON_BACKEND_SOFT_DIRTY, DAMON_BACKEND_UFFD_WP,
					   DAMON_BACKEND_FAULT};
	int backends[8], nb = 0, failures = 0;
	const struct phase *ph = full_phases;
	size_t nph = sizeof(full_phases) / sizeof(full_phases[0]);
	static struct result res[8][MAX_PHASES];
	/* (the backends list holds at most 8) */
	struct cost cost[8] = {0};
	unsigned int N = 10;
	bool check = false, thp = false, child = false, vaddr = false,
	     in_vm = access("/etc/libdamon-vm", F_OK) == 0;
	pthread_t th;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--phase") && i + 1 < argc) {
			N = (unsigned int)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--budget") && i + 1 < argc) {
			budget = (uint32_t)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--goals") && i + 1 < argc) {
			if (parse_goals(argv[++i])) {
				fprintf(stderr, "accuracy: goals are f1, drop, age, cold\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds_ns = (uint64_t)(atof(argv[++i]) * 1e9);
		} else if (!strcmp(argv[i], "--child")) {
			child = true;
		} else if (!strcmp(argv[i], "--vaddr")) {
			vaddr = true;
		} else if (!strcmp(argv[i], "-v")) {
			verbose = true;
		} else if (!strcmp(argv[i], "--thp")) {
			thp = true;
		} else if (!strcmp(argv[i], "--check")) {
			check = true;
		} else if (!strcmp(argv[i], "--quick")) {
			ph = quick_phases;
			nph = sizeof(quick_phases) / sizeof(quick_phases[0]);
		} else if (!strcmp(argv[i], "--backends") && i + 1 < argc) {
			char *list = argv[++i], *tok, *save = NULL;

			for (tok = strtok_r(list, ",", &save); tok && nb < 8;
			     tok = strtok_r(NULL, ",", &save)) {
				int b = damon_backend_from_name(tok);

				if (b < 0) {
					fprintf(stderr, "accuracy: no backend %s\n", tok);
					return 2;
				}
				backends[nb++] = b;
			}
		} else {
			fprintf(stderr, "usage: accuracy [--phase N] [--backends LIST] [--check] "
					"[--goals LIST] [--quick] [--thp] [--child [--vaddr]] "
					"[--budget PERMILLE] "
					"[--seconds S] [-v]\n");
			return 2;
		}
	}
	if (!nb)
		for (size_t i = 0; i < sizeof(all_backends) / sizeof(all_backends[0]); i++)
			if (!child || (all_backends[i] != DAMON_BACKEND_UFFD_WP &&
				       all_backends[i] != DAMON_BACKEND_FAULT))
				backends[nb++] = all_backends[i];
	for (int i = 0; i < nb; i++)
		if (!in_vm && backends[i] != DAMON_BACKEND_UFFD_WP &&
		    backends[i] != DAMON_BACKEND_FAULT &&
		    (backends[i] != DAMON_BACKEND_SOFT_DIRTY || child)) {
			fprintf(stderr,
				"accuracy: SKIP: %s runs only in the test VM "
				"(/etc/libdamon-vm)\n",
				damon_backend_name(backends[i]));
			return 77;
		}
	if (N < 4)
		N = 4;
	wl.ops = vaddr ? DAMON_OPS_VADDR : DAMON_OPS_FVADDR;
	if (vaddr && !child) {
		fprintf(stderr, "accuracy: --vaddr needs --child\n");
		return 2;
	}
	for (int i = 0; child && i < nb; i++)
		if (backends[i] == DAMON_BACKEND_UFFD_WP || backends[i] == DAMON_BACKEND_FAULT) {
			fprintf(stderr,
				"accuracy: %s monitors only its own process, not a --child\n",
				damon_backend_name(backends[i]));
			return 2;
		}

	wl.buf = mmap(NULL, BUF_SZ + 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (wl.buf == MAP_FAILED)
		return 1;
	wl.buf = (uint8_t *)(((uintptr_t)wl.buf + 2 * MiB - 1) & ~(2 * MiB - 1));
	madvise(wl.buf, BUF_SZ, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(wl.buf, 1, BUF_SZ);
	wl.ctl = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (wl.ctl == MAP_FAILED)
		return 1;
	if (child) {
		wl.pid = fork();
		if (wl.pid < 0)
			return 1;
		if (wl.pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			workload(NULL);
			_exit(0);
		}
	} else if (pthread_create(&th, NULL, workload, NULL)) {
		return 1;
	}

	printf("accuracy: 256 MiB buffer (%s pages), 32 MiB window, phases of %u aggregation "
	       "intervals (steady: %u); sample 5 ms, aggregation 100 ms; hot = access rate >= "
	       "20%%\n",
	       thp ? "transparent huge" : "4 KiB", N, 2 * N);
	printf("%-10s %-7s %5s %5s %5s %6s %6s %6s %7s %8s %8s %8s\n", "backend", "phase", "P", "R",
	       "F1", "hotMiB", "drop", "find", "age-hot", "age-cold", "wssMiB", "coldMiB");
	for (int b = 0; b < nb; b++) {
		if (run_backend(backends[b], ph, nph, N, res[b], &cost[b]) < 0)
			continue;
		for (size_t p = 0; p < nph; p++)
			print_row(damon_backend_name(backends[b]), &ph[p], &res[b][p]);
	}
	/* monitor CPU: libdamon's thread, or the kdamond; workload: its passes
	 * over the window per second (what the monitoring costs it shows here) */
	printf("%-10s %9s %8s %7s %8s %12s %12s %12s\n", "backend", "snapshots", "seconds",
	       "s/aggr", "regions", "monitor CPU", "us/reg-smp", "passes/s");
	for (int b = 0; b < nb; b++) {
		const struct cost *c = &cost[b];
		double regions = c->nr_reads ? (double)c->regions / (double)c->nr_reads : 0;
		double smp = (double)c->snapshots * 20 * regions;

		if (!c->snapshots)
			continue;
		printf("%-10s %9llu %8.1f %7.2f %8.0f %11.1f%% %12.1f %12.1f\n",
		       damon_backend_name(backends[b]), (unsigned long long)c->snapshots, c->wall_s,
		       c->wall_s / (double)c->snapshots, regions, 100 * c->cpu_s / c->wall_s,
		       smp ? c->cpu_s * 1e6 / smp : 0, (double)c->passes / c->wall_s);
	}
	wl.ctl->stop = 1;
	if (child)
		waitpid(wl.pid, NULL, 0);
	else
		pthread_join(th, NULL);

	/* Judge every backend against kernel DAMON (the first, when it ran). */
	if (backends[0] != DAMON_BACKEND_KERNEL || !res[0][0].ran) {
		printf("accuracy: no kernel DAMON run to compare with\n");
		return check ? 77 : 0;
	}
	for (int b = 1; b < nb; b++) {
		bool writes_only = !sees_reads(backends[b]);
		const char *name = damon_backend_name(backends[b]);

		if (!res[b][0].ran) {
			printf("%-10s did not run\n", name);
			failures += check;
			continue;
		}
		for (size_t p = 0; p < nph; p++) {
			const struct result *k = &res[0][p], *u = &res[b][p];

			if (!u->truth) {
				/* nothing to see (cold, or reads for a writes-only
				 * backend): the buffer must read cold */
				if ((goals & G_COLD) && u->hot_mib > BUF_SZ / MiB / 20) {
					printf("%-10s %-7s MISS: %llu MiB read hot, %s\n", name,
					       ph[p].name, (unsigned long long)u->hot_mib,
					       writes_only && ph[p].mode == WL_READ
						       ? "writes-only"
						       : "nothing accessed");
					failures++;
				}
				continue;
			}
			if ((goals & G_F1) && u->f1 < k->f1 - 0.05) {
				printf("%-10s %-7s MISS: F1 %.2f, kernel %.2f\n", name, ph[p].name,
				       u->f1, k->f1);
				failures++;
			}
			if ((goals & G_DROP) && k->drop >= 0 && u->drop != NA &&
			    (u->drop < 0 || u->drop > k->drop + 2)) {
				printf("%-10s %-7s MISS: old window dropped after %d, kernel %d\n",
				       name, ph[p].name, u->drop, k->drop);
				failures++;
			}
			/* Ages: the kernel's own, under emulation, vary from run to
			 * run (a steady window's median 9-19 after 20 intervals:
			 * some samples miss the accessed bit and reset them), so
			 * --check fails only on ages younger than the kernel's by
			 * more than 20% (a monitor whose regions do not age); older
			 * is printed. */
			if ((goals & G_AGE) && !strcmp(ph[p].name, "steady") &&
			    u->age_hot * 10 < k->age_hot * 8) {
				printf("%-10s %-7s MISS: hot median age %u, kernel %u (20%%)\n",
				       name, ph[p].name, u->age_hot, k->age_hot);
				failures++;
			} else if (!strcmp(ph[p].name, "steady") &&
				   u->age_hot * 10 > k->age_hot * 12) {
				printf("%-10s %-7s note: hot median age %u, kernel %u: older\n",
				       name, ph[p].name, u->age_hot, k->age_hot);
			}
		}
	}
	printf("accuracy: %d goal%s missed\n", failures, failures == 1 ? "" : "s");
	return check && failures ? 1 : 0;
}
