#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# build-debug-kernel.sh [--check] [--print-dir]
#
# Build the debug VM kernel (KASAN, UBSAN, kmemleak, lockdep, fault
# injection; see tests/vm/debug-kernel.config and Documentation/robustness.md)
# from the Debian linux-source-6.12 package, and print the built tree's path
# on stdout (the last line). The tree lives in a cache outside the checkout:
#   ${QKD_CACHE:-/var/cache/qkd}/debug-kernel/<key>/
# where <key> hashes the config fragment, the source package's version and
# the build recipe below; a tree whose key matches is reused (a few ms), any
# change builds a new one (1600 CPU seconds from a fresh unpack: 55
# minutes on this 2-core machine shared with other jobs, about 14 on two
# idle cores; a few when an older tree of the same source and recipe is
# there to start from, see below; the build runs under nice with
# -j${QKD_DEBUG_KERNEL_JOBS:-2}). Older trees are removed
# after a successful build (keep: QKD_DEBUG_KERNEL_KEEP, default 1 besides
# the new one). Concurrent runs wait for each other (flock).
#
# The tree holds: arch/x86/boot/bzImage, the configured and built source (an
# out-of-tree module builds with make -C TREE M=DIR modules), modroot/ (a
# /lib/modules/KVER with modules.builtin for modprobe in the guest), and
# kernelrelease. Log: TREE.log while building, TREE/build.log after.
#
#   --check      exit 0 if the tree for the current key is built, 1 if not;
#                print nothing else (with --print-dir: print it if built)
#   --print-dir  print the tree's path only (do not build); exit 1 if absent
set -eu
# shellcheck source=SCRIPTDIR/../lib/vm-common.sh
. "$(dirname "$0")/../lib/vm-common.sh"

check=0
print_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--check) check=1; shift ;;
	--print-dir) print_only=1; shift ;;
	-h | --help) sed -n '4,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
	*) vm_die "usage: ${0##*/} [--check] [--print-dir]" ;;
	esac
done

pkg=linux-source-6.12
src=/usr/src/$pkg.tar.xz
frag=$TOP/tests/vm/debug-kernel.config
cache=${QKD_CACHE:-/var/cache/qkd}/debug-kernel
jobs=${QKD_DEBUG_KERNEL_JOBS:-2}
# Bump when the steps below change what gets built.
recipe=2

[ -f "$frag" ] || vm_die "no $frag"
if [ ! -f "$src" ]; then
	[ "$check" = 1 ] || [ "$print_only" = 1 ] && exit 1
	vm_die "no $src: run tools/install-deps.sh (package $pkg)"
fi
srcver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null ||
	stat -L -c '%s %Y' "$src")
key=$({
	echo "recipe $recipe"
	echo "source $pkg $srcver"
	cat "$frag"
} | sha256sum | cut -c1-16)
tree=$cache/$key

if [ "$check" = 1 ] || [ "$print_only" = 1 ]; then
	[ -f "$tree/.built" ] || exit 1
	[ "$print_only" = 0 ] || printf '%s\n' "$tree"
	exit 0
fi

mkdir -p "$cache"
exec 8>>"$cache/.lock"
if ! flock -n 8; then
	vm_log "build-debug-kernel: waiting for another build ($cache/.lock)"
	flock 8
fi
if [ -f "$tree/.built" ]; then
	printf '%s\n' "$tree"
	exit 0
fi

for t in bc flex bison gcc make; do
	command -v "$t" >/dev/null 2>&1 || vm_die "$t missing: run tools/install-deps.sh"
done
[ -f /usr/include/libelf.h ] || [ -f /usr/include/libelf/libelf.h ] ||
	vm_die "libelf-dev missing: run tools/install-deps.sh"

start=$(date +%s)
log=$tree.log
tmp=$tree.tmp
rm -rf "$tmp" "$tree"
mkdir -p "$tmp"
: >"$log"
vm_log "build-debug-kernel: building $tree (log: $log)"

fail() {
	tail -n 40 "$log" >&2
	vm_log "build-debug-kernel: FAILED: $*; log: $log"
	exit 1
}

