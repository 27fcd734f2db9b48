#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# Compile every complete program (one with a main function) that the man
# pages show between .EX and .EE, so that the examples keep matching the API.
#
# Usage: check-man-examples.sh MANDIR INCLUDEDIR...
# Environment: CC (default: cc), MAN_EXAMPLES_CFLAGS (default: strict C11
# with warnings as errors).
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 MANDIR INCLUDEDIR..." >&2
	exit 2
fi
mandir=$1
shift
incs=
for d in "$@"; do
	incs="$incs -I$d"
done
cc=${CC:-cc}
cflags=${MAN_EXAMPLES_CFLAGS:--std=c11 -Wall -Wextra -Werror}

if ! command -v "${cc%% *}" >/dev/null 2>&1; then
	echo "SKIP: no C compiler ($cc)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

nr=0
failed=0
for page in "$mandir"/*.3 "$mandir"/*.7; do
	[ -f "$page" ] || continue
	# .so links carry no text of their own.
	if grep -q '^\.so ' "$page"; then
		continue
	fi
	base=$(basename "$page")
	# One file per .EX/.EE block, with the roff escapes the pages use
	# undone: \& (protects a leading dot), \- (a real hyphen), \e (a
	# backslash; undone last so that "\e-" stays a backslash and a dash).
	awk -v out="$tmp/$base" '
		/^\.EX[ \t]*$/ { k++; f = out "-" k ".raw"; inex = 1; printf "" > f; next }
		/^\.EE[ \t]*$/ { if (inex) close(f); inex = 0; next }
		inex { print > f }
	' "$page"
	for raw in "$tmp/$base"-*.raw; do
		[ -f "$raw" ] || continue
		src=${raw%.raw}.c
		sed -e 's/\\&//g' -e 's/\\-/-/g' -e 's/\\e/\\/g' "$raw" >"$src"
		if ! grep -q 'main(' "$src"; then
			continue
		fi
		nr=$((nr + 1))
		# shellcheck disable=SC2086 # word splitting of flags is intended
		if $cc $cflags $incs -c "$src" -o "${src%.c}.o" 2>"$tmp/log"; then
			echo "ok: $base ($(basename "$src"))"
		else
			failed=$((failed + 1))
			echo "FAIL: the example of $base does not compile:"
			cat "$tmp/log"
			echo "--- the extracted program:"
			cat -n "$src"
		fi
	done
done

if [ "$nr" -eq 0 ]; then
	echo "FAIL: no example program found in $mandir (expected at least one)"
	exit 1
fi
echo "$nr example programs, $failed failed"
[ "$failed" -eq 0 ]
