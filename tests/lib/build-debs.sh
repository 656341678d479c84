#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/build-debs.sh [OUTDIR]: the Debian packages of the tree as git
# sees it (tracked and new files, no build products), built by
# `dpkg-buildpackage -us -uc -b` in a scratch copy (it writes to the parent
# directory: never the tree's), into OUTDIR (default build/deb): the .debs,
# the .changes and build.log. The packages are built again only when the
# sources changed: OUTDIR/stamp holds the hash of the source tarball they
# were built from (tests/lib/check-deb.sh builds them here in the lint
# stage; tests/vm/debvm.sh installs them in a VM in the debvm stage).
# Prints the .changes file's path last; exit 1 if the build failed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
out=${1:-build/deb}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
ver=$(cat VERSION)
arch=$(dpkg --print-architecture)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

mkdir -p "$T/src/qkd"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | LC_ALL=C sort -z | tar --null --owner=0 --group=0 --numeric-owner \
	-cf "$T/src.tar" -T -
stamp=$(sha256sum "$T/src.tar" | cut -d' ' -f1)
ch=$out/qkd_${ver}_$arch.changes
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$ch" ]; then
	echo "build-debs: the packages in $out are of these sources: not built again" >&2
	echo "$ch"
	exit 0
fi
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out/stamp"
tar -C "$T/src/qkd" -xf "$T/src.tar"
t0=$SECONDS
(cd "$T/src/qkd" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" \
	dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] || [ ! -f "$T/src/qkd_${ver}_$arch.changes" ]; then
	echo "build-debs: dpkg-buildpackage failed (exit $rc, log $out/build.log)" >&2
	tail -n 20 "$out/build.log" >&2
	exit 1
fi
cp "$T"/src/*.deb "$T"/src/*.changes "$T"/src/*.buildinfo "$out/" || exit 1
echo "$stamp" >"$out/stamp"
echo "build-debs: built in $((SECONDS - t0)) s into $out" >&2
echo "$ch"
