# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
# shellcheck shell=bash
#
# Shared shell functions of the VM test harness; sourced by run-vm.sh,
# fetch-kernel.sh and suite.sh (bash). Nothing here writes outside the cache
# directory, the results directory and temporary directories.

# shellcheck disable=SC2034 # used by the scripts that source this file
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_CACHE=${LIBDAMON_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/libdamon-vm}
# Package lists older than this many seconds are refreshed before a download.
VM_LISTS_MAX_AGE=${LIBDAMON_VM_LISTS_MAX_AGE:-86400}

# Where logs are kept: LIBDAMON_VM_RESULTS, else the meson build directory
# running us, else build/vm-results in the source tree (ignored by git).
vm_results_dir() {
	if [ -n "${LIBDAMON_VM_RESULTS:-}" ]; then
		echo "$LIBDAMON_VM_RESULTS"
	elif [ -n "${MESON_BUILD_ROOT:-}" ]; then
		echo "$MESON_BUILD_ROOT/vm-results"
	else
		echo "$(cd "$VM_DIR/../.." && pwd)/build/vm-results"
	fi
}

vm_log() { echo "vm: $*" >&2; }

# "Cannot run" exit: a skip (77) normally, a failure (99) under CI=true.
vm_unavailable() {
	if [ "${CI:-}" = true ]; then
		echo "vm: FAIL: $* (CI=true: a missing prerequisite is a failure)" >&2
		exit 99
	fi
	echo "vm: SKIP: $*" >&2
	exit 77
}

vm_die() {
	echo "vm: error: $*" >&2
	exit 99
}

# Map a kernel name to "suite metapackage". Names are the kernel series the
# suites carried when this was written; the suite names work too.
vm_kernel_spec() {
	case "$1" in
	6.1 | bookworm) echo "bookworm linux-image-amd64" ;;
	6.12 | trixie) echo "trixie linux-image-cloud-amd64" ;;
	7.2 | sid | unstable) echo "sid linux-image-cloud-amd64" ;;
	*) return 1 ;;
	esac
}

# The Debian mirror the system already uses (first "…/debian" URI in the apt
# sources), or LIBDAMON_VM_MIRROR. Prints the URI without a trailing slash.
vm_mirror() {
	if [ -n "${LIBDAMON_VM_MIRROR:-}" ]; then
		echo "${LIBDAMON_VM_MIRROR%/}"
		return 0
	fi
	local f uris=""
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI suite components
		uris="$uris $(sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' "$f")"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uris="$uris $(sed -n 's/^URIs:[[:space:]]*//p' "$f")"
	done
	local u
	for u in $uris; do
		u=${u%/}
		case "$u" in
		*/debian) echo "$u"; return 0 ;;
		esac
	done
	return 1
}

# apt-get/apt-cache options confining apt to $VM_CACHE/apt/SUITE: own
# sources list, lists, package cache and an empty dpkg status, so the
# system's apt configuration and state are neither read for sources nor
# written.
vm_apt_opts() {
	local d=$VM_CACHE/apt/$1
	APT_OPTS=(-o "Dir::Etc::SourceList=$d/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State=$d/state"
		-o "Dir::State::Lists=$d/lists"
		-o Dir::State::status=/dev/null
		-o "Dir::Cache=$d/cache"
		-o Dir::Etc::Preferences=/dev/null
		-o Dir::Etc::PreferencesParts=/dev/null
		-o APT::Get::List-Cleanup=true)
	# As root, apt drops to user _apt for downloads, which cannot write into
	# a cache under /root; download as the calling user instead.
	[ "$(id -u)" = 0 ] && APT_OPTS+=(-o APT::Sandbox::User=root)
	return 0
}

vm_apt_setup() {
	local suite=$1 d=$VM_CACHE/apt/$1 mirror
	mirror=$(vm_mirror) || vm_die "no Debian mirror found in /etc/apt/sources.list*; set LIBDAMON_VM_MIRROR to a URI such as <scheme>://<host>/debian"
	mkdir -p "$d/lists/partial" "$d/state" "$d/cache/archives/partial"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	local line="deb [signed-by=$keyring] $mirror $suite main"
	if [ ! -f "$d/sources.list" ] || [ "$(cat "$d/sources.list")" != "$line" ]; then
		echo "$line" >"$d/sources.list"
		rm -f "$d/lists.stamp"
	fi
	vm_apt_opts "$suite"
}

# Refresh the suite's package lists when missing or older than
# VM_LISTS_MAX_AGE. Returns non-zero when the refresh failed.
vm_apt_update() {
	local suite=$1 d=$VM_CACHE/apt/$1 now age
	now=$(date +%s)
	if [ -f "$d/lists.stamp" ] && [ "${LIBDAMON_VM_REFRESH:-0}" != 1 ]; then
		age=$((now - $(stat -c %Y "$d/lists.stamp")))
		[ "$age" -lt "$VM_LISTS_MAX_AGE" ] && return 0
	fi
	VM_LISTS_REFRESHED=1
	vm_log "refreshing package lists for $suite"
	if apt-get "${APT_OPTS[@]}" -qq update >"$d/update.log" 2>&1 &&
		! grep -q '^[WE]:' "$d/update.log"; then
		touch "$d/lists.stamp"
		return 0
	fi
	cat "$d/update.log" >&2
	return 1
}

# Fields of a package's candidate version.
vm_apt_field() { # suite package field
	apt-cache "${APT_OPTS[@]}" show --no-all-versions "$2" 2>/dev/null |
		sed -n "s/^$3: //p" | head -n 1
}

