#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
#
# run-vm.sh — run statically linked programs inside a Debian kernel under
# qemu (software emulation) and exit with the program's status.
#
#   run-vm.sh --kernel 6.1|6.12|7.2|self [options] -- PROGRAM [ARGS...]
#
# See README.md (same directory) for the options, the exit statuses and the
# cache. In short: 0..255 the program's status (77 = skipped); 77 also when
# qemu or the kernel is missing (99 under CI=true); 99 a harness error, or
# the guest never reached the test twice; 124 the test timed out.
set -u
. "$(dirname "$0")/lib.sh"

usage() {
	cat >&2 <<'EOF'
usage: run-vm.sh --kernel 6.1|6.12|7.2|self [options] -- PROGRAM [ARGS...]
  --kernel K        Debian kernel to boot (6.1 bookworm, 6.12 trixie, 7.2 sid), or
                    self: the suite's own (build-kernel.sh; idle page tracking)
  --numa            two NUMA nodes, node 1 without CPUs; numa_balancing off
  --numa-cpus       two NUMA nodes with half the CPUs each (--smp 2 or more)
  --zram [SIZE]     zram swap of SIZE (default 512M), modules from the kernel's packages
  --append ARGS     extra kernel command line (repeatable)
  --timeout S       seconds per boot (default 300)
  --mem M           guest memory in MiB (default 2048)
  --smp N           guest CPUs (default 2)
  --file PATH       also copy PATH into the guest's /test/bin (repeatable)
  --results DIR     where logs of failed runs are kept
  --name NAME       name of the run in messages and the results dir
  --keep            keep the log of a successful run too
  --qemu-arg ARG    extra qemu argument (repeatable)
  -v, --verbose     stream the guest console to stderr
EOF
	exit 2
}

kernel="" numa=0 zram="" timeout=300 mem=2048 smp=2 results="" name="" keep=0 verbose=0
append=() files=() qemu_extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=${2:?}; shift ;;
	--numa) numa=1 ;;
	--numa-cpus) numa=2 ;;
	--zram)
		zram=512M
		case "${2:-}" in [0-9]*) zram=$2; shift ;; esac ;;
	--append) append+=("${2:?}"); shift ;;
	--timeout) timeout=${2:?}; shift ;;
	--mem) mem=${2:?}; shift ;;
	--smp) smp=${2:?}; shift ;;
	--file) files+=("${2:?}"); shift ;;
	--results) results=${2:?}; shift ;;
	--name) name=${2:?}; shift ;;
	--keep) keep=1 ;;
	--qemu-arg) qemu_extra+=("${2:?}"); shift ;;
	-v | --verbose) verbose=1 ;;
	--) shift; break ;;
	*) usage ;;
	esac
	shift
