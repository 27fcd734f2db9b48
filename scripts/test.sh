#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The whole test suite, as CI runs it:
#   1. build with warnings as errors (Python bindings on) and run every test;
#      then the unit suite again under valgrind memcheck (no error, no leak);
#   2. the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the tests that run threads built with ThreadSanitizer (clang);
#   4. every fuzz target of tests/fuzz for LIBDAMON_FUZZ_SECONDS (60) each,
#      two at a time (scripts/fuzz.sh: clang, libFuzzer, ASan + UBSan);
#   5. the VM suite: Debian's kernels under qemu (fetched and cached outside
#      the tree on first use).
# Installs what it needs with apt first. Ends with "N passed, N failed".
# Environment: LIBDAMON_SKIP_VM=1 skips step 5 (never in CI).
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

# run_build DIR SETUP-ARGS... [-- TEST-ARGS...]: set up, build, meson test.
run_build() {
	local dir=$1 arg
	local -a setup=() tests=()
	shift
	while [ $# -gt 0 ]; do
		arg=$1
		shift
		[ "$arg" = -- ] && { tests=("$@"); break; }
		setup+=("$arg")
	done
	set -- "${setup[@]}"
	echo "== $dir: ${CC:+CC=$CC }meson setup $*"
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
	meson test -C "$dir" --print-errorlogs "${tests[@]}" 2>&1 | tee "$dir.test.log" |
		grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):'
	count_meson "$dir.test.log"
}

# build-ci is the release shape (its no-fault-hook test checks that the
# library carries no fault injection hook); build-asan turns the hook on, so
# that every call site failing once is also seen by ASan and LSan
# (tests/test-faultinj.c).
t0=$(date +%s)
run_build build-ci -Dwerror=true -Dtests=enabled -Dpython=enabled -Db_sanitize=none

# The unit suite under memcheck. Suppressions are for third-party code only
# (tests/valgrind.supp says why for each); the uffd_wp tests skip, saying
# why (valgrind has no userfaultfd, no PAGEMAP_SCAN).
t1=$(date +%s)
echo "== build-ci: the unit suite under valgrind memcheck"
meson test -C build-ci --suite unit --timeout-multiplier 4 --print-errorlogs \
	--wrap="valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --suppressions=$top/tests/valgrind.supp --quiet" \
	2>&1 | tee build-ci.valgrind.log | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):'
count_meson build-ci.valgrind.log
t_valgrind=$(($(date +%s) - t1))

run_build build-asan -Dwerror=true -Dtests=enabled -Dpython=disabled \
	-Db_sanitize=address,undefined -Db_lundef=false -Dfault_injection=true

# ThreadSanitizer on the tests that run the library thread, readers,
# commits, pauses and goals from several threads, ranges set while the
# monitor runs, and the snapshot latch.
t1=$(date +%s)
TSAN_OPTIONS="second_deadlock_stack=1 exitcode=66" CC=clang \
	run_build build-tsan -Dwerror=true -Dtests=enabled -Dpython=disabled -Dman=false \
	-Db_sanitize=thread -Db_lundef=false -- threads api ranges snapshot core target-exit uffd layout
t_tsan=$(($(date +%s) - t1))

t1=$(date +%s)
scripts/fuzz.sh --time "${LIBDAMON_FUZZ_SECONDS:-60}" --jobs 2 2>&1 | tee build-fuzz.log
line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' build-fuzz.log | tail -n1)
if [ -n "$line" ]; then
	passed=$((passed + $(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')))
	failed=$((failed + $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')))
else
	echo "fuzz.sh printed no summary"
	failed=$((failed + 1))
fi
t_fuzz=$(($(date +%s) - t1))
# The three steps above, on the 2-CPU development machine with other work
# running: valgrind 84 s (9 unit tests, 1 skipped), ThreadSanitizer 304 s
# (173 s building, 131 s testing), fuzzing 473 s (about 160 s building, 9
# targets for 60 s two at a time): 14.4 minutes in all.
echo "== time: valgrind ${t_valgrind} s, ThreadSanitizer ${t_tsan} s, fuzzing ${t_fuzz} s" \
	"(all before the VM suite: $(($(date +%s) - t0)) s)"

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
