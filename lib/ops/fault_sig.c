// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * libdamon's SIGSEGV handler and the tables of armed pages (fault_sig.h).
 *
 * The handler runs on any thread, at any point of the application, maybe on
 * an alternate signal stack, maybe nested in another handler. So it takes no
 * lock, allocates nothing, calls nothing of libc (a call through the PLT
 * reads a GOT, errno is thread-local storage: memory that could be armed, and
 * a fault inside the handler on a page it is restoring would never end), and
 * is built without stack protector or sanitizer instrumentation (both read
 * thread-local storage). It reads only: its arguments, g_hs, and memory
 * mapped here (struct hstate and the tables), none of which is ever armed.
 *
 * Races with the monitor thread, which arms and disarms while the handler
 * may run on other threads, are settled by each slot's state (compare and
 * swap) and by one rule: a fault on a page that is not armed any more, but
 * whose mapping allows the access now, was restored meanwhile and is simply
 * retried. Only a fault the mapping itself forbids goes to the application's
 * handler.
 *
 * The application's own protections: a page libdamon armed is a VMA of its
 * own with no access. If the application changes the protection of memory
 * that includes it, the kernel merges or changes that VMA, and PROCMAP_QUERY
 * (Linux 6.11) shows it: libdamon then lets the page go ("lost") and never
 * restores it, in the handler and when disarming. The one case it cannot
 * tell apart is the application setting exactly the armed pages, no more, to
 * PROT_NONE while they are armed (at most one sampling interval): it then
 * restores them as they were before it armed them.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "fault_abi.h"
#include "fault_sig.h"
#include "../util/fail.h"

#define PAGE_SZ	    4096ULL
#define MAX_TABLES  64
#define MAX_VMA_PGS 64 /* a merged VMA of armed pages is checked up to this size */

#if defined(__GNUC__) || defined(__clang__)
#define HANDLER_SAFE \
	__attribute__((no_stack_protector, no_sanitize("address", "undefined", "thread"), noinline))
#else
#define HANDLER_SAFE
#endif

enum slot_state {
	S_FREE = 0,  /* nothing armed (page 0: never used since the last clear) */
	S_ARMED,     /* PROT_NONE, waiting for the first access */
	S_HALF,	     /* read seen: read-only, waiting for a write */
	S_FIRING,    /* the handler is restoring it */
	S_FIRED,     /* accessed and restored */
	S_DISARMING, /* the monitor is restoring it */
	S_LOST,	     /* the application changed its protection: let go */
};

struct slot {
	_Atomic uint64_t page;
	_Atomic uint32_t state;
	uint32_t prot; /* to restore */
	_Atomic uint32_t how;
	_Atomic int32_t cpu, node;
	uint32_t pad;
};

struct dm_fault_table {
	size_t cap, mask; /* slots, a power of two */
	size_t map_sz;	  /* bytes of this mapping */
	pid_t pid;	  /* the process it belongs to */
	uint32_t index;	  /* in hstate.tables */
	struct slot slots[];
};

/* All the handler reads, besides the tables, in one mapping of its own. */
struct hstate {
	_Atomic(struct dm_fault_table *) tables[MAX_TABLES];
	atomic_uint inflight; /* handlers between reading a table and leaving it */
	_Atomic int maps_fd;  /* /proc/self/maps of the process that opened it */
	atomic_uint prev_idx; /* which of prev[] is the chained handler */
	atomic_uint prev_dfl; /* it had SA_RESETHAND and was called: now SIG_DFL */
	struct sigaction prev[2];
	atomic_ulong handled, chained, spurious, lost;
};

/* The handler's only static datum; its page is never armed. */
static _Atomic(struct hstate *) g_hs;

/*
 * Process-wide bookkeeping, taken by the monitor threads only. The one
 * mutable global of this backend (with g_hs), and why: SIGSEGV has one
 * disposition per process, so every fault context of the process must share
 * one handler and what it reads.
 */
