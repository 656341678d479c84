#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Every test of qkd, from a fresh Debian machine: installs what it needs,
# builds, then runs
#   lint     checkpatch --strict, sparse, W=1 on both kernels, YNL spec check
#   unit     host unit tests of the protocol stages and tools (ASan/UBSan)
#   fuzz     a short bounded libFuzzer run of each userspace parser
#   daemon   two qkdd processes over loopback: same keys, Eve aborts, crashes
#   vm       the module's kselftest tests in qemu, on Debian 6.1 and 6.12
#   e2e      qkdctl against the module, and the demo, in qemu on both kernels
#   robust   a genl/ioctl fuzzer (root, unprivileged, user namespace), a
#            concurrency stress with a delivery ledger, qkdd killed at random
#            points, load/unload in use, and the key-wipe canary, in qemu on
#            both kernels
#   debug    on the debug kernel (KASAN, lockdep, kmemleak, fail-nth) if it
#            is already built (make debug-kernel), else a SKIP: the kernel
#            tests with kmemleak scans, the fail-nth sweep, the key-wipe
#            canary (Documentation/robustness.md, "CI")
# Each stage's full output is in build/test-logs/STAGE.log. Ends with one
# line "N passed, N failed" over all stages. Exit 1 if anything failed.
#
# QKD_STAGES="lint unit" runs a subset. FUZZ_TIME (seconds per target,
# default 20) bounds the fuzz stage.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
stages=${QKD_STAGES:-lint unit fuzz daemon vm e2e robust debug}
logs=build/test-logs
total_pass=0
total_fail=0
total_skip=0

tools/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$logs"

# count LOG RC: add the stage's results to the totals. A stage that prints
# "N passed, N failed[, N skipped]" is taken at its word; otherwise its TAP
# "ok"/"not ok" lines are counted. A non-zero exit with no failure counted
# is one failure.
count() {
	local log=$1 rc=$2 p f s line
	line=$(grep -E '^(# [a-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(sed -E 's/^(# [a-z-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
	else
		p=$(grep -cE '^ok ' "$log")
		f=$(grep -cE '^not ok ' "$log")
		s=$(grep -cE '^ok .*# SKIP' "$log")
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_skip=$((total_skip + s))
	echo "# stage $3: $p passed, $f failed, $s skipped (exit $rc, log $log)"
}

run_stage() { # NAME COMMAND...
	local name=$1 log=$logs/$1.log rc
	shift
	echo "# ---- stage $name: $*"
	"$@" >"$log" 2>&1
	rc=$?
	grep -E '^(not ok|# FAIL|.*error:)' "$log" | head -n 30
	count "$log" "$rc" "$name"
}

build() {
	make -j2 all && make -j2 tests bench
}

unit() {
	local t rc=0
	for t in build/san/tests/unit/test_*; do
		[ -x "$t" ] || continue
		echo "# $t"
		"$t" || rc=1
	done
	return $rc
}

# Every libFuzzer target, FUZZ_TIME s each; run.sh prints TAP per target
# and "N passed, N failed".
fuzz() {
	FUZZ_TIME=${FUZZ_TIME:-20} fuzz/run.sh
}

e2e() {
	local kver rc=0
	for build in /lib/modules/*/build; do
		kver=$(basename "$(dirname "$build")")
		tests/vm/build-module.sh "$kver" "build/kmod-e2e/$kver" || {
			echo "not ok - build qkd.ko for $kver"; rc=1; continue; }
		echo "# ==== $kver"
		# qkdd pairs (qkdd_kernel.sh, the demo), ESP re-keying and the
		# crypto API checks: several minutes under TCG
		tests/vm/run-vm.sh --kernel "$kver" --timeout 1800 -q -- \
			tests/e2e/guest-e2e.sh "build/kmod-e2e/$kver/qkd.ko" | \
			sed -E 's/^([0-9]+ passed, [0-9]+ failed)/# '"$kver"': \1/'
		[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	done
	return $rc
}

# The debug kernel: a cached one (a runner that keeps /var/cache/qkd, or
# make debug-kernel) is used. Without one, QKD_DEBUG_BUILD=1 builds it here
# (tests/vm/debug-kernel.config is a minimal config, see
# Documentation/robustness.md "CI" for its build time on two cores);
# otherwise the stage is a SKIP, as the build and the stage together do
# not yet fit in CI's hour next to the other stages.
debug() {
	local out p=0 f=0 s=0 rc=0 line tree
	if ! tests/vm/build-debug-kernel.sh --check; then
		if [ "${QKD_DEBUG_BUILD:-0}" != 1 ]; then
			echo "ok 1 - debug kernel stage # SKIP the debug kernel is not built (make debug-kernel, or QKD_DEBUG_BUILD=1)"
			return 0
		fi
		echo "# ==== tests/vm/build-debug-kernel.sh"
		# Its progress and any failure go to stderr, the tree to stdout.
		if ! tree=$(tests/vm/build-debug-kernel.sh) || [ ! -f "${tree##*$'\n'}/.built" ]; then
			echo "not ok 1 - build the debug kernel"
			echo "0 passed, 1 failed, 0 skipped"
			return 1
		fi
		tree=${tree##*$'\n'}
		echo "ok 1 - build the debug kernel ($(cat "$tree/build-seconds")s, CPU $(cat "$tree/build-cpu-seconds" 2>/dev/null || echo ?)s)"
		p=1
	fi
	make -s -C tests/robust || return 1
	for cmd in "tests/vm/run-kernel-tests.sh --kernel debug --timeout 3600 -q build/tests/kernel/test_* build/robust/failnth" \
		"tests/robust/canary.sh --kernel debug -P"; do
		echo "# ==== $cmd"
		# shellcheck disable=SC2086 # the command and its glob
		out=$($cmd 2>&1) || rc=1
		printf '%s\n' "$out" | sed -E 's/^([0-9]+ passed, [0-9]+ failed)/# \1/'
		line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
		[ -n "$line" ] || { f=$((f + 1)); continue; }
		p=$((p + $(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")))
		f=$((f + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
		s=$((s + $(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)))
	done
	echo "$p passed, $f failed, $s skipped"
	return $rc
}

run_stage build build
if ! grep -q . "$logs/build.log" || [ "$total_fail" -ne 0 ]; then
	tail -n 40 "$logs/build.log"
	echo "$total_pass passed, $total_fail failed"
	exit 1
fi
for s in $stages; do
	case $s in
	lint) run_stage lint tests/lib/lint.sh ;;
	unit) run_stage unit unit ;;
	fuzz) [ -x fuzz/run.sh ] && run_stage fuzz fuzz ;;
	daemon) run_stage daemon tests/e2e/qkdd_loopback.sh ;;
	vm) run_stage vm tests/vm/run-kernel-tests.sh -q ;;
	e2e) run_stage e2e e2e ;;
	robust) run_stage robust tests/robust/run.sh ;;
	debug) run_stage debug debug ;;
	*) echo "unknown stage $s"; total_fail=$((total_fail + 1)) ;;
	esac
done

echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
