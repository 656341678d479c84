#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/robust/qkdd_crash.sh [-n KILLS] [-s SEED] [-t SECONDS] [-b BLOCK_BITS]
#                            [-c CHECK_EVERY] [-d MAX_DELAY_MS] [-k KEYS]
#                            [QKD_KO]
#
# qkdd killed with SIGKILL at random points, against the real kernel
# stores, in the VM (root; loads QKD_KO unless the module is loaded):
# two sites are two netns joined by veth, each with a link and a stream;
# a qkdd pair (PSK bootstrap, --state-dir, small rounds) runs between
# them. KILLS times, after a random delay (seeded: the seed is printed),
# Alice, Bob or both get SIGKILL and are restarted from their state files
# (no fresh PSK). Half of the starts (seeded) push each block in KEY_ADD
# messages of at most KEYS keys (default 4; QKDD_PUSH_BATCH_KEYS), as qkdd
# does with blocks over 32 KiB, so that kills also land between the
# messages of one block; -k 0: one message per block always. Half of the
# kills strike 0-3 ms after a batch reached
# Bob's store (inside the commit), the others after a random delay; after
# a commit-time kill of Alice the next one waits for Bob's orphan removal
# and kills him in it. Half of the restarts (seeded) wait until a new
# block reached both stores, the others are hit again at once. Every
# CHECK_EVERY kills, and at the end, both daemons are stopped with SIGTERM
# and both stores are compared by taking every index since the last
# check at both sites (consumed at both ends equally):
#   - both next_index counters agree;
#   - every index gives the same key at both sites or a refusal at both:
#     no key present on one side only, no two different keys;
#   - every KEYS_ADDED event (a KEY_ADD batch, from `qkdctl monitor` at
#     each site) is whole: all of its keys present, or none (removed as an
#     orphan) -- no half batch visible, but for a batch inside a block cut
#     as below: exactly the block's kept keys; the events add up to the
#     stream's keys_added counter;
#   - every block (a round's keys, from the daemons' "ok:" lines) is whole
#     at each site, however many messages it took -- but for a block Bob
#     committed whose push Alice's kill cut short: its first keys, the
#     ones she pushed (her restart logs how many), stay at both sites;
#   - nothing is left stored outside the range;
# then the pair is restarted. At the end the rounds must still deliver.
# Prints TAP, the figures, and "N passed, N failed". SECONDS caps the
# kill loop against a hang (the checks still run); a loop that hits the
# cap before its last kill fails.
set -u
kills=40 seed=$(date +%s) secs=170 bbits=16384 every=4 maxdelay=2500 kpm=4
while getopts n:s:t:b:c:d:k: o; do
	case $o in
	n) kills=$OPTARG ;;
	s) seed=$OPTARG ;;
	t) secs=$OPTARG ;;
	b) bbits=$OPTARG ;;
	c) every=$OPTARG ;;
	d) maxdelay=$OPTARG ;;
	k) kpm=$OPTARG ;;
	*) echo "usage: $0 [-n KILLS] [-s SEED] [-t SECONDS] [-b BLOCK_BITS] [-c CHECK_EVERY] [-d MAX_DELAY_MS] [-k KEYS] [QKD_KO]" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
ko=${1:-}
cd "$(dirname "$0")/../.." || exit 2
UUID=5a1d3c7e-0b9f-4c2a-9e8d-7f6a5b4c3d2e
NA=qkdcrashA NB=qkdcrashB
A="ip netns exec $NA"
B="ip netns exec $NB"
PORT=7300
T=$(mktemp -d /tmp/qkdd_crash.XXXXXX)
# our own copies: a rebuild of build/ during the run changes nothing here
# (QKDD_BIN: another qkdd binary)
cp "${QKDD_BIN:-build/qkdd}" "$T/qkdd" && cp build/qkdctl "$T/" ||
	{ echo "Bail out! no build/qkdd, build/qkdctl"; exit 1; }
