#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# etsi004.sh QKD_KO: libqkd's ETSI GS QKD 004 interface (and its 014-style
# calls) against the module, at two sites (lib-sites.sh), inside the VM.
# Both stores get the same keys (qkdctl key push of one file), then
#   - the example program (build/examples/qkd_get_key_example, linked with
#     build/libqkd.so.0) takes keys at site A, the next ones, and at site B
#     by index: the same key at the same index at both ends, and the key
#     that was pushed (fingerprints: the first 8 bytes of SHA-256);
#   - build/tests/etsi004_probe drives the calls one by one: a blocking
#     get_key that returns when a key is pushed, TIMEOUT_ERROR after the
#     QoS timeout on an empty stream, an unknown, a closed and a TTL-expired
#     key_stream_id refused, the KSID opened twice refused, QoS
#     counter-proposals, and every malformed call refused with nothing
#     taken (the stream's stored count unchanged); enc_keys at A and
#     dec_keys at B give the same keys.
# Prints TAP. Run as root from the repo top, e.g.
#   tests/vm/run-vm.sh -- tests/e2e/etsi004.sh build/kmod-e2e/$KVER/qkd.ko
set -u
ko=${1:?usage: $0 QKD_KO}
# shellcheck source=lib-sites.sh
. "$(dirname "$0")/lib-sites.sh"
sites_init etsi004
EX=$PWD/build/examples/qkd_get_key_example
P=$PWD/build/tests/etsi004_probe
S=5f0c7a3e-1b2d-4c6e-8f10-004004004001	# 32-byte keys, 16 pushed
E=5f0c7a3e-1b2d-4c6e-8f10-004004004002	# 32-byte keys, empty at first
E2=5f0c7a3e-1b2d-4c6e-8f10-004004004004	# 32-byte keys, empty
U=5f0c7a3e-1b2d-4c6e-8f10-0040040040ff	# no such stream
SB=5f0c7a3e-1b2d-4c6e-8f10-004004004003	# 36-byte keys, owned by an SA binding
KS=32
NK=16

