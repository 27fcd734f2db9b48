#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The VM benches in full, under qemu, printing their tables; not part of the
# test suite (which runs short forms: tests/vm/suite.list).
#
#   accuracy  tests/vm/accuracy.c in the suite's own kernel: every phase,
#             4 KiB pages and transparent huge pages, at a budget that lets
#             libdamon take what the kdamond takes (1000 permille) and at
#             the default one with phases timed in seconds, as a user's
#             workload changes (doc/backends.md, "Accuracy"). ~15 minutes.
#   tiering   tests/vm/tiering.c in a two-node guest: how fast migrate_hot
#             follows a moving hot set, by kernel DAMON (the suite's kernel
#             and Debian's 7.2, with and without young-page filters),
#             page_idle and uffd_wp (doc/tiering.md). ~16 minutes.
#
#   scripts/bench-vm.sh [BUILD_DIR [BENCH...]]   (default: build, every bench;
#                                                 built if needed)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift
benches=${*:-accuracy tiering}
scripts/deps.sh --vm
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" tests/vm/accuracy tests/vm/tiering >/dev/null
n=0
# vm KERNEL [run-vm.sh options] -- PROGRAM [ARGS]: its output, no kernel lines.
vm() {
	local kernel=$1
	shift
	n=$((n + 1))
	echo "== $kernel: ${*##*/}"
	rm -rf "$build/bench-vm/$n"
	tests/vm/run-vm.sh --kernel "$kernel" --smp 1 --timeout 1500 --keep \
		--results "$build/bench-vm/$n" "$@" >/dev/null 2>&1 || true
	# the last boot's log (a guest that never reached the test boots twice)
	grep -hv -e '^\s*\[' -e '^\.\.' -e '^@@LIBDAMON' "$(ls "$build/bench-vm/$n"/*/guest-*.log | tail -n 1)" || true
	echo
}

accuracy() {
	local bin=$build/tests/vm/accuracy
	vm self -- "$bin" --budget 1000
	vm self -- "$bin" --budget 1000 --thp
	vm self -- "$bin" --child --budget 1000 --backends kernel,page_idle,soft_dirty
	# At the default budget, phases timed in seconds (counted in intervals,
	# page_idle's would last 30 min here: 24 s per aggregation under emulation).
	vm self -- "$bin" --child --seconds 3 --backends kernel,page_idle
	vm self -- "$bin" --seconds 3 --backends kernel,uffd_wp,fault
}

tiering() {
	local bin=$build/tests/vm/tiering
	local k72=(7.2 --numa --append damon_stat.enabled=N --)
	# 8 moves, 10 s at each place; the user-space backends may take what
	# the kdamond takes (budget 1000)
	vm self --numa -- "$bin" --budget 1000
	vm "${k72[@]}" "$bin" --budget 1000 --backends kernel,uffd_wp
	# the kernel's tiering recipe: young-page filters on both schemes
	vm "${k72[@]}" "$bin" --young --backends kernel
	# the library's default budget (2%): uffd_wp as above; page_idle's
	# aggregations stretch to ~10-25 s here, so a minute at each place
	vm self --numa -- "$bin" --backends uffd_wp
	vm self --numa -- "$bin" --backends page_idle --moves 3 --period 60
}

for b in $benches; do
	case $b in
	accuracy | tiering) $b ;;
	*)
		echo "bench-vm: no bench $b (accuracy, tiering)" >&2
		exit 2
		;;
	esac
done
