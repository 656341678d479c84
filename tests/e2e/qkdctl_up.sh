#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdctl_up.sh QKD_KO: two sites brought up and down from one
# configuration file each (qkdctl up/down, qkd.conf(5)), inside the VM
# (tests/vm/run-vm.sh -- tests/e2e/qkdctl_up.sh build/kmod/KVER/qkd.ko).
#
# Sites A and B are two network namespaces (lib-sites.sh). A PSK pair from
# qkdctl genpsk; at each site `qkdctl up` makes the link, the stream, starts
# qkdd and binds an ESP SA pair once the first keys are there. Then: xfrm
# holds the same SA key at both sites, up again changes nothing (same
# qkdd, the binding adopted), up with other [sa] parameters is refused
# (exit 2, the field named, the binding untouched), `qkdctl down` removes
# the binding and the daemon and keeps the link and the stream with its
# keys, `down --purge` removes them too, and each down again is a no-op.
# Again from files without [sa] (a bound stream gives no key to /dev/qkd):
# the same key taken by index at both sites; down keeps the stored keys
# (taken after it), up with another max-keys is refused (exit 2, the file,
# the line and the field; no key lost), up adopts the stream with its keys
# (a key stored before taken after, new keys flow), and down --purge
# leaves nothing. `up --foreground` (qkd@.service's ExecStart) becomes
# qkdd (exec: the same pid, in the pid file; SIGTERM: exit 0, the stream
# stays), and without [daemon] waits for SIGTERM (SIGHUP ignored).
# Broken configurations leave nothing
# behind: a syntax error (exit 2, FILE:LINE, nothing made), an option qkdd
# refuses (exit 2, the link and stream it made undone), a stream the kernel
# refuses part-way (exit 1, undone, another link untouched), a bad [sa]
# (exit 2 before anything is made). Prints TAP and "N passed, N failed".
set -u
ko=${1:?usage: $0 QKD_KO}
# shellcheck source=lib-sites.sh
. "$(dirname "$0")/lib-sites.sh"
sites_init qkdctl_up
SID=6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b
OTHER=6f1c2a9e-3b4d-4e5f-8a7b-0000000000aa
AA=10.98.0.1
BB=10.98.0.2
echo "TAP version 13"

insmod "$ko" || { echo "not ok 1 - insmod"; echo "1..1"; exit 1; }
modprobe -a xfrm_user esp4 2>/dev/null
sites_up $AA $BB
mkdir -p "$work/runA" "$work/runB"

check "qkdctl genpsk: the two sites' PSK files" \
	"$Q" genpsk "$work/A.psk" "$work/B.psk"

# conf SITE ROLE QKDD_ROLE ADDR_OPTION LOCAL REMOTE [sa]: the site's file,
# with an [sa] section if asked
conf() {
	cat <<EOF
# site $1
[link]
role = $2
peer = "site of $6 # the other end"

[stream $SID]
key-size = 32
max-keys = 16384
low-water = 16

[daemon]
role = $3
$4
psk = $work/$1.psk
block-bits = 262144
channel = source=single-photon
timeout = 300
simulated-channel-test-keys-only
EOF
	[ "${7:-}" = sa ] || return 0
	cat <<EOF

[sa $SID]
local = $5
remote = $6
first-index = 0
key-bits = 128                 # AES-128-GCM: 16 bytes of key, 4 of salt
rekey-seconds = 3600
EOF
}
conf A initiator alice "peer = $BB:7100" $AA $BB sa >"$work/A.conf"
conf B responder bob "listen = $BB:7100" $BB $AA sa >"$work/B.conf"

