#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# run-kernel-tests.sh [--kernel KVER|all] [--timeout S] [-q]
#                     [TEST [HARNESS-OPTION...]]...
#
# For each installed kernel (default: all of them): build qkd.ko for it in
# build/kmod/KVER/ (tests/vm/build-module.sh: a copy of Kbuild, kernel/,
# include/; W=1; any warning fails) and the test module qkd_kapi_test.ko
# next to it (tests/kmod/build.sh), boot it in a VM (tests/vm/run-vm.sh) and run
# tests/vm/guest-kernel-tests.sh there: insmod, every build/tests/kernel/
# test_* binary (or the TESTs given, each with the kselftest harness
# options that follow it: -t NAME, -F FIXTURE, ...), rmmod, dmesg check. Prints a TAP-ish
# summary per kernel and ends with one line
#   N passed, N failed, N skipped
# counting the TAP "ok"/"not ok" lines of every binary on every kernel (a
# "# SKIP" is a skip, not a pass, listed as "# SKIP KVER TEST: NAME: REASON")
# plus one failure per failed step (module build, insmod, rmmod, VM timeout
# or crash, dmesg problems, a binary that exits non-zero without a failed
# test, stops before its plan is done or did not run at all), and a
# "# ran: KVER TEST" line per binary (tests/lib/tap.sh). Exit 1 if anything
# failed.
#
#   --timeout S   per-kernel VM timeout (default 1800)
#   -q            do not stream the VM console
# Environment, passed on to the guest: QKD_TEST_TIMEOUT (seconds per test
# binary, default 600) and QKD_TEST_TIMEOUT_SCALE (a factor for it and for
# every test's own timeout; default 4 on the debug kernel, else 1) and
# QKD_KMEMLEAK_EACH (1: a kmemleak scan after each binary on the debug
# kernel, to attribute a leak; default: one scan at the end).
set -eu
# shellcheck source=SCRIPTDIR/../lib/vm-common.sh
. "$(dirname "$0")/../lib/vm-common.sh"
# shellcheck source=SCRIPTDIR/../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"

envs=()
for v in QKD_TEST_TIMEOUT QKD_TEST_TIMEOUT_SCALE QKD_KMEMLEAK_EACH; do
	[ -z "${!v:-}" ] || envs+=(--env "$v=${!v}")
done

usage() {
	sed -n '4,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
	exit "${1:-2}"
}

kernel=all
timeout_s=1800
quiet=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) [ $# -ge 2 ] || usage; kernel=$2; shift 2 ;;
	--kernel=*) kernel=${1#*=}; shift ;;
	--timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
	--timeout=*) timeout_s=${1#*=}; shift ;;
	-q | --quiet) quiet=(--quiet); shift ;;
	-h | --help) usage 0 ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
