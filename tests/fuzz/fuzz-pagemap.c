// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * Page-table and page-frame entries (lib/ops/pagemap.c, and their meaning
 * in lib/ops/page_idle.c): /proc/PID/pagemap, /proc/kpageflags and the idle
 * page bitmap, served by an emulation whose contents and misbehaviour come
 * from the input, to the page_idle primitive (fvaddr or paddr) through its
 * vtable, and to the batched readers directly.
 *
 * Input: flags (paddr or not), the number of samples, the end of RAM (in
 * frames: the bitmap's last partial word and ENXIO past it), a script of
 * what each system call does (normal, short, EINTR, EIO, end of file), the
 * sample pages, then the entries: pagemap at prepare and at check (present
 * bit, PFN, flags), kpageflags (LRU, compound head/tail, huge, no page,
 * THP), idle bits.
 *
 * Properties: every call the primitive makes is one the kernel takes
 * (offsets and lengths in whole 8-byte entries, at most 4096 bytes); check()
 * returns the number of accessed samples or -errno and says 0, 1 or unknown
 * for each; the readers return at most the entries asked for and zeros for
 * those past the end of a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#include <damon/damon.h>

#include "core/region.h"
#include "ops/ops.h"
#include "ops/pagemap.h"

#define PID	    4321
#define VA	    0x10000000ULL
#define NR_PAGES    256	 /* pagemap entries of the window at VA */
#define NR_PFN	    1024 /* kpageflags entries */
#define MAX_SAMPLES 64

enum kind { K_OTHER, K_PAGEMAP, K_KPF, K_BITMAP };

static struct emu {
	uint64_t pm[2][NR_PAGES]; /* pagemap at prepare, at check */
	int phase;
	uint64_t kpf[NR_PFN];
	uint64_t idle[NR_PFN / 64 + 2];
	uint64_t end_pfn; /* frames of RAM: the bitmap's size */
	uint8_t script[16];
	size_t nr_script, at;
	ino_t ino[4];
	enum kind fd_kind[1024];
	bool fd_known[1024];
} emu;

static struct dm_ops_inst *inst[2]; /* fvaddr, paddr */
static struct dm_ops_target target[2];

/* The readers called directly get these instead of descriptors. */
#define FD_KPF	  (-100)
#define FD_BITMAP (-101)

static enum kind kind_of(int fd)
{
	struct stat st;

	if (fd == FD_KPF || fd == FD_BITMAP)
		return fd == FD_KPF ? K_KPF : K_BITMAP;
	if (fd < 0 || fd >= 1024)
		return K_OTHER;
	if (!emu.fd_known[fd]) {
		emu.fd_kind[fd] = K_OTHER;
		if (fstat(fd, &st) == 0)
			for (int k = K_PAGEMAP; k <= K_BITMAP; k++)
				if (st.st_ino == emu.ino[k])
					emu.fd_kind[fd] = (enum kind)k;
		emu.fd_known[fd] = true;
	}
	return emu.fd_kind[fd];
}

/* What the script says this call does: 0 as asked, else a failure. */
static int scripted(size_t *len)
{
	uint8_t op = emu.at < emu.nr_script ? emu.script[emu.at++] % 8 : 0;

	switch (op) {
	case 4: /* short, in whole entries as the kernel moves them */
		*len = *len / 2 & ~(size_t)7;
		return 0;
	case 5:
		errno = EINTR;
		return -1;
	case 6:
		errno = EIO;
		return -1;
	case 7: /* an end of file where there is none */
		*len = 0;
		return 0;
	default:
		return 0;
	}
}

static ssize_t emu_pread(int fd, void *buf, size_t len, off_t off, void *arg)
{
	enum kind k = kind_of(fd);
	const uint64_t *table;
	uint64_t idx = (uint64_t)off / 8, first = 0, n;

	FUZZ_CHECK(k != K_OTHER, "pread on fd %d", fd);
	FUZZ_CHECK(off >= 0 && off % 8 == 0 && len % 8 == 0 && len && len <= 4096,
		   "pread of %zu at %lld", len, (long long)off);
	if (scripted(&len) < 0)
		return -1;
	switch (k) {
	case K_PAGEMAP:
		table = emu.pm[emu.phase];
		first = VA / 4096;
		n = NR_PAGES;
		break;
	case K_KPF:
		table = emu.kpf;
		n = NR_PFN;
		break;
	default:
		/* the bitmap: the last partial word moves nothing, ENXIO past */
		if (idx > emu.end_pfn / 64) {
			errno = ENXIO;
			return -1;
		}
		table = emu.idle;
		n = emu.end_pfn / 64;
		break;
	}
	if (idx < first || idx - first >= n)
		return 0;
	if (len / 8 > n - (idx - first))
		len = (size_t)(n - (idx - first)) * 8;
	memcpy(buf, table + (idx - first), len);
	return (ssize_t)len;
}

static ssize_t emu_pwrite(int fd, const void *buf, size_t len, off_t off, void *arg)
{
	const uint64_t *v = buf;
	uint64_t idx = (uint64_t)off / 8;

	FUZZ_CHECK(kind_of(fd) == K_BITMAP, "pwrite on fd %d", fd);
	FUZZ_CHECK(off >= 0 && off % 8 == 0 && len % 8 == 0 && len && len <= 4096,
		   "pwrite of %zu at %lld", len, (long long)off);
	if (scripted(&len) < 0)
		return -1;
	if (idx > emu.end_pfn / 64) {
		errno = ENXIO;
		return -1;
	}
	if (idx >= emu.end_pfn / 64)
		return 0;
	if (len / 8 > emu.end_pfn / 64 - idx)
		len = (size_t)(emu.end_pfn / 64 - idx) * 8;
	len &= ~(size_t)7;
	for (size_t i = 0; i < len / 8; i++)
		emu.idle[idx + i] |= v[i];
	return (ssize_t)len;
}

static const struct dm_pfile_io emu_io = {.pread = emu_pread, .pwrite = emu_pwrite};

static ino_t ino_of(const char *dir, const char *rel)
{
	char p[1024];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (stat(p, &st) < 0)
		abort();
	return st.st_ino;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char proc[600], sys[600];
	static const char stat[] = "4321 (workload) S 1 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 "
				   "0 100 0 0\n";
	const char *dir = fuzz_scratch();
	struct dm_err err = {0};

	fuzz_mkdirs(dir, "proc/4321");
	fuzz_mkdirs(dir, "sys/kernel/mm/page_idle");
	fuzz_put(dir, "proc/4321/pagemap", "", 0);
	fuzz_put(dir, "proc/4321/stat", stat, sizeof(stat) - 1);
	fuzz_put(dir, "proc/kpageflags", "", 0);
	fuzz_put(dir, "sys/kernel/mm/page_idle/bitmap", "", 0);
	emu.ino[K_PAGEMAP] = ino_of(dir, "proc/4321/pagemap");
	emu.ino[K_KPF] = ino_of(dir, "proc/kpageflags");
	emu.ino[K_BITMAP] = ino_of(dir, "sys/kernel/mm/page_idle/bitmap");
	snprintf(proc, sizeof(proc), "%s/proc", dir);
	snprintf(sys, sizeof(sys), "%s/sys", dir);
	for (int i = 0; i < 2; i++) {
		struct dm_ops_cfg cfg = {.ops = i ? DAMON_OPS_PADDR : DAMON_OPS_FVADDR,
					 .proc_root = proc,
					 .sysfs_root = sys};

		target[i].pid = i ? 0 : PID;
		if (dm_page_idle_open_io(&inst[i], &cfg, &emu_io, &err) ||
		    dm_ops_page_idle.target_init(inst[i], &target[i], &err)) {
			fprintf(stderr, "fuzz-pagemap: %s\n", err.msg);
			abort();
		}
	}
	return 0;
}

/* An entry worth reading: mostly present pages of frames kpageflags has. */
static uint64_t pm_entry(uint64_t raw)
{
	if (!(raw & 3))
		return raw & 4 ? raw : 0; /* nothing, or anything at all */
	return DM_PM_PRESENT | (raw >> 2) % (NR_PFN + 64) | (raw & (DM_PM_SOFT_DIRTY | DM_PM_FILE));
}

static uint64_t kpf_entry(uint64_t raw)
{
	const uint64_t bits = DM_KPF_LRU | DM_KPF_COMPOUND_HEAD | DM_KPF_COMPOUND_TAIL |
			      DM_KPF_HUGE | DM_KPF_NOPAGE | DM_KPF_THP | DM_KPF_IDLE;

	return raw & 1 ? raw : raw & bits;
}

static void check_readers(struct fuzz_in *in)
{
	uint64_t idx[MAX_SAMPLES], out[MAX_SAMPLES], word[MAX_SAMPLES], val[MAX_SAMPLES];
	uint8_t ok[MAX_SAMPLES];
	size_t n = fuzz_u8(in) % MAX_SAMPLES, nw = 0;
	uint64_t w = 0;
	ssize_t got;

	emu.at = 0;
	for (size_t i = 0; i < n; i++)
		idx[i] = fuzz_bytes(in, 2) % (NR_PFN + 600);
	got = dm_pfile_read(FD_KPF, idx, n, out, &emu_io, NULL);
	if (got >= 0) {
		FUZZ_CHECK((size_t)got <= n, "%zd of %zu entries", got, n);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(idx[i] < NR_PFN || !out[i], "entry %zu past the end: %llx", i,
				   (unsigned long long)out[i]);
	}
	/* sorted, unique words, as the primitive passes them */
	for (size_t i = 0; i < n; i++) {
		w += 1 + fuzz_u8(in) % 4;
		word[nw] = w;
		val[nw++] = fuzz_bytes(in, 8);
	}
	emu.at = 0;
	got = dm_idle_bitmap_io(FD_BITMAP, fuzz_u8(in) & 1, word, val, ok, nw, &emu_io, NULL);
	if (got >= 0) {
		size_t moved = 0;

		for (size_t i = 0; i < nw; i++) {
			FUZZ_CHECK(ok[i] <= 1, "ok %u", ok[i]);
			moved += ok[i];
			FUZZ_CHECK(ok[i] || word[i] >= emu.end_pfn / 64 || emu.nr_script,
				   "word %llu not moved", (unsigned long long)word[i]);
		}
		FUZZ_CHECK(moved == (size_t)got, "%zu moved, %zd said", moved, got);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct dm_region v[MAX_SAMPLES];
	uint8_t flags = fuzz_u8(&in);
	int which = flags & 1, nr;
	size_t n = 1 + fuzz_u8(&in) % MAX_SAMPLES;
	uint64_t seed;

	emu.end_pfn = fuzz_bytes(&in, 2) % (NR_PFN + 100);
	emu.nr_script = fuzz_u8(&in) % (sizeof(emu.script) + 1);
	for (size_t i = 0; i < emu.nr_script; i++)
		emu.script[i] = fuzz_u8(&in);
	memset(v, 0, sizeof(v));
	for (size_t i = 0; i < n; i++) {
		uint64_t page = which ? fuzz_bytes(&in, 2) % (NR_PFN + 100) : fuzz_u8(&in);

		v[i].start = (which ? 0 : VA) + page * 4096;
		v[i].end = v[i].start + 4096;
		v[i].sampling_addr = v[i].start + fuzz_u8(&in);
	}
	/* the tables: the rest of the input, again and again, each word mixed
	 * with its place so that a short input still fills them unevenly */
	seed = fuzz_bytes(&in, 8);
	for (size_t i = 0; i < NR_PAGES * 2 + NR_PFN + NR_PFN / 64 + 2; i++) {
		uint64_t raw = in.left ? fuzz_bytes(&in, 8) : seed * (i + 1) ^ (seed >> 29);

		if (i < NR_PAGES * 2)
			emu.pm[i / NR_PAGES][i % NR_PAGES] = pm_entry(raw);
		else if (i < NR_PAGES * 2 + NR_PFN)
			emu.kpf[i - NR_PAGES * 2] = kpf_entry(raw);
		else
			emu.idle[i - NR_PAGES * 2 - NR_PFN] = raw;
	}

	emu.at = 0;
	emu.phase = 0;
	dm_ops_page_idle.prepare(inst[which], &target[which], v, n);
	/* the kernel's harvest: idle, but for the bits the input clears */
	for (size_t i = 0; i < sizeof(emu.idle) / 8; i++)
		emu.idle[i] = ~fuzz_bytes(&in, 8);
	emu.phase = 1;
	nr = dm_ops_page_idle.check(inst[which], &target[which], v, n);
	FUZZ_CHECK(nr >= -4095 && nr <= (int)n, "check returned %d of %zu", nr, n);
	if (nr >= 0) {
		int ones = 0;

		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(v[i].accessed <= DM_ACCESS_UNKNOWN, "sample %zu: %u", i,
				   v[i].accessed);
			ones += v[i].accessed == 1;
		}
		FUZZ_CHECK(ones == nr, "%d accessed, %d said", ones, nr);
	}
	check_readers(&in);
	return 0;
}
