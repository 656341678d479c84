#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# lockdown.sh QKD_KO: where a bound SA's key can be read, inside the VM.
# Prints TAP. Raising lockdown is one-way, so this script runs last in its
# VM boot (tests/e2e/guest-e2e.sh runs it after the others; by hand:
# tests/vm/run-vm.sh --kernel KVER -- tests/e2e/lockdown.sh build/kmod/KVER/qkd.ko).
#
# Two sites, siteA (initiator) and siteB (responder), are two network
# namespaces joined by a veth pair, each with its own store holding the same
# keys (Documentation/threat-model.md, "root with lockdown"):
#  1. XFRM_MSG_MIGRATE of a bound outbound SA: xfrm clones the SA from its
#     own copy of the key (x->aead) and puts the clone in its place. Site A
#     has no key for a re-key, so the clone carries the traffic: the ping
#     gets through only if the clone has the stream's key (a clone keyed
#     with zeros would be dropped by B, and readable by anyone on the wire).
#  2. Without lockdown, `ip xfrm state` and `ip xfrm monitor` show an SA's
#     key (the positive control: the checks below can see a key). Then
#     /sys/kernel/security/lockdown goes to `confidentiality` at run time:
#     the dumps and the notifications of a re-key (QKD_CMD_SA_REKEY) carry
#     zeros and none of the stream's keys, while ping still flows through
#     the re-keyed SAs.
set -u
ko=${1:?usage: $0 QKD_KO}
# shellcheck source=lib-sites.sh
. "$(dirname "$0")/lib-sites.sh"
sites_init lockdown
SID=5b1d7c3e-2a4f-4e6b-8c9d-0e1f2a3b4c5d
SIDM=5b1d7c3e-2a4f-4e6b-8c9d-0e1f2a3b4c5e
KS=36			# AES-256 key + 4-byte salt
NKEYS=64
AA=10.97.0.1
BB=10.97.0.2
LD=/sys/kernel/security/lockdown

# hexkey INDEX: the key at INDEX of the key file, as ip xfrm prints it.
hexkey() { echo "0x$(od -An -tx1 -v -j $(($1 * KS)) -N $KS "$work/keys" | tr -d ' \n')"; }

# aead_keys FILE: the AEAD keys in FILE (ip xfrm state or monitor output).
aead_keys() { awk '/^[ \t]*aead / { print $3 }' "$1"; }

# zero_keys FILE: how many AEAD keys FILE has, and how many are not zeros.
zero_keys() {
	local all nz
	all=$(aead_keys "$1" | wc -l)
	nz=$(aead_keys "$1" | grep -vc '^0x0*$')
	echo "$all $nz"
}

# leaked FILE: how many of the stream's keys (any 16 hex digits of one)
# appear in FILE.
leaked() { grep -c -F -f "$work/needles" "$1"; }

# xfrm_migrate NS LOCAL REMOTE REQID: XFRM_MSG_MIGRATE, in network
# namespace NS, of the outbound transport SA LOCAL -> REMOTE to the same
# addresses (as a MOBIKE update would send it); prints the ACK's errno
# (0: migrated).
xfrm_migrate() {
	local ns=$1
	shift
	ip netns exec "$ns" $PY - "$@" <<'EOF'
import socket, struct, sys
local, remote, reqid = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = lambda s: socket.inet_aton(s) + bytes(12)
AF_INET, NETLINK_XFRM, XFRM_MSG_MIGRATE, XFRMA_MIGRATE = 2, 6, 0x21, 17
# xfrm_selector (proto IPSEC_ULPROTO_ANY) + index, dir (XFRM_POLICY_OUT)
sel = a(remote) + a(local) + struct.pack("=4HHBBB3xiI", 0, 0, 0, 0, AF_INET, 32, 32, 255, 0, 0)
pi = sel + struct.pack("=IB3x", 0, 1)
# xfrm_user_migrate: ESP, transport, reqid, IPv4 -> IPv4
um = a(remote) + a(local) + a(remote) + a(local) + struct.pack("=BBHIHH", 50, 0, 0, reqid, AF_INET, AF_INET)
body = pi + struct.pack("=HH", 4 + len(um), XFRMA_MIGRATE) + um
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
s.bind((0, 0))
s.send(struct.pack("=IHHII", 16 + len(body), XFRM_MSG_MIGRATE, 1 | 4, 1, 0) + body)
r = s.recv(65536)
ln, typ = struct.unpack("=IH", r[:6])
print(-struct.unpack("=i", r[16:20])[0] if typ == 2 else -1)
EOF
}

