#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/mutants/run.sh [--kind unit|kernel|all] [--kernel KVER] [--keep]
#                      [MUTANT...]
#
# Mutation testing: each mutant (tests/mutants/*.mut, format in apply.py and
# Documentation/robustness.md, "Mutants") is one small, realistic breakage
# of security-critical code -- a tag check that always succeeds, a missing
# wipe, a skipped capability check, an off-by-one. The suite must detect
# ("kill") every one. Each mutant is applied ALONE to a scratch copy of the
# tree (build/mutants/tree; the real tree is never modified) and its
# narrowest tests (its "test:" lines) are run:
#   kind unit    the host unit test binary build/san/tests/unit/BIN with the
#                given harness filter (-t NAME ...), rebuilt with the mutant
#   kind kernel  qkd.ko rebuilt with the mutant for ONE kernel (--kernel,
#                default the newest installed) and the kselftest binary of
#                tests/kernel with the given filter, in the VM
#                (tests/vm/run-kernel-tests.sh)
#   kind canary  the key-wipe canary (tests/robust/canary.sh) on that kernel
# A mutant is killed when one of its tests fails. Before any mutant, every
# test command is run once on the unmutated copy (the baseline): a test that
# fails there kills nothing, and its mutants are errors.
# Output: TAP, one line per mutant, "ok" when it was killed (and by what),
# "not ok" when it SURVIVED (a gap in the suite) or is broken (does not
# apply: its pattern matches no line or several; does not compile, W=1
# warnings included: a broken mutant is an error, never a kill), a line
# "# mutation score: KILLED/TOTAL" and the summary
# "N passed, N failed, N skipped". Exit 1 unless every mutant was killed.
#
#   --kind K   run only the mutants of kind K ("kernel" includes the canary
#              ones); default all
#   --kernel   the kernel of the kernel and canary mutants
#   --keep     keep the scratch tree (build/mutants/tree) afterwards
#   MUTANT...  the mutants to run (names or paths; default every *.mut)
# Environment: QKD_MUTANT_TIMEOUT (seconds per unit test run, default 300);
# QKD_MUTANT_JOBS (unit mutants at a time, each worker in a copy of the
# scratch tree of its own; default the number of CPUs; the kernel and
# canary mutants run one at a time after them, their VMs serialize anyway).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd -P)
cd "$top" || exit 2
# shellcheck source=../lib/vm-common.sh
. tests/lib/vm-common.sh
set +e

kind=all kspec='' keep=0
muts=()
while [ $# -gt 0 ]; do
	case $1 in
	--kind) kind=$2; shift ;;
	--kind=*) kind=${1#*=} ;;
	--kernel) kspec=$2; shift ;;
	--kernel=*) kspec=${1#*=} ;;
	--keep) keep=1 ;;
	-h | --help) sed -n '4,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
	-*) echo "usage: $0 [--kind unit|kernel|all] [--kernel KVER] [--keep] [MUTANT...]" >&2; exit 2 ;;
	*) muts+=("$1") ;;
	esac
	shift
done
case $kind in unit | kernel | all) ;; *) echo "$0: --kind unit|kernel|all" >&2; exit 2 ;; esac

# mut_get FILE KEY: the value(s) of KEY in a mutant, one a line.
mut_get() {
	sed -n "s/^$2:[[:space:]]*//p" "$1" | sed 's/[[:space:]]*$//'
}

