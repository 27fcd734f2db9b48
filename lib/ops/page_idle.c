// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * page_idle: access sampling through the kernel's idle page tracking
 * (Documentation/admin-guide/mm/idle_page_tracking.rst), for any process
 * (vaddr, fvaddr) or for physical memory (paddr). Root only: pagemap shows
 * page frame numbers only with CAP_SYS_ADMIN, and the bitmap and
 * /proc/kpageflags are 0400/0600 root files.
 *
 * prepare(): the sample page's frame (pagemap for virtual addresses, the
 * address itself for paddr) gets its idle flag set through
 * /sys/kernel/mm/page_idle/bitmap. check(): reading the bitmap makes the
 * kernel walk the frame's mappings, harvest their accessed bits and report
 * the frame idle only if none was set: the same accessed bits kernel DAMON
 * reads, so this primitive sees reads and writes.
 *
 * Details that the kernel imposes (KERNELS.md, measured in the VM):
 * - A transparent huge page is tracked by its head frame only: a tail's bit
 *   always reads "accessed" and setting it does nothing. The head is found
 *   through /proc/kpageflags (COMPOUND_TAIL, then the nearest COMPOUND_HEAD
 *   below it: folios are naturally aligned, so it lies in the same 2 MiB).
 * - Only pages on an LRU list can be tracked. A frame that is not (kernel
 *   memory, free memory, the shared zero page, hugetlbfs) counts as not
 *   accessed, as kernel DAMON counts it; hugetlbfs pages as unknown.
 * - At most 4096 bytes (512 words, 32768 frames) move per bitmap call, and
 *   the last partial word at the end of RAM moves 0 bytes: see
 *   dm_idle_bitmap_io(), which never retries a call that moved nothing.
 * - Kernel DAMON uses the same flags: while a kdamond runs, each disturbs
 *   the other (the probe says so).
 *
 * Pages that change between prepare() and check() (virtual addresses only;
 * pagemap is read again at check()):
 * - not mapped any more (unmapped, reclaimed, swapped out): not accessed;
 * - not mapped at prepare() and mapped now: it was faulted in, an access;
 * - another frame now: the idle bit of the new frame decides. Migration
 *   (NUMA balancing, compaction) carries the idle flag over to the new frame
 *   (folio_migrate_flags), so an untouched migrated page still reads idle;
 *   a page copied on write, refaulted or collapsed into a huge page is a new
 *   frame without the flag and reads accessed, which it was (collapse
 *   excepted: a rare false positive). A new frame that cannot be tracked
 *   counts as accessed for the same reason.
 *
 * Batching: pagemap and kpageflags entries are fetched in runs
 * (dm_pfile_read()), bitmap words sorted and written/read in runs of
 * consecutive words; samples sharing a word share the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <damon/damon.h>

#include "ops.h"
#include "pagemap.h"
#include "../util/proc.h"
#include "../util/fail.h"

#define PAGE_SZ 4096ULL

enum sample_state {
	S_NONE = 0, /* nothing to track there: reads "not accessed" */
	S_ARMED,    /* the idle flag of .pfn was set */
	S_UNKNOWN,  /* cannot be told (hugetlbfs, end of RAM, a failed call) */
};

struct sample {
	uint64_t page;	  /* the sample page, virtual or physical address */
	uint64_t raw_pfn; /* frame mapped there at prepare(); 0: none */
	uint64_t pfn;	  /* frame whose idle bit is used (raw_pfn or its head) */
	uint8_t state;
	uint8_t result; /* check() scratch */
	uint8_t need_bit;
};

struct itarget {
	int pagemap_fd; /* -1 for paddr */
	struct sample *s;
	size_t nr, cap;
};

struct dm_ops_inst {
	struct dm_alloc alloc;
	char *proc_root;
	uint32_t ops;
	int bitmap_fd;
	int kpf_fd;
	const struct dm_pfile_io *io; /* tests: emulated kernel files */
	/* scratch, grown to the largest target */
	uint64_t *idx, *ent, *word, *val;
	uint32_t *ord;
	uint8_t *ok;
	size_t cap;
	uint64_t nr_calls; /* system calls made on the three files */
};