# up SITE [ARGS...]: qkdctl up at SITE with its file and run directory
up() { local s=$1; shift; ip netns exec "site$s" "$Q" up -c "$work/$s.conf" --run-dir "$work/run$s" "$@" ab; }
down() { local s=$1; shift; ip netns exec "site$s" "$Q" down -c "$work/$s.conf" --run-dir "$work/run$s" "$@" ab; }
jqs() { ip netns exec "site$1" "$Q" -j "${@:2}" 2>/dev/null; }
# st STATUS TEXT: ok if STATUS is 0
st() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }
# alive PID: running, not a zombie
alive() { [ -n "$1" ] && [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat"; }
next_index() { jqs "$1" stream show $SID | jq -r '.next_index // 0' 2>/dev/null || echo 0; }

# B waits for keys to bind its SA, and keys need A: both at once.
up B >"$work/upB.out" 2>&1 &
pb=$!
sleep 1
up A >"$work/upA.out" 2>&1
ra=$?
wait $pb
rb=$?
diag <"$work/upA.out"
diag <"$work/upB.out"
[ "$ra" = 0 ] && [ "$rb" = 0 ]; st $? "qkdctl up at both sites (A $ra, B $rb)"
for s in A B; do
	check "site $s: link ab up, role from the file" \
		[ "$(jqs $s link show ab | jq -r '"\(.name) \(.state) \(.role)"')" \
		  = "ab up $([ $s = A ] && echo initiator || echo responder)" ]
	check "site $s: the peer text, '#' kept inside quotes" \
		[ "$(jqs $s link show ab | jq -r .peer)" = "site of $([ $s = A ] && echo $BB || echo $AA) # the other end" ]
	check "site $s: stream with key size 32, max 16384, low water 16" \
		[ "$(jqs $s stream show $SID | jq -r '"\(.key_size) \(.max_keys) \(.low_water)"')" = "32 16384 16" ]
	check "site $s: the SA binding" \
		[ "$(jqs $s sa show $SID | jq -r .stream)" = $SID ]
	pid=$(cat "$work/run$s/ab.qkdd.pid" 2>/dev/null)
	check "site $s: qkdd runs (pid ${pid:-none}) with the written configuration" \
		grep -qz -- "$work/run$s/ab.qkdd.conf" "/proc/${pid:-0}/cmdline"
done

# The binding was made once qkdd had pushed its first keys: xfrm holds
# the same key for generation 0's SPI at both sites.
spi0=$(spi $SID 0)
ka=$(aead_key_of_spi siteA "$spi0")
kb=$(aead_key_of_spi siteB "$spi0")
[ -n "$ka" ] && [ "$ka" = "$kb" ]
st $? "the SAs keyed from the stream: the same key for SPI $spi0 at both sites (${ka:0:10}..)"
for s in A B; do echo "# qkdd at $s:"; tail -n 4 "$work/run$s/ab.qkdd.log" 2>/dev/null | cut -c1-160 | diag; done
pid_before=$(cat "$work/runA/ab.qkdd.pid")
up A >"$work/up2.out" 2>&1
r=$?
diag <"$work/up2.out"
[ $r = 0 ] && grep -q "link ab exists: adopted" "$work/up2.out" && grep -q "already running (pid $pid_before)" "$work/up2.out" &&
	grep -q "sa $SID exists: adopted" "$work/up2.out" && [ "$(cat "$work/runA/ab.qkdd.pid")" = "$pid_before" ]
st $? "up again at A: exit 0 ($r), everything found and adopted (the binding's parameters are the file's), the same qkdd"

# the binding exists with other parameters than the file's: refused
sed 's/^rekey-seconds = 3600$/rekey-seconds = 600/' "$work/A.conf" >"$work/Asa.conf"
line=$(grep -n '^\[sa' "$work/Asa.conf" | cut -d: -f1)
rk0=$(jqs A sa show $SID | jq -r .rekey_seconds)
o=$($A "$Q" up -c "$work/Asa.conf" --run-dir "$work/runA" ab 2>&1); r=$?
echo "$o" | diag
[ $r = 2 ] && [[ $o == *"Asa.conf:$line: [sa $SID]: a binding exists with other parameters (rekey-seconds: 600 in the file, 3600 in the kernel)"* ]] &&
	[ "$(jqs A sa show $SID | jq -r .rekey_seconds)" = 3600 ] && [ "$(cat "$work/runA/ab.qkdd.pid")" = "$pid_before" ] &&
	alive "$pid_before"
st $? "up with another [sa] rekey-seconds: exit 2 ($r), FILE:$line and the field named, the binding (rekey-seconds ${rk0:-?}) and qkdd untouched"

for s in A B; do
	pid=$(cat "$work/run$s/ab.qkdd.pid")
	down $s >"$work/down$s.out" 2>&1
	r=$?
	diag <"$work/down$s.out"
	check "site $s: qkdctl down exits 0 ($r)" [ $r = 0 ]
	[ "$(jqs $s link show | jq -c 'map(.name)')" = '["ab"]' ] &&
		[ "$(jqs $s stream show | jq -c 'map(.stream)')" = "[\"$SID\"]" ] &&
		[ "$(jqs $s sa show | jq -c .)" = "[]" ]
	st $? "site $s: down: the binding gone, the link and the stream kept ($(jqs $s stream show $SID | jq -r .stored_keys) keys stored)"
	! alive "$pid" && [ ! -e "$work/run$s/ab.qkdd.pid" ] && [ ! -e "$work/run$s/ab.qkdd.conf" ]
	st $? "site $s: qkdd (pid $pid) stopped, its pid and configuration files removed"
	check "site $s: no xfrm state left" [ -z "$(ip netns exec site$s ip xfrm state)" ]
	down $s >"$work/down2$s.out" 2>&1
	st $? "site $s: down again: exit 0, nothing to do"
	down $s --purge >"$work/down3$s.out" 2>&1
	r=$?
	diag <"$work/down3$s.out"
	[ $r = 0 ] && [ "$(jqs $s link show | jq -c .)" = "[]" ] && [ "$(jqs $s stream show | jq -c .)" = "[]" ]
	st $? "site $s: down --purge ($r): the stream and the link deleted, nothing left"
	down $s --purge >"$work/down4$s.out" 2>&1
	st $? "site $s: down --purge again: exit 0, nothing to do"
done

# ---- again without [sa]: keys an application takes -------------------------------
# (a stream with an SA binding gives no key to /dev/qkd: the binding owns it)
rm -f "$work/A.psk" "$work/B.psk"
check "a fresh PSK pair (qkdd consumed the first)" "$Q" genpsk "$work/A.psk" "$work/B.psk"
conf A initiator alice "peer = $BB:7100" $AA $BB >"$work/A.conf"
conf B responder bob "listen = $BB:7100" $BB $AA >"$work/B.conf"
up B >"$work/upB.out" 2>&1; rb=$?
up A >"$work/upA.out" 2>&1; ra=$?
diag <"$work/upA.out"
[ "$ra" = 0 ] && [ "$rb" = 0 ]; st $? "up at both sites, no SA (A $ra, B $rb)"
na=0 nb=0
# (no site up: no key will come)
for _ in $( { [ "$ra" = 0 ] && [ "$rb" = 0 ]; } && seq 600); do
	na=$(next_index A); nb=$(next_index B)
	[ "${na:-0}" -gt 100 ] && [ "${nb:-0}" -gt 100 ] && break
	sleep 1
done
echo "# next_index: A ${na:-?}, B ${nb:-?}"
ka=$($A "$Q" key get $SID index 100 2>&1)
kb=$($B "$Q" key get $SID index 100 2>&1)
[ -n "$ka" ] && [ "$ka" = "$kb" ] && [ "$(echo "$ka" | cut -f3 | wc -c)" = 65 ]
st $? "keys flow: key 100 taken at both sites, the same ($(echo "$ka" | cut -f3 | cut -c1-16)...)"

# ---- down keeps the keys; up adopts them, or refuses another stream ----------------
stored() { jqs "$1" stream show $SID | jq -r '.stored_keys // 0' 2>/dev/null || echo 0; }
for s in A B; do
	down $s >"$work/down$s.out" 2>&1
	r=$?
	diag <"$work/down$s.out"
	[ $r = 0 ] && [ ! -e "$work/run$s/ab.qkdd.pid" ] && [ "$(stored $s)" -gt 0 ] &&
		grep -q "stream $SID kept with its $(stored $s) stored keys" "$work/down$s.out"
	st $? "site $s: down ($r): qkdd stopped, the stream kept with its $(stored $s) keys"
done
# an index both sites still hold: the highest stored at both
ni=$(next_index A)
[ "$(next_index B)" -lt "$ni" ] && ni=$(next_index B)
last=$((ni - 1))
ka=$($A "$Q" key get $SID index $((last - 1)) 2>&1)
kb=$($B "$Q" key get $SID index $((last - 1)) 2>&1)
[ -n "$ka" ] && [ "$ka" = "$kb" ] && [ "$(echo "$ka" | cut -f3 | wc -c)" = 65 ]
st $? "after down: key $((last - 1)), stored before, taken at both sites, the same"
sa1=$(stored A)

sed 's/^max-keys = 16384$/max-keys = 8192/' "$work/A.conf" >"$work/Amk.conf"
line=$(grep -n '^\[stream' "$work/Amk.conf" | cut -d: -f1)
o=$($A "$Q" up -c "$work/Amk.conf" --run-dir "$work/runA" ab 2>&1); r=$?
echo "$o" | diag
[ $r = 2 ] && [[ $o == *"Amk.conf:$line: stream $SID exists with other parameters (max-keys: 8192 in the file, 16384 in the kernel): not adopted, nothing changed, its $sa1 stored keys kept"* ]] &&
	[ "$(stored A)" = "$sa1" ] && [ "$(jqs A stream show $SID | jq -r .max_keys)" = 16384 ] &&
	[ ! -e "$work/runA/ab.qkdd.pid" ]
st $? "up with another max-keys: exit 2 ($r), FILE:$line and the field named, no qkdd, the stream's $sa1 keys kept"

check "a fresh PSK pair (this qkdd has no state directory)" \
	"$Q" genpsk "$work/A2.psk" "$work/B2.psk"
mv "$work/A2.psk" "$work/A.psk"
mv "$work/B2.psk" "$work/B.psk"
up B >"$work/upB.out" 2>&1; rb=$?
up A >"$work/upA.out" 2>&1; ra=$?
diag <"$work/upA.out"
[ "$ra" = 0 ] && [ "$rb" = 0 ] && grep -q "stream $SID exists with [0-9]* stored keys: adopted" "$work/upA.out" &&
	grep -q "link ab exists: adopted" "$work/upA.out"
st $? "up again at both sites (A $ra, B $rb): the link and the stream adopted"
ka=$($A "$Q" key get $SID index "$last" 2>&1)
kb=$($B "$Q" key get $SID index "$last" 2>&1)
[ -n "$ka" ] && [ "$ka" = "$kb" ] && [ "$(echo "$ka" | cut -f3 | wc -c)" = 65 ]
st $? "after down and up: key $last, stored before, taken at both sites, the same"
for _ in $( { [ "$ra" = 0 ] && [ "$rb" = 0 ]; } && seq 300); do
	[ "$(next_index A)" -gt "$ni" ] && [ "$(next_index B)" -gt "$ni" ] && break
	sleep 1
done
[ "$(next_index A)" -gt "$ni" ] && [ "$(next_index B)" -gt "$ni" ]
st $? "new keys flow after the adoption (next_index $ni before, A $(next_index A), B $(next_index B))"

for s in A B; do
	down $s --purge >"$work/down$s.out" 2>&1
	r=$?
	diag <"$work/down$s.out"
	[ $r = 0 ] && [ "$(jqs $s link show | jq -c .)" = "[]" ] && [ ! -e "$work/run$s/ab.qkdd.pid" ]
	st $? "site $s: down --purge ($r): nothing left"
done

# ---- --foreground, as qkd@.service runs it: qkdctl becomes qkdd ------------------
rm -f "$work/A.psk" "$work/B.psk"
"$Q" genpsk "$work/A.psk" "$work/B.psk" >/dev/null 2>&1
$A "$Q" up --foreground -c "$work/A.conf" --run-dir "$work/runA" ab >"$work/fg.out" 2>&1 &
fp=$!
pids+=("$fp")
for _ in $(seq 50); do
	[ "$(cat "/proc/$fp/comm" 2>/dev/null)" = qkdd ] && break
	sleep 0.2
done
diag <"$work/fg.out"
[ "$(cat "/proc/$fp/comm" 2>/dev/null)" = qkdd ] && [ "$(cat "$work/runA/ab.qkdd.pid" 2>/dev/null)" = "$fp" ] &&
	grep -qz -- "$work/runA/ab.qkdd.conf" "/proc/$fp/cmdline" && [ "$(jqs A link show | jq -c 'map(.name)')" = '["ab"]' ]
st $? "up --foreground: the link and the stream made, then qkdctl (pid $fp) became qkdd (exec, the same pid in ab.qkdd.pid)"
kill -TERM "$fp"
wait "$fp"
r=$?
[ $r = 0 ] && [ "$(jqs A stream show | jq -c 'map(.stream)')" = "[\"$SID\"]" ]
st $? "SIGTERM: qkdd exits 0 ($r), the stream stays"
grep -v '^\[daemon\]\|^role = alice\|^peer = [0-9]\|^psk\|^block\|^channel\|^timeout\|^simul' "$work/A.conf" >"$work/nod.conf"
$A "$Q" up --foreground -c "$work/nod.conf" --run-dir "$work/runA" ab >"$work/fg.out" 2>&1 &
fp=$!
pids+=("$fp")
for _ in $(seq 50); do
	grep -q "waiting for SIGTERM" "$work/fg.out" && break
	sleep 0.2
done
kill -HUP "$fp"
sleep 0.5
diag <"$work/fg.out"
grep -q "stream $SID exists with [0-9]* stored keys: adopted" "$work/fg.out" &&
	[ "$(cat "/proc/$fp/comm" 2>/dev/null)" = qkdctl ]
fg_ok=$?
alive "$fp" && kill -TERM "$fp"
wait "$fp"
r=$?
[ "$fg_ok" = 0 ] && [ $r = 0 ] && [ "$(jqs A stream show | jq -c 'map(.stream)')" = "[\"$SID\"]" ]
st $? "up --foreground without [daemon]: the stream adopted, qkdctl waits (SIGHUP ignored), SIGTERM ends it with 0 ($r), the stream stays"
down A --purge >/dev/null 2>&1
check "down --purge after --foreground: nothing left at A" [ "$(jqs A link show | jq -c .)" = "[]" ]

# ---- broken configurations leave nothing behind --------------------------------
nothing_at_A() {
	[ "$(jqs A link show | jq -c 'map(.name)')" = "${1:-[]}" ] &&
	[ "$(jqs A stream show | jq -c 'map(.stream)')" = "${2:-[]}" ] &&
	[ ! -e "$work/runA/ab.qkdd.pid" ] && ! pgrep -f "$work/runA/ab.qkdd.conf" >/dev/null
}
sed 's/^key-size = 32$/key-size = 32 32/' "$work/A.conf" >"$work/bad1.conf"
line=$(grep -n '^key-size' "$work/bad1.conf" | cut -d: -f1)
o=$($A "$Q" up -c "$work/bad1.conf" --run-dir "$work/runA" ab 2>&1); r=$?
echo "$o" | diag
[ $r = 2 ] && [[ $o == *"$work/bad1.conf:$line: "* ]] && nothing_at_A
st $? "syntax error: exit 2 ($r), FILE:$line named, nothing made"

(head -c 65536 /dev/urandom >"$work/A.psk"; chmod 600 "$work/A.psk")
sed 's/^timeout = 300$/frobnicate = 1/' "$work/A.conf" | grep -v '^\[sa\|^local\|^remote\|^first-index\|^key-bits\|^rekey' >"$work/bad2.conf"
line=$(grep -n '^frobnicate' "$work/bad2.conf" | cut -d: -f1)
o=$($A "$Q" up -c "$work/bad2.conf" --run-dir "$work/runA" ab 2>&1); r=$?
echo "$o" | diag
[ $r = 2 ] && [[ $o == *":$line: unknown option"* ]] && [[ $o == *"undo: link del ab"* ]] && nothing_at_A
st $? "an option qkdd refuses: exit 2 ($r), qkdd's error at line $line, link and stream undone"

$A "$Q" link add other role initiator >/dev/null && $A "$Q" stream add $OTHER link other key-size 32 >/dev/null
{ grep -v '^\[daemon\]\|^role = alice\|^peer = \|^psk\|^block\|^channel\|^timeout\|^simul\|^\[sa\|^local\|^remote\|^first-index\|^key-bits\|^rekey' "$work/A.conf"
  printf '[stream %s]\nkey-size = 32\n' $OTHER; } >"$work/bad3.conf"
o=$($A "$Q" up -c "$work/bad3.conf" --run-dir "$work/runA" ab 2>&1); r=$?
echo "$o" | diag
[ $r = 1 ] && [[ $o == *"exists on link other"* ]] && nothing_at_A '["other"]' "[\"$OTHER\"]"
st $? "a stream of another link, refused part-way: exit 1 ($r), ab and its first stream undone, link other kept"

conf A initiator alice "peer = $BB:7100" $AA $BB sa |
	sed 's/^local = .*/local = 10.98.0.300/' >"$work/bad4.conf"
line=$(grep -n '^\[sa' "$work/bad4.conf" | cut -d: -f1)
o=$($A "$Q" up -c "$work/bad4.conf" --run-dir "$work/runA" ab 2>&1); r=$?
echo "$o" | diag
[ $r = 2 ] && [[ $o == *"bad4.conf:$line: [sa $SID]"* ]] && nothing_at_A '["other"]' "[\"$OTHER\"]"
st $? "a bad [sa] address: exit 2 ($r), [sa] at line $line named, nothing made"

o=$($A "$Q" up -c "$work/nosuch.conf" ab 2>&1); r=$?
[ $r = 1 ] && [[ $o == *"nosuch.conf: No such file"* ]]
st $? "a missing file: exit 1 ($r), the file named"

echo "1..$n"
echo "$((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