Q=$T/qkdctl
D=$T/qkdd
pass=0 fail=0 n=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; pass=$((pass + 1))
	else echo "not ok $n - $2"; fail=$((fail + 1)); fi
}
finish() {
	echo "1..$n"
	echo "$pass passed, $fail failed"
	[ $fail -eq 0 ]
	exit
}
RANDOM=$seed
echo "# qkdd_crash: seed $seed, $kills kills, check every $every, block $bbits bits, delays 0..$maxdelay ms, bound $secs s, split pushes: ${kpm} keys per message"

loaded=0
if ! grep -q '^qkd ' /proc/modules; then
	[ -n "$ko" ] || { echo "Bail out! module not loaded and no QKD_KO"; exit 1; }
	insmod "$ko"; ok $? "insmod qkd.ko"
	loaded=1
fi
ip netns del $NA 2>/dev/null; ip netns del $NB 2>/dev/null
ip netns add $NA && ip netns add $NB &&
ip link add vca netns $NA type veth peer name vcb netns $NB &&
$A ip addr add 10.98.0.1/24 dev vca && $B ip addr add 10.98.0.2/24 dev vcb &&
$A ip link set vca up && $B ip link set vcb up && $A ip link set lo up && $B ip link set lo up &&
$A "$Q" link add ab role initiator peer 10.98.0.2 >/dev/null &&
$A "$Q" stream add $UUID link ab key-size 32 max-keys 1000000 >/dev/null &&
$B "$Q" link add ab role responder peer 10.98.0.1 >/dev/null &&
$B "$Q" stream add $UUID link ab key-size 32 max-keys 1000000 >/dev/null
ok $? "two sites (netns, veth), a link and a stream at each"

