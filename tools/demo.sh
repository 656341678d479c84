#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The main job, shown: installs what is needed, builds qkd.ko, qkdctl, qkdd
# and qkd-kme, boots the Debian 6.12 kernel (or QKD_DEMO_KERNEL) in qemu and
# runs tests/e2e/demo.sh there: two sites (network namespaces), a qkdd pair
# running BB84 between them and filling both kernel stores with the same
# keys, an eavesdropper's round aborted with no key added, keys taken at
# both ends (with qkdctl, then as ETSI GS QKD 014 applications: curl as
# SAE A takes a key from site A's qkd-kme, curl as SAE B the same key by
# its key_ID from site B's, over HTTPS with demo-only certificates made on
# the fly), and an ESP SA pair keyed and re-keyed from the stream inside
# the kernel. About 2-5 minutes in the emulated VM, depending on the load
# of the host.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh
make -s -j2 tools
kver=${QKD_DEMO_KERNEL:-}
if [ -z "$kver" ]; then
	kver=$(ls -d /lib/modules/6.12*/build 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname | xargs -r basename)
fi
[ -n "$kver" ] || { echo "no 6.12 kernel headers installed" >&2; exit 1; }
out=build/kmod-demo/$kver
tests/vm/build-module.sh "$kver" "$out"
exec tests/vm/run-vm.sh --kernel "$kver" -- tests/e2e/demo.sh "$out/qkd.ko"
