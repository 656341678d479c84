#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Runs inside the VM (tests/robust/canary.sh starts it with run-vm.sh):
#   tests/robust/canary-guest.sh QKD_KO SEED KEYS [-P]
# Loads the module, raises lockdown to confidentiality, runs "canary run"
# (keys with known patterns through
# delivery, flush, stream deletion, netns exit, refused pushes and ESP SAs),
# unloads the module, keeps the positive control (canary control: patterns
# that must be found) in a tmpfs file, then asks the host for a memory dump
# (the file dump-request in the results directory) and waits until it is
# taken (dump-done, which says "ok" or why not).
# Prints TAP lines without numbers; canary.sh numbers them.
set -u
ko=$1 seed=$2 keys=$3 policy=${4:-}
R=${QKDVM_RESULTS:?}

deps=$(modinfo -F depends "$ko" 2>/dev/null | tr ',' ' ')
# shellcheck disable=SC2086 # one word per module
[ -z "$deps" ] || modprobe -a $deps
# the SA phase: ESP over IPv4 (built in on the debug kernel)
modprobe -q -a xfrm_user esp4 2>/dev/null || true
if insmod "$ko"; then echo "ok - insmod qkd.ko"; else echo "not ok - insmod qkd.ko"; exit 1; fi
# The promise is made under lockdown=confidentiality (Documentation/
# threat-model.md): without it xfrm_user puts an SA's key into every
# NEWSA/DELSA notification, an skb it frees unwiped, and root reads kernel
# memory anyway. Raised after the modules are in (it is one-way); the
# AF_ALG and crypto modules loaded later are the kernel's own, signed.
# Every kernel the canary runs on has the lockdown LSM (the debug kernel's
# config asks for it): its absence is a failure, not a skip.
LD=/sys/kernel/security/lockdown
[ -e "$LD" ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
if echo confidentiality >"$LD" 2>/dev/null && grep -q '\[confidentiality\]' "$LD"; then
	echo "ok - lockdown raised to confidentiality"
else
	echo "not ok - lockdown raised to confidentiality ($(cat "$LD" 2>&1))"
fi
echo "qkd-canary: start" >/dev/kmsg 2>/dev/null || true
# shellcheck disable=SC2086 # -P or nothing
build/robust/canary run -s "$seed" -k "$keys" $policy
rc=$?
[ "$rc" -eq 0 ] || echo "not ok - canary run exit $rc"

# The canary's netns is torn down asynchronously; rmmod deletes the rest.
i=0
until rmmod qkd 2>/dev/null; do
	i=$((i + 1))
	if [ $i -ge 40 ]; then echo "not ok - rmmod qkd (still in use)"; break; fi
	sleep 0.5
done
[ $i -ge 40 ] || echo "ok - rmmod qkd"
# RCU callbacks and deferred work of the teardown.
sleep 2
echo "qkd-canary: dump" >/dev/kmsg 2>/dev/null || true
# The positive control: in guest memory (tmpfs pages) during the dump.
if build/robust/canary control -s "$seed" >/dev/shm/canary-control; then
	echo "ok - positive control patterns kept in guest memory"
else
	echo "not ok - canary control exit $?"
fi

: >"$R/dump-request"
i=0
while [ ! -e "$R/dump-done" ]; do
	i=$((i + 1))
	if [ $i -ge 1200 ]; then echo "not ok - the host took no memory dump in 600 s"; exit 1; fi
	sleep 0.5
done
if [ "$(cat "$R/dump-done")" = ok ]; then
	echo "ok - guest memory dumped by the host"
else
	echo "not ok - the host's memory dump failed: $(cat "$R/dump-done")"
fi