static struct {
	pthread_mutex_t lock;
	unsigned long users; /* tables joined */
	bool installed;	     /* our handler was put in place (and not removed) */
	bool atfork;
	pid_t pid; /* the process hs and maps_fd belong to */
	uint64_t retaken;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t page_of(uint64_t a)
{
	return a & ~(PAGE_SZ - 1);
}

static size_t hash_page(uint64_t page, size_t mask)
{
	return (size_t)((page >> 12) * 0x9e3779b97f4a7c15ULL >> 17) & mask;
}

/* ------------------------------------------------------------------------ */
/* Handler-safe helpers                                                     */
/* ------------------------------------------------------------------------ */

static HANDLER_SAFE long h_mprotect(uint64_t page, uint64_t len, int prot)
{
	return dm_raw_syscall3(SYS_mprotect, (long)page, (long)len, prot);
}

/* The VMA covering @addr (fields set one by one: a struct initializer may
 * become a call to memset). Return: 0, or -errno. */
static HANDLER_SAFE long h_query(int fd, uint64_t addr, struct dm_procmap_query *q)
{
	q->size = sizeof(*q);
	q->query_flags = 0;
	q->query_addr = addr;
	q->vma_start = q->vma_end = q->vma_flags = 0;
	q->vma_page_size = q->vma_offset = q->inode = 0;
	q->dev_major = q->dev_minor = 0;
	q->vma_name_size = q->build_id_size = 0;
	q->vma_name_addr = q->build_id_addr = 0;
	if (fd < 0)
		return -EBADF;
	return dm_raw_syscall3(SYS_ioctl, fd, (long)DM_PROCMAP_QUERY, (long)q);
}

static HANDLER_SAFE struct slot *h_find(struct dm_fault_table *t, uint64_t page)
{
	for (size_t i = hash_page(page, t->mask), n = 0; n <= t->mask; i = (i + 1) & t->mask, n++) {
		uint64_t p = atomic_load_explicit(&t->slots[i].page, memory_order_acquire);

		if (!p)
			return NULL;
		if (p == page)
			return &t->slots[i];
	}
	return NULL;
}

/* Is @page in some table in state @a or @b? */
static HANDLER_SAFE bool h_armed_as(struct hstate *hs, uint64_t page, uint32_t a, uint32_t b)
{
	for (int i = 0; i < MAX_TABLES; i++) {
		struct dm_fault_table *t =
			atomic_load_explicit(&hs->tables[i], memory_order_acquire);
		struct slot *s = t ? h_find(t, page) : NULL;
		uint32_t st;

		if (!s)
			continue;
		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == a || st == b || st == S_FIRING || st == S_DISARMING)
			return true;
	}
	return false;
}

/*
 * Is the VMA holding @page still libdamon's doing? Armed: no access at all,
 * and every page of the VMA armed by libdamon (adjacent armed pages merge
 * into one VMA). Half: readable, not writable, every page of it half-armed.
 * Anything else means the application changed the protection itself.
 */
static HANDLER_SAFE bool h_vma_ours(struct hstate *hs, uint64_t page, bool half)
{
	struct dm_procmap_query q;
	uint64_t rwx = DM_PROCMAP_QUERY_VMA_READABLE | DM_PROCMAP_QUERY_VMA_WRITABLE |
		       DM_PROCMAP_QUERY_VMA_EXECUTABLE;
	int fd = atomic_load_explicit(&hs->maps_fd, memory_order_relaxed);

	if (h_query(fd, page, &q) || q.vma_start > page || q.vma_end <= page)
		return false;
	if (half ? (q.vma_flags & DM_PROCMAP_QUERY_VMA_WRITABLE) ||
			    !(q.vma_flags & DM_PROCMAP_QUERY_VMA_READABLE)
		 : (q.vma_flags & rwx))
		return false;
	if ((q.vma_end - q.vma_start) / PAGE_SZ > MAX_VMA_PGS)
		return false;
	for (uint64_t p = q.vma_start; p < q.vma_end; p += PAGE_SZ)
		if (!h_armed_as(hs, p, half ? S_HALF : S_ARMED, half ? S_HALF : S_ARMED))
			return false;
	return true;
}

