#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# Build the libFuzzer targets of tests/fuzz (clang, ASan + UBSan,
# -Dfuzz=enabled) and run each one, then print a table: target, executions,
# seconds, executions per second, coverage (libFuzzer's cov: and ft:),
# corpus size, crashes. Ends with "fuzz: N passed, N failed" (a target
# passes when it ran without a crash, a leak, a timeout or a sanitizer
# report).
#
#   scripts/fuzz.sh [--runs N] [--time SECONDS] [--jobs J] [--build DIR] [TARGET...]
#
#   --runs N      executions per target (default 10000000)
#   --time S      at most S seconds per target (CI: 60); with --runs, a
#                 target stops at whichever comes first
#   --jobs J      targets run side by side (default 1)
#   --build DIR   the fuzzing build directory (default build-fuzz)
#   TARGET        maps, proc, ... (default: every target built)
#
# The corpus a run grows is kept in DIR/fuzz-out/TARGET/corpus (the seeds
# in tests/fuzz/corpus stay as they are); an input that crashed is saved in
# DIR/fuzz-out/TARGET/crashes and its log in DIR/fuzz-out/TARGET/log: add
# it to tests/fuzz/corpus/TARGET once the bug is fixed.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

runs=10000000 secs="" jobs=1 build=build-fuzz targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2 ; shift 2 ;;
	--time) secs=$2 ; shift 2 ;;
	--jobs) jobs=$2 ; shift 2 ;;
	--build) build=$2 ; shift 2 ;;
	-h | --help) sed -n '3,23p' "$0" ; exit 0 ;;
	-*) echo "fuzz.sh: unknown option $1" >&2 ; exit 2 ;;
	*) targets+=("$1") ; shift ;;
	esac
done

scripts/deps.sh || exit 1

py=disabled
command -v swig >/dev/null && python3 -c 'import sysconfig' 2>/dev/null && py=enabled
if [ -d "$build" ]; then
	setup=(meson setup --reconfigure "$build")
else
	setup=(meson setup "$build")
fi
echo "== $build: clang, -Dfuzz=enabled, address + undefined sanitizers"
CC=clang CXX=clang++ "${setup[@]}" -Dfuzz=enabled -Dtests=disabled -Dpython=$py -Dman=false \
	-Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true >"$build.setup.log" 2>&1 ||
	{ cat "$build.setup.log"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
ninja -C "$build" >"$build.build.log" 2>&1 ||
	{ tail -n 40 "$build.build.log"; echo "fuzz: 0 passed, 1 failed"; exit 1; }

if [ ${#targets[@]} = 0 ]; then
	for exe in "$build"/tests/fuzz/fuzz-*; do
		[ -f "$exe" ] && [ -x "$exe" ] && targets+=("${exe##*/fuzz-}")
	done
fi

out=$top/$build/fuzz-out
# The scratch directories of this run, on tmpfs when there is one (see
# run_one); removed at the end, and on Ctrl-C or TERM with the fuzzers.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	shm=$(mktemp -d /dev/shm/libdamon-fuzz.XXXXXX) || exit 1
else
	shm=$out/tmp
	mkdir -p "$shm"
fi
stop_all() {
	for j in $(jobs -p); do
		pkill -TERM -P "$j"
		kill -TERM "$j"
	done 2>/dev/null
	wait
	exit 130
}
trap 'rm -rf "$shm"' EXIT
trap stop_all INT TERM

# One target: its own corpus, crash directory, scratch directory and log.
run_one() {
	local t=$1 dir=$out/$1 exe=$top/$build/tests/fuzz/fuzz-$1 start end leaks tmp
	local -a limit extra=()

	rm -rf "$dir/crashes" "$dir/tmp"
	mkdir -p "$dir/corpus" "$dir/crashes"
	# The targets that read files write an input's files into a scratch
	# directory: on tmpfs that is 5x faster for ksysfs than on this
	# disk's ext4 (580 vs 2987 executions a second).
	tmp=$shm/$t
	mkdir -p "$tmp"
	limit=(-runs="$runs")
	[ -n "$secs" ] && limit+=(-max_total_time="$secs")
	# CPython keeps objects alive until exit by design: leaks are not
	# judged in the Python target (its C conversions are, by ASan)
	leaks=1
	[ "$t" = python ] && leaks=0 extra=(-detect_leaks=0)
	start=$(date +%s.%N)
	TMPDIR=$tmp ASAN_OPTIONS=abort_on_error=1:detect_leaks=$leaks \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$exe" "${limit[@]}" "${extra[@]}" -print_final_stats=1 -max_len=16384 -timeout=30 \
		-rss_limit_mb=2048 -artifact_prefix="$dir/crashes/" \
		"$dir/corpus" "$top/tests/fuzz/corpus/$t" >"$dir/log" 2>&1
	echo $? >"$dir/rc"
	end=$(date +%s.%N)
	echo "$start $end" >"$dir/time"
	rm -rf "$tmp"
}

each="$runs runs${secs:+ or $secs s}"
echo "== running ${#targets[@]} targets, $jobs at a time, $each each"
for t in "${targets[@]}"; do
	if [ ! -x "$build/tests/fuzz/fuzz-$t" ]; then
		echo "fuzz.sh: no target $t in $build/tests/fuzz" >&2
		exit 2
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	run_one "$t" &
done
wait

passed=0 failed=0
printf '%-14s %12s %8s %9s %7s %8s %7s %8s\n' target execs seconds exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
	dir=$out/$t log=$out/$t/log
	execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n1)
	last=$(grep -E '^#[0-9]+' "$log" | grep -E ' cov: ' | tail -n1)
	cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
	ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
	corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
	crashes=$(find "$dir/crashes" -type f | wc -l)
	read -r s e <"$dir/time"
	secs_run=$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.0f", e - s}')
	rate=$(awk -v n="${execs:-0}" -v s="$secs_run" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}')
	printf '%-14s %12s %8s %9s %7s %8s %7s %8s\n' "$t" "${execs:-?}" "$secs_run" "$rate" \
		"${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
	if [ "$(cat "$dir/rc")" = 0 ] && [ "$crashes" = 0 ] && [ -n "$execs" ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "  $t failed (exit $(cat "$dir/rc")); the end of $log:" >&2
		grep -E 'ERROR|SUMMARY|property failed|runtime error|==[0-9]+==' "$log" | head -n 8 >&2
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
