#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The soak bench (tests/soak.c, doc/soak.md): an hour of libdamon contexts
# created, started, committed to, paused, resumed, stopped and freed, with
# mappings and children coming and going, on the host (uffd_wp: the bench's
# own memory) and in the VM (page_idle on the suite's own kernel: children
# monitored by pid). Each run ends with a verdict table: the RSS, open fds
# and threads of the monitoring process must stay flat and no call may fail
# unexpectedly. Prints both tables; exit 0 when both pass. Not part of the
# test suite.
#
#   scripts/soak.sh [options] [-- SOAK-OPTIONS...]
set -eu
cd "$(dirname "$0")/.."

usage() {
	cat <<EOF
usage: scripts/soak.sh [options] [-- SOAK-OPTIONS...]
  --duration S       seconds of each soak (default 3600)
  --host-duration S  the host's alone;  --vm-duration S  the VM's alone
  --sequential       the host soak, then the VM's (default: both at once)
  --only host|vm     one of them
  --build DIR        meson build directory (default build; set up if missing)
  --results DIR      where the logs go (default BUILD/soak)
SOAK-OPTIONS go to both runs of the soak program (tests/soak.c: --seed N,
--rss-bound KIB, --interval S, ...). The VM boots with a timeout of its
duration plus 600 s.
EOF
}

host_s=3600 vm_s=3600 parallel=1 only="" build=build results=""
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) host_s=${2:?}; vm_s=$2; shift ;;
	--host-duration) host_s=${2:?}; shift ;;
	--vm-duration) vm_s=${2:?}; shift ;;
	--sequential) parallel=0 ;;
	--only) only=${2:?}; shift ;;
	--build) build=${2:?}; shift ;;
	--results) results=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
case "$only" in "" | host | vm) ;; *) usage >&2; exit 2 ;; esac
results=${results:-$build/soak}

scripts/deps.sh $([ "$only" = host ] || echo --vm)
[ -f "$build/build.ninja" ] || meson setup "$build" -Dtests=enabled >/dev/null
ninja -C "$build" tests/soak $([ "$only" = host ] || echo tests/vm/soak) >/dev/null
rm -rf "$results"
mkdir -p "$results"

# Progress lines as they come, "[host] " or "[vm] " in front; the whole
# output in RESULTS/host.log and RESULTS/vm.log.
run_host() {
	# a hung soak ends as a failure, not as a silent wait
	timeout -k 10 $((host_s + 600)) "$build/tests/soak" --backend uffd_wp \
		--duration "$host_s" "$@" 2>&1 | tee "$results/host.log" | sed -u 's/^/[host] /'
}

run_vm() {
	tests/vm/run-vm.sh --kernel self --smp 1 --timeout $((vm_s + 600)) --keep \
		--results "$results/vm-run" --name soak -v -- \
		"$build/tests/vm/soak" --backend page_idle --duration "$vm_s" "$@" 2>&1 |
		sed -u 's/\r$//' | grep --line-buffered -v -e '^\s*\[ *[0-9.]*\]' -e '^@@LIBDAMON' |
		tee "$results/vm.log" | sed -u 's/^/[vm] /'
	# the guest's own log (kept) is the record: the stream may miss lines
	g=$(ls -t "$results"/vm-run/*/guest-*.log 2>/dev/null | head -n 1)
	if [ -n "$g" ]; then
		sed 's/\r$//' "$g" | grep -v -e '^\s*\[ *[0-9.]*\]' -e '^@@LIBDAMON' >"$results/vm.log"
	fi
}

echo "soak: host ${host_s} s, VM ${vm_s} s, $([ $parallel = 1 ] && echo "at once" ||
	echo "one after the other"); logs in $results"
if [ "$only" = host ]; then
	run_host "$@"
elif [ "$only" = vm ]; then
	run_vm "$@"
elif [ $parallel = 1 ]; then
	run_host "$@" &
	run_vm "$@" &
	wait
else
	run_host "$@"
	run_vm "$@"
fi

# The tables, one after the other.
status=0
for w in host vm; do
	[ -z "$only" ] || [ "$only" = $w ] || continue
	echo
	echo "== $w: $(grep -m 1 "^soak:" "$results/$w.log" || echo "no soak output")"
	if grep -q '^SOAK PASS$' "$results/$w.log"; then
		sed -n '/^verdict after/,/^SOAK /p' "$results/$w.log"
	else
		status=1
		if grep -q '^verdict after' "$results/$w.log"; then
			sed -n '/^verdict after/,/^SOAK /p' "$results/$w.log"
		else
			echo "no verdict: the run ended early; its last lines:"
			tail -n 15 "$results/$w.log"
		fi
	fi
done
exit $status