echo "TAP version 13"

[ -e "$LD" ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
check "the lockdown LSM is active, at none ($(cat "$LD" 2>/dev/null))" \
	grep -q '\[none\]' "$LD"

insmod "$ko" || { echo "not ok $((n + 1)) - insmod"; echo "1..$((n + 1))"; exit 1; }
modprobe -a xfrm_user esp4 2>/dev/null

sites_up $AA $BB

head -c $((NKEYS * KS)) /dev/urandom >"$work/keys"
# Every 16 hex digits of the first 32 bytes of every key (hexkey's digits
# 2..65): what must not show up anywhere. One od for all keys: a hexkey
# per key cost 14 s of processes under emulation.
od -An -tx1 -v -w$KS "$work/keys" | tr -d ' ' |
	awk '{ for (i = 1; i < 64; i += 16) print substr($0, i, 16) }' >"$work/needles"
head -c $((2 * KS)) "$work/keys" >"$work/keys.2"
head -c $((6 * KS)) "$work/keys" >"$work/keys.6"
for site in A B; do
	ns=${site/A/$A}; ns=${ns/B/$B}
	sites_link $site
	$ns "$Q" stream add $SID link peer key-size $KS >/dev/null
	$ns "$Q" stream add $SIDM link peer key-size $KS >/dev/null
	$ns "$Q" key push $SID index 0 file "$work/keys"
done
# The one-way binding: A keeps keys 0 and 1 only (out g0 and the in key it
# discards), so that it cannot re-key; B takes 0, 2, 4 (in g0..g2).
$A "$Q" key push $SIDM index 0 file "$work/keys.2"
$B "$Q" key push $SIDM index 0 file "$work/keys.6"

# ---- 1. XFRM_MSG_MIGRATE of a bound SA
$A "$Q" sa add $SIDM local $AA remote $BB dir out reqid 3 first-index 0 rekey-seconds 3600 policy >/dev/null
rc_a=$?
$B "$Q" sa add $SIDM local $BB remote $AA dir in reqid 3 first-index 0 rekey-seconds 3600 policy >/dev/null
rc_b=$?
check "one-way bindings A -> B with their policies" test $rc_a -eq 0 -a $rc_b -eq 0
out=$($A busybox ping -c 3 -i 0.3 -W 2 $BB 2>&1)
check "ping A -> B through the bound SA" grep -q ' 0% packet loss' <<<"$out" || echo "$out" | diag
spim=$(spi $SIDM 0)
err=$(xfrm_migrate siteA $AA $BB 3)
check "XFRM_MSG_MIGRATE of A's bound outbound SA $spim: accepted ($err)" test "$err" = 0
km=$(aead_key_of_spi siteA "$spim")
check "the migrated SA carries the stream's key at index 0 (${km:0:10}..)" \
	test "$km" = "$(hexkey 0)"
read -r before < <($B cat /proc/net/xfrm_stat | awk '/XfrmInStateProtoError/ { print $2 }')
out=$($A busybox ping -c 3 -i 0.3 -W 2 $BB 2>&1)
check "ping A -> B through the migrated SA (A cannot re-key: no key 2)" \
	grep -q ' 0% packet loss' <<<"$out" ||
	{ echo "$out"; $A "$Q" sa show; $A ip -s xfrm state; $B ip -s xfrm state; } | diag
read -r after < <($B cat /proc/net/xfrm_stat | awk '/XfrmInStateProtoError/ { print $2 }')
check "B decrypted every packet of the migrated SA (integrity failures $before -> $after)" \
	test "$before" = "$after"
$A "$Q" sa del $SIDM
$B "$Q" sa del $SIDM
for ns in siteA siteB; do
	ip netns exec $ns ip xfrm state flush
	ip netns exec $ns ip xfrm policy flush
done

# ---- 2. Lockdown
$A "$Q" sa add $SID local $AA remote $BB reqid 1 first-index 0 rekey-seconds 3600 policy >/dev/null
rc_a=$?
$B "$Q" sa add $SID local $BB remote $AA reqid 1 first-index 0 rekey-seconds 3600 policy >/dev/null
rc_b=$?
check "bindings at both sites with their policies" test $rc_a -eq 0 -a $rc_b -eq 0
out=$($A busybox ping -c 3 -i 0.3 -W 2 $BB 2>&1)
check "ping A -> B through ESP" grep -q ' 0% packet loss' <<<"$out" || echo "$out" | diag

# monitor_start NS OUT: `ip xfrm monitor` in netns NS into OUT, in the
# background (its pid appended to pids), returned from only once it is
# listening: a marker policy is added and deleted until the monitor shows
# it. A fixed sleep was not enough beside a busy host's other VM: the
# monitor subscribed after the re-key it was to see (2026-12-06, 6.1).
monitor_start() {
	local ns=$1 out=$2 i
	ip netns exec "$ns" ip xfrm monitor >"$out" 2>&1 &
	pids+=($!)
	for i in $(seq 1 100); do
		ip netns exec "$ns" ip xfrm policy add src 192.0.2.201/32 dst 192.0.2.202/32 \
			dir out priority 4242 2>/dev/null
		ip netns exec "$ns" ip xfrm policy delete src 192.0.2.201/32 dst 192.0.2.202/32 \
			dir out 2>/dev/null
		grep -q '192\.0\.2\.201' "$out" && return 0
		sleep 0.2
	done
	echo "# ip xfrm monitor in $ns: not listening after 100 tries" >&2
	return 1
}

# Positive control: without lockdown root reads the keys (and kernel
# memory anyway), so the checks below can see a key where there is one.
$A ip xfrm state >"$work/state0"
check "without lockdown, ip xfrm state shows A's outbound key (index 0)" \
	test "$(aead_key_of_spi siteA "$(spi $SID 0)")" = "$(hexkey 0)"
check "... and the needles find it ($(leaked "$work/state0") keys)" \
	test "$(leaked "$work/state0")" -ge 4
monitor_start siteA "$work/mon0"
mon=${pids[-1]}
$A "$Q" sa rekey $SID >/dev/null
sleep 1
kill $mon 2>/dev/null
check "without lockdown, ip xfrm monitor shows the re-keyed SA's key (index 2)" \
	grep -qF "$(hexkey 2)" "$work/mon0" || diag <"$work/mon0"
out=$($A busybox ping -c 3 -i 0.3 -W 2 $BB 2>&1)
check "ping A -> B after the re-key" grep -q ' 0% packet loss' <<<"$out" || echo "$out" | diag

echo confidentiality >"$LD" 2>/dev/null
check "lockdown raised at run time: $(cat "$LD")" grep -q '\[confidentiality\]' "$LD"

for s in A B; do
	ns=site$s
	ip netns exec $ns ip xfrm state >"$work/state.$s"
	read -r all nz < <(zero_keys "$work/state.$s")
	check "under lockdown, ip xfrm state at $s: $all SA keys, $nz not zero" \
		test "$all" -ge 3 -a "$nz" -eq 0
	check "... and none of the stream's keys in it" test "$(leaked "$work/state.$s")" -eq 0
done
monitor_start siteA "$work/mon.A"
monitor_start siteB "$work/mon.B"
$A "$Q" sa rekey $SID >/dev/null
check "SA_REKEY under lockdown" test $? -eq 0
# Traffic on the new SA moves B on (it installs the next inbound SA); the
# old outbound SA goes after the grace period (DELSA).
out=$($A busybox ping -c 5 -i 0.3 -W 2 $BB 2>&1)
check "ping A -> B under lockdown, through the re-keyed SAs" \
	grep -q ' 0% packet loss' <<<"$out" || echo "$out" | diag
sleep 3
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=()
for s in A B; do
	read -r all nz < <(zero_keys "$work/mon.$s")
	check "under lockdown, ip xfrm monitor at $s during the re-key: $all SA keys, $nz not zero" \
		test "$all" -ge 1 -a "$nz" -eq 0 || diag <"$work/mon.$s"
	check "... and none of the stream's keys in it" test "$(leaked "$work/mon.$s")" -eq 0
done
check "site A is at generation 2" \
	test "$($A "$Q" -j sa show $SID | sed -n 's/.*"out_generation": *\([0-9]*\).*/\1/p')" = 2

ip netns del siteA
ip netns del siteB
for i in $(seq 1 20); do rmmod qkd 2>/dev/null && break; sleep 0.5; done
check "module unloads under lockdown" eval "! lsmod | grep -q '^qkd '"

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
