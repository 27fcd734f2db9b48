#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The accuracy bench (tests/vm/accuracy.c) in full, in the suite's own kernel
# under qemu: every phase, 4 KiB pages and transparent huge pages, at a budget
# that lets libdamon take what the kdamond takes (1000 permille) and at the
# default one with phases timed in seconds, as a user's workload changes.
# Prints the tables (doc/backends.md, "Accuracy"). Takes ~15 minutes; not
# part of the test suite (which runs a short form: tests/vm/suite.list).
#
#   scripts/bench-vm.sh [BUILD_DIR]     (default: build; built if needed)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
scripts/deps.sh --vm
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" tests/vm/accuracy >/dev/null
bin=$build/tests/vm/accuracy
n=0
run() {
	n=$((n + 1))
	echo "== accuracy $*"
	rm -rf "$build/bench-vm/$n"
	tests/vm/run-vm.sh --kernel self --smp 1 --timeout 1500 --keep \
		--results "$build/bench-vm/$n" -- "$bin" "$@" >/dev/null 2>&1 || true
	grep -hv -e '^\s*\[' -e '^@@LIBDAMON' "$build/bench-vm/$n"/*/guest-1.log
	echo
}
run --budget 1000
run --budget 1000 --thp
run --child --budget 1000 --backends kernel,page_idle,soft_dirty
# At the default budget, phases timed in seconds (counted in intervals,
# page_idle's would last 30 min here: 24 s per aggregation under emulation).
run --child --seconds 3 --backends kernel,page_idle
run --seconds 3 --backends kernel,uffd_wp,fault