cd "$TOP"
mapfile -t kernels < <(vm_resolve_kernels "$kernel")
[ ${#kernels[@]} -gt 0 ] || exit 2

# The test binaries (built by `make tests`, not here). A binary given with
# harness options runs through a wrapper, build/vm/kt-wrap/N/BIN, that
# passes them on (the guest runs binaries, not command lines); its results
# and its "# ran:" line carry BIN's name, or BIN.N when BIN is given twice.
if [ $# -gt 0 ]; then
	tests=()
	declare -A named=()
	while [ $# -gt 0 ]; do
		bin=$1 opts=()
		shift
		while [ $# -gt 0 ]; do
			case $1 in
			-[tTfFrRvV]) [ $# -ge 2 ] || usage; opts+=("$1" "$2"); shift 2 ;;
			-*) opts+=("$1"); shift ;;
			*) break ;;
			esac
		done
		if [ ${#opts[@]} -eq 0 ]; then
			tests+=("$bin")
			named[$(basename "$bin")]=1
			continue
		fi
		n=$(basename "$bin")
		[ -z "${named[$n]:-}" ] || n=$n.${#tests[@]}
		named[$n]=1
		rm -rf "build/vm/kt-wrap/${#tests[@]}"
		mkdir -p "build/vm/kt-wrap/${#tests[@]}"
		w=build/vm/kt-wrap/${#tests[@]}/$n
		{
			echo '#!/bin/sh'
			printf 'exec %q' "$(realpath "$bin")"
			printf ' %q' "${opts[@]}"
			echo ' "$@"'
		} >"$w"
		chmod +x "$w"
		tests+=("$w")
	done
else
	tests=()
	for t in build/tests/kernel/test_*; do
		[ -f "$t" ] && [ -x "$t" ] && tests+=("$t")
	done
	for src in tests/kernel/test_*.c; do
		[ -f "$src" ] || continue
		bin=build/tests/kernel/$(basename "$src" .c)
		if [ ! -x "$bin" ]; then
			vm_log "warning: $bin is not built (make tests): not run"
		elif [ "$src" -nt "$bin" ]; then
			vm_log "warning: $bin is older than $src (make tests)"
		fi
	done
fi
if [ ${#tests[@]} -eq 0 ]; then
	vm_log "note: no kernel test binaries (build/tests/kernel/test_*): only loading and unloading the module"
fi

report=

# fail_step KVER WHAT: one failure that is not a TAP line.
fail_step() {
	tap_fail "$1" "$2" >/dev/null
	report="$report$1: not ok - $2"$'\n'
}

# count_tap KVER RESULTS: count the TAP of every binary that should have
# run (tests/lib/tap.sh: skips apart, plan checked, a non-zero exit without
# a failed test or a missing result is a failure).
count_tap() {
	local k=$1 r=$2 t name rc out
	out=$(mktemp)
	for t in ${tests[@]+"${tests[@]}"}; do
		name=$(basename "$t")
		rc=$(cat "$r/tap/$name.rc" 2>/dev/null || echo missing)
		[ "$rc" != missing ] || rc=255
		tap_count "$k $name" "$r/tap/$name.tap" "$rc" >"$out"
		grep -E '^# (SKIP|ran:) ' "$out"
		grep -F "# $k $name: " "$out" | sed 's/^# //'
		while IFS= read -r line; do
			report="$report$line"$'\n'
		done < <(grep -E '^not ok' "$out"; grep -E '^not ok' "$r/tap/$name.tap" 2>/dev/null | sed "s/^/$k: $name: /")
	done
	rm -f "$out"
}

stage=$TOP/build/vm/staged-ko.$$
trap 'rm -rf "$stage"' EXIT
# Results per run (concurrent runs must not share them); keep the last 10.
find "$TOP/build/vm/results" -mindepth 1 -maxdepth 1 -type d -name 'kernel-tests.*' \
	2>/dev/null | sort | head -n -9 | while read -r old; do rm -rf "$old"; done
run_dir=$TOP/build/vm/results/kernel-tests.$(date +%Y%m%d-%H%M%S).$$
start=$(date +%s)
for k in "${kernels[@]}"; do
	kstart=$(date +%s)
	kfail=$TAP_FAIL
	vm_log "== $k: building qkd.ko in build/kmod/$k"
	# The VM loads a private copy: other tools rebuild build/kmod/KVER too.
	ko_dir=$stage/$k
	if ! "$TOP/tests/vm/build-module.sh" --copy-to "$ko_dir" "$k"; then
		fail_step "$k" "build qkd.ko (W=1, see build/kmod/$k.build.log)"
		continue
	fi
	# The in-kernel API's test user, next to qkd.ko (test_kapi loads it).
	if ! "$TOP/tests/kmod/build.sh" "$k" "$ko_dir"; then
		fail_step "$k" "build qkd_kapi_test.ko (W=1, see build/kmod-kapi-test/$k.build.log)"
	fi
	r=$run_dir/$k
	vm_log "== $k: running the kernel tests in a VM (results: ${r#"$TOP"/})"
	vrc=0
	"$TOP/tests/vm/run-vm.sh" --kernel "$k" --timeout "$timeout_s" \
		--results "$r" ${quiet[@]+"${quiet[@]}"} \
		${envs[@]+"${envs[@]}"} -- \
		tests/vm/guest-kernel-tests.sh "${ko_dir#"$TOP"/}/qkd.ko" \
		${tests[@]+"${tests[@]}"} || vrc=$?
	echo "# ==== $k"
	count_tap "$k" "$r"
	if [ -f "$r/steps" ]; then
		while IFS= read -r line; do
			case $line in
			'not ok '*) fail_step "$k" "${line#not ok }" ;;
			esac
			echo "$k: $line"
		done <"$r/steps"
	fi
	case $vrc in
	124) fail_step "$k" "VM timed out (${timeout_s}s)" ;;
	125) fail_step "$k" "VM crashed or did not boot (see ${r#"$TOP"/}/console)" ;;
	esac
	if [ -s "$r/dmesg-hits" ]; then
		fail_step "$k" "kernel problems in dmesg ($(wc -l <"$r/dmesg-hits") lines, see ${r#"$TOP"/}/dmesg)"
	fi
	# Anything else that went wrong and was not counted above.
	if [ "$vrc" -ne 0 ] && [ "$TAP_FAIL" -eq "$kfail" ]; then
		fail_step "$k" "guest-kernel-tests.sh exit $vrc"
	elif [ ! -f "$r/steps" ] && [ "$TAP_FAIL" -eq "$kfail" ]; then
		fail_step "$k" "guest-kernel-tests.sh left no steps file"
	fi
	echo "# $k: $(($(date +%s) - kstart))s"
done

echo "# ==== summary (${#kernels[@]} kernels, $(($(date +%s) - start))s)"
printf '%s' "$report"
tap_summary_line
[ "$TAP_FAIL" -eq 0 ]
