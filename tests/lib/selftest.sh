#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/selftest.sh: the test suite's own checks, run by the unit stage
# of tests/run-all.sh. Prints TAP.
#   - the counting of tests/lib/tap.sh on hand-made logs: a skip is no
#     pass; a plan of 5 with 3 results, a missing plan, a non-zero exit with
#     no "not ok", a timeout, a missing output, a "Bail out!", a summary
#     with unlisted skips are each a failure;
#   - LeakSanitizer in the kselftest harness's children
#     (tests/lib/lsan_exit.h): tests/lib/lsan_leak.c, built like a unit
#     test, must report its leaking TEST and TEST_F "not ok" and its clean
#     test "ok";
#   - the mutant applier (tests/mutants/apply.py) refuses a pattern that
#     matches no line or several, and a mutant that changes nothing; its
#     "lines: all" / "lines: N" edit every match or the Nth, and refuse
#     no match, fewer than N, or another word;
#   - tests/lib/check-gen.sh passes the committed generated netlink files
#     and fails a hand-edited or stale copy.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
# shellcheck source=tap.sh
. tests/lib/tap.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

n=0 bad=0
check() { # COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; bad=$((bad + 1)); fi
}
# counts ITEM FILE RC [PLAN]: "P F S" of tap_count on FILE, its lines in $T/out
counts() {
	TAP_PASS=0 TAP_FAIL=0 TAP_SKIP=0
	tap_count "$@" >"$T/out"
	echo "$TAP_PASS $TAP_FAIL $TAP_SKIP"
}
takes() {
	TAP_PASS=0 TAP_FAIL=0 TAP_SKIP=0
	tap_take "$@" >"$T/out"
	echo "$TAP_PASS $TAP_FAIL $TAP_SKIP"
}

printf '1..3\nok 1 a\nok 2 b # SKIP no frobnicator here\nok 3 c\n' >"$T/skip"
r=$(counts t "$T/skip" 0)
[ "$r" = "2 0 1" ] && grep -qx '# SKIP t: b: no frobnicator here' "$T/out"
check $? "an ok line marked SKIP is a skip, not a pass, listed with its reason ($r)"

printf 'TAP version 13\n1..5\nok 1 a\nok 2 b\nnot ok 3 c\n' >"$T/early"
r=$(counts t "$T/early" 1)
[ "$r" = "2 2 0" ] && grep -q '^not ok - t: 3 results for a plan of 5' "$T/out"
check $? "a plan of 5 with 3 results is one more failure ($r)"

printf 'ok 1 a\nok 2 b\n' >"$T/noplan"
r=$(counts t "$T/noplan" 0)
[ "$r" = "2 1 0" ] && grep -q '^not ok - t: no TAP plan' "$T/out"
check $? "results without a plan are a failure: the item stopped early ($r)"

printf '1..2\nok 1 a\nok 2 b\n' >"$T/exit1"
r=$(counts t "$T/exit1" 1)
[ "$r" = "2 1 0" ] && grep -q '^not ok - t: exit 1 without a failed test' "$T/out"
check $? "a non-zero exit with no not ok is a failure ($r)"

r=$(counts t "$T/exit1" 124)
[ "$r" = "2 1 0" ] && grep -q '^not ok - t: timed out' "$T/out"
check $? "a timeout (exit 124) is a failure ($r)"

printf '1..2\nok 1 a\nnot ok 2 b\n' >"$T/fail"
r=$(counts t "$T/fail" 1)
[ "$r" = "1 1 0" ]
check $? "a not ok with exit 1 is one failure, not two ($r)"

r=$(counts t "$T/missing-binary.log" 127)
[ "$r" = "0 1 0" ] && grep -q '^not ok - t: no output' "$T/out"
check $? "a missing binary (no output) is a failure ($r)"

printf '1..0 # SKIP no /dev/qkd\n' >"$T/skipall"
r=$(counts t "$T/skipall" 4)
[ "$r" = "0 0 1" ] && grep -qx '# SKIP t: (all): no /dev/qkd' "$T/out"
r2=$(counts t "$T/skipall" 1)
[ "$r2" = "0 1 1" ]
check $? "a plan 1..0 marked SKIP (exit 4, KSFT_SKIP) skips the whole item, with its reason ($r; exit 1: $r2)"

printf '1..3\nok 1 a\nBail out! no module\n' >"$T/bail"
r=$(counts t "$T/bail" 0)
[ "$r" = "1 2 0" ]
check $? "a bail-out and its missing results are failures ($r)"