# The mutants to run, in order: unit first (seconds each), then kernel.
list=()
if [ ${#muts[@]} -eq 0 ]; then
	for m in tests/mutants/*.mut; do [ -f "$m" ] && muts+=("$m"); done
fi
for want in unit kernel canary; do
	for m in "${muts[@]}"; do
		case $m in */*) ;; *) m=tests/mutants/${m%.mut}.mut ;; esac
		case $m in /*) ;; *) m=$top/$m ;; esac
		if [ ! -f "$m" ]; then
			[ "$want" = unit ] && list+=("$m")	# reported as an error
			continue
		fi
		k=$(mut_get "$m" kind)
		[ "$k" = "$want" ] || continue
		case $kind:$k in all:* | unit:unit | kernel:kernel | kernel:canary) list+=("$m") ;; esac
	done
done
total=${#list[@]}
echo "1..$total"
[ "$total" -gt 0 ] || { echo "# no mutants selected"; echo "0 passed, 0 failed, 0 skipped"; exit 1; }

need_kernel=0
for m in "${list[@]}"; do
	case $(mut_get "$m" kind 2>/dev/null) in kernel | canary) need_kernel=1 ;; esac
done
kver=
if [ "$need_kernel" = 1 ]; then
	kver=$(vm_resolve_kernels "$kspec") || exit 2
fi
echo "# mutants: $total, kind $kind${kver:+, kernel $kver}"
start=$(date +%s)

# ---- the scratch copy: sources as they are now, the build copied so that
# make rebuilds only what a mutant touches. Under build/ (not /tmp: the VM
# mounts its own tmpfs on /tmp and must see the tree at the same path).
scratch=${QKD_MUTANTS_DIR:-$top/build/mutants}/tree
log=${scratch%/tree}/log
mkdir -p "${scratch%/tree}"
# One run at a time per scratch directory.
exec 9>>"${scratch%/tree}/lock"
if ! flock -n 9; then
	echo "# waiting for another mutants run in ${scratch%/tree}"
	flock 9
fi
rm -rf "$scratch" "$log"
mkdir -p "$scratch" "$log"
[ "$keep" = 1 ] || trap 'rm -rf "$scratch" "$scratch".[0-9]*' EXIT
# Never the scratch directory itself (QKD_MUTANTS_DIR may be in build/).
sdir=$(cd "${scratch%/tree}" && pwd -P)
case $sdir in "$top"/*) sx=./${sdir#"$top"/} ;; *) sx=./build/mutants ;; esac
tar -cf - --exclude=./build --exclude=./.git --exclude="$sx" --exclude='*.o' --exclude='*.ko' . |
	tar -C "$scratch" -xf - || { echo "Bail out! cannot copy the tree"; exit 1; }
mkdir -p "$scratch/build"
# The objects, libraries and test binaries (mtimes kept), not the VM
# results, logs, module builds or memory dumps.
if [ -d build ]; then
	tar -cf - --exclude="$sx" --exclude='./build/mutants*' --exclude=./build/vm \
		--exclude=./build/test-logs --exclude='./build/kmod*' \
		--exclude=./build/robust/results --exclude='*.dump' ./build |
		tar -C "$scratch" -xf -
fi
cd "$scratch" || exit 2

# kernel_wrapper BIN ARGS...: a kernel test line becomes a wrapper script
# (run-kernel-tests.sh takes binaries, not arguments), build/mutants-kt/
# BIN.N, which runs BIN ARGS; its path is left in $kw (no subshell: N
# counts the wrappers, and two in one VM run must not share a name).
kwrap_n=0 kw=
kernel_wrapper() {
	local bin=$1
	shift
	kwrap_n=$((kwrap_n + 1))
	kw=build/mutants-kt/$bin.$kwrap_n
	mkdir -p build/mutants-kt
	{
		echo '#!/bin/sh'
		printf 'exec %q' "$scratch/build/tests/kernel/$bin"
		printf ' %q' "$@"
		echo ' "$@"'
	} >"$kw"
	chmod +x "$kw"
}

# run_test KIND TEST-LINE LOG: run one test command on the tree as it is.
# Exit 0: passed; 1: failed (a kill); 2: the mutant or the test does not
# build (an error, not a kill).
run_test() {
	local k=$1 line=$2 out=$3 bin rc
	# shellcheck disable=SC2086 # one word per argument
	set -- $line
	bin=$1
	shift
	case $k in
	unit)
		nice -n 10 make -s "build/san/tests/unit/$bin" >"$out" 2>&1 || return 2
		timeout -k 10 "${QKD_MUTANT_TIMEOUT:-300}" "build/san/tests/unit/$bin" "$@" \
			</dev/null >>"$out" 2>&1 || return 1
		;;
	kernel)
		nice -n 10 make -s "build/tests/kernel/$bin" >"$out" 2>&1 || return 2
		kernel_wrapper "$bin" "$@"
		nice -n 10 tests/vm/run-kernel-tests.sh --kernel "$kver" --timeout 1200 -q "$kw" \
			>>"$out" 2>&1
		rc=$?
		grep -q 'not ok - build qkd.ko' "$out" && return 2
		[ "$rc" -eq 0 ] || return 1
		;;
	canary)
		[ "$bin" = canary ] || { echo "canary mutant: test: canary [ARGS]" >"$out"; return 2; }
		nice -n 10 tests/robust/canary.sh --kernel "$kver" "$@" >"$out" 2>&1
		rc=$?
		# its VM's own log (the lock wait, the guest's lines)
		sed 's/^/# vm: /' "build/robust/canary-$kver.log" >>"$out" 2>/dev/null
		grep -qE '^not ok [0-9]+ - (build canary|.*: build qkd.ko)' "$out" && return 2
		[ "$rc" -eq 0 ] || return 1
		;;
	esac
	return 0
}

# What made a test fail: its first failed TAP lines or sanitizer report.
why() {
	grep -m3 -E '^(not ok|# (FAIL|.*: Test failed)|.*ERROR: (Address|Leak|Undefined)|.*runtime error)|: not ok [0-9]' "$1" |
		sed -E 's/[[:space:]]+/ /g' | tr '\n' ';' | cut -c1-300
}

# base_check LOG: the baseline ran at least one test and skipped none (a
# filter that selects nothing, or a test that skips here, kills nothing).
base_check() {
	grep -qE '^ok [0-9]+ ' "$1" && ! grep -qiE '^ok .*# *skip' "$1"
}

# ---- the baseline: every test command passes on the unmutated copy
# (kernel tests: all in one VM run; the others one by one)
declare -A base_ok
bn=0 kb_lines=() kb_wrappers=()
while IFS=$'\t' read -r k line; do
	[ -n "$k" ] || continue
	bn=$((bn + 1))
	out=$log/baseline.$bn.log
	if [ "$k" = kernel ]; then
		# shellcheck disable=SC2086 # one word per argument
		set -- $line
		if ! nice -n 10 make -s "build/tests/kernel/$1" >"$out" 2>&1; then
			echo "# baseline: does not build: $k $line"
			continue
		fi
		kb_lines+=("$line")
		kernel_wrapper "$@"
		kb_wrappers+=("$kw")
		continue
	fi
	t0=$(date +%s)
	run_test "$k" "$line" "$out"
	rc=$?
	if [ "$rc" -eq 0 ] && { [ "$k" = canary ] || base_check "$out"; }; then
		base_ok["$k $line"]=1
		echo "# baseline: passes unmutated: $k $line ($(($(date +%s) - t0)) s)"
	else
		echo "# baseline: FAILS unmutated (exit $rc, log ${out#"$top"/}): $k $line: $(why "$out")"
	fi
done < <(for m in "${list[@]}"; do
		[ -f "$m" ] || continue
		mk=$(mut_get "$m" kind)
		mut_get "$m" test | sed "s/^/$mk\t/"
	done | awk '!seen[$0]++')
if [ ${#kb_lines[@]} -gt 0 ]; then
	out=$log/baseline.kernel.log
	t0=$(date +%s)
	nice -n 10 tests/vm/run-kernel-tests.sh --kernel "$kver" --timeout 1800 -q \
		"${kb_wrappers[@]}" >"$out" 2>&1
	rc=$?
	for i in "${!kb_lines[@]}"; do
		w=${kb_wrappers[$i]##*/} line=${kb_lines[$i]}
		# "KVER NAME: P passed, 0 failed, 0 skipped (plan P, exit 0)"
		if grep -F "$kver $w: " "$out" |
			grep -qE ': [1-9][0-9]* passed, 0 failed, 0 skipped \(plan [0-9]+, exit 0\)$' &&
			! grep -qF "not ok - $kver $w:" "$out" && ! grep -qF "$kver: not ok" "$out"; then
			base_ok["kernel $line"]=1
			echo "# baseline: passes unmutated: kernel $line"
		else
			echo "# baseline: FAILS unmutated (exit $rc, log ${out#"$top"/}): kernel $line: $(grep -F -e "$w" -e "$kver: not ok" "$out" | head -n 3 | tr '\n' ';')"
		fi
	done
	echo "# baseline: kernel tests: $(($(date +%s) - t0)) s (one VM)"
