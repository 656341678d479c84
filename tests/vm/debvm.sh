#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/vm/debvm.sh [--kernel KVER] [--timeout S]: the Debian packages in a
# fresh systemd guest (issue 18), as TAP. The run-all.sh stage "debvm".
#   1. tests/lib/build-debs.sh builds the .debs into build/deb (or reuses
#      the lint stage's, if the sources are the same);
#   2. tests/vm/run-vm.sh --systemd boots KVER (default: the newest
#      installed Debian kernel) with systemd as PID 1 on an overlay of the
#      host's root, and runs tests/vm/guest-debvm.sh build/deb as a unit:
#      dpkg -i (the DKMS build for the guest's kernel), modules-load.d,
#      udev, two sites from /etc/qkd/siteA.conf and siteB.conf with the
#      installed qkd@.service, keys taken, restart (the stored keys
#      kept), qkdd killed (systemd restarts it), kill and start again with
#      no new PSK, an eavesdropper in the journal, stop (keys kept) and
#      qkdctl down --purge.
# Results of the VM: build/vm/results/debvm.KVER/ (log, journal, dmesg).
# --ko QKD_KO, a developer's shortcut: qkd-dkms is only unpacked (no DKMS
# build, the slow part under emulation) and QKD_KO is loaded instead; the
# checks of DKMS and modules-load.d are then named skips.
# Ends with "# ran: debvm KVER" (tests/run-all.sh's manifest).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
kver=
ko=
timeout_s=1800
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kver=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	*) echo "usage: $0 [--kernel KVER] [--timeout S] [--ko QKD_KO]" >&2; exit 2 ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(for v in /boot/vmlinuz-*; do
		k=${v#/boot/vmlinuz-}
		[ -d "/lib/modules/$k/build" ] && echo "$k"
	done | sort -V | tail -n 1)
fi
[ -n "$kver" ] || { echo "Bail out! no installed kernel with headers"; exit 1; }

t0=$SECONDS
if ! ch=$(tests/lib/build-debs.sh build/deb); then
	echo "not ok 1 - build the Debian packages (build/deb/build.log)"
	echo "1..1"
	exit 1
fi
echo "# packages: ${ch%/*} ($((SECONDS - t0)) s)"
# A private copy for the guest: nothing may change under a running VM
# (tests/vm/README.md), and the lint stage rebuilds build/deb.
stage=build/vm/staged-deb.$$
trap 'rm -rf "$stage"' EXIT
if ! mkdir -p "$stage" || ! cp "${ch%/*}"/*.deb "$stage/"; then
	echo "Bail out! cannot copy the packages to $stage"
	exit 1
fi
t0=$SECONDS
res=build/vm/results/debvm.$kver
out=$(mktemp)
envs=()
[ -z "$ko" ] || envs=(--env "QKD_DEBVM_KO=$(cd "$(dirname "$ko")" && pwd)/$(basename "$ko")")
tests/vm/run-vm.sh --systemd --kernel "$kver" --timeout "$timeout_s" --mem 2048 \
	--results "$res" ${envs[@]+"${envs[@]}"} -q -- tests/vm/guest-debvm.sh "$stage" >"$out" 2>&1
rc=$?
cat "$out"
rm -f "$out"
echo "# the VM: exit $rc in $((SECONDS - t0)) s (results $res: log, journal, dmesg)"
echo "# ran: debvm $kver"
exit "$rc"
