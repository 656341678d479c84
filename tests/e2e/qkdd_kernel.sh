#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd_kernel.sh QKD_KO: qkdd feeding the kernel store, inside the VM
# (tests/vm/run-vm.sh -- tests/e2e/qkdd_kernel.sh build/kmod/KVER/qkd.ko).
#
# Two sites are two network namespaces joined by a veth pair; each has a
# link and a stream made with qkdctl. A qkdd pair runs two rounds with a
# PSK made here; then the streams' next_index agree at both sites and every
# key taken at site A by index equals the key taken at site B. Then Bob is
# made to exit between his push and his acknowledgement (QKDD_FAULT) and
# restarted: the orphan keys are removed from his store and both sites
# agree again, index by index. Before that, a round on the default channel
# (WCP with decoys): the same keys at both sites, and its secret length
# recomputed from the published counts. Last, full stores pause the link
# and consumers taking keys at both ends resume it. Prints TAP
# and "N passed, N failed".
set -u
ko=${1:?usage: $0 QKD_KO}
Q=$PWD/build/qkdctl
D=$PWD/build/qkdd
UUID=6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b
A="ip netns exec siteA"
B="ip netns exec siteB"
T=$(mktemp -d /tmp/qkdd_kernel.XXXXXX)
pass=0 fail=0 n=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; pass=$((pass + 1))
	else echo "not ok $n - $2"; fail=$((fail + 1)); fi
}

insmod "$ko"; ok $? "insmod qkd.ko"
ip netns add siteA && ip netns add siteB &&
ip link add va netns siteA type veth peer name vb netns siteB &&
$A ip addr add 10.99.0.1/24 dev va && $B ip addr add 10.99.0.2/24 dev vb &&
$A ip link set va up && $B ip link set vb up && $A ip link set lo up && $B ip link set lo up
ok $? "two sites joined by veth"
$A "$Q" link add ab role initiator peer 10.99.0.2 >/dev/null &&
$A "$Q" stream add $UUID link ab key-size 32 max-keys 16384 >/dev/null &&
$B "$Q" link add ab role responder peer 10.99.0.1 >/dev/null &&
$B "$Q" stream add $UUID link ab key-size 32 max-keys 16384 >/dev/null
ok $? "link and stream at both sites"

(umask 077; head -c 65536 /dev/urandom > "$T/a.psk"; cp "$T/a.psk" "$T/b.psk")
# Blocks of 2^18 bits: each round's secret key (~20 KB, some 650 keys) is
# far more than the authentication reserve's refill, so every round
# delivers keys.
$B timeout 500 "$D" --role bob --listen 10.99.0.2:7100 --stream $UUID --link ab \
	--psk "$T/b.psk" --rounds 2 --block-bits 262144 --timeout 300 \
	--channel source=single-photon --simulated-channel-test-keys-only \
	--status "$T/b.status" > "$T/b.log" 2>&1 &
pb=$!
sleep 1
$A timeout 500 "$D" --role alice --peer 10.99.0.2:7100 --stream $UUID --link ab \
	--psk "$T/a.psk" --rounds 2 --block-bits 262144 --timeout 300 \
	--channel source=single-photon --simulated-channel-test-keys-only \
	--status "$T/a.status" > "$T/a.log" 2>&1
ra=$?
wait $pb; rb=$?
cat "$T/a.log" "$T/b.log" | sed 's/^/# /'
ok $(( ra || rb )) "qkdd pair ran 2 rounds into the kernel (alice $ra, bob $rb)"
na=$($A "$Q" -j stream show $UUID 2>/dev/null | grep -o '"next[-_]index": *[0-9]*' | grep -o '[0-9]*$')
nb=$($B "$Q" -j stream show $UUID 2>/dev/null | grep -o '"next[-_]index": *[0-9]*' | grep -o '[0-9]*$')
echo "# next_index: site A ${na:-?}, site B ${nb:-?}"
[ -n "$na" ] && [ "$na" = "$nb" ] && [ "$na" -gt 0 ]
ok $? "both stores advanced to the same next_index ($na)"
# keys SITE FROM TO: every index in [FROM, TO) taken at SITE in one qkdctl
# run: "index key_ID key" lines, and "qkdctl: key get: index N: ..." for an
# index refused, sorted. The keys (stdout, buffered) and the refusals
# (stderr) go to files of their own: through one pipe a refusal could land
# inside a key line where the stdout buffer was cut.
keys() {
	[ "$3" -gt "$2" ] 2>/dev/null || return 0
	ip netns exec "$1" "$Q" key get $UUID index "$2" number $(($3 - $2)) \
		>"$T/keys.out" 2>"$T/keys.err"
	LC_ALL=C sort "$T/keys.out" "$T/keys.err"
	rm -f "$T/keys.out" "$T/keys.err"
}
keys siteA 0 "${na:-0}" > "$T/a.keys"
keys siteB 0 "${na:-0}" > "$T/b.keys"
[ -s "$T/a.keys" ] && ! grep -q '^qkdctl' "$T/a.keys" && cmp -s "$T/a.keys" "$T/b.keys"
ok $? "every key taken by index is the same at both sites ($(wc -l < "$T/a.keys") keys)"

