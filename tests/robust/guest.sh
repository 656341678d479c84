#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Runs inside the VM (tests/vm/run-vm.sh, as root, cwd = repo top):
#   tests/robust/guest.sh QKD_KO COUNT UCOUNT SECONDS STRESS_SECONDS SEED
# Loads the module, runs the fuzzer (root, then unprivileged, then a root
# run in a fresh netns torn down full), the stress test, the fail-nth
# allocation-failure sweep (options: $QKD_FAILNTH_ARGS), unloads the
# module, then loads and unloads it over and over while it is in use
# (options: $QKD_LOADUNLOAD_ARGS). Prints TAP lines prefixed with their
# program, and "# ran: PROGRAM" for each; run.sh numbers them. A program
# whose results do not match its TAP plan, or that exits non-zero without
# a failed test, gets a "not ok" line of its own.
set -u
ko=$1 count=$2 ucount=$3 secs=$4 ssecs=$5 seed=$6
bin=build/robust
out=${QKDVM_RESULTS:-/tmp}

say() { printf '%s\n' "$*"; }
mark() { echo "qkd-robust: $*" > /dev/kmsg 2>/dev/null || true; }

# run PREFIX CMD...: the program's TAP lines get "PREFIX: " in front
run() {
	p=$1
	shift
	mark "start $p"
	"$@" > "$out/$p.out" 2>&1
	rc=$?
	sed -n -e "s/^\(\(not \)\{0,1\}ok\) [0-9]* - /\1 - $p: /p" \
		-e '/^#/p' "$out/$p.out"
	# it ran; it must account for itself (tests/lib/tap.sh): its results
	# match its plan, and a non-zero exit comes with a failed test (a
	# set-up that bails out after a SKIP line fails here)
	say "# ran: $p"
	nres=$(grep -cE '^(not )?ok ' "$out/$p.out")
	nfail=$(grep -cE '^not ok ' "$out/$p.out")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$out/$p.out" | tail -n 1)
	if [ "$nres" -eq 0 ]; then
		say "not ok - $p: no TAP output (exit $rc)"
	elif [ -z "$plan" ]; then
		say "not ok - $p: no TAP plan, stopped before the end ($nres results, exit $rc)"
	elif [ "$plan" -ne "$nres" ]; then
		say "not ok - $p: $nres results for a plan of $plan"
	fi
	if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		say "not ok - $p: exit $rc without a failed test"
	fi
	tail -n 3 "$out/$p.out" | grep -v '^[0-9]* passed\|^1\.\.\|^#\|^ok\|^not ok' | sed 's/^/# /'
	# after an oops the module is likely wedged: stop here, run-vm.sh
	# reports the dmesg; do not wait for a VM timeout in rmmod
	if dmesg | grep -qE 'BUG:|Oops|general protection|Kernel panic'; then
		say "not ok - $p: kernel oops (see dmesg)"
		dmesg | grep -E -A3 'BUG:|Oops|RIP:' | head -n 12 | sed 's/^/# /'
		exit 0
	fi
}

deps=$(modinfo -F depends "$ko" 2>/dev/null | tr ',' ' ')
[ -n "$deps" ] && modprobe -a $deps
if insmod "$ko"; then say "ok - insmod qkd.ko"; else say "not ok - insmod qkd.ko"; exit 0; fi
[ -c /dev/qkd ] || sleep 1

run fuzz "$bin/fuzz_genl" -n "$count" -u "$ucount" -t "$secs" -s "$seed" -m all
# a root run in a netns of its own, left full and torn down with its keys
# and open files (the netns exit path)
run fuzz-netns unshare -n "$bin/fuzz_genl" -n $((count / 4)) -t $((secs / 3 + 1)) \
	-s $((seed + 7)) -m root -k
run stress "$bin/stress" -t "$ssecs" -s "$seed"
# allocation-failure sweep (fail-nth: the debug kernel; a SKIP elsewhere)
# shellcheck disable=SC2086 # options, word-split on purpose
run failnth "$bin/failnth" ${QKD_FAILNTH_ARGS:-}

# qkdd pairs killed with SIGKILL at random points (tests/robust/qkdd_crash.sh)
[ "${QKD_CRASH_KILLS:-0}" -gt 0 ] && run qkdd-crash tests/robust/qkdd_crash.sh -n "$QKD_CRASH_KILLS" -t "${QKD_CRASH_SECS:-170}" -s "$seed"

# netns teardown is asynchronous: retry the unload for up to 10 s
mark "rmmod"
i=0
until rmmod qkd 2>/dev/null; do
	i=$((i + 1))
	if [ $i -ge 20 ]; then say "not ok - rmmod qkd (still in use)"; exit 0; fi
	sleep 0.5
done
say "ok - rmmod qkd"

# load/unload over and over with keys stored, readers in poll() and a dump
# in progress (options: $QKD_LOADUNLOAD_ARGS); ends with the module unloaded
# shellcheck disable=SC2086 # options, word-split on purpose
run loadunload "$bin/loadunload" -k "$ko" ${QKD_LOADUNLOAD_ARGS:-}
