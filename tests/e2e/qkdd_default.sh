#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd's default path end to end, on the host over loopback: two daemons
# with no --channel and no --block-bits -- the simulated channel's default
# source, weak coherent pulses with two decoy intensities, 25 km -- a PSK
# made here, --no-kernel --out:
#   - honest channel (also the positive control of the attack below): both
#     exit 0, keys at both ends, identical; the secret length of every
#     round recomputed by tests/e2e/keylen_check.py from the counts the
#     daemons publish (protocol.md's formula written out again, not the
#     daemon's function) equals the daemons' secret_bits, at both ends;
#   - photon-number splitting (--channel eve-split=pns, the simulator's
#     test-only eavesdropper: she blocks every single-photon pulse, keeps
#     one photon of each multi-photon pulse and sends the rest to Bob over
#     a lossless line): her measurement disturbs nothing (the QBER stays
#     below the abort threshold), only the decoy estimate shows her -- every
#     round aborts with the decoy reason at both ends, no key, and the
#     recomputed bound is zero too.
# Prints TAP and a final "N passed, N failed" line. Needs no module, no
# root. About 30 s on two cores (each round is 8.6 * 10^7 pulses).
set -u
# shellcheck source=tests/e2e/lib-qkdd.sh
. "$(dirname "$0")/lib-qkdd.sh"
CHECK=tests/e2e/keylen_check.py
qkdd_lib_init qkdd_default

# run_pair DIR ROUNDS [--channel SPEC]: both daemons, until both exit
run_pair() {
	local d=$1 rounds=$2 port
	shift 2
	port=$(free_port)
	psk "$d"
	qkdd_start "$d" bob "$port" 240 --rounds "$rounds" "$@"
	sleep 0.3
	qkdd_start "$d" alice "$port" 240 --rounds "$rounds" "$@"
	# shellcheck disable=SC2154 # pid_alice, pid_bob: set by qkdd_start
	{ wait "$pid_alice"; rc_alice=$?; wait "$pid_bob"; rc_bob=$?; }
}

# estimates LOG: the round's estimate lines without the prefix (both ends
# must publish the same counts)
estimates() { grep -o 'round [0-9]*: estimate: n_z=[^ ]* n_x=[^ ]* m_x=[^ ]*' "$1"; }

# ---- the default channel: keys, and the secret length recomputed -----------
D=$T/default; mkdir -p "$D"
run_pair "$D" 2
ok $(( rc_alice || rc_bob )) "default: both daemons finish 2 rounds with no --channel, no --block-bits, and exit 0 (alice $rc_alice, bob $rc_bob)"
grep -q '^source=wcp$' "$D/alice.status" && grep -q '^source=wcp$' "$D/bob.status" &&
	grep -q '^mu=0.5,0.10000000000000001,0$' "$D/bob.status" &&
	[ "$(grep -c 'round [0-9]*: ok: ' "$D/bob.log")" -eq 2 ]
ok $? "default: the default source is weak coherent pulses with decoys (mu $(sed -n 's/^mu=//p' "$D/bob.status"), p $(sed -n 's/^p_mu=//p' "$D/bob.status")), 2 rounds ok"
[ -s "$D/alice.keys" ] && [ -s "$D/bob.keys" ] && cmp -s "$D/alice.keys" "$D/bob.keys" &&
	[ -z "$(cut -d' ' -f1 "$D/alice.keys" | sort | uniq -d)" ]
ok $? "default: keys at both ends, identical, no index repeated ($(grep -c . "$D/alice.keys" 2>/dev/null) keys)"
[ "$(estimates "$D/alice.log" | wc -l)" -eq 2 ] && [ "$(estimates "$D/alice.log")" = "$(estimates "$D/bob.log")" ]
ok $? "default: both ends publish the same counts for each round"
"$CHECK" "$D/alice.log" "$D/alice.status" --expect ok --min-rounds 2 > "$D/check.alice" 2>&1; ra=$?
"$CHECK" "$D/bob.log" "$D/bob.status" --expect ok --min-rounds 2 > "$D/check.bob" 2>&1; rb=$?
cat "$D/check.alice" "$D/check.bob"
ok $(( ra || rb )) "default: the secret length of every round, recomputed from the published counts with protocol.md's decoy bound, is the daemons' at both ends"

# ---- photon-number splitting ---------------------------------------------------
D=$T/pns; mkdir -p "$D"
run_pair "$D" 1 --channel eve-split=pns
ok $(( rc_alice || rc_bob )) "pns: both daemons run their round and exit 0 (alice $rc_alice, bob $rc_bob)"
grep -q 'round 1: aborted, block discarded: no single-photon events can be guaranteed (decoy bound is zero)' "$D/alice.log" &&
	grep -q 'round 1: aborted, block discarded: peer aborted the round: no secret key left: no single-photon events can be guaranteed' "$D/bob.log" &&
	grep -q '^rounds_aborted=1$' "$D/bob.status" && grep -q '^rounds_ok=0$' "$D/alice.status"
ok $? "pns: the round aborts at both ends with the decoy reason ($(sed -n 's/^last_reason=//p' "$D/alice.status"))"
[ ! -s "$D/alice.keys" ] && [ ! -s "$D/bob.keys" ]
ok $? "pns: no key output at either end"
# the QBER alone would not have caught her: it is the honest channel's
q=$(sed -n 's/^qber=//p' "$D/alice.status")
awk -v q="${q:-1}" 'BEGIN { exit !(q < 0.05) }'
ok $? "pns: the QBER (${q:-?}) is far below the abort threshold: only the decoy estimate shows the attack"
"$CHECK" "$D/alice.log" "$D/alice.status" --expect zero --min-rounds 1 > "$D/check.alice" 2>&1
r=$?
cat "$D/check.alice"
ok $r "pns: the bound recomputed from the published counts is zero too"

qkdd_tap_end
