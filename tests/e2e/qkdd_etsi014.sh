#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd_etsi014.sh QKD_KO: qkdd --key-source etsi014, a commercial QKD
# device's vendor KME as the key source (issue 17), inside the VM.
#
# Two sites (lib-sites.sh: netns siteA and siteB, the module's store each,
# a stream S) run a qkdd pair on a PSK. The "vendor" is played by two more
# namespaces, vendorA and vendorB, whose stores hold the same keys in a
# stream V, each served by build/qkd-kme over HTTPS with client
# certificates (mTLS) of a test CA made here with openssl; vendorA is
# reached from siteA over a veth pair, vendorB from siteB. Alice takes keys
# with enc_keys from KME_A, Bob the same key_IDs with dec_keys from KME_B.
# Checked:
#  - a client certificate of another CA: KME_A refuses it, qkdd says so
#    (warning line), nothing is pushed
#  - rounds: both streams hold the same keys at the same indices, each one
#    of the vendor's keys
#  - KME_B answering 503 (its stream gone) and KME_A stopped: a warning
#    with the KME's status, nothing pushed meanwhile, the link resumes
#    when the KME is back
#  - kill (QKDD_FAULT: _exit, as SIGKILL) of Alice after enc_keys and
#    after Bob's acknowledgement, of Bob after dec_keys and after his push:
#    restarted from --state-dir, the link goes on
#  - at the end, index by index, no index holds different keys at the two
#    sites (qkdctl key get over every index, refusals included)
# Run as root in the VM from the repo top:
#   tests/vm/run-vm.sh -q -- tests/e2e/qkdd_etsi014.sh build/kmod-e2e/$KVER/qkd.ko
set -u
ko=${1:?usage: $0 QKD_KO}
# shellcheck source=lib-sites.sh
. "$(dirname "$0")/lib-sites.sh"
# shellcheck source=lib-pki.sh
. "$(dirname "$0")/lib-pki.sh"
KME=$PWD/build/qkd-kme
D=$PWD/build/qkdd

for b in "$KME" "$D" "$Q"; do
	[ -x "$b" ] || { echo "Bail out! $b is not built"; exit 1; }
done
echo "TAP version 13"
sites_init qkdd-etsi014
cleanup() {
	sites_cleanup
	ip netns del vendorA 2>/dev/null
	ip netns del vendorB 2>/dev/null
}
trap cleanup EXIT
if ! lsmod | grep -q '^qkd '; then
	insmod "$ko" || { echo "Bail out! insmod $ko"; exit 1; }
fi
AA=10.74.0.1
BB=10.74.0.2
KA=10.74.1.2	# KME_A, in vendorA (siteA is 10.74.1.1)
KB=10.74.2.2	# KME_B, in vendorB (siteB is 10.74.2.1)
PORT=8443
S=5a0e7c3d-1f2b-4c6d-9e8f-0a1b2c3d4e5f	# the sites' stream (qkdd's)
V=9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a	# the vendor's stream
KS=32
NV=12000	# vendor keys (the rounds take some 35 a second)
VA="ip netns exec vendorA"
VB="ip netns exec vendorB"

sites_up $AA $BB
sites_link A
sites_link B
vendor_net() {	# vendor_net SITE_NS VENDOR_NS IF_SITE IF_VENDOR SITE_ADDR KME_ADDR
	ip netns del "$2" 2>/dev/null
	ip netns add "$2"
	ip link add "$3" netns "$1" type veth peer name "$4" netns "$2"
	ip netns exec "$1" ip addr add "$5/24" dev "$3"
	ip netns exec "$2" ip addr add "$6/24" dev "$4"
	ip netns exec "$1" ip link set "$3" up
	ip netns exec "$2" ip link set "$4" up
	ip netns exec "$2" ip link set lo up
}
vendor_net siteA vendorA ka kv 10.74.1.1 $KA
vendor_net siteB vendorB kb kv 10.74.2.1 $KB
$VA "$Q" link add peer role initiator >/dev/null && $VA "$Q" link set peer state up &&
	$VB "$Q" link add peer role responder >/dev/null && $VB "$Q" link set peer state up