fi

# ---- the mutants
# run_mutant N MUTANT: apply it alone to the tree in the current directory,
# run its tests, restore the file; prints "# ran:", the diff and its TAP
# line. The file's pristine copy is per tree ($log/pristine.TREE).
run_mutant() {
	local n=$1 m=$2 name file k t0 result detail tried line out secs
	local pristine=$log/pristine.${PWD##*/}
	name=$(basename "$m" .mut)
	echo "# ran: mutant $name"
	if [ ! -f "$m" ]; then
		echo "not ok $n - $name: error: no such mutant ($m)"
		return
	fi
	file=$(mut_get "$m" file)
	k=$(mut_get "$m" kind)
	t0=$(date +%s)
	cp -p "$file" "$pristine" 2>/dev/null
	if ! python3 tests/mutants/apply.py "$m" . >"$log/$name.diff" 2>"$log/$name.apply"; then
		echo "not ok $n - $name: error: does not apply: $(tail -n 1 "$log/$name.apply")"
		return
	fi
	if cmp -s "$file" "$pristine"; then
		echo "not ok $n - $name: error: applied but $file is unchanged"
		return
	fi
	sed 's/^/#   /' "$log/$name.diff"
	result=survived detail='' tried=''
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		tried="$tried${tried:+; }$line"
		if [ -z "${base_ok["$k $line"]:-}" ]; then
			result=error detail="its test fails unmutated (baseline): $line"
			break
		fi
		out=$log/$name.$(echo "$line" | tr -c 'A-Za-z0-9_.-' _).log
		run_test "$k" "$line" "$out"
		case $? in
		0) ;;
		1) result=killed detail="killed by $k $line: $(why "$out")"; break ;;
		*) result=error detail="does not build: $(grep -m2 -E 'error|warning' "$out" | tr '\n' ' ' | cut -c1-200) (log ${out#"$top"/})"; break ;;
		esac
	done < <(mut_get "$m" test)
	# Restore, and make the file newer than anything built from the mutant.
	cp "$pristine" "$file" && touch "$file"
	secs=$(($(date +%s) - t0))
	case $result in
	killed) echo "ok $n - $name: $detail (${secs} s)" ;;
	survived) echo "not ok $n - $name: SURVIVED: every test passed with the mutant: $tried (${secs} s)" ;;
	*) echo "not ok $n - $name: error: $detail (${secs} s)" ;;
	esac
}

