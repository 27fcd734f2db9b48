/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * What the fault backend needs from the kernel and the CPU, callable from a
 * signal handler: raw system calls that never touch errno (or any other
 * thread-local storage: a handler must not read memory that may itself be
 * armed), the PROCMAP_QUERY ioctl (Linux 6.11; the build machine's headers
 * predate it: written from include/uapi/linux/fs.h), and the x86-64
 * page-fault error code in the signal context.
 */
#ifndef DAMON_OPS_FAULT_ABI_H
#define DAMON_OPS_FAULT_ABI_H

#include <stdint.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define DM_FAULT_ARCH_OK 1
#else
#define DM_FAULT_ARCH_OK 0
#endif

struct dm_procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start;
	uint64_t vma_end;
	uint64_t vma_flags;
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t vma_name_size;
	uint32_t build_id_size;
	uint64_t vma_name_addr;
	uint64_t build_id_addr;
};

#define DM_PROCMAP_QUERY_VMA_READABLE	0x01
#define DM_PROCMAP_QUERY_VMA_WRITABLE	0x02
#define DM_PROCMAP_QUERY_VMA_EXECUTABLE 0x04
#define DM_PROCMAP_QUERY_VMA_SHARED	0x08
/* _IOWR('f', 17, struct procmap_query) */
#define DM_PROCMAP_QUERY \
	((3UL << 30) | ((unsigned long)sizeof(struct dm_procmap_query) << 16) | ('f' << 8) | 17)

/* x86-64 page-fault error code bits (arch/x86/include/asm/trap_pf.h). */
#define DM_X86_PF_WRITE (1UL << 1)
#define DM_X86_PF_INSTR (1UL << 4)

#if DM_FAULT_ARCH_OK
/* A system call; returns the kernel's value (-errno on failure). */
static inline long dm_raw_syscall4(long nr, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}
#else
/* Elsewhere the backend is refused; this only keeps the code compiling. */
#include <errno.h>
#include <unistd.h>
static inline long dm_raw_syscall4(long nr, long a, long b, long c, long d)
{
	long r = syscall(nr, a, b, c, d);

	return r < 0 ? -errno : r;
}
#endif

static inline long dm_raw_syscall3(long nr, long a, long b, long c)
{
	return dm_raw_syscall4(nr, a, b, c, 0);
}

#endif