# event listeners: one KEYS_ADDED line per KEY_ADD batch
$A "$Q" monitor > "$T/ev.alice" 2>&1 & mon_a=$!
$B "$Q" monitor > "$T/ev.bob" 2>&1 & mon_b=$!
pid_alice='' pid_bob=''
cleanup() {
	# a child of this shell killed before its exec runs the trap too
	[ "$BASHPID" = "$$" ] || return
	kill -9 $pid_alice $pid_bob 2>/dev/null
	kill $mon_a $mon_b 2>/dev/null
	wait 2>/dev/null
	ip netns del $NA 2>/dev/null; ip netns del $NB 2>/dev/null
	if [ -n "${QKDVM_RESULTS:-}" ] && [ -d "$QKDVM_RESULTS" ]; then
		# the daemons' logs (with the kills and starts), the events,
		# and the stores' contents at every check that found a problem
		for f in alice.log bob.log ev.alice ev.bob; do
			cp "$T/$f" "$QKDVM_RESULTS/qkdd_crash.$f" 2>/dev/null
		done
		for f in "$T"/check*.take; do
			[ -f "$f" ] && cp "$f" "$QKDVM_RESULTS/qkdd_crash.${f##*/}"
		done
	fi
	[ -n "${QKDD_TEST_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
	if [ $loaded = 1 ]; then
		for _ in $(seq 20); do rmmod qkd 2>/dev/null && break; sleep 0.5; done
	fi
}
trap cleanup EXIT

mkdir -p "$T/state-alice" "$T/state-bob"; chmod 700 "$T/state-alice" "$T/state-bob"
(umask 077; head -c 65536 /dev/urandom > "$T/alice.psk"; cp "$T/alice.psk" "$T/bob.psk")
# start ROLE: the daemon in its netns, in the background; $! is qkdd itself
# (ip netns exec execs it)
starts=0 split_starts=0
start() {
	local ns=$NA addr="--peer 10.98.0.2:$PORT" split=()
	[ "$1" = bob ] && ns=$NB addr="--listen 10.98.0.2:$PORT"
	starts=$((starts + 1))
	if [ "$kpm" -gt 0 ] && [ $((RANDOM % 2)) -eq 0 ]; then
		split=(env "QKDD_PUSH_BATCH_KEYS=$kpm")
		split_starts=$((split_starts + 1))
	fi
	echo "--- start $(date +%s.%N)" >> "$T/$1.log"
	# env execs qkdd as ip does: $! stays qkdd itself
	# shellcheck disable=SC2086
	ip netns exec $ns "${split[@]}" "$D" --role "$1" $addr --stream $UUID --link ab \
		--psk "$T/$1.psk" --state-dir "$T/state-$1" --rounds 0 \
		--block-bits "$bbits" --timeout 20 --retry-max 1 \
		--channel source=single-photon --simulated-channel-test-keys-only \
		--status "$T/$1.status" \
		>> "$T/$1.log" 2>&1 &
	eval "pid_$1=$!"
}
field() {	# field NETNS NAME: a number from `qkdctl -j stream show`
	ip netns exec "$1" "$Q" -j stream show $UUID 2>/dev/null |
		grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$'
}
msleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
# wait_block HI LIMIT_S: until both stores are past HI (a new block at both)
wait_block() {
	local t0=$SECONDS a b
	while [ $((SECONDS - t0)) -lt "$2" ]; do
		a=$(field $NA next_index); b=$(field $NB next_index)
		[ "${a:-0}" -gt "$1" ] && [ "${b:-0}" -gt "$1" ] && return 0
		for r in alice bob; do
			p=pid_$r
			kill -0 "${!p}" 2>/dev/null || return 1	# a daemon gave up
		done
		sleep 0.2
	done
	return 1
}
# stop both with SIGTERM (a stop never splits a block); 1 if one hung
stop_pair() {
	local rc=0
	kill -TERM $pid_alice $pid_bob 2>/dev/null
	for _ in $(seq 150); do
		kill -0 $pid_alice 2>/dev/null || kill -0 $pid_bob 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 $pid_alice 2>/dev/null || kill -0 $pid_bob 2>/dev/null; then
		kill -9 $pid_alice $pid_bob 2>/dev/null; rc=1
	fi
	wait $pid_alice $pid_bob 2>/dev/null
	pid_alice='' pid_bob=''
	return $rc
}

from=0 checks=0 divergent=0 onesided=0 halfbatch=0 halfblock=0 nextdiff=0 leftover=0
blocks=0 split_blocks=0 cut_blocks=0 cut_batches=0
common=0 refused=0 hung=0 unread=0
# take SITE FROM TO: "index key HEX" or "index refused" for [FROM, TO)
# (keys on stdout, refusals on stderr: read apart, a buffered stdout cuts
# lines where stderr would come in between)
take() {
	[ "${3:-0}" -gt "${2:-0}" ] 2>/dev/null || return 0
	ip netns exec "$1" "$Q" key get $UUID index "$2" number $(($3 - $2)) \
		> "$T/take.out" 2> "$T/take.err"
	awk -F'\t' '/^[0-9]+\t/ { print $1, "key", $3; next }
		    /^qkdctl: key get: index [0-9]+:/ { sub(/^qkdctl: key get: index /, ""); sub(/:.*/, ""); print $0, "refused" }' \
		"$T/take.out" "$T/take.err" | LC_ALL=C sort -k1,1
	rm -f "$T/take.out" "$T/take.err"
}
# check [last]: stop both, compare and consume both stores since the last
# check; restart both unless "last"
check() {
	local na nb
	checks=$((checks + 1))
	stop_pair || hung=$((hung + 1))
	na=$(field $NA next_index); nb=$(field $NB next_index)
	[ -n "$na" ] && [ "$na" = "$nb" ] || { nextdiff=$((nextdiff + 1)); echo "# check $checks: next_index alice $na, bob $nb"; }
	hi=${na:-0}; [ "${nb:-0}" -gt "$hi" ] && hi=$nb
	take $NA "$from" "$hi" > "$T/a.take"
	take $NB "$from" "$hi" > "$T/b.take"
	# every index read at each site (a key or a refusal), none twice
	for f in a b; do
		[ "$(cut -d' ' -f1 "$T/$f.take" | sort -u | wc -l)" = $((hi - from)) ] ||
			{ unread=$((unread + 1)); echo "# check $checks: $f: $(wc -l < "$T/$f.take") lines for [$from, $hi)"; }
	done
	# per index: same key, same refusal, or a divergence
	LC_ALL=C join -a1 -a2 -e none -o 0,1.2,1.3,2.2,2.3 "$T/a.take" "$T/b.take" > "$T/j" 2>/dev/null
	read -r c r d o < <(awk '{ if ($2 == "key" && $4 == "key") { if ($3 == $5) c++; else d++ }
			else if ($2 == "key" || $4 == "key") o++; else r++ }
			END { print c + 0, r + 0, d + 0, o + 0 }' "$T/j")
	common=$((common + c)); refused=$((refused + r))
	divergent=$((divergent + d)); onesided=$((onesided + o))
	[ $((d + o)) -eq 0 ] || { echo "# check $checks: [$from, $hi): $d different keys, $o keys at one site only:";
		awk '($2 == "key") != ($4 == "key") || $3 != $5 { print "#   index " $1 ": alice " $2 ", bob " $4 }' "$T/j" | head -n 10; }
	# every batch (KEYS_ADDED) in range: all of its keys taken, or none --
	# or, inside a block Alice's kill cut (see below), exactly the keys of
	# the block's kept prefix: Bob may have pushed the block in one batch
	# before he removed its tail
	for s in alice bob; do
		read -r bbad bcut < <(awk -v lo="$from" -v hi="$hi" -v s=$s -v out="$T/halfbatch" '
			FILENAME ~ /\.take$/ { st[$1] = $2; next }
			FILENAME ~ /\.log$/ { if (/was committed by the peer; its first [0-9]+ keys/) {
					for (i = 1; i < NF; i++) { if ($i == "block") cf = substr($(i + 1), 2) + 0
						if ($i == "first") cn[cf] = $(i + 1) + 0 }
					ce[cf] = $0; sub(/.*block \[[0-9]+, /, "", ce[cf]); ce[cf] += 0 }
				next }
			/^keys-added / { for (i = 1; i < NF; i++) { if ($i == "first-index") f = $(i + 1); if ($i == "count") c = $(i + 1) }
				if (f < lo || f >= hi) next
				k = 0; for (x = f; x < f + c; x++) k += st[x] == "key"
				if (k == 0 || k == c) next
				ok = 0
				for (b in cn) {
					if (f < b + 0 || f + c > ce[b]) continue
					ok = 1; for (x = f; x < f + c; x++) ok = ok && ((st[x] == "key") == (x < b + cn[b]))
					if (ok) break }
				if (ok) { nc++; next }
				bad++; printf "#   %s: batch [%d, %d): %d of %d keys present\n", s, f, f + c, k, c > out }
			END { print bad + 0, nc + 0 }' "$T/${s:0:1}.take" "$T/alice.log" "$T/bob.log" "$T/ev.$s")
		if [ "$bbad" != 0 ]; then
			halfbatch=$((halfbatch + 1))
			echo "# check $checks: half batches at $s:"; head -n 10 "$T/halfbatch"
			cp "$T/${s:0:1}.take" "$T/check$checks.$s.take"
		fi
		rm -f "$T/halfbatch"
		cut_batches=$((cut_batches + bcut))
	done
	# every block in range (a round's "keys=K first_index=F" at either
	# daemon): all of its K keys taken at a site, or none -- or, for a
	# block Bob committed and Alice was killed pushing in several
	# messages, exactly the first N keys she logs at her restart ("its
	# first N keys were pushed here before the restart"), at both sites
	for s in alice bob; do
		read -r bn bs bbad bcut < <(awk -v lo="$from" -v hi="$hi" -v s=$s -v out="$T/halfblock" '
			FILENAME ~ /\.take$/ { st[$1] = $2; next }
			FILENAME ~ /\/ev\./ { if ($1 == "keys-added") for (i = 1; i < NF; i++) if ($i == "first-index") ev[$(i + 1) + 0]++; next }
			/was committed by the peer; its first [0-9]+ keys/ {
				for (i = 1; i < NF; i++) { if ($i == "block") f = substr($(i + 1), 2) + 0; if ($i == "first") n = $(i + 1) + 0 }
				cut[f] = n; next }
			/: ok: / { f = -1; c = 0
				for (i = 1; i <= NF; i++) { if ($i ~ /^keys=/) c = substr($i, 6) + 0; if ($i ~ /^first_index=/) f = substr($i, 13) + 0 }
				if (c <= 0 || f < lo || f >= hi || seen[f]++) next
				nb++; m = 0; for (x = f; x < f + c; x++) m += ev[x] > 0
				if (m > 1) ns++
				k = 0; for (x = f; x < f + c; x++) k += st[x] == "key"
				if (k != 0 && k != c && (f in cut) && k == cut[f]) {
					p = 0; for (x = f; x < f + k; x++) p += st[x] == "key"
					if (p == k) { nc++; next } }
				if (k != 0 && k != c) { bad++; printf "#   %s: block [%d, %d): %d of %d keys present\n", s, f, f + c, k, c > out } }
			END { print nb + 0, ns + 0, bad + 0, nc + 0 }' "$T/${s:0:1}.take" "$T/ev.$s" "$T/alice.log" "$T/bob.log")
		if [ "$bbad" != 0 ]; then
			halfblock=$((halfblock + 1))
			echo "# check $checks: half blocks at $s:"; head -n 10 "$T/halfblock"
			cp "$T/${s:0:1}.take" "$T/check$checks.$s.take"
		fi
		rm -f "$T/halfblock"
		if [ $s = bob ]; then
			blocks=$((blocks + bn)) split_blocks=$((split_blocks + bs))
			cut_blocks=$((cut_blocks + bcut))
		fi
	done
	for ns in $NA $NB; do
		[ "$(field $ns stored_keys)" = 0 ] || leftover=$((leftover + 1))
	done
	from=$hi
	[ "${1:-}" = last ] || { start bob; start alice; }
}
# every KEYS_ADDED event arrived: their counts add up to keys_added
events_add_up() {
	local s=$1 ns=$2 sum added
	sum=$(awk '/^keys-added / { for (i = 1; i < NF; i++) if ($i == "count") t += $(i + 1) } END { print t + 0 }' "$T/ev.$s")
	added=$(ip netns exec "$ns" "$Q" stream show $UUID 2>/dev/null | grep -o 'keys added [0-9]*' | grep -o '[0-9]*$')
	echo "# $s: $sum keys in KEYS_ADDED events, keys_added $added"
	[ -n "$added" ] && [ "$sum" = "$added" ]
}

start bob; sleep 0.3; start alice
# the PSKs are consumed and the state files written before the first
# kill (a kill in between needs a fresh PSK pair, by design)
wait_block 0 120; r=$?
[ -s "$T/state-alice/alice.state" ] && [ -s "$T/state-bob/bob.state" ] && [ $r -eq 0 ]
ok $? "the pair delivers its first block (state files written, PSKs consumed)"
[ $r -eq 0 ] || { sed 's/^/# /' "$T/alice.log" "$T/bob.log" | tail -n 30; finish; }

# A kill at a random time rarely lands in the few milliseconds of a
# commit; half of them (seeded) wait for the next batch to reach Bob's
# store -- Bob has pushed, his acknowledgement or Alice's push is under
# way -- and strike then, after 0-3 ms. After such a kill of Alice alone
# (Bob likely holds an orphan block), the next kill waits up to 4 s for
# Bob to start removing orphans at the reconnection and kills him then.
# The files are read through fds (no process per poll), the waits are
# read timeouts on a FIFO that never gets data.
mkfifo "$T/never"
exec {evfd}< "$T/ev.bob" {blfd}< "$T/bob.log" {nofd}<> "$T/never"
# on_line FD PATTERN SECONDS: return when a line matching PATTERN (a glob)
# is appended to FD's file (1: none in time)
on_line() {
	local line deadline=$((SECONDS + $3))
	while read -r -t 0 -u "$1" && read -r -u "$1" line; do :; done
	while [ $SECONDS -lt $deadline ]; do
		if read -r -u "$1" line; then
			# shellcheck disable=SC2254 # a pattern on purpose
			case $line in $2) return 0 ;; esac
		else
			read -r -t 0.003 -u $nofd line
		fi
	done
	return 1
}
ka=0 kb=0 kab=0 waited=0 maxrec=0 norec=0 t_start=$SECONDS done_kills=0
onev=0 onev_missed=0 onrm=0 onrm_tried=0 prev=
for i in $(seq "$kills"); do
	[ $((SECONDS - t_start)) -lt "$secs" ] || break
	mode=timed
	if [ "$prev" = "batch alice" ]; then
		onrm_tried=$((onrm_tried + 1))
		on_line $blfd '*pushed here only*removing them' 4 && mode=removal
	elif [ $((RANDOM % 2)) -eq 0 ]; then
		msleep $((RANDOM * maxdelay / 32768))
	elif on_line $evfd 'keys-added*' 10; then
		onev=$((onev + 1)) mode=batch
		d=$((RANDOM % 4))
		[ $d = 0 ] || read -r -t "0.00$d" -u $nofd _
	else
		onev_missed=$((onev_missed + 1))
	fi
	case $((RANDOM % 3)) in
	0) who=alice ;;
	1) who=bob ;;
	*) who="bob alice" ;;
	esac
	[ $mode = removal ] && who=bob onrm=$((onrm + 1))
	case $who in
	alice) ka=$((ka + 1)) ;;
	bob) kb=$((kb + 1)) ;;
	*) kab=$((kab + 1)) ;;
	esac
	prev="$mode $who"
	hi=0
	for r in $who; do
		p=pid_$r
		kill -9 "${!p}" 2>/dev/null; wait "${!p}" 2>/dev/null
		echo "--- SIGKILL $(date +%s.%N)" >> "$T/$r.log"
	done
	for r in $who; do start "$r"; done
	done_kills=$i
	if [ $((i % every)) -eq 0 ] || [ "$i" -eq "$kills" ]; then
		t0=$SECONDS
		a=$(field $NA next_index); b=$(field $NB next_index)
		hi=${a:-0}; [ "${b:-0}" -gt "$hi" ] && hi=$b
		if wait_block "$hi" 60; then
			waited=$((waited + 1))
			[ $((SECONDS - t0)) -gt $maxrec ] && maxrec=$((SECONDS - t0))
		else
			norec=$((norec + 1))
			echo "# kill $i ($who): no block at both ends within 60 s"
			tail -n 5 "$T/alice.log" "$T/bob.log" | sed 's/^/#   /'
		fi
		check
	elif [ $((RANDOM % 2)) -eq 0 ]; then
		t0=$SECONDS
		a=$(field $NA next_index); b=$(field $NB next_index)
		hi=${a:-0}; [ "${b:-0}" -gt "$hi" ] && hi=$b
		if wait_block "$hi" 60; then
			waited=$((waited + 1))
			[ $((SECONDS - t0)) -gt $maxrec ] && maxrec=$((SECONDS - t0))
		else
			norec=$((norec + 1))
			echo "# kill $i ($who): no block at both ends within 60 s"
		fi
	fi