# ---- the default channel into the kernel --------------------------------------
# No --channel, no --block-bits: weak coherent pulses with two decoys, the
# default block (one round, some 8.6 * 10^7 pulses; minutes under TCG).
# Same keys at both sites by index, and the secret length recomputed from
# the counts the daemons publish (tests/e2e/keylen_check.py, protocol.md's
# formula written out again) is theirs.
(umask 077; head -c 65536 /dev/urandom > "$T/da.psk"; cp "$T/da.psk" "$T/db.psk")
$B timeout 1000 "$D" --role bob --listen 10.99.0.2:7300 --stream $UUID --link ab \
	--psk "$T/db.psk" --rounds 1 --timeout 600 --simulated-channel-test-keys-only \
	--status "$T/db.status" > "$T/db.log" 2>&1 &
pb=$!
sleep 1
t0=$SECONDS
$A timeout 1000 "$D" --role alice --peer 10.99.0.2:7300 --stream $UUID --link ab \
	--psk "$T/da.psk" --rounds 1 --timeout 600 --simulated-channel-test-keys-only \
	--status "$T/da.status" > "$T/da.log" 2>&1
ra=$?
wait $pb; rb=$?
grep -h 'round 1: \|session' "$T/da.log" "$T/db.log" | sed 's/^/# /'
grep -q '^source=wcp$' "$T/da.status" && grep -q '^source=wcp$' "$T/db.status"
ok $(( ra || rb || $? )) "default channel (WCP with decoys): the qkdd pair ran a round into the kernel (alice $ra, bob $rb, $((SECONDS - t0)) s)"
nd=$($A "$Q" -j stream show $UUID 2>/dev/null | grep -o '"next_index": *[0-9]*' | grep -o '[0-9]*$')
nbd=$($B "$Q" -j stream show $UUID 2>/dev/null | grep -o '"next_index": *[0-9]*' | grep -o '[0-9]*$')
keys siteA "${na:-0}" "${nd:-0}" > "$T/da.keys"
keys siteB "${na:-0}" "${nd:-0}" > "$T/db.keys"
[ -n "$nd" ] && [ "$nd" = "$nbd" ] && [ "$nd" -gt "${na:-0}" ] && [ -s "$T/da.keys" ] &&
	! grep -q '^qkdctl' "$T/da.keys" && cmp -s "$T/da.keys" "$T/db.keys"
ok $? "default channel: both stores advanced to $nd, every key of the round the same at both sites ($(wc -l < "$T/da.keys") keys)"
python3 tests/e2e/keylen_check.py "$T/da.log" "$T/da.status" --expect ok > "$T/dcheck" 2>&1 &&
	python3 tests/e2e/keylen_check.py "$T/db.log" "$T/db.status" --expect ok >> "$T/dcheck" 2>&1
r=$?
sed 's/^#*/#/' "$T/dcheck"
ok $r "default channel: the secret length recomputed from the published counts is the daemons' at both ends"
[ -n "$nd" ] && na=$nd

# ---- crash of bob after his push, before his acknowledgement ---------------
# X.509, each end with its --state-dir (as deployed: the authentication
# context of the one bootstrap is kept across reconnections and restarts,
# so a restarted end without it would be refused); bob exits at the worst
# moment, restarts, and must remove the orphan block from the kernel
# through /dev/qkd; alice skips its indices.
P=$T/pki; mkdir -p "$P"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$P/ca.key" -out "$P/ca.pem" -days 2 -subj /CN=qkd-test-ca 2>/dev/null
for r in alice bob; do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$P/$r.key" -out "$P/$r.csr" -subj "/CN=$r" 2>/dev/null
	openssl x509 -req -in "$P/$r.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" \
		-CAcreateserial -out "$P/$r.pem" -days 2 2>/dev/null
