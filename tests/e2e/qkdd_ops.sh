#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd as a service (issue 18, the daemon's half), on the host over
# loopback, --no-kernel --out:
#   - state by default: under the unit (STATE_DIRECTORY set, no
#     --state-dir) a daemon killed with SIGKILL comes back without a new
#     PSK, and the rounds go on with identical keys at both ends;
#   - configuration problems found at start, with the file and the reason,
#     exit status 2 (the unit does not restart on it), nothing consumed:
#     PSK missing, group- or world-readable, a symlink, not a regular
#     file; certificate, key or CA unreadable; output, status or state
#     path bad; unknown option or configuration key;
#   - SIGHUP reloads the configuration file (verbosity, retry and back-off
#     times) between rounds; a change that needs a restart is named and
#     left alone; a bad file on reload keeps the running configuration;
#   - SIGTERM in the middle of a round finishes that round (all its keys
#     at both ends, none half) and exits 0;
#   - syslog priorities (sd-daemon "<N>" prefixes) when stderr is the
#     journal (JOURNAL_STREAM): a normal round info, a QBER abort warning,
#     an authentication failure error; no prefix otherwise;
#   - sd_notify: READY=1 and STATUS= lines on NOTIFY_SOCKET;
#   - the control socket (mode 0600, SO_PEERCRED): qkdctl daemon show asks
#     the daemon itself; another user is refused even when the socket's
#     mode lets them connect; a killed daemon does not answer (no pid
#     guess); a second daemon cannot take a live socket over.
# Prints TAP and a final "N passed, N failed" line. Needs no module, no root.
set -u
# shellcheck source=tests/e2e/lib-qkdd.sh
. "$(dirname "$0")/lib-qkdd.sh"
qkdd_lib_init qkdd_ops
QKDCTL=${QKDCTL:-build/qkdctl}
BLOCK=${QKDD_TEST_BLOCK:-524288}
CH=source=single-photon,fiber-km=25

