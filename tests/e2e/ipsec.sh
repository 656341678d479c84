#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# ipsec.sh QKD_KO: ESP SAs keyed and re-keyed inside the kernel from a QKD
# key stream (Documentation/ipsec.md), end to end, inside the VM. Prints TAP.
#
# Two sites, siteA (initiator) and siteB (responder), are two network
# namespaces joined by a veth pair; each has its own store holding the same
# keys. `qkdctl sa add` binds an SA pair to the stream at both sites, with
# `ip xfrm policy` requiring ESP both ways (the IPv6 tunnel binding at the
# end installs its own policies). Then:
#  - ping and a TCP transfer go through ESP, and a capture on the veth sees
#    nothing but ESP (and neighbour discovery);
#  - the SAs use the stream's keys at the indices of the formula, and those
#    indices are no longer deliverable through /dev/qkd; `ip xfrm state`
#    shows their keys (xfrm's own copy, which the module leaves alone;
#    zeros under lockdown=confidentiality: tests/e2e/lockdown.sh), and a
#    hand-made SA keyed with the other site's copy of the index decrypts
#    what the module's SA sent;
#  - re-key every second under continuous traffic for at least 12
#    generations (16 s: 30 took 35 s of the run on each kernel; thousands
#    of re-keys in a row are bench/bench_sa_rekey's): no ping lost, every
#    SPI as predicted, old SAs gone;
#  - the stream runs dry: the SAs are kept until their hard lifetime, then
#    traffic stops (fail closed, no plaintext on the wire), with events;
#    keys pushed again: traffic resumes;
#  - an IPv6 binding with ChaCha20-Poly1305 in tunnel mode carries a ping;
#  - deleting the binding or the stream removes the SAs, and the stream's
#    policies become block policies (fail closed); `sa del ...
#    remove-protection` deletes them instead.
set -u
ko=${1:?usage: $0 QKD_KO}
# shellcheck source=lib-sites.sh
. "$(dirname "$0")/lib-sites.sh"
sites_init ipsec
SID=7a0c5e21-3f4b-4c8d-9e1f-a2b3c4d5e6f7
SID6=7a0c5e21-3f4b-4c8d-9e1f-a2b3c4d5e6f8
KS=36			# AES-256 key + 4-byte salt
NKEYS=400		# in the key file; a feeder pushes them as the SAs use them
FIRST=60		# pushed at the start
AA=10.98.0.1
BB=10.98.0.2
AA6=fd00:98::1
BB6=fd00:98::2
# esp_count NS: ESP states in a site.
esp_count() { ip netns exec "$1" ip xfrm state | grep -c '^src'; }

# json_field FIELD: one value of the flat JSON object on stdin (no python:
# it takes seconds to start under emulation).
json_field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

# sa_field NS SID FIELD: one value of `qkdctl -j sa show SID`.
sa_field() { ip netns exec "$1" "$Q" -j sa show "$2" | json_field "$3"; }

echo "TAP version 13"

insmod "$ko" || { echo "not ok 1 - insmod"; exit 1; }
modprobe -a xfrm_user esp4 esp6 2>/dev/null

sites_up $AA $BB $AA6 $BB6

# The same keys at both sites (what a qkdd pair would have pushed).
head -c $((NKEYS * KS)) /dev/urandom >"$work/keys"
head -c $((FIRST * KS)) "$work/keys" >"$work/keys.first"
head -c $((64 * KS)) /dev/urandom >"$work/keys6"
for site in A B; do
	ns=${site/A/$A}; ns=${ns/B/$B}
	sites_link $site
	$ns "$Q" stream add $SID link peer key-size $KS low-water 8
	$ns "$Q" stream add $SID6 link peer key-size $KS
	$ns "$Q" key push $SID index 0 file "$work/keys.first"
	$ns "$Q" key push $SID6 index 0 file "$work/keys6"
done

# push_keys FROM COUNT: the keys FROM.. of the key file into both stores.
push_keys() {
	dd if="$work/keys" of="$work/slice" bs=$KS skip="$1" count="$2" status=none
	$A "$Q" key push $SID index "$1" file "$work/slice" &&
		$B "$Q" key push $SID index "$1" file "$work/slice"
}

# The feeder: 10 more keys whenever site A holds fewer than 24 (the SAs
# use 2 a second), until told to stop.
feeder() {
	local next=$FIRST stored
	while [ ! -e "$work/stop-feeder" ] && [ $((next + 10)) -le $NKEYS ]; do
		stored=$($A "$Q" -t stream show $SID | cut -f6)
		if [ "${stored:-0}" -lt 24 ]; then
			push_keys $next 10 || break
			next=$((next + 10))
			echo $next >"$work/fed"
		fi
		sleep 1
	done
}
echo $FIRST >"$work/fed"

