#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdctl_smoke.sh QKD_KO [QKDCTL]
#
# Guest-side smoke test of qkdctl against the real module: loads QKD_KO
# (unless the module is already loaded and QKD_KO is "-"), then drives
# links, streams, key push/get/flush, show -j, status and monitor through
# qkdctl (default build/qkdctl), checking every output. Run as root inside
# the VM from the repo top, e.g.
#   tests/vm/run-vm.sh -- tests/e2e/qkdctl_smoke.sh build/kmod/$KVER/qkd.ko
# Prints one TAP line per check and "N passed, N failed"; exits non-zero on
# any mismatch. Needs jq.
set -u

ko=${1:?usage: $0 QKD_KO [QKDCTL]}
Q=${2:-build/qkdctl}
pass=0
fail=0
n=0
tmp=$(mktemp -d /tmp/qkdctl-smoke.XXXXXX)
mon_pid=
mont_pids=()

cleanup() {
	[ -z "$mon_pid" ] || kill "$mon_pid" 2>/dev/null
	[ ${#mont_pids[@]} -eq 0 ] || kill "${mont_pids[@]}" 2>/dev/null
	ip netns del qkdsmoke 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() {
	n=$((n + 1)); pass=$((pass + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	shift
	[ $# -eq 0 ] || printf '#   %s\n' "$@"
}
# check DESC EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3"; fi
}
# run DESC WANT_RC CMD...: runs qkdctl, keeps stdout in $out, stderr in $err
run() {
	local desc=$1 want=$2 rc=0
	shift 2
	"$Q" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
	if [ "$rc" = "$want" ]; then
		ok "$desc (exit $rc)"
	else
		not_ok "$desc" "qkdctl $*" "exit $rc, wanted $want" "stderr: $err"
	fi
}
hexof() {	# hexof FILE SKIP_BYTES COUNT_BYTES
	od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'
}

command -v jq >/dev/null || { echo "Bail out! jq is needed"; exit 1; }
[ -x "$Q" ] || { echo "Bail out! $Q is not built"; exit 1; }
echo "TAP version 13"

if [ "$ko" != - ]; then
	if insmod "$ko"; then ok "insmod $ko"; else echo "Bail out! insmod $ko failed"; exit 1; fi
fi
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -c /dev/qkd ] && break; sleep 0.2; done
if [ -c /dev/qkd ]; then ok "/dev/qkd exists"; else not_ok "/dev/qkd exists"; fi

S=5f0c7a3e-1b2d-4c6e-8f10-112233445500	# key size 32
S2=5f0c7a3e-1b2d-4c6e-8f10-aabbccdd0000	# key size 16, large pushes
S3=5f0c7a3e-1b2d-4c6e-8f10-36363636ff00	# key size 36, ip-xfrm

# ---- monitor in the background ---------------------------------------------
"$Q" monitor >"$tmp/mon" 2>"$tmp/mon.err" &
mon_pid=$!
"$Q" -j monitor >"$tmp/monj" 2>&1 &
monj_pid=$!
# timestamps: monitor's own -t, and --timestamp before the object (-j)
"$Q" monitor -t >"$tmp/mont" 2>&1 &
mont_pids=($!)
"$Q" -j --timestamp monitor >"$tmp/montj" 2>&1 &
mont_pids+=($!)
sleep 0.5

# ---- links -----------------------------------------------------------------
run "link add alice" 0 link add alice role initiator peer "bob at site B"
run "link add bob id 7" 0 -j link add bob role responder id 7
check "link add -j replies the link" "7 bob responder down" \
	"$(echo "$out" | jq -r '"\(.id) \(.name) \(.role) \(.state)"')"
run "link add duplicate name" 1 link add alice role responder
case $err in
"qkdctl: link add: File exists"*) ok "duplicate name: EEXIST message" ;;
*) not_ok "duplicate name: EEXIST message" "stderr: $err" ;;
esac
run "link add duplicate id" 1 link add carol role responder id 7
run "link add bad role" 2 link add carol role eve
run "link set alice up" 0 link set alice state up
run "link show alice -j" 0 -j link show alice
# Up with no stream is up: exhausted means streams, but not one key.
check "link show -j fields" "1 alice initiator up bob at site B 0" \
	"$(echo "$out" | jq -r '"\(.id) \(.name) \(.role) \(.state) \(.peer) \(.streams)"')"
run "link show id 7 -t" 0 -t link show id 7
check "link show -t" "7	bob	responder	down		0	0	0	0	0	0" "$out"
run "link show (all) -j" 0 -j link show
check "link dump has 2 links" "alice,bob" "$(echo "$out" | jq -r 'map(.name) | sort | join(",")')"
run "link show human" 0 link show alice
case $out in
"1: alice: role initiator state up peer bob at site B"*) ok "link show human format" ;;
*) not_ok "link show human format" "$out" ;;
esac
run "link show missing" 1 link show nosuch
run "link set exhausted refused" 2 link set alice state exhausted

