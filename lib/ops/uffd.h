/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * The uffd_wp primitive's parts, one job per file:
 *  uffd_fd.c    the process's one userfaultfd, shared by every instance,
 *               and what fork() does to it;
 *  uffd_page.c  arming, disarming and checking one page (UFFDIO_WRITEPROTECT,
 *               PAGEMAP_SCAN), the scratch-page check and the probe;
 *  uffd_wp.c    instances, targets, mappings and the ops table.
 */
#ifndef DAMON_OPS_UFFD_H
#define DAMON_OPS_UFFD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/err.h"

#define DM_UFFD_PAGE_SZ 4096ULL

/* uffd_fd.c */

/* A new userfaultfd with asynchronous write protection enabled (not the
 * shared one: the probe's own). Return: the fd, or -errno with a sentence. */
int dm_uffd_create(uint64_t *ret_features, struct dm_err *err);

/* A reference to the process's shared userfaultfd, made on first use (and
 * again in a fork()ed child). Return: the fd, or -errno with a sentence. */
int dm_uffd_shared_get(uint64_t *ret_features, struct dm_err *err);

/* Drop a reference taken by @owner (getpid() at get time); the last one
 * closes the fd. Nothing happens in a fork()ed child. */
void dm_uffd_shared_put(int fd, pid_t owner);

/* Lock the shared userfaultfd and tell whether the caller, holding @fd, is
 * its only user (then what it registered may be unregistered: nobody else
 * relies on it, and nobody registers meanwhile). Always pair with
 * dm_uffd_sole_end(). */
bool dm_uffd_sole_begin(int fd);
void dm_uffd_sole_end(void);

/* uffd_page.c */

/* Arm (write-protect) or disarm one page. Return: 0 or -errno. */
int dm_uffd_wp_page(int uffd, uint64_t page, bool arm);

/* Arm one page if it is there and not inside a transparent huge page.
 * Return: 0 armed, 1 inside a huge page (not armed), 2 not there (not armed:
 * watched until it is), or -errno. */
int dm_uffd_arm_page(int pagemap_fd, uint64_t page);

/* A page's PAGE_IS_* categories (present, swapped, zero page, huge), read
 * only. Return: the categories, or -errno. */
int64_t dm_uffd_page_state(int pagemap_fd, uint64_t page);

/* Was the page written since it was armed? With @rearm, arm it again.
 * Return: 0 not written, the page's PAGE_IS_* categories (PAGE_IS_WRITTEN
 * set), or -errno. */
int64_t dm_uffd_scan_page(int pagemap_fd, uint64_t page, bool rearm);

/* Open @proc_root/self/pagemap. Return: the fd, or -errno with a sentence. */
int dm_uffd_open_pagemap(const char *proc_root, struct dm_err *err);

/* Register a scratch page, arm and scan it; with @ret_cost_ns also time the
 * application's first write to an armed page. Leaves nothing behind.
 * Return: 0, or -EOPNOTSUPP/-errno with a sentence naming what is missing. */
int dm_uffd_scratch_check(int uffd, int pagemap_fd, uint64_t *ret_cost_ns, struct dm_err *err);

#endif
