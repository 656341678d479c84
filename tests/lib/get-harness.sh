#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Extract the kselftest harness (kselftest_harness.h, kselftest.h) from the
# Debian linux-source package into $1 (default build/kselftest). The harness
# is not copied into this tree: it is taken from the kernel source we build
# against, like the kernel's own selftests do.
set -eu
out=${1:-build/kselftest}
[ -f "$out/kselftest_harness.h" ] && exit 0
tarball=$(ls /usr/src/linux-source-6.12.tar.xz /usr/src/linux-source-*.tar.xz 2>/dev/null | head -n 1 || true)
if [ -z "$tarball" ]; then
	echo "get-harness: no /usr/src/linux-source-*.tar.xz; install linux-source-6.12" >&2
	exit 1
fi
top=$(basename "$tarball" .tar.xz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$tarball" -C "$tmp" \
	"$top/tools/testing/selftests/kselftest_harness.h" \
	"$top/tools/testing/selftests/kselftest.h"
mkdir -p "$out"
cp "$tmp/$top/tools/testing/selftests/kselftest_harness.h" \
   "$tmp/$top/tools/testing/selftests/kselftest.h" "$out/"
