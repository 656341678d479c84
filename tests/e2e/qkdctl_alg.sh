#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# qkdctl_alg.sh QKD_KO [QKDCTL]
#
# Guest-side test of "qkdctl alg setkey" and "qkdctl key to-keyring"
# against the real module: two streams A and B hold the same keys (the two
# ends of a link). Data encrypted (or MACed) through an AF_ALG socket that
# the kernel keyed from A must equal what openssl computes with B's copy of
# the key, and decrypt through a socket keyed from B. Loads QKD_KO unless
# it is "-" (module already loaded). Run as root in the VM from the repo
# top:
#   tests/vm/run-vm.sh -- tests/e2e/qkdctl_alg.sh build/kmod/$KVER/qkd.ko
# Prints TAP and "N passed, N failed".
set -u

ko=${1:?usage: $0 QKD_KO [QKDCTL]}
Q=${2:-build/qkdctl}
pass=0
fail=0
n=0
tmp=$(mktemp -d /tmp/qkdctl-alg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	shift
	[ $# -eq 0 ] || printf '#   %s\n' "$@"
}
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3"; fi; }
# run DESC WANT_RC CMD... (qkdctl), stdin from $IN; stdout $tmp/out, stderr $err
IN=/dev/null
run() {
	local desc=$1 want=$2 rc=0
	shift 2
	"$Q" "$@" <"$IN" >"$tmp/out" 2>"$tmp/err" || rc=$?
	err=$(cat "$tmp/err")
	if [ "$rc" = "$want" ]; then
		ok "$desc (exit $rc)"
	else
		not_ok "$desc" "qkdctl $*" "exit $rc, wanted $want" "stderr: $err"
	fi
}
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
stored() { "$Q" -j key status "$1" | jq -r .stored_key_count; }

[ -x "$Q" ] || { echo "Bail out! $Q is not built"; exit 1; }
echo "TAP version 13"
if [ "$ko" != - ]; then
	insmod "$ko" || { echo "Bail out! insmod $ko failed"; exit 1; }
fi
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -c /dev/qkd ] && break; sleep 0.2; done
modprobe -a algif_skcipher algif_aead algif_hash 2>/dev/null

A=7a1c0e3e-1b2d-4c6e-8f10-00000000aaaa
B=7a1c0e3e-1b2d-4c6e-8f10-00000000bbbb
head -c $((32 * 8)) /dev/urandom >"$tmp/keys"
run "link add" 0 link add alg-e2e role initiator
run "stream add A" 0 stream add "$A" link alg-e2e key-size 32
run "stream add B" 0 stream add "$B" link alg-e2e key-size 32
run "push A" 0 key push "$A" index 0 file "$tmp/keys"
run "push B" 0 key push "$B" index 0 file "$tmp/keys"
# keyB I: B's copy of index I, in hex, through the privileged read path
keyB() { "$Q" key get "$B" index "$1" format raw >"$tmp/k$1" && hex "$tmp/k$1"; }

# ---- skcipher: cbc(aes), AES-256 ----------------------------------------
head -c 64 /dev/urandom >"$tmp/pt"
IV=000102030405060708090a0b0c0d0e0f
IN=$tmp/pt
run "alg setkey cbc(aes) encrypt (next key)" 0 alg setkey "$A" type skcipher name 'cbc(aes)' iv $IV
cp "$tmp/out" "$tmp/ct"
check "stderr names the key used" "qkdctl: alg setkey: index 0 key-id" "$(cut -d' ' -f1-6 "$tmp/err")"
kb=$(keyB 0)
openssl enc -aes-256-cbc -nopad -K "$kb" -iv $IV -in "$tmp/pt" -out "$tmp/ct-ossl"
check "cbc(aes): ciphertext equals openssl with B's copy" "$(hex "$tmp/ct-ossl")" "$(hex "$tmp/ct")"
check "index 0 of A is consumed" 7 "$(stored "$A")"

