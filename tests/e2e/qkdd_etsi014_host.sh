#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdd --key-source etsi014 on the host, over loopback, against a vendor
# KME stand-in that can misbehave (tests/e2e/fake_kme.py: HTTPS with
# client certificates of a test CA made here): --no-kernel --out at both
# ends. Checked:
#   - honest KME: a few rounds, both key files identical;
#   - each way a KME can fail or lie, at Alice's (enc_keys) or Bob's
#     (dec_keys) side: 503, one key fewer, a key of another size, bad
#     base64, a key_ID twice, a key_ID not asked for, other key bytes for
#     the same key_ID (the key confirmation), a 2 MiB body: the round is
#     aborted at both ends with a warning that says why, and no key is
#     written at either end;
#   - a client certificate of another CA: refused, said so, no key;
#   - a bad --kme URL, a missing --kme-sae, an unreadable certificate:
#     exit 2 with the reason;
# (An end on --key-source bb84 against one on etsi014: HELLO refuses it
# by name, tests/unit/test_qkdd_session.c.) The VM test
# tests/e2e/qkdd_etsi014.sh runs the mode against qkd-kme,
# into the kernel stores, with crashes. Prints TAP and "N passed, N
# failed". Needs no module, no root; needs python3 and openssl.
set -u
# shellcheck source=tests/e2e/lib-qkdd.sh
. "$(dirname "$0")/lib-qkdd.sh"
# shellcheck source=lib-pki.sh
. "$(dirname "$0")/lib-pki.sh"
qkdd_lib_init qkdd_etsi014_host
pid_alice='' pid_bob=''

# The test PKI (lib-pki.sh): the CA in $P itself, as fake_kme.py takes it.
P=$T/pki
PKI=$P
mkdir -p "$P"
pki_ca "$P" "vendor test CA" && pki_ca "$P/evil" "another CA" &&
	pki_cert "$P" kme serverAuth /CN=kme IP:127.0.0.1 &&
	pki_cert "$P" sae-a clientAuth /CN=sae-a && pki_cert "$P" sae-b clientAuth /CN=sae-b &&
	pki_cert "$P/evil" evil clientAuth /CN=sae-a
ok $? "test PKI: a CA, the KME's and two SAEs' certificates, one of another CA"

KPORT=$(free_port)
python3 tests/e2e/fake_kme.py "$P" "$KPORT" >"$T/kme.out" 2>"$T/kme.log" &
for _ in $(seq 50); do grep -q ready "$T/kme.out" && break; sleep 0.1; done
grep -q ready "$T/kme.out"
ok $? "the vendor KME stand-in is up (port $KPORT)"

# pair DIR ROUNDS [ALICE ARGS...]: a pair into DIR; waits for both
pair() {
	local d=$1 rounds=$2 port
	shift 2
	mkdir -p "$d"
	port=$(free_port)
	psk "$d"
	qkdd_start "$d" bob "$port" 60 --rounds "$rounds" --timeout 10 \
		--key-source etsi014 --kme "https://127.0.0.1:$KPORT" \
		--kme-cert "$P/sae-b.crt" --kme-key "$P/sae-b.key" \
		--kme-ca "$P/ca.crt" --kme-sae SAE_A --backoff-max 1
	sleep 0.3
	qkdd_start "$d" alice "$port" 60 --rounds "$rounds" --timeout 10 \
		--key-source etsi014 --kme "https://127.0.0.1:$KPORT" \
		--kme-cert "$P/sae-a.crt" --kme-key "$P/sae-a.key" \
		--kme-ca "$P/ca.crt" --kme-sae SAE_B --backoff-max 1 "$@"
	wait "$pid_alice"
	ra=$?
	wait "$pid_bob"
	rb=$?
}
no_keys() { [ ! -s "$1/alice.keys" ] && [ ! -s "$1/bob.keys" ]; }

# ---- honest ----
rm -f "$P/mode"
pair "$T/ok" 3
[ $ra -eq 0 ] && [ $rb -eq 0 ] && [ -s "$T/ok/alice.keys" ] &&
	cmp -s "$T/ok/alice.keys" "$T/ok/bob.keys" &&
	[ "$(grep -c ' ok: ' "$T/ok/alice.log")" -eq 3 ] &&
	grep -qx 'key_source=etsi014' "$T/ok/alice.status" &&
	grep -qx 'kme_sae=SAE_A' "$T/ok/bob.status"
