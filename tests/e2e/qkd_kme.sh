#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkd_kme.sh QKD_KO: qkd-kme, the ETSI GS QKD 014 key manager, at two sites.
#
# Two network namespaces (lib-sites.sh) with the module's store each hold
# the same keys of two streams: S (pair SAE_A -> SAE_B) and S2 (pair SAE_C
# -> SAE_D). A qkd-kme serves each site (KME_A in siteA, KME_B in siteB)
# over HTTPS with client certificates of a test CA made here with openssl:
# SAE_A and SAE_C are KME_A's (CN), SAE_B (a DNS subjectAltName) and SAE_D
# are KME_B's. curl is the SAE. Checked: A's enc_keys and B's dec_keys give
# the same keys (the pushed ones), each key once per end, every error path
# of the spec with its status code and nothing taken, and the attacker's
# certificates (another CA, expired, revoked, none, a valid SAE that is not
# the pair's) refused, and no delivered key left in either KME's memory
# (memscan.py, with a parked key as the positive control). Run as root in
# the VM from the repo top:
#   tests/vm/run-vm.sh -q -- tests/e2e/qkd_kme.sh build/kmod-e2e/$KVER/qkd.ko
set -u
ko=${1:?usage: $0 QKD_KO}
# shellcheck source=lib-sites.sh
. "$(dirname "$0")/lib-sites.sh"
# shellcheck source=lib-pki.sh
. "$(dirname "$0")/lib-pki.sh"
KME=$PWD/build/qkd-kme

command -v jq >/dev/null || { echo "Bail out! jq is needed"; exit 1; }
command -v curl >/dev/null || { echo "Bail out! curl is needed"; exit 1; }
[ -x "$KME" ] || { echo "Bail out! $KME is not built"; exit 1; }
echo "TAP version 13"
sites_init qkd-kme
if ! lsmod | grep -q '^qkd '; then
	insmod "$ko" || { echo "Bail out! insmod $ko"; exit 1; }
fi
AA=10.71.0.1
BB=10.71.0.2
PORT=8443
sites_up $AA $BB
sites_link A
sites_link B
S=3b1d0c4e-5a6f-4b70-8c91-a2b3c4d5e6f7
S2=7c2e4a10-98b7-4c65-a4d3-e2f1a0b9c8d7
KS=32
NKEYS=40
head -c $((KS * NKEYS)) /dev/urandom >"$work/keys"
head -c $((KS * 3)) /dev/urandom >"$work/keys2"
for ns in "$A" "$B"; do
	$ns "$Q" stream add $S link peer key-size $KS >/dev/null
	$ns "$Q" stream add $S2 link peer key-size $KS >/dev/null
	$ns "$Q" key push $S index 0 file "$work/keys"
	$ns "$Q" key push $S2 index 0 file "$work/keys2"
done

# ---- the certificates (lib-pki.sh) ----
C=$work/pki
PKI=$C
mkdir -p "$C"
ok_pki=0
pki_ca "$C/ca" "qkd test CA" || ok_pki=1
pki_ca "$C/evil" "another CA" || ok_pki=1
pki_cert "$C/ca" kme-a serverAuth /CN=kme-a IP:$AA || ok_pki=1
pki_cert "$C/ca" kme-b serverAuth /CN=kme-b IP:$BB || ok_pki=1
pki_cert "$C/ca" sae-a clientAuth /CN=sae-a "" || ok_pki=1
pki_cert "$C/ca" sae-b clientAuth /CN=somebody DNS:sae-b.example || ok_pki=1
pki_cert "$C/ca" sae-c clientAuth /CN=sae-c "" || ok_pki=1
pki_cert "$C/ca" sae-d clientAuth /CN=sae-d "" || ok_pki=1
pki_cert "$C/evil" evil-a clientAuth /CN=sae-a "" || ok_pki=1
pki_cert "$C/ca" expired-a clientAuth /CN=sae-a "" -startdate 20200101000000Z \
	-enddate 20200201000000Z || ok_pki=1
