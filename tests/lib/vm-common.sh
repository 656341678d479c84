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

# The debug kernel (KASAN, lockdep, kmemleak, fault injection) built by
# tests/vm/build-debug-kernel.sh is the kernel "debug": --kernel debug boots
# it, without an initramfs. It is never part of "all" (the Debian kernels).
VM_DEBUG_KERNEL=debug

# vm_debug_tree: print the built debug kernel tree; fail if it is not built.
vm_debug_tree() {
	"$TOP/tests/vm/build-debug-kernel.sh" --print-dir
}

# vm_kdir KVER: the kernel build tree to build modules against.
vm_kdir() {
	if [ "$1" = "$VM_DEBUG_KERNEL" ]; then
		vm_debug_tree || { vm_log "the debug kernel is not built: run tests/vm/build-debug-kernel.sh"; return 1; }
	else
		printf '%s\n' "/lib/modules/$1/build"
	fi
}

# vm_resolve_kernels SPEC: "all" -> every installed kernel; "" -> the newest;
# "debug" -> the debug kernel, if built; otherwise SPEC itself (a KVER, or
# KVERs separated by commas), checked.
# Prints the list.
vm_resolve_kernels() {
	local spec=$1 list
	if [ "$spec" = "$VM_DEBUG_KERNEL" ]; then
		vm_debug_tree >/dev/null ||
			vm_die "the debug kernel is not built: run tests/vm/build-debug-kernel.sh (about 14 minutes on two idle cores)"
		printf '%s\n' "$spec"
		return 0
	fi
	list=$(vm_kernels)
	[ -n "$list" ] || vm_die "no installed kernel (need /boot/vmlinuz-KVER and /lib/modules/KVER/build)"
	case $spec in
	all) printf '%s\n' "$list" ;;
	'') printf '%s\n' "$list" | tail -n 1 ;;
	*)
		# one KVER, or several separated by commas
		local k
		for k in ${spec//,/ }; do
			printf '%s\n' "$list" | grep -qxF -- "$k" ||
				vm_die "kernel '$k' not installed; installed: $(printf '%s\n' "$list" | tr '\n' ' ')"
			printf '%s\n' "$k"
		done
		;;
	esac
}

# Kernel problems that fail a run when found in the guest's dmesg.
# Extended regex, case-sensitive. VM_DMESG_EXTRA adds to it.
VM_DMESG_PATTERN='WARNING:|BUG:|Oops|KASAN|UBSAN|unreferenced object|possible circular locking|RCU stall|rcu.*(detected|self-detected) stall|Call Trace|general protection|Kernel panic|blocked for more than|soft lockup|hard LOCKUP|list_add corruption|list_del corruption|refcount_t:'
# What only the debug kernel reports (run-vm.sh adds it when booting it):
# lockdep and RCU-lockdep reports that do not start with WARNING:, kmemleak's
# own summary, and the checkers switching themselves off (after which they
# would see nothing).
# shellcheck disable=SC2034 # used by run-vm.sh
VM_DMESG_DEBUG_PATTERN='suspected memory leak|Kernel memory leak detector disabled|kmemleak: Cannot|turning off the locking correctness validator|inconsistent lock state|possible recursive locking|suspicious RCU usage|sleeping function called from invalid context|lock held when returning to user space|DEBUG_LOCKS_WARN_ON|stack-out-of-bounds|use-after-free|out-of-bounds|double-free|invalid-free'
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
