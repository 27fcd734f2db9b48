// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * uffd-live — libdamon's uffd_wp backend judged by a real kernel in the VM.
 * Statically linked against libdamon.a.
 *
 *   uffd-live --expect works     uffd_wp runs for this process and a hot
 *                                8 MiB in 64 MiB reads >= 5x hotter than
 *                                the rest
 *   uffd-live --expect refused   the kernel lacks WP_ASYNC/PAGEMAP_SCAN: the
 *                                probe refuses uffd_wp with a sentence naming
 *                                what is missing, and starting a uffd_wp
 *                                context fails -EOPNOTSUPP
 *
 * Exit 0 when the kernel behaved as expected, 1 otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <damon/damon.h>

#define MiB (1024UL * 1024)
#define SIZE (64 * MiB)
#define HOT (8 * MiB)

static uint8_t *buf;
static atomic_bool stop;

static void *writer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		for (size_t off = 0; off < HOT; off += 4096)
			buf[off]++;
	return NULL;
}

static void print_backends(damon_ctx *ctx)
{
	for (int b = DAMON_BACKEND_KERNEL; b <= DAMON_BACKEND_MAX; b++) {
		struct damon_backend_status st = { .sz = sizeof(st) };

		if (damon_ctx_backend_status(ctx, b, &st) == 0)
			printf("  %-10s %s: %s\n", damon_backend_name(b),
			       st.usable ? "usable" : "refused", st.reason);
	}
}

static int expect_refused(void)
{
	struct damon_backend_status st = { .sz = sizeof(st) };
	damon_ctx *ctx = NULL;
	int err;

	if (damon_probe(DAMON_OPS_VADDR, 0, DAMON_BACKEND_UFFD_WP, &st)) {
		printf("uffd-live: FAIL: damon_probe failed\n");
		return 1;
	}
	printf("uffd_wp probe: %s\n", st.reason);
	if (st.usable || !strstr(st.reason, "uffd_wp")) {
		printf("uffd-live: FAIL: expected uffd_wp refused with a sentence\n");
		return 1;
	}
	/* By name: on 6.1 AUTO may take soft_dirty instead. */
	DAMON_OPTS(damon_ctx_opts, o, .backend = DAMON_BACKEND_UFFD_WP);

	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, 0, NULL))
		return 1;
	err = damon_ctx_start(ctx);
	printf("start: %d (%s)\n", err, damon_ctx_errmsg(ctx));
	print_backends(ctx);
	damon_ctx_unref(ctx);
	if (err != -EOPNOTSUPP) {
		printf("uffd-live: FAIL: expected start to fail with -EOPNOTSUPP\n");
		return 1;
	}
	return 0;
}

static int expect_works(void)
{
	/* uffd_wp by name: where kernel DAMON is free (6.12, 7.2 with
	 * damon_stat.enabled=N) AUTO takes the kernel backend */
	DAMON_OPTS(damon_ctx_opts, o, .backend = DAMON_BACKEND_UFFD_WP, .sample_us = 5000,
		   .aggr_us = 100000, .cpu_budget_permille = 500);
	struct damon_hotness hot = { .sz = sizeof(hot) }, rest = { .sz = sizeof(rest) };
	damon_ctx *ctx = NULL;
	pthread_t th;
	int err, status = 1;

	buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	/* Debian's kernels run THP "always": uffd_wp never arms a page inside
	 * a huge page (arming would split it), so huge-page-backed memory is
	 * judged by its last rate only. This test is about 4 KiB sampling. */
	madvise(buf, SIZE, MADV_NOHUGEPAGE);
	memset(buf, 1, SIZE);
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, 0, NULL))
		return 1;
	pthread_create(&th, NULL, writer, NULL);
	err = damon_ctx_start(ctx);
	print_backends(ctx);
	if (err) {
		printf("uffd-live: FAIL: start: %s\n", damon_ctx_errmsg(ctx));
		goto out;
	}
	if (damon_ctx_backend(ctx) != DAMON_BACKEND_UFFD_WP) {
		printf("uffd-live: FAIL: running on %s, expected uffd_wp\n",
		       damon_backend_name(damon_ctx_backend(ctx)));
		goto out;
	}
	/* Emulated CPUs are slow: wait for snapshots, not for wall time. */
	for (int i = 0; i < 600; i++) {
		struct damon_ctx_status st = { .sz = sizeof(st) };

		usleep(50000);
		damon_ctx_status(ctx, &st);
		if (st.nr_snapshots >= 15)
			break;
	}
	if (damon_ctx_hotness(ctx, (uintptr_t)buf, HOT, &hot) ||
	    damon_ctx_hotness(ctx, (uintptr_t)buf + HOT, SIZE - HOT, &rest)) {
		printf("uffd-live: FAIL: no hotness answer\n");
		goto out;
	}
	printf("hot %u bp, rest %u bp (snapshot %llu)\n", hot.access_rate_bp, rest.access_rate_bp,
	       (unsigned long long)hot.snapshot_seq);
	if (hot.access_rate_bp < 5 * rest.access_rate_bp || hot.access_rate_bp < 1000) {
		printf("uffd-live: FAIL: expected hot >= 5x rest and >= 1000 bp\n");
		goto out;
	}
	status = 0;
out:
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	damon_ctx_unref(ctx);
	return status;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--expect") && !strcmp(argv[2], "refused"))
		return expect_refused();
	if (argc == 3 && !strcmp(argv[1], "--expect") && !strcmp(argv[2], "works"))
		return expect_works();
	fprintf(stderr, "usage: uffd-live --expect works|refused\n");
	return 2;
}