# ---- -p: pretty JSON -------------------------------------------------------------
run "-j -p link show alice" 0 -j -p link show alice
pretty=$out
run "-j link show alice" 0 -j link show alice
check "-p: the same JSON as -j" "$(echo "$out" | jq -S -c .)" "$(echo "$pretty" | jq -S -c . 2>&1)"
check "-p: one member a line, four spaces" "yes" \
	"$(echo "$pretty" | grep -qx '    "name": "alice",' && [ "$(echo "$pretty" | wc -l)" -gt 5 ] && echo yes)"
check "-j alone: one line" "1" "$(echo "$out" | wc -l)"
run "--pretty --json link show (array)" 0 --pretty --json link show
check "-p array: items indented" "yes" "$(echo "$out" | grep -qx '    {' && echo "$out" | jq -e 'length == 2' >/dev/null && echo yes)"

# ---- -n NETNS: the store of another network namespace (as ip -n) ---------------
if ip netns add qkdsmoke 2>/dev/null; then
	run "-n qkdsmoke link show: its own empty store" 0 -n qkdsmoke -j link show
	check "-n: no links of the caller's namespace" "[]" "$(echo "$out" | jq -c .)"
	run "-n qkdsmoke link add nsl" 0 -n qkdsmoke link add nsl role initiator
	run "-n qkdsmoke stream add" 0 -n qkdsmoke stream add 5f0c7a3e-1b2d-4c6e-8f10-4e5300000000 link nsl key-size 16
	head -c 32 /dev/urandom >"$tmp/kns"
	run "-n qkdsmoke key push" 0 -n qkdsmoke key push 5f0c7a3e-1b2d-4c6e-8f10-4e5300000000 index 0 file "$tmp/kns"
	check "-n: the link is in that namespace (ip netns exec sees it)" "nsl" \
		"$(ip netns exec qkdsmoke "$Q" -j link show | jq -r 'map(.name) | join(",")')"
	run "link show nsl in the caller's namespace" 1 link show nsl
	# /dev/qkd too is opened in that namespace: the key pushed there comes back
	run "-n qkdsmoke key get (through /dev/qkd)" 0 -n qkdsmoke key get 5f0c7a3e-1b2d-4c6e-8f10-4e5300000000 index 0
	check "-n: /dev/qkd of that namespace gives its key" "$(hexof "$tmp/kns" 0 16)" "$(echo "$out" | cut -f3)"
	run "-n nosuch: exit 1" 1 -n qkd-no-such-netns link show
	case $err in *"qkd-no-such-netns"*"No such file"*) ok "-n nosuch: names it" ;; *) not_ok "-n nosuch: names it" "$err" ;; esac
	run "-n a/b: not a name, exit 2" 2 -n a/b link show
	ip netns del qkdsmoke
else
	echo "# SKIP -n: ip netns add failed"
fi

# ---- link names ---------------------------------------------------------------
run "link add with a space: exit 2" 2 link add "a b" role initiator
case $err in *"only letters, digits"*) ok "bad link name: the reason" ;; *) not_ok "bad link name: the reason" "$err" ;; esac

# ---- namespaces and permissions ----------------------------------------------
if command -v unshare >/dev/null; then
	o=$(unshare -n "$Q" -j link show 2>&1)
	check "another netns sees no links" "[]" "$o"
	o=$(unshare -U "$Q" link show 2>&1); rc=$?
	check "no CAP_NET_ADMIN in the initial userns: EPERM, exit 1" \
		"1 qkdctl: link show: Operation not permitted" "$rc $o"
fi

# ---- streams ---------------------------------------------------------------
run "stream add S" 0 stream add "$S" link alice key-size 32 max-keys 100 low-water 2
run "stream add S2" 0 -j stream add "$S2" link id 1 key-size 16
check "stream add -j reply" "$S2 1 16 0" \
	"$(echo "$out" | jq -r '"\(.stream) \(.link_id) \(.key_size) \(.stored_keys)"')"