static uint64_t page_of(uint64_t addr)
{
	return addr & ~(PAGE_SZ - 1);
}

static void *grow(const struct dm_alloc *a, void *v, size_t have, size_t need, size_t elem)
{
	return dm_realloc(a, v, have * elem, need * elem);
}

static int reserve(struct dm_ops_inst *in, struct itarget *it, size_t n)
{
	if (n > in->cap) {
		size_t c = n < 64 ? 64 : n, old = in->cap;
		void *p;

#define GROW(f)                                                      \
	do {                                                         \
		p = grow(&in->alloc, in->f, old, c, sizeof(*in->f)); \
		if (!p)                                              \
			return -ENOMEM;                              \
		in->f = p;                                           \
	} while (0)
		/* every array grows before cap moves: a failure leaves the
		 * old, still consistent, capacity */
		GROW(idx);
		GROW(ent);
		GROW(word);
		GROW(val);
		GROW(ord);
		GROW(ok);
#undef GROW
		in->cap = c;
	}
	if (n > it->cap) {
		size_t c = n < 64 ? 64 : n;
		struct sample *s = grow(&in->alloc, it->s, it->cap, c, sizeof(*s));

		if (!s)
			return -ENOMEM;
		it->s = s;
		it->cap = c;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Frames: head pages and trackability                                      */
/* ------------------------------------------------------------------------ */

/* The head frame of tail frame @pfn: the nearest COMPOUND_HEAD at or below
 * it within its naturally aligned 2 MiB. *ret_flags gets the head's flags.
 * Return: 0, or -ENOENT (bigger than 2 MiB, or it changed meanwhile). */
static int find_head(struct dm_ops_inst *in, uint64_t pfn, uint64_t *ret_head, uint64_t *ret_flags)
{
	uint64_t idx[DM_PM_BATCH] = {0}, fl[DM_PM_BATCH];
	uint64_t base = pfn & ~(uint64_t)(DM_PM_BATCH - 1);
	size_t n = (size_t)(pfn - base) + 1;
	ssize_t got;

	for (size_t k = 0; k < n; k++)
		idx[k] = base + k;
	got = dm_pfile_read(in->kpf_fd, idx, n, fl, in->io, &in->nr_calls);
	if (got <= 0)
		return -ENOENT;
	for (size_t k = n; k-- > 0;) {
		if (fl[k] & DM_KPF_COMPOUND_HEAD) {
			*ret_head = base + k;
			*ret_flags = fl[k];
			return 0;
		}
		if (!(fl[k] & DM_KPF_COMPOUND_TAIL))
			break;
	}
	return -ENOENT;
}

/*
 * From the frames in s[i].raw_pfn (i in @sel[0..m)), set s[i].pfn and
 * s[i].state: S_ARMED-to-be (trackable), S_NONE or S_UNKNOWN. Sorted by frame
 * so that kpageflags is read in runs.
 */
static int cmp_sample_raw(const void *a, const void *b, void *arg)
{
	const struct sample *s = arg;
	uint64_t x = s[*(const uint32_t *)a].raw_pfn, y = s[*(const uint32_t *)b].raw_pfn;

	return x < y ? -1 : x > y;
}

static void classify(struct dm_ops_inst *in, struct sample *s, uint32_t *sel, size_t m)
{
	ssize_t got;

	qsort_r(sel, m, sizeof(*sel), cmp_sample_raw, s);
	for (size_t k = 0; k < m; k++)
		in->idx[k] = s[sel[k]].raw_pfn;
	got = dm_pfile_read(in->kpf_fd, in->idx, m, in->ent, in->io, &in->nr_calls);
	for (size_t k = 0; k < m; k++) {
		struct sample *x = &s[sel[k]];
		uint64_t f = in->ent[k], head = x->raw_pfn;

		if (got < 0) {
			x->state = S_UNKNOWN;
			continue;
		}
		if (f & DM_KPF_NOPAGE) {
			x->state = S_NONE;
			continue;
		}
		if (f & DM_KPF_HUGE) {
			x->state = S_UNKNOWN; /* hugetlbfs: not on the LRU, not tracked */
			continue;
		}
		if ((f & DM_KPF_COMPOUND_TAIL) && find_head(in, x->raw_pfn, &head, &f) < 0) {
			x->state = S_UNKNOWN;
			continue;
		}
		x->pfn = head;
		x->state = (f & DM_KPF_LRU) ? S_ARMED : S_NONE;
	}
}

/* ------------------------------------------------------------------------ */
/* The bitmap                                                               */
/* ------------------------------------------------------------------------ */

static int cmp_sample_pfn(const void *a, const void *b, void *arg)
{
	const struct sample *s = arg;
	uint64_t x = s[*(const uint32_t *)a].pfn, y = s[*(const uint32_t *)b].pfn;

	return x < y ? -1 : x > y;
}

/*
 * Write (arm) or read the idle bits of s[sel[k]].pfn, k < m. On write,
 * samples whose word could not be written become S_UNKNOWN. On read,
 * s[i].result is 1 (accessed), 0 (idle) or DM_ACCESS_UNKNOWN.
 */
static void bitmap_op(struct dm_ops_inst *in, struct sample *s, uint32_t *sel, size_t m, bool write)
{
	size_t nw = 0, k, w;
	ssize_t r;

	if (!m)
		return;
	qsort_r(sel, m, sizeof(*sel), cmp_sample_pfn, s);
	for (k = 0; k < m; k++) {
		uint64_t wd = s[sel[k]].pfn / 64;

		if (!nw || in->word[nw - 1] != wd) {
			in->word[nw] = wd;
			in->val[nw] = 0;
			nw++;
		}
		in->val[nw - 1] |= 1ULL << (s[sel[k]].pfn % 64);
	}
	r = dm_idle_bitmap_io(in->bitmap_fd, write, in->word, in->val, in->ok, nw, in->io,
			      &in->nr_calls);
	for (k = 0, w = 0; k < m; k++) {
		struct sample *x = &s[sel[k]];

		while (in->word[w] != x->pfn / 64)
			w++;
		if (r < 0 || !in->ok[w]) {
			if (write)
				x->state = S_UNKNOWN;
			else
				x->result = DM_ACCESS_UNKNOWN;
			continue;
		}
		if (!write)
			x->result = (in->val[w] >> (x->pfn % 64)) & 1 ? 0 : 1;
	}
}

/* ------------------------------------------------------------------------ */
/* The vtable                                                               */
/* ------------------------------------------------------------------------ */

static void pi_close(struct dm_ops_inst *in)
{
	if (!in)
		return;
	if (in->bitmap_fd >= 0)
		close(in->bitmap_fd);
	if (in->kpf_fd >= 0)
		close(in->kpf_fd);
	dm_free(&in->alloc, in->idx);
	dm_free(&in->alloc, in->ent);
	dm_free(&in->alloc, in->word);
	dm_free(&in->alloc, in->val);
	dm_free(&in->alloc, in->ord);
	dm_free(&in->alloc, in->ok);
	dm_free(&in->alloc, in->proc_root);
	dm_free(&in->alloc, in);
}

/* Does pagemap show this process page frame numbers? Checked on its own
 * stack page under @proc_root/self; a tree without "self" (a test's) is not
 * judged. */
static int pfns_visible(struct dm_ops_inst *in, struct dm_err *err)
{
	volatile uint64_t here = 1;
	uint64_t idx = (uint64_t)(uintptr_t)&here / PAGE_SZ, e = 0;
	char path[PATH_MAX];
	ssize_t got;
	int fd;

	if (dm_proc_path(path, sizeof(path), in->proc_root, 0, "pagemap") < 0)
		return 0;
	fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = dm_pfile_read(fd, &idx, 1, &e, NULL, NULL);
	close(fd);
	if (got == 1 && (e & DM_PM_PRESENT) && !(e & DM_PM_PFN_MASK) && here)
		return dm_err_set(err, -EPERM,
				  "page_idle: /proc/PID/pagemap shows this process no page frame "
				  "numbers (they need CAP_SYS_ADMIN): run as root");
	return 0;
}

int dm_page_idle_open_io(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg,
			 const struct dm_pfile_io *io, struct dm_err *err)
{
	const struct dm_alloc *a = cfg ? cfg->alloc : NULL;
	const char *proc_root, *sysfs_root;
	char bitmap[PATH_MAX], kpf[PATH_MAX], missing[2 * PATH_MAX + 64] = "";
	struct dm_ops_inst *in;
	int r;

	if (!ret || !cfg)
		return dm_err_set(err, -EINVAL, "page_idle: invalid arguments");
	proc_root = cfg->proc_root && *cfg->proc_root ? cfg->proc_root : DM_PROC_ROOT_DEFAULT;
	sysfs_root = cfg->sysfs_root && *cfg->sysfs_root ? cfg->sysfs_root : "/sys";
	if (snprintf(bitmap, sizeof(bitmap), "%s/kernel/mm/page_idle/bitmap", sysfs_root) >=
		    (int)sizeof(bitmap) ||
	    snprintf(kpf, sizeof(kpf), "%s/kpageflags", proc_root) >= (int)sizeof(kpf))
		return dm_err_set(err, -ENAMETOOLONG, "page_idle: sysfs or proc path too long");
	if (access(bitmap, F_OK) < 0)
		return dm_err_set(err, -EOPNOTSUPP,
				  "page_idle: this kernel has no idle page tracking (no %s; "
				  "CONFIG_IDLE_PAGE_TRACKING is off)",
				  bitmap);
	if (faccessat(AT_FDCWD, bitmap, R_OK | W_OK, AT_EACCESS) < 0)
		snprintf(missing, sizeof(missing), "read and write %s", bitmap);
	if (faccessat(AT_FDCWD, kpf, R_OK, AT_EACCESS) < 0)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%sread %s",
			 missing[0] ? ", nor " : "", kpf);
	if (missing[0])
		return dm_err_set(err, -EPERM, "page_idle: needs root: this process cannot %s",
				  missing);

	in = dm_calloc(a, 1, sizeof(*in));
	if (!in)
		return dm_err_set(err, -ENOMEM, "page_idle: out of memory");
	if (a)
		in->alloc = *a;
	in->ops = cfg->ops;
	in->io = io;
	in->bitmap_fd = -1;
	in->kpf_fd = -1;
	in->proc_root = dm_malloc(&in->alloc, strlen(proc_root) + 1);
	if (!in->proc_root) {
		r = dm_err_set(err, -ENOMEM, "page_idle: out of memory");
		goto fail;
	}
	strcpy(in->proc_root, proc_root);
	in->bitmap_fd = DM_FAIL(EACCES) ? -1 : open(bitmap, O_RDWR | O_CLOEXEC);
	if (in->bitmap_fd < 0) {
		r = dm_err_set(err, -errno, "page_idle: cannot open %s: %s", bitmap,
			       strerror(errno));
		goto fail;
	}
	in->kpf_fd = DM_FAIL(EACCES) ? -1 : open(kpf, O_RDONLY | O_CLOEXEC);
	if (in->kpf_fd < 0) {
		r = dm_err_set(err, -errno, "page_idle: cannot open %s: %s", kpf, strerror(errno));
		goto fail;
	}
	if (in->ops != DAMON_OPS_PADDR) {
		r = pfns_visible(in, err);
		if (r < 0)
			goto fail;
	}
	*ret = in;
	return 0;
fail:
	pi_close(in);
	return r;
}

static int pi_open(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg, struct dm_err *err)
{
	return dm_page_idle_open_io(ret, cfg, NULL, err);
}

static int pi_target_init(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_err *err)
{
	struct itarget *it;
	char path[PATH_MAX];
	int fd = -1;

	if (!in || !t)
		return dm_err_set(err, -EINVAL, "page_idle: invalid arguments");
	if (in->ops != DAMON_OPS_PADDR) {
		if (dm_proc_path(path, sizeof(path), in->proc_root, t->pid, "pagemap") < 0)
			return dm_err_set(err, -ENAMETOOLONG, "page_idle: proc path too long");
		if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0 && errno != ENOENT)
			return dm_err_set(err, -EPERM,
					  "page_idle: this process cannot read %s (%s)", path,
					  strerror(errno));
		fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT || errno == ESRCH)
				return dm_err_set(err, -ESRCH,
						  "page_idle: process %d does not exist",
						  (int)t->pid);
			return dm_err_set(err, -errno, "page_idle: cannot open %s: %s", path,
					  strerror(errno));
		}
	}
	it = dm_calloc(&in->alloc, 1, sizeof(*it));
	if (!it) {
		if (fd >= 0)
			close(fd);
		return dm_err_set(err, -ENOMEM, "page_idle: out of memory");
	}
	it->pagemap_fd = fd;
	t->priv = it;
	return 0;
}

