#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The README's C quick start must compile against the built library and
# find its hot half hotter than its cold half.
# Usage: check-readme.sh README.md CC INCLUDE_DIR BUILD_INCLUDE_DIR LIB_DIR
set -eu
readme=$1 cc=$2 inc=$3 binc=$4 libdir=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '/^```c$/ { on = 1; next } /^```$/ { if (on) exit } on' "$readme" >"$tmp/quick.c"
[ -s "$tmp/quick.c" ] || { echo "no C block in $readme"; exit 1; }
"$cc" -std=gnu11 -Wall -Wextra -Werror -I"$inc" -I"$binc" "$tmp/quick.c" -L"$libdir" -ldamon \
	-Wl,-rpath,"$libdir" -o "$tmp/quick"
out=$("$tmp/quick")
echo "$out"
hot=$(echo "$out" | awk '/^hot half/ { print $3 }')
cold=$(echo "$out" | awk '/^cold half/ { print $3 }')
[ -n "$hot" ] && [ -n "$cold" ] || { echo "expected two hotness lines"; exit 1; }
[ "$hot" -gt "$cold" ] || { echo "expected hot ($hot) > cold ($cold)"; exit 1; }
