#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The whole test suite, as CI runs it:
#   1. build with warnings as errors (Python bindings on) and run every test;
#   2. the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the VM suite: Debian's kernels under qemu (fetched and cached outside
#      the tree on first use).
# Installs what it needs with apt first. Ends with "N passed, N failed".
# Environment: LIBDAMON_SKIP_VM=1 skips step 3 (never in CI).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh --vm || exit 1

passed=0 failed=0 skipped=0
# Add up meson's summary (Ok / Fail / Skipped / Timeout lines) of one run.
count_meson() {
	local log=$1 ok fail skip to
	ok=$(awk '/^Ok:/ {print $2}' "$log" | tail -n1)
	fail=$(awk '/^Fail:/ {print $2}' "$log" | tail -n1)
	skip=$(awk '/^Skipped:/ {print $2}' "$log" | tail -n1)
	to=$(awk '/^Timeout:/ {print $2}' "$log" | tail -n1)
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${fail:-0} + ${to:-0}))
	skipped=$((skipped + ${skip:-0}))
	[ -n "$ok" ] || failed=$((failed + 1)) # no summary: the run itself broke
}

run_build() {
	local dir=$1
	shift
	echo "== $dir: meson setup $*"
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
	else
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
	fi || { cat "$dir.setup.log"; failed=$((failed + 1)); return 1; }
	ninja -C "$dir" >"$dir.build.log" 2>&1 || {
		tail -n 60 "$dir.build.log"
		failed=$((failed + 1))
		return 1
	}
	meson test -C "$dir" --print-errorlogs 2>&1 | tee "$dir.test.log" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):'
	count_meson "$dir.test.log"
}

# build-ci is the release shape (its no-fault-hook test checks that the
# library carries no fault injection hook); build-asan turns the hook on, so
# that every call site failing once is also seen by ASan and LSan
# (tests/test-faultinj.c).
run_build build-ci -Dwerror=true -Dtests=enabled -Dpython=enabled -Db_sanitize=none
run_build build-asan -Dwerror=true -Dtests=enabled -Dpython=disabled \
	-Db_sanitize=address,undefined -Db_lundef=false -Dfault_injection=true

if [ "${LIBDAMON_SKIP_VM:-0}" = 1 ] && [ "${CI:-}" != true ]; then
	echo "== VM suite skipped (LIBDAMON_SKIP_VM=1)"
else
	echo "== VM suite"
	tests/vm/suite.sh --bindir "$top/build-ci/tests/vm" --results "$top/build-ci/vm-results" \
		2>&1 | tee build-ci/vm.log
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' build-ci/vm.log | tail -n1)
	if [ -n "$line" ]; then
		p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
		f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
		s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	else
		echo "VM suite printed no summary"
		failed=$((failed + 1))
	fi
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