printf '1..2\nok 1 a\nok 2 b\n' >"$T/manifest"
r=$(counts t "$T/manifest" 0 3)
[ "$r" = "2 1 0" ] && grep -q '2 results, 3 planned by the manifest' "$T/out"
check $? "fewer results than the manifest plans is a failure ($r)"

printf '# SKIP k: x: why\n# k: 3 passed\n3 passed, 0 failed, 1 skipped\n' >"$T/sum"
r=$(takes s "$T/sum" 0)
[ "$r" = "3 0 1" ]
check $? "a summary with its skips listed is taken as it is ($r)"

printf '3 passed, 0 failed, 2 skipped\n' >"$T/sum2"
r=$(takes s "$T/sum2" 0)
[ "$r" = "3 1 2" ] && grep -q '2 skipped but 0 skips listed' "$T/out"
check $? "a summary whose skips are not listed is a failure ($r)"

printf '# stage stopped\n' >"$T/sum3"
r=$(takes s "$T/sum3" 1)
[ "$r" = "0 1 0" ]
check $? "no summary line (stopped early) is one failure ($r)"

printf '1 passed, 0 failed, 0 skipped\n' >"$T/sum4"
r=$(takes s "$T/sum4" 2)
[ "$r" = "1 1 0" ]
check $? "a summary with no failure but a non-zero exit is a failure ($r)"

# LeakSanitizer in the harness's children.
if make -s build/san/tests/lib/lsan_leak >"$T/build" 2>&1; then
	build/san/tests/lib/lsan_leak >"$T/leak" 2>&1
	rc=$?
	grep -qE '^ok [0-9]+ global\.no_leak$' "$T/leak"
	check $? "lsan: a test that frees what it allocates passes"
	grep -qE '^not ok [0-9]+ global\.leaks$' "$T/leak" &&
		grep -q 'LeakSanitizer: detected memory leaks' "$T/leak"
	check $? "lsan: a leaking TEST (harness child) fails"
	grep -qE '^not ok [0-9]+ f\.leaks_in_test_f$' "$T/leak"
	check $? "lsan: a leaking TEST_F (harness grandchild) fails"
	[ "$rc" -ne 0 ]
	check $? "lsan: the leaking binary exits non-zero ($rc)"
else
	sed 's/^/# /' "$T/build"
	check 1 "lsan: build tests/lib/lsan_leak.c"
fi

# The mutant applier (tests/mutants/apply.py): a pattern must match exactly
# one line, and the file must change; otherwise the mutant is broken.
mkdir -p "$T/m/src"
printf 'int f(void)\n{\n\treturn a == b;\n}\n\nint g(void)\n{\n\treturn a == b;\n}\n' >"$T/m/src/x.c"
mut() { # FILE LINES...: a mutant file
	local f=$1
	shift
	printf '%s\n' "file: src/x.c" "kind: unit" "test: test_x" "$@" >"$f"
}
mut "$T/m/two.mut" 'match: a == b' 'replace: 1'
python3 tests/mutants/apply.py "$T/m/two.mut" "$T/m" >/dev/null 2>"$T/m/err"
[ $? -eq 1 ] && grep -q 'matches 2 lines' "$T/m/err"
check $? "mutants: a pattern that matches two lines is refused"
mut "$T/m/none.mut" 'match: a != b' 'replace: 1'
python3 tests/mutants/apply.py "$T/m/none.mut" "$T/m" >/dev/null 2>"$T/m/err"
[ $? -eq 1 ] && grep -q 'matches 0 lines' "$T/m/err"
check $? "mutants: a pattern that matches no line is refused"
mut "$T/m/same.mut" 'in: ^int g\(' 'match: a == b' 'replace: a == b'
python3 tests/mutants/apply.py "$T/m/same.mut" "$T/m" >/dev/null 2>"$T/m/err"
[ $? -eq 1 ] && grep -q 'unchanged' "$T/m/err"
check $? "mutants: a mutant that changes nothing is refused"
cp "$T/m/src/x.c" "$T/m/orig.c"
mut "$T/m/g.mut" 'in: ^int g\(' 'match: a == b' 'replace: 1'
python3 tests/mutants/apply.py "$T/m/g.mut" "$T/m" >/dev/null 2>"$T/m/err" &&
	[ "$(diff "$T/m/orig.c" "$T/m/src/x.c" | grep -c '^[<>]')" = 2 ] &&
	grep -qx $'\treturn 1;' "$T/m/src/x.c" && sed -n 3p "$T/m/src/x.c" | grep -q 'a == b'
