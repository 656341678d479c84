#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# selftest.sh [--kernel KVER|all] [--quick]
#
# Checks the VM bench itself (no qkd.ko needed), printing TAP:
#   - netns, veth, ping, xfrm_user/esp4 and an ESP SA work on every kernel
#   - a failing command's exit code comes back (7; 127 for a missing one)
#   - a WARNING in dmesg fails a passing command (123)
#   - a command that outlives --timeout gives 124, and a guest that cannot
#     stop it itself is killed by the host (124)
#   - a guest panic gives 125
#   - the initramfs is cached
#   - run-kernel-tests.sh counts TAP right (ok, not ok, # SKIP, a plan not
#     completed, a dmesg hit) with two fake test binaries; needs qkd.ko to
#     build, else that check is skipped
# --quick: only the first check. Each check boots a VM (15-60 s each).
set -eu
# shellcheck source=SCRIPTDIR/../lib/vm-common.sh
. "$(dirname "$0")/../lib/vm-common.sh"
cd "$TOP"

kernel=all
quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) [ $# -ge 2 ] || vm_die "--kernel wants a value"; kernel=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	*) vm_die "usage: ${0##*/} [--kernel KVER|all] [--quick]" ;;
	esac
done
mapfile -t kernels < <(vm_resolve_kernels "$kernel")
newest=${kernels[${#kernels[@]}-1]}
vm=tests/vm/run-vm.sh
n=0
fail=0

# check NAME WANT_RC CMD...: run CMD, compare its exit code.
check() {
	local name=$1 want=$2 rc=0 t0
	shift 2
	t0=$(date +%s)
	"$@" >"$log" 2>&1 || rc=$?
	n=$((n + 1))
	if [ "$rc" -eq "$want" ]; then
		echo "ok $n - $name (exit $rc, $(($(date +%s) - t0))s)"
	else
		echo "not ok $n - $name (exit $rc, want $want)"
		sed 's/^/# /' "$log" | tail -n 30
		fail=$((fail + 1))
	fi
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

net='set -e; uname -r
ip netns add a; ip netns add b
ip link add v0 netns a type veth peer name v1 netns b
ip -n a addr add 10.0.0.1/24 dev v0; ip -n b addr add 10.0.0.2/24 dev v1
ip -n a link set v0 up; ip -n b link set v1 up
ip netns exec a busybox ping -c 1 -W 5 10.0.0.2
modprobe -a xfrm_user esp4
ip -n a xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi 0x100 mode transport aead "rfc4106(gcm(aes))" 0x0102030405060708090a0b0c0d0e0f1011121314 128
ip -n a xfrm state | grep -q "spi 0x00000100"'
for k in "${kernels[@]}"; do
	check "$k: netns, veth, ping, esp4 SA" 0 $vm -q --kernel "$k" --timeout 300 -- sh -c "$net"
done
if [ "$quick" = 0 ]; then
	check "exit code passes through" 7 $vm -q --kernel "$newest" --timeout 300 -- sh -c 'exit 7'
	check "missing command" 127 $vm -q --kernel "$newest" --timeout 300 -- no-such-command-qkdvm
	check "dmesg WARNING fails a passing command" 123 $vm -q --kernel "$newest" --timeout 300 -- \
		sh -c "echo 'WARNING: qkdvm selftest' >/dev/kmsg"
	check "guest-side timeout" 124 $vm -q --kernel "$newest" --timeout 60 -- sleep 1000
	# shellcheck disable=SC2016 # $PPID is for the guest's shell
	check "host-side timeout (guest timeout stopped)" 124 $vm -q --kernel "$newest" --timeout 60 -- \
		sh -c 'kill -STOP $PPID; sleep 1000'
	check "guest panic" 125 $vm -q --kernel "$newest" --timeout 300 -- sh -c 'echo c >/proc/sysrq-trigger'
	before=$(stat -c %Y "build/vm/$newest/initrd.gz")
	check "initramfs cached" 0 tests/vm/mkinitrd.sh "$newest" "build/vm/$newest/initrd.gz"
	check "initramfs not rebuilt" 0 test "$(stat -c %Y "build/vm/$newest/initrd.gz")" = "$before"

	fake=build/vm/selftest
	rm -rf "$fake" && mkdir -p "$fake"
	printf '%s\n' '#!/bin/sh' 'echo "TAP version 13"' 'echo "1..3"' \
		'echo "ok 1 fake.pass"' 'echo "ok 2 fake.skip # SKIP not here"' \
		'echo "not ok 3 fake.fail"' \
		'echo "WARNING: qkdvm selftest" >/dev/kmsg' 'exit 1' >"$fake/test_fake"
	printf '%s\n' '#!/bin/sh' 'echo "TAP version 13"' 'echo "1..3"' \
		'echo "ok 1 short.one"' >"$fake/test_short"
	chmod +x "$fake/test_fake" "$fake/test_short"
	n=$((n + 1))
	rc=0
	tests/vm/run-kernel-tests.sh -q --kernel "$newest" --timeout 300 \
		"$fake/test_fake" "$fake/test_short" >"$log" 2>&1 || rc=$?
	last=$(tail -n 1 "$log")
	if grep -q 'not ok - build qkd.ko' "$log"; then
		echo "ok $n - run-kernel-tests.sh counting # SKIP qkd.ko does not build"
	elif [ "$rc" -eq 1 ] && [ "$last" = "3 passed, 3 failed, 1 skipped" ]; then
		echo "ok $n - run-kernel-tests.sh counting ($last)"
	else
		echo "not ok $n - run-kernel-tests.sh counting (exit $rc, '$last')"
		sed 's/^/# /' "$log" | tail -n 30
		fail=$((fail + 1))
	fi
	rm -rf "$fake"
fi
echo "1..$n"
echo "# vm selftest: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