run "stream add S3" 0 stream add "$S3" link bob key-size 36
run "stream add duplicate" 1 stream add "$S" link alice key-size 32
run "stream add no link" 1 stream add 5f0c7a3e-1b2d-4c6e-8f10-000000000001 link nosuch key-size 32
run "stream add bad key size" 1 stream add 5f0c7a3e-1b2d-4c6e-8f10-000000000001 link alice key-size 8
# The policy's range check answers ERANGE (abi.md says EINVAL); either way
# the extended ACK must name the attribute.
case $err in
"qkdctl: stream add: "*": "*"stream-key-size"*) ok "key-size 8: extack names the attribute ($err)" ;;
*) not_ok "key-size 8: extack names the attribute" "$err" ;;
esac
run "stream set S low-water" 0 stream set "$S" low-water 1
run "stream show S -j" 0 -j stream show "$S"
check "stream show -j" "$S 1 alice 32 100 1 0 0" \
	"$(echo "$out" | jq -r '"\(.stream) \(.link_id) \(.link) \(.key_size) \(.max_keys) \(.low_water) \(.stored_keys) \(.next_index)"')"
run "stream show link alice" 0 -j stream show link alice
check "stream dump filtered by link" "$S,$S2" "$(echo "$out" | jq -r 'map(.stream) | sort | join(",")')"
run "stream show link id 7" 0 -t stream show link id 7
check "stream dump -t link 7" "$S3" "$(echo "$out" | cut -f1)"

# ---- key push ----------------------------------------------------------------
head -c 128 /dev/urandom >"$tmp/k4"	# 4 keys of 32 bytes
run "key push 4 keys from a file" 0 key push "$S" index 0 file "$tmp/k4"
run "link up with keys" 0 -j link show alice
check "link state up once it holds keys" "up 4 128" "$(echo "$out" | jq -r '"\(.state) \(.keys_stored) \(.bytes_stored)"')"
run "key status S" 0 -j key status "$S"
check "key status after push" "1 32 4 100 0" \
	"$(echo "$out" | jq -r '"\(.link_id) \(.key_size) \(.stored_key_count) \(.max_key_count) \(.next_index)"')"
run "key push overlap" 1 key push "$S" index 2 file "$tmp/k4"
case $err in
"qkdctl: key push: File exists"*) ok "overlap: EEXIST ($err)" ;;
*) not_ok "overlap: EEXIST" "$err" ;;
esac
head -c 33 /dev/urandom >"$tmp/k33"
run "key push not a multiple" 2 key push "$S" index 10 file "$tmp/k33"
# Two more keys as hex text on stdin at the next index (4).
hexof "$tmp/k4" 0 64 | sed 's/../& /g' >"$tmp/k2.hex"
if "$Q" key push "$S" index next hex <"$tmp/k2.hex"; then ok "key push hex from stdin"; else not_ok "key push hex from stdin"; fi
run "stream show S -t" 0 -t stream show "$S"
check "stored 6, next index 6" "6 6" "$(echo "$out" | cut -f6,7 | tr '\t' ' ')"

# ---- key get -------------------------------------------------------------------
run "key get next" 0 key get "$S"
check "key get next: index, key_id, key" "0	$S	$(hexof "$tmp/k4" 0 32)" "$out"
run "key get index 2" 0 key get "$S" index 2
check "key get index 2" "2	5f0c7a3e-1b2d-4c6e-8f10-112233445502	$(hexof "$tmp/k4" 64 32)" "$out"
run "key get key-id (index 1)" 0 -j key get "$S" key-id 5f0c7a3e-1b2d-4c6e-8f10-112233445501
check "key get key-id -j" "1 $(hexof "$tmp/k4" 32 32)" "$(echo "$out" | jq -r '"\(.index) \(.key)"')"
run "key get index 1 again" 1 key get "$S" index 1
case $err in *"Key has expired"*) ok "second delivery: EKEYEXPIRED" ;; *) not_ok "second delivery: EKEYEXPIRED" "$err" ;; esac
run "key get index 50 (not pushed)" 1 key get "$S" index 50
case $err in *"Required key not available"*) ok "unpushed index: ENOKEY" ;; *) not_ok "unpushed index: ENOKEY" "$err" ;; esac
run "key get base64" 0 key get "$S" format base64
want=$(head -c 128 "$tmp/k4" | tail -c 32 | base64 -w0)
check "key get next = index 3 base64" "3	5f0c7a3e-1b2d-4c6e-8f10-112233445503	$want" "$out"
if "$Q" key get "$S" format raw >"$tmp/raw"; then ok "key get raw"; else not_ok "key get raw"; fi
check "raw key = hex key pushed at 4" "$(hexof "$tmp/k4" 0 32)" "$(hexof "$tmp/raw" 0 64)"
run "key get ip-xfrm on 32-byte keys refused" 1 key get "$S" format ip-xfrm
case $err in *"20, 28 or 36 bytes"*) ok "ip-xfrm size message" ;; *) not_ok "ip-xfrm size message" "$err" ;; esac
run "key status after ip-xfrm refusal" 0 -t key status "$S"
check "nothing taken by the refusal" "1" "$(echo "$out" | cut -f4)"
run "key flush S" 0 key flush "$S"
run "key get on empty" 1 key get "$S"
case $err in *"no key"*) ok "empty stream: EAGAIN hint" ;; *) not_ok "empty stream: EAGAIN hint" "$err" ;; esac