done
mkdir -p "$T/state-alice" "$T/state-bob" && chmod 700 "$T/state-alice" "$T/state-bob"
# Each block goes to the kernel in KEY_ADD messages of 128 keys, as blocks
# over 32 KiB do: the orphan block bob leaves below spans several.
x509() {	# NETNS ROLE ROUNDS
	local addr=--listen other=alice
	[ "$2" = alice ] && addr=--peer && other=bob
	ip netns exec "$1" env QKDD_PUSH_BATCH_KEYS=128 timeout 500 "$D" \
		--role "$2" $addr 10.99.0.2:7200 \
		--stream $UUID --link ab --cert "$P/$2.pem" --key "$P/$2.key" \
		--ca "$P/ca.pem" --peer-name "$other" --rounds "$3" \
		--state-dir "$T/state-$2" \
		--block-bits 262144 --timeout 300 \
		--retry-max 1 --channel source=single-photon \
		--simulated-channel-test-keys-only >> "$T/x.$2.log" 2>&1 &
	last=$!
}
QKDD_FAULT=bob-after-push x509 siteB bob 8; b1=$last
sleep 1
x509 siteA alice 0; pa=$last
wait $b1; rc1=$?
x509 siteB bob 3; b2=$last
wait $b2; rb=$?
kill -TERM $pa; wait $pa; ra=$?
sed 's/^/# /' "$T/x.bob.log" | grep -v ': ok: '
ok $(( rc1 != 9 || rb || ra )) "crash of bob after his push, restart: both daemons exit as expected ($rc1/$rb/$ra)"
orph=$(grep -o 'removed [0-9]* orphan keys' "$T/x.bob.log" | head -n 1 | grep -o '[0-9]*')
[ "${orph:-0}" -gt 128 ]
ok $? "bob removed the orphan keys from the kernel store by index (${orph:-no} keys, pushed in messages of 128)"
na2=$($A "$Q" -j stream show $UUID 2>/dev/null | grep -o '"next_index": *[0-9]*' | grep -o '[0-9]*$')
nb2=$($B "$Q" -j stream show $UUID 2>/dev/null | grep -o '"next_index": *[0-9]*' | grep -o '[0-9]*$')
echo "# next_index after recovery: site A ${na2:-?}, site B ${nb2:-?}"
keys siteA "$na" "${na2:-0}" > "$T/a2.keys"
keys siteB "$na" "${na2:-0}" > "$T/b2.keys"
[ -n "$na2" ] && [ "$na2" = "$nb2" ] && [ -s "$T/a2.keys" ] && cmp -s "$T/a2.keys" "$T/b2.keys"
ok $? "after recovery: same next_index, every index gives the same key or the same refusal at both sites ($(grep -c '^[0-9]' "$T/a2.keys") keys, $(grep -c ': index [0-9]*:' "$T/a2.keys") skipped)"

# ---- full stores pause the link; consumers resume it -------------------------
# Both streams emptied, then a limit of 2400 keys and a low-water mark of
# 600; a round makes some 650 keys. The pair runs with no round limit and a
# --timeout of 10 s. Once a round would not fit at either end, no round may
# run (and none be discarded): the link idles, past its --timeout, at a
# CPU cost of next to nothing. A consumer at site A alone taking keys below
# the mark does not resume it (B is still full); the same keys taken at B
# do, and the stores fill up again -- the same keys at both ends by index.
stored() { ip netns exec "$1" "$Q" -j stream show $UUID 2>/dev/null |
	grep -o '"stored_keys": *[0-9]*' | grep -o '[0-9]*$'; }
nidx() { ip netns exec "$1" "$Q" -j stream show $UUID 2>/dev/null |
	grep -o '"next_index": *[0-9]*' | grep -o '[0-9]*$'; }
status_of() { grep "^$2=" "$T/p.$1.status" 2>/dev/null | cut -d= -f2; }
# cpu_ticks PID: user + system clock ticks of the qkdd under timeout PID
cpu_ticks() { local c; c=$(pgrep -P "$1" | head -n 1)
	awk '{ print $14 + $15 }' "/proc/${c:-$1}/stat" 2>/dev/null || echo 0; }
# take SITE N: the N lowest stored keys, in requests of at most 256
take() {
	local left=$2 k
	while [ "$left" -gt 0 ]; do
		k=$((left > 256 ? 256 : left))
		ip netns exec "$1" "$Q" key get $UUID number "$k" || return 1
		left=$((left - k))
	done
}
for s in siteA siteB; do
	k=$(stored $s)
	take $s "${k:-0}" >/dev/null
	ip netns exec $s "$Q" stream set $UUID max-keys 2400 low-water 600 >/dev/null
