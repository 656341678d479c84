#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# demo.sh QKD_KO: the main job, inside the VM (tools/demo.sh boots it).
#
# Two sites, A and B, are two network namespaces joined by a veth pair. At
# each site a QKD link and a key stream are provisioned with qkdctl. A qkdd
# pair (Alice at site A, Bob at site B, talking over the veth, authenticated
# with a pre-shared key made here) runs BB84 over a simulated single-photon
# channel and pushes the same final keys into both kernel stores: the stores
# fill round by round, and SHA-256 digests of the keys taken at both ends
# agree. Then the pair runs again with an eavesdropper intercepting and
# resending every pulse: the QBER is about 25%, the round is aborted at both
# ends, and no key is added. Then keys are taken at both ends: with qkdctl
# (A the next key, B the same key by its ID), and as ETSI GS QKD 014
# applications do it: a qkd-kme serves each site over HTTPS (demo-only
# certificates of a throw-away CA made here), curl as SAE A takes a key
# with enc_keys from site A's KME and shows its key_ID and key, curl as
# SAE B takes the same key by that key_ID with dec_keys from site B's KME,
# the two keys are compared, and B's second dec_keys of the ID is refused.
# Last, the stream keys an ESP SA pair at both sites inside the kernel
# (`qkdctl sa add`, re-keyed every second), which a ping crosses
# encrypted. Ends with "DEMO OK".
set -eu
ko=${1:?usage: $0 QKD_KO}
Q=$PWD/build/qkdctl
D=$PWD/build/qkdd
K=$PWD/build/qkd-kme
SID=5f0e8c2a-7d41-4b9e-9c3a-2e6b1d4f8a90
KEY_SIZE=36	# rfc4106(gcm(aes)) with AES-256: 32-byte key + 4-byte salt
ROUNDS=2
# 2^19 sifted bits per round: ~1100 keys of 36 bytes each (a round's
# authentication costs under 100 bytes of key), in half the time of 2^20.
BLOCK_BITS=524288
# Eve's round is aborted after the estimate: an eighth of the size is
# plenty (the QBER is sampled on ~27000 bits: 25% +- 0.3%).
EVE_BLOCK_BITS=131072
CHANNEL=source=single-photon
A="ip netns exec siteA"
B="ip netns exec siteB"
T=$(mktemp -d /tmp/demo.XXXXXX)	# mode 0700: PSKs, logs, status files
chmod 0700 "$T"
daemons=""
kmes=""

say() { printf '\n\033[1m== %s\033[0m  [%d s]\n' "$*" "$SECONDS"; }
fail() { echo "DEMO FAILED: $*"; exit 1; }
cleanup() {
	local p
	for p in $daemons $kmes; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

# st FILE KEY: a value from a qkdd status file (empty if not there yet).
st() { sed -n "s/^$2=//p" "$1" 2>/dev/null || true; }
# sfield SITE KEY: a number from `qkdctl -j stream show` at SITE.
sfield() {
	ip netns exec "$1" "$Q" -j stream show $SID 2>/dev/null |
		grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$' || true
}
stores() {
	echo "  site A: $($A "$Q" stream show $SID | sed -n 2p | sed 's/^ *//')"
	echo "  site B: $($B "$Q" stream show $SID | sed -n 2p | sed 's/^ *//')"
}
# round_report STATUS: one line about the last round in Alice's status file.
round_report() {
	local f=$1 n res
	n=$(st "$f" last_round)
	res=$(st "$f" last_result)
	if [ "$res" = ok ]; then
		awk -F= '{ v[$1] = $2 } END {
			printf "round %s: ok, QBER %.2f%%, %d sifted bits, %d secret bits -> %d keys of %d bytes",
				v["last_round"], 100 * v["qber"], v["sifted_bits"],
				v["secret_bits"], v["keys"], ks
			if (v["keys"] > 0)
				printf " (indices %d..%d)\n", v["next_index"] - v["keys"], v["next_index"] - 1
			else
				printf " (all of it refilled the authentication key reserve)\n" }' ks=$KEY_SIZE "$f"
	else
		echo "round $n: $res: $(st "$f" last_reason)"
	fi
}

