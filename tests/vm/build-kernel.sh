#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# build-kernel.sh [--print-dir] [--force] — build the VM suite's own kernel
# ("self" for run-vm.sh and suite.list) and print, like fetch-kernel.sh,
# "self KVER DIR" (or only DIR with --print-dir).
#
# Source: Debian's linux-source-X.Y package, the newest the archive serves
# (the "linux-source" metapackage of sid, else trixie, else bookworm; or the
# suite named by LIBDAMON_VM_KSRC_SUITE). Config: "make tinyconfig", then
# every line of kernel-config.fragment through scripts/config, then
# "make olddefconfig"; each wanted option is checked in the final .config
# and the build fails naming the options olddefconfig dropped. Only
# bzImage is built (no modules). Everything lives in the VM cache, outside
# the tree:
#   ksrc/linux-source-X.Y_VERSION.tar.xz     the source, kept for rebuilds
#   kernels/self-X.Y-VERSION-HASH/           vmlinuz config kver packages build.log
#   kernels/current-self                     the newest built
# HASH covers the fragment and RECIPE below (bump RECIPE when a change here
# changes the kernel): a changed fragment builds a new kernel; an unchanged
# one is never rebuilt. About 10 minutes
# with two CPUs. Without network the newest cached kernel of the same HASH
# is used. Exit 77 (99 under CI=true) when a kernel can be neither built
# nor found.
set -u
. "$(dirname "$0")/lib.sh"

print_dir=0 force=0
while [ $# -gt 0 ]; do
	case "$1" in
	--print-dir) print_dir=1 ;;
	--force) force=1 ;;
	*) echo "usage: build-kernel.sh [--print-dir] [--force]" >&2; exit 2 ;;
	esac
	shift
done

FRAGMENT=$VM_DIR/kernel-config.fragment
[ -f "$FRAGMENT" ] || vm_die "no $FRAGMENT"
RECIPE="tinyconfig+fragment olddefconfig bzImage v1"
HASH=$( (cat "$FRAGMENT"; echo "$RECIPE") | sha256sum | cut -c1-16)
mkdir -p "$VM_CACHE/kernels" "$VM_CACHE/ksrc"

# Newest cached kernel built from this fragment, if any.
cached_dir() {
	local d
	d=$(ls -dt "$VM_CACHE"/kernels/self-*-"$HASH" 2>/dev/null | head -n 1)
	[ -n "$d" ] && [ -f "$d/vmlinuz" ] && echo "$d"
}

done_with() { # dir
	ln -sfn "$(basename "$1")" "$VM_CACHE/kernels/current-self"
	if [ $print_dir = 1 ]; then
		echo "$1"
	else
		echo "self $(cat "$1/kver") $1"
	fi
	exit 0
}

# --- which source: linux-source-X.Y and its version --------------------------
# Sets SRC_SUITE, SRC_PKG, SRC_VER; returns non-zero when the archive
# cannot be asked. Runs under the cache lock (apt state is shared with
# vm_fetch_kernel).
find_source() {
	local suites s pkg ver
	suites=${LIBDAMON_VM_KSRC_SUITE:-sid trixie bookworm}
	for s in $suites; do
		vm_apt_setup "$s"
		vm_apt_update "$s" || continue
		pkg=$(vm_apt_field "$s" linux-source Depends | tr ',' '\n' |
			sed 's/|.*//; s/(.*//; s/[[:space:]]//g' | grep -E '^linux-source-[0-9]' | head -n 1)
		[ -n "$pkg" ] || continue
		ver=$(vm_apt_field "$s" "$pkg" Version)
		[ -n "$ver" ] || continue
		SRC_SUITE=$s SRC_PKG=$pkg SRC_VER=$ver
		return 0
	done
	return 1
}

if [ "${LIBDAMON_VM_OFFLINE:-0}" = 1 ]; then
	d=$(cached_dir) && done_with "$d"
	vm_unavailable "LIBDAMON_VM_OFFLINE=1 and no self-built kernel for fragment $HASH in $VM_CACHE/kernels"
fi

SRC_SUITE="" SRC_PKG="" SRC_VER=""
exec 9>"$VM_CACHE/lock"
flock 9
if ! find_source; then
	flock -u 9
	if d=$(cached_dir); then
		vm_log "cannot ask the archive for linux-source; using the cached $(basename "$d")"
		done_with "$d"
	fi
	vm_unavailable "no linux-source package found (suites: ${LIBDAMON_VM_KSRC_SUITE:-sid trixie bookworm}) and no self-built kernel cached"