/* Does the mapping allow this access now (a page restored meanwhile)? */
static HANDLER_SAFE bool h_allowed_now(struct hstate *hs, uint64_t addr, unsigned long err)
{
	struct dm_procmap_query q;
	int fd = atomic_load_explicit(&hs->maps_fd, memory_order_relaxed);
	uint64_t need = err & DM_X86_PF_WRITE	? DM_PROCMAP_QUERY_VMA_WRITABLE
			: err & DM_X86_PF_INSTR ? DM_PROCMAP_QUERY_VMA_EXECUTABLE
						: DM_PROCMAP_QUERY_VMA_READABLE;

	if (h_query(fd, addr, &q) || q.vma_start > addr || q.vma_end <= addr)
		return false;
	return (q.vma_flags & need) != 0;
}

static HANDLER_SAFE void h_record(struct slot *s, uint32_t how)
{
	unsigned int cpu = 0, node = 0;

	atomic_fetch_or_explicit(&s->how, how, memory_order_relaxed);
	if (atomic_load_explicit(&s->cpu, memory_order_relaxed) < 0 &&
	    dm_raw_syscall3(SYS_getcpu, (long)&cpu, (long)&node, 0) == 0) {
		atomic_store_explicit(&s->node, (int32_t)node, memory_order_relaxed);
		atomic_store_explicit(&s->cpu, (int32_t)cpu, memory_order_relaxed);
	}
}

/*
 * One armed slot met a fault: claim it and restore the page. Return true
 * when the fault was libdamon's (the access may go on), false when the page
 * turned out to be the application's now.
 */
static HANDLER_SAFE bool h_fire(struct hstate *hs, struct slot *s, uint64_t page, unsigned long err)
{
	bool write = err & DM_X86_PF_WRITE;
	uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

	if (st == S_FIRING || st == S_DISARMING)
		return true; /* someone is restoring it: retry the access */
	if (st != S_ARMED && st != S_HALF)
		return false;
	if (!atomic_compare_exchange_strong(&s->state, &st, S_FIRING))
		return true; /* changed under us: look again at the retry */
	if (!h_vma_ours(hs, page, st == S_HALF)) {
		atomic_store_explicit(&s->state, S_LOST, memory_order_release);
		atomic_fetch_add_explicit(&hs->lost, 1, memory_order_relaxed);
		return false;
	}
	if (st == S_ARMED && !write && (s->prot & PROT_WRITE)) {
		/* a read of writable memory: stay write-protected to see a write */
		if (h_mprotect(page, PAGE_SZ, (int)(s->prot & ~(uint32_t)PROT_WRITE)) == 0) {
			h_record(s, DM_FAULT_READ);
			atomic_store_explicit(&s->state, S_HALF, memory_order_release);
			return true;
		}
	}
	if (h_mprotect(page, PAGE_SZ, (int)s->prot)) {
		/* cannot restore (out of VMAs): leave it to the application */
		atomic_store_explicit(&s->state, S_LOST, memory_order_release);
		return false;
	}
	h_record(s, st == S_HALF || write ? DM_FAULT_WRITE : DM_FAULT_READ);
	atomic_store_explicit(&s->state, S_FIRED, memory_order_release);
	return true;
}

/* The handler in place before (or the application's, taken under). */
/* The handler in place before (or the application's, taken under). */
static HANDLER_SAFE void h_chain(struct hstate *hs, int sig, siginfo_t *si, void *uc)
{
	unsigned int idx = atomic_load_explicit(&hs->prev_idx, memory_order_acquire) & 1;
	const struct sigaction *p = &hs->prev[idx];

	atomic_fetch_add_explicit(&hs->chained, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&hs->prev_dfl, memory_order_acquire)) {
		/* SA_RESETHAND: the kernel would have reset it at this delivery */
		if (p->sa_flags & SA_RESETHAND)
			atomic_store_explicit(&hs->prev_dfl, 1, memory_order_release);
		if ((p->sa_flags & SA_SIGINFO) && p->sa_sigaction) {
			p->sa_sigaction(sig, si, uc);
			return;
		}
		if (!(p->sa_flags & SA_SIGINFO) && p->sa_handler != SIG_DFL &&
		    p->sa_handler != SIG_IGN) {
			p->sa_handler(sig);
			return;
		}
	}
	/*
	 * SIG_DFL (or SIG_IGN, which the kernel does not honour for a fault):
	 * the default disposition, and return: the access faults again and the
	 * process ends as it would have without libdamon, with its own fault.
	 * The kernel's struct sigaction is: handler, flags, restorer, mask.
	 */
	{
		unsigned long ksa[4] = {0, 0, 0, 0};

		dm_raw_syscall4(SYS_rt_sigaction, SIGSEGV, (long)ksa, 0, 8);
	}
}