# The kernel packages a metapackage pulls in: follow Depends whose first
# alternative is linux-{image,binary,base,modules}-* (not the unrelated
# "linux-base" package), recursively.
vm_kernel_packages() { # suite metapackage
	local todo=("$2") seen=" " p dep
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		case "$seen" in *" $p "*) continue ;; esac
		seen="$seen$p "
		echo "$p"
		while read -r dep; do
			[ -n "$dep" ] && todo+=("$dep")
		done < <(vm_apt_field "$1" "$p" Depends | tr ',' '\n' |
			sed 's/|.*//; s/(.*//; s/[[:space:]]//g' |
			grep -E '^linux-(image|binary|base|modules)-.')
	done
}

# Download (or find in the cache) the kernel NAME and print the directory
# holding vmlinuz, config, kver (the release string), packages (what was
# downloaded, name=version) and modules/ (the lib/modules/KVER tree).
# Cached per metapackage version: a re-run with fresh lists and the same
# version downloads nothing; with LIBDAMON_VM_OFFLINE=1 (or when the
# archive cannot be reached) the last kernel fetched for NAME is used.
vm_fetch_kernel() {
	local name=$1 spec suite meta
	case "$name" in
	self | custom)
		# The suite's own kernel (idle page tracking, DAMON built in):
		# built from Debian's linux-source by build-kernel.sh, cached.
		"$VM_DIR/build-kernel.sh" --print-dir
		return $?
		;;
	esac
	spec=$(vm_kernel_spec "$name") || vm_die "unknown kernel '$name' (known: 6.1 6.12 7.2 self)"
	read -r suite meta <<<"$spec"
	mkdir -p "$VM_CACHE/kernels" "$VM_CACHE/debs"
	local current=$VM_CACHE/kernels/current-$suite-$meta
	(
		flock 9
		if [ "${LIBDAMON_VM_OFFLINE:-0}" = 1 ]; then
			[ -f "$current/vmlinuz" ] || exit 3
			readlink -f "$current"
			exit 0
		fi
		vm_apt_setup "$suite"
		if ! vm_apt_update "$suite"; then
			if [ -f "$current/vmlinuz" ]; then
				vm_log "cannot refresh the $suite lists; using the cached $(basename "$(readlink -f "$current")")"
				readlink -f "$current"
				exit 0
			fi
			exit 3
		fi
		# Lists unchanged since the last fetch: the cached kernel is current.
		if [ -z "${VM_LISTS_REFRESHED:-}" ] && [ -f "$current/vmlinuz" ] &&
			[ "$current" -nt "$VM_CACHE/apt/$suite/lists.stamp" ]; then
			readlink -f "$current"
			exit 0
		fi
		local version dir
		version=$(vm_apt_field "$suite" "$meta" Version)
		[ -n "$version" ] || { vm_log "$meta not found in $suite"; exit 3; }
		dir=$VM_CACHE/kernels/$suite-$meta-$version
		if [ ! -f "$dir/vmlinuz" ]; then
			vm_log "downloading $meta $version from $suite"
			local t0 tmp p f kver
			t0=$(date +%s.%N)
			tmp=$(mktemp -d "$VM_CACHE/kernels/.tmp.XXXXXX")
			mapfile -t pkgs < <(vm_kernel_packages "$suite" "$meta")
			(cd "$VM_CACHE/debs" && apt-get "${APT_OPTS[@]}" -qq download "${pkgs[@]}") >&2 ||
				{ rm -rf "$tmp"; exit 3; }
			mkdir "$tmp/root"
			: >"$tmp/packages"
			for p in "${pkgs[@]}"; do
				f=$(ls "$VM_CACHE/debs/${p}_"*.deb 2>/dev/null | head -n 1)
				[ -n "$f" ] || { vm_log "download of $p left no .deb"; rm -rf "$tmp"; exit 3; }
				dpkg-deb -x "$f" "$tmp/root"
				echo "$(dpkg-deb -f "$f" Package)=$(dpkg-deb -f "$f" Version)" >>"$tmp/packages"
			done
			# vmlinuz and config sit in /boot up to 6.12 and in
			# /usr/lib/modules/KVER/ in the split 7.x packages.
			f=$(ls "$tmp"/root/boot/vmlinuz-* "$tmp"/root/usr/lib/modules/*/vmlinuz \
				"$tmp"/root/lib/modules/*/vmlinuz 2>/dev/null | head -n 1)
			[ -n "$f" ] || { vm_log "no vmlinuz in ${pkgs[*]}"; rm -rf "$tmp"; exit 3; }
			mv "$f" "$tmp/vmlinuz"
			f=$(ls "$tmp"/root/boot/config-* "$tmp"/root/usr/lib/modules/*/config \
				"$tmp"/root/lib/modules/*/config 2>/dev/null | head -n 1)
			[ -n "$f" ] && mv "$f" "$tmp/config"
			f=$(ls -d "$tmp"/root/usr/lib/modules/*/ "$tmp"/root/lib/modules/*/ 2>/dev/null | head -n 1)
			if [ -n "$f" ]; then
				kver=$(basename "$f")
				mv "$f" "$tmp/modules"
			else
				kver=$(basename "$(ls "$tmp"/root/boot/System.map-* 2>/dev/null | head -n 1)")
				kver=${kver#System.map-}
			fi
			echo "$kver" >"$tmp/kver"
			rm -rf "$tmp/root"
			for p in "${pkgs[@]}"; do rm -f "$VM_CACHE/debs/${p}_"*.deb; done
			rm -rf "$dir"
			mv "$tmp" "$dir"
			vm_log "$meta $version ($kver) ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
		fi
		ln -sfn "$(basename "$dir")" "$current"
		touch -h "$current"
		echo "$dir"
	) 9>"$VM_CACHE/lock"
	local rc=$?
	[ $rc = 3 ] && vm_unavailable "kernel $name ($meta from $suite) is not in the cache and could not be downloaded"
	return $rc
}
