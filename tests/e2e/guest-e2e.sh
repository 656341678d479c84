#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# guest-e2e.sh QKD_KO: the end-to-end scripts, inside the VM: the qkdctl
# smoke test against the real module, qkdd feeding two sites' stores, ESP SAs
# keyed and re-keyed in the kernel from a key stream (ipsec.sh), then
# the demo (two sites, same keys, an ESP SA keyed from them). Prints TAP and
# one "N passed, N failed" line.
set -u
ko=${1:?usage: $0 QKD_KO}
pass=0
fail=0

out=$(mktemp /tmp/e2e.XXXXXX)

# run_tap SCRIPT...: its TAP lines count; the summary line is ours to make.
run_tap() {
	local rc nf t0=$SECONDS
	"$@" >"$out" 2>&1
	rc=$?
	grep -vE '^[0-9]+ passed, [0-9]+ failed' "$out"
	echo "# ${1##*/}: $((SECONDS - t0)) s"
	nf=$(grep -cE '^not ok ' "$out")
	pass=$((pass + $(grep -cE '^ok ' "$out")))
	fail=$((fail + nf))
	if [ $rc -ne 0 ] && [ "$nf" -eq 0 ]; then
		echo "not ok - $1 exited $rc"
		fail=$((fail + 1))
	fi
	if lsmod | grep -q '^qkd '; then rmmod qkd; fi
}

run_tap tests/e2e/qkdctl_smoke.sh "$ko"
run_tap tests/e2e/qkdctl_alg.sh "$ko"
run_tap tests/e2e/qkdd_kernel.sh "$ko"
run_tap tests/e2e/ipsec.sh "$ko"

t0=$SECONDS
if tests/e2e/demo.sh "$ko" >"$out" 2>&1 && grep -q '^DEMO OK' "$out"; then
	echo "# demo.sh: $((SECONDS - t0)) s"
	echo "ok - demo: two sites, same keys at both ends, ESP SA keyed from QKD key"
	pass=$((pass + 1))
else
	sed 's/^/# /' "$out"
	echo "not ok - demo"
	fail=$((fail + 1))
fi
rm -f "$out"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
