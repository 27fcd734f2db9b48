/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * Probing: what this process may do, what this kernel has, who holds kernel
 * DAMON; and the AUTO choice with one sentence per refused backend.
 * Everything here only reads: no file is written, nothing is started.
 */
#ifndef DAMON_PROBE_PROBE_H
#define DAMON_PROBE_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <damon/damon.h>

struct dm_probe_in {
	uint32_t ops;           /* enum damon_ops */
	pid_t pid;              /* real pid of the (first) target */
	bool self;              /* the target is the calling process */
	unsigned int nr_targets;
	const char *sysfs_root; /* "/sys" unless a test says otherwise */
	const char *proc_root;  /* "/proc" unless a test says otherwise */
	const char *run_dir;    /* libdamon's records (lib/kernel/owner.h); NULL: default */
};

/* Judge one backend (KERNEL .. DAMON_BACKEND_MAX); fills every field of
 * @out up to out->sz (which the caller has set). */
void dm_probe_backend(const struct dm_probe_in *in, int backend, struct damon_backend_status *out);

/* AUTO: judge backends in the order kernel, page_idle, uffd_wp, soft_dirty
 * (fault is opt-in only and never picked), filling @all[backend] for every
 * backend 1..DAMON_BACKEND_MAX. Return: the first usable backend, or
 * -EOPNOTSUPP when none is. */
int dm_probe_auto(const struct dm_probe_in *in,
		  struct damon_backend_status all[DAMON_BACKEND_MAX + 1]);

/* The first backend in AUTO's order whose verdict in @all is usable, or
 * -EOPNOTSUPP (after a start failed, the next one to try). */
int dm_probe_auto_pick(const struct damon_backend_status all[DAMON_BACKEND_MAX + 1]);

/* --- pieces (lib/probe/caps.c, lib/probe/kernel_probe.c) --- */

/* Does the calling process have capability @cap (CAP_SYS_ADMIN, ...) in its
 * effective set? Uses libcap when built with it, else /proc/self/status. */
bool dm_has_cap(int cap);
/* The effective set from the text of /proc/PID/status (its CapEff line:
 * hex digits, at most 64 bits). false when there is none or it is garbled. */
bool dm_status_capeff(const char *text, uint64_t *ret);

/* Kernel DAMON through sysfs, read only: fills a sentence in @reason and
 * returns true when a kernel backend could take DAMON for @in now. */
bool dm_kernel_probe(const struct dm_probe_in *in, char *reason, size_t reason_sz);

#endif
