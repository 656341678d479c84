#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd under an active network attacker, on the host over loopback: two
# daemons (--no-kernel, keys to files, a PSK made here) whose classical
# channel and simulated quantum link go through build/tests/qkdd_mitm
# (tests/e2e/qkdd_mitm.c), which attacks a share of the frames or quantum
# chunks for ATTACK seconds and then forwards everything. For each
# scenario (a seed and a list of attacks):
#   - neither daemon stops while attacked (they are still running when the
#     attacker stops, and exit 0 on SIGTERM at the end);
#   - never two different keys for one index at the two ends, no index
#     twice at one end, and the key files identical at the end: a key is
#     pushed only from a transcript authenticated at both ends (a tampered
#     one would give different keys);
#   - the damage is bounded as protocol.md ("Active attacks") says: every
#     tampering was detected (ALARM lines, auth_failures), no re-alignment
#     skipped more than 80 pads per pool, the reserve is not used up;
#   - the link gives keys again by itself after the attacker stops.
# The quantum scenarios (q-* attacks: Alice's detection events for Bob
# altered, dropped, cut, replayed, forged, flooded, the link reset) also
# check:
#   - no key from a round whose detections were altered beyond the abort
#     threshold (Bob's bit flipped in 25 % of them as intercept-resend
#     does, his basis in 50 %, a stale chunk taken for the round): each
#     such round (found by session id and round) ended without key at Bob;
#     a slightly noisy one (1 %) may give a key, equal at both ends;
#   - every chunk no qkdd sends (bad magic, 2^34 pulses, another pulse
#     count than the agreed one, a round other than the next) is refused
#     at Bob with the alarm (and so the back-off): no quantum chunk costs a
#     connection for free; Bob never runs a round Alice did not start;
#   - a header claiming 2^34 pulses is refused before any allocation:
#     Bob's peak RSS stays below Alice's (who holds the same round's
#     records) plus 64 MiB;
#   - after the alarms' back-off the link comes back by itself (Bob takes
#     the newest waiting connection, not Alice's attempts she gave up).
# The drain scenarios ("resets": every classical connection reset at its
# first frame; "qresets": every quantum connection at its first chunk, for
# QKDD_MITM_DRAIN seconds, default 16, the daemons run with --backoff-base 1
# --backoff-max 4) check the budget of protocol.md ("Active attacks"):
#   - each end makes at most the connections the back-off schedule allows
#     and spends at most QKDD_CONN_PAD_MAX (128) pad bytes on each;
#   - neither daemon stops; the alarm is logged once per 4 failures at most;
#   - equal keys flow again within twice the cap and a round after it.
# Prints TAP and a final "N passed, N failed" line. Needs no module, no root.
# QKDD_MITM_ATTACK (seconds of attack per scenario, default 10).
set -u
MITM=${QKDD_MITM:-build/tests/qkdd_mitm}
# shellcheck source=tests/e2e/lib-qkdd.sh
. "$(dirname "$0")/lib-qkdd.sh"
qkdd_lib_init qkdd_mitm "$MITM"
BLOCK=${QKDD_TEST_BLOCK:-524288}
ATTACK=${QKDD_MITM_ATTACK:-10}
# after the attacker stops: the back-off (at most 64 s) and a round
RECOVER=${QKDD_MITM_RECOVER:-90}

# the back-off of a connection that ends before a round completes, small
# here so that the test is short (qkdd(8): --backoff-base, --backoff-max)
BO_BASE=${QKDD_MITM_BO_BASE:-1}
BO_MAX=${QKDD_MITM_BO_MAX:-4}
BO_OPTS=${QKDD_MITM_BO_OPTS---backoff-base $BO_BASE --backoff-max $BO_MAX}
DRAIN=${QKDD_MITM_DRAIN:-16}
# the pad bytes one connection's handshake may cost an end at most
# (protocol.md, "Security claims": QKDD_CONN_PAD_MAX)
CONN_PAD=${QKDD_MITM_CONN_PAD:-128}

keys() { [ -f "$1" ] && grep -c . "$1" || echo 0; }

