#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Extract the few files of the kernel source that the tests and lint use,
# from the Debian linux-source package, into $1 (default build/ksrc):
# the kselftest harness, checkpatch.pl with its data files, the YNL schema
# for genetlink specs, and (in $1/ynl, in the kernel's layout) the YNL code
# generator tools/net/ynl/ynl-gen-c.py with its library and schemas, which
# `make regen` runs. Nothing of the kernel is copied into this tree.
set -eu
out=${1:-build/ksrc}
[ -f "$out/.done" ] && [ -f "$out/ynl/.done" ] && exit 0
tarball=/usr/src/linux-source-6.12.tar.xz
if [ ! -f "$tarball" ]; then
	echo "kernel-source: no /usr/src/linux-source-*.tar.xz; run tools/install-deps.sh" >&2
	exit 1
fi
top=$(basename "$tarball" .tar.xz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -f "$out/.done" ]; then
	# A tree extracted before the generator was part of it: add it alone.
	tar -xJf "$tarball" -C "$tmp" "$top/tools/net/ynl/ynl-gen-c.py" \
		"$top/tools/net/ynl/lib" "$top/Documentation/netlink"
	mkdir -p "$out/ynl/tools/net"
	cp -r "$tmp/$top/tools/net/ynl" "$out/ynl/tools/net/"
	cp -r "$tmp/$top/Documentation" "$out/ynl/"
	touch "$out/ynl/.done"
	exit 0
fi
tar -xJf "$tarball" -C "$tmp" \
	"$top/tools/net/ynl/ynl-gen-c.py" \
	"$top/tools/net/ynl/lib" \
	"$top/Documentation/netlink" \
	"$top/tools/testing/selftests/kselftest_harness.h" \
	"$top/tools/testing/selftests/kselftest.h" \
	"$top/scripts/checkpatch.pl" \
	"$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"
mkdir -p "$out"
cp "$tmp/$top/tools/testing/selftests/kselftest_harness.h" \
   "$tmp/$top/tools/testing/selftests/kselftest.h" \
   "$tmp/$top/scripts/checkpatch.pl" \
   "$tmp/$top/scripts/spelling.txt" \
   "$tmp/$top/scripts/const_structs.checkpatch" \
   "$tmp/$top/Documentation/netlink/genetlink-c.yaml" "$out/"
mkdir -p "$out/ynl/tools/net"
cp -r "$tmp/$top/tools/net/ynl" "$out/ynl/tools/net/"
cp -r "$tmp/$top/Documentation" "$out/ynl/"
touch "$out/ynl/.done"
touch "$out/.done"
