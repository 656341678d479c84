#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd under an active network attacker, on the host over loopback: two
# daemons (--no-kernel, keys to files, a PSK made here) whose classical
# channel goes through build/tests/qkdd_mitm (tests/e2e/qkdd_mitm.c), which
# attacks a share of the frames for ATTACK seconds and then forwards
# everything. For each scenario (a seed and a list of attacks):
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
# Prints TAP and a final "N passed, N failed" line. Needs no module, no root.
# QKDD_MITM_ATTACK (seconds of attack per scenario, default 10).
set -u
cd "$(dirname "$0")/../.."
QKDD=${QKDD:-build/qkdd}
MITM=${QKDD_MITM:-build/tests/qkdd_mitm}
for b in "$QKDD" "$MITM"; do
	if [ ! -x "$b" ]; then
		make -j2 "$b" >/dev/null || { echo "Bail out! cannot build $b"; exit 1; }
	fi
done
T=$(mktemp -d /tmp/qkdd_mitm.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${QKDD_TEST_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"' EXIT
UUID=6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b
BLOCK=${QKDD_TEST_BLOCK:-524288}
ATTACK=${QKDD_MITM_ATTACK:-10}
# after the attacker stops: the back-off (at most 64 s) and a round
RECOVER=${QKDD_MITM_RECOVER:-90}
pass=0 fail=0 n=0

ok() {		# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"; pass=$((pass + 1))
	else
		echo "not ok $n - $2"; fail=$((fail + 1))
	fi
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# QKDD_TEST_PORTS=LO-HI: take the ports from that range (default: any high port)
free_port() {
	local p lo=20000 span=40000
	if [ -n "${QKDD_TEST_PORTS:-}" ]; then
		lo=${QKDD_TEST_PORTS%-*}; span=$(( ${QKDD_TEST_PORTS#*-} - lo ))
	fi
	for _ in $(seq 50); do
		p=$((lo + RANDOM % span))
		port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
	done
	echo 0
}

keys() { [ -f "$1" ] && grep -c . "$1" || echo 0; }

# scenario NAME SEED RATE ATTACKS
scenario() {
	local name=$1 seed=$2 rate=$3 attacks=$4 d=$T/$1 bport mport k0 t0 role addr
	local pid_alice pid_bob pid_mitm rc_alice rc_bob alive det
	mkdir -p "$d"
	bport=$(free_port)
	mport=$(free_port)
	while [ "$mport" = "$bport" ] || [ "$mport" = $((bport + 1)) ] || [ $((mport + 1)) = "$bport" ]; do
		mport=$(free_port)
	done
	(umask 077; head -c 65536 /dev/urandom > "$d/alice.psk"; cp "$d/alice.psk" "$d/bob.psk")
	for role in bob alice; do
		if [ $role = bob ]; then addr="--listen 127.0.0.1:$bport"; else addr="--peer 127.0.0.1:$mport"; fi
		# shellcheck disable=SC2086
		timeout $((ATTACK + RECOVER + 60)) "$QKDD" --role $role $addr \
			--stream $UUID --link ab --psk "$d/$role.psk" --no-kernel \
			--out "$d/$role.keys" --status "$d/$role.status" --rounds 0 \
			--block-bits "$BLOCK" --timeout 5 --retry-max 2 \
			--channel source=single-photon,fiber-km=25 > "$d/$role.log" 2>&1 &
		eval "pid_$role=$!"
		if [ $role = bob ]; then
			sleep 0.3
			"$MITM" "$mport" "$bport" "$seed" "$ATTACK" "$rate" "$attacks" \
				2> "$d/mitm.log" &
			pid_mitm=$!
			sleep 0.2
		fi
	done
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
}

scenario tamper 1 0.2 flip,trunc,forge
scenario order 2 0.2 drop,dup,reorder,replay,delay
scenario sessions 3 0.2 replay-old,reset,flood,flip

echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