# The unit mutants (the list has them first) QKD_MUTANT_JOBS at a time:
# worker W takes every JOBS-th of them in its own copy of the tree (made
# after the baseline, mtimes kept, so make rebuilds only what a mutant
# touches); each mutant's output goes to $log/result.N and is printed in
# order. 23 unit mutants took 113 s one at a time on two cores
# (2026-12-07). The others follow one at a time in the first tree.
jobs=${QKD_MUTANT_JOBS:-$(nproc)}
nunit=0
for m in "${list[@]}"; do
	[ -f "$m" ] && [ "$(mut_get "$m" kind)" != unit ] && break
	nunit=$((nunit + 1))
done
[ "$jobs" -ge 1 ] || jobs=1
[ "$jobs" -le "$nunit" ] || jobs=$((nunit > 0 ? nunit : 1))
for ((w = 2; w <= jobs; w++)); do
	rm -rf "$scratch.$w"
	cp -a "$scratch" "$scratch.$w" || { echo "Bail out! cannot copy $scratch"; exit 1; }
done
rm -f "$log"/result.*
for ((w = 1; w <= jobs; w++)); do
	(
		[ "$w" -eq 1 ] || cd "$scratch.$w" || exit 1
		for ((i = w - 1; i < nunit; i += jobs)); do
			run_mutant $((i + 1)) "${list[$i]}" >"$log/result.$((i + 1))" 2>&1
		done
	) &
done
wait
for ((i = nunit; i < total; i++)); do
	run_mutant $((i + 1)) "${list[$i]}" >"$log/result.$((i + 1))" 2>&1
done
killed=0 survived=0 errors=0
for ((i = 1; i <= total; i++)); do
	if [ ! -s "$log/result.$i" ]; then
		echo "not ok $i - $(basename "${list[$((i - 1))]}" .mut): error: its worker left no result"
		errors=$((errors + 1))
		continue
	fi
	cat "$log/result.$i"
	if grep -q "^ok $i - " "$log/result.$i"; then
		killed=$((killed + 1))
	elif grep -q "^not ok $i - .*: SURVIVED: " "$log/result.$i"; then
		survived=$((survived + 1))
	else
		errors=$((errors + 1))
	fi
done

# The machine's share: VMs of other runs hold the lock (tests/vm/run-vm.sh).
waited=$(cat "$log"/*.log 2>/dev/null |
	sed -n 's/^\(# vm: \)\{0,1\}qkdvm: waited \([0-9]*\)s for the VM lock$/\2/p' | awk '{ s += $1 } END { print s + 0 }')
echo "# time: $(($(date +%s) - start)) s, of which ${waited} s waiting for the VM lock"
echo "# mutation score: $killed/$total killed ($survived survived, $errors broken); logs: ${log#"$top"/}"
echo "$killed passed, $((survived + errors)) failed, 0 skipped"
[ "$killed" -eq "$total" ]