nkeys() { cat "$1" 2>/dev/null | wc -l; }
# wait_keys FILE N: until FILE has more than N lines (30 s at most)
wait_keys() {
	for _ in $(seq 150); do
		[ "$(nkeys "$1")" -gt "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
# wait_log FILE REGEX: until FILE has a line matching REGEX (30 s at most)
wait_log() {
	for _ in $(seq 150); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
same_keys() { [ -s "$1" ] && [ -s "$2" ] && cmp -s "$1" "$2"; }
addr_of() { if [ "$1" = bob ]; then echo "--listen 127.0.0.1:$2"; else echo "--peer 127.0.0.1:$2"; fi; }

# ---- state across restarts by default (the unit's STATE_DIRECTORY) ---------
# udaemon DIR ROLE PORT: one daemon as the unit starts it: no --state-dir,
# STATE_DIRECTORY set (StateDirectory=qkdd/%i); $last_pid is qkdd
udaemon() {
	local d=$1 role=$2 port=$3
	# shellcheck disable=SC2046
	STATE_DIRECTORY=$d/state-$role "$QKDD" --role "$role" $(addr_of "$role" "$port") \
		--stream $UUID --link ab --psk "$d/$role.psk" --no-kernel \
		--out "$d/$role.keys" --rounds 0 --block-bits "$BLOCK" \
		--retry-max 1 --channel $CH >> "$d/$role.log" 2>&1 &
	last_pid=$!
}
D=$T/state; mkdir -p "$D/state-alice" "$D/state-bob"; chmod 700 "$D/state-alice" "$D/state-bob"
port=$(free_port)
psk "$D"
udaemon "$D" bob "$port"; pid_bob=$last_pid; sleep 0.3
udaemon "$D" alice "$port"; pid_alice=$last_pid
wait_keys "$D/alice.keys" 0; k0=$(nkeys "$D/alice.keys")
kill -9 "$pid_alice"; wait "$pid_alice" 2>/dev/null
[ ! -e "$D/alice.psk" ] && [ -s "$D/state-alice/alice.state" ]
ok $? "state: under the unit (STATE_DIRECTORY, no --state-dir) the PSK is consumed into the state directory"
udaemon "$D" alice "$port"; pid_alice=$last_pid
wait_keys "$D/alice.keys" "$k0"; r1=$?
kill -9 "$pid_bob"; wait "$pid_bob" 2>/dev/null
udaemon "$D" bob "$port"; pid_bob=$last_pid
wait_keys "$D/bob.keys" "$(nkeys "$D/alice.keys")"; r2=$?
wait_keys "$D/alice.keys" "$(nkeys "$D/alice.keys")"
kill -TERM "$pid_alice" "$pid_bob"; wait "$pid_alice"; rc_alice=$?; wait "$pid_bob"; rc_bob=$?
ok $(( r1 || r2 || rc_alice || rc_bob )) "state: alice then bob killed with SIGKILL and restarted with no new PSK: rounds go on (rc $rc_alice/$rc_bob, $k0 then $(nkeys "$D/alice.keys") keys)"
same_keys "$D/alice.keys" "$D/bob.keys" &&
	[ -z "$(cut -d' ' -f1 "$D/bob.keys" | sort | uniq -d)" ]
ok $? "state: key files identical after the restarts, no index repeated"
# The stores emptied while both daemons were down -- `qkdctl down --purge`
# and `up` delete and recreate the streams, so both stores start again at
# index 0: the next keys must still come
# after every index used before, or an ETSI 014 key_ID (stream, index)
# would name two different keys over time.
last=$(cut -d' ' -f1 "$D/alice.keys" | sort -n | tail -n 1)
mv "$D/alice.keys" "$D/alice.keys.before"; mv "$D/bob.keys" "$D/bob.keys.before"
udaemon "$D" bob "$port"; pid_bob=$last_pid; sleep 0.3
udaemon "$D" alice "$port"; pid_alice=$last_pid
wait_keys "$D/bob.keys" 0; r1=$?
wait_keys "$D/alice.keys" "$(nkeys "$D/bob.keys")"
kill -TERM "$pid_alice" "$pid_bob"; wait "$pid_alice"; wait "$pid_bob"
first=$(cut -d' ' -f1 "$D/alice.keys" 2>/dev/null | sort -n | head -n 1)
[ "$r1" = 0 ] && [ -n "$first" ] && [ -n "$last" ] && [ "$first" -gt "$last" ] &&
	same_keys "$D/alice.keys" "$D/bob.keys"
ok $? "state: stores emptied while both were down: the next keys start after every index used before (last ${last:-none}, then ${first:-none}), the same at both ends"

# ---- configuration problems: found at start, exit 2, named -----------------
D=$T/conf; mkdir -p "$D/state"; chmod 700 "$D/state"
(umask 077; head -c 65536 /dev/urandom > "$D/good.psk")
# bad CASE EXPECT-REGEX QKDD-ARGUMENT...: qkdd exits 2 within 10 s, its
# message matches, and a PSK that was given is still there (not consumed)
bad() {
	local what=$1 re=$2 rc
	shift 2
	timeout 10 "$QKDD" --role alice --peer 127.0.0.1:9 --stream $UUID --link ab \
		--retry-max 1 "$@" > "$D/out" 2>&1
	rc=$?
	[ $rc -eq 2 ] && grep -qE "$re" "$D/out" && [ -s "$D/good.psk" ]
	ok $? "config: $what: exit 2 at start, named (exit $rc: $(grep -m1 -E "$re" "$D/out" || head -1 "$D/out"))"
}
OUT=(--no-kernel --out "$D/k")
bad "PSK missing" "$D/none.psk.*(missing|No such file)" --psk "$D/none.psk" "${OUT[@]}"
cp -p "$D/good.psk" "$D/g.psk"; chmod 640 "$D/g.psk"
bad "PSK group-readable" "$D/g.psk.*mode 0640" --psk "$D/g.psk" "${OUT[@]}"
cp -p "$D/good.psk" "$D/o.psk"; chmod 604 "$D/o.psk"
bad "PSK world-readable" "$D/o.psk.*mode 0604" --psk "$D/o.psk" "${OUT[@]}"
ln -s "$D/good.psk" "$D/l.psk"
bad "PSK a symbolic link" "$D/l.psk.*symbolic link" --psk "$D/l.psk" "${OUT[@]}"
mkdir -m 700 "$D/dir.psk"
bad "PSK not a regular file" "$D/dir.psk.*not a regular file" --psk "$D/dir.psk" "${OUT[@]}"
head -c 100 /dev/urandom > "$D/short.psk"; chmod 600 "$D/short.psk"
bad "PSK of the wrong size" "$D/short.psk.*bytes" --psk "$D/short.psk" "${OUT[@]}"
X509=(--cert "$D/c.pem" --key "$D/k.pem" --ca "$D/ca.pem" --peer-name b)
: > "$D/k.pem"; chmod 600 "$D/k.pem"; : > "$D/ca.pem"
bad "certificate unreadable" "$D/c.pem.*(No such file|unreadable)" "${X509[@]}" "${OUT[@]}"
: > "$D/c.pem"; chmod 000 "$D/k.pem"
if [ "$(id -u)" -ne 0 ]; then
	bad "key unreadable" "$D/k.pem.*(Permission denied|unreadable)" "${X509[@]}" "${OUT[@]}"
else
	rm -f "$D/k.pem"
	bad "key unreadable" "$D/k.pem.*(No such file|unreadable)" "${X509[@]}" "${OUT[@]}"
fi
: > "$D/k.pem"; chmod 600 "$D/k.pem"; rm -f "$D/ca.pem"
bad "CA unreadable" "$D/ca.pem.*(No such file|unreadable)" "${X509[@]}" "${OUT[@]}"
bad "output directory missing" "$D/nodir/k.*No such file" --psk "$D/good.psk" --no-kernel --out "$D/nodir/k"
bad "status directory missing" "$D/nodir/s.*No such file" --psk "$D/good.psk" "${OUT[@]}" --status "$D/nodir/s"
bad "state directory missing" "$D/nostate.*No such file" --psk "$D/good.psk" "${OUT[@]}" --state-dir "$D/nostate"
: > "$D/notdir"
bad "state directory a file" "$D/notdir.*Not a directory" --psk "$D/good.psk" "${OUT[@]}" --state-dir "$D/notdir"
mkdir -m 777 "$D/open"
bad "state directory writable by others" "$D/open.*mode 0777" --psk "$D/good.psk" "${OUT[@]}" --state-dir "$D/open"
bad "unknown option" "unrecognized option|unknown option" --psk "$D/good.psk" "${OUT[@]}" --no-such-option
printf 'role = alice\nno-such-key = 1\n' > "$D/c.conf"
bad "unknown configuration key" "c.conf:2: unknown option 'no-such-key'" --config "$D/c.conf" --psk "$D/good.psk" "${OUT[@]}"
STATE_DIRECTORY=$D/nostate2 timeout 10 "$QKDD" --role alice --peer 127.0.0.1:9 \
	--stream $UUID --link ab --psk "$D/good.psk" "${OUT[@]}" > "$D/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "$D/nostate2" "$D/out" && [ -s "$D/good.psk" ]
ok $? "config: the unit's STATE_DIRECTORY missing: exit 2, named (exit $rc)"

# ---- SIGHUP reloads, SIGTERM finishes the round ----------------------------
D=$T/hup; mkdir -p "$D"
port=$(free_port)
psk "$D"
printf 'retry-max = 1\n' > "$D/bob.conf"
# shellcheck disable=SC2046
"$QKDD" --config "$D/bob.conf" --role bob $(addr_of bob "$port") --stream $UUID \
	--link ab --psk "$D/bob.psk" --no-kernel --out "$D/bob.keys" --rounds 0 \
	--block-bits "$BLOCK" --channel $CH > "$D/bob.log" 2>&1 &
pid_bob=$!; sleep 0.3
# shellcheck disable=SC2046
"$QKDD" --role alice $(addr_of alice "$port") --stream $UUID --link ab \
	--psk "$D/alice.psk" --no-kernel --out "$D/alice.keys" --rounds 0 \
	--block-bits "$BLOCK" --retry-max 1 --channel $CH > "$D/alice.log" 2>&1 &
pid_alice=$!
wait_keys "$D/bob.keys" 0
printf 'verbose\nretry-max = 3\nqber-abort = 0.2\n' > "$D/bob.conf"
kill -HUP "$pid_bob"
wait_log "$D/bob.log" 'SIGHUP: configuration reloaded \(verbose on, timeout 30 s, retry-max 3 s'; r1=$?
k=$(nkeys "$D/bob.keys")
wait_keys "$D/bob.keys" "$k"; r2=$?
kill -0 "$pid_bob" 2>/dev/null && [ $r1 -eq 0 ] && [ $r2 -eq 0 ] &&
	grep -q 'SIGHUP: changed, but only a restart applies it: qber-abort' "$D/bob.log"
ok $? "sighup: the daemon reloads verbose and retry-max, names qber-abort as needing a restart, and rounds go on ($k, then $(nkeys "$D/bob.keys") keys)"
printf 'retry-max = 1\nblock-bits = 12x\n' > "$D/bob.conf"
kill -HUP "$pid_bob"
wait_log "$D/bob.log" "SIGHUP: the configuration is not reloaded, the running one is kept: .*bob.conf:2: bad value"; r1=$?
k=$(nkeys "$D/bob.keys")
wait_keys "$D/bob.keys" "$k"; r2=$?
kill -0 "$pid_bob" 2>/dev/null && [ $r1 -eq 0 ] && [ $r2 -eq 0 ]
ok $? "sighup: a bad file on reload is named, the running configuration kept, rounds go on"
# SIGTERM to alice in the middle of her rounds: the round finishes, she
# stops with 0, bob has every key of it
kill -TERM "$pid_alice"; t0=$SECONDS
wait "$pid_alice"; rc_alice=$?
rr=$(sed -n 's/.*SIGTERM: round \([0-9]*\) finished, stopping.*/\1/p' "$D/alice.log")
# a SIGTERM that lands between two rounds stops before the next one: the
# last round is then the last one logged ok
if [ -z "$rr" ] && grep -q 'SIGTERM: between rounds, stopping' "$D/alice.log"; then
	rr=$(sed -n 's/.*round \([0-9]*\): ok:.*/\1/p' "$D/alice.log" | tail -n 1)
fi
[ "$rc_alice" -eq 0 ] && [ -n "$rr" ] && grep -q "round $rr: ok:" "$D/alice.log" &&
	[ $((SECONDS - t0)) -lt 30 ]
ok $? "sigterm: alice finishes round ${rr:-?} (logged ok) or stops between rounds, then exits 0 (rc $rc_alice)"
sleep 1
kill -TERM "$pid_bob"; wait "$pid_bob"; rc_bob=$?
# the last round's keys are whole at both ends: same files, and the keys=
# of the round's log line all there
kr=$(sed -n "s/.*round $rr: ok: .* keys=\([0-9]*\) first_index=\([0-9]*\).*/\1 \2/p" "$D/alice.log")
[ "$rc_bob" -eq 0 ] && same_keys "$D/alice.keys" "$D/bob.keys" && [ -n "$kr" ] &&
	[ "$(tail -1 "$D/bob.keys" | cut -d' ' -f1)" -eq $(( ${kr#* } + ${kr% *} - 1 )) ]
ok $? "sigterm: bob exits 0; both key files identical and end with the last key of round ${rr:-?} (keys first_index: ${kr:-none})"

# ---- syslog priorities when stderr is the journal ---------------------------
D=$T/prio; mkdir -p "$D"
# jdaemon DIR ROLE PORT ROUNDS CHANNEL PSK: stderr a file JOURNAL_STREAM names
jdaemon() {
	local d=$1 role=$2 port=$3 js
	: > "$d/$role.log"
	js=$(stat -c '%d:%i' "$d/$role.log")
	# shellcheck disable=SC2046
	JOURNAL_STREAM=$js timeout 60 "$QKDD" --role "$role" $(addr_of "$role" "$port") \
		--stream $UUID --link ab --psk "$6" --no-kernel --out "$d/$role.keys" \
		--rounds "$4" --block-bits "$BLOCK" --retry-max 1 --channel "$5" \
		>> "$d/$role.log" 2>&1 &
	last_pid=$!
}
port=$(free_port); psk "$D"
jdaemon "$D" bob "$port" 2 $CH,eve=1 "$D/bob.psk"; pb=$last_pid; sleep 0.3
jdaemon "$D" alice "$port" 2 $CH,eve=1 "$D/alice.psk"; wait "$last_pid" "$pb"
[ "$(grep -c '^<4>qkdd\[alice\] round [0-9]*: aborted, block discarded: QBER' "$D/alice.log")" -eq 2 ] &&
	grep -q '^<6>qkdd\[alice\]: started' "$D/alice.log" &&
	! grep -qv '^<[0-7]>' "$D/alice.log" "$D/bob.log"
ok $? "priorities: every line has a <N> prefix; a QBER abort is <4> (warning), the start <6> (info)"
D=$T/prio-ok; mkdir -p "$D"
port=$(free_port); psk "$D"
jdaemon "$D" bob "$port" 1 $CH "$D/bob.psk"; pb=$last_pid; sleep 0.3
jdaemon "$D" alice "$port" 1 $CH "$D/alice.psk"; wait "$last_pid" "$pb"
grep -q '^<6>qkdd\[bob\] round 1: ok: ' "$D/bob.log" &&
	! grep -q '^<[0-5]>' "$D/alice.log" "$D/bob.log"
ok $? "priorities: a normal round is <6> (info), and nothing of an honest run is at notice or above"
D=$T/prio-auth; mkdir -p "$D"
port=$(free_port); psk "$D"; head -c 65536 /dev/urandom > "$D/bob.psk"
jdaemon "$D" bob "$port" 1 $CH "$D/bob.psk"; pb=$last_pid; sleep 0.3
jdaemon "$D" alice "$port" 1 $CH "$D/alice.psk"; pa=$last_pid
wait_log "$D/bob.log" 'ALARM: authentication failure'
kill "$pa" "$pb" 2>/dev/null; wait "$pa" "$pb" 2>/dev/null
grep -qE '^<3>qkdd\[(alice|bob)\].*ALARM: authentication failure' "$D/alice.log" "$D/bob.log" &&
	! grep -qE '^<[4-7]>.*ALARM' "$D/alice.log" "$D/bob.log"
ok $? "priorities: an authentication failure (PSKs that differ) is <3> (error)"
! grep -qE '^<[0-7]>' "$T/state/alice.log" "$T/hup/bob.log"
ok $? "priorities: no prefix when stderr is not the journal"

# ---- sd_notify ---------------------------------------------------------------
D=$T/notify; mkdir -p "$D"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").close()
while True:
    m = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(m.replace("\n", "|") + "\n")
' "$D/notify.sock" "$D/notify.log" &
pn=$!
for _ in $(seq 50); do [ -S "$D/notify.sock" ] && break; sleep 0.1; done
port=$(free_port); psk "$D"
NOTIFY_SOCKET=$D/notify.sock qkdd_start "$D" bob "$port" 60 --rounds 2 --block-bits "$BLOCK" --channel $CH
sleep 0.3
qkdd_start "$D" alice "$port" 60 --rounds 2 --block-bits "$BLOCK" --channel $CH
wait "$pid_alice" "$pid_bob"
sleep 0.3; kill "$pn" 2>/dev/null
grep -n . "$D/notify.log" > "$D/n"
ready=$(grep -m1 '^[0-9]*:READY=1' "$D/n" | cut -d: -f1)
r2=$(grep -m1 '^[0-9]*:STATUS=round 2: ok, QBER [0-9.]*%, [0-9]* keys' "$D/n" | cut -d: -f1)
stop=$(grep -m1 '^[0-9]*:STOPPING=1' "$D/n" | cut -d: -f1)
[ -n "$ready" ] && [ -n "$r2" ] && [ -n "$stop" ] && [ "$ready" -lt "$r2" ] && [ "$r2" -lt "$stop" ] &&
	grep -q '^STATUS=listening on 127.0.0.1' "$D/notify.log" &&
	grep -q '^STATUS=connected' "$D/notify.log" &&
	grep -q '^STATUS=round 1: ok, QBER' "$D/notify.log"
ok $? "notify: READY=1, then STATUS= listening, connected, each round (QBER, keys), then STOPPING=1 ($(tr '\n' ' ' < "$D/notify.log" | cut -c1-200))"

# ---- the control socket: qkdctl daemon show asks the daemon ----------------
D=$T/ctl; mkdir -p "$D"
port=$(free_port); psk "$D"
# cdaemon ROLE: no timeout wrapper ($last_pid is qkdd's pid)
cdaemon() {
	# shellcheck disable=SC2046
	"$QKDD" --role "$1" $(addr_of "$1" "$port") --stream $UUID --link ab \
		--psk "$D/$1.psk" --state-dir "$D/state-$1" --no-kernel \
		--out "$D/$1.keys" --rounds 0 --block-bits "$BLOCK" --retry-max 1 \
		--channel $CH "${@:2}" >> "$D/$1.log" 2>&1 &
	last_pid=$!
}
mkdir -m 700 "$D/state-alice" "$D/state-bob"
cdaemon bob --control "$D/ab.sock"; pid_bob=$last_pid; sleep 0.3
cdaemon alice; pid_alice=$last_pid
wait_keys "$D/bob.keys" 0
sleep 0.5
out=$("$QKDCTL" daemon show socket "$D/ab.sock" 2>&1)
js=$("$QKDCTL" -j daemon show socket "$D/ab.sock" 2>&1)
[ "$(stat -c %a "$D/ab.sock")" = 600 ] &&
	grep -q "^link ab: bob, connected (pid $pid_bob)" <<<"$out" &&
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["running"] is True and d["keys_total"] > 0 and d["pid"] == int(sys.argv[2])))' "$js" "$pid_bob"
ok $? "control: the socket is mode 0600; qkdctl daemon show socket asks the daemon itself: running, connected, its pid, keys ($(head -1 <<<"$out"))"
# another daemon with the same control socket: refused at start
"$QKDD" --role bob --listen 127.0.0.1:$((port + 7)) --stream $UUID --link ab \
	--psk "$D/none.psk" --state-dir "$D/state-bob" --no-kernel --out "$D/x.keys" \
	--control "$D/ab.sock" > "$D/dup.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "control socket $D/ab.sock: another qkdd answers on it" "$D/dup.log" &&
	"$QKDCTL" daemon show socket "$D/ab.sock" | grep -q "pid $pid_bob"
ok $? "control: a second daemon on the same socket is refused (exit $rc) and the first keeps it"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	# the attacker: another user, with the socket's mode opened to all
	chmod 755 "$T" "$D"; chmod 666 "$D/ab.sock"
	cp "$QKDCTL" "$D/qkdctl"; chmod 755 "$D/qkdctl"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$D/qkdctl" daemon show socket "$D/ab.sock" 2>&1); rc=$?
	chmod 600 "$D/ab.sock"; chmod 700 "$T"
	[ $rc -ne 0 ] && grep -q 'answers only root and its own user' <<<"$out" &&
		! grep -q 'keys_total\|rounds' <<<"$out"
	ok $? "control: another user is refused by SO_PEERCRED even with the socket mode 0666 (rc $rc: $out)"
else
	n=$((n + 1)); echo "ok $n - control: another user refused # SKIP needs root and setpriv"
fi
kill -9 "$pid_bob"; wait "$pid_bob" 2>/dev/null
out=$("$QKDCTL" daemon show socket "$D/ab.sock" 2>&1); rc=$?
[ $rc -ne 0 ] && grep -qi 'refused' <<<"$out"
ok $? "control: a daemon killed with SIGKILL does not answer: no pid guess (rc $rc: $out)"
cdaemon bob --control "$D/ab.sock"; pid_bob=$last_pid
for _ in $(seq 50); do "$QKDCTL" daemon show socket "$D/ab.sock" 2>/dev/null | grep -q "pid $pid_bob" && break; sleep 0.2; done
"$QKDCTL" daemon show socket "$D/ab.sock" | grep -q "pid $pid_bob"
ok $? "control: the restarted daemon takes the stale socket over and answers"
kill -TERM "$pid_alice" "$pid_bob"; wait "$pid_alice" "$pid_bob"
[ ! -e "$D/ab.sock" ]
ok $? "control: the socket is removed when the daemon stops"

qkdd_tap_end
