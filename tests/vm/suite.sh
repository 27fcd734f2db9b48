#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# suite.sh — run a list of VM tests (default: suite.list next to this file)
# one after the other and print a summary ending in "N passed, N failed"
# (", N skipped" when some were). Exit 0 when nothing failed, 77 when
# everything was skipped, 1 otherwise.
#
#   suite.sh [--list FILE] [--bindir DIR] [--results DIR] [--kernel K]... [-v]
#
# --bindir DIR   where programs named without a slash are found (e.g. the
#                meson build's tests/vm); a missing one is built from
#                tests/vm/NAME.c with "cc -static"
# --kernel K     run only the lines for kernel K (repeatable)
set -u
. "$(dirname "$0")/lib.sh"

list=$VM_DIR/suite.list bindir="" results="" verbose=() only=()
while [ $# -gt 0 ]; do
	case "$1" in
	--list) list=${2:?}; shift ;;
	--bindir) bindir=${2:?}; shift ;;
	--results) results=${2:?}; shift ;;
	--kernel) only+=("${2:?}"); shift ;;
	-v | --verbose) verbose=(-v) ;;
	*) echo "usage: suite.sh [--list FILE] [--bindir DIR] [--results DIR] [--kernel K]... [-v]" >&2; exit 2 ;;
	esac
	shift
done
results=${results:-$(vm_results_dir)}
export LIBDAMON_VM_RESULTS=$results
mkdir -p "$results/bin" || vm_die "cannot create $results/bin"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_suite=$(now)

# Without qemu every test is skipped (failed under CI=true), with the reason.
no_qemu=""
if ! command -v "${LIBDAMON_VM_QEMU:-qemu-system-x86_64}" >/dev/null; then
	no_qemu=$( (vm_unavailable "${LIBDAMON_VM_QEMU:-qemu-system-x86_64} not found (install it with scripts/vm-deps.sh)") 2>&1)
	no_qemu_rc=77
	[ "${CI:-}" = true ] && no_qemu_rc=99
fi

# Read the list.
tests=()
while IFS= read -r line; do
	line=${line%%#*}
	[ -n "${line//[[:space:]]/}" ] || continue
	read -ra w <<<"$line"
	if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" ${w[0]} "* ]]; then
		continue
	fi
	tests+=("$line")
done <"$list"
[ ${#tests[@]} -gt 0 ] || vm_die "no tests in $list"

# Fetch every kernel first, so download time is not counted as test time.
t0=$(now)
declare -A kernel_ok=()
for line in "${tests[@]}"; do
	read -ra w <<<"$line"
	k=${w[0]}
	[ -n "${kernel_ok[$k]:-}" ] && continue
	[ -n "$no_qemu" ] && { kernel_ok[$k]=yes; continue; }
	if d=$(vm_fetch_kernel "$k"); then
		kernel_ok[$k]=yes
		echo "suite: kernel $k: $(cat "$d/kver") ($(tr '\n' ' ' <"$d/packages" | sed 's/ $//'))"
	else
		kernel_ok[$k]=$?
	fi
done
[ -z "$no_qemu" ] && echo "suite: kernels ready in $(elapsed "$t0") s"

# A program named without a slash: --bindir, else build tests/vm/NAME.c.
resolve() {
	local p=$1
	case "$p" in */*) echo "$p"; return 0 ;; esac
	if [ -n "$bindir" ] && [ -x "$bindir/$p" ]; then
		echo "$bindir/$p"
		return 0
	fi
	[ -f "$VM_DIR/$p.c" ] || { vm_log "no program $p (not in --bindir, no $VM_DIR/$p.c)"; return 1; }
	if [ ! -x "$results/bin/$p" ] || [ "$VM_DIR/$p.c" -nt "$results/bin/$p" ]; then
		"${CC:-cc}" -static -O2 -Wall -Wextra -o "$results/bin/$p" "$VM_DIR/$p.c" >&2 ||
			{ vm_log "cannot build $p statically"; return 1; }
	fi
	echo "$results/bin/$p"
}

passed=0 failed=0 skipped=0 summary=()
for line in "${tests[@]}"; do
	read -ra w <<<"$line"
	k=${w[0]}
	opts=() cmd=() seen=0
	for x in "${w[@]:1}"; do
		if [ $seen = 0 ]; then
			[ "$x" = -- ] && { seen=1; continue; }
			opts+=("$x")
		else
			cmd+=("$x")
		fi
	done
	desc="$k ${w[*]:1}"
	t0=$(now)
	out=$(mktemp)
	if [ $seen = 0 ] || [ ${#cmd[@]} = 0 ]; then
		echo "vm: malformed line (no \"-- PROGRAM\")" >"$out"
		rc=99
	elif [ -n "$no_qemu" ]; then
		echo "$no_qemu" >"$out"
		rc=$no_qemu_rc
	elif [ "${kernel_ok[$k]}" != yes ]; then
		echo "vm: kernel $k unavailable" >"$out"
		rc=${kernel_ok[$k]}
	elif ! prog=$(resolve "${cmd[0]}" 2>"$out"); then
		rc=99
	else
		"$VM_DIR/run-vm.sh" --kernel "$k" "${opts[@]}" "${verbose[@]}" -- "$prog" "${cmd[@]:1}" 2>"$out"
		rc=$?
	fi
	took=$(elapsed "$t0")
	case $rc in
	0) verdict=PASS; passed=$((passed + 1)) ;;
	77) verdict=SKIP; skipped=$((skipped + 1)) ;;
	*) verdict=FAIL; failed=$((failed + 1)) ;;
	esac
	printf '%-4s %6s s  %s\n' "$verdict" "$took" "$desc"
	if [ $verdict = PASS ] && [ ${#verbose[@]} = 0 ]; then
		grep '^vm: .*: exit ' "$out" | sed 's/^/       /'
	else
		sed 's/^/       /' "$out"
	fi
	summary+=("$(printf '%-4s %s (exit %s)' "$verdict" "$desc" "$rc")")
	rm -f "$out"
done

echo
echo "suite: $(printf '%s\n' "${summary[@]}" | grep -c .) tests in $(elapsed "$t_suite") s"
printf '%s\n' "${summary[@]}" | grep -v '^PASS' || true
line="$passed passed, $failed failed"
[ $skipped -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ $failed -gt 0 ] && exit 1
[ $passed = 0 ] && [ $skipped -gt 0 ] && exit 77
exit 0
