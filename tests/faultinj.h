/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What tests/test-faultinj.c shares with faultinj-trace.c: how a scenario
 * went, and the picture of what a process holds (threads, fds, mappings)
 * taken before a scenario and compared after it.
 */
#ifndef DAMON_TEST_FAULTINJ_H
#define DAMON_TEST_FAULTINJ_H

#include <stdbool.h>

#define BUF_SZ (4UL << 20)

extern char *buf; /* the memory the scenarios work on */

/* How one scenario went. */
struct outcome {
	int rc;	       /* first failure said, 0 if none */
	char step[40]; /* the call that said it */
	char msg[256]; /* its sentence */
	int bad;       /* the library misbehaved: why says how */
	char why[3072];
};

/* The library misbehaved: add to o->why. */
__attribute__((format(printf, 2, 3))) void misbehaved(struct outcome *o, const char *fmt, ...);

struct trace {
	int threads;
	char fds[2048];
	char *maps;
};

void trace_take(struct trace *t);
/* Wait for a monitor thread on its way out, then compare with @before. */
void trace_check(struct outcome *o, const struct trace *before);

#endif