done
elapsed=$((SECONDS - t_start))
# the last kill is followed by a check; then the rounds must go on
a=$(field $NA next_index); b=$(field $NB next_index)
hi=${a:-0}; [ "${b:-0}" -gt "$hi" ] && hi=$b
wait_block "$hi" 60; last=$?
check last

rounds=$(grep -c 'round [0-9]*: ok:' "$T/alice.log")
aborted=$(grep -c 'round [0-9]*: aborted' "$T/alice.log")
orph=$(grep -ho 'removed [0-9]* orphan keys' "$T/alice.log" "$T/bob.log" | awk '{ s += $2 } END { print s + 0 }')
orphn=$(grep -c 'removed [0-9]* orphan keys' "$T/bob.log" "$T/alice.log" | awk -F: '{ s += $NF } END { print s + 0 }')
skips=$(grep -c 'skipping indices' "$T/alice.log" "$T/bob.log" | awk -F: '{ s += $NF } END { print s + 0 }')
completed=$(grep -c 'completing block' "$T/alice.log")
discarded=$(grep -c 'discarding block' "$T/alice.log")
adopted=$(grep -c 'was committed by the peer' "$T/alice.log")
echo "# kills: $done_kills in $elapsed s (alice $ka, bob $kb, both $kab; $onev of them 0-3 ms after a batch reached Bob's store, $onev_missed waits for one timed out; $onrm of $onrm_tried tries during Bob's orphan removal); waited for recovery $waited times (longest ${maxrec} s)"
echo "# rounds completed (alice): $rounds ok, $aborted aborted; keys delivered at both ends: $common; indices refused at both (skipped or removed): $refused"
echo "# recovery: orphan removals $orphn ($orph keys), skips $skips, pending blocks: $completed completed after a lost echo, $adopted committed by Bob before Alice's restart, $discarded dropped (Bob never committed them); checks $checks"
echo "# blocks checked: $blocks, $split_blocks of them pushed in several KEY_ADD messages at Bob ($split_starts of $starts daemon starts split their pushes)"
echo "# divergences: $divergent different keys, $onesided keys at one site only, $halfbatch half batches, $halfblock half blocks, $nextdiff next_index mismatches, $leftover stores not empty after a check"
grep -hi 'reserve\|PSK\|fatal\|error\|fail' "$T/alice.log" "$T/bob.log" | grep -v 'loaded and wiped\|: ok: \|session .* up\|below its target' | sort | uniq -c | head -n 10 | sed 's/^/# /'

