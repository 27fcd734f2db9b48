/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The fault backend's process-wide part: libdamon's SIGSEGV handler and the
 * tables of armed pages it reads. One handler serves every fault context of
 * the process; each context (ops instance) owns one table.
 *
 * A page is armed by making it inaccessible (mprotect PROT_NONE). The first
 * access traps in the handler, which records it (read or write, the CPU and
 * its node) and restores the page: to read-only first when the first access
 * was a read of a writable page, so that a later write traps once more and
 * is seen too; fully on a write. Every fault that is not libdamon's goes to
 * the handler that was in place before (or that the application installed
 * since: see dm_fault_recheck()).
 */
#ifndef DAMON_OPS_FAULT_SIG_H
#define DAMON_OPS_FAULT_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

/* What an armed page saw (slot "how"). */
#define DM_FAULT_READ  1u
#define DM_FAULT_WRITE 2u

struct dm_fault_table;

/* What became of an armed page since it was armed. */
struct dm_fault_seen {
	unsigned int how; /* DM_FAULT_READ | DM_FAULT_WRITE; 0: not accessed */
	int cpu, node;	  /* of the first access; -1 when not accessed */
	bool lost;	  /* the application changed the page's protection itself:
			     libdamon let it go without touching it */
};

/* Can this process use the handler? x86-64 and PROCMAP_QUERY (Linux 6.11),
 * which tells libdamon's protections from the application's. 0 or -errno
 * with a sentence. */
int dm_fault_sig_probe(struct dm_err *err);

/*
 * A table for up to @max_pages armed pages, and the handler installed if it
 * was not (chaining to the handler in place, whatever it is). The table's
 * memory is mapped apart and never armed.
 */
int dm_fault_join(struct dm_fault_table **ret, size_t max_pages, struct dm_err *err);

/* Disarm everything of @t (leaving alone what the application took over),
 * withdraw it from the handler, free it; the last table out removes the
 * handler if it is still the installed one. In a fork()ed child it only
 * frees memory (the child's copies were restored at fork). */
void dm_fault_leave(struct dm_fault_table *t);

/*
 * Make sure libdamon's handler is the one installed: an application that
 * installed its own SIGSEGV handler after libdamon's gets it chained to (it
 * keeps receiving every fault that is not libdamon's) and libdamon's
 * installed again. Called before pages are armed. Return: 1 when the
 * application's handler was found and taken under, 0 otherwise.
 */
int dm_fault_recheck(void);

/* Is @page one that must never be armed (the handler's own data)? */
bool dm_fault_own_page(uint64_t page);

/*
 * Arm @nr_pages pages from @page (adjacent sample pages: one mprotect call),
 * whose protection now is @prot (PROT_* of their mapping, not PROT_NONE).
 * Return: how many were armed from @page on (fewer when the table is full
 * or a page is armed already in this sample), -ENOSPC when none could be,
 * or -errno from mprotect (none armed).
 */
int dm_fault_arm(struct dm_fault_table *t, uint64_t page, size_t nr_pages, int prot);

/* What @page saw since dm_fault_arm(); 0, or -ENOENT when it is not armed
 * in @t. */
int dm_fault_seen(const struct dm_fault_table *t, uint64_t page, struct dm_fault_seen *ret);

/* Restore every page of @t in [@start, @end) that is still (half) armed and
 * forget them: after this no page of the range is inaccessible because of
 * libdamon. */
void dm_fault_disarm(struct dm_fault_table *t, uint64_t start, uint64_t end);

/* Pages of @t currently inaccessible or read-only because of libdamon. */
size_t dm_fault_nr_armed(const struct dm_fault_table *t);

/* Counters of the process's handler, for tests and reports. */
struct dm_fault_sig_stats {
	uint64_t handled;  /* faults on armed pages */
	uint64_t chained;  /* faults passed to the application's handler */
	uint64_t spurious; /* faults on pages restored meanwhile: retried */
	uint64_t lost;	   /* armed pages whose protection the application changed */
	uint64_t retaken;  /* times SIGSEGV was taken back from the application */
};
void dm_fault_sig_stats(struct dm_fault_sig_stats *ret);

#endif
