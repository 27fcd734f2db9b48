#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The shape of lib/ (doc/design.md, "Layers"):
#  1. no source file over 800 lines;
#  2. includes go down the layers (or stay in their directory);
#  3. lib/api talks to backends through lib/backend/backend.h only: no
#     branch on which backend runs, nothing of lib/kernel, lib/ops,
#     lib/actions or lib/core's monitor;
#  4. with the internal static library: calls go down the layers too (a
#     lower layer calling up, even through the public API, fails), and no
#     two source files call each other, directly or around a cycle.
#
# usage: check-layers.sh LIB_SOURCE_DIR [LIBDAMON_INTERNAL_A]
set -eu

lib=$1
archive=${2:-}
NM=${NM:-nm}
max_lines=800

# Layers, lowest first. A file may include or call its own directory's
# files and those of lower layers only. core/region.h is the data contract
# the operations sets and the core share (regions and ranges, nothing
# else), so it sits below lib/ops although it lives in lib/core.
layer_of() {
	case $1 in
	core/region.h) echo 15 ;;
	util | util/*) echo 0 ;;
	runner | runner/*) echo 10 ;;
	ops | ops/*) echo 20 ;;
	core | core/*) echo 30 ;;
	kernel | kernel/*) echo 40 ;;
	probe | probe/*) echo 50 ;;
	actions | actions/*) echo 60 ;;
	backend | backend/*) echo 70 ;;
	api | api/*) echo 80 ;;
	*) echo unknown ;;
	esac
}

# Files over the limit that are being split on their own; each must
# shrink below it, and then leave this list.
long_ok=""

case $archive in
"" | /*) ;;
*) archive=$PWD/$archive ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tmpi=$tmp/includes
fail=0
cd "$lib"

# 1. sizes
for f in */*.c */*.h; do
	n=$(wc -l <"$f")
	listed=no
	for x in $long_ok; do
		[ "$x" = "$f" ] && listed=yes
	done
	if [ "$n" -gt "$max_lines" ] && [ "$listed" = no ]; then
		echo "lib/$f has $n lines, more than $max_lines: split it along its jobs"
		fail=1
	elif [ "$n" -le "$max_lines" ] && [ "$listed" = yes ]; then
		echo "lib/$f has $n lines now: remove it from long_ok in $0"
		fail=1
	fi
done

# 2. includes
for f in */*.c */*.h; do
	dir=${f%%/*}
	from=$(layer_of "$f")
	if [ "$from" = unknown ]; then
		echo "lib/$f: directory $dir has no layer in $0 (and doc/design.md)"
		fail=1
		continue
	fi
	sed -n 's,^[[:space:]]*#[[:space:]]*include[[:space:]]*"\.\./\([^"]*\)".*,\1,p' "$f" >"$tmpi"
	while read -r inc; do
		[ "${inc%%/*}" = "$dir" ] && continue
		to=$(layer_of "$inc")
		if [ "$to" = unknown ] || [ "$to" -ge "$from" ]; then
			echo "lib/$f includes ../$inc: a layer may only include lower ones"
			fail=1
		fi
	done <"$tmpi"
done

# 3. the API and the backends
if grep -nE '\bkern\b|kern_ended|mon_open|dm_kernel_|dm_ktrace_|dm_monitor_|dm_ops_(uffd_wp|page_idle|soft_dirty|fault)\b' api/*.c api/*.h; then
	echo "lib/api uses a backend's internals (above): go through struct dm_backend_ops"
	fail=1
fi
backends='DAMON_BACKEND_(KERNEL|PAGE_IDLE|UFFD_WP|SOFT_DIRTY|FAULT)\b'
if grep -nE "[=!]=[[:space:]]*${backends}|${backends}[[:space:]]*[=!]=|case[[:space:]]+${backends}" \
	api/*.c api/*.h; then
	echo "lib/api branches on which backend runs (above): make it a table operation"
	fail=1
fi
if grep -nE '#[[:space:]]*include[[:space:]]*"\.\./(kernel|ops|actions)/|#[[:space:]]*include[[:space:]]*"\.\./core/monitor\.h"' \
	api/*.c api/*.h; then
	echo "lib/api includes a backend's headers (above): only lib/backend/backend.h"
	fail=1
fi

# 4. calls, from the objects of the internal library
if [ -n "$archive" ]; then
	# "OBJ SYMBOL" lines: what each object defines, what it uses; OBJ is DIR_FILE (meson's
	# object names: lib/api/run.c -> api_run.c.o)
	"$NM" -A "$archive" >"$tmp/nm"
	awk -v defs="$tmp/defs" -v uses="$tmp/uses" '
		{
			n = split($1, p, "/"); o = p[n]; sub(/\.c\.o.*/, "", o)
			if ($2 == "U") print o, $3 > uses
			else if ($2 ~ /^[TDBRGS]$/) print o, $3 > defs
		}' "$tmp/nm"
	if [ ! -s "$tmp/defs" ] || [ ! -s "$tmp/uses" ]; then
		echo "$archive: nm found no symbols"
		exit 1
	fi
	awk 'NR == FNR { def[$2] = $1; next }
	     ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' \
		"$tmp/defs" "$tmp/uses" | sort -u >"$tmp/calls"
	while read -r from to sym; do
		fl=$(layer_of "${from%%_*}")
		tl=$(layer_of "${to%%_*}")
		[ "${from%%_*}" = "${to%%_*}" ] && continue
		if [ "$fl" = unknown ] || [ "$tl" = unknown ] || [ "$tl" -ge "$fl" ]; then
			echo "lib/${from%%_*}/${from#*_}.c calls $sym of lib/${to%%_*}/${to#*_}.c: calls may only go down the layers"
			fail=1
		fi
	done <"$tmp/calls"
	# cycles between files: depth-first search over "calls"
	if ! awk '
		{ if (!(($1, $2) in e)) { e[$1, $2] = 1; adj[$1] = adj[$1] " " $2 }; node[$1]; node[$2] }
		function visit(v, depth,    n, i, k, w, nb, c) {
			state[v] = 1; stack[depth] = v; pos[v] = depth
			n = split(adj[v], nb, " ")
			for (i = 1; i <= n; i++) {
				w = nb[i]
				if (state[w] == 1) {
					c = ""
					for (k = pos[w]; k <= depth; k++)
						c = c stack[k] " -> "
					print "calls go around a cycle: " c w
					bad = 1
				} else if (!state[w])
					visit(w, depth + 1)
			}
			state[v] = 2
		}
		END {
			for (v in node)
				if (!state[v])
					visit(v, 0)
			exit bad
		}' "$tmp/calls"; then
		echo "(objects named DIR_FILE: lib/DIR/FILE.c; cycles between files of one layer count too)"
		fail=1
	fi
fi

exit $fail
