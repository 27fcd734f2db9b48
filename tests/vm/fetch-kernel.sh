#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# fetch-kernel.sh KERNEL... — download Debian's kernels into the VM cache
# (6.1, 6.12, 7.2; see README.md), or build the suite's own (self, with
# build-kernel.sh), and print, per kernel, its directory.
# Exit 77 (99 under CI=true) when a kernel cannot be had.
set -u
. "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || set -- 6.1 6.12 7.2
for k in "$@"; do
	d=$(vm_fetch_kernel "$k") || exit $?
	echo "$k $(cat "$d/kver") $d"
done
