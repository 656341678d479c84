#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# guest-kernel-tests.sh QKD_KO [TEST...]
#
# Runs INSIDE the test VM (tests/vm/run-kernel-tests.sh starts it through
# run-vm.sh): loads QKD_KO (after the modules it depends on), runs every
# executable build/tests/kernel/test_* (or the TESTs given), each a
# kselftest-harness binary printing TAP, then unloads the module.
#
# Results go to $QKDVM_RESULTS (default /tmp/qkd-kernel-tests):
#   tap/NAME.tap   output of test binary NAME     tap/NAME.rc  its exit code
#   steps          one "ok STEP" / "not ok STEP: why" line per step
#                  (insmod, rmmod, kmemleak) that is not a test binary
#   kmemleak.NAME  (kernels with kmemleak) what the scan after rmmod (NAME
#                  "final") or, with QKD_KMEMLEAK_EACH=1, after test binary
#                  NAME found, when non-empty
# Exit code: 0 if the module loaded and unloaded and every binary exited 0.
# Environment: QKD_TEST_TIMEOUT seconds per binary (default 600),
# QKD_TEST_TIMEOUT_SCALE a factor for it and each test's timeout (default 4
# on a kernel with kmemleak, the debug kernel; else 1). The tests
# get QKD_KO, the absolute path of QKD_KO (to reload the module).
set -eu

[ $# -ge 1 ] || { echo "usage: ${0##*/} QKD_KO [TEST...]" >&2; exit 2; }
ko=$1
shift
R=${QKDVM_RESULTS:-/tmp/qkd-kernel-tests}
# The debug kernel (it has kmemleak; Debian's have not) runs everything
# several times slower: each test's harness timeout, and each binary's,
# is QKD_TEST_TIMEOUT_SCALE (default 4 there, 1 elsewhere) times longer.
if [ -e /sys/kernel/debug/kmemleak ]; then
	export QKD_TEST_TIMEOUT_SCALE=${QKD_TEST_TIMEOUT_SCALE:-4}
else
	export QKD_TEST_TIMEOUT_SCALE=${QKD_TEST_TIMEOUT_SCALE:-1}
fi
per_test=$((${QKD_TEST_TIMEOUT:-600} * QKD_TEST_TIMEOUT_SCALE))
mkdir -p "$R/tap"
: >"$R/steps"
failed=0

kmsg() { echo "qkd-vmtest: $*" >/dev/kmsg 2>/dev/null || true; }

# kmemleak, when the kernel has it (debug kernels; not Debian's): one scan
# at the end, after rmmod, which fails the run on any leak, with the
# allocation's backtrace. QKD_KMEMLEAK_EACH=1 also scans after each binary,
# so that a leak is attributed to the binary that made it (kmemleak reports
# objects older than 5 s only: a leak in the last seconds of one binary
# shows up after the next one, or in the final scan); each such scan costs
# about 10 s on the emulated debug kernel, 100 s a run, so CI does not.
leak=/sys/kernel/debug/kmemleak
leak_check() { # NAME [SETTLE_SECONDS]
	[ -w "$leak" ] || return 0
	echo scan >"$leak"
	if [ "${2:-0}" -gt 0 ]; then
		sleep "$2"
		echo scan >"$leak"
	fi
	cat "$leak" >"$R/kmemleak.$1"
	if [ -s "$R/kmemleak.$1" ]; then
		step_fail "kmemleak $1" "$(grep -c 'unreferenced object' "$R/kmemleak.$1") leaks, see kmemleak.$1"
		head -n 40 "$R/kmemleak.$1"
		# Report each leak once.
		echo clear >"$leak"
	else
		rm -f "$R/kmemleak.$1"
	fi
}
step_ok() { echo "ok $1" >>"$R/steps"; echo "ok $1"; }
step_fail() { echo "not ok $1: $2" >>"$R/steps"; echo "not ok $1: $2"; failed=1; }

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=()
	for t in build/tests/kernel/test_*; do
		[ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
	done
fi

echo "# kernel $(uname -r), module $ko, ${#tests[@]} test binaries"
[ -f "$ko" ] || { step_fail insmod "$ko not found"; exit 1; }
# Tests that unload and reload the module find it here.
QKD_KO=$(realpath "$ko")
export QKD_KO

# insmod does not resolve dependencies: load what modinfo says first.
deps=$(modinfo -F depends "$ko" 2>/dev/null | tr ',' ' ' || true)
for d in $deps; do
	modprobe "$d" || { step_fail insmod "modprobe $d (a dependency) failed"; exit 1; }
done
kmsg "insmod $ko"
if ! out=$(insmod "$ko" 2>&1); then
	step_fail insmod "insmod $ko: $out"
	dmesg | tail -n 20
	exit 1
fi
step_ok insmod

if [ ${#tests[@]} -eq 0 ]; then
	echo "# no kernel test binaries (build/tests/kernel/test_* absent): running nothing"
fi
# tap_times: stdin to stdout, with the seconds since the start after each
# test's result (where a slow test shows; the .tap file has no times).
tap_times() {
	local l
	SECONDS=0	# a subshell of its own: the script's clock is not touched
	while IFS= read -r l; do
		printf '%s\n' "$l"
		case $l in "ok "* | "not ok "*) echo "# at ${SECONDS} s" ;; esac
	done
}

for t in ${tests[@]+"${tests[@]}"}; do
	name=$(basename "$t")
	echo "# ---- $name"
	kmsg "start $name"
	rc=0
	start=$(date +%s)
	timeout -k 10 "$per_test" "$t" </dev/null >"$R/tap/$name.tap" 2>&1 &
	pid=$!
	tail -n +1 -f --pid="$pid" "$R/tap/$name.tap" | tap_times &
	tpid=$!
	wait "$pid" || rc=$?
	wait "$tpid" || true
	echo "$rc" >"$R/tap/$name.rc"
	kmsg "end $name rc=$rc"
	if [ "$rc" -eq 124 ]; then
		echo "# $name: timed out after ${per_test}s"
	fi
	[ "$rc" -eq 0 ] || failed=1
	echo "# ---- $name exit $rc after $(($(date +%s) - start)) s"
	# test_kapi unloads its test module; if one of its tests died first,
	# the module still holds qkd, and test_module's unloads would fail.
	rmmod qkd_kapi_test 2>/dev/null || true
	[ "${QKD_KMEMLEAK_EACH:-0}" != 1 ] || leak_check "$name"
done

# Network namespaces of the tests are torn down asynchronously: give the
# module a few seconds to lose its last users before calling it a failure.
kmsg "rmmod qkd"
i=0
while ! out=$(rmmod qkd 2>&1); do
	i=$((i + 1))
	if [ $i -ge 20 ]; then
		step_fail rmmod "rmmod qkd: $out (refcnt $(cat /sys/module/qkd/refcnt 2>/dev/null || echo '?'))"
		lsmod | grep -E '^qkd ' || true
		break
	fi
	sleep 0.5
done
if [ $i -lt 20 ]; then
	[ $i -eq 0 ] || echo "# rmmod qkd succeeded after $i retries"
	step_ok rmmod
fi

if [ -w "$leak" ]; then
	before=$failed
	failed=0
	leak_check final 6
	[ "$failed" -ne 0 ] || step_ok kmemleak
	[ "$before" -eq 0 ] || failed=1
fi

exit "$failed"
