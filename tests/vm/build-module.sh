#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# build-module.sh [--copy-to DIR] KVER [OUTDIR]
#
# Build qkd.ko for kernel KVER without touching the source tree: copy
# Kbuild, VERSION, kernel/ and include/ (sources only) into a fresh OUTDIR (default
# build/kmod/KVER) and run
#   make -C /lib/modules/KVER/build M=OUTDIR W=1 modules
# there (KVER "debug": against the tree of tests/vm/build-debug-kernel.sh,
# which must be built). Fails (exit 1) if make fails or prints any warning or
# error (compiler or modpost); the log is OUTDIR.build.log. Concurrent builds of
# the same OUTDIR wait for each other (flock on OUTDIR.lock).
# --copy-to DIR: also copy the result to DIR/qkd.ko (and its Module.symvers)
# while still holding the lock, so that a later rebuild of OUTDIR cannot
# change what you test.
set -eu
# shellcheck source=SCRIPTDIR/../lib/vm-common.sh
. "$(dirname "$0")/../lib/vm-common.sh"

copy_to=
while [ $# -gt 0 ]; do
	case $1 in
	--copy-to) [ $# -ge 2 ] || vm_die "--copy-to wants a directory"; copy_to=$2; shift 2 ;;
	--copy-to=*) copy_to=${1#*=}; shift ;;
	-*) vm_die "usage: ${0##*/} [--copy-to DIR] KVER [OUTDIR]" ;;
	*) break ;;
	esac
done
{ [ $# -ge 1 ] && [ $# -le 2 ]; } || vm_die "usage: ${0##*/} [--copy-to DIR] KVER [OUTDIR]"
k=$1
kdir=$(vm_kdir "$k") || exit 2
[ -d "$kdir" ] || vm_die "no $kdir (kernel headers)"
d=${2:-$TOP/build/kmod/$k}
case $d in /*) ;; *) d=$PWD/$d ;; esac
d=${d%/}
log=$d.build.log

mkdir -p "$(dirname "$d")"
if command -v flock >/dev/null 2>&1; then
	exec 8>>"$d.lock"
	if ! flock -n 8; then
		vm_log "build-module: waiting for another build of ${d#"$TOP"/}"
		flock 8
	fi
fi

rm -rf "$d"
mkdir -p "$d"
(cd "$TOP" && tar -cf - --exclude='*.o' --exclude='.*.cmd' --exclude='*.ko' \
	--exclude='*.mod' --exclude='*.mod.c' --exclude='*.a' --exclude='*.d' \
	--exclude='modules.order' --exclude='Module.symvers' \
	Kbuild VERSION kernel include) | tar -C "$d" -xf -
rc=0
make -C "$kdir" M="$d" W=1 modules >"$log" 2>&1 || rc=$?
warn=$(grep -E -i '(^|[^a-z_])(warning|error):' "$log" || true)
if [ "$rc" -ne 0 ] || [ -n "$warn" ] || [ ! -f "$d/qkd.ko" ]; then
	cat "$log" >&2
	[ -z "$warn" ] || printf '%s\n' "$warn" | sed 's/^/  /' >&2
	vm_log "build-module: $k: FAILED (make exit $rc${warn:+, warnings}); log: ${log#"$TOP"/}"
	exit 1
fi
if [ -n "$copy_to" ]; then
	mkdir -p "$copy_to"
	cp "$d/qkd.ko" "$copy_to/qkd.ko"
	# Its exports, for modules built against it (tests/kmod/build.sh).
	cp "$d/Module.symvers" "$copy_to/Module.symvers"
fi