# Events at site A for the whole run.
$A "$Q" monitor >"$work/events" 2>&1 &
pids+=($!)

# Bad input through qkdctl: a clear error, nothing bound.
out=$($A "$Q" sa add $SID local $AA remote $BB alg no-such-alg first-index 0 2>&1)
check "unknown algorithm is refused with a message" \
	test $? -eq 2 -a -n "$out"
out=$($A "$Q" sa add $SID local $AA remote $BB alg chacha20-poly1305 key-bits 128 first-index 0 2>&1)
check "wrong key size for the algorithm: kernel refuses, says why" \
	grep -q 'takes no key of that size' <<<"$out"
out=$($A "$Q" sa add 11111111-2222-4333-8444-555555555555 local $AA remote $BB first-index 0 2>&1)
check "non-existent stream is refused" grep -q 'No such file' <<<"$out"
check "nothing was bound or consumed by the refused requests" \
	test "$($A "$Q" -j sa show)" = "[]" -a "$(esp_count siteA)" -eq 0 -a \
	"$($A "$Q" -j stream show $SID | json_field stored_keys)" -eq $FIRST

feeder &
feeder_pid=$!
pids+=("$feeder_pid")

# Bind at both sites, re-key every second; policies require ESP both ways.
$A "$Q" sa add $SID local $AA remote $BB reqid 1 rekey-seconds 1 first-index 0
rc_a=$?
$B "$Q" sa add $SID local $BB remote $AA reqid 1 rekey-seconds 1 first-index 0
rc_b=$?
check "qkdctl sa add at both sites" test $rc_a -eq 0 -a $rc_b -eq 0
out=$($A "$Q" sa add $SID local $AA remote 10.98.0.3 reqid 7 first-index 0 2>&1)
check "a second binding on the same stream is refused" \
	grep -q 'already keys an SA' <<<"$out"
for pair in "siteA $AA $BB" "siteB $BB $AA"; do
	set -- $pair
	ip netns exec $1 ip xfrm policy add src $2 dst $3 dir out tmpl proto esp reqid 1 mode transport
	ip netns exec $1 ip xfrm policy add src $3 dst $2 dir in tmpl proto esp reqid 1 mode transport
done
set --

# Idle bindings stay at generation 0 (time re-keys only SAs that carried
# traffic): A sends with index 0 (channel 0), B with index 1.
ga=$(sa_field siteA $SID out_generation)
gb=$(sa_field siteB $SID out_generation)
# The SPIs of the formula for every index of the key file, once.
mapfile -t SPIS < <(spi $SID 0 $NKEYS)
spi_ab0=${SPIS[0]}
spi_ba0=${SPIS[1]}
check "idle: both sites at generation 0 ($ga, $gb)" test "$ga" = 0 -a "$gb" = 0
check "site A's outbound SA has the predicted SPI $spi_ab0" \
	test "$(printf '0x%08x' "$(sa_field siteA $SID out_spi)")" = "$spi_ab0"
check "site B's outbound SA has the predicted SPI $spi_ba0" \
	test "$(printf '0x%08x' "$(sa_field siteB $SID out_spi)")" = "$spi_ba0"
ka=$(aead_key_of_spi siteA "$spi_ab0")
kb=$(aead_key_of_spi siteB "$spi_ab0")
k0=0x$(od -An -tx1 -v -N $KS "$work/keys" | tr -d ' \n')
check "ip xfrm state shows xfrm's copy of the SA key, the stream's key 0, at both sites (${ka:0:10}.., ${kb:0:10}..)" \
	test "$ka" = "$k0" -a "$kb" = "$k0"
check "index 0 is no longer deliverable through /dev/qkd at either site" \
	eval "! $A $Q key get $SID index 0 >/dev/null 2>&1 && ! $B $Q key get $SID index 0 >/dev/null 2>&1"