check "four namespaces: siteA-siteB, siteA-vendorA, siteB-vendorB" test $? -eq 0
head -c $((KS * NV)) /dev/urandom >"$work/vkeys"
od -An -tx1 -v -w$KS "$work/vkeys" | tr -d ' ' | LC_ALL=C sort >"$work/vkeys.hex"
vendor_stream() {	# vendor_stream NS: stream V with every vendor key
	ip netns exec "$1" "$Q" stream add $V link peer key-size $KS max-keys 16384 >/dev/null &&
	ip netns exec "$1" "$Q" key push $V index 0 file "$work/vkeys"
}
ok_st=0
vendor_stream vendorA || ok_st=1
vendor_stream vendorB || ok_st=1
for ns in siteA siteB; do
	ip netns exec $ns "$Q" stream add $S link peer key-size $KS max-keys 32768 >/dev/null || ok_st=1
done
check "streams: V with the same $NV vendor keys at vendorA and vendorB, S at both sites" \
	test $ok_st -eq 0

# ---- the certificates (lib-pki.sh) ----
C=$work/pki
PKI=$C
mkdir -p "$C"
ok_pki=0
pki_ca "$C/ca" "vendor test CA" || ok_pki=1
pki_ca "$C/evil" "another CA" || ok_pki=1
pki_cert "$C/ca" kme_a serverAuth /CN=kme-a "IP:$KA" || ok_pki=1
pki_cert "$C/ca" kme_b serverAuth /CN=kme-b "IP:$KB" || ok_pki=1
pki_cert "$C/ca" sae-a clientAuth /CN=sae-a || ok_pki=1
pki_cert "$C/ca" sae-b clientAuth /CN=sae-b || ok_pki=1
pki_cert "$C/evil" evil-a clientAuth /CN=sae-a || ok_pki=1
check "test PKI: a CA, the KMEs' and SAEs' certificates, a certificate of another CA" \
	test $ok_pki -eq 0

# ---- the vendor KMEs ----
kconf() {	# kconf KME_ID ADDR OTHER_KME SAE-LINE
	cat <<EOF
kme-id $1
address $2
port $PORT
cert $C/${1,,}.crt
key $C/${1,,}.key
ca $C/ca/ca.crt
max-keys-per-request 16
$4
pair SAE_A SAE_B $V $3
EOF
}
kconf KME_A $KA KME_B "sae SAE_A cn=sae-a" >"$work/kme_a.conf"
kconf KME_B $KB KME_A "sae SAE_B cn=sae-b" >"$work/kme_b.conf"
declare -A kpid dpid
kme_start() {	# kme_start A|B: sets kpid[A] / kpid[B]
	local ns=vendor$1 l=${1,,}
	ip netns exec "$ns" "$KME" -c "$work/kme_$l.conf" 2>>"$work/kme_$l.log" &
	pids+=($!)
	kpid[$1]=$!
}
kme_up() {	# kme_up A|B: until it answers (any HTTP status)
	local addr=$KA ns=siteA rc
	[ "$1" = B ] && addr=$KB ns=siteB
	for _ in $(seq 1 100); do
		ip netns exec $ns curl -s -o /dev/null --max-time 5 --cacert "$C/ca/ca.crt" \
			"https://$addr:$PORT/api/v1/keys/x/status" 2>/dev/null
		rc=$?
		[ $rc -ne 7 ] && [ $rc -ne 28 ] && return 0
		sleep 0.2
	done
	return 1
}
kme_start A
kme_start B
check "both vendor KMEs answer over HTTPS" eval "kme_up A && kme_up B" ||
	{ cat "$work"/kme_*.log | diag; echo "Bail out! no KME"; exit 1; }

