# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# Helpers shared by the VM test bench (tests/vm/*.sh). Source it from bash:
#   . "$(dirname "$0")/../lib/vm-common.sh"
# It sets TOP (the repo top, absolute) and defines the functions below.

set -eu

# shellcheck disable=SC2034 # used by the scripts that source this file
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

vm_log() { printf '%s\n' "$*" >&2; }
vm_die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 2; }

# vm_kernels: print every installed kernel that has both /boot/vmlinuz-KVER
# and /lib/modules/KVER/build, one per line, oldest first.
vm_kernels() {
	local v k
	for v in /boot/vmlinuz-*; do
		[ -e "$v" ] || continue
		k=${v#/boot/vmlinuz-}
		[ -d "/lib/modules/$k/build" ] && [ -d "/lib/modules/$k/kernel" ] &&
			printf '%s\n' "$k"
	done | sort -V
}

# vm_resolve_kernels SPEC: "all" -> every installed kernel; "" -> the newest;
# otherwise SPEC itself, checked. Prints the list.
vm_resolve_kernels() {
	local spec=$1 list
	list=$(vm_kernels)
	[ -n "$list" ] || vm_die "no installed kernel (need /boot/vmlinuz-KVER and /lib/modules/KVER/build)"
	case $spec in
	all) printf '%s\n' "$list" ;;
	'') printf '%s\n' "$list" | tail -n 1 ;;
	*)
		printf '%s\n' "$list" | grep -qxF -- "$spec" ||
			vm_die "kernel '$spec' not installed; installed: $(printf '%s\n' "$list" | tr '\n' ' ')"
		printf '%s\n' "$spec"
		;;
	esac
}

# Kernel problems that fail a run when found in the guest's dmesg.
# Extended regex, case-sensitive. VM_DMESG_EXTRA adds to it.
VM_DMESG_PATTERN='WARNING:|BUG:|Oops|KASAN|UBSAN|unreferenced object|possible circular locking|RCU stall|rcu.*(detected|self-detected) stall|Call Trace|general protection|Kernel panic|blocked for more than|soft lockup|hard LOCKUP|list_add corruption|list_del corruption|refcount_t:'
if [ -n "${VM_DMESG_EXTRA:-}" ]; then
	VM_DMESG_PATTERN="$VM_DMESG_PATTERN|$VM_DMESG_EXTRA"
fi

# vm_dmesg_scan FILE: print the lines of FILE that look like kernel problems
# (lines matching VM_DMESG_IGNORE, an ERE, are skipped). Returns 0 if there
# is at least one hit, 1 if none.
vm_dmesg_scan() {
	local f=$1 hits
	hits=$(grep -nE -- "$VM_DMESG_PATTERN" "$f" || true)
	if [ -n "$hits" ] && [ -n "${VM_DMESG_IGNORE:-}" ]; then
		hits=$(printf '%s\n' "$hits" | grep -vE -- "$VM_DMESG_IGNORE" || true)
	fi
	[ -n "$hits" ] || return 1
	printf '%s\n' "$hits"
}