# hwm PID: the peak RSS (kB) of the qkdd that timeout PID runs
hwm() {
	local c
	c=$(pgrep -P "$1" | head -n 1)
	sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/${c:-0}/status" 2>/dev/null || echo 0
}

# outcomes LOG: "SESSION ROUND ok|aborted|..." for each round in a daemon's log
outcomes() {
	awk '$2 == "session" && $4 == "up:" { s = $3 }
	     $2 == "round" && $3 ~ /^[0-9]+:$/ { r = $3; sub(":", "", r); print s, r, $4 }' "$1"
}

# conns_allowed SECONDS: the most connections the back-off lets an end
# start in SECONDS when none completes a round: one at once, then one after
# each wait BO_BASE, 2 BO_BASE ... BO_MAX (the jitter only adds to a wait)
conns_allowed() {
	local t=0 w=$BO_BASE n=1
	while [ $((t + w)) -le "$1" ]; do
		t=$((t + w)); n=$((n + 1))
		w=$((w * 2)); [ "$w" -gt "$BO_MAX" ] && w=$BO_MAX
	done
	echo "$n"
}

# mitm_pair DIR SEED SECONDS RATE ATTACKS LIFETIME QKDD-OPTION...: a PSK
# pair in DIR; Bob on a free port (and the next, the quantum link), the
# man in the middle on two others in front of him (ATTACKS at RATE for
# SECONDS, its log DIR/mitm.log), then Alice through it; both daemons
# with LIFETIME and the options. Sets the caller's pid_bob, pid_mitm and
# pid_alice.
mitm_pair() {
	local d=$1 seed=$2 secs=$3 rate=$4 attacks=$5 life=$6 bport mport role port
	shift 6
	bport=$(free_port)
	mport=$(free_port)
	while [ "$mport" = "$bport" ] || [ "$mport" = $((bport + 1)) ] || [ $((mport + 1)) = "$bport" ]; do
		mport=$(free_port)
	done
	psk "$d"
	for role in bob alice; do
		if [ $role = bob ]; then port=$bport; else port=$mport; fi
		qkdd_start "$d" $role "$port" "$life" "$@"
		if [ $role = bob ]; then
			sleep 0.3
			"$MITM" "$mport" "$bport" "$seed" "$secs" "$rate" "$attacks" \
				2> "$d/mitm.log" &
			pid_mitm=$!
			sleep 0.2
		fi
	done
}