# decrypt at the other end: B's index 1 (not read by anyone) decrypts A's index 1
run "encrypt with A index 1" 0 alg setkey "$A" index 1 type skcipher name 'cbc(aes)' iv $IV
cp "$tmp/out" "$tmp/ct1"
IN=$tmp/ct1
run "decrypt with B index 1" 0 alg setkey "$B" index 1 type skcipher name 'cbc(aes)' iv $IV op decrypt
check "B decrypts A's ciphertext" "$(hex "$tmp/pt")" "$(hex "$tmp/out")"

# ---- aead: gcm(aes), 16 bytes of AAD ------------------------------------
IN=$tmp/pt
run "gcm(aes) encrypt, A index 2" 0 alg setkey "$A" index 2 type aead name 'gcm(aes)' assoc-len 16
cp "$tmp/out" "$tmp/gcm"
check "gcm output is AAD + ciphertext + tag" 80 "$(stat -c %s "$tmp/gcm")"
IN=$tmp/gcm
run "gcm(aes) decrypt, B index 2" 0 alg setkey "$B" index 2 type aead name 'gcm(aes)' assoc-len 16 op decrypt
check "B decrypts and authenticates" "$(hex "$tmp/pt")" "$(hex "$tmp/out")"
# a corrupted tag fails at B, and B's key is consumed all the same
printf '\x00' | dd of="$tmp/gcm" bs=1 seek=79 conv=notrunc 2>/dev/null
run "gcm(aes) tampered, B index 3" 1 alg setkey "$B" index 3 type aead name 'gcm(aes)' assoc-len 16 op decrypt

# ---- hash: hmac(sha256), 16-byte prefix of the key -----------------------
IN=$tmp/pt
run "hmac(sha256), A index 4, key-len 16" 0 alg setkey "$A" index 4 type hash name 'hmac(sha256)' key-len 16
kb=$(keyB 4)
want=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:${kb:0:32}" -r "$tmp/pt" | cut -d' ' -f1)
check "hmac equals openssl with B's first 16 bytes" "$want" "$(hex "$tmp/out")"

# ---- nothing taken on failure --------------------------------------------
before=$(stored "$A")
run "AES rejects a 20-byte key" 1 alg setkey "$A" type skcipher name 'cbc(aes)' key-len 20
run "unknown algorithm" 1 alg setkey "$A" type skcipher name 'nosuch(aes)'
run "unknown stream" 1 alg setkey 7a1c0e3e-1b2d-4c6e-8f10-00000000cccc type hash name 'hmac(sha256)'
run "consumed index" 1 alg setkey "$A" index 0 type hash name 'hmac(sha256)'
run "usage: no type" 2 alg setkey "$A" name 'cbc(aes)'
check "no key taken by the failures" "$before" "$(stored "$A")"

# ---- keyrings --------------------------------------------------------------
IN=/dev/null
run "key to-keyring (qkd type, user keyring)" 0 key to-keyring "$A" index 5 keyring @u
serial=$(cut -d' ' -f2 "$tmp/out")
check "to-keyring names index 5" "index 5" "$(cut -d' ' -f3-4 "$tmp/out")"
check "keyctl describe: type qkd" qkd "$(keyctl rdescribe "$serial" | cut -d';' -f1)"
if keyctl read "$serial" >/dev/null 2>&1; then not_ok "keyctl read fails"; else ok "keyctl read fails"; fi
run "index 5 is consumed" 1 key get "$A" index 5
run "key to-keyring logon" 0 -j key to-keyring "$A" type logon desc qkdtest:e2e keyring @u
serial=$(jq -r .serial "$tmp/out")
check "logon key described" "logon;qkdtest:e2e" \
	"$(keyctl rdescribe "$serial" | awk -F';' '{print $1 ";" $5}')"
if keyctl read "$serial" >/dev/null 2>&1; then not_ok "logon: keyctl read fails"; else ok "logon: keyctl read fails"; fi
run "logon desc without prefix" 2 key to-keyring "$A" type logon desc nocolon
keyctl unlink "$serial" @u >/dev/null 2>&1

run "link del" 0 link del alg-e2e
if [ "$ko" != - ]; then rmmod qkd; fi
echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