# every kill asked for must happen: a run that did a quarter of them
# tested a quarter. The bound is a cap against a hang (run.sh sizes it
# for a busy host), not a pace to keep.
[ "$done_kills" -eq "$kills" ]
ok $? "$done_kills of $kills kills done, in $elapsed s (the cap: $secs s; alice $ka, bob $kb, both $kab)"
ok $(( norec != 0 )) "after every waited-for recovery a new block reached both stores ($waited recoveries, $norec without)"
ok $(( divergent + onesided + unread != 0 )) "every index since the start gives the same key or a refusal at both sites ($common keys, $refused refused; $divergent different, $onesided one-sided, $unread ranges not read whole)"
ok $(( nextdiff != 0 || leftover != 0 )) "next_index equal at both sites at every check, nothing left stored outside the checked range ($checks checks)"
ok $(( halfblock != 0 )) "no half block visible at either site ($blocks blocks, $split_blocks pushed in several messages; $cut_blocks cut by a kill in Alice's push, their first keys kept at both)"
ok $(( halfbatch != 0 )) "no half KEY_ADD batch visible at either site ($(grep -c '^keys-added' "$T/ev.alice") + $(grep -c '^keys-added' "$T/ev.bob") batches; $cut_batches in a block cut by a kill in Alice's push, its kept keys only)"
events_add_up alice $NA && events_add_up bob $NB
ok $? "every batch pushed raised one KEYS_ADDED event (the events add up to keys_added)"
ok $(( hung != 0 )) "SIGTERM stopped both daemons at every check"
ok $last "rounds deliver keys at both ends after the last kill"
finish