ok $? "honest KME: 3 rounds, both key files identical ($(wc -l <"$T/ok/alice.keys" 2>/dev/null) keys; alice $ra, bob $rb)"

# ---- a KME that fails or lies ----
# bad SIDE:WHAT REASON-REGEX: one round, aborted at both ends, no key
bad() {
	local d=$T/${1/:/-} who=alice
	[ "${1%%:*}" = dec ] && who=bob
	echo "$1" >"$P/mode"
	pair "$d" 1
	rm -f "$P/mode"
	grep -qE "vendor KME refused the round|key confirmation failed" "$d/$who.log" &&
		grep -qE "$2" "$d/$who.log" &&
		grep -q 'aborted' "$d/alice.log" && grep -q 'aborted' "$d/bob.log" &&
		no_keys "$d"
	ok $? "$1: refused at $who ($(grep -ohE "$2" "$d/$who.log" | head -1)), the round aborted at both ends, no key"
}
bad enc:503 'enc_keys: HTTP 503: test: no keys now'
bad dec:503 'dec_keys: HTTP 503: test: no keys now'
bad enc:count 'enc_keys: 15 keys in the Key container, asked for 16'
bad dec:count 'dec_keys: 15 keys in the Key container, asked for 16'
bad enc:size 'enc_keys: key [-0-9a-f]+: a key of another size, not 32 bytes'
bad dec:size 'dec_keys: key [-0-9a-f]+: a key of another size, not 32 bytes'
bad enc:base64 'enc_keys: key [-0-9a-f]+: bad base64'
bad dec:base64 'dec_keys: key [-0-9a-f]+: bad base64'
bad enc:dup 'enc_keys: key_ID [-0-9a-f]+ twice in the Key container'
bad dec:dup 'dec_keys: key_ID [-0-9a-f]+ (twice in the Key container|was not asked for)'
bad dec:unknown 'dec_keys: key_ID [-0-9a-f]+ of the Key container was not asked for'
bad dec:flip 'key confirmation failed: the two vendor KMEs gave different keys'
bad enc:big 'enc_keys: an answer of more than 1048576 bytes: refused'

# ---- a client certificate of another CA ----
pair "$T/evil" 1 --kme-cert "$P/evil.crt" --kme-key "$P/evil.key"
grep -qE 'vendor KME refused the round \(Status: .*(alert|certificate)' "$T/evil/alice.log" &&
	no_keys "$T/evil"
ok $? "a client certificate of another CA: refused ($(grep -ohE '(alert|HTTP 40[13])[^,]*' "$T/evil/alice.log" | head -1)), no key"

# ---- configuration errors: exit 2 with the reason ----
cfg() {	# cfg REGEX ARGS...: exit 2 and REGEX on stderr
	local re=$1 out rc
	shift
	mkdir -p "$T/cfg"
	psk "$T/cfg"
	out=$("$QKDD" --role alice --peer 127.0.0.1:1 --stream $UUID --link ab \
		--psk "$T/cfg/alice.psk" --no-kernel --out "$T/cfg.keys" \
		--key-source etsi014 "$@" 2>&1)
	rc=$?
	[ $rc -eq 2 ] && grep -qE "$re" <<<"$out"
	ok $? "configuration: exit $rc, $(grep -oE "$re" <<<"$out" | head -1)"
}
cfg "kme must be https://HOST:PORT" --kme http://127.0.0.1:1 \
	--kme-cert "$P/sae-a.crt" --kme-key "$P/sae-a.key" --kme-ca "$P/ca.crt" --kme-sae B
cfg "needs --kme-sae SAE_ID" --kme "https://127.0.0.1:$KPORT" \
	--kme-cert "$P/sae-a.crt" --kme-key "$P/sae-a.key" --kme-ca "$P/ca.crt"
cfg "vendor KME client key \(--kme-key\).*$T/nonexistent.key" --kme "https://127.0.0.1:$KPORT" \
	--kme-cert "$P/sae-a.crt" --kme-key "$T/nonexistent.key" --kme-ca "$P/ca.crt" --kme-sae B

qkdd_tap_end