static HANDLER_SAFE void on_sigsegv(int sig, siginfo_t *si, void *uc)
{
	struct hstate *hs = atomic_load_explicit(&g_hs, memory_order_acquire);
	unsigned long err = 0;
	uint64_t addr, page;
	bool handled = false, found = false;

	if (!hs)
		return; /* cannot happen: installed only once hs exists */
#if DM_FAULT_ARCH_OK
	err = (unsigned long)((ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR];
#endif
	addr = (uint64_t)(uintptr_t)si->si_addr;
	page = page_of(addr);
	if (si->si_code == SEGV_ACCERR) {
		atomic_fetch_add_explicit(&hs->inflight, 1, memory_order_acq_rel);
		for (int i = 0; i < MAX_TABLES && !handled; i++) {
			struct dm_fault_table *t =
				atomic_load_explicit(&hs->tables[i], memory_order_acquire);
			struct slot *s = t ? h_find(t, page) : NULL;

			if (!s)
				continue;
			found = true;
			handled = h_fire(hs, s, page, err);
		}
		if (handled)
			atomic_fetch_add_explicit(&hs->handled, 1, memory_order_relaxed);
		else if (h_allowed_now(hs, addr, err)) {
			/* restored meanwhile (a race with disarming, or a page whose
			 * protection another thread's fault just lifted): retry */
			atomic_fetch_add_explicit(&hs->spurious, 1, memory_order_relaxed);
			handled = true;
		}
		atomic_fetch_sub_explicit(&hs->inflight, 1, memory_order_acq_rel);
		(void)found;
	}
	if (!handled)
		h_chain(hs, sig, si, uc);
}

/* ------------------------------------------------------------------------ */
/* The monitor's side                                                       */
/* ------------------------------------------------------------------------ */

static void install_ours(struct hstate *hs, const struct sigaction *prev)
{
	struct sigaction sa;
	unsigned int idx = atomic_load(&hs->prev_idx) & 1;

	/* the copy the handler does not read now, then switch */
	hs->prev[idx ^ 1] = *prev;
	atomic_store_explicit(&hs->prev_idx, idx ^ 1, memory_order_release);
	atomic_store_explicit(&hs->prev_dfl, 0, memory_order_release);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsegv;
	/* SA_NODEFER: a fault inside the chained handler on an armed page comes
	 * back here; SA_ONSTACK: a thread with an alternate stack (a stack
	 * overflow handler) gets the handler there; SA_RESTART for the chained
	 * handler's sake */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

static bool is_ours(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigsegv;
}

/*
 * In a fork()ed child: the child's copies of armed pages are restored at
 * once (nobody in the child will ever disarm them), the tables withdrawn
 * from the handler, and the application's disposition put back, as if
 * libdamon had never been there. Runs in the child's only thread, between
 * fork() and the application's code.
 */
static void atfork_child(void)
{
	struct hstate *hs = atomic_load(&g_hs);
	struct sigaction cur;
	int fd;

	if (!hs)
		return;
	for (int i = 0; i < MAX_TABLES; i++) {
		struct dm_fault_table *t = atomic_load(&hs->tables[i]);

		if (!t)
			continue;
		for (size_t k = 0; k <= t->mask; k++) {
			struct slot *s = &t->slots[k];
			uint32_t st = atomic_load(&s->state);
			uint64_t p = atomic_load(&s->page);

			if (p &&
			    (st == S_ARMED || st == S_HALF || st == S_FIRING || st == S_DISARMING))
				h_mprotect(p, PAGE_SZ, (int)s->prot);
		}
		atomic_store(&hs->tables[i], NULL);
	}
	/* the maps fd shows the parent's address space: close the child's copy,
	 * which nothing would close otherwise (one more fd in every child) */
	fd = atomic_exchange(&hs->maps_fd, -1);
	if (fd >= 0)
		close(fd);
	if (sigaction(SIGSEGV, NULL, &cur) == 0 && is_ours(&cur))
		sigaction(SIGSEGV, &hs->prev[atomic_load(&hs->prev_idx) & 1], NULL);
	reg.installed = false;
	reg.users = 0;
	reg.pid = 0;
	pthread_mutex_init(&reg.lock, NULL);
	atomic_store(&g_hs, NULL); /* the child starts afresh if it joins */
	/* and so does the copy of the parent's state: our handler, if an
	 * application handler still chains to it, finds g_hs NULL and returns */
	munmap(hs, sizeof(*hs));
}

int dm_fault_sig_probe(struct dm_err *err)
{
	struct dm_procmap_query q;
	int fd;
	long r;

	if (!DM_FAULT_ARCH_OK)
		return dm_err_set(err, -EOPNOTSUPP,
				  "fault: reads the page-fault error code of x86-64 only");
	fd = DM_FAIL(EMFILE) ? -1 : open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dm_err_set(err, -errno, "fault: cannot open /proc/self/maps: %s",
				  strerror(errno));
	r = h_query(fd, (uint64_t)(uintptr_t)&fd, &q);
	close(fd);
	if (r == -ENOTTY || r == -EINVAL)
		return dm_err_set(err, -EOPNOTSUPP,
				  "fault: this kernel has no PROCMAP_QUERY (Linux >= 6.11), which "
				  "fault needs to tell its own page protections from the "
				  "application's");
	if (r < 0)
		return dm_err_set(err, (int)r, "fault: PROCMAP_QUERY failed: %s",
				  strerror((int)-r));
	return 0;
}

static struct hstate *hs_get(struct dm_err *err)
{
	struct hstate *hs = atomic_load(&g_hs);
	int fd;

	if (hs && reg.pid == getpid())
		return hs;
	hs = DM_FAIL(ENOMEM) ? MAP_FAILED
			     : mmap(NULL, sizeof(*hs), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hs == MAP_FAILED) {
		dm_err_set(err, -errno, "fault: cannot map the handler's state: %s",
			   strerror(errno));
		return NULL;
	}
	fd = DM_FAIL(EMFILE) ? -1 : open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		dm_err_set(err, -errno, "fault: cannot open /proc/self/maps: %s", strerror(errno));
		munmap(hs, sizeof(*hs));
		return NULL;
	}
	atomic_store(&hs->maps_fd, fd);
	reg.pid = getpid();
	atomic_store(&g_hs, hs);
	return hs;
}

int dm_fault_join(struct dm_fault_table **ret, size_t max_pages, struct dm_err *err)
{
	struct dm_fault_table *t = NULL;
	struct hstate *hs;
	struct sigaction cur;
	size_t cap = 64, sz;
	int idx = -1, r = 0;

	while (cap < max_pages * 2 + 16)
		cap *= 2;
	sz = sizeof(*t) + cap * sizeof(struct slot);
	pthread_mutex_lock(&reg.lock);
	hs = hs_get(err);
	if (!hs) {
		r = err->code;
		goto out;
	}
	for (int i = 0; i < MAX_TABLES; i++)
		if (!atomic_load(&hs->tables[i])) {
			idx = i;
			break;
		}
	if (idx < 0) {
		r = dm_err_set(err, -EMFILE, "fault: at most %d fault contexts per process",
			       MAX_TABLES);
		goto out;
	}
	t = DM_FAIL(ENOMEM)
		    ? MAP_FAILED
		    : mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED) {
		t = NULL;
		r = dm_err_set(err, -errno, "fault: cannot map a table of %zu pages: %s", cap,
			       strerror(errno));
		goto out;
	}
	t->cap = cap;
	t->mask = cap - 1;
	t->map_sz = sz;
	t->pid = getpid();
	t->index = (uint32_t)idx;
	if (!reg.atfork) {
		if ((DM_FAIL(ENOMEM) ? ENOMEM : pthread_atfork(NULL, NULL, atfork_child)) != 0) {
			r = dm_err_set(err, -ENOMEM, "fault: pthread_atfork failed");
			goto out;
		}
		reg.atfork = true;
	}
	if (!reg.installed) {
		if ((DM_FAIL(EINVAL) ? -1 : sigaction(SIGSEGV, NULL, &cur)) < 0) {
			r = dm_err_set(err, -errno, "fault: cannot read the SIGSEGV disposition");
			goto out;
		}
		if (!is_ours(&cur))
			install_ours(hs, &cur);
		reg.installed = true;
	}
	atomic_store_explicit(&hs->tables[idx], t, memory_order_release);
	reg.users++;
out:
	pthread_mutex_unlock(&reg.lock);
	if (r && t)
		munmap(t, sz);
	if (!r)
		*ret = t;
	return r;
}