head -c 72 /dev/urandom >"$tmp/k36"
run "key push 36-byte keys" 0 key push "$S3" index 100 file "$tmp/k36"
run "stream set S3 low-water 2" 0 -t stream set "$S3" low-water 2
check "stream set -t reply: low water, stored" "2 2" "$(echo "$out" | cut -f5,6 | tr '\t' ' ')"
run "key get ip-xfrm" 0 key get "$S3" format ip-xfrm
check "ip-xfrm key" "100	5f0c7a3e-1b2d-4c6e-8f10-36363636ff64	0x$(hexof "$tmp/k36" 0 36)" "$out"

# ---- a push larger than one batch ----------------------------------------------
head -c 48000 /dev/urandom >"$tmp/k3000"	# 3000 keys of 16: 2 batches
run "key push 48000 bytes (2 KEY_ADD batches)" 0 -j key push "$S2" index 1000 file "$tmp/k3000"
check "push -j summary" "1000 3000" "$(echo "$out" | jq -r '"\(.first_index) \(.count)"')"
run "stream show S2" 0 -j stream show "$S2"
check "3000 stored, next index 4000" "3000 4000" "$(echo "$out" | jq -r '"\(.stored_keys) \(.next_index)"')"
run "key get S2 index 3999 (second batch)" 0 key get "$S2" index 3999
check "last key of the second batch" "$(hexof "$tmp/k3000" 47984 16)" "$(echo "$out" | cut -f3)"
run "key get S2 index 3048 (batch boundary)" 0 key get "$S2" index 3048
check "first key of the second batch" "$(hexof "$tmp/k3000" 32768 16)" "$(echo "$out" | cut -f3)"
# number N (ETSI 014 "number"): a range by index, each refusal on its own line
run "key get S2 index 3046 number 4 (3048 taken)" 1 key get "$S2" index 3046 number 4
check "number: three keys, in index order" "3046 3047 3049" "$(echo "$out" | cut -f1 | tr '\n' ' ' | sed 's/ $//')"
check "number: the third is the key at 3049" "$(hexof "$tmp/k3000" 32784 16)" "$(echo "$out" | sed -n 3p | cut -f3)"
case $err in *"index 3048: "*"Key has expired"*"3 of 4 keys taken"*) ok "number: the taken index refused by name, then a summary" ;;
*) not_ok "number: refusal of index 3048 and summary" "$err" ;; esac
run "key get S2 number 2 -j (next keys, one GET_KEYS)" 0 -j key get "$S2" number 2
check "number -j: an array of the two lowest keys" "1000 1001" "$(echo "$out" | jq -r 'map(.index) | join(" ")')"
check "number -j: their bytes" "$(hexof "$tmp/k3000" 0 32)" "$(echo "$out" | jq -r 'map(.key) | join("")')"
run "key get S2 number 256 -t" 0 -t key get "$S2" number 256
check "number 256: indices 1002..1257" "1002 1257 256" "$(echo "$out" | awk 'NR == 1 { f = $1 } { l = $1 } END { print f, l, NR }')"
run "key get S2 number 257 refused" 2 key get "$S2" number 257
run "key get S3 number 2 with one key stored: all or nothing" 1 key get "$S3" number 2
case $err in *"fewer than 2 keys (none taken)"*) ok "number: fewer stored, none taken ($err)" ;;
*) not_ok "number: fewer stored, none taken" "$err" ;; esac
run "S3 still holds its key" 0 -t key status "$S3"
check "S3 stored 1 after the refused request" "1" "$(echo "$out" | cut -f4)"
run "key get number with key-id refused" 2 key get "$S2" key-id 5f0c7a3e-1b2d-4c6e-8f10-aabbccdd03ea number 2
case $err in *"not with key-id"*) ok "number with key-id: usage message" ;; *) not_ok "number with key-id: usage message" "$err" ;; esac

