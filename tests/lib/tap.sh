# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Counting test results so that it cannot lie (sourced by bash scripts:
# tests/run-all.sh, tests/vm/run-kernel-tests.sh, tests/robust/run.sh,
# tests/e2e/guest-e2e.sh; checked by tests/lib/selftest.sh).
#
# Passed, failed and skipped are separate: an "ok ... # SKIP reason" line is
# a skip, never a pass. Every counted thing (a test binary, a script, a
# stage) is an ITEM, and an item that does not account for itself is a
# failure of its own, named:
#   - its TAP plan ("1..N", first or last) and the results it printed
#     differ, or it printed no plan (it stopped before the end);
#   - it exited non-zero without a "not ok" line, timed out (exit 124) or
#     was killed (exit 137);
#   - it said "Bail out!".
# Lines printed for each item (and parsed again by the level above):
#   # SKIP ITEM: TEST: REASON        one per skip, with its reason
#   not ok - ITEM: WHY               one per failure of the item itself
#   # ran: ITEM                      the item ran (for the manifest check)
#   # ITEM: N passed, N failed, N skipped (plan N, exit N)
# A script that counts several items ends with exactly one line
#   N passed, N failed, N skipped
# (tap_summary_line); the level above takes it with tap_take.

TAP_PASS=0
TAP_FAIL=0
TAP_SKIP=0

# tap_add P F S: add to the totals.
tap_add() {
	TAP_PASS=$((TAP_PASS + $1))
	TAP_FAIL=$((TAP_FAIL + $2))
	TAP_SKIP=$((TAP_SKIP + $3))
}

# tap_fail ITEM WHY: one failure that is no TAP line of a test.
tap_fail() {
	echo "not ok - $1: $2"
	TAP_FAIL=$((TAP_FAIL + 1))
}

# tap_skip ITEM WHY: one skip that is no TAP line of a test (a whole item
# that cannot run here, with the reason).
tap_skip() {
	echo "# SKIP $1: $2"
	TAP_SKIP=$((TAP_SKIP + 1))
}

# _tap_rc ITEM RC FAILED: the failure an exit code adds, if any.
_tap_rc() {
	case $2 in
	0) ;;
	124) tap_fail "$1" "timed out (exit 124)" ;;
	137) tap_fail "$1" "killed (exit 137, a timeout's SIGKILL?)" ;;
	*) [ "$3" -gt 0 ] || tap_fail "$1" "exit $2 without a failed test" ;;
	esac
}