int dm_fault_recheck(void)
{
	struct hstate *hs;
	struct sigaction cur;
	int taken = 0;

	pthread_mutex_lock(&reg.lock);
	hs = atomic_load(&g_hs);
	if (hs && reg.installed && sigaction(SIGSEGV, NULL, &cur) == 0 && !is_ours(&cur)) {
		install_ours(hs, &cur);
		reg.retaken++;
		taken = 1;
	}
	pthread_mutex_unlock(&reg.lock);
	return taken;
}

bool dm_fault_own_page(uint64_t page)
{
	struct hstate *hs = atomic_load(&g_hs);

	if (page == page_of((uint64_t)(uintptr_t)&g_hs))
		return true;
	if (!hs)
		return false;
	if (page >= (uint64_t)(uintptr_t)hs && page < (uint64_t)(uintptr_t)hs + sizeof(*hs))
		return true;
	for (int i = 0; i < MAX_TABLES; i++) {
		struct dm_fault_table *t = atomic_load(&hs->tables[i]);
		uint64_t a = (uint64_t)(uintptr_t)t;

		if (t && page >= page_of(a) && page < a + t->map_sz)
			return true;
	}
	return false;
}

/* A free slot for @page (or its own, when drawn again), or NULL. */
static struct slot *slot_for(struct dm_fault_table *t, uint64_t page)
{
	for (size_t i = hash_page(page, t->mask), n = 0; n <= t->mask; i = (i + 1) & t->mask, n++) {
		uint64_t p = atomic_load(&t->slots[i].page);

		if (p == page || !p)
			return &t->slots[i];
	}
	return NULL;
}

