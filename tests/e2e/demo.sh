#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# demo.sh QKD_KO: the main job, inside the VM (tools/demo.sh boots it).
#
# Two sites, A and B, are two network namespaces joined by a veth pair. At
# each site: a QKD link and a key stream are provisioned with qkdctl; the
# same keys (what a qkdd pair would have produced) are pushed into both
# stores; keys are taken at both ends and compared; then one key index keys
# an ESP SA pair at both sites with `ip xfrm`, and a ping crosses the link
# encrypted.
set -eu
ko=${1:?usage: $0 QKD_KO}
Q=$PWD/build/qkdctl
SID=5f0e8c2a-7d41-4b9e-9c3a-2e6b1d4f8a90
KEYS=64
KEY_SIZE=36	# rfc4106(gcm(aes)) with AES-256: 32-byte key + 4-byte salt
A="ip netns exec siteA"
B="ip netns exec siteB"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "DEMO FAILED: $*"; exit 1; }

say "load qkd.ko ($(uname -r))"
insmod "$ko"
modprobe -q xfrm_user 2>/dev/null || true
modprobe -q esp4 2>/dev/null || true
ls -l /dev/qkd

say "two sites: network namespaces siteA and siteB, joined by veth"
for ns in siteA siteB; do ip netns del $ns 2>/dev/null || true; done
ip netns add siteA
ip netns add siteB
ip link add va netns siteA type veth peer name vb netns siteB
$A ip addr add 10.99.0.1/24 dev va
$B ip addr add 10.99.0.2/24 dev vb
$A ip link set va up
$B ip link set vb up
$A ip link set lo up
$B ip link set lo up

say "provision a QKD link and a key stream at each site"
$A "$Q" link add to-B role initiator peer siteB
$B "$Q" link add to-A role responder peer siteA
$A "$Q" link set to-B state up
$B "$Q" link set to-A state up
$A "$Q" stream add $SID link to-B key-size $KEY_SIZE low-water 8
$B "$Q" stream add $SID link to-A key-size $KEY_SIZE low-water 8

say "push the same $KEYS keys into both stores (what qkdd does after privacy amplification)"
keys=$(mktemp /tmp/demo-keys.XXXXXX)
head -c $((KEYS * KEY_SIZE)) /dev/urandom >"$keys"
$A "$Q" key push $SID index 0 file "$keys"
$B "$Q" key push $SID index 0 file "$keys"
shred -u "$keys" 2>/dev/null || rm -f "$keys"
echo "site A:"; $A "$Q" stream show
echo "site B:"; $B "$Q" stream show

say "take keys at both ends: A takes the next key (ETSI 014 enc_keys), B the same key by its ID (dec_keys)"
read -r ia kida keya < <($A "$Q" key get $SID)
read -r ib kidb keyb < <($B "$Q" key get $SID key-id "$kida")
echo "A: index $ia key_ID $kida key ${keya:0:16}... (hidden)"
echo "B: index $ib key_ID $kidb key ${keyb:0:16}... (hidden)"
[ "$keya" = "$keyb" ] && [ "$ia" = "$ib" ] || fail "the two ends got different keys"
echo "same key at both ends: yes"
if $A "$Q" key get $SID index "$ia" >/dev/null 2>&1; then
	fail "index $ia was delivered twice"
fi
echo "a second request for index $ia at A: refused (each index is delivered once per end)"

say "key an ESP SA pair from QKD key indices 1 (A->B) and 2 (B->A) with ip xfrm"
ab_a=$($A "$Q" key get $SID index 1 format ip-xfrm | cut -f3)
ab_b=$($B "$Q" key get $SID index 1 format ip-xfrm | cut -f3)
ba_a=$($A "$Q" key get $SID index 2 format ip-xfrm | cut -f3)
ba_b=$($B "$Q" key get $SID index 2 format ip-xfrm | cut -f3)
[ "$ab_a" = "$ab_b" ] && [ "$ba_a" = "$ba_b" ] || fail "SA keys differ"
for site in A B; do
	if [ $site = A ]; then ns="$A"; k1=$ab_a; k2=$ba_a; else ns="$B"; k1=$ab_b; k2=$ba_b; fi
	$ns ip xfrm state add src 10.99.0.1 dst 10.99.0.2 proto esp spi 0x51d00001 reqid 1 \
		mode transport aead 'rfc4106(gcm(aes))' "$k1" 128
	$ns ip xfrm state add src 10.99.0.2 dst 10.99.0.1 proto esp spi 0x51d00002 reqid 2 \
		mode transport aead 'rfc4106(gcm(aes))' "$k2" 128
done
unset ab_a ab_b ba_a ba_b k1 k2
$A ip xfrm policy add src 10.99.0.1 dst 10.99.0.2 dir out tmpl proto esp reqid 1 mode transport
$B ip xfrm policy add src 10.99.0.1 dst 10.99.0.2 dir in tmpl proto esp reqid 1 mode transport
$B ip xfrm policy add src 10.99.0.2 dst 10.99.0.1 dir out tmpl proto esp reqid 2 mode transport
$A ip xfrm policy add src 10.99.0.2 dst 10.99.0.1 dir in tmpl proto esp reqid 2 mode transport
$A ping -c 3 -i 0.2 -W 2 10.99.0.2
# The "lifetime current" counters of the SA with that SPI.
pkts=$($B ip -s xfrm state | awk '/spi 0x51d00001/ { sa = 1 }
	sa && /[0-9]+\(packets\)/ { match($0, /[0-9]+\(packets\)/); print substr($0, RSTART, RLENGTH); exit }')
echo "ESP packets received at site B on the QKD-keyed SA (spi 0x51d00001): ${pkts%(packets)}"
if ! [ "${pkts%(packets)}" -ge 3 ] 2>/dev/null; then
	$B ip -s xfrm state
	fail "the pings did not go through the SA"
fi

say "what remains at each site"
$A "$Q" status
$B "$Q" stream show

say "clean up: deleting the namespaces zeroes their stores"
ip netns del siteA
ip netns del siteB
rmmod qkd
echo
echo "DEMO OK"
