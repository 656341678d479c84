#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# build.sh KVER QKD_DIR [OUTDIR]
#
# Build the test module qkd_kapi_test.ko (tests/kmod/) for kernel KVER
# ("debug": the tree of tests/vm/build-debug-kernel.sh) against the qkd.ko
# built in QKD_DIR, which must hold that build's Module.symvers (qkd.ko's
# exports: KBUILD_EXTRA_SYMBOLS), and put the result in QKD_DIR next to
# qkd.ko, where tests/kernel/test_kapi.c looks for it. Built in a fresh
# OUTDIR (default build/kmod-kapi-test/KVER) from a copy of tests/kmod/ and
# include/, with W=1: any warning or error (compiler or modpost) fails
# (exit 1); the log is OUTDIR.build.log.
set -eu
# shellcheck source=SCRIPTDIR/../lib/vm-common.sh
. "$(dirname "$0")/../lib/vm-common.sh"

{ [ $# -ge 2 ] && [ $# -le 3 ]; } || vm_die "usage: ${0##*/} KVER QKD_DIR [OUTDIR]"
k=$1
qkd=$(cd "$2" && pwd)
kdir=$(vm_kdir "$k") || exit 2
[ -d "$kdir" ] || vm_die "no $kdir (kernel headers)"
[ -f "$qkd/Module.symvers" ] || vm_die "no $qkd/Module.symvers (build qkd.ko first)"
d=${3:-$TOP/build/kmod-kapi-test/$k}
case $d in /*) ;; *) d=$PWD/$d ;; esac
d=${d%/}
log=$d.build.log

mkdir -p "$(dirname "$d")"
if command -v flock >/dev/null 2>&1; then
	exec 8>>"$d.lock"
	flock 8
fi
rm -rf "$d"
mkdir -p "$d"
(cd "$TOP" && tar -cf - include tests/kmod/Kbuild tests/kmod/*.c tests/kmod/*.h) |
	tar -C "$d" -xf -
mv "$d"/tests/kmod/* "$d"/
rm -rf "$d/tests"
rc=0
make -C "$kdir" M="$d" W=1 KBUILD_EXTRA_SYMBOLS="$qkd/Module.symvers" \
	modules >"$log" 2>&1 || rc=$?
warn=$(grep -E -i '(^|[^a-z_])(warning|error):' "$log" || true)
if [ "$rc" -ne 0 ] || [ -n "$warn" ] || [ ! -f "$d/qkd_kapi_test.ko" ]; then
	cat "$log" >&2
	vm_log "kmod/build: $k: FAILED (make exit $rc${warn:+, warnings}); log: ${log#"$TOP"/}"
	exit 1
fi
cp "$d/qkd_kapi_test.ko" "$qkd/qkd_kapi_test.ko"
