// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * soft_dirty: write sampling of any process the caller may ptrace (same uid
 * works without root) through the soft-dirty bits of its page table entries
 * (Documentation/admin-guide/mm/soft-dirty.rst; CONFIG_MEM_SOFT_DIRTY).
 * Writing "4" to /proc/PID/clear_refs clears every soft-dirty bit of the
 * process and write-protects its pages; the first write to a page afterwards
 * faults and sets the bit again, which bit 55 of /proc/PID/pagemap shows.
 * Reads are invisible: this primitive sees writes only.
 *
 * Cost: clear_refs is not per page. It walks the whole process under the
 * mmap write lock (stalling the process's page faults and mmap calls),
 * flushes its TLB, and afterwards the application takes a write-protect
 * fault on the first write to every page it writes. So the bits are cleared
 * at most once per aggregation interval, never per sample.
 *
 * The estimator. Kernel DAMON counts, per region and sampling interval,
 * whether one random sample page was accessed during that interval. A
 * soft-dirty bit says "written since the last clear". Bits are cleared once
 * per aggregation interval, at its first prepare() (only when a sample page
 * is dirty: an idle process is never walked; if none is, the first prepare()
 * that meets a dirty one clears). Then, for a page drawn at prepare():
 *
 *   - clean now: check() tells exactly whether it was written during this
 *     sampling interval (0 or 1), one interval's evidence as in the kernel
 *     (since = 0: that it stayed clean before is not counted against it: the
 *     clear itself makes the application fault on its first write to every
 *     page, so a writer sweeping its memory reaches its last pages only
 *     intervals after the clear, seen here under qemu as 4-5 intervals for a
 *     32 MiB sweep);
 *   - already dirty (written since the clear, in this aggregation): whether
 *     it was written again in this interval cannot be told. It is reported
 *     DM_ACCESS_EARLIER, since = intervals since the clear: evidence that the
 *     page is written, which the core weighs with the known samples into the
 *     per-interval write probability that best explains them all
 *     (dm_access_rate_mle(), under DAMON's assumption that a region's pages
 *     are alike). A region written without pause so reads as often written
 *     as kernel DAMON reads it: its first sample after the clear is written,
 *     every later one is already dirty.
 *   - dirty but the clear failed: DM_ACCESS_UNKNOWN.
 *
 * Why not clear once and count dirty pages: a page written once early in the
 * interval would read dirty in every later sample and count as accessed each
 * time, overstating rarely written memory up to the maximum; and clearing at
 * every sample would make the application fault on every page it writes,
 * every 5 ms.
 *
 * Measured clear cost against RSS: tests/vm/softdirty-live.c prints a table.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "ops.h"
#include "pagemap.h"
#include "../util/proc.h"
#include "../util/fail.h"

#define PAGE_SZ 4096ULL

struct sd_sample {
	uint64_t page;
	uint8_t clean;	/* clean when drawn: check() can tell */
	uint8_t earlier; /* dirty when drawn, after a clear in this aggregation */
	uint16_t since; /* region.h: for check() to hand over */
};

struct starget {
	int pagemap_fd, clear_fd;
	struct sd_sample *s;
	size_t nr, cap;
	uint64_t *idx, *ent;
	size_t cap_scratch;
	bool may_clear;	      /* no clear yet in this aggregation interval */
	uint32_t since_clear; /* prepare() calls since the last clear */
};

struct dm_ops_inst {
	struct dm_alloc alloc;
	char *proc_root;
	uint32_t ops;
	struct dm_soft_dirty_stats stats;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int reserve(struct dm_ops_inst *in, struct starget *st, size_t n)
{
	if (n <= st->cap)
		return 0;
	size_t c = n < 64 ? 64 : n;
	void *p;

	p = dm_realloc(&in->alloc, st->s, st->cap * sizeof(*st->s), c * sizeof(*st->s));
	if (!p)
		return -ENOMEM;
	st->s = p;
	p = dm_realloc(&in->alloc, st->idx, st->cap * sizeof(*st->idx), c * sizeof(*st->idx));
	if (!p)
		return -ENOMEM;
	st->idx = p;
	p = dm_realloc(&in->alloc, st->ent, st->cap * sizeof(*st->ent), c * sizeof(*st->ent));
	if (!p)
		return -ENOMEM;
	st->ent = p;
	st->cap = c;
	return 0;
}

static int open_proc(const char *proc_root, pid_t pid, const char *file, int flags,
		     struct dm_err *err)
{
	char path[PATH_MAX];
	int fd;

	if (dm_proc_path(path, sizeof(path), proc_root, pid, file) < 0)
		return dm_err_set(err, -ENAMETOOLONG, "soft_dirty: proc path too long");
	fd = DM_FAIL(EACCES) ? -1 : open(path, flags | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
	case ESRCH:
		return dm_err_set(err, -ESRCH, "soft_dirty: process %d does not exist", (int)pid);
	case EACCES:
	case EPERM:
		return dm_err_set(err, -EPERM,
				  "soft_dirty: this process may not %s %s (%s): it needs the same "
				  "uid as process %d and ptrace permission, or root",
				  (flags & O_ACCMODE) == O_WRONLY ? "write" : "read", path,
				  strerror(errno), (int)pid);
	default:
		return dm_err_set(err, -errno, "soft_dirty: cannot open %s: %s", path,
				  strerror(errno));
	}
}

int dm_soft_dirty_probe(const char *proc_root, pid_t pid, struct dm_err *err)
{
	volatile char *p;
	uint64_t idx, e = 0;
	ssize_t got;
	void *m;
	int fd;

	/* A new mapping is soft-dirty as a whole until the next clear (the
	 * kernel marks the VMA). Without CONFIG_MEM_SOFT_DIRTY bit 55 is never
	 * set. Only reads: nothing of this process is cleared. */
	m = DM_FAIL(ENOMEM) ? MAP_FAILED
			    : mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return dm_err_set(err, -errno, "soft_dirty: mmap of a scratch page failed");
	p = m;
	p[0] = 1;
	fd = open_proc(proc_root, 0, "pagemap", O_RDONLY, err);
	if (fd < 0) {
		munmap(m, PAGE_SZ);
		return fd;
	}
	idx = (uint64_t)(uintptr_t)m / PAGE_SZ;
	got = dm_pfile_read(fd, &idx, 1, &e, NULL, NULL);
	close(fd);
	munmap(m, PAGE_SZ);
	if (got != 1 || !(e & DM_PM_PRESENT))
		return dm_err_set(
			err, -EOPNOTSUPP,
			"soft_dirty: /proc/self/pagemap did not show a page just written");
	if (!(e & DM_PM_SOFT_DIRTY))
		return dm_err_set(err, -EOPNOTSUPP,
				  "soft_dirty: this kernel has no soft-dirty tracking "
				  "(CONFIG_MEM_SOFT_DIRTY is off)");
	/* The target: both files open (no byte written). */
	fd = open_proc(proc_root, pid, "pagemap", O_RDONLY, err);
	if (fd < 0)
		return fd;
	close(fd);
	fd = open_proc(proc_root, pid, "clear_refs", O_WRONLY, err);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static void sd_close(struct dm_ops_inst *in)
{
	if (!in)
		return;
	dm_free(&in->alloc, in->proc_root);
	dm_free(&in->alloc, in);
}

static int sd_open(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg, struct dm_err *err)
{
	const struct dm_alloc *a = cfg ? cfg->alloc : NULL;
	struct dm_ops_inst *in;
	const char *root;

	if (!ret || !cfg)
		return dm_err_set(err, -EINVAL, "soft_dirty: invalid arguments");
	if (cfg->ops == DAMON_OPS_PADDR)
		return dm_err_set(err, -EOPNOTSUPP,
				  "soft_dirty: it monitors process memory only, not physical "
				  "memory (paddr)");
	in = dm_calloc(a, 1, sizeof(*in));
	if (!in)
		return dm_err_set(err, -ENOMEM, "soft_dirty: out of memory");
	if (a)
		in->alloc = *a;
	in->ops = cfg->ops;
	root = cfg->proc_root && *cfg->proc_root ? cfg->proc_root : DM_PROC_ROOT_DEFAULT;
	in->proc_root = dm_malloc(&in->alloc, strlen(root) + 1);
	if (!in->proc_root) {
		sd_close(in);
		return dm_err_set(err, -ENOMEM, "soft_dirty: out of memory");
	}
	strcpy(in->proc_root, root);
	*ret = in;
	return 0;
}

static int sd_target_init(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_err *err)
{
	struct starget *st;
	int pm, cr;

	if (!in || !t)
		return dm_err_set(err, -EINVAL, "soft_dirty: invalid arguments");
	pm = open_proc(in->proc_root, t->pid, "pagemap", O_RDONLY, err);
	if (pm < 0)
		return pm;
	cr = open_proc(in->proc_root, t->pid, "clear_refs", O_WRONLY, err);
	if (cr < 0) {
		close(pm);
		return cr;
	}
	st = dm_calloc(&in->alloc, 1, sizeof(*st));
	if (!st) {
		close(pm);
		close(cr);
		return dm_err_set(err, -ENOMEM, "soft_dirty: out of memory");
	}
	st->pagemap_fd = pm;
	st->clear_fd = cr;
	st->may_clear = true;
	t->priv = st;
	return 0;
}

static void sd_target_fini(struct dm_ops_inst *in, struct dm_ops_target *t)
{
	struct starget *st;

	if (!in || !t || !t->priv)
		return;
	st = t->priv;
	close(st->pagemap_fd);
	close(st->clear_fd);
	dm_free(&in->alloc, st->s);
	dm_free(&in->alloc, st->idx);
	dm_free(&in->alloc, st->ent);
	dm_free(&in->alloc, st);
	t->priv = NULL;
}

static int sd_update(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_range *ret,
		     size_t cap, struct dm_err *err)
{
	int n;

	if (!in || !t || (!ret && cap))
		return dm_err_set(err, -EINVAL, "soft_dirty: invalid arguments");
	if (in->ops == DAMON_OPS_VADDR)
		return dm_layout_vaddr(in->proc_root, t->pid, ret, cap, err);
	n = dm_layout_fixed(t->fixed, t->nr_fixed, ret, cap);
	if (n < 0)
		return dm_err_set(err, n, "soft_dirty: invalid fixed ranges");
	return n;
}

/* Clear every soft-dirty bit of the target. Return: 0 or -errno. */
static int clear_refs(struct dm_ops_inst *in, struct starget *st)
{
	uint64_t t0 = now_ns();
	ssize_t r;

	do
		r = DM_FAIL(EIO) ? -1 : pwrite(st->clear_fd, "4", 1, 0);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		return r < 0 ? -errno : -EIO;
	in->stats.nr_clears++;
	in->stats.clear_ns += now_ns() - t0;
	return 0;
}

static void sd_prepare(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v,
		       size_t n)
{
	struct starget *st;
	uint16_t since;
	ssize_t got;
	bool any_dirty = false;

	if (!in || !t || !t->priv)
		return;
	st = t->priv;
	st->nr = 0;
	if (reserve(in, st, n) < 0)
		return; /* check() then reports unknown */
	for (size_t i = 0; i < n; i++) {
		st->s[i].page = v[i].sampling_addr & ~(PAGE_SZ - 1);
		st->idx[i] = st->s[i].page / PAGE_SZ;
	}
	got = dm_pfile_read(st->pagemap_fd, st->idx, n, st->ent, NULL, &in->stats.nr_reads);
	for (size_t i = 0; i < n; i++) {
		bool dirty = got < 0 || (st->ent[i] & DM_PM_SOFT_DIRTY);

		st->s[i].clean = !dirty;
		any_dirty |= dirty;
	}
	if (any_dirty && st->may_clear && got >= 0 && clear_refs(in, st) == 0) {
		st->may_clear = false;
		st->since_clear = 0;
		for (size_t i = 0; i < n; i++)
			st->s[i].clean = 1;
	}
	since = st->since_clear > UINT16_MAX ? UINT16_MAX : (uint16_t)st->since_clear;
	for (size_t i = 0; i < n; i++) {
		/* dirty: written since a clear made in this aggregation */
		st->s[i].earlier = !st->s[i].clean && !st->may_clear && st->since_clear > 0;
		st->s[i].since = st->s[i].clean ? 0 : since;
	}
	if (st->since_clear < UINT32_MAX)
		st->since_clear++;
	in->stats.nr_samples += n;
	st->nr = n;
}

/* The core's aggregation ended: the next prepare() may clear again. */
static void sd_aggregated(struct dm_ops_inst *in, struct dm_ops_target *t)
{
	struct starget *st;

	if (!in || !t || !t->priv)
		return;
	st = t->priv;
	st->may_clear = true;
}

static int sd_check(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v, size_t n)
{
	struct starget *st;
	ssize_t got;
	int nr = 0;

	if (!in || !t || !t->priv)
		return -EINVAL;
	st = t->priv;
	if (!n)
		return 0;
	if (st->nr != n) {
		for (size_t i = 0; i < n; i++)
			v[i].accessed = DM_ACCESS_UNKNOWN;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		st->idx[i] = st->s[i].page / PAGE_SZ;
	got = dm_pfile_read(st->pagemap_fd, st->idx, n, st->ent, NULL, &in->stats.nr_reads);
	if (got <= 0) {
		/* 0 entries: the address space is gone */
		if (dm_proc_pid_alive(in->proc_root, t->pid) == -ESRCH)
			return -ESRCH;
		for (size_t i = 0; i < n; i++)
			v[i].accessed = DM_ACCESS_UNKNOWN;
		return got < 0 ? (int)got : 0;
	}
	for (size_t i = 0; i < n; i++) {
		v[i].since = st->s[i].since;
		if (st->s[i].page != (v[i].sampling_addr & ~(PAGE_SZ - 1))) {
			v[i].accessed = DM_ACCESS_UNKNOWN;
			continue;
		}
		if (!st->s[i].clean) {
			v[i].accessed = st->s[i].earlier ? DM_ACCESS_EARLIER : DM_ACCESS_UNKNOWN;
			continue;
		}
		v[i].accessed = (st->ent[i] & DM_PM_SOFT_DIRTY) ? 1 : 0;
		nr += v[i].accessed;
	}
	return nr;
}

void dm_soft_dirty_get_stats(const struct dm_ops_inst *in, struct dm_soft_dirty_stats *ret)
{
	if (in && ret)
		*ret = in->stats;
}

const struct dm_ops dm_ops_soft_dirty = {
	.name = "soft_dirty",
	.sees = DAMON_SEES_WRITES,
	.open = sd_open,
	.close = sd_close,
	.target_init = sd_target_init,
	.target_fini = sd_target_fini,
	.update = sd_update,
	.prepare = sd_prepare,
	.check = sd_check,
	.aggregated = sd_aggregated,
	.app_cost_ns = NULL,
};