int dm_fault_arm(struct dm_fault_table *t, uint64_t page, size_t nr_pages, int prot)
{
	struct slot *s;
	size_t k;

	/* Every slot first, then one mprotect for the run: a fault on any of
	 * them finds its slot. */
	for (k = 0; k < nr_pages; k++) {
		uint64_t p = page + k * PAGE_SZ;

		s = slot_for(t, p);
		if (!s || (atomic_load(&s->page) == p && atomic_load(&s->state) != S_FREE))
			break; /* full, or drawn twice in one sample: not armed again */
		s->prot = (uint32_t)prot;
		atomic_store(&s->how, 0);
		atomic_store(&s->cpu, -1);
		atomic_store(&s->node, -1);
		atomic_store(&s->state, S_ARMED);
		atomic_store_explicit(&s->page, p, memory_order_release);
	}
	if (!k)
		return -ENOSPC;
	if ((DM_FAIL(ENOMEM) ? -1 : mprotect((void *)(uintptr_t)page, k * PAGE_SZ, PROT_NONE)) <
	    0) {
		int e = -errno;

		for (size_t j = 0; j < k; j++)
			atomic_store(&slot_for(t, page + j * PAGE_SZ)->state, S_FREE);
		return e;
	}
	return (int)k;
}

int dm_fault_seen(const struct dm_fault_table *t, uint64_t page, struct dm_fault_seen *ret)
{
	struct slot *s = h_find((struct dm_fault_table *)t, page);
	uint32_t st;

	if (!s)
		return -ENOENT;
	st = atomic_load_explicit(&s->state, memory_order_acquire);
	if (st == S_FREE)
		return -ENOENT;
	ret->how = atomic_load(&s->how);
	ret->cpu = atomic_load(&s->cpu);
	ret->node = atomic_load(&s->node);
	ret->lost = st == S_LOST;
	return 0;
}