# run_pair NAME PORT ROUNDS BLOCK_BITS CHANNEL: Bob listens at site B, Alice connects
# from site A; each reads its own copy of a fresh PSK (qkdd wipes and
# unlinks it once read). Reports each round as Alice finishes it, with the
# two stores. Sets ra/rb to the daemons' exit codes.
run_pair() {
	local name=$1 port=$2 rounds=$3 bits=$4 channel=$5 seen=0 r alice bob
	(umask 077; head -c 65536 /dev/urandom >"$T/$name.a.psk"
	 cp "$T/$name.a.psk" "$T/$name.b.psk")
	ls -l "$T/$name.a.psk" "$T/$name.b.psk" | awk '{ print "  " $1, $5, $NF }'
	$B timeout 300 "$D" --role bob --listen 10.99.0.2:"$port" \
		--stream $SID --link to-A --psk "$T/$name.b.psk" \
		--rounds "$rounds" --block-bits "$bits" --channel "$channel" \
		--timeout 60 --retry-max 1 --simulated-channel-test-keys-only \
		--status "$T/$name.b.status" \
		>"$T/$name.b.log" 2>&1 &
	bob=$!
	$A timeout 300 "$D" --role alice --peer 10.99.0.2:"$port" \
		--stream $SID --link to-B --psk "$T/$name.a.psk" \
		--rounds "$rounds" --block-bits "$bits" --channel "$channel" \
		--timeout 60 --retry-max 1 --simulated-channel-test-keys-only \
		--status "$T/$name.a.status" \
		>"$T/$name.a.log" 2>&1 &
	alice=$!
	daemons="$bob $alice"
	echo "  qkdd --role bob   (site B, pid $bob) listening on 10.99.0.2:$port"
	echo "  qkdd --role alice (site A, pid $alice) --channel $channel"
	while :; do
		r=$(st "$T/$name.a.status" rounds)
		if [ -n "$r" ] && [ "$r" -gt "$seen" ]; then
			seen=$r
			round_report "$T/$name.a.status"
			stores
		fi
		kill -0 $alice 2>/dev/null || break
		sleep 1
	done
	ra=0; wait $alice || ra=$?
	rb=0; wait $bob || rb=$?
	daemons=""
	r=$(st "$T/$name.a.status" rounds)
	if [ -n "$r" ] && [ "$r" -gt "$seen" ]; then
		round_report "$T/$name.a.status"
		stores
	fi
	echo "  the daemons' logs:"
	sed 's/^/  A| /' "$T/$name.a.log"
	sed 's/^/  B| /' "$T/$name.b.log"
	echo "  exit codes: alice $ra, bob $rb"
}

# digest SITE FROM TO: SHA-256 of the keys of indices FROM..TO-1 taken at
# SITE by index (one netns entry per site: fast in the emulated guest).
digest() {
	ip netns exec "$1" sh -c 'i=$2; while [ $i -lt $3 ]; do
		"$1" key get "$0" index $i 2>/dev/null || echo "index $i: ERROR"
		i=$((i + 1)); done' $SID "$Q" "$2" "$3" | tee "$T/keys.$1.$2" |
		sha256sum | cut -d' ' -f1
}

say "load qkd.ko ($(uname -r))"
insmod "$ko"
modprobe -q -a xfrm_user esp4 2>/dev/null || true
ls -l /dev/qkd

say "two sites: network namespaces siteA and siteB, joined by veth"
for ns in siteA siteB; do ip netns del $ns 2>/dev/null || true; done
ip netns add siteA
ip netns add siteB
ip link add va netns siteA type veth peer name vb netns siteB
ip -n siteA addr add 10.99.0.1/24 dev va
ip -n siteB addr add 10.99.0.2/24 dev vb
ip -n siteA link set va up
ip -n siteB link set vb up
ip -n siteA link set lo up
ip -n siteB link set lo up
echo "  site A: va 10.99.0.1/24 <-> site B: vb 10.99.0.2/24"

say "provision a QKD link and a key stream at each site (empty stores)"
$A "$Q" link add to-B role initiator peer 10.99.0.2
$B "$Q" link add to-A role responder peer 10.99.0.1
# Room for every key of the rounds (each gives a few thousand).
$A "$Q" stream add $SID link to-B key-size $KEY_SIZE max-keys 16384 low-water 8
$B "$Q" stream add $SID link to-A key-size $KEY_SIZE max-keys 16384 low-water 8
stores