static void pi_target_fini(struct dm_ops_inst *in, struct dm_ops_target *t)
{
	struct itarget *it;

	if (!in || !t || !t->priv)
		return;
	it = t->priv;
	if (it->pagemap_fd >= 0)
		close(it->pagemap_fd);
	dm_free(&in->alloc, it->s);
	dm_free(&in->alloc, it);
	t->priv = NULL;
}

static int pi_update(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_range *ret,
		     size_t cap, struct dm_err *err)
{
	int n;

	if (!in || !t || (!ret && cap))
		return dm_err_set(err, -EINVAL, "page_idle: invalid arguments");
	switch (in->ops) {
	case DAMON_OPS_VADDR:
		return dm_layout_vaddr(in->proc_root, t->pid, ret, cap, err);
	case DAMON_OPS_PADDR:
		if (t->nr_fixed)
			break;
		n = dm_iomem_system_ram(in->proc_root, ret, cap);
		if (n < 0)
			return dm_err_set(
				err, n == -ENOENT ? -EPERM : n,
				"page_idle: cannot find System RAM in %s/iomem (%s)", in->proc_root,
				n == -ENOENT ? "none listed, or addresses hidden" : strerror(-n));
		return n;
	default:
		break;
	}
	n = dm_layout_fixed(t->fixed, t->nr_fixed, ret, cap);
	if (n < 0)
		return dm_err_set(err, n, "page_idle: invalid fixed ranges");
	return n;
}

