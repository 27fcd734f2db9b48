#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# Every symbol the library exports (the global names of the linker version
# script) must have a man page of its own name: a page, or a .so link to the
# page of its family whose NAME section lists it. Every page must be
# installed by doc/meson.build.
#
# Usage: check-man-coverage.sh SYMBOL_MAP MANDIR DOC_MESON_BUILD
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 SYMBOL_MAP MANDIR DOC_MESON_BUILD" >&2
	exit 2
fi
map=$1
mandir=$2
build=$3

# The NAME section of a page: from ".SH NAME" to the next ".SH".
name_section() {
	awk '/^\.SH /{ on = ($2 == "NAME") ; next } on' "$1"
}

syms=$(awk '
	/global:/ { on = 1; next }
	/local:/ { on = 0 }
	on && /^[ \t]*[A-Za-z_][A-Za-z0-9_]*;/ { gsub(/[ \t;]/, ""); print }
' "$map")
if [ -z "$syms" ]; then
	echo "FAIL: no exported symbol found in $map"
	exit 1
fi

nr=0
failed=0
for s in $syms; do
	nr=$((nr + 1))
	page="$mandir/$s.3"
	if [ ! -f "$page" ]; then
		echo "FAIL: $s is exported but has no man page ($page)"
		failed=$((failed + 1))
		continue
	fi
	target=$(sed -n 's/^\.so[ \t]\{1,\}man3\/\(.*\)$/\1/p' "$page")
	if [ -n "$target" ]; then
		if [ ! -f "$mandir/$target" ]; then
			echo "FAIL: $s.3 links to $target, which does not exist"
			failed=$((failed + 1))
			continue
		fi
		page="$mandir/$target"
	fi
	if ! name_section "$page" | grep -qw "$s"; then
		echo "FAIL: $(basename "$page") does not name $s in its NAME section"
		failed=$((failed + 1))
	fi
done

# Every page in the tree is installed.
for page in "$mandir"/*.1 "$mandir"/*.3 "$mandir"/*.7; do
	[ -f "$page" ] || continue
	base=$(basename "$page")
	if ! grep -q "'man/$base'" "$build"; then
		echo "FAIL: $base is not installed by $build"
		failed=$((failed + 1))
	fi
done

echo "$nr exported symbols checked, $failed problems"
[ "$failed" -eq 0 ]
