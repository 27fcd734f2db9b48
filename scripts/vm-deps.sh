#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# Install, with apt, what the VM test harness (tests/vm/) needs on Debian 12
# (the last line of PKGS builds its own kernel, tests/vm/build-kernel.sh)
# or later. Idempotent: prints nothing and exits 0 when everything is there.
# Run as root (or through sudo).
set -eu

# package -> a file that proves it is installed (checked with dpkg-query)
PKGS="qemu-system-x86 busybox-static cpio zstd xz-utils gcc libc6-dev
ca-certificates debian-archive-keyring gpgv
make flex bison bc libelf-dev"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "vm-deps: missing:$missing; run this script as root" >&2
		exit 1
	fi
fi

echo "vm-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Refresh the lists only when apt cannot find a candidate for one of them.
# $missing is a list of names: split on purpose.
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "vm-deps: done"