pki_cert "$C/ca" revoked-b clientAuth /CN=revoked DNS:sae-b.example || ok_pki=1
openssl ca -batch -config "$C/ca/ca.cnf" -revoke "$C/revoked-b.crt" >/dev/null 2>&1 || ok_pki=1
openssl ca -batch -config "$C/ca/ca.cnf" -gencrl -out "$C/ca.crl" >/dev/null 2>&1 || ok_pki=1
check "test PKI: a CA, KME and SAE certificates, another CA, an expired and a revoked certificate, a CRL" \
	test $ok_pki -eq 0

# ---- the two KMEs ----
conf() {	# conf SITE_ID ADDR OTHER_KME SAE-LINES
	cat <<EOF
# qkd-kme test configuration of $1
kme-id $1
address $2
port $PORT
cert $C/${1,,}.crt
key $C/${1,,}.key
ca $C/ca/ca.crt
crl $C/ca.crl
max-keys-per-request 8
$4
pair SAE_A SAE_B $S $3
pair SAE_C SAE_D $S2 $3
EOF
}
mv "$C/kme-a.crt" "$C/kme_a.crt"; mv "$C/kme-a.key" "$C/kme_a.key"
mv "$C/kme-b.crt" "$C/kme_b.crt"; mv "$C/kme-b.key" "$C/kme_b.key"
conf KME_A $AA KME_B "sae SAE_A cn=sae-a
sae SAE_C cn=sae-c" >"$work/a.conf"
conf KME_B $BB KME_A "sae SAE_B dns=SAE-B.example
sae SAE_D cn=sae-d" >"$work/b.conf"
check "qkd-kme --check accepts both configurations" \
	eval "$A $KME --check -c $work/a.conf >/dev/null && $B $KME --check -c $work/b.conf >/dev/null"
$A "$KME" -c "$work/a.conf" 2>"$work/a.log" &
pids+=($!)
$B "$KME" -c "$work/b.conf" 2>"$work/b.log" &
pids+=($!)

