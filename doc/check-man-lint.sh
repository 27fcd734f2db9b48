#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# Format every man page with all groff warnings enabled; any warning fails.
#
# Usage: check-man-lint.sh MANDIR
set -eu

mandir=$1
if ! command -v groff >/dev/null 2>&1; then
	echo "SKIP: groff is not installed"
	exit 77
fi

failed=0
for page in "$mandir"/*.1 "$mandir"/*.3 "$mandir"/*.7; do
	[ -f "$page" ] || continue
	grep -q '^\.so ' "$page" && continue
	out=$(groff -man -ww -z "$page" 2>&1) || true
	if [ -n "$out" ]; then
		echo "FAIL: $(basename "$page"):"
		echo "$out"
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]
