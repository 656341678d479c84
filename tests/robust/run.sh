#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/robust/run.sh [--kernel KVER|all|debug] [-n COUNT] [-u UCOUNT] [-t SECONDS]
#                     [--stress-time SECONDS] [--seed SEED] [--crash-kills N]
#                     [--no-canary KVER[,KVER...]]
#
# Builds qkd.ko per kernel (build/kmod-fuzz/KVER) and the robustness
# programs (build/robust/), then boots each kernel once (tests/vm/run-vm.sh,
# which fails on WARN/BUG/KASAN/leaks in dmesg) and runs the fuzzer as root
# and unprivileged, the stress test, and the fail-nth sweep (debug kernel;
# options from $QKD_FAILNTH_ARGS), and qkdd_crash.sh: a qkdd pair into the
# two sites' stores killed --crash-kills times (default 12, ~2 min; 0:
# not run; the debug kernel's kill loop gets 7 times the time), and the
# load/unload test (loadunload: options from
# $QKD_LOADUNLOAD_ARGS, their iterations also in $QKD_LOADUNLOAD_ITERS for
# the VM's timeout); then, on the stock kernels, the key-wipe canary
# (tests/robust/canary.sh -P, its own boot), but not on the kernels of
# --no-canary (tests/run-all.sh: the Debian kernel whose source the debug
# stage's kernel is built from, whose canary that stage runs). Prints TAP ("# SKIP" lines are
# skips, not passes: listed as "# SKIP KVER: WHAT: REASON"), a line
# "# ran: KVER PROGRAM" for each program that ran (tests/run-all.sh's
# manifest), and ends with one line "N passed, N failed, N skipped". Exit 1
# if anything failed.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd -P)
cd "$TOP" || exit 2
# shellcheck source=../lib/vm-common.sh
. tests/lib/vm-common.sh
# shellcheck source=../lib/tap.sh
. tests/lib/tap.sh
set +e

kspec=all count=20000 ucount=5000 secs=30 ssecs=20 seed=$(date +%s)
nocanary=
ckills=12	# qkdd_crash.sh: kills (CI fast form; make stress: 300), and its bound
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kspec=$2; shift ;;
	-n) count=$2; shift ;;
	-u) ucount=$2; shift ;;
	-t) secs=$2; shift ;;
	--stress-time) ssecs=$2; shift ;;
	--seed) seed=$2; shift ;;
	--crash-kills) ckills=$2; shift ;;
	--no-canary) nocanary=$2; shift ;;
	*) echo "usage: $0 [--kernel KVER|all] [-n COUNT] [-u UCOUNT] [-t SECONDS] [--stress-time S] [--seed SEED] [--crash-kills N] [--no-canary KVER,...]" >&2
	   exit 2 ;;
	esac
	shift
done

n=0
declare -a failures=()
tap() {	# tap OK|FAIL DESCRIPTION: an OK with "# SKIP REASON" is a skip
	n=$((n + 1))
	if [ "$1" != OK ]; then
		tap_add 0 1 0; echo "not ok $n - $2"; failures+=("$2")
	elif printf '%s\n' "$2" | grep -qiE '#[[:space:]]*skip'; then
		tap_add 0 0 1; echo "ok $n - $2"
		echo "# SKIP $(printf '%s\n' "$2" | sed -E 's/[[:space:]]*#[[:space:]]*[Ss][Kk][Ii][Pp][[:space:]:]*/: /')"
	else
		tap_add 1 0 0; echo "ok $n - $2"
	fi
}

kernels=$(vm_resolve_kernels "$kspec") || exit 2
echo "# robust: kernels $(echo $kernels), seed $seed, fuzz $count/$ucount msgs, $secs s per phase, stress $ssecs s, qkdd kills $ckills"

if make -s -C tests/robust > build/robust.build.log 2>&1; then
	tap OK "build fuzz_genl and stress"
else
	cat build/robust.build.log
	tap FAIL "build fuzz_genl and stress"
	echo "1..$n"
	tap_summary_line
	exit 1
fi
# qkdd_crash.sh runs the daemon and the CLI
if [ "$ckills" != 0 ]; then
	if make -s -j2 build/qkdd build/qkdctl > build/robust.qkdd.build.log 2>&1; then
		tap OK "build qkdd and qkdctl"
	else
		tail -n 20 build/robust.qkdd.build.log | sed 's/^/# /'
		tap FAIL "build qkdd and qkdctl (qkdd_crash.sh not run)"
		ckills=0
	fi
fi
# qkdd_crash.sh's kill loop does every kill asked for; its bound is a cap
# against a hang, not a pace: a kill and its recovery take ~4 s on a quiet
# host and 13-18 s on one busy with builds (there the old bound, a pace
# of 4 s a kill, let 4 of 12 kills happen), so the cap allows 25.
csecs=$((ckills * 25 + 30))

