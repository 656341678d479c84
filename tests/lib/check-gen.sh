#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Are the files generated from the YNL spec current? Regenerates them from
# Documentation/netlink/specs/qkd.yaml (`make regen`, into a scratch
# directory) and compares them with the copies under DIR (default: this
# tree, i.e. the committed ones). Exit 0 if all three are identical, 1 with
# a diff if not, 2 if the generation itself fails.
#   tests/lib/check-gen.sh [DIR]
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$top}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! make -s -C "$top" regen YNL_OUT="$out" >"$out/log" 2>&1; then
	echo "check-gen: make regen failed:"
	tail -n 20 "$out/log"
	exit 2
fi
rc=0
for f in include/uapi/linux/qkd.h kernel/netlink-gen.h kernel/netlink-gen.c; do
	if ! diff -u "$dir/$f" "$out/$f"; then
		echo "check-gen: $f is not what the spec generates: run make regen"
		rc=1
	fi
done
exit $rc
