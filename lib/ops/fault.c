// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * fault: access sampling of the calling process by page protection, needing
 * no privilege and no kernel feature beyond PROCMAP_QUERY (Linux 6.11), and
 * telling reads from writes and which CPU (and node) made them.
 *
 * prepare() makes each sample page inaccessible (adjacent ones in one
 * mprotect call); the first access traps in libdamon's SIGSEGV handler
 * (fault_sig.c), which records it and restores the page (read-only first
 * after a read, so that a later write is seen too); check() reads what each
 * sample page saw; the next prepare() restores what was not touched and arms
 * the new sample pages. So at most one page per region is ever inaccessible,
 * for at most one sampling interval.
 *
 * What is armed: pages of private, readable, non-executable mappings whose
 * protection is not PROT_NONE, in 4 KiB pages. Never armed:
 * - stacks: a signal frame pushed onto an armed stack page would kill the
 *   process. "[stack]", and above every small PROT_NONE mapping (at most
 *   256 KiB: the guard page glibc, musl and Rust put below a thread stack,
 *   or below an alternate signal stack; malloc's arena reservations are
 *   larger) the next RLIMIT_STACK bytes, the default size of a thread stack
 *   (32 MiB when unlimited). Not the whole mapping above a guard: the kernel
 *   merges a thread stack with the anonymous memory mapped right above it
 *   into one VMA. Not recognised, so to be kept out of fvaddr ranges: thread
 *   stacks made larger than RLIMIT_STACK, and stacks without a guard (an
 *   alternate signal stack in malloc'd memory);
 * - shared mappings: other processes' accesses would not be seen, and the
 *   protection is per process anyway;
 * - file-backed mappings that are not writable and executable mappings
 *   (code, read-only data, relocations): the handler's own calls could need
 *   them;
 * - pages next to a PROT_NONE mapping (an application's guard): the armed
 *   page would merge into it, and libdamon could not tell its page from the
 *   application's any more;
 * - hugetlbfs (mprotect works per huge page), special mappings (vdso, vvar);
 * - the handler's own data.
 * Sample pages there read DM_ACCESS_UNKNOWN. Arming a page of a transparent
 * huge page splits its mapping into 4 KiB pages (the memory stays one huge
 * page until khugepaged maps it huge again).
 *
 * Limits the kernel sets: every armed page is a VMA of its own until its
 * first access (vm.max_map_count is read at open and the armed pages kept
 * well below it); a system call given an armed page (read(2) into it, say)
 * fails with EFAULT instead of trapping.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <damon/damon.h>

#include "fault_abi.h"
#include "fault_sig.h"
#include "maps.h"
#include "ops.h"
#include "../util/proc.h"
#include "../util/fail.h"

#define PAGE_SZ 4096ULL
/* Armed pages per target (one per region: max_nr_regions is at most this). */
#define MAX_ARMED 16384

struct dm_ops_inst {
	struct dm_alloc alloc;
	char *proc_root;
	uint32_t ops;
	pid_t pid;
	int maps_fd;	      /* PROCMAP_QUERY of sample pages */
	uint64_t app_cost_ns; /* one trap, measured at open */
	size_t max_armed;     /* by vm.max_map_count */
};

enum fmap_state { FM_SKIP = 0, FM_ARMABLE };

struct fmap {
	uint64_t start, end;
	uint8_t state;
	uint8_t vsyscall;
};

struct ftarget {
	struct dm_fault_table *table;
	struct fmap *maps; /* sorted, from the last update() */
	size_t nr_maps, cap_maps;
	struct dm_range *ranges; /* update() scratch */
	size_t cap_ranges;
	struct dm_range *stacks; /* where thread stacks may be: never armed */
	size_t nr_stacks, cap_stacks;
	uint64_t *pages; /* this sample's pages, sorted, and whether armed */
	uint8_t *armed;
	size_t nr_pages, cap_pages, cap_armed;
};

static uint64_t page_of(uint64_t a)
{
	return a & ~(PAGE_SZ - 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* vm.max_map_count, or the kernel's default when it cannot be read. */
static size_t max_map_count(const char *proc_root)
{
	char path[PATH_MAX];
	unsigned long v = 65530;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/vm/max_map_count", proc_root);
	f = DM_FAIL(EACCES) ? NULL : fopen(path, "re");
	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

/*
 * The cost of one trap, on a scratch page of our own, and the proof that the
 * handler works here: armed, read (trap, read-only), written (trap, restored).
 */
static int measure_trap(struct dm_ops_inst *in, struct dm_err *err)
{
	struct dm_fault_table *t;
	struct dm_fault_seen seen;
	volatile uint8_t *p;
	uint64_t t0, t1;
	uint8_t v;
	int r;

	r = dm_fault_join(&t, 4, err);
	if (r)
		return r;
	p = DM_FAIL(ENOMEM) ? MAP_FAILED
			    : mmap(NULL, PAGE_SZ, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		dm_fault_leave(t);
		return dm_err_set(err, -errno, "fault: mmap of a scratch page failed");
	}
	p[0] = 1;
	r = dm_fault_arm(t, (uint64_t)(uintptr_t)p, 1, PROT_READ | PROT_WRITE);
	if (r != 1) {
		munmap((void *)p, PAGE_SZ);
		dm_fault_leave(t);
		return dm_err_set(err, r < 0 ? r : -EIO, "fault: cannot arm a scratch page: %s",
				  strerror(r < 0 ? -r : EIO));
	}
	t0 = now_ns();
	v = p[0];     /* trap: read */
	p[0] = v + 1; /* trap: write */
	t1 = now_ns();
	r = dm_fault_seen(t, (uint64_t)(uintptr_t)p, &seen);
	dm_fault_leave(t);
	munmap((void *)p, PAGE_SZ);
	if (r || seen.how != (DM_FAULT_READ | DM_FAULT_WRITE))
		return dm_err_set(err, -EIO,
				  "fault: a trap on a scratch page was not seen by libdamon's "
				  "SIGSEGV handler (another handler in the way?)");
	in->app_cost_ns = (t1 - t0) / 2;
	return 0;
}

static void fault_close(struct dm_ops_inst *in)
{
	if (!in)
		return;
	if (in->maps_fd >= 0)
		close(in->maps_fd);
	dm_free(&in->alloc, in->proc_root);
	dm_free(&in->alloc, in);
}

int dm_fault_probe(struct dm_err *err)
{
	return dm_fault_sig_probe(err);
}

static int fault_open(struct dm_ops_inst **ret, const struct dm_ops_cfg *cfg, struct dm_err *err)
{
	const struct dm_alloc *a = cfg ? cfg->alloc : NULL;
	const char *root;
	struct dm_ops_inst *in;
	char path[PATH_MAX];
	int r;

	if (!ret || !cfg)
		return dm_err_set(err, -EINVAL, "fault: invalid arguments");
	if (cfg->ops == DAMON_OPS_PADDR)
		return dm_err_set(err, -EOPNOTSUPP,
				  "fault: it monitors the calling process only, not physical "
				  "memory (paddr)");
	r = dm_fault_sig_probe(err);
	if (r)
		return r;
	in = dm_calloc(a, 1, sizeof(*in));
	if (!in)
		return dm_err_set(err, -ENOMEM, "fault: out of memory");
	if (a)
		in->alloc = *a;
	in->ops = cfg->ops;
	in->pid = getpid();
	in->maps_fd = -1;
	root = cfg->proc_root && *cfg->proc_root ? cfg->proc_root : DM_PROC_ROOT_DEFAULT;
	in->proc_root = dm_malloc(&in->alloc, strlen(root) + 1);
	if (!in->proc_root) {
		fault_close(in);
		return dm_err_set(err, -ENOMEM, "fault: out of memory");
	}
	strcpy(in->proc_root, root);
	/* Each armed page is a VMA of its own (two more, with the pieces of its
	 * mapping around it): keep a wide margin under the limit. */
	in->max_armed = max_map_count(root) / 4;
	if (in->max_armed > MAX_ARMED)
		in->max_armed = MAX_ARMED;
	r = dm_proc_path(path, sizeof(path), root, 0, "maps");
	if (r < 0) {
		fault_close(in);
		return dm_err_set(err, r, "fault: proc path too long");
	}
	in->maps_fd = DM_FAIL(EACCES) ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (in->maps_fd < 0) {
		r = dm_err_set(err, -errno, "fault: cannot open %s: %s", path, strerror(errno));
		fault_close(in);
		return r;
	}
	r = measure_trap(in, err);
	if (r) {
		fault_close(in);
		return r;
	}
	*ret = in;
	return 0;
}

static int fault_target_init(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_err *err)
{
	struct ftarget *ft;
	pid_t self = getpid();
	int r;

	if (!in || !t)
		return dm_err_set(err, -EINVAL, "fault: invalid arguments");
	if (self != in->pid)
		return dm_err_set(err, -ECHILD, "fault: instance used after fork()");
	if (t->pid != self && t->pid != dm_proc_self_pid(in->proc_root))
		return dm_err_set(err, -EOPNOTSUPP,
				  "fault: can monitor only the calling process (pid %d), not pid "
				  "%d; use the kernel, page_idle or soft_dirty backend for other "
				  "processes",
				  (int)self, (int)t->pid);
	ft = dm_calloc(&in->alloc, 1, sizeof(*ft));
	if (!ft)
		return dm_err_set(err, -ENOMEM, "fault: out of memory");
	r = dm_fault_join(&ft->table, in->max_armed, err);
	if (r) {
		dm_free(&in->alloc, ft);
		return r;
	}
	t->priv = ft;
	return 0;
}

static void fault_target_fini(struct dm_ops_inst *in, struct dm_ops_target *t)
{
	struct ftarget *ft;

	if (!in || !t || !t->priv)
		return;
	ft = t->priv;
	/* restores every armed page; in a fork()ed child only frees memory */
	dm_fault_leave(ft->table);
	dm_free(&in->alloc, ft->maps);
	dm_free(&in->alloc, ft->ranges);
	dm_free(&in->alloc, ft->stacks);
	dm_free(&in->alloc, ft->pages);
	dm_free(&in->alloc, ft->armed);
	dm_free(&in->alloc, ft);
	t->priv = NULL;
}

/* One mapping of /proc/self/maps: may its pages be armed? (The file header
 * says which may not, and why; stacks are found apart.) */
static bool armable(const struct dm_map *m)
{
	if (dm_map_is_special(m) || !strcmp(m->name, "[stack]"))
		return false;
	if (m->perms & (DM_MAP_SHARED | DM_MAP_EXEC))
		return false;
	if (!(m->perms & DM_MAP_READ))
		return false;
	if (m->inode && !(m->perms & DM_MAP_WRITE))
		return false;
	return true;
}

/* The default size of a thread stack: RLIMIT_STACK, as glibc takes it. */
static uint64_t stack_window(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_STACK, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 1ULL << 30)
		return 32ULL << 20;
	return rl.rlim_cur < PAGE_SZ ? PAGE_SZ : rl.rlim_cur;
}

struct collect {
	struct dm_ops_inst *in;
	struct ftarget *ft;
	uint64_t window; /* stack_window() */
};

static int collect_cb(const struct dm_map *m, void *userdata)
{
	struct collect *c = userdata;
	struct ftarget *ft = c->ft;
	struct fmap *v;

	if (ft->nr_maps && m->start < ft->maps[ft->nr_maps - 1].end)
		return 0; /* never in a consistent maps file */
	v = dm_grow(&c->in->alloc, ft->maps, &ft->cap_maps, ft->nr_maps + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	ft->maps = v;
	v = &ft->maps[ft->nr_maps++];
	v->start = m->start;
	v->end = m->end;
	v->vsyscall = dm_map_is_vsyscall(m);
	v->state = armable(m) ? FM_ARMABLE : FM_SKIP;
	if (!(m->perms & (DM_MAP_READ | DM_MAP_WRITE | DM_MAP_EXEC)) &&
	    m->end - m->start <= 256 * 1024) {
		/* a guard: a stack may sit on it */
		struct dm_range *r = dm_grow(&c->in->alloc, ft->stacks, &ft->cap_stacks,
					     ft->nr_stacks + 1, sizeof(*r));

		if (!r)
			return -ENOMEM;
		ft->stacks = r;
		r[ft->nr_stacks].start = m->end;
		r[ft->nr_stacks].end = m->end + c->window;
		ft->nr_stacks++;
	}
	return 0;
}

static int fault_update(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_range *ret,
			size_t cap, struct dm_err *err)
{
	struct collect c = {0};
	struct ftarget *ft;
	struct dm_range *rg;
	char path[PATH_MAX];
	size_t nr = 0;
	int r;

	if (!in || !t || !t->priv || (!ret && cap))
		return dm_err_set(err, -EINVAL, "fault: invalid arguments");
	if (getpid() != in->pid)
		return dm_err_set(err, -ECHILD, "fault: instance used after fork()");
	ft = t->priv;
	/* The last sample's pages were checked already: restore them first, or
	 * each would show in the maps as a small PROT_NONE mapping, a guard. */
	dm_fault_disarm(ft->table, 0, UINT64_MAX);
	ft->nr_maps = 0;
	ft->nr_stacks = 0;
	c.in = in;
	c.ft = ft;
	c.window = stack_window();
	r = dm_proc_path(path, sizeof(path), in->proc_root, 0, "maps");
	if (r < 0)
		return dm_err_set(err, r, "fault: proc path too long");
	r = dm_maps_foreach(path, collect_cb, &c);
	if (r < 0)
		return dm_err_set(err, r, "fault: cannot read %s: %s", path, strerror(-r));
	if (in->ops == DAMON_OPS_FVADDR) {
		r = dm_layout_fixed(t->fixed, t->nr_fixed, ret, cap);
		if (r < 0)
			return dm_err_set(err, r, "fault: invalid fixed ranges");
		return r;
	}
	/* not straight into ft->ranges: on failure the old array stays ours,
	 * and cap_ranges keeps describing it */
	rg = dm_grow(&in->alloc, ft->ranges, &ft->cap_ranges, ft->nr_maps ? ft->nr_maps : 1,
		     sizeof(*ft->ranges));
	if (!rg)
		return dm_err_set(err, -ENOMEM, "fault: out of memory");
	ft->ranges = rg;
	for (size_t i = 0; i < ft->nr_maps; i++) {
		if (ft->maps[i].vsyscall)
			continue;
		ft->ranges[nr].start = ft->maps[i].start;
		ft->ranges[nr].end = ft->maps[i].end;
		nr++;
	}
	r = dm_layout_three_regions(ft->ranges, nr, ret, cap);
	if (r < 0)
		return dm_err_set(err, r, "fault: the layout needs more than %zu ranges", cap);
	return r;
}

static const struct fmap *find_map(const struct ftarget *ft, uint64_t addr)
{
	size_t lo = 0, hi = ft->nr_maps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ft->maps[mid].end <= addr)
			lo = mid + 1;
		else if (ft->maps[mid].start > addr)
			hi = mid;
		else
			return &ft->maps[mid];
	}
	return NULL;
}

/* Is the mapping covering @addr one without access that touches @page
 * (ending at it when @below, starting right after it otherwise)? */
static bool no_access_at(struct dm_ops_inst *in, uint64_t addr, uint64_t page, bool below)
{
	struct dm_procmap_query q;

	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.query_addr = addr;
	if (dm_raw_syscall3(SYS_ioctl, in->maps_fd, (long)DM_PROCMAP_QUERY, (long)&q) ||
	    q.vma_start > addr || q.vma_end <= addr)
		return false; /* nothing mapped there */
	if (below ? q.vma_end != page : q.vma_start != page + PAGE_SZ)
		return false;
	return !(q.vma_flags & (DM_PROCMAP_QUERY_VMA_READABLE | DM_PROCMAP_QUERY_VMA_WRITABLE |
				DM_PROCMAP_QUERY_VMA_EXECUTABLE));
}

/* The protection of @page now, if it may be armed: 0 (PROT_NONE) if not.
 * The maps list says which mappings may; the kernel says what they are now
 * (the application may have changed them since the last update). */
static int current_prot(struct dm_ops_inst *in, const struct ftarget *ft, uint64_t page)
{
	const struct fmap *m = find_map(ft, page);
	struct dm_procmap_query q;
	int prot = 0;

	if (!m || m->state != FM_ARMABLE || dm_fault_own_page(page))
		return 0;
	for (size_t i = 0; i < ft->nr_stacks; i++)
		if (page >= ft->stacks[i].start && page < ft->stacks[i].end)
			return 0;
	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.query_addr = page;
	if (dm_raw_syscall3(SYS_ioctl, in->maps_fd, (long)DM_PROCMAP_QUERY, (long)&q) ||
	    q.vma_start > page || q.vma_end <= page || q.vma_page_size != PAGE_SZ)
		return 0;
	if (q.vma_flags & (DM_PROCMAP_QUERY_VMA_SHARED | DM_PROCMAP_QUERY_VMA_EXECUTABLE))
		return 0;
	/* Next to a PROT_NONE mapping (an application's guard), an armed page
	 * would merge into it, and libdamon could no longer tell its page from
	 * the application's: never arm there. */
	if ((page == q.vma_start && no_access_at(in, page - PAGE_SZ, page, true)) ||
	    (page + PAGE_SZ == q.vma_end && no_access_at(in, page + PAGE_SZ, page, false)))
		return 0;
	if (q.vma_flags & DM_PROCMAP_QUERY_VMA_READABLE)
		prot |= PROT_READ;
	if (q.vma_flags & DM_PROCMAP_QUERY_VMA_WRITABLE)
		prot |= PROT_WRITE;
	return prot & PROT_READ ? prot : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t find_page(const struct ftarget *ft, uint64_t page)
{
	size_t lo = 0, hi = ft->nr_pages;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ft->pages[mid] < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ft->nr_pages && ft->pages[lo] == page ? lo : SIZE_MAX;
}

/*
 * Restore the previous sample pages that were not accessed, then arm this
 * sample's: sorted, adjacent pages with one protection in one call, at most
 * max_armed. Before arming, libdamon's handler must be the installed one
 * (dm_fault_recheck()).
 */
static void fault_prepare(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v,
			  size_t n)
{
	struct ftarget *ft;
	size_t i, k = 0, armed = 0;
	void *p;

	if (!in || !t || !t->priv || getpid() != in->pid)
		return;
	ft = t->priv;
	dm_fault_disarm(ft->table, 0, UINT64_MAX);
	ft->nr_pages = 0;
	p = dm_grow(&in->alloc, ft->pages, &ft->cap_pages, n, sizeof(*ft->pages));
	if (!p)
		return; /* check() reads unknown */
	ft->pages = p;
	p = dm_grow(&in->alloc, ft->armed, &ft->cap_armed, n, sizeof(*ft->armed));
	if (!p)
		return;
	ft->armed = p;
	for (i = 0; i < n; i++)
		ft->pages[k++] = page_of(v[i].sampling_addr);
	qsort(ft->pages, k, sizeof(*ft->pages), cmp_u64);
	/* drop duplicates (two regions of one page: armed once, seen by both) */
	for (i = 0, ft->nr_pages = 0; i < k; i++)
		if (!ft->nr_pages || ft->pages[ft->nr_pages - 1] != ft->pages[i])
			ft->pages[ft->nr_pages++] = ft->pages[i];
	memset(ft->armed, 0, ft->nr_pages);
	dm_fault_recheck();
	for (i = 0; i < ft->nr_pages && armed < in->max_armed;) {
		int prot = current_prot(in, ft, ft->pages[i]);
		size_t run = 1;
		int r;

		if (!prot) {
			i++;
			continue;
		}
		while (i + run < ft->nr_pages && armed + run < in->max_armed &&
		       ft->pages[i + run] == ft->pages[i] + run * PAGE_SZ &&
		       current_prot(in, ft, ft->pages[i + run]) == prot)
			run++;
		r = dm_fault_arm(ft->table, ft->pages[i], run, prot);
		if (r > 0) {
			memset(&ft->armed[i], 1, (size_t)r);
			armed += (size_t)r;
			i += (size_t)r;
		} else {
			i += run;
		}
	}
}

static int fault_check(struct dm_ops_inst *in, struct dm_ops_target *t, struct dm_region *v,
		       size_t n)
{
	struct ftarget *ft;
	int nr = 0;

	if (!in || !t || !t->priv)
		return -EINVAL;
	if (getpid() != in->pid)
		return -ECHILD;
	ft = t->priv;
	for (size_t i = 0; i < n; i++) {
		size_t k = find_page(ft, page_of(v[i].sampling_addr));
		struct dm_fault_seen seen;

		v[i].accessed = DM_ACCESS_UNKNOWN;
		if (k == SIZE_MAX || !ft->armed[k] ||
		    dm_fault_seen(ft->table, ft->pages[k], &seen) || seen.lost)
			continue;
		v[i].accessed = seen.how ? 1 : 0;
		if (!seen.how)
			continue;
		v[i].acc_how = (uint8_t)((seen.how & DM_FAULT_READ ? DM_ACC_READ : 0) |
					 (seen.how & DM_FAULT_WRITE ? DM_ACC_WRITE : 0));
		v[i].acc_cpu = (int16_t)(seen.cpu < INT16_MAX ? seen.cpu : -1);
		v[i].acc_node = (int8_t)(seen.node >= 0 && seen.node < INT8_MAX ? seen.node : -1);
		nr++;
	}
	return nr;
}

static void fault_release(struct dm_ops_inst *in, struct dm_ops_target *t, uint64_t start,
			  uint64_t end)
{
	struct ftarget *ft;

	if (!in || !t || !t->priv || getpid() != in->pid)
		return;
	ft = t->priv;
	dm_fault_disarm(ft->table, start, end);
	for (size_t i = 0; i < ft->nr_pages; i++)
		if (ft->pages[i] >= start && ft->pages[i] < end)
			ft->armed[i] = 0;
}

static uint64_t fault_app_cost_ns(struct dm_ops_inst *in)
{
	return in ? in->app_cost_ns : 0;
}

const struct dm_ops dm_ops_fault = {
	.name = "fault",
	.sees = DAMON_SEES_READS | DAMON_SEES_WRITES,
	.tells = DM_TELLS_RW | DM_TELLS_CPU,
	.open = fault_open,
	.close = fault_close,
	.target_init = fault_target_init,
	.target_fini = fault_target_fini,
	.update = fault_update,
	.prepare = fault_prepare,
	.check = fault_check,
	.app_cost_ns = fault_app_cost_ns,
	.release = fault_release,
};
