#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# guest-e2e.sh QKD_KO: the end-to-end scripts, inside the VM: the qkdctl
# smoke test against the real module, qkdd feeding two sites' stores, ESP SAs
# keyed and re-keyed in the kernel from a key stream (ipsec.sh), two sites
# brought up and down from a configuration file each (qkdctl_up.sh), qkd-kme
# serving two sites' keys over ETSI 014 with client certificates
# (qkd_kme.sh), qkdd taking its keys from such a KME as a vendor's
# (qkdd_etsi014.sh), libqkd's ETSI 004 interface and its example program at
# two sites (etsi004.sh), then
# the demo (two sites, same keys, taken also through a qkd-kme per site,
# an ESP SA keyed from them), and last lockdown.sh (it raises the kernel's
# lockdown, which is one-way). Prints TAP,
# each script's skips ("# SKIP KVER SCRIPT: TEST: REASON"), a "# ran: KVER
# SCRIPT" line for each (tests/run-all.sh's manifest), and one line
# "N passed, N failed, N skipped". A script that stops before its plan, or
# exits non-zero without a "not ok", is a failure (tests/lib/tap.sh).
set -u
ko=${1:?usage: $0 QKD_KO [SCRIPT...]}
shift
# SCRIPT...: scripts not to run on this kernel (tests/run-all.sh runs some
# on the newest kernel only: E2E_NEWEST_ONLY)
not_here=" $* "
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"
kver=$(uname -r)

out=$(mktemp /tmp/e2e.XXXXXX)

# run_tap SCRIPT...: its TAP lines count; the summary line is ours to make.
run_tap() {
	local rc t0=$SECONDS
	case $not_here in *" ${1##*/} "*)
		echo "# ${1##*/}: not on this kernel (tests/run-all.sh: E2E_NEWEST_ONLY)"
		return ;;
	esac
	"$@" >"$out" 2>&1
	rc=$?
	grep -vE '^[0-9]+ passed, [0-9]+ failed' "$out"
	echo "# ${1##*/}: $((SECONDS - t0)) s"
	tap_count "$kver ${1##*/}" "$out" "$rc"
	if lsmod | grep -q '^qkd '; then rmmod qkd; fi
}

run_tap tests/e2e/qkdctl_smoke.sh "$ko"
run_tap tests/e2e/qkdctl_alg.sh "$ko"
run_tap tests/e2e/qkdd_kernel.sh "$ko"
run_tap tests/e2e/ipsec.sh "$ko"
run_tap tests/e2e/qkdctl_up.sh "$ko"
run_tap tests/e2e/qkd_kme.sh "$ko"
run_tap tests/e2e/qkdd_etsi014.sh "$ko"
run_tap tests/e2e/etsi004.sh "$ko"

t0=$SECONDS
case $not_here in
*" demo.sh "*)
	echo "# demo.sh: not on this kernel (tests/run-all.sh: E2E_NEWEST_ONLY)" ;;
*)
	echo "# ran: $kver demo.sh"
	if tests/e2e/demo.sh "$ko" >"$out" 2>&1 && grep -q '^DEMO OK' "$out"; then
		echo "# demo.sh: $((SECONDS - t0)) s"
		echo "ok - demo: two sites, same keys at both ends (qkdctl, and ETSI 014 through qkd-kme: enc_keys at A, dec_keys by key_ID at B, a second dec_keys refused), ESP SA keyed from QKD key"
		tap_add 1 0 0
	else
		sed 's/^/# /' "$out"
		tap_fail "$kver demo.sh" "demo"
	fi ;;
esac
# lockdown.sh raises lockdown, which is one-way: last in the boot
run_tap tests/e2e/lockdown.sh "$ko"
rm -f "$out"
tap_summary_line
[ "$TAP_FAIL" -eq 0 ]