# drain NAME SEED ATTACK: the attacker resets every connection (the
# classical one at its first frame, or the quantum one at its first chunk)
# for DRAIN seconds. The pads the attack costs an end stay within the
# budget of the back-off (conns_allowed connections, CONN_PAD bytes each,
# counted from the PSK's reserve to the reserve at the first handshake
# that leads to a round); neither end stops; keys flow again, equal, soon
# after (the back-off's cap, a handshake, a round).
drain() {
	local name=$1 seed=$2 attack=$3 d=$T/$1 role pid_alice pid_bob pid_mitm
	local rc_alice rc_bob alive t0 k0 r0 r1 spent nmax budget conns rec=$((BO_MAX * 2 + 40)) e ok_all=0 detail=
	mkdir -p "$d"
	# shellcheck disable=SC2086
	mitm_pair "$d" "$seed" "$DRAIN" 1 "$attack" $((DRAIN + rec + 30)) --rounds 0 \
		--block-bits 131072 --timeout 5 --retry-max 2 $BO_OPTS \
		--channel source=single-photon,fiber-km=25
	sleep "$DRAIN"
	alive=0
	kill -0 "$pid_alice" 2>/dev/null && kill -0 "$pid_bob" 2>/dev/null || alive=1
	conns=$(grep -oE '^attack [0-9]+' "$d/mitm.log" | wc -l)
	ok $alive "$name: both daemons still run after $DRAIN s of every connection reset ($conns resets)"
	k0=$(keys "$d/alice.keys")
	t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$rec" ]; do
		[ "$(keys "$d/alice.keys")" -gt "$k0" ] && [ "$(keys "$d/bob.keys")" -gt "$k0" ] && break
		sleep 1
	done
	[ "$(keys "$d/alice.keys")" -gt "$k0" ] && [ "$(keys "$d/bob.keys")" -gt "$k0" ]
	ok $? "$name: keys again $((SECONDS - t0)) s after the attacker stopped (at most $rec s: twice the back-off's cap and a round)"
	kill -TERM "$pid_alice" "$pid_bob" 2>/dev/null
	wait "$pid_alice"; rc_alice=$?
	wait "$pid_bob"; rc_bob=$?
	kill "$pid_mitm" 2>/dev/null; wait "$pid_mitm" 2>/dev/null
	ok $(( rc_alice || rc_bob )) "$name: both stop cleanly on SIGTERM (alice $rc_alice, bob $rc_bob)"
	cmp -s "$d/alice.keys" "$d/bob.keys" && [ "$(keys "$d/alice.keys")" -gt 0 ]
	ok $? "$name: key files identical at the end ($(keys "$d/alice.keys") keys)"
	# the budget: connections the back-off allows in the attack (and the
	# one after it), CONN_PAD bytes each
	nmax=$(( $(conns_allowed "$DRAIN") + 1 ))
	budget=$((nmax * CONN_PAD))
	for role in alice bob; do
		r0=$(sed -n 's/.*PSK .* loaded and wiped (\([0-9]*\) reserve bytes).*/\1/p' "$d/$role.log" | head -n 1)
		r1=$(awk '/round [0-9]+: ok/ { exit } /session [0-9a-f]+ up: .*auth reserve/ { r = $(NF - 1) } END { print r }' "$d/$role.log")
		spent=$(( ${r0:-0} - ${r1:-0} ))
		[ -n "$r0" ] && [ -n "$r1" ] && [ "$spent" -ge 0 ] && [ "$spent" -le "$budget" ] || ok_all=1
		detail="$detail$role ${r0:-?} -> ${r1:-?} ($spent), "
	done
	[ "$conns" -le "$nmax" ] || ok_all=1
	ok $ok_all "$name: $conns connections and the reserve spent in $DRAIN s of resets within the budget: $nmax connections, $budget bytes ($CONN_PAD a connection, back-off $BO_BASE..$BO_MAX s): ${detail%, }"
	e=$(grep -c 'ALARM: .*without a completed round' "$d/alice.log")
	[ "$e" -ge 1 ] && [ "$e" -le $(( $(conns_allowed "$DRAIN") / 4 + 1 )) ]
	ok $? "$name: the alarm raised, once per 4 failed connections at most ($e lines at alice)"
}

