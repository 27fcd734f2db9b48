#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# The main demo: install what is needed, build, and run `damon-hot demo` —
# a workload in the same process whose hot set moves through 1 GiB, watched
# live by libdamon. Extra arguments go to damon-hot (e.g. --json, --duration 0).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
exec build/examples/damon-hot demo "$@"