# ---- qkdd ----
(umask 077; head -c 65536 /dev/urandom >"$work/a.psk"; cp "$work/a.psk" "$work/b.psk")
mkdir -m 700 "$work/sa" "$work/sb"
# qkdd_run ROLE LOG [ENV=VALUE...] [-- EXTRA ARGS]: one daemon in the
# background (its pid in ${dpid[ROLE]})
qkdd_run() {
	local role=$1 log=$2 ns=siteA addr=(--peer "$BB:7400") crt=sae-a sae=SAE_B sd=sa
	local url=https://$KA:$PORT
	shift 2
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	[ "$role" = bob ] && ns=siteB addr=(--listen "$BB:7400") crt=sae-b sae=SAE_A sd=sb \
		url=https://$KB:$PORT
	[ "$role" = alice ] && [ "${EVIL:-}" ] && crt=evil-a
	ip netns exec $ns env "${envs[@]}" timeout 600 "$D" --role "$role" "${addr[@]}" \
		--stream $S --link peer --psk "$work/${role:0:1}.psk" \
		--state-dir "$work/$sd" --timeout 20 --backoff-max 4 \
		--key-source etsi014 --kme "$url" \
		--kme-cert "$C/$crt.crt" --kme-key "$C/$crt.key" --kme-ca "$C/ca/ca.crt" \
		--kme-sae $sae --kme-keys 16 --status "$work/$role.status" "$@" \
		>>"$log" 2>&1 &
	pids+=($!)
	dpid[$role]=$!
}
next_index() {	# next_index NS
	ip netns exec "$1" "$Q" -j stream show $S 2>/dev/null |
		grep -o '"next_index": *[0-9]*' | grep -o '[0-9]*$'
}
# until_log FILE REGEX [TRIES]: wait (0.5 s a try) until FILE matches
until_log() {
	for _ in $(seq 1 "${3:-120}"); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}