# expect DESC WANT GOT
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf 'want: %s\ngot:  %s\n' "$2" "$3" | diag; fi
}
stored() { # SITE-NS SID
	$1 "$Q" -j stream show "$2" | sed -n 's/.*"stored_keys": *\([0-9]*\).*/\1/p'
}
# the fingerprint of the key at index $1 of the key file
fp_of() {
	dd if="$work/keys" bs=$KS skip="$1" count=1 status=none | sha256sum | cut -c1-16
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

echo "TAP version 13"
for b in "$EX" "$P"; do [ -x "$b" ] || { echo "Bail out! $b is not built"; exit 1; }; done
insmod "$ko" || { echo "Bail out! insmod $ko"; exit 1; }
sites_up 10.97.0.1 10.97.0.2
head -c $((NK * KS)) /dev/urandom >"$work/keys"
for site in A B; do
	ns=${site/A/$A}; ns=${ns/B/$B}
	sites_link $site
	$ns "$Q" stream add $S link peer key-size $KS >/dev/null
	$ns "$Q" stream add $E link peer key-size $KS >/dev/null
	$ns "$Q" stream add $E2 link peer key-size $KS >/dev/null
	$ns "$Q" key push $S index 0 file "$work/keys"
done
expect "both sites hold $NK keys" "$NK $NK" "$(stored "$A" $S) $(stored "$B" $S)"

# ---- the example program: the next keys at A, the same indices at B
$A "$EX" -n 3 -s qkd://siteA qkd://siteB/$S >"$work/exA" 2>&1
rc=$?
diag <"$work/exA"
expect "example at A: 3 keys, exit 0 (SUCCESSFUL)" "0 3" "$rc $(grep -c '^index=' "$work/exA")"
$B "$EX" -n 3 -i 0 -s qkd://siteB qkd://siteA $S >"$work/exB" 2>&1
rc=$?
diag <"$work/exB"
expect "example at B, by index 0..2 and the KSID argument: exit 0" "0 3" "$rc $(grep -c '^index=' "$work/exB")"
expect "same index and key at both ends (example, A next, B by index)" \
	"$(grep '^index=' "$work/exA")" "$(grep '^index=' "$work/exB")"
want=""
for i in 0 1 2; do want="$want$i $(fp_of $i) "; done
got=$(grep '^index=' "$work/exA" | while read -r l; do
	printf '%s %s ' "$(echo "$l" | field index)" "$(echo "$l" | field fingerprint)"; done)
expect "the example's keys are the keys pushed at indices 0..2" "$want" "$got"
kid=$(grep -m1 '^index=' "$work/exA" | field key_ID)
expect "metadata: JSON with the stream, index 0 and its key_ID" \
	"metadata={\"key_stream_id\":\"$S\",\"index\":0,\"key_ID\":\"$kid\",\"key_size\":32}" \
	"$(grep '^metadata=' "$work/exA")"
expect "each end took 3: 13 keys left at both" "13 13" "$(stored "$A" $S) $(stored "$B" $S)"

# ---- the probe: next at A, that index at B
oa=$($A "$P" open:qkd://siteB,$S get)
echo "$oa" | diag
ia=$(echo "$oa" | sed -n 's/^get SUCCESSFUL index=\([0-9]*\).*/\1/p')
expect "probe at A: open SUCCESSFUL (chunk filled in: 32, application/json), next key index 3" \
	"open SUCCESSFUL chunk=32 mimetype=application/json|3" "$(echo "$oa" | head -n1)|$ia"
ob=$($B "$P" open:qkd://siteA,$S "get:$ia")
echo "$ob" | diag
expect "probe at B: index $ia by index, the same key as A's, the key pushed" \
	"$(fp_of 3) $(fp_of 3)" "$(echo "$oa" | tail -n1 | field fp) $(echo "$ob" | tail -n1 | field fp)"

# ---- refused, nothing taken
before="$(stored "$A" $S)"
o=$($A "$P" open:qkd://siteB,$S getmeta:0 getmeta:152 get:0 get:72057594037927936 \
	open:qkd://siteB/$E,$S open:qkd://siteB,$S get-other:$E close:$E close close get)
echo "$o" | diag
expect "metadata buffer of 0 and 152 bytes: GK_METADATA_INSUFFICIENT_SIZE, 153 needed" \
	"getmeta GK_METADATA_INSUFFICIENT_SIZE size=153|getmeta GK_METADATA_INSUFFICIENT_SIZE size=153" \
	"$(echo "$o" | sed -n 2,3p | paste -sd'|')"
expect "index 0, delivered at this end already: INVALID_ARGUMENT" \
	"get INVALID_ARGUMENT index=0 fp=-" "$(echo "$o" | sed -n 4p | cut -d' ' -f1-4)"
expect "index 2^56: INVALID_ARGUMENT" \
	"get INVALID_ARGUMENT index=0 fp=-" "$(echo "$o" | sed -n 5p | cut -d' ' -f1-4)"
expect "URI naming another stream than the KSID: INVALID_ARGUMENT" \
	"open INVALID_ARGUMENT" "$(echo "$o" | sed -n 6p | cut -d' ' -f1-2)"
expect "the KSID opened twice in a process: OC_KSID_ALREADY_IN_USE" \
	"open OC_KSID_ALREADY_IN_USE" "$(echo "$o" | sed -n 7p | cut -d' ' -f1-2)"
expect "get_key and close of a KSID not opened: NO_QKD_CONNECTION_AVAILABLE" \
	"get-other NO_QKD_CONNECTION_AVAILABLE|close NO_QKD_CONNECTION_AVAILABLE" \
	"$(echo "$o" | sed -n 8,9p | paste -sd'|')"
expect "close, close again, get_key after close: SUCCESSFUL, then refused" \
	"close SUCCESSFUL|close NO_QKD_CONNECTION_AVAILABLE|get NO_QKD_CONNECTION_AVAILABLE" \
	"$(echo "$o" | sed -n 10,12p | cut -d' ' -f1-2 | paste -sd'|')"
expect "none of these took a key" "$before" "$(stored "$A" $S)"

o=$($A "$P" open:qkd://siteB,$U open:qkd://siteB open:qkd://siteB,$S,16 \
	open:qkd://siteB,$S,0,0,0,text/plain open:qkd://siteB,$S,64)
echo "$o" | diag
expect "a stream not in this store, or none named: NO_QKD_CONNECTION_AVAILABLE" \
	"open NO_QKD_CONNECTION_AVAILABLE|open NO_QKD_CONNECTION_AVAILABLE" \
	"$(echo "$o" | sed -n 1,2p | cut -d' ' -f1-2 | paste -sd'|')"
expect "QoS chunk 16, text/plain metadata, chunk 64: OC_QOS_NOT_SATISFIABLE with the counter-proposal" \
	"open OC_QOS_NOT_SATISFIABLE chunk=32 mimetype=application/json|open OC_QOS_NOT_SATISFIABLE chunk=32 mimetype=application/json|open OC_QOS_NOT_SATISFIABLE chunk=32 mimetype=application/json" \
	"$(echo "$o" | sed -n 3,5p | paste -sd'|')"
expect "still nothing taken" "$before" "$(stored "$A" $S)"

# ---- waiting: timeout on an empty stream, a key pushed while waiting
o=$($A "$P" open:qkd://siteB,$E,0,400 get)
echo "$o" | diag
ms=$(echo "$o" | sed -n 2p | field ms)
expect "empty stream, timeout 400 ms: TIMEOUT_ERROR" "get TIMEOUT_ERROR" "$(echo "$o" | sed -n 2p | cut -d' ' -f1-2)"
check "it waited the timeout (400 ms <= $ms ms < 5000)" test "${ms:-0}" -ge 399 -a "${ms:-0}" -lt 5000
o=$($A "$P" open:qkd://siteB,$E,0,0 get)
expect "empty stream, timeout 0: GK_INSUFFICIENT_KEY_AVAILABLE" "get GK_INSUFFICIENT_KEY_AVAILABLE" \
	"$(echo "$o" | sed -n 2p | cut -d' ' -f1-2)"
$A "$P" open:qkd://siteB,$E,0,20000 get >"$work/wait" 2>&1 &
wp=$!
sleep 1
dd if="$work/keys" bs=$KS skip=10 count=1 status=none >"$work/k10"
$A "$Q" key push $E index 0 file "$work/k10"
wait $wp
diag <"$work/wait"
expect "a get_key waiting (timeout 20 s) returns the key pushed meanwhile" \
	"get SUCCESSFUL index=0 fp=$(fp_of 10)" "$(sed -n 2p "$work/wait" | cut -d' ' -f1-4)"
ms=$(sed -n 2p "$work/wait" | field ms)
check "... when it is pushed (${ms} ms, not the timeout)" test "${ms:-99999}" -lt 15000

# the stream deleted under a waiting get_key
$A "$P" open:qkd://siteB,$E,0,20000 get >"$work/wait" 2>&1 &
wp=$!
sleep 1
$A "$Q" stream del $E
wait $wp
diag <"$work/wait"
expect "the stream deleted under a waiting get_key: NO_QKD_CONNECTION_AVAILABLE" \
	"get NO_QKD_CONNECTION_AVAILABLE" "$(sed -n 2p "$work/wait" | cut -d' ' -f1-2)"

# closed by another thread under a waiting get_key (next, and by index)
o=$($A "$P" open:qkd://siteB,$E2,0,20000 getclose:500 close \
	open:qkd://siteB,$E2,0,20000 getclose:500,7 2>&1)
echo "$o" | diag
expect "qkd_close() from another thread ends a waiting get_key (next, by index): NO_QKD_CONNECTION_AVAILABLE; a second close refused" \
	"getclose NO_QKD_CONNECTION_AVAILABLE SUCCESSFUL|close NO_QKD_CONNECTION_AVAILABLE|getclose NO_QKD_CONNECTION_AVAILABLE SUCCESSFUL" \
	"$(echo "$o" | sed -n '2p;3p;5p' | sed 's/ ms=.*//' | paste -sd'|')"
ms=$(echo "$o" | sed -n '2p;5p' | field ms | sort -n | tail -n1)
check "... at once (${ms} ms at most, not the 20 s timeout)" test "${ms:-99999}" -lt 10000

# TTL
before="$(stored "$A" $S)"
o=$($A "$P" open:qkd://siteB,$S,0,0,1 getmeta:0 2>&1)
expect "TTL 1 s: a get right away is served (here: refused for its metadata)" \
	"getmeta GK_METADATA_INSUFFICIENT_SIZE" "$(echo "$o" | sed -n 2p | cut -d' ' -f1-2)"
o=$($A "$P" open:qkd://siteB,$S,0,0,1 wait:1200 get 2>&1)
echo "$o" | diag
expect "TTL 1 s: get_key 1.2 s after open refused (NO_QKD_CONNECTION_AVAILABLE), nothing taken" \
	"get NO_QKD_CONNECTION_AVAILABLE|$before" "$(echo "$o" | sed -n 2p | cut -d' ' -f1-2)|$(stored "$A" $S)"

# ---- 014-style: enc_keys at A, dec_keys by key ID at B
o=$($A "$P" open:qkd://siteB,$S enc:2)
echo "$o" | diag
enc=$(echo "$o" | sed -n 2p)
ids=$(echo "$enc" | sed -n 's/^enc 0 keys=//p' | tr ',' '\n' | cut -d/ -f1 | paste -sd,)
fpa=$(echo "$enc" | sed -n 's/^enc 0 keys=//p' | tr ',' '\n' | cut -d/ -f2 | paste -sd,)
expect "enc_keys of 2 at A: the next two (indices 4, 5), the keys pushed" "$(fp_of 4),$(fp_of 5)" "$fpa"
before="$(stored "$B" $S)"
id1=${ids%%,*}
o=$($B "$P" open:qkd://siteA,$S "dec:$id1,$id1" "dec:$id1,6f0c7a3e-1b2d-4c6e-8f10-004004004001")
echo "$o" | diag
expect "dec_keys with a key_ID twice, or one of another stream: EINVAL, nothing taken" \
	"dec 22 taken=0|dec 22 taken=0|$before" "$(echo "$o" | sed -n 2,3p | paste -sd'|')|$(stored "$B" $S)"
o=$($B "$P" open:qkd://siteA,$S "dec:$ids")
echo "$o" | diag
expect "dec_keys of A's two key_IDs at B: the same keys" "dec 0 taken=2 fp=$fpa" "$(echo "$o" | sed -n 2p)"
o=$($B "$P" open:qkd://siteA,$S "dec:$ids")
expect "dec_keys of the same key_IDs again: EKEYEXPIRED" "dec 127 taken=0" "$(echo "$o" | sed -n 2p)"

# ---- a stream an SA binding owns: no 004 application takes its keys
modprobe -a xfrm_user esp4 2>/dev/null
head -c $((8 * 36)) /dev/urandom >"$work/keys36"
$A "$Q" stream add $SB link peer key-size 36 >/dev/null
$A "$Q" key push $SB index 0 file "$work/keys36"
if $A "$Q" sa add $SB local 10.97.0.1 remote 10.97.0.2 first-index 0 >"$work/sa" 2>&1; then
	o=$($A "$P" open:qkd://siteB,$SB get get:6)
	echo "$o" | diag
	expect "a stream an SA binding owns: open SUCCESSFUL, get_key (next, by index) OC_KSID_ALREADY_IN_USE" \
		"open SUCCESSFUL|get OC_KSID_ALREADY_IN_USE|get OC_KSID_ALREADY_IN_USE" \
		"$(echo "$o" | cut -d' ' -f1-2 | paste -sd'|')"
else
	diag <"$work/sa"
	not_ok "qkdctl sa add on $SB (for the binding case)"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