# Start from the newest built tree of the same source package and recipe
# when there is one: Kbuild tracks each object's CONFIG_ dependencies, so a
# changed fragment rebuilds only what the changed options touch (minutes,
# not the hour a full build takes on 2 cores). QKD_DEBUG_KERNEL_FULL=1
# builds from a fresh unpack instead.
origin="$pkg $srcver recipe $recipe"
seed=
if [ "${QKD_DEBUG_KERNEL_FULL:-0}" != 1 ]; then
	for d in "$cache"/*/; do
		d=${d%/}
		[ -f "$d/.built" ] || continue
		[ "$(cat "$d/origin" 2>/dev/null)" = "$origin" ] || continue
		if [ -z "$seed" ] || [ "$d/.built" -nt "$seed/.built" ]; then
			seed=$d
		fi
	done
fi
if [ -n "$seed" ]; then
	vm_log "build-debug-kernel: incremental, from $seed"
	echo "seeded from $seed" >>"$log"
	cp -a "$seed/." "$tmp/" || fail "copy $seed"
	rm -rf "$tmp/.built" "$tmp/build.log" "$tmp/build-seconds" \
		"$tmp/build-cpu-seconds" "$tmp/modroot" \
		"$tmp/kernelrelease" "$tmp/origin"
else
	tar -C "$tmp" --strip-components=1 -xJf "$src" >>"$log" 2>&1 || fail "unpack $src"
fi
k() { nice -n 19 make -C "$tmp" "$@" >>"$log" 2>&1; }
# Only what the fragment lists (see its header): allnoconfig with the
# fragment forced, not a defconfig, so the build takes minutes, not an hour.
rm -f "$tmp/.config"
k KCONFIG_ALLCONFIG="$frag" allnoconfig || fail "make allnoconfig"
k olddefconfig || fail "make olddefconfig"

# Kconfig drops an option whose dependencies are not there without a word:
# every option of the fragment must have the requested value in the final
# .config.
bad=
while IFS= read -r line; do
	case $line in CONFIG_*=*) ;; *) continue ;; esac
	opt=${line%%=*}
	val=${line#*=}
	if [ "$val" = n ]; then
		grep -qx "$opt=.*" "$tmp/.config" && bad="$bad $line"
	else
		grep -qxF "$line" "$tmp/.config" || bad="$bad $line"
	fi
done <"$frag"
[ -z "$bad" ] || fail "options not set as the fragment asks:$bad"

# bzImage, plus modules so that Module.symvers exists for out-of-tree builds
# and modules_install writes modules.builtin for modprobe in the guest.
k -j"$jobs" bzImage modules || fail "make bzImage modules"
rm -rf "$tmp/modroot"
k INSTALL_MOD_PATH="$tmp/modroot" DEPMOD=/sbin/depmod modules_install ||
	fail "make modules_install"
make -s -C "$tmp" kernelrelease >"$tmp/kernelrelease" 2>>"$log" || fail "make kernelrelease"
[ -f "$tmp/arch/x86/boot/bzImage" ] || fail "no bzImage"

# CPU seconds of the unpack, configuration and build (user + system of
# every child): with the wall time, what tells a loaded machine from a slow
# build.
times >"$tmp/build-times"
cpu=$(awk 'NR == 2 {
	t = 0
	for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
	printf "%d\n", t + 0.5
}' "$tmp/build-times")
rm -f "$tmp/build-times"

mv "$tmp" "$tree"
mv "$log" "$tree/build.log"
elapsed=$(($(date +%s) - start))
printf '%s\n' "$elapsed" >"$tree/build-seconds"
printf '%s\n' "$cpu" >"$tree/build-cpu-seconds"
printf '%s\n' "$origin" >"$tree/origin"
: >"$tree/.built"
vm_log "build-debug-kernel: built $(cat "$tree/kernelrelease") in ${elapsed}s (CPU ${cpu}s): $tree"

# Keep the newest QKD_DEBUG_KERNEL_KEEP older trees.
keep=${QKD_DEBUG_KERNEL_KEEP:-1}
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -printf '%T@ %p\n' |
	sort -rn | tail -n +"$((keep + 1))" | while read -r _ old; do
	case $old in "$cache"/*) rm -rf "$old" ;; esac
done
printf '%s\n' "$tree"
