// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * vm-exit CODE — end the test VM with an exit status the host can see.
 *
 * qemu runs with "-device isa-debug-exit,iobase=0xf4,iosize=0x04": a byte N
 * written to port 0xf4 makes qemu exit with status (N << 1) | 1. Debian
 * kernels have no /dev/port, so the port is opened with ioperm(), which
 * needs CONFIG_X86_IOPL_IOPERM and root. On failure this returns 1 and the
 * caller powers the guest off instead (the host then reads the status from
 * the console log).
 *
 * Built with "cc -static -O2 -o vm-exit vm-exit.c" by run-vm.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/io.h>

#define DEBUG_EXIT_PORT 0xf4

int main(int argc, char **argv)
{
	int code = argc > 1 ? atoi(argv[1]) : 0;

	if (ioperm(DEBUG_EXIT_PORT, 4, 1) < 0) {
		fprintf(stderr, "vm-exit: ioperm(0x%x): %s\n", DEBUG_EXIT_PORT, strerror(errno));
		return 1;
	}
	outb((unsigned char)code, DEBUG_EXIT_PORT);
	/* Only reached without the isa-debug-exit device. */
	fprintf(stderr, "vm-exit: no isa-debug-exit device at 0x%x\n", DEBUG_EXIT_PORT);
	return 1;
}