# Capture on B's veth for the traffic checks: count IP packets by protocol.
capture() {
	$B $PY - "$1" <<'EOF' &
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("vb", 0))
s.settimeout(0.5)
esp = other = 0
bad = []
with open(sys.argv[1], "w") as f:
    end = time.time() + 3600
    while time.time() < end:
        try:
            p = s.recv(65535)
        except socket.timeout:
            f.seek(0); f.write("%d %d %s\n" % (esp, other, " ".join(bad[:5]))); f.truncate(); f.flush()
            continue
        et = struct.unpack("!H", p[12:14])[0]
        if et == 0x0800:
            proto = p[23]
        elif et == 0x86dd:
            proto = p[20]
            # Neighbour discovery and multicast (MLD) stay in the clear.
            if p[38] == 0xff or (proto == 58 and p[54] in (133, 134, 135, 136, 137)):
                continue
        else:
            continue
        if proto == 50:
            esp += 1
        else:
            other += 1
            bad.append(str(proto))
        f.seek(0); f.write("%d %d %s\n" % (esp, other, " ".join(bad[:5]))); f.truncate(); f.flush()
EOF
	pids+=($!)
}
capture "$work/cap"
sleep 1

out=$($A busybox ping -c 5 -i 0.2 -W 2 $BB 2>&1)
check "ping A -> B through ESP" grep -q ' 0% packet loss' <<<"$out" ||
	{ echo "$out"; $A "$Q" sa show; $B "$Q" sa show; $A ip -s xfrm state; $B ip -s xfrm state;
	  $A ip xfrm policy; $A grep -v ' 0$' /proc/net/xfrm_stat; $B grep -v ' 0$' /proc/net/xfrm_stat;
	  cat "$work/cap"; $A ip -s link show va; } | diag

# TCP: 2 MB from A to B, same digest at both ends.
head -c 2000000 /dev/urandom >"$work/blob"
$B $PY - "$work/blob.rx" <<'EOF' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001)); s.listen(1); s.settimeout(60)
c, _ = s.accept()
with open(sys.argv[1], "wb") as f:
    while True:
        d = c.recv(65536)
        if not d:
            break
        f.write(d)
EOF
srv=$!
sleep 1
$A $PY - "$work/blob" $BB <<'EOF'
import socket, sys
c = socket.create_connection((sys.argv[2], 5001), timeout=60)
c.sendall(open(sys.argv[1], "rb").read())
c.close()
EOF
wait $srv
check "TCP transfer A -> B through ESP (2 MB, same digest)" \
	cmp -s "$work/blob" "$work/blob.rx"
sleep 1
read -r esp other bad <"$work/cap"
check "the wire carried ESP only ($esp ESP packets, $other others${bad:+, IP protocols $bad})" \
	test "$esp" -gt 100 -a "$other" -eq 0