# req NS ADDR CERT METHOD PATH [JSON]: the HTTP status on stdout, the body
# in $work/body (000: no HTTP answer).
req() {
	local ns=$1 addr=$2 crt=$3 method=$4 path=$5 data=${6:-}
	local auth=()
	[ "$crt" = none ] || auth=(--cert "$C/$crt.crt" --key "$C/$crt.key")
	ip netns exec "$ns" curl -s -o "$work/body" -w '%{http_code}' --max-time 20 \
		--cacert "$C/ca/ca.crt" "${auth[@]}" -X "$method" \
		${data:+-H 'Content-Type: application/json' --data "$data"} \
		"https://$addr:$PORT/api/v1/keys/$path"
}
rqA() { req siteA $AA "$@"; }
rqB() { req siteB $BB "$@"; }
body() { cat "$work/body"; }
stored() {	# stored NS STREAM: keys stored at that site
	ip netns exec "$1" "$Q" -j key status "$2" | jq -r .stored_key_count
}
# expect WANT_CODE TEXT CODE [BODY_REGEX]
expect() {
	local want=$1 what=$2 got=$3 re=${4:-}
	if [ "$got" = "$want" ] && { [ -z "$re" ] || grep -qE "$re" "$work/body"; }; then
		ok "$what ($got: $(jq -r '.message // empty' "$work/body" 2>/dev/null | head -c 100))"
	else
		not_ok "$what: wanted $want${re:+ and /$re/}, got $got"
		body | head -c 400 | diag
	fi
}
# Batches (a curl process and a TLS handshake are seconds under TCG):
#   bq WANT_CODE TEXT BODY_REGEX SITE CERT METHOD PATH [JSON]
# queues a request to KME_SITE and its expectation; brun sends the queue in
# one curl process from siteA (KME_B is reached over the veth), in order,
# each request a transfer of its own, then checks each answer.
B_ARGS=()
B_WANT=()
B_WHAT=()
B_RE=()
bq() {
	local want=$1 what=$2 re=$3 addr=$AA crt=$5 method=$6 path=$7 data=${8:-}
	local i=${#B_WANT[@]}
	[ "$4" = B ] && addr=$BB
	[ "$i" -eq 0 ] || B_ARGS+=(--next)
	rm -f "$work/b.$i"
	B_ARGS+=(-s -o "$work/b.$i" -w '%{http_code}\n' --max-time 20 --cacert "$C/ca/ca.crt")
	[ "$crt" = none ] || B_ARGS+=(--cert "$C/$crt.crt" --key "$C/$crt.key")
	B_ARGS+=(-X "$method")
	[ -z "$data" ] || B_ARGS+=(-H 'Content-Type: application/json' --data "$data")
	B_ARGS+=("https://$addr:$PORT/api/v1/keys/$path")
	B_WANT+=("$want")
	B_WHAT+=("$what")
	B_RE+=("$re")
}
brun() {
	local i codes
	mapfile -t codes < <(ip netns exec siteA curl "${B_ARGS[@]}")
	for i in "${!B_WANT[@]}"; do
		cp "$work/b.$i" "$work/body" 2>/dev/null || : >"$work/body"
		expect "${B_WANT[$i]}" "${B_WHAT[$i]}" "${codes[$i]:-none}" "${B_RE[$i]}"
	done
	B_ARGS=()
	B_WANT=()
	B_WHAT=()
	B_RE=()
}
# kid N: the key_ID of stream S's index N (< 256: only its last byte moves)
kid() { printf '%s%02x' "${S:0:34}" $((0x${S:34:2} ^ $1)); }

up=0
for _ in $(seq 1 100); do
	a=$(rqA sae-a GET SAE_B/status)
	b=$(rqB sae-b POST SAE_A/dec_keys '{"key_IDs":[]}')
	[ "$a" = 200 ] && [ "$b" = 400 ] && { up=1; break; }
	sleep 0.2
done
check "both KMEs answer over HTTPS (status $a, $b)" test $up = 1 ||
	{ cat "$work/a.log" "$work/b.log" | diag; echo "Bail out! no KME"; exit 1; }

# ---- status ----
rqA sae-a GET SAE_B/status >/dev/null
status_ok() {
	jq -e --arg n $NKEYS '.source_KME_ID == "KME_A" and .target_KME_ID == "KME_B" and
		.master_SAE_ID == "SAE_A" and .slave_SAE_ID == "SAE_B" and .key_size == 256 and
		.stored_key_count == ($n | tonumber) and .max_key_count == 4096 and
		.max_key_per_request == 8 and .max_key_size == 256 and .min_key_size == 256 and
		.max_SAE_ID_count == 0' "$work/body" >/dev/null
}
check "status: the spec's fields from the store (key_size 256 bits, $NKEYS stored, max_key_per_request 8, no multicast)" \
	status_ok || body | diag

# ---- the attacker's and the wrong SAE's requests (before any key is taken) ----
n0a=$(stored siteA $S)
n0b=$(stored siteB $S)
n0a2=$(stored siteA $S2)
bq 401 "no client certificate: refused" '' A none POST SAE_B/enc_keys '{"number":1}'
bq 401 "a certificate of another CA with SAE_A's CN: refused" 'configured CA|not trusted' A evil-a POST SAE_B/enc_keys '{"number":1}'
bq 401 "SAE_A's CN in an expired certificate: refused" expired A expired-a POST SAE_B/enc_keys '{"number":1}'
bq 401 "SAE_B's DNS name in a revoked certificate: refused" revoked B revoked-b GET "SAE_A/dec_keys?key_ID=$S"
bq 401 "SAE_C (valid, pair C->D) asks enc_keys for slave SAE_B: refused" 'not the master' A sae-c POST SAE_B/enc_keys '{"number":1}'
bq 401 "SAE_C asks status of slave SAE_B: refused" '' A sae-c GET SAE_B/status
bq 401 "slave SAE_B asks its KME for enc_keys for SAE_A: refused" '' B sae-b POST SAE_A/enc_keys '{"number":1}'
bq 401 "master SAE_A asks dec_keys at its KME: refused" '' A sae-a POST SAE_B/dec_keys "{\"key_IDs\":[{\"key_ID\":\"$S\"}]}"
bq 401 "SAE_D asks dec_keys of master SAE_A (not its pair): refused" 'not the slave' B sae-d GET "SAE_A/dec_keys?key_ID=$S"
bq 401 "SAE_A's certificate at the other site's KME: refused (no such SAE there)" '' B sae-a GET SAE_B/status
bq 404 "an unknown path" '' A sae-a GET SAE_B/keys
bq 405 "DELETE on enc_keys" '' A sae-a DELETE SAE_B/enc_keys
bq 401 "an SAE ID with a newline in the URL" '' A sae-a GET 'SAE_B%0Aqkd-kme:%20forged%20line/status'
brun
check "the newline did not start a line of the client's in the KME's log" \
	eval "! grep -q '^qkd-kme: forged' '$work/a.log' && grep -q 'SAE_B?qkd-kme: forged' '$work/a.log'"

# ---- enc_keys errors: the spec's 400/503, nothing taken ----
bq 400 "number above max_key_per_request" max_key_per_request A sae-a POST SAE_B/enc_keys '{"number":9}'
bq 400 "size other than the stream's 256 bits" 'size 128' A sae-a POST SAE_B/enc_keys '{"number":1,"size":128}'
bq 400 "size not a whole number of bytes" '' A sae-a POST SAE_B/enc_keys '{"size":257}'
bq 400 "an unsupported extension_mandatory" abc_route_type A sae-a POST SAE_B/enc_keys '{"number":1,"extension_mandatory":[{"abc_route_type":"direct"}]}'
bq 400 "additional_slave_SAE_IDs (no key multicast)" additional_slave A sae-a POST SAE_B/enc_keys '{"number":1,"additional_slave_SAE_IDs":["SAE_D"]}'
bq 400 "number 0" '' A sae-a POST SAE_B/enc_keys '{"number":0}'
bq 400 "number as a string" '' A sae-a POST SAE_B/enc_keys '{"number":"2"}'
bq 400 "number 1.5" '' A sae-a POST SAE_B/enc_keys '{"number":1.5}'
bq 400 "an unknown member" numbr A sae-a POST SAE_B/enc_keys '{"numbr":1}'
bq 400 "not JSON" '' A sae-a POST SAE_B/enc_keys '{"number":1'
bq 400 "JSON with trailing data" '' A sae-a POST SAE_B/enc_keys '{"number":1} x'
bq 400 "GET enc_keys?number=x" '' A sae-a GET 'SAE_B/enc_keys?number=x'
bq 400 "GET enc_keys with an unknown parameter" foo A sae-a GET 'SAE_B/enc_keys?foo=1'
bq 503 "SAE_C asks 4 keys of a stream holding 3: not enough keys" 'not enough keys' A sae-c POST SAE_D/enc_keys '{"number":4}'
brun
check "none of the refused requests took a key (A: $(stored siteA $S)/$n0a, C's stream $(stored siteA $S2)/$n0a2, B: $(stored siteB $S)/$n0b)" \
	test "$(stored siteA $S)" = "$n0a" -a "$(stored siteA $S2)" = "$n0a2" -a \
	"$(stored siteB $S)" = "$n0b" -a "$n0a" = $NKEYS

# ---- the keys: A's enc_keys, B's dec_keys ----
b64_of() {	# b64_of FILE INDEX
	dd if="$1" bs=$KS skip="$2" count=1 status=none | base64 -w0
}
code=$(rqA sae-a POST SAE_B/enc_keys '{"number":2,"size":256,"extension_optional":[{"x":1}]}')
cp "$work/body" "$work/enc1"
expect 200 "SAE_A: enc_keys number 2" "$code"
k0=$(jq -r '.keys[0].key' "$work/enc1")
k1=$(jq -r '.keys[1].key' "$work/enc1")
id0=$(jq -r '.keys[0].key_ID' "$work/enc1")
id1=$(jq -r '.keys[1].key_ID' "$work/enc1")
check "enc_keys gave the stream's keys 0 and 1 (base64 of 32 bytes), with their key_IDs" \
	test "$k0" = "$(b64_of "$work/keys" 0)" -a "$k1" = "$(b64_of "$work/keys" 1)" -a \
	${#k0} -eq 44 -a "$id0" = $S -a "$id1" != "$id0"
code=$(rqB sae-b POST SAE_A/dec_keys "{\"key_IDs\":[{\"key_ID\":\"$id1\"},{\"key_ID\":\"$id0\"}]}")
cp "$work/body" "$work/dec1"
expect 200 "SAE_B: dec_keys of both key_IDs" "$code"
check "B's keys are A's, in the order asked (non-empty, by key_ID)" \
	test -n "$k0" -a "$(jq -r '.keys[1].key' "$work/dec1")" = "$k0" -a \
	"$(jq -r '.keys[0].key' "$work/dec1")" = "$k1" -a \
	"$(jq -r '.keys[1].key_ID' "$work/dec1")" = "$id0"
expect 400 "SAE_B asks for key_ID $id0 again: delivered once per end" \
	"$(rqB sae-b GET "SAE_A/dec_keys?key_ID=$id0")" 'already delivered'
code=$(rqA sae-a GET 'SAE_B/enc_keys?number=1')
cp "$work/body" "$work/enc2"
expect 200 "SAE_A: GET enc_keys?number=1" "$code"
id2=$(jq -r '.keys[0].key_ID' "$work/enc2")
k2=$(jq -r '.keys[0].key' "$work/enc2")
check "the next enc_keys gives the next key (key 2), not one already given" \
	test "$k2" = "$(b64_of "$work/keys" 2)" -a "$id2" != "$id0" -a "$id2" != "$id1"
code=$(rqB sae-b GET "SAE_A/dec_keys?key_ID=$id2")
expect 200 "SAE_B: GET dec_keys?key_ID= of key 2" "$code"
check "same key at B" test "$(jq -r '.keys[0].key' "$work/body")" = "$k2"

# ---- dec_keys errors ----
n1b=$(stored siteB $S)
far=$(kid 200)
bq 400 "a key_ID of SAE_C's stream asked by SAE_B as SAE_A's: mismatched" 'not a key of master SAE SAE_A' B sae-b GET "SAE_A/dec_keys?key_ID=$S2"
bq 400 "SAE_D asks for a key_ID of SAE_A's stream as SAE_C's: mismatched" 'not a key' B sae-d GET "SAE_C/dec_keys?key_ID=$id0"
bq 400 "a key_ID that is no UUID" UUID B sae-b GET 'SAE_A/dec_keys?key_ID=3b1d0c4e'
bq 400 "the same key_ID twice" twice B sae-b POST SAE_A/dec_keys "{\"key_IDs\":[{\"key_ID\":\"$id0\"},{\"key_ID\":\"$id0\"}]}"
bq 400 "empty key_IDs" empty B sae-b POST SAE_A/dec_keys '{"key_IDs":[]}'
bq 400 "GET dec_keys without key_ID" required B sae-b GET SAE_A/dec_keys
ids9=$(for i in $(seq 3 11); do printf '{"key_ID":"%s"}\n' "$(kid "$i")"; done | paste -sd,)
bq 400 "9 key_IDs, above max_key_per_request" max_key_per_request B sae-b POST SAE_A/dec_keys "{\"key_IDs\":[$ids9]}"
brun
check "no refused dec_keys took a key at B ($(stored siteB $S)/$n1b)" test "$(stored siteB $S)" = "$n1b"

# A key not pushed yet, after one that is: the request fails (503) and the
# key it took first is kept by the KME for the retry.
code=$(rqA sae-a POST SAE_B/enc_keys '{"number":1}')
id3=$(jq -r '.keys[0].key_ID' "$work/body")
k3=$(jq -r '.keys[0].key' "$work/body")
expect 503 "dec_keys of key 3 and a key_ID not yet pushed: not available yet" \
	"$(rqB sae-b POST SAE_A/dec_keys "{\"key_IDs\":[{\"key_ID\":\"$id3\"},{\"key_ID\":\"$far\"}]}")" 'not available'
code=$(rqB sae-b GET "SAE_A/dec_keys?key_ID=$id3")
expect 200 "the retry of key 3 alone" "$code"
check "key 3 at B is A's key 3 (kept for the retry, not lost)" \
	test "$(jq -r '.keys[0].key' "$work/body")" = "$k3" -a -n "$k3"
expect 400 "key 3 asked once more: delivered once" "$(rqB sae-b GET "SAE_A/dec_keys?key_ID=$id3")" 'already delivered'

# ---- TLS, keep-alive ----
out=$(ip netns exec siteA curl -s -o /dev/null -w '%{http_code}' --max-time 10 --tls-max 1.1 \
	--cacert "$C/ca/ca.crt" --cert "$C/sae-a.crt" --key "$C/sae-a.key" \
	"https://$AA:$PORT/api/v1/keys/SAE_B/status" 2>&1)
check "TLS 1.1 is refused (no HTTP answer: $out)" test "$out" = 000
out=$(ip netns exec siteA curl -sv -o /dev/null --max-time 20 --cacert "$C/ca/ca.crt" \
	--cert "$C/sae-a.crt" --key "$C/sae-a.key" \
	"https://$AA:$PORT/api/v1/keys/SAE_B/status" "https://$AA:$PORT/api/v1/keys/SAE_B/status" 2>&1)
check "keep-alive: the second request reuses the connection" \
	grep -qiE 're-?using existing connection' <<<"$out"

# A client that sends its ClientHello and then stalls (no certificate
# needed): the KME must wait for it, not spin. libmicrohttpd 0.9.75's epoll
# loop with TLS spun a whole CPU for as long as such a handshake lasted.
cpu_of() {	# cpu_of PID: user + system CPU seconds so far, in clock ticks
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
c0=$(cpu_of "${pids[0]}")
ip netns exec siteA python3 - "$AA" "$PORT" <<'PY' &
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inb, outb)
try:
    o.do_handshake()
except ssl.SSLWantReadError:
    pass
s.sendall(outb.read())
time.sleep(4)
s.close()
PY
stall=$!
wait $stall
c1=$(cpu_of "${pids[0]}")
ticks=$(getconf CLK_TCK)
check "a stalled TLS handshake (4 s) costs the KME little CPU ($((c1 - c0)) ticks of $ticks/s)" \
	test $((c1 - c0)) -lt $((ticks / 2))

# ---- no key in the logs ----
leak=0
for k in "$k0" "$k1" "$k2" "$k3"; do
	grep -qF "$k" "$work/a.log" "$work/b.log" && leak=1
done
check "neither KME's log holds a key it delivered (base64)" test $leak = 0 -a -s "$work/a.log"
grep -c . "$work/a.log" "$work/b.log" | diag

# ---- no key left in the KMEs' memory ----
# Keys 0-3 have been delivered at both ends: neither KME may still hold
# them, raw or base64 (the reply buffers, the raw keys after encoding;
# GnuTLS's record buffers and libmicrohttpd's are searched too). The
# positive control: key 4, taken by B's KME for a dec_keys that failed
# later (503), is parked there until B's next request for it, so the scan
# must find it in B's KME -- a scan that finds nothing proves nothing.
rqA sae-a POST SAE_B/enc_keys '{"number":1}' >/dev/null
id4=$(jq -r '.keys[0].key_ID' "$work/body")
k4=$(jq -r '.keys[0].key' "$work/body")
expect 503 "dec_keys of key 4 and a key not yet pushed: key 4 parked in KME_B" \
	"$(rqB sae-b POST SAE_A/dec_keys "{\"key_IDs\":[{\"key_ID\":\"$id4\"},{\"key_ID\":\"$far\"}]}")" 'not available'
hex_of() {	# hex_of FILE INDEX: the raw key
	dd if="$1" bs=$KS skip="$2" count=1 status=none | od -An -tx1 -v | tr -d ' \n'
}
{
	for i in 0 1 2 3; do
		echo "raw$i $(hex_of "$work/keys" $i)"
		printf 'b64%s %s\n' $i "$(b64_of "$work/keys" $i | od -An -tx1 -v | tr -d ' \n')"
	done
	echo "parked4 $(hex_of "$work/keys" 4)"
} >"$work/patterns"
scan_kme() {	# scan_kme PID OUT
	python3 tests/e2e/memscan.py "$1" "$work/patterns" >"$2" 2>&1
}
scan_kme "${pids[0]}" "$work/scan.a"; ra=$?
scan_kme "${pids[1]}" "$work/scan.b"; rb=$?
cat "$work/scan.a" "$work/scan.b" | diag
check "the scan is live: key 4, parked in KME_B, is found there ($(awk '$1 == "parked4" { print $2 }' "$work/scan.b") copies)" \
	test $ra = 0 -a $rb = 0 -a "$(awk '$1 == "parked4" { print $2 }' "$work/scan.b")" -ge 1 -a \
	"$k4" = "$(b64_of "$work/keys" 4)"
check "no delivered key (0-3) left in either KME's memory, raw or base64" \
	test "$(cat "$work/scan.a" "$work/scan.b" | awk '$1 ~ /^(raw|b64)/ { s += $2 } END { print s + 0 }')" = 0

# ---- stop ----
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
pids=()
check "both KMEs stop on SIGTERM with status 0" test $rc = 0
echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