/* Restore one slot's page if it is still (half) armed by libdamon. */
static void disarm_slot(struct hstate *hs, struct slot *s)
{
	uint64_t page = atomic_load(&s->page);

	for (;;) {
		uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == S_FIRING) {
			sched_yield(); /* a handler is restoring it: wait for it */
			continue;
		}
		if (st != S_ARMED && st != S_HALF) {
			atomic_store(&s->state, S_FREE);
			return;
		}
		if (!atomic_compare_exchange_strong(&s->state, &st, S_DISARMING))
			continue;
		if (h_vma_ours(hs, page, st == S_HALF)) {
			mprotect((void *)(uintptr_t)page, PAGE_SZ, (int)s->prot);
		} else {
			atomic_fetch_add(&hs->lost, 1);
		}
		atomic_store_explicit(&s->state, S_FREE, memory_order_release);
		return;
	}
}

void dm_fault_disarm(struct dm_fault_table *t, uint64_t start, uint64_t end)
{
	struct hstate *hs = atomic_load(&g_hs);
	bool all = start == 0 && end == UINT64_MAX;

	if (!t || !hs || t->pid != getpid())
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		struct slot *s = &t->slots[i];
		uint64_t p = atomic_load(&s->page);

		if (p && p >= start && p < end)
			disarm_slot(hs, s);
	}
	if (!all)
		return; /* freed slots stay as tombstones: other chains go through them */
	/* Nothing armed now: the table may start empty (a handler looking a page
	 * up meanwhile finds nothing and retries the access, which the mapping
	 * now allows). */
	for (size_t i = 0; i <= t->mask; i++)
		atomic_store_explicit(&t->slots[i].page, 0, memory_order_release);
}

size_t dm_fault_nr_armed(const struct dm_fault_table *t)
{
	size_t n = 0;

	for (size_t i = 0; t && i <= t->mask; i++) {
		uint32_t st = atomic_load(&t->slots[i].state);

		n += atomic_load(&t->slots[i].page) && (st == S_ARMED || st == S_HALF);
	}
	return n;
}

void dm_fault_leave(struct dm_fault_table *t)
{
	struct hstate *hs;
	struct sigaction cur;

	if (!t)
		return;
	pthread_mutex_lock(&reg.lock);
	hs = atomic_load(&g_hs);
	if (t->pid == getpid() && hs) {
		dm_fault_disarm(t, 0, UINT64_MAX);
		atomic_store_explicit(&hs->tables[t->index], NULL, memory_order_release);
		/* a handler that read the table before it left may still walk it */
		while (atomic_load_explicit(&hs->inflight, memory_order_acquire))
			sched_yield();
		if (reg.users)
			reg.users--;
		if (!reg.users && reg.installed) {
			/* Last one out: put the chained handler back, if ours is the
			 * one in place (an application that installed its own since
			 * keeps it, and it may chain to ours, which stays valid and
			 * passes everything on). */
			if (sigaction(SIGSEGV, NULL, &cur) == 0 && is_ours(&cur))
				sigaction(SIGSEGV, &hs->prev[atomic_load(&hs->prev_idx) & 1], NULL);
			reg.installed = false;
		}
	}
	pthread_mutex_unlock(&reg.lock);
	munmap(t, t->map_sz);
}

void dm_fault_sig_stats(struct dm_fault_sig_stats *ret)
{
	struct hstate *hs = atomic_load(&g_hs);

	memset(ret, 0, sizeof(*ret));
	if (!hs)
		return;
	ret->handled = atomic_load(&hs->handled);
	ret->chained = atomic_load(&hs->chained);
	ret->spurious = atomic_load(&hs->spurious);
	ret->lost = atomic_load(&hs->lost);
	pthread_mutex_lock(&reg.lock);
	ret->retaken = reg.retaken;
	pthread_mutex_unlock(&reg.lock);
}