check $? "mutants: in: narrows the match to one function, one line changed"
# lines: all / lines: N, for a table whose entries repeat a line (the
# generated op table's .flags): every match, or the Nth alone; a count
# beyond the matches, no match, or a word that is neither is refused.
cp "$T/m/orig.c" "$T/m/src/x.c"
mut "$T/m/all.mut" 'match: a == b' 'replace: 1' 'lines: all'
python3 tests/mutants/apply.py "$T/m/all.mut" "$T/m" >/dev/null 2>"$T/m/err" &&
	[ "$(grep -c $'^\treturn 1;$' "$T/m/src/x.c")" = 2 ] && ! grep -q 'a == b' "$T/m/src/x.c"
check $? "mutants: lines: all edits every matching line"
cp "$T/m/orig.c" "$T/m/src/x.c"
mut "$T/m/nth.mut" 'match: a == b' 'replace: 1' 'lines: 2'
python3 tests/mutants/apply.py "$T/m/nth.mut" "$T/m" >/dev/null 2>"$T/m/err" &&
	sed -n 3p "$T/m/src/x.c" | grep -q 'a == b' && sed -n 8p "$T/m/src/x.c" | grep -qx $'\treturn 1;'
check $? "mutants: lines: 2 edits the second matching line alone"
cp "$T/m/orig.c" "$T/m/src/x.c"
mut "$T/m/nth3.mut" 'match: a == b' 'replace: 1' 'lines: 3'
python3 tests/mutants/apply.py "$T/m/nth3.mut" "$T/m" >/dev/null 2>"$T/m/err"
[ $? -eq 1 ] && grep -q 'matches 2 lines (lines: 3' "$T/m/err" && cmp -s "$T/m/orig.c" "$T/m/src/x.c"
check $? "mutants: lines: 3 of two matches is refused, nothing written"
mut "$T/m/all0.mut" 'match: a != b' 'replace: 1' 'lines: all'
python3 tests/mutants/apply.py "$T/m/all0.mut" "$T/m" >/dev/null 2>"$T/m/err"
[ $? -eq 1 ] && grep -q 'matches 0 lines (lines: all' "$T/m/err"
check $? "mutants: lines: all that matches nothing is refused"
mut "$T/m/bad.mut" 'match: a == b' 'replace: 1' 'lines: every'
python3 tests/mutants/apply.py "$T/m/bad.mut" "$T/m" >/dev/null 2>"$T/m/err"
[ $? -eq 1 ] && grep -q 'neither' "$T/m/err"
check $? "mutants: lines: neither all nor a number is refused"

# The generated netlink files (tests/lib/check-gen.sh, in lint): copies of
# the committed ones pass; a hand edit that weakens a generated policy (a
# stream ID of any length >= 16 instead of exactly 16), or a header left
# behind by a spec change, fails with a diff naming the file.
gen_copy() { # DIR
	mkdir -p "$1/include/uapi/linux" "$1/kernel"
	cp include/uapi/linux/qkd.h "$1/include/uapi/linux/"
	cp kernel/netlink-gen.h kernel/netlink-gen.c "$1/kernel/"
}
gen_copy "$T/gen-ok"
tests/lib/check-gen.sh "$T/gen-ok" >"$T/gen.log" 2>&1
check $? "check-gen: the committed generated files are what the spec generates"
gen_copy "$T/gen-weak"
sed -i '0,/NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN)/s//NLA_POLICY_MIN_LEN(QKD_STREAM_ID_LEN)/' \
	"$T/gen-weak/kernel/netlink-gen.c"
tests/lib/check-gen.sh "$T/gen-weak" >"$T/gen.log" 2>&1
[ $? -eq 1 ] && grep -q 'kernel/netlink-gen.c is not what the spec generates' "$T/gen.log" &&
	grep -q '^-.*NLA_POLICY_MIN_LEN(QKD_STREAM_ID_LEN)' "$T/gen.log"
check $? "check-gen: a hand-weakened policy in kernel/netlink-gen.c fails"
gen_copy "$T/gen-stale"
sed -i 's/^#define QKD_ABI_VERSION\t\t\t2$/#define QKD_ABI_VERSION\t\t\t1/' \
	"$T/gen-stale/include/uapi/linux/qkd.h"
tests/lib/check-gen.sh "$T/gen-stale" >"$T/gen.log" 2>&1
[ $? -eq 1 ] && grep -q 'include/uapi/linux/qkd.h is not what the spec generates' "$T/gen.log"
check $? "check-gen: a uapi header that is not the spec's (an old ABI version) fails"

echo "1..$n"
[ "$bad" -eq 0 ]
