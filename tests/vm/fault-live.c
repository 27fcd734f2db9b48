// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * fault-live — the fault backend in a guest with two NUMA nodes that both
 * have CPUs (run-vm.sh --numa-cpus --smp 2): two threads, pinned to a CPU of
 * each node, write a range each; the hotness of each range names the CPU
 * and the node of its thread. Then a fork()ed child finds nothing of its
 * memory inaccessible. Statically linked against libdamon.a.
 *
 * Exit 0 when it held, 1 otherwise, 77 when the guest lacks the nodes or
 * the kernel lacks what fault needs (said in a sentence).
 */
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <damon/damon.h>

#include "vm-util.h"

#define MiB  (1024UL * 1024)
#define PAGE 4096UL
#define SIZE (64 * MiB)
#define HOT  (8 * MiB)

static uint8_t *buf;
static atomic_bool stop;

struct worker {
	size_t off;
	int cpu;
	pthread_t th;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (!atomic_load(&stop))
		for (size_t off = 0; off < HOT; off += PAGE)
			buf[w->off + off]++;
	return NULL;
}

int main(void)
{
	DAMON_OPTS(damon_ctx_opts, o, .ops = DAMON_OPS_FVADDR, .backend = DAMON_BACKEND_FAULT,
		   .cpu_budget_permille = 1000);
	struct worker w[2] = {{8 * MiB, 0, 0}, {40 * MiB, 0, 0}};
	damon_target *t;
	damon_ctx *ctx;
	int fail = 0, st = 0;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (numa_available() < 0 || numa_max_node() < 1 || numa_num_configured_cpus() < 2) {
		printf("fault-live: SKIP: needs two NUMA nodes with CPUs (run-vm.sh "
		       "--numa-cpus)\n");
		return 77;
	}
	w[0].cpu = 0;
	w[1].cpu = numa_num_configured_cpus() - 1;
	buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 1;
	madvise(buf, SIZE, MADV_NOHUGEPAGE);
	memset(buf, 1, SIZE);
	for (int i = 0; i < 2; i++)
		pthread_create(&w[i].th, NULL, worker, &w[i]);
	if (damon_ctx_new(&ctx, &o) || damon_ctx_add_target(ctx, 0, &t) ||
	    damon_target_add_range(t, (uintptr_t)buf, (uintptr_t)buf + SIZE) ||
	    damon_ctx_start(ctx)) {
		printf("fault-live: %s: %s\n", damon_ctx_errmsg(ctx),
		       strstr(damon_ctx_errmsg(ctx), "PROCMAP_QUERY") ? "SKIP" : "FAIL");
		return strstr(damon_ctx_errmsg(ctx), "PROCMAP_QUERY") ? 77 : 1;
	}
	for (int i = 0; i < 600; i++) { /* 20 snapshots, at most 60 s */
		struct damon_ctx_status cs = {.sz = sizeof(cs)};

		usleep(100000);
		if (damon_ctx_status(ctx, &cs) || cs.nr_snapshots >= 20)
			break;
	}
	for (int i = 0; i < 2; i++) {
		struct damon_hotness h = {.sz = sizeof(h)};
		int node = numa_node_of_cpu(w[i].cpu);

		if (damon_ctx_hotness(ctx, (uintptr_t)buf + w[i].off, HOT, &h)) {
			printf("fault-live: FAIL: no hotness: %s\n", damon_ctx_errmsg(ctx));
			fail = 1;
			continue;
		}
		printf("thread on CPU %d (node %d): range %u bp, write share %u bp, CPUs %#llx, "
		       "node %d (%u bp)\n",
		       w[i].cpu, node, h.access_rate_bp, h.write_bp, (unsigned long long)h.cpus,
		       h.node, h.node_bp);
		if (h.access_rate_bp < 5000 || h.node != node || h.node_bp < 9000 ||
		    h.cpus != 1ULL << w[i].cpu) {
			printf("fault-live: FAIL: expected the range hot, from CPU %d of node %d\n",
			       w[i].cpu, node);
			fail = 1;
		}
	}
	pid = fork();
	if (pid == 0) {
		/* every page of the child's copy is usable at once */
		for (size_t off = 0; off < SIZE; off += PAGE)
			buf[off]++;
		_exit(0);
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		printf("fault-live: FAIL: the fork()ed child could not touch its memory (%#x)\n",
		       st);
		fail = 1;
	}
	damon_ctx_unref(ctx);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].th, NULL);
	printf("fault-live: %s\n", fail ? "FAIL" : "PASS");
	return fail;
}