# tap_count ITEM FILE RC [PLAN]: count the TAP of one item (FILE: its
# output, RC: its exit code), add it to the totals and print the lines
# above. PLAN: the number of results expected whatever the item's own plan
# says (a manifest's planned count). Top-level lines only: "ok", "not ok",
# "1..N" (a "1..0 # SKIP reason" skips the whole item), "Bail out!".
tap_count() {
	local item=$1 file=$2 rc=$3 want=${4:-} p f s plan planned r line
	if [ ! -f "$file" ]; then
		echo "# ran: $item"
		tap_fail "$item" "no output (did not run)"
		return
	fi
	# p f s plans plan_seen skip_all bail, then the skip lines
	{
		read -r p f s plan planned r
		while IFS= read -r line; do
			echo "# SKIP $item: $line"
		done
	} < <(awk '
		function reason(l) {
			sub(/^[^#]*#[ \t]*[Ss][Kk][Ii][Pp][ \t:]*/, "", l)
			return l == "" ? "(no reason given)" : l
		}
		/^not ok([ \t]|$)/ { f++; next }
		/^ok([ \t]|$)/ {
			if (tolower($0) ~ /#[ \t]*skip/) {
				s++
				d = $0; sub(/^ok[ \t]+[0-9]*[ \t]*(-[ \t]*)?/, "", d)
				sub(/[ \t]*#.*/, "", d)
				skips[s] = d ": " reason($0)
			} else p++
			next
		}
		/^1\.\.[0-9]+/ {
			n = $0; sub(/^1\.\./, "", n); n = n + 0
			plan += n; planned = 1
			if (n == 0) {
				s++; skipall++
				skips[s] = "(all): " reason($0)
			}
			next
		}
		/^Bail out!/ { bail++ }
		END {
			printf "%d %d %d %d %d %d\n", p, f, s, plan, planned, bail
			for (i = 1; i <= s; i++) print skips[i]
		}' "$file")
	# r: "Bail out!" lines; results exclude a skip of the whole item
	local results=$((p + f + s)) skipall=0
	grep -qE '^1\.\.0([^0-9]|$)' "$file" && skipall=1 && results=$((results - 1))
	tap_add "$p" "$f" "$s"
	echo "# ran: $item"
	[ "$r" -eq 0 ] || tap_fail "$item" "bailed out: $(grep -m1 '^Bail out!' "$file")"
	if [ -n "$want" ] && [ "$skipall" -eq 0 ] && [ "$results" -ne "$want" ]; then
		tap_fail "$item" "$results results, $want planned by the manifest"
	elif [ "$planned" -eq 0 ]; then
		tap_fail "$item" "no TAP plan (1..N): stopped before the end? $results results"
	elif [ "$results" -ne "$plan" ]; then
		tap_fail "$item" "$results results for a plan of $plan (stopped early?)"
	fi
	# kselftest's exit code for "everything skipped" (KSFT_SKIP)
	[ "$rc" -ne 4 ] || [ "$p" -ne 0 ] || [ "$f" -ne 0 ] || [ "$s" -eq 0 ] || rc=0
	_tap_rc "$item" "$rc" "$f"
	echo "# $item: $p passed, $f failed, $s skipped (plan ${plan}, exit $rc)"
}

# tap_take ITEM FILE RC: take the counts of a script that counted several
# items itself (its last "N passed, N failed, N skipped" line) and add
# them to the totals. Its skips must all be listed ("# SKIP" lines, as
# many as it says it skipped). No such line (it stopped early), or a
# non-zero exit without a failure, is a failure of ITEM. FILE's lines are
# not printed again: the caller shows FILE (tap_show).
tap_take() {
	local item=$1 file=$2 rc=$3 line p f s listed
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$file" 2>/dev/null | tail -n 1)
	if [ -z "$line" ]; then
		tap_fail "$item" "no final \"N passed, N failed, N skipped\" line (stopped early, exit $rc)"
		return
	fi
	read -r p _ f _ s _ <<<"${line//,/}"
	tap_add "$p" "$f" "$s"
	listed=$(grep -cE '^# SKIP ' "$file")
	[ "$listed" -eq "$s" ] ||
		tap_fail "$item" "$s skipped but $listed skips listed with a reason"
	_tap_rc "$item" "$rc" "$f"
}

# tap_show FILE: FILE for the level above: its final summary line becomes
# a comment, so that only the caller's own summary is a bare one.
tap_show() {
	sed -E 's/^([0-9]+ passed, [0-9]+ failed, [0-9]+ skipped)$/# \1/' "$1"
}

# tap_summary_line: the one final line.
tap_summary_line() {
	echo "$TAP_PASS passed, $TAP_FAIL failed, $TAP_SKIP skipped"
}

# tap_check STATUS DESCRIPTION [LOG]: one numbered result of a script
# that prints its own TAP (plan "1..$TAP_CHECKS" at the end): "ok N -
# DESCRIPTION" when STATUS is 0, else "not ok N - ..." followed by the
# last 40 lines of LOG, if given, as comments. TAP_CHECKS_FAILED counts
# the failures.
TAP_CHECKS=0
TAP_CHECKS_FAILED=0
tap_check() {
	TAP_CHECKS=$((TAP_CHECKS + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_CHECKS - $2"
	else
		echo "not ok $TAP_CHECKS - $2"
		[ -n "${3:-}" ] && [ -f "$3" ] && tail -n 40 "$3" | sed 's/^/# /'
		TAP_CHECKS_FAILED=$((TAP_CHECKS_FAILED + 1))
	fi
	return 0
}