# scenario NAME SEED RATE ATTACKS [BLOCK-BITS]
scenario() {
	local name=$1 seed=$2 rate=$3 attacks=$4 blk=${5:-$BLOCK} d=$T/$1 k0 t0
	local pid_alice pid_bob pid_mitm rc_alice rc_bob alive det hwm_alice hwm_bob bad nq
	mkdir -p "$d"
	mitm_pair "$d" "$seed" "$ATTACK" "$rate" "$attacks" $((ATTACK + RECOVER + 60)) --rounds 0 \
		--block-bits "$blk" --timeout 5 --retry-max 2 \
		--channel source=single-photon,fiber-km=25
	sleep "$ATTACK"
	alive=0
	kill -0 "$pid_alice" 2>/dev/null && kill -0 "$pid_bob" 2>/dev/null || alive=1
	ok $alive "$name: both daemons still run after $ATTACK s of attack ($(grep -c '^attack ' "$d/mitm.log") attacks: $(grep -o '^attack [0-9]*: [a-z-]*' "$d/mitm.log" | awk '{print $3}' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}'))"
	# the link gives keys again: a round completes after the attacker stops
	k0=$(keys "$d/alice.keys")
	t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$RECOVER" ]; do
		[ "$(keys "$d/alice.keys")" -gt "$k0" ] && [ "$(keys "$d/bob.keys")" -gt "$k0" ] && break
		sleep 1
	done
	[ "$(keys "$d/alice.keys")" -gt "$k0" ]
	ok $? "$name: keys again after the attacker stopped ($k0 before, $(keys "$d/alice.keys") after $((SECONDS - t0)) s)"
	hwm_alice=$(hwm "$pid_alice")
	hwm_bob=$(hwm "$pid_bob")
	kill -TERM "$pid_alice" "$pid_bob" 2>/dev/null
	wait "$pid_alice"; rc_alice=$?
	wait "$pid_bob"; rc_bob=$?
	kill "$pid_mitm" 2>/dev/null; wait "$pid_mitm" 2>/dev/null
	ok $(( rc_alice || rc_bob )) "$name: both stop cleanly on SIGTERM (alice $rc_alice, bob $rc_bob)"
	# one index, one key: at both ends, never two different keys for it
	[ -z "$(join <(sort -k1,1 "$d/alice.keys") <(sort -k1,1 "$d/bob.keys") | awk '$2 != $3')" ] &&
		[ -z "$(cut -d' ' -f1 "$d/alice.keys" | sort | uniq -d)" ] &&
		[ -z "$(cut -d' ' -f1 "$d/bob.keys" | sort | uniq -d)" ]
	ok $? "$name: never two different keys for one index, no index twice"
	cmp -s "$d/alice.keys" "$d/bob.keys"
	ok $? "$name: key files identical at the end ($(keys "$d/alice.keys") keys)"
	# damage: bounded skips, every tampering seen, the reserve still there
	! grep -ohE 're-aligned with the peer: [0-9]+ \+ [0-9]+' "$d/alice.log" "$d/bob.log" |
		grep -oE '[0-9]+ \+ [0-9]+' | tr -d '+' | awk '$1 > 80 || $2 > 80 { bad = 1 } END { exit !bad }' &&
		grep -q '^auth_reserve=[1-9]' "$d/alice.status" && grep -q '^auth_reserve=[1-9]' "$d/bob.status" &&
		! grep -q 'authentication halted\|reserve is exhausted' "$d/alice.log" "$d/bob.log"
	ok $? "$name: at most 80 pads skipped per pool and connection, reserves left ($(grep -h '^auth_reserve=' "$d/alice.status" "$d/bob.status" | tr '\n' ' '))"
	# a changed frame is seen: a tag or closing tag fails (ALARM), a
	# malformed message aborts the round, or the frame layer refuses it
	if grep -qE '^attack [0-9]+: (flip|trunc|forge|replay|replay-old|dup|flood)' "$d/mitm.log"; then
		det=$(cat "$d/alice.log" "$d/bob.log" | grep -cE 'ALARM: authentication failure|aborted, block discarded|classical channel: ')
		[ "$det" -gt 0 ]
		ok $? "$name: the tampering was detected ($(cat "$d/alice.log" "$d/bob.log" | grep -c 'ALARM: ') ALARM lines, $det detections)"
	fi
	case $attacks in *q-*) ;; *) return ;; esac
	# the quantum link: no key from a round whose detections were altered
	# beyond the threshold, found by session id and round at Bob
	outcomes "$d/bob.log" > "$d/bob.rounds"
	grep -E '^attack [0-9]+: q-[a-z-]+ .*(25%|basis flipped|stale detections for this round)' "$d/mitm.log" |
		sed -E 's/.* session ([0-9a-f]+) round ([0-9]+) .*/\1 \2/' > "$d/altered"
	bad=$(awk 'NR == FNR { a[$1 " " $2] = 1; next } $3 == "ok:" && ($1 " " $2) in a { n++ } END { print n + 0 }' \
		"$d/altered" "$d/bob.rounds")
	[ "$bad" -eq 0 ]
	ok $? "$name: no key from a round whose detections were altered beyond the threshold ($(grep -c . "$d/altered") such rounds, $(grep -c 'QBER .* above the abort threshold' "$d/bob.log") QBER aborts at bob, $bad with a key)"
	# Bob runs only rounds Alice started: no round number from the link
	# (Alice may have sent the chunk of one more round when stopped)
	bad=$(awk -v m="$(outcomes "$d/alice.log" | awk '$2 > m { m = $2 } END { print m + 1 }')" \
		'$2 > m { printf "%s ", $2 }' "$d/bob.rounds")
	[ -z "$bad" ]
	ok $? "$name: bob runs no round alice did not start (${bad:-none})"
	# a chunk no qkdd sends costs the alarm, as a frame no qkdd sends does
	nq=$(grep -cE '^attack [0-9]+: q-header ' "$d/mitm.log")
	if [ "$nq" -gt 0 ]; then
		[ "$(grep -c 'ALARM: .*quantum channel' "$d/bob.log")" -ge "$nq" ] &&
			grep -q '^auth_failures=[1-9]' "$d/bob.status"
		ok $? "$name: every forged quantum header refused with the alarm ($nq forged, $(grep -c 'ALARM: .*quantum channel' "$d/bob.log") alarms, $(grep -c '^qkdd.bob.: quantum channel: .*refused' "$d/bob.log") refused)"
	fi
	if grep -qE '^attack [0-9]+: q-header .*-> 2\^34' "$d/mitm.log"; then
		grep -q 'quantum channel: .*17179869184 pulses.*refused' "$d/bob.log" &&
			[ "$hwm_bob" -gt 0 ] && [ "$hwm_bob" -le $((hwm_alice + 65536)) ]
		ok $? "$name: 2^34 pulses claimed: refused, bob's peak RSS $hwm_bob kB (alice's $hwm_alice kB)"
	fi
}

