#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# A build without -Dfault_injection carries no trace of the test-only hook
# (lib/util/fail.h): no dm_fail_* symbol, no dm_fail_sites section, in the
# shared or the static library.
#
# usage: check-no-faultinj.sh LIBDAMON_SO LIBDAMON_A
set -eu

NM=${NM:-nm}
READELF=${READELF:-readelf}
fail=0
for lib in "$@"; do
	if "$NM" -A "$lib" 2>/dev/null | grep -E 'dm_fail_|__(start|stop)_dm_fail_sites'; then
		echo "$lib: carries fault injection symbols (above)"
		fail=1
	fi
	if "$READELF" -SW "$lib" | grep -q 'dm_fail_sites'; then
		echo "$lib: has a dm_fail_sites section"
		fail=1
	fi
done
[ $fail = 0 ] && echo "no fault injection hook in: $*"
exit $fail