fi
series=${SRC_PKG#linux-source-}
tarball=$VM_CACHE/ksrc/${SRC_PKG}_$SRC_VER.tar.xz
if [ ! -f "$tarball" ]; then
	vm_log "downloading $SRC_PKG $SRC_VER from $SRC_SUITE"
	mkdir -p "$VM_CACHE/debs"
	(cd "$VM_CACHE/debs" && apt-get "${APT_OPTS[@]}" -qq download "$SRC_PKG") >&2 ||
		{ flock -u 9; d=$(cached_dir) && done_with "$d"; vm_unavailable "cannot download $SRC_PKG"; }
	deb=$(ls "$VM_CACHE/debs/${SRC_PKG}_"*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || vm_die "download of $SRC_PKG left no .deb"
	t=$(mktemp -d "$VM_CACHE/ksrc/.tmp.XXXXXX")
	dpkg-deb -x "$deb" "$t" || vm_die "cannot unpack $deb"
	f=$(ls "$t"/usr/src/linux-source-*.tar.* 2>/dev/null | head -n 1)
	[ -n "$f" ] || vm_die "no source tarball in $deb"
	mv "$f" "$tarball"
	rm -rf "$t" "$deb"
	# Older source versions are of no further use.
	find "$VM_CACHE/ksrc" -maxdepth 1 -name "${SRC_PKG}_*.tar.xz" ! -path "$tarball" -delete
fi
flock -u 9

dir=$VM_CACHE/kernels/self-$series-$SRC_VER-$HASH
if [ -f "$dir/vmlinuz" ] && [ $force = 0 ]; then
	done_with "$dir"
fi

# --- build (one at a time) ---------------------------------------------------
for t in make gcc flex bison bc; do
	command -v $t >/dev/null || vm_unavailable "$t not found: building the test kernel needs make gcc flex bison bc libelf-dev (scripts/vm-deps.sh installs them)"
done
[ -f /usr/include/gelf.h ] || vm_unavailable "libelf-dev is missing (objtool needs it; scripts/vm-deps.sh installs it)"
exec 8>"$VM_CACHE/build.lock"
flock 8
if [ -f "$dir/vmlinuz" ] && [ $force = 0 ]; then
	done_with "$dir" # built by someone else meanwhile
fi
t0=$(date +%s.%N)
work=$VM_CACHE/build/$series-$SRC_VER-$HASH
rm -rf "$work"
mkdir -p "$work/obj"
trap 'rm -rf "$work"' EXIT
trap 'exit 143' INT TERM HUP
vm_log "building the test kernel from $SRC_PKG $SRC_VER (fragment $HASH), about 10 minutes; log in $work/build.log"
log=$work/build.log
fail() {
	tail -n 40 "$log" >&2
	mkdir -p "$(vm_results_dir)"
	cp "$log" "$(vm_results_dir)/kernel-build-$HASH.log" 2>/dev/null &&
		vm_log "build log kept in $(vm_results_dir)/kernel-build-$HASH.log"
	vm_die "$*"
}
tar -C "$work" -xf "$tarball" || vm_die "cannot unpack $tarball"
src=$(ls -d "$work"/linux-source-* | head -n 1)
K=(make -C "$src" O="$work/obj" ARCH=x86_64)
"${K[@]}" tinyconfig >"$log" 2>&1 || fail "make tinyconfig failed"

# The fragment, one option per line: CONFIG_X=y|n|m|number|"string".
declare -A want=()
while IFS= read -r line; do
	line=${line%%#*}
	line=$(echo "$line" | tr -d '[:space:]')
	[ -n "$line" ] || continue
	opt=${line%%=*} val=${line#*=}
	case "$opt" in CONFIG_*) ;; *) vm_die "kernel-config.fragment: bad line '$line'" ;; esac
	want[$opt]=$val
	o=${opt#CONFIG_}
	case "$val" in
	y) a=(--enable "$o") ;;
	n) a=(--disable "$o") ;;
	m) a=(--module "$o") ;;
	\"*) v=${val#\"}; a=(--set-str "$o" "${v%\"}") ;;
	*) a=(--set-val "$o" "$val") ;;
	esac
	"$src/scripts/config" --file "$work/obj/.config" "${a[@]}" || vm_die "scripts/config ${a[*]} failed"
done <"$FRAGMENT"
"${K[@]}" olddefconfig >>"$log" 2>&1 || fail "make olddefconfig failed"

dropped=""
for opt in "${!want[@]}"; do
	val=${want[$opt]}
	if [ "$val" = n ]; then
		grep -q "^$opt=" "$work/obj/.config" && dropped="$dropped $opt(wanted n, got $(grep "^$opt=" "$work/obj/.config" | cut -d= -f2))"
	elif ! grep -qx "$opt=$val" "$work/obj/.config"; then
		got=$(grep "^$opt=" "$work/obj/.config" | cut -d= -f2)
		dropped="$dropped $opt(wanted $val, got ${got:-unset})"
	fi
done
[ -z "$dropped" ] ||
	vm_die "olddefconfig dropped options of kernel-config.fragment (a dependency is missing; add it to the fragment):$dropped"

jobs=$(nproc 2>/dev/null || echo 2)
"${K[@]}" -j"$jobs" bzImage >>"$log" 2>&1 || fail "make bzImage failed"
kver=$("${K[@]}" -s kernelrelease 2>/dev/null | tail -n 1)
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

tmp=$(mktemp -d "$VM_CACHE/kernels/.tmp.XXXXXX")
cp "$work/obj/arch/x86/boot/bzImage" "$tmp/vmlinuz"
cp "$work/obj/.config" "$tmp/config"
echo "$kver" >"$tmp/kver"
echo "$SRC_PKG=$SRC_VER" >"$tmp/packages"
echo "$secs" >"$tmp/build-seconds"
cp "$log" "$tmp/build.log"
rm -rf "$dir"
mv "$tmp" "$dir"
vm_log "test kernel $kver built in $secs s ($(du -k "$dir/vmlinuz" | cut -f1) KiB bzImage): $dir"
done_with "$dir"