# The scenarios are independent (a directory, ports and daemons each) and
# mostly wait (the attack, the back-off, a round: 17 s of CPU in 124 s of
# wall time one after the other, 2026-12-07): they run QKDD_MITM_JOBS at
# a time (default 4), each in a subshell with a slice of the port range of
# its own (so that two never take one port), its TAP in $T/NAME.tap,
# numbered here in the order below. A scenario that dies before its end
# is a failure, not fewer tests.
JOBS=${QKDD_MITM_JOBS:-4}
NSCEN=8
PORTS=${QKDD_TEST_PORTS:-20000-60000}
order=()
spawn() {	# spawn FUNCTION NAME ARGS...
	local lo=${PORTS%-*} hi=${PORTS#*-} i=${#order[@]} w
	w=$(( (hi - lo) / NSCEN ))
	[ "$i" -lt "$NSCEN" ] || { echo "Bail out! more than NSCEN=$NSCEN scenarios"; exit 1; }
	order+=("$2")
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	(
		# shellcheck disable=SC2034 # counted by ok()
		n=0 pass=0 fail=0
		QKDD_TEST_PORTS=$((lo + i * w))-$((lo + (i + 1) * w - 1))
		"$@"
		echo "# done: $2"
	) >"$T/$2.tap" 2>&1 &
}

spawn scenario tamper 1 0.2 flip,trunc,forge
spawn scenario order 2 0.2 drop,dup,reorder,replay,delay
spawn scenario sessions 3 0.2 replay-old,reset,flood,flip
# the simulated quantum link (smaller blocks: more rounds, more chunks)
spawn scenario qstate 4 1 q-flip,q-dup,q-replay 131072
spawn scenario qheader 5 1 q-header 131072
spawn scenario qsession 6 1 q-reset,q-replay-old,q-flood,q-trunc,q-drop 131072
# every connection reset (classical, then quantum): a bounded spend
spawn drain resets 7 reset
spawn drain qresets 8 q-reset
wait

for name in "${order[@]}"; do
	echo "# ---- $name"
	while IFS= read -r line; do
		case $line in
		"ok "*) ok 0 "${line#ok * - }" ;;
		"not ok "*) ok 1 "${line#not ok * - }" ;;
		"# done: $name") ;;
		*) echo "$line" ;;
		esac
	done <"$T/$name.tap"
	grep -qx "# done: $name" "$T/$name.tap"
	ok $? "$name: the scenario ran to its end"
done

qkdd_tap_end