say "run qkdd at both sites: BB84, $ROUNDS rounds of $BLOCK_BITS sifted bits, keys pushed into both stores"
echo "  a fresh pre-shared key authenticates the classical channel; one copy per side:"
run_pair run 7000 $ROUNDS $BLOCK_BITS $CHANNEL
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "qkdd exited with alice $ra, bob $rb"
[ "$(st "$T/run.a.status" rounds_ok)" = $ROUNDS ] &&
	[ "$(st "$T/run.b.status" rounds_ok)" = $ROUNDS ] ||
	fail "not every round completed"
ka=$(st "$T/run.a.status" keys_total)
kb=$(st "$T/run.b.status" keys_total)
na=$(sfield siteA next_index)
nb=$(sfield siteB next_index)
echo "keys pushed: by Alice ${ka:-?}, by Bob ${kb:-?}; next index: site A ${na:-?}, site B ${nb:-?}"
[ -n "$na" ] && [ "$na" = "$nb" ] && [ "$na" = "$ka" ] && [ "$ka" = "$kb" ] ||
	fail "the two stores did not receive the same key indices"
[ "$na" -ge 4 ] || fail "too few keys ($na) for the rest of the demo"
[ "$(sfield siteA stored_keys)" = "$na" ] && [ "$(sfield siteB stored_keys)" = "$na" ] ||
	fail "the stores do not hold all $na keys"

# Indices 0..2 stay for the take below; compare the next 8 keys and
# the last 8 (the first and the last round's): each key taken is one
# qkdctl run, slow in the emulated guest.
lo_end=$((na < 11 ? na : 11))
hi_start=$((na - 8 > lo_end ? na - 8 : lo_end))
say "the same keys at both ends: SHA-256 of keys 3..$((lo_end - 1)) and $hi_start..$((na - 1)), taken at each site"
da=$( { digest siteA 3 $lo_end; digest siteA $hi_start "$na"; } | sha256sum | cut -d' ' -f1)
db=$( { digest siteB 3 $lo_end; digest siteB $hi_start "$na"; } | sha256sum | cut -d' ' -f1)
echo "  site A: $da"
echo "  site B: $db"
if cat "$T"/keys.siteA.* | grep -q ERROR || [ "$da" != "$db" ]; then
	fail "the keys differ between the sites"
fi
# two empty key lists agree too: that is no agreement
if [ "$da" = "$(printf '' | sha256sum | cut -d' ' -f1)" ]; then
	fail "no keys were taken at the sites"
fi
echo "identical: yes ($((lo_end - 3 + na - hi_start)) keys compared)"
rm -f "$T"/keys.*
stores

say "an eavesdropper intercepts and resends every pulse: the round must abort"
run_pair eve 7010 1 $EVE_BLOCK_BITS "$CHANNEL,eve=1"
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "qkdd exited with alice $ra, bob $rb"
for s in a b; do
	[ "$(st "$T/eve.$s.status" rounds_aborted)" = 1 ] &&
		[ "$(st "$T/eve.$s.status" rounds_ok)" = 0 ] &&
		[ "$(st "$T/eve.$s.status" keys_total)" = 0 ] ||
		fail "the eavesdropped round was not aborted at $s"
	st "$T/eve.$s.status" last_reason | grep -q QBER ||
		fail "abort reason at $s: $(st "$T/eve.$s.status" last_reason)"
done
qber=$(awk -F= '$1 == "qber" { printf "%.1f%%", 100 * $2 }' "$T/eve.a.status")
echo "aborted at both ends: sampled QBER $qber, above the 11% threshold (intercept-resend gives 25%)"
[ "$(sfield siteA next_index)" = "$na" ] && [ "$(sfield siteB next_index)" = "$na" ] &&
	[ "$(sfield siteA keys_added)" = "$na" ] && [ "$(sfield siteB keys_added)" = "$na" ] ||
	fail "a key was added by the aborted round"
echo "no key added: both stores still end at index $((na - 1)), $na keys added"

