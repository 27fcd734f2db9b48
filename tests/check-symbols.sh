#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The ABI check: the dynamic symbols libdamon.so defines are exactly the
# global names of the version script, and every exported function is
# declared in the public header.
#
# usage: check-symbols.sh LIBDAMON_SO LIBDAMON_SYM DAMON_H
set -eu

so=$1
map=$2
header=$3
NM=${NM:-nm}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols, without their version (name@@NODE), without the
# version nodes themselves (absolute symbols named like LIBDAMON_0.1).
"$NM" -D --defined-only "$so" |
	awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
"$NM" -D --defined-only "$so" |
	awk '$2 ~ /^[TtWiI]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/functions"

# Names between "global:" and "local:" of every node.
sed -e 's,#.*,,' -e 's,/\*.*\*/,,g' "$map" |
	awk '/global:/ { g = 1; next } /local:/ { g = 0; next } /}/ { g = 0; next }
	     g { gsub(/[ \t;]/, ""); if ($0 != "") print }' | sort -u >"$tmp/mapped"

fail=0
if ! cmp -s "$tmp/exported" "$tmp/mapped"; then
	echo "exported symbols differ from $map (< exported only, > map only):"
	diff "$tmp/exported" "$tmp/mapped" | grep '^[<>]' || true
	fail=1
fi

if [ ! -s "$tmp/exported" ]; then
	echo "no exported symbols found in $so"
	fail=1
fi

while read -r f; do
	if ! grep -Eq "(^|[^A-Za-z0-9_])$f[[:space:]]*\(" "$header"; then
		echo "exported function $f is not declared in $header"
		fail=1
	fi
done <"$tmp/functions"

n=$(wc -l <"$tmp/exported")
if [ "$fail" -eq 0 ]; then
	echo "ok: $n exported symbols match $(basename "$map"), every function declared in" \
		"$(basename "$header")"
fi
exit "$fail"