done
[ "$(stored siteA)" = 0 ] && [ "$(stored siteB)" = 0 ]
ok $? "pause: both streams emptied, limit 2400 keys, low-water mark 600"
pausing() {	# NETNS ROLE
	local addr=--listen other=alice
	[ "$2" = alice ] && addr=--peer && other=bob
	ip netns exec "$1" timeout 600 "$D" \
		--role "$2" $addr 10.99.0.2:7400 \
		--stream $UUID --link ab --cert "$P/$2.pem" --key "$P/$2.key" \
		--ca "$P/ca.pem" --peer-name "$other" --rounds 0 \
		--state-dir "$T/state-$2" --status "$T/p.$2.status" \
		--block-bits 262144 --timeout 10 --channel source=single-photon \
		--simulated-channel-test-keys-only > "$T/p.$2.log" 2>&1 &
	last=$!
}
# wait_paused SECONDS: until both daemons say paused=1
wait_paused() {
	for _ in $(seq "$1"); do
		[ "$(status_of alice paused)" = 1 ] && [ "$(status_of bob paused)" = 1 ] && return 0
		sleep 1
	done
	return 1
}
pausing siteB bob; pb=$last
sleep 1
pausing siteA alice; pa=$last
wait_paused 240
ok $? "pause: the stores filled up and both daemons paused (status paused=1; A stores $(stored siteA), B $(stored siteB), $(status_of alice rounds_ok) rounds)"
n1a=$(nidx siteA); n1b=$(nidx siteB)
c1=$(( $(cpu_ticks $pa) + $(cpu_ticks $pb) ))
sleep 15
c2=$(( $(cpu_ticks $pa) + $(cpu_ticks $pb) ))
kill -0 $pa && kill -0 $pb && [ "$(nidx siteA)" = "$n1a" ] && [ "$(nidx siteB)" = "$n1b" ] &&
	! grep -q 'no message from the peer\|discarded' "$T/p.alice.log" "$T/p.bob.log"
ok $? "pause: 15 s idle (past --timeout 10): no round, no round discarded, no time-out, both still running (next_index $n1a/$n1b)"
ticks=$(getconf CLK_TCK)
[ $((c2 - c1)) -le "$ticks" ]
ok $? "pause: both daemons together used $((c2 - c1)) clock ticks of CPU in those 15 s (at most $ticks: they wait, they do not poll)"
full=$(stored siteA)
take=$((full - 300))
take siteA "$take" > "$T/p.a.taken"
sleep 6
[ "$(stored siteA)" = 300 ] && [ "$(stored siteB)" = "$full" ] && [ "$(nidx siteA)" = "$n1a" ] && [ "$(nidx siteB)" = "$n1b" ] && [ "$(status_of alice paused)" = 1 ] &&
	! grep -q 'discarded' "$T/p.alice.log" "$T/p.bob.log"
ok $? "pause: a consumer at A alone ($take keys, below the low-water mark) does not resume the link while B is full"
take siteB "$take" > "$T/p.b.taken"
[ "$(wc -l < "$T/p.a.taken")" = "$take" ] && cmp -s "$T/p.a.taken" "$T/p.b.taken"
ok $? "pause: the consumers at A and B took the same $take keys"
for _ in $(seq 240); do
	[ "$(nidx siteA)" != "$n1a" ] && [ "$(status_of alice paused)" = 1 ] &&
		[ "$(status_of bob paused)" = 1 ] && break
	sleep 1
done
n2a=$(nidx siteA); n2b=$(nidx siteB)
grep -h 'rounds resume\|room again\|key store full here' "$T/p.alice.log" "$T/p.bob.log" | head -n 6 | sed 's/^/# /'
[ "$n2a" = "$n2b" ] && [ "$n2a" -gt "$n1a" ] && grep -q 'rounds resume' "$T/p.alice.log" &&
	[ "$(status_of alice paused)" = 1 ] && ! grep -q 'discarded' "$T/p.alice.log" "$T/p.bob.log"
ok $? "pause: keys taken at both ends resumed the link until the stores were full again (next_index $n1a -> $n2a/$n2b), no round discarded"
ka=$(stored siteA)
keys siteA "$n1a" "$n2a" > "$T/p.a.keys"
keys siteB "$n1a" "$n2a" > "$T/p.b.keys"
[ -s "$T/p.a.keys" ] && ! grep -q '^qkdctl' "$T/p.a.keys" && cmp -s "$T/p.a.keys" "$T/p.b.keys"
ok $? "pause: every key made after the resume is the same at both ends ($(wc -l < "$T/p.a.keys") keys; A stored $ka)"
t0=$SECONDS
kill -TERM $pa; wait $pa; ra=$?
kill -TERM $pb; wait $pb
[ "$ra" = 0 ] && [ $((SECONDS - t0)) -le 5 ]
ok $? "pause: SIGTERM while paused: alice exits 0 at once ($ra, $((SECONDS - t0)) s)"
grep -v ': ok: \|estimate:\|cpu:\|cascade:' "$T/p.alice.log" | tail -n 8 | sed 's/^/# alice: /'
$A "$Q" link show 2>/dev/null | sed 's/^/# /'
echo "1..$n"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