say "take keys at both ends: A takes the next key (ETSI 014 enc_keys), B the same key by its ID (dec_keys)"
read -r ia kida keya < <($A "$Q" key get $SID)
read -r ib kidb keyb < <($B "$Q" key get $SID key-id "$kida")
echo "A: index $ia key_ID $kida key ${keya:0:16}... (hidden)"
echo "B: index $ib key_ID $kidb key ${keyb:0:16}... (hidden)"
[ -n "$keya" ] && [ -n "$ia" ] || fail "no key taken at site A"
[ "$keya" = "$keyb" ] && [ "$ia" = "$ib" ] || fail "the two ends got different keys"
echo "same key at both ends: yes"
if $A "$Q" key get $SID index "$ia" >/dev/null 2>&1; then
	fail "index $ia was delivered twice"
fi
echo "a second request for index $ia at A: refused (each index is delivered once per end)"

say "ETSI GS QKD 014: a key manager (qkd-kme) at each site, curl as the applications SAE A and SAE B"
P=$T/pki
echo "  DEMO-ONLY certificates, made now in $P (tools/demo-pki.sh): a throw-away CA,"
echo "  whose key is deleted once it has signed, and KME_A's, KME_B's, SAE A's and SAE B's certificates"
tools/demo-pki.sh "$P" server:kme-a:10.99.0.1 server:kme-b:10.99.0.2 \
	client:sae-a client:sae-b || fail "cannot make the demo certificates"
# kmeconf KME_ID ADDR CERT SAE_LINE PEER_KME: a qkd-kme(8) configuration.
kmeconf() {
	printf '%s\n' "# demo-only KME $1" "kme-id $1" "address $2" "port 8443" \
		"cert $P/$3.crt" "key $P/$3.key" "ca $P/ca.crt" "$4" \
		"pair SAE_A SAE_B $SID $5"
}
kmeconf KME_A 10.99.0.1 kme-a "sae SAE_A cn=sae-a" KME_B >"$T/kme-a.conf"
kmeconf KME_B 10.99.0.2 kme-b "sae SAE_B cn=sae-b" KME_A >"$T/kme-b.conf"
$A "$K" -c "$T/kme-a.conf" 2>"$T/kme-a.log" &
kme_a=$!
$B "$K" -c "$T/kme-b.conf" 2>"$T/kme-b.log" &
kme_b=$!
kmes="$kme_a $kme_b"
listening() { ip netns exec "$1" ss -Hltn "sport = :8443" | grep -q .; }
for _ in $(seq 1 300); do
	kill -0 $kme_a 2>/dev/null && kill -0 $kme_b 2>/dev/null ||
		{ cat "$T"/kme-?.log; fail "a qkd-kme exited at start"; }
	listening siteA && listening siteB && break
	sleep 0.2
done
listening siteA && listening siteB || { cat "$T"/kme-?.log; fail "the KMEs do not listen"; }
echo "  qkd-kme KME_A (site A, pid $kme_a) on https://10.99.0.1:8443, KME_B (site B, pid $kme_b) on https://10.99.0.2:8443"
echo "  each: pair SAE_A (master, at A) -> SAE_B (slave, at B) on stream $SID"
# sae SITE CERT URL JSON: curl as an SAE; the HTTP status, the body in $T/reply.
sae() {
	ip netns exec "$1" curl -sS --max-time 120 --cacert "$P/ca.crt" \
		--cert "$P/$2.crt" --key "$P/$2.key" \
		-H 'Content-Type: application/json' -d "$4" \
		-o "$T/reply" -w '%{http_code}' "$3" || true
}
# kme_msg: the message of an Error reply (never a reply's keys).
kme_msg() { jq -r '.message // "(no message)"' "$T/reply" 2>/dev/null || true; }
URL_A=https://10.99.0.1:8443/api/v1/keys/SAE_B/enc_keys
URL_B=https://10.99.0.2:8443/api/v1/keys/SAE_A/dec_keys
echo "SAE A at site A: curl --cert sae-a.crt -d '{\"number\":1}' $URL_A"
code=$(sae siteA sae-a $URL_A '{"number":1}')
[ "$code" = 200 ] || fail "enc_keys at KME_A: HTTP $code $(kme_msg)"
kid=$(jq -r '.keys[0].key_ID' "$T/reply")
k14a=$(jq -r '.keys[0].key' "$T/reply")
echo "  HTTP $code: key_ID $kid"
echo "  key    $k14a  (demo output: an application never shows its key)"
DEC="{\"key_IDs\":[{\"key_ID\":\"$kid\"}]}"
echo "SAE B at site B: curl --cert sae-b.crt -d '$DEC' $URL_B"
code=$(sae siteB sae-b $URL_B "$DEC")
[ "$code" = 200 ] || fail "dec_keys at KME_B: HTTP $code $(kme_msg)"
kidb=$(jq -r '.keys[0].key_ID' "$T/reply")
k14b=$(jq -r '.keys[0].key' "$T/reply")
echo "  HTTP $code: key_ID $kidb"
echo "  key    $k14b  (demo output)"
case $k14a in '' | null) fail "no key from enc_keys at site A" ;; esac
[ "$k14a" = "$k14b" ] && [ "$kid" = "$kidb" ] ||
	fail "SAE B's key by key_ID $kid differs from SAE A's"