/* The frames mapped at the sample pages now (pagemap; paddr: the address).
 * Return: entries read, or -errno. */
static ssize_t read_frames(struct dm_ops_inst *in, struct itarget *it, size_t n, uint64_t *out)
{
	ssize_t got;

	if (in->ops == DAMON_OPS_PADDR) {
		for (size_t i = 0; i < n; i++)
			out[i] = it->s[i].page / PAGE_SZ;
		return (ssize_t)n;
	}
	for (size_t i = 0; i < n; i++)
		in->idx[i] = it->s[i].page / PAGE_SZ;
	got = dm_pfile_read(it->pagemap_fd, in->idx, n, in->ent, in->io, &in->nr_calls);
	for (size_t i = 0; i < n; i++) {
		uint64_t e = got < 0 ? 0 : in->ent[i];

		out[i] = (e & DM_PM_PRESENT) ? (e & DM_PM_PFN_MASK) : 0;
	}
	return got;
}

static void pi_prepare(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v,
		       size_t n)
{
	struct itarget *it;
	uint64_t *frames;
	size_t m = 0;

	if (!in || !t || !t->priv)
		return;
	it = t->priv;
	it->nr = 0;
	if (reserve(in, it, n) < 0)
		return; /* nothing armed: check() reads unknown */
	for (size_t i = 0; i < n; i++) {
		it->s[i] = (struct sample){.page = page_of(v[i].sampling_addr)};
	}
	it->nr = n;
	frames = in->val; /* free until bitmap_op() */
	read_frames(in, it, n, frames);
	for (size_t i = 0; i < n; i++) {
		it->s[i].raw_pfn = frames[i];
		if (frames[i])
			in->ord[m++] = (uint32_t)i;
	}
	classify(in, it->s, in->ord, m);
	m = 0;
	for (size_t i = 0; i < n; i++)
		if (it->s[i].state == S_ARMED)
			in->ord[m++] = (uint32_t)i;
	bitmap_op(in, it->s, in->ord, m, true);
}