# The binding's counters are xfrm's: B's current inbound SA as qkdctl and
# `ip -s xfrm state` report it (it re-keys every second: a few packets).
js=$($B "$Q" -j sa show $SID)
pkts=$(json_field in_packets <<<"$js")
ispi=$(printf '0x%08x' "$(json_field in_spi <<<"$js")")
xpkts=$($B ip -s xfrm state | awk -v spi="$ispi" '
	/^src/ { cur = 0 } $0 ~ "spi " spi "[(]" { cur = 1 }
	cur && /[(]packets[)]$/ && !/limit/ { sub(/[(].*/, "", $2); print $2; exit }')
check "counters: B's inbound SA $ispi counted $pkts packets, ip xfrm says ${xpkts:-none}" \
	test "$pkts" -ge 1 -a "$pkts" = "${xpkts:-x}"

# Re-key every second under continuous traffic.
gen0=$(sa_field siteA $SID out_generation)
$B ip xfrm monitor >"$work/xfrm-mon" 2>&1 &
mon=$!
pids+=("$mon")
out=$($A busybox ping -c 80 -i 0.2 -W 2 $BB 2>&1)
loss=$(grep -o '[0-9]*% packet loss' <<<"$out")
gen1=$(sa_field siteA $SID out_generation)
check "re-key every second under traffic: $((gen1 - gen0)) generations, $loss" \
	test $((gen1 - gen0)) -ge 12 -a "$loss" = "0% packet loss"
rekeys=$(sa_field siteA $SID rekeys)
check "site A counted its re-keys ($rekeys)" test "$rekeys" -ge 24
kill $mon 2>/dev/null
# Every SPI that B installed is the formula's for consecutive indices.
bad_spi=0
mapfile -t seen < <(grep -o 'spi 0x[0-9a-f]*' "$work/xfrm-mon" | awk '{print $2}' | sort -u)
declare -A predicted
i=0
while read -r s; do predicted[$s]=$i; i=$((i + 1)); done < <(printf '%s\n' "${SPIS[@]}")
for s in "${seen[@]}"; do
	[ -n "${predicted[$s]:-}" ] || { bad_spi=$((bad_spi + 1)); echo "# unexpected SPI $s"; }
done
check "every SPI site B installed is predicted by the formula (${#seen[@]} SPIs)" \
	test $bad_spi -eq 0 -a ${#seen[@]} -ge 24
# Generation and SPI from one SA_GET: the last generation that carried
# traffic may still re-key between two reads (a race that failed once).
sa_json=$(ip netns exec siteA "$Q" -j sa show "$SID")
ga=$(json_field out_generation <<<"$sa_json")
check "site A's outbound SPI is the formula's for generation $ga" \
	test "$(printf '0x%08x' "$(json_field out_spi <<<"$sa_json")")" = "${SPIS[$((2 * ga))]}"
ca=$(esp_count siteA)
check "old SAs are gone: $ca ESP states left at site A" test "$ca" -le 9
check "re-keys are announced on the events group" \
	test "$(grep -c '^sa-rekey' "$work/events")" -ge 12

# The stream runs dry: keep the SAs until their hard lifetime, then close.
# Stop the feeder and wait for it, so that no push comes in late.
touch "$work/stop-feeder"
wait $feeder_pid
fed=$(cat "$work/fed")
# Traffic re-keys through what is left; then the last SAs reach their hard
# lifetime. (An idle binding is not closed: its idle SAs do not expire.)
$A busybox ping -i 0.3 -W 1 $BB >/dev/null 2>&1 &
bgping=$!
pids+=("$bgping")
for i in $(seq 1 150); do
	[ "$(sa_field siteA $SID state)" = closed ] && break
	sleep 0.5
done
kill $bgping 2>/dev/null
wait $bgping 2>/dev/null
check "stream exhausted: the binding at A is closed" \
	test "$(sa_field siteA $SID state)" = closed
read -r _ other0 _ <"$work/cap"
out=$($A busybox ping -c 3 -i 0.3 -W 1 $BB 2>&1)
check "fail closed: no ping gets through" grep -q '100% packet loss' <<<"$out" ||
	{ echo "$out"; $A "$Q" sa show; $B "$Q" sa show; $A ip -s xfrm state; $B ip -s xfrm state;
	  $A grep -v ' 0$' /proc/net/xfrm_stat; $B grep -v ' 0$' /proc/net/xfrm_stat; } | diag
sleep 1
read -r _ other1 _ <"$work/cap"
check "no plaintext on the wire while closed" test "$other1" -eq "$other0"
check "events: the binding ran dry and closed" \
	grep -q '^sa-state' "$work/events"

# Refill at both sites: traffic resumes.
push_keys "$fed" 40
ok_ping=0
for i in $(seq 1 20); do
	if $A busybox ping -c 1 -W 1 $BB >/dev/null 2>&1; then ok_ping=1; break; fi
done
check "keys pushed again: traffic resumes" test $ok_ping -eq 1
out=$($A busybox ping -c 5 -i 0.2 -W 2 $BB 2>&1)
check "after the refill ping is loss-free" grep -q ' 0% packet loss' <<<"$out"
check "the binding is ok again" test "$(sa_field siteA $SID state)" = ok

# IPv6, tunnel mode, ChaCha20-Poly1305, with the policies the binding
# installs itself (`policy`: out, in and fwd for the two host addresses).
$A "$Q" sa add $SID6 local $AA6 remote $BB6 mode tunnel alg chacha20-poly1305 reqid 6 rekey-seconds 3600 first-index 0 policy
rc_a=$?
$B "$Q" sa add $SID6 local $BB6 remote $AA6 mode tunnel alg chacha20-poly1305 reqid 6 rekey-seconds 3600 first-index 0 policy policy-priority 100
rc_b=$?
check "IPv6 tunnel-mode ChaCha20-Poly1305 bindings with their policies" test $rc_a -eq 0 -a $rc_b -eq 0
# pol6 NS: the site's policies with a template between the IPv6 addresses
# (the IPv4 ones above, made with `ip xfrm policy`, have none).
pol6() { ip netns exec "$1" ip xfrm policy | grep -c "tmpl src $AA6 dst $BB6\|tmpl src $BB6 dst $AA6"; }
check "the bindings installed out, in and fwd policies at A and B" \
	test "$(pol6 siteA)" -eq 3 -a "$(pol6 siteB)" -eq 3 -a \
	"$(ip netns exec siteB ip xfrm policy | grep -c 'priority 100')" -eq 3
check "sa show reports them" \
	test "$($B "$Q" -j sa show $SID6 | jq -r '[.policy, .policy_local, .policy_priority] | join(" ")')" = "true $BB6/128 100"
out=$($A busybox ping6 -c 3 -i 0.3 -W 2 $BB6 2>&1)
check "ping6 A -> B through the ESP tunnel" grep -q ' 0% packet loss' <<<"$out" || echo "$out" | diag
p6=$(sa_field siteB $SID6 in_packets)
check "the IPv6 SA counted the packets ($p6)" test "$p6" -ge 3
k6=$(ip netns exec siteB ip xfrm state | grep -c 'rfc7539esp')
check "ChaCha20-Poly1305 SAs installed at B ($k6)" test "$k6" -ge 2

# Deleting the binding, then the stream, removes the SAs.
before=$(esp_count siteB)
$B "$Q" sa del $SID
after=$(esp_count siteB)
check "sa del removes the binding's SAs at B ($before -> $after)" \
	test "$after" -lt "$before" -a "$($B "$Q" -j sa show | grep -c "$SID\"")" -eq 0
$A "$Q" stream del $SID6
check "deleting the stream removes its binding at A" \
	test "$($A "$Q" -j sa show | grep -c "$SID6")" -eq 0 -a \
	"$(ip netns exec siteA ip xfrm state | grep -c rfc7539esp)" -eq 0
check "its policies became block policies (fail closed)" \
	test "$(pol6 siteA)" -eq 0 -a \
	"$(ip netns exec siteA ip xfrm policy | grep -c 'action block')" -eq 3
out=$($A busybox ping6 -c 2 -i 0.3 -W 1 $BB6 2>&1)
check "ping6 A -> B is blocked, not sent in clear" grep -q ' 100% packet loss\|not permitted' <<<"$out"
$B "$Q" sa del $SID6 remove-protection
check "sa del remove-protection deletes B's policies" \
	test "$(pol6 siteB)" -eq 0 -a \
	"$(ip netns exec siteB ip xfrm policy | grep -c 'action block')" -eq 0

# The SA key is the stream's key at the formula's index: A's module SA
# (one way, AES-128-GCM) and, at B, an SA made by hand with B's copy of
# that index taken through /dev/qkd. B's SA counts only what it decrypted.
SIDX=7a0c5e21-3f4b-4c8d-9e1f-a2b3c4d5e6f9
head -c $((4 * 20)) /dev/urandom >"$work/keysx"
for ns in siteA siteB; do
	ip netns exec $ns "$Q" stream add $SIDX link peer key-size 20 >/dev/null
	ip netns exec $ns "$Q" key push $SIDX index 0 file "$work/keysx"
	ip netns exec $ns ip xfrm policy flush
done
$A "$Q" sa add $SIDX local $AA remote $BB dir out key-bits 128 reqid 9 rekey-seconds 3600 first-index 0 >/dev/null
rc_a=$?
$A ip xfrm policy add src $AA dst $BB proto udp dir out tmpl proto esp reqid 9 mode transport
spix=$(spi $SIDX 0)
kx=$($B "$Q" key get $SIDX index 0 format ip-xfrm | cut -f3)
$B ip xfrm state add src $AA dst $BB proto esp spi "$spix" reqid 9 mode transport \
	aead 'rfc4106(gcm(aes))' "$kx" 128
rc_b=$?
$A $PY -c "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'qkd', ('$BB', 4242)) for _ in range(5)]"
sleep 0.5
xpx=$($B ip -s xfrm state | awk -v spi="$spix" '
	/^src/ { cur = 0 } $0 ~ "spi " spi "[(]" { cur = 1 }
	cur && /[(]packets[)]$/ && !/limit/ { sub(/[(].*/, "", $2); print $2; exit }')
check "a hand-made SA keyed with B's copy of index 0 decrypts A's module SA ($rc_a/$rc_b, ${xpx:-no} packets)" \
	test $rc_a -eq 0 -a $rc_b -eq 0 -a "${xpx:-0}" -ge 5
check "ip xfrm state shows that module SA's key: B's copy of index 0" \
	test "$(aead_key_of_spi siteA "$spix")" = "$kx"

# Deleting the netns removes the rest; the module unloads.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=()
ip netns del siteA
ip netns del siteB
for i in $(seq 1 20); do rmmod qkd 2>/dev/null && break; sleep 0.5; done
check "module unloads after the namespaces are gone" eval "! lsmod | grep -q '^qkd '"

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