echo "the keys of SAE A and SAE B are identical: yes ($(($(printf %s "$k14a" | base64 -d | wc -c) * 8))-bit key, key_ID $kid)"
code=$(sae siteB sae-b $URL_B "$DEC")
[ "$code" = 400 ] && jq -r .message "$T/reply" | grep -q 'already delivered' ||
	fail "a second dec_keys of $kid was not refused (HTTP $code $(kme_msg))"
echo "SAE B asks for key_ID $kid again: refused, HTTP $code \"$(jq -r .message "$T/reply")\""
rm -f "$T/reply"
if grep -qF "$k14a" "$T/kme-a.log" "$T/kme-b.log"; then
	fail "a KME's log holds the key it delivered"
fi
k14a=''
k14b=''
rc=0
kill -TERM $kme_a $kme_b
wait $kme_a || rc=$?
wait $kme_b || rc=$?
kmes=""
[ $rc -eq 0 ] || { cat "$T"/kme-?.log; fail "a qkd-kme did not stop cleanly on SIGTERM"; }
echo "  the KMEs' logs (requests and counts, never a key):"
sed 's/^/  | /' "$T/kme-a.log" "$T/kme-b.log"

say "bind an ESP SA pair to the stream at both sites: the kernel keys and re-keys it, the keys never leave it"
# From index first = lo_end (past the keys the digests took): generation g
# of A->B is keyed by index first + 2g, of B->A by first + 1 + 2g, at both
# sites; the binding installs the matching XFRM policies too. A re-key
# every second: the ping below crosses several generations (each takes two
# keys, and the receivers hold two generations ahead).
first=$lo_end
[ $((hi_start - first)) -ge 40 ] || fail "too few keys ($na) for the SA binding"
for site in A B; do
	if [ $site = A ]; then ns="$A"; l=10.99.0.1; r=10.99.0.2; else ns="$B"; l=10.99.0.2; r=10.99.0.1; fi
	$ns "$Q" sa add $SID local $l remote $r reqid 1 first-index $first rekey-seconds 1 policy
done
$A ping -c 12 -i 0.5 -W 2 10.99.0.2
$A "$Q" sa show
$B "$Q" sa show
gen=$($A "$Q" -t sa show $SID | cut -f13)
pkts=$($B "$Q" -j sa show $SID | sed -n 's/.*"in_packets": *\([0-9]*\).*/\1/p')
echo "site A sent on generation $gen of its outbound SA; site B's current inbound SA counted $pkts packets"
if ! [ "${gen:-0}" -ge 2 ] 2>/dev/null; then
	$A ip -s xfrm state
	fail "the SAs were not re-keyed under traffic"
fi
if $A "$Q" key get $SID index $first >/dev/null 2>&1; then
	fail "index $first keys an SA but was still deliverable through /dev/qkd"
fi
echo "index $first keys the first SA: not deliverable through /dev/qkd (the stream is the binding's alone)"

say "what remains at each site"
$A "$Q" status
$B "$Q" stream show

say "clean up: deleting the namespaces zeroes their stores"
ip netns del siteA
ip netns del siteB
rmmod qkd
echo
echo "($SECONDS s in the VM)"
echo "DEMO OK"
