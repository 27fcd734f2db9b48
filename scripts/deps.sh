#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# Install, with apt, what building and testing libdamon needs on Debian 12
# or later. Idempotent and quiet when everything is there. Run as root (or
# with sudo available).
set -eu

# clang + libclang-rt-dev: libFuzzer and the sanitizer runtimes (scripts/fuzz.sh,
# the ThreadSanitizer build); valgrind: memcheck of the unit tests.
PKGS="meson ninja-build gcc g++ pkg-config libc6-dev libcunit1-dev libcap-dev
libnuma-dev libjemalloc-dev swig python3 python3-dev python3-pytest binutils
libpng-dev zlib1g-dev python3-prometheus-client file libsqlite3-dev clang
libclang-rt-dev valgrind"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 || {
			echo "deps: missing:$missing; run as root" >&2
			exit 1
		}
		SUDO=sudo
	fi
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	if ! $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
		$SUDO apt-get update -qq
		$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
fi
if [ "${1:-}" = --vm ]; then
	exec "$(dirname "$0")/vm-deps.sh"
fi