done
if [ -z "$kernel" ] || [ $# = 0 ]; then usage; fi
prog=$1
shift
[ -f "$prog" ] || vm_die "no program $prog"
name=${name:-$(basename "$prog")}
results=${results:-$(vm_results_dir)}

# --- prerequisites ----------------------------------------------------------
QEMU=${LIBDAMON_VM_QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || vm_unavailable "$QEMU not found (install it with scripts/vm-deps.sh)"
BUSYBOX=${LIBDAMON_VM_BUSYBOX:-/bin/busybox}
if [ ! -x "$BUSYBOX" ] || LC_ALL=C readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
	vm_unavailable "no statically linked busybox at $BUSYBOX (install busybox-static with scripts/vm-deps.sh)"
fi
command -v cpio >/dev/null || vm_unavailable "cpio not found (install it with scripts/vm-deps.sh)"
CC=${CC:-cc}
for f in "$prog" "${files[@]}"; do
	[ -f "$f" ] || vm_die "no file $f"
	if LC_ALL=C readelf -l "$f" 2>/dev/null | grep -q 'program interpreter'; then
		vm_die "$f is dynamically linked; the guest has no libraries: link it with -static"
	fi
done

kdir=$(vm_fetch_kernel "$kernel") || exit $?
kver=$(cat "$kdir/kver")

# --- base initramfs (cached): busybox as /init's shell, vm-exit -------------
# A tool built from vm-exit.c, cached by the source's hash.
mkdir -p "$VM_CACHE/bin" "$VM_CACHE/initramfs"
hash=$(sha256sum <"$VM_DIR/vm-exit.c" | cut -c1-16)
vm_exit_bin=$VM_CACHE/bin/vm-exit-$hash
if [ ! -x "$vm_exit_bin" ]; then
	command -v "$CC" >/dev/null || vm_unavailable "no C compiler ($CC) to build vm-exit"
	"$CC" -static -O2 -o "$vm_exit_bin.tmp.$$" "$VM_DIR/vm-exit.c" ||
		vm_die "cannot build vm-exit statically (is libc6-dev installed?)"
	mv "$vm_exit_bin.tmp.$$" "$vm_exit_bin"
fi

# Write a newc archive of directory $1 to $2. Owner root, and the root
# directory 0755 (mktemp makes 0700, which breaks non-root guest processes).
mkcpio() {
	chmod 0755 "$1"
	(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2"
}

hash=$(cat "$VM_DIR/init" "$BUSYBOX" "$vm_exit_bin" | sha256sum | cut -c1-16)
base=$VM_CACHE/initramfs/base-$hash.cpio
if [ ! -f "$base" ]; then
	t=$(mktemp -d)
	mkdir -p "$t/bin" "$t/etc" "$t/proc" "$t/sys" "$t/dev" "$t/tmp" "$t/run" "$t/test"
	cp "$BUSYBOX" "$t/bin/busybox"
	cp "$vm_exit_bin" "$t/bin/vm-exit"
	cp "$VM_DIR/init" "$t/init"
	chmod 0755 "$t/init" "$t/bin/busybox" "$t/bin/vm-exit"
	chmod 1777 "$t/tmp"
	echo "libdamon test VM" >"$t/etc/libdamon-vm"
	mkcpio "$t" "$base.tmp.$$" && mv "$base.tmp.$$" "$base"
	rm -rf "$t"
	# Drop bases built from older inputs.
	find "$VM_CACHE/initramfs" -name 'base-*.cpio' ! -newer "$base" ! -path "$base" -delete
fi

# --- per-run overlay ----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/libdamon-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
ov=$work/overlay
mkdir -p "$ov/test/bin"
cp "$prog" "$ov/test/bin/"
for f in "${files[@]}"; do cp "$f" "$ov/test/bin/"; done
chmod -R a+rX "$ov/test"

# Quote for the guest's sh.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
	printf 'exec /test/bin/%s' "$(sq "$(basename "$prog")")"
	for a in "$@"; do printf ' %s' "$(sq "$a")"; done
	printf '\n'
} >"$ov/test/run"

setup=$ov/test/setup
: >"$setup"
if [ $numa != 0 ]; then
	# Also at run time: the boot parameter only takes enable/disable.
	# (A kernel without /proc/sys, like the suite's own, has only the boot
	# parameter: the setup must not fail there.)
	echo 'if [ -w /proc/sys/kernel/numa_balancing ]; then echo 0 >/proc/sys/kernel/numa_balancing; fi' >>"$setup"
fi

# Print the modules $1 needs, dependencies first ("depends=" of .modinfo).
declare -A mod_seen=()
mod_closure() {
	local n=${1//-/_} f dep
	[ -n "${mod_seen[$n]:-}" ] && return 0
	mod_seen[$n]=1
	f=$(find "$kdir/modules/kernel" \( -name "$n.ko*" -o -name "${n//_/-}.ko*" \) | head -n 1)
	[ -n "$f" ] || return 1
	for dep in $(mod_cat "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
		mod_closure "$dep" || { vm_log "module $dep (needed by $n) not found"; return 1; }
	done
	echo "$f"
}
mod_cat() {
	case "$1" in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -qdc "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}
if [ -n "$zram" ]; then
	grep -qs '^CONFIG_ZRAM=y' "$kdir/config" || [ -d "$kdir/modules/kernel" ] ||
		vm_die "kernel $kernel: no modules in $kdir"
	mkdir -p "$ov/test/modules"
	: >"$work/modules"
	if ! grep -qs '^CONFIG_ZRAM=y' "$kdir/config"; then
		mod_closure zram >>"$work/modules" ||
			vm_die "kernel $kernel: zram.ko or a module it needs is not in $kdir/modules"
	fi
	# Before 6.12 zram compresses through the crypto API, which would ask
	# a modprobe the guest lacks for a modular default algorithm.
	alg=$(sed -n 's/^CONFIG_ZRAM_DEF_COMP="\(.*\)"/\1/p' "$kdir/config")
	if [ -n "$alg" ] && [ -d "$kdir/modules/kernel/crypto" ] &&
		find "$kdir/modules/kernel/crypto" -name "$alg.ko*" | grep -q .; then
		mod_closure "$alg" >>"$work/modules" || vm_die "kernel $kernel: cannot load $alg"
	fi
	while read -r f; do
		b=$(basename "$f")
		b=${b%.xz}; b=${b%.zst}; b=${b%.gz}
		mod_cat "$f" >"$ov/test/modules/$b"
		echo "insmod /test/modules/$b || return 1" >>"$setup"
	done <"$work/modules"
	cat >>"$setup" <<EOF
echo $zram >/sys/block/zram0/disksize || return 1
mkswap /dev/zram0 >/dev/null || return 1
swapon /dev/zram0 || return 1
EOF
fi
[ -s "$setup" ] || rm -f "$setup"

mkcpio "$ov" "$work/overlay.cpio"
cat "$base" "$work/overlay.cpio" >"$work/initrd"

# --- boot ---------------------------------------------------------------------
cmdline="console=ttyS0 panic=-1 quiet"
# shellcheck disable=SC2054 # commas belong to qemu's option syntax
qemu_args=(-accel tcg,thread=multi -m "$mem" -smp "$smp"
	-kernel "$kdir/vmlinuz" -initrd "$work/initrd"
	-display none -serial stdio -monitor none -no-reboot
	-device isa-debug-exit,iobase=0xf4,iosize=0x04)
if [ $numa != 0 ]; then
	half=$((mem / 2))
	# shellcheck disable=SC2054
	qemu_args+=(-object "memory-backend-ram,id=m0,size=${half}M"
		-object "memory-backend-ram,id=m1,size=$((mem - half))M")
	if [ $numa = 1 ]; then
		qemu_args+=(-numa "node,nodeid=0,cpus=0-$((smp - 1)),memdev=m0"
			-numa node,nodeid=1,memdev=m1)
	else
		[ "$smp" -ge 2 ] || vm_die "--numa-cpus needs --smp 2 or more"
		qemu_args+=(-numa "node,nodeid=0,cpus=0-$((smp / 2 - 1)),memdev=m0"
			-numa "node,nodeid=1,cpus=$((smp / 2))-$((smp - 1)),memdev=m1")
	fi
	cmdline="$cmdline numa_balancing=disable"
fi
[ ${#append[@]} -gt 0 ] && cmdline="$cmdline ${append[*]}"
qemu_args+=(-append "$cmdline" "${qemu_extra[@]}")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Boot once; sets qrc (qemu's status), took (seconds qemu ran) and
# init_at (seconds from qemu's start to /init's marker line, "" if never).
boot() {
	local log=$1 t0 pid tailpid=""
	t0=$(now)
	init_at=""
	# made here, not by the background job's redirection: tail and grep
	# below may look before that job has opened it
	: >"$log"
	timeout -k 10 "$timeout" "$QEMU" "${qemu_args[@]}" </dev/null >"$log" 2>&1 &
	pid=$!
	if [ $verbose = 1 ]; then
		tail -n +1 -f --pid=$pid "$log" >&2 &
		tailpid=$!
	fi
	while kill -0 $pid 2>/dev/null; do
		if [ -z "$init_at" ] && grep -aq '@@LIBDAMON-VM-INIT@@' "$log"; then
			init_at=$(elapsed "$t0")
		fi
		sleep 0.1
	done
	wait $pid
	qrc=$?
	took=$(elapsed "$t0")
	[ -n "$tailpid" ] && wait "$tailpid"
	return 0
}

marker() { tr -d '\r' <"$1" | sed -n "s/^.*@@LIBDAMON-VM-$2@@ *//p" | tail -n 1; }

label="$name on $kernel ($kver)"
status="" reason="" boot_s="" end_s=""
for attempt in 1 2; do
	log=$work/guest-$attempt.log
	boot "$log"
	init=$(marker "$log" INIT)
	if [ -z "$init" ]; then
		if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
			reason="no /init marker within ${timeout} s"
		else
			reason="qemu exited with $qrc before /init"
		fi
		vm_log "$label: the guest never reached the test ($reason; attempt $attempt of 2)"
		continue
	fi
	reason=""
	boot_s=$(echo "$init" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
	ex=$(marker "$log" EXIT)
	end_s=$(echo "$ex" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
	ex=${ex%% *}
	case "$ex" in *[!0-9]*) ex="" ;; esac
	if [ -n "$ex" ]; then
		status=$ex
		# qemu should say the same through isa-debug-exit ((N << 1) | 1,
		# truncated to 8 bits); 0 means vm-exit fell back to poweroff.
		if [ "$qrc" != $((((ex << 1) | 1) & 255)) ] && [ "$qrc" != 0 ]; then
			vm_log "$label: note: the guest said $ex but qemu exited with $qrc"
		fi
	elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		status=124 reason="timed out after ${timeout} s"
	else
		status=99 reason="the guest died during the test (qemu status $qrc, no exit line)"
	fi
	break
done

if [ -z "$status" ]; then
	status=99
	reason="the guest never reached the test, twice ($reason)"
fi

vm_log "$label: exit $status${reason:+ — $reason}; boot to /init ${init_at:-?} s (guest uptime ${boot_s:-?} s at /init, ${end_s:-?} s at the end), qemu ran ${took} s${attempt:+ (attempt $attempt)}"
retried=""
[ "$attempt" = 2 ] && [ -n "$init" ] && retried=1
# Kept: failed runs, runs that needed the retry (for flakiness), --keep.
if [ "$status" != 0 ] && [ "$status" != 77 ] || [ $keep = 1 ] || [ -n "$retried" ]; then
	dest=$results/$name-$kernel-$(date +%Y%m%d-%H%M%S)-$$
	mkdir -p "$dest"
	cp "$work"/guest-*.log "$dest/"
	cp "$work/overlay/test/run" "$dest/run"
	[ -f "$setup" ] && cp "$setup" "$dest/setup"
	printf '%q ' "$QEMU" "${qemu_args[@]}" >"$dest/qemu-cmdline"
	echo >>"$dest/qemu-cmdline"
	echo "$kdir" >"$dest/kernel"
	if [ "$status" != 0 ] && [ "$status" != 77 ] && [ $verbose = 0 ]; then
		echo "----- last 40 lines of the guest log ($dest/$(basename "$log")) -----" >&2
		tr -d '\r' <"$log" | tail -n 40 >&2
		echo "-----" >&2
	elif [ -n "$retried" ]; then
		echo "----- last 15 lines of the boot that never reached the test -----" >&2
		tr -d '\r' <"$work/guest-1.log" | tail -n 15 >&2
		echo "-----" >&2
	fi
	vm_log "log kept in $dest"
fi
exit "$status"