# until_more N: until both sites' next_index are above N (and equal once)
until_more() {
	local a b
	for _ in $(seq 1 120); do
		a=$(next_index siteA); b=$(next_index siteB)
		[ -n "$a" ] && [ -n "$b" ] && [ "$a" -gt "$1" ] && [ "$b" -gt "$1" ] && return 0
		sleep 0.5
	done
	return 1
}
stop_pid() {	# stop_pid PID: SIGTERM, wait
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# ---- a client certificate of another CA ----
qkdd_run bob "$work/b.log"
EVIL=1 qkdd_run alice "$work/evil.log"
until_log "$work/evil.log" 'vendor KME refused the round \(Status: .*(alert|HTTP 40[13]|certificate)' 120
r=$?
stop_pid "${dpid[alice]}"
grep -E 'vendor KME refused' "$work/evil.log" | head -2 | diag
check "a client certificate of another CA: KME_A refuses it, qkdd says so and pushes nothing" \
	eval "[ $r -eq 0 ] && [ \"\$(next_index siteA)\" = 0 ] && [ \"\$(next_index siteB)\" = 0 ]"

# ---- rounds ----
qkdd_run alice "$work/a.log"
until_more 40
check "rounds: both sites' streams advanced (A $(next_index siteA), B $(next_index siteB))" test $? -eq 0 ||
	{ tail -20 "$work/a.log" "$work/b.log" | diag; }

# ---- KME_B answers 503: its stream is gone ----
$VB "$Q" stream del $V >/dev/null
until_log "$work/a.log" 'peer aborted the round: .*vendor KME at bob: dec_keys: HTTP 503' 60
r=$?
grep -E 'vendor KME refused' "$work/b.log" | tail -1 | diag
sleep 1
na=$(next_index siteA); nb=$(next_index siteB)
sleep 4
check "KME_B answers 503: warning with the status at Bob, the round aborted at Alice, nothing pushed meanwhile ($na/$nb)" \
	eval "[ $r -eq 0 ] && grep -qE 'vendor KME refused the round \(dec_keys: HTTP 503' '$work/b.log' && [ \"\$(next_index siteA)\" = $na ] && [ \"\$(next_index siteB)\" = $nb ]"
# ---- KME_B misbehaves: other keys under the same key_IDs ----
head -c $((KS * NV)) /dev/urandom >"$work/vkeys.other"
$VB "$Q" stream add $V link peer key-size $KS max-keys 16384 >/dev/null &&
	$VB "$Q" key push $V index 0 file "$work/vkeys.other"
until_log "$work/a.log" 'key confirmation failed' 60
r=$?
grep -E 'key confirmation failed' "$work/a.log" | tail -1 | diag
sleep 1
na=$(next_index siteA); nb=$(next_index siteB)
sleep 4
check "KME_B gives other keys for the key_IDs: the key confirmation fails, nothing pushed ($na/$nb)" \
	eval "[ $r -eq 0 ] && [ \"\$(next_index siteA)\" = $na ] && [ \"\$(next_index siteB)\" = $nb ]"
$VB "$Q" stream del $V >/dev/null
vendor_stream vendorB
until_more $((na + 20))
check "KME_B back with the vendor's keys: the link resumes ($(next_index siteA))" test $? -eq 0

# ---- KME_A stopped ----
stop_pid "${kpid[A]}"
until_log "$work/a.log" 'vendor KME refused the round \((Status|enc_keys): (Couldn|Could not|Failed|Timeout|Server returned nothing|SSL|Recv failure|Send failure)' 60
r=$?
grep -E 'vendor KME refused' "$work/a.log" | tail -1 | diag
sleep 1
na=$(next_index siteA); nb=$(next_index siteB)
sleep 4
check "KME_A stopped: a warning naming the failure, nothing pushed meanwhile ($na/$nb)" \
	eval "[ $r -eq 0 ] && [ \"\$(next_index siteA)\" = $na ] && [ \"\$(next_index siteB)\" = $nb ]"
kme_start A
kme_up A
until_more $((na + 20))
check "KME_A back: the link resumes ($(next_index siteA))" test $? -eq 0

# ---- crashes at each step, restarts from the state files ----
# crash ROLE FAULT: restart ROLE with QKDD_FAULT=FAULT, wait for it to
# exit there, restart it without; the link must go on
crash() {
	# (not "n": lib-sites.sh's TAP counter)
	local role=$1 fault=$2 log=$work/${1:0:1}.log n0 rc more
	stop_pid "${dpid[$role]}"
	n0=$(next_index siteA)
	qkdd_run "$role" "$log" QKDD_FAULT="$fault"
	wait "${dpid[$role]}"
	rc=$?
	qkdd_run "$role" "$log"
	until_more $((n0 + 20))
	more=$?
	check "$role killed at '$fault' (exit $rc) and restarted: the link goes on ($(next_index siteA)/$(next_index siteB))" \
		eval "[ $rc -eq 9 ] && [ $more -eq 0 ]" ||
		tail -15 "$log" | diag
}
crash alice alice-after-enc
crash bob bob-after-dec
crash bob bob-after-push
crash alice alice-after-ack

# ---- the end: every index, both sites ----
stop_pid "${dpid[alice]}"
stop_pid "${dpid[bob]}"
na=$(next_index siteA); nb=$(next_index siteB)
# keys NS N: every index in [0, N) taken, refusals included, sorted
keys() {
	ip netns exec "$1" "$Q" key get $S index 0 number "$2" \
		>"$work/k.out" 2>"$work/k.err"
	LC_ALL=C sort "$work/k.out" "$work/k.err"
}
keys siteA "$na" >"$work/a.keys"
keys siteB "$na" >"$work/b.keys"
ngood=$(grep -vc '^qkdctl' "$work/a.keys")
check "no index holds different keys at the two sites: next_index $na/$nb, $ngood keys, every index the same" \
	eval "[ '$na' = '$nb' ] && [ $ngood -gt 100 ] && cmp -s '$work/a.keys' '$work/b.keys'" ||
	{ diff "$work/a.keys" "$work/b.keys" | head -20 | diag; }
grep -v '^qkdctl' "$work/a.keys" | cut -f3 | LC_ALL=C sort >"$work/a.hex"
check "every key at the sites is one of the vendor's keys, none twice" \
	eval "[ -z \"\$(LC_ALL=C comm -23 '$work/a.hex' '$work/vkeys.hex')\" ] && [ -z \"\$(uniq -d '$work/a.hex')\" ]"
grep -h 'fault injection\|completing block\|removing them\|skipping indices\|discarding block\|committed by the peer' \
	"$work/a.log" "$work/b.log" | diag
echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
