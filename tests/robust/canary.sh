#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/robust/canary.sh [--kernel KVER|debug] [-k KEYS] [-P] [--seed SEED]
#                        [--keep-dump] [-v]
#
# Key-wipe check. Boots KVER (default: the debug kernel if it is built, else
# the newest installed one) with a QMP socket, runs tests/robust/canary-guest.sh
# there (keys with known random patterns pushed, delivered, flushed, deleted
# with their stream, with their netns, with the module, refused, and used
# by ESP SAs of a binding), then
# dumps the guest's memory over QMP (dump-guest-memory) once the module is
# unloaded and counts the patterns in the dump on the host
# (build/robust/canary count). Goal: 0 occurrences, and every pattern of
# the positive control (canary control, kept by the guest in a tmpfs file
# during the dump) found: a dump or a count that sees nothing fails. -P adds
# a push that the
# netlink policy refuses (KEY_ADD's handler must wipe it too; see
# Documentation/robustness.md). Prints TAP and "N passed, N failed".
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd -P)
cd "$TOP" || exit 2
# shellcheck source=../lib/vm-common.sh
. tests/lib/vm-common.sh
set +e

kspec='' keys=256 policy='' seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ') keep=0 verbose=''
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kspec=$2; shift ;;
	-k) keys=$2; shift ;;
	-P) policy=-P ;;
	--seed) seed=$2; shift ;;
	--keep-dump) keep=1 ;;
	-v) verbose=-v ;;
	*) echo "usage: $0 [--kernel KVER|debug] [-k KEYS] [-P] [--seed SEED] [--keep-dump] [-v]" >&2
	   exit 2 ;;
	esac
	shift
done
if [ -z "$kspec" ]; then
	if tests/vm/build-debug-kernel.sh --check; then kspec=debug; else kspec=; fi
fi
k=$(vm_resolve_kernels "$kspec") || exit 2

n=0 pass=0 fail=0
tap() {	# tap OK|FAIL DESCRIPTION
	n=$((n + 1))
	if [ "$1" = OK ]; then
		pass=$((pass + 1)); echo "ok $n - $2"
	else
		fail=$((fail + 1)); echo "not ok $n - $2"
	fi
}
finish() {
	echo "1..$n"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

echo "# canary: kernel $k, seed $seed, $keys keys per phase"
mkdir -p build/robust
if make -s -C tests/robust >build/robust.build.log 2>&1; then
	tap OK "build canary"
else
	cat build/robust.build.log
	tap FAIL "build canary"
	finish
fi
stage=build/robust/canary-ko/$k
if tests/vm/build-module.sh --copy-to "$stage" "$k" "build/kmod-canary/$k" >/dev/null; then
	tap OK "$k: build qkd.ko"
else
	tap FAIL "$k: build qkd.ko"
	finish
fi

res=$TOP/build/robust/results/canary-$k
dump=$TOP/build/robust/canary-$k.dump
qmp=/tmp/qkd-canary.$$.qmp
rm -rf "$res" "$dump"
trap 'rm -f "$qmp"; [ "$keep" = 1 ] || rm -f "$dump"' EXIT
# debug: boot ~70 s, the run and rmmod a few minutes under emulation
to=900
[ "$k" != debug ] || to=1800
start=$(date +%s)
tests/vm/run-vm.sh --kernel "$k" --timeout "$to" --qmp "$qmp" --results "$res" -q -- \
	tests/robust/canary-guest.sh "$stage/qkd.ko" "$seed" "$keys" $policy \
	>"build/robust/canary-$k.log" 2>&1 &
vpid=$!

# Wait for the guest to ask for the dump, take it, tell the guest.
dumped=0
while kill -0 "$vpid" 2>/dev/null; do
	if [ -e "$res/dump-request" ] && [ ! -e "$res/dump-done" ]; then
		t0=$(date +%s)
		if python3 - "$qmp" "$dump" <<'PY'
import json, socket, sys
sock_path, dump = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
f = s.makefile("rw")
def reply():
    while True:
        line = f.readline()
        if not line:
            sys.exit("qmp: connection closed")
        m = json.loads(line)
        if "event" not in m:
            return m
def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args} if args else {"execute": name}) + "\n")
    f.flush()
    r = reply()
    if "error" in r:
        sys.exit("qmp: %s: %s" % (name, r["error"]))
    return r
reply()  # greeting
cmd("qmp_capabilities")
cmd("dump-guest-memory", paging=False, protocol="file:" + dump)
PY
		then
			dumped=1
			echo "# dump: $(($(stat -c %s "$dump") >> 20)) MiB in $(($(date +%s) - t0)) s"
			echo ok >"$res/dump-done"
		else
			echo "# dump over QMP failed"
			echo "dump-guest-memory over QMP failed" >"$res/dump-done"
		fi
	fi
	sleep 1
done
wait "$vpid"
rc=$?
echo "# $k: VM exit $rc after $(($(date +%s) - start)) s (results: ${res#"$TOP"/})"
while IFS= read -r line; do
	case $line in
	"ok - "*) tap OK "$k: ${line#ok - }" ;;
	"not ok - "*) tap FAIL "$k: ${line#not ok - }" ;;
	"#"*) echo "$line" ;;
	esac
done <"$res/log"
if [ -s "$res/dmesg-hits" ] || [ "$rc" = 123 ]; then
	tap FAIL "$k: dmesg shows kernel problems"
	sed 's/^/#   /' "$res/dmesg-hits" 2>/dev/null | head -n 40
fi
case $rc in
0 | 123) tap OK "$k: VM ran to the end" ;;
*) tap FAIL "$k: VM exit $rc"; tail -n 30 "build/robust/canary-$k.log" | sed 's/^/#   /' ;;
esac

if [ "$dumped" = 1 ]; then
	out=$(build/robust/canary count -s "$seed" -k "$keys" -C $policy $verbose "$dump")
	crc=$?
	printf '%s\n' "$out" | sed 's/^\([^#]\)/# \1/'
	line=$(printf '%s\n' "$out" | grep '^canary:' | head -n 1)
	ctl=$(printf '%s\n' "$out" | sed -n 's/^# control *//p')
	# the positive control first: without it, 0 proves nothing
	if [ "$crc" -eq 3 ] || [ -z "$ctl" ]; then
		tap FAIL "$k: positive control: the dump shows the control patterns (${ctl:-no count})"
	else
		tap OK "$k: positive control: the dump shows the control patterns ($ctl)"
	fi
	if [ "$crc" -eq 0 ] || [ "$crc" -eq 3 ]; then
		tap OK "$k: key patterns left in guest memory: 0 (${line#canary: })"
	else
		tap FAIL "$k: key patterns left in guest memory (${line#canary: })"
	fi
else
	tap FAIL "$k: no memory dump taken"
fi
finish