# ---- status --------------------------------------------------------------------
run "status -j" 0 -j status
check "status counts (ABI 2)" "2 2 3" "$(echo "$out" | jq -r '"\(.abi_version) \(.links) \(.streams)"')"
check "added = delivered + flushed + stored" "true" \
	"$(echo "$out" | jq -r '.keys_added == .keys_delivered + .keys_flushed + .keys_stored')"
run "status human" 0 status

# ---- what a person sees (into the log, as TAP comments) ---------------------------
for c in "link show" "stream show" "status" "key status $S2" "-t stream show"; do
	echo "# \$ qkdctl $c"
	# shellcheck disable=SC2086 # word splitting wanted
	"$Q" $c 2>&1 | sed 's/^/#   /'
done

# ---- deletion --------------------------------------------------------------------
run "stream del S" 0 stream del "$S"
run "stream del S again" 1 stream del "$S"
run "key status of deleted stream" 1 key status "$S"
run "link del alice (and S2)" 0 link del alice
run "stream show S2 gone" 1 stream show "$S2"
run "link del id 7" 0 link del id 7
run "link show empty" 0 -j link show
check "no links left" "[]" "$(echo "$out" | jq -c .)"
run "status after deletion" 0 -j status
check "status: 0 links 0 streams 0 stored" "0 0 0" \
	"$(echo "$out" | jq -r '"\(.links) \(.streams) \(.keys_stored)"')"

# ---- monitor ---------------------------------------------------------------------
sleep 0.5
kill -INT "$mon_pid" "$monj_pid"
wait "$mon_pid"; mrc=$?
wait "$monj_pid"
mon_pid=
check "monitor exits 0 on SIGINT" 0 "$mrc"
if grep -q "^link-state link 1 name alice state exhausted" "$tmp/mon"; then
	ok "monitor: link-state exhausted"
else
	not_ok "monitor: link-state exhausted" "$(head -5 "$tmp/mon")"
fi
if grep -q "^link-state link 1 name alice state up" "$tmp/mon"; then
	ok "monitor: link-state up"
else
	not_ok "monitor: link-state up" "$(head -5 "$tmp/mon")"
fi
if grep -q "^keys-added stream $S2 link 1 first-index 1000 count 2048 stored 2048" "$tmp/mon"; then
	ok "monitor: keys-added (first batch)"
else
	not_ok "monitor: keys-added (first batch)" "$(grep keys-added "$tmp/mon" | head -3)"
fi
if grep -q "^stream-low stream $S3 link 7 stored 1 low-water 2" "$tmp/mon"; then
	ok "monitor: stream-low"
else
	not_ok "monitor: stream-low" "$(grep stream-low "$tmp/mon")"
fi
if grep -q "^stream-del stream $S" "$tmp/mon"; then ok "monitor: stream-del"; else not_ok "monitor: stream-del"; fi
if grep -q "^link-del link 7 name bob" "$tmp/mon"; then ok "monitor: link-del"; else not_ok "monitor: link-del"; fi
if grep -q "^stream-empty stream $S" "$tmp/mon"; then ok "monitor: stream-empty"; else not_ok "monitor: stream-empty"; fi
kill -INT "${mont_pids[@]}"
wait "${mont_pids[@]}"
mont_pids=()
ts='\[20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{6}Z\]'
if grep -qE "^$ts link-state link 1 name alice state up" "$tmp/mont" &&
	! grep -qvE "^$ts " "$tmp/mont"; then
	ok "monitor -t: every line starts with [UTC time]"
else
	not_ok "monitor -t: every line starts with [UTC time]" "$(head -3 "$tmp/mont")"
fi
if jq -e -s 'length > 5 and all(.time | test("^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$"))' "$tmp/montj" >/dev/null; then
	ok "--timestamp -j monitor: a time member in every event"
else
	not_ok "--timestamp -j monitor: a time member in every event" "$(head -3 "$tmp/montj")"
fi
if jq -e -s 'map(select(.event == "keys-added" and .count == 952)) | length == 1' "$tmp/monj" >/dev/null; then
	ok "monitor -j: JSON lines, second batch of 952"
else
	not_ok "monitor -j: JSON lines" "$(head -3 "$tmp/monj")"
fi

if [ "$ko" != - ]; then
	if rmmod qkd; then ok "rmmod qkd"; else not_ok "rmmod qkd"; fi
fi
echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