static int pi_check(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v, size_t n)
{
	struct itarget *it;
	uint64_t *frames;
	size_t m = 0, nm = 0;
	ssize_t got;
	int nr = 0;

	if (!in || !t || !t->priv)
		return -EINVAL;
	it = t->priv;
	if (!n)
		return 0;
	if (it->nr != n) {
		/* prepare() could not run for these regions */
		for (size_t i = 0; i < n; i++)
			v[i].accessed = DM_ACCESS_UNKNOWN;
		return 0;
	}
	frames = in->word; /* free until bitmap_op() */
	got = read_frames(in, it, n, frames);
	if (got < 0 || (got == 0 && in->ops != DAMON_OPS_PADDR)) {
		/* 0 entries: the process's address space is gone */
		int alive = dm_proc_pid_alive(in->proc_root, t->pid);

		if (alive == -ESRCH)
			return -ESRCH;
		for (size_t i = 0; i < n; i++)
			v[i].accessed = DM_ACCESS_UNKNOWN;
		return got < 0 ? (int)got : 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct sample *x = &it->s[i];

		x->result = 0;
		x->need_bit = 0;
		if (x->page != page_of(v[i].sampling_addr)) {
			x->result = DM_ACCESS_UNKNOWN;
		} else if (!frames[i]) {
			x->result = 0; /* not mapped (any more) */
		} else if (frames[i] == x->raw_pfn) {
			if (x->state == S_ARMED)
				x->need_bit = 1;
			else if (x->state == S_UNKNOWN)
				x->result = DM_ACCESS_UNKNOWN;
		} else if (!x->raw_pfn) {
			x->result = 1; /* faulted in during the interval */
		} else {
			/* another frame: judged by its own idle bit below */
			x->raw_pfn = frames[i];
			in->ord[nm++] = (uint32_t)i;
		}
	}
	if (nm) {
		classify(in, it->s, in->ord, nm);
		for (size_t k = 0; k < nm; k++) {
			struct sample *x = &it->s[in->ord[k]];

			if (x->state == S_ARMED)
				x->need_bit = 1;
			else if (x->state == S_NONE)
				x->result = 1; /* a new frame, not trackable: a fault */
			else
				x->result = DM_ACCESS_UNKNOWN;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (it->s[i].need_bit)
			in->ord[m++] = (uint32_t)i;
	bitmap_op(in, it->s, in->ord, m, false);
	for (size_t i = 0; i < n; i++) {
		v[i].accessed = it->s[i].result;
		nr += it->s[i].result == 1;
	}
	return nr;
}

uint64_t dm_page_idle_nr_calls(const struct dm_ops_inst *in)
{
	return in ? in->nr_calls : 0;
}

const struct dm_ops dm_ops_page_idle = {
	.name = "page_idle",
	.sees = DAMON_SEES_READS | DAMON_SEES_WRITES,
	.open = pi_open,
	.close = pi_close,
	.target_init = pi_target_init,
	.target_fini = pi_target_fini,
	.update = pi_update,
	.prepare = pi_prepare,
	.check = pi_check,
	.app_cost_ns = NULL,
};