for k in $kernels; do
	d=build/kmod-fuzz/$k
	rm -rf "$d"; mkdir -p "$d"
	cp -r Kbuild VERSION kernel include "$d/"
	find "$d" -name '*.o' -o -name '*.ko' -o -name '*.cmd' | xargs rm -f
	kdir=$(vm_kdir "$k") || { tap FAIL "$k: kernel build tree"; continue; }
	if make -C "$kdir" M="$TOP/$d" modules > "$d.build.log" 2>&1 &&
	   [ -f "$d/qkd.ko" ]; then
		tap OK "$k: build qkd.ko"
	else
		tail -n 20 "$d.build.log" | sed 's/^/# /'
		tap FAIL "$k: build qkd.ko"
		continue
	fi
	res=build/robust/results/$k
	mkdir -p build/robust/results
	# boot ~10-60 s, fuzz <= 3 x secs + secs/3, stress ssecs, margin,
	# load/unload (~3 s an iteration: QKD_LOADUNLOAD_ITERS, default 20)
	to=$((120 + 4 * secs + ssecs + 3 * ${QKD_LOADUNLOAD_ITERS:-20}))
	# qkdd_crash.sh: its kill loop, then up to ~60 s of checks
	[ "$ckills" = 0 ] || to=$((to + csecs + 90))
	# the debug kernel: boot ~70 s, everything ~10x slower, kmemleak scan
	[ "$k" != debug ] || to=$((to + 600))
	[ "$k" != debug ] || to=$((to + 17 * ${QKD_LOADUNLOAD_ITERS:-20}))
	# A kill and its recovery take about 28 s on the debug kernel, 7 times
	# the stock kernels' 4: the kill loop's bound grows with it, or only a
	# handful of the kills asked for would fit.
	ksecs=$csecs
	if [ "$k" = debug ] && [ "$ckills" != 0 ]; then
		ksecs=$((csecs * 7))
		to=$((to + ksecs - csecs))
	fi
	start=$(date +%s)
	tests/vm/run-vm.sh --kernel "$k" --timeout "$to" --results "$res" -q \
		--env "QKD_FAILNTH_ARGS=${QKD_FAILNTH_ARGS:-}" \
		--env "QKD_CRASH_KILLS=$ckills" --env "QKD_CRASH_SECS=$ksecs" \
		--env "QKD_LOADUNLOAD_ARGS=${QKD_LOADUNLOAD_ARGS:-}" -- \
		tests/robust/guest.sh "$TOP/$d/qkd.ko" "$count" "$ucount" "$secs" "$ssecs" "$seed" \
		> "build/robust/$k.log" 2>&1
	rc=$?
	echo "# $k: VM exit $rc after $(( $(date +%s) - start )) s (results: $res)"
	while IFS= read -r line; do
		case $line in
		"ok - "*) tap OK "$k: ${line#ok - }" ;;
		"not ok - "*) tap FAIL "$k: ${line#not ok - }" ;;
		"# ran: "*) echo "# ran: $k ${line#\# ran: }" ;;
		"#"*) echo "$line" ;;
		esac
	done < "$res/log"
	if [ -s "$res/dmesg-hits" ] || [ "$rc" = 123 ]; then
		tap FAIL "$k: dmesg shows kernel problems"
		sed 's/^/#   /' "$res/dmesg-hits" 2>/dev/null | head -n 60
	fi
	case $rc in
	0|123) tap OK "$k: VM ran to the end" ;;
	124) tap FAIL "$k: VM timeout" ;;
	*) tap FAIL "$k: VM exit $rc (no result, crash or panic)"
	   tail -n 30 "build/robust/$k.log" | sed 's/^/#   /' ;;
	esac
done

# The key-wipe canary (tests/robust/canary.sh, its own boot, about a minute
# a kernel): every phase, the policy-refused push included, must leave no
# key pattern in guest memory. The debug kernel's runs (make check-debug,
# make stress) call it themselves, with more keys.
for k in $kernels; do
	[ "$k" != debug ] || continue
	case ",$nocanary," in *",$k,"*)
		echo "# $k: no canary here (--no-canary: the debug stage runs it on the same source)"
		continue ;;
	esac
	out=$(tests/robust/canary.sh --kernel "$k" -P 2>&1)
	rc=$?
	echo "# ran: $k canary"
	printf '%s\n' "$out" | grep '^# [a-z-]* *[0-9]* occurrences\|^# canary:'
	what=$(printf '%s\n' "$out" | sed -n 's/.*key patterns left in guest memory: //p' | head -n 1)
	if [ "$rc" = 0 ]; then
		tap OK "$k: key-wipe canary: ${what:-0}"
	else
		printf '%s\n' "$out" | grep '^not ok' | sed 's/^/#   /'
		tap FAIL "$k: key-wipe canary: ${what:-no count (see tests/robust/canary.sh)}"
	fi
done

for f in "${failures[@]}"; do echo "# failed: $f"; done
echo "1..$n"
tap_summary_line
[ "$TAP_FAIL" -eq 0 ]
