#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# run-vm.sh [options] -- COMMAND [ARGS...]
#
# Boot a Debian kernel under qemu (TCG) with the host's / as a read-only 9p
# root and run COMMAND as root in the repo top, then check the guest's dmesg
# for kernel problems. See tests/vm/README.md.
#
# Options:
#   --kernel KVER|all|debug  kernel to boot (default: the newest installed);
#                      "all" runs COMMAND on every installed kernel in turn;
#                      "debug" boots the debug kernel of
#                      tests/vm/build-debug-kernel.sh (KASAN, UBSAN, kmemleak,
#                      lockdep, fault injection; no initramfs, panic_on_warn=1;
#                      a kmemleak scan after COMMAND fails the run on a leak)
#   --timeout S        kill the VM after S seconds (default 600, 1800 for
#                      the debug kernel; 0: never);
#                      the guest stops COMMAND itself 30 s earlier (S/3 if
#                      S < 90) to still save dmesg
#   --mem MB           guest memory (default 1024)
#   --smp N            guest CPUs (default $QKD_VM_SMP, else 2)
#   --results DIR      results directory (default build/vm/results/<run>);
#                      emptied first. With --kernel all: DIR/KVER
#   --env NAME=VALUE   export NAME=VALUE to COMMAND (repeatable)
#   --append ARGS      extra kernel command line arguments
#   --systemd          systemd as PID 1 (Debian kernels): the 9p root is the
#                      lower layer of an overlayfs with a tmpfs upper one
#                      (packages install, /etc and /var are writable; all
#                      is gone at power-off), COMMAND runs as qkdvm.service
#                      after basic.target (tests/vm/guest-systemd-setup.sh);
#                      RESULTS/journal holds the guest's journal
#   --qmp PATH         a QMP monitor socket at PATH (unix, server) while the
#                      VM runs, e.g. for dump-guest-memory
#   -q, --quiet        do not stream the console; print COMMAND's output at
#                      the end instead
#
# Exit code: COMMAND's exit code; 124 if the VM or COMMAND timed out; 125 if
# the guest reported no exit code (boot failure, panic); 123 if COMMAND
# succeeded but dmesg shows kernel problems (the hits are also written to
# RESULTS/dmesg-hits; kmemleak's report on the debug kernel counts as such,
# RESULTS/kmemleak); 2 for usage errors.
# Results: RESULTS/{cmd,console,log,rc,dmesg}; COMMAND finds RESULTS in
# $QKDVM_RESULTS (same path in the guest and on the host).
# Environment: VM_DMESG_IGNORE (ERE of dmesg lines to tolerate),
# VM_DMESG_EXTRA (ERE of more lines to flag), QKD_VM_LOCK (lock file that
# serialises VMs, default /tmp/qkd-vm.lock; "none" to disable),
# QKD_VM_ACCEL (kvm or tcg; default kvm when /dev/kvm is usable).
set -eu
# shellcheck source=SCRIPTDIR/../lib/vm-common.sh
. "$(dirname "$0")/../lib/vm-common.sh"

usage() {
	sed -n '4,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
	exit "${1:-2}"
}

kernel=
timeout_s=
qmp=
mem=1024
smp=${QKD_VM_SMP:-2}
results=
quiet=0
append=
systemd=0
envs=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) [ $# -ge 2 ] || usage; kernel=$2; shift 2 ;;
	--kernel=*) kernel=${1#*=}; shift ;;
	--timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift 2 ;;
	--timeout=*) timeout_s=${1#*=}; shift ;;
	--mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	--mem=*) mem=${1#*=}; shift ;;
	--smp) [ $# -ge 2 ] || usage; smp=$2; shift 2 ;;
	--smp=*) smp=${1#*=}; shift ;;
	--results) [ $# -ge 2 ] || usage; results=$2; shift 2 ;;
	--results=*) results=${1#*=}; shift ;;
	--env) [ $# -ge 2 ] || usage; envs+=("$2"); shift 2 ;;
	--env=*) envs+=("${1#*=}"); shift ;;
	--append) [ $# -ge 2 ] || usage; append="$append $2"; shift 2 ;;
	--append=*) append="$append ${1#*=}"; shift ;;
	--qmp) [ $# -ge 2 ] || usage; qmp=$2; shift 2 ;;
	--qmp=*) qmp=${1#*=}; shift ;;
	--systemd) systemd=1; shift ;;
	-q | --quiet) quiet=1; shift ;;
	-h | --help) usage 0 ;;
	--) shift; break ;;
	*) vm_log "${0##*/}: unknown option '$1' (COMMAND goes after --)"; usage ;;
	esac
done
[ $# -gt 0 ] || usage
if [ -z "$timeout_s" ]; then
	if [ "$kernel" = "$VM_DEBUG_KERNEL" ]; then timeout_s=1800; else timeout_s=600; fi
fi
case $qmp in *[,[:space:]]*) vm_die "--qmp: no commas or blanks in the path" ;; esac
case $timeout_s in '' | *[!0-9]*) vm_die "--timeout wants seconds" ;; esac
case $mem in '' | *[!0-9]*) vm_die "--mem wants megabytes" ;; esac
case $smp in '' | *[!0-9]*) vm_die "--smp wants a number" ;; esac
for e in ${envs[@]+"${envs[@]}"}; do
	case $e in
	[A-Za-z_]*=*) n=${e%%=*}; case $n in *[!A-Za-z0-9_]*) vm_die "bad --env '$e'" ;; esac ;;
	*) vm_die "bad --env '$e' (want NAME=VALUE)" ;;
	esac
done

mapfile -t kernels < <(vm_resolve_kernels "$kernel")
[ ${#kernels[@]} -gt 0 ] || exit 2

# --kernel all: run this script once per kernel, in turn.
if [ ${#kernels[@]} -gt 1 ]; then
	first_rc=0
	summary=
	for k in "${kernels[@]}"; do
		args=(--kernel "$k" --timeout "$timeout_s" --mem "$mem" --smp "$smp")
		[ -z "$results" ] || args+=(--results "$results/$k")
		[ -z "$append" ] || args+=(--append "$append")
		[ "$quiet" = 0 ] || args+=(--quiet)
		[ "$systemd" = 0 ] || args+=(--systemd)
		for e in ${envs[@]+"${envs[@]}"}; do args+=(--env "$e"); done
		rc=0
		"$0" "${args[@]}" -- "$@" || rc=$?
		summary="$summary$(printf '  %-28s rc=%s' "$k" "$rc")"$'\n'
		[ "$first_rc" -ne 0 ] || first_rc=$rc
	done
	printf 'qkdvm: summary\n%s' "$summary"
	exit "$first_rc"
fi

kver=${kernels[0]}
if [ "$kver" = "$VM_DEBUG_KERNEL" ]; then
	# Everything built in: the kernel mounts the 9p root and runs
	# guest-init.sh as init; modprobe finds the built-in modules in the
	# tree's modules.builtin (guest-init.sh mounts it as /lib/modules/KREL).
	[ "$systemd" = 0 ] || vm_die "--systemd needs a Debian kernel (an initramfs), not the debug kernel"
	dtree=$(vm_debug_tree) || vm_die "the debug kernel is not built: run tests/vm/build-debug-kernel.sh"
	krel=$(cat "$dtree/kernelrelease")
	vmlinuz=$dtree/arch/x86/boot/bzImage
	boot=(-kernel "$vmlinuz")
	# acpi=noirq: PCI interrupts are routed from the BIOS's MP table
	# (X86_MPPARSE in tests/vm/debug-kernel.config), not by running the
	# DSDT's _PRT method. ACPICA under KASAN and emulation
	# needed 34 s for it on a quiet host, and on a busy one it hit ACPICA's
	# 30 s loop limit (AE_AML_LOOP_TIMEOUT): the virtio devices were left
	# without an interrupt and the guest hung on its 9p root.
	# cache=loose as in mkinitrd.sh's mount (tests/vm/README.md).
	bootargs="root=/dev/root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose ro init=$TOP/tests/vm/guest-init.sh panic_on_warn=1 acpi=noirq qkdvm_noinitrd=1 qkdvm_modules=$dtree/modroot/lib/modules/$krel"
	VM_DMESG_PATTERN="$VM_DMESG_PATTERN|$VM_DMESG_DEBUG_PATTERN"
	label="debug ($krel)"
else
	vmlinuz=/boot/vmlinuz-$kver
	initrd=$TOP/build/vm/$kver/initrd.gz
	"$TOP/tests/vm/mkinitrd.sh" "$kver" "$initrd"
	boot=(-kernel "$vmlinuz" -initrd "$initrd")
	bootargs="qkdvm_init=$TOP/tests/vm/guest-init.sh"
	label=$kver
	if [ "$systemd" = 1 ]; then
		bootargs="qkdvm_init=$TOP/tests/vm/guest-systemd-setup.sh qkdvm_systemd=1 systemd.show_status=error"
		label="$kver (systemd)"
	fi
fi

if [ -z "$results" ]; then
	# Keep the newest 30 automatically named runs.
	find "$TOP/build/vm/results" -mindepth 1 -maxdepth 1 -type d -name '20*-*' \
		2>/dev/null | sort | head -n -30 | while read -r old; do
		rm -rf "$old"
	done
	results=$TOP/build/vm/results/$(date +%Y%m%d-%H%M%S)-$kver-$$
fi
mkdir -p "$results"
results=$(cd "$results" && pwd -P)
case $results$TOP in
*[,[:space:]]*) vm_die "paths with commas or blanks do not work with qemu -fsdev: $results" ;;
esac
# Empty it, but only if it is empty already or one of ours.
if [ -n "$(ls -A "$results")" ] && [ ! -f "$results/.qkdvm-results" ] &&
	{ [ ! -f "$results/cmd" ] || [ ! -f "$results/console" ]; }; then
	vm_die "$results is not empty and not a run-vm.sh results directory: refusing to empty it"
fi
find "$results" -mindepth 1 -delete
: >"$results/.qkdvm-results"

# The command, as a bash script the guest runs from the repo top.
{
	echo '# written by tests/vm/run-vm.sh'
	printf 'cd %q || exit 125\n' "$TOP"
	for e in ${envs[@]+"${envs[@]}"}; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$results/cmd"
printf '%s\n' "$*" >"$results/cmd.txt"

# One VM at a time on this machine (it has few cores, TCG is CPU-bound).
lock=${QKD_VM_LOCK:-/tmp/qkd-vm.lock}
if [ "$lock" != none ] && command -v flock >/dev/null 2>&1; then
	exec 9>>"$lock"
	if ! flock -n 9; then
		vm_log "qkdvm: waiting for another VM to finish ($lock)"
		wstart=$(date +%s)
		flock 9
		vm_log "qkdvm: waited $(($(date +%s) - wstart))s for the VM lock"
	fi
fi

# Leave the guest time to save dmesg and its exit code before the host
# kills it: the guest stops COMMAND at a deadline (host clock, which the
# guest's RTC starts from) margin seconds before the host's timeout, so
# that a slow boot does not eat the margin; qkdvm_timeout is the fallback.
start=$(date +%s)
guest_t=0
deadline=0
if [ "$timeout_s" -gt 0 ]; then
	if [ "$timeout_s" -ge 90 ]; then margin=30; else margin=$((timeout_s / 3)); fi
	guest_t=$((timeout_s - margin))
	[ "$guest_t" -gt 0 ] || guest_t=1
	deadline=$((start + guest_t))
fi

# KVM where this user can use it (benchmarks want it: emulation distorts
# their ratios), else emulation; QKD_VM_ACCEL=tcg|kvm forces one.
#
# A /dev/kvm that opens is not enough: under nested virtualisation it can
# refuse the host CPU's MSRs (qemu aborts: "failed to set MSR 0x10a") or
# fail to emulate an instruction the CPUID advertises ("KVM internal
# error ... emulation failure" in the kernel's decompressor; seen on a
# build machine on 2026-12-06). So the kernel is booted once under KVM
# with no root and must reach the root mount's panic; the verdict is kept
# per boot of this host and kernel image (the probe costs a few seconds).
kvm_usable() {
	local stamp out
	stamp=/tmp/qkd-kvm-probe.$(cat /proc/sys/kernel/random/boot_id 2>/dev/null).$(stat -c %i-%Y "$vmlinuz" 2>/dev/null)
	if [ -f "$stamp" ]; then
		[ "$(cat "$stamp")" = ok ]
		return
	fi
	out=$(timeout -k 5 60 qemu-system-x86_64 -accel kvm -cpu host -m 256 \
		-nographic -no-reboot -nic none -kernel "$vmlinuz" \
		-append 'console=ttyS0 panic=-1 loglevel=4 root=/dev/qkd-none' </dev/null 2>&1)
	if grep -q 'Kernel panic' <<<"$out"; then
		echo ok >"$stamp"
		return 0
	fi
	echo bad >"$stamp"
	vm_log "KVM is there but does not boot this kernel, emulating instead:" \
		"$(grep -m1 -E 'error|Assertion|emulation failure' <<<"$out")"
	return 1
}
accel=${QKD_VM_ACCEL:-}
if [ -z "$accel" ]; then
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && kvm_usable; then accel=kvm; else accel=tcg; fi
fi
case $accel in
kvm) cpu=host ;;
tcg) cpu=max ;;
*) vm_log "QKD_VM_ACCEL=$accel: expected kvm or tcg"; exit 2 ;;
esac
qemu=(qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "$mem" -smp "$smp"
	-nographic -no-reboot -nic none
	"${boot[@]}"
	-append "console=ttyS0 panic=-1 loglevel=4 edd=off $bootargs qkdvm_results=$results qkdvm_timeout=$guest_t qkdvm_deadline=$deadline$append"
	-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"
	-device "virtio-9p-pci,fsdev=root,mount_tag=/dev/root"
	-fsdev "local,id=results,path=$results,security_model=none,multidevs=remap"
	-device "virtio-9p-pci,fsdev=results,mount_tag=qkdvm_results")
if [ -n "$qmp" ]; then
	rm -f "$qmp"
	qemu+=(-qmp "unix:$qmp,server=on,wait=off")
fi

vm_log "qkdvm: $label: $*  (results: ${results#"$TOP"/})"
qpid=
tpid=
# shellcheck disable=SC2317 # called from the traps
cleanup() {
	[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
	[ -z "$tpid" ] || kill "$tpid" 2>/dev/null || true
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
hard_t=$timeout_s
[ "$hard_t" -gt 0 ] || hard_t=1000000
attempt=1
while :; do
	timeout -k 10 "$hard_t" "${qemu[@]}" </dev/null >"$results/console" 2>&1 &
	qpid=$!
	if [ "$quiet" = 0 ]; then
		# Without the firmware's terminal escapes and carriage returns.
		tail -n +1 -f --pid="$qpid" "$results/console" |
			sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[c78]//g' -e 's/\r$//' &
		tpid=$!
	fi
	qrc=0
	wait "$qpid" || qrc=$?
	qpid=
	if [ -n "$tpid" ]; then wait "$tpid" || true; tpid=; fi
	# A kernel that died before userspace ran none of our code (the
	# module is loaded from userspace): boot it once more. The debug
	# kernel under emulation once took a KASAN report in an interrupt 4 ms
	# into its boot, while identifying the CPU. A hang until the timeout
	# is not retried, nor anything once guest-init.sh has spoken.
	if [ "$attempt" = 1 ] && [ ! -f "$results/rc" ] && [ "$qrc" -ne 124 ] &&
	   [ "$qrc" -ne 137 ] && ! grep -q 'qkdvm: \|QKDVM-' "$results/console"; then
		mv "$results/console" "$results/console.boot1"
		vm_log "qkdvm: $label: the kernel died before userspace (${results#"$TOP"/}/console.boot1):"
		tr -d '\r' <"$results/console.boot1" | grep -m 3 'BUG\|panic\|WARNING' | sed 's/^/  /' >&2
		vm_log "qkdvm: $label: booting once more"
		[ -z "$qmp" ] || rm -f "$qmp"
		attempt=2
		continue
	fi
	break
done
elapsed=$(($(date +%s) - start))

rc=
if [ -f "$results/rc" ]; then
	rc=$(tr -dc '0-9' <"$results/rc")
fi
if [ -z "$rc" ]; then
	if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
		vm_log "qkdvm: $label: TIMEOUT: VM killed after ${timeout_s}s"
		rc=124
	else
		vm_log "qkdvm: $label: FAIL: the guest reported no exit code (qemu exit $qrc); console: ${results#"$TOP"/}/console"
		tr -d '\r' <"$results/console" | tail -n 30 >&2
		rc=125
	fi
fi
if [ "$quiet" = 1 ] && [ -f "$results/log" ]; then
	cat "$results/log"
fi

# Kernel problems: in dmesg if the guest saved it, else on the console.
scan=$results/dmesg
if [ ! -s "$scan" ]; then
	vm_log "qkdvm: $label: no dmesg saved; scanning the console instead"
	tr -d '\r' <"$results/console" >"$results/console.txt"
	scan=$results/console.txt
fi
# kmemleak's report (debug kernel; guest-init.sh scans after COMMAND).
if [ -s "$results/kmemleak" ]; then
	cat "$scan" "$results/kmemleak" >"$results/dmesg+kmemleak"
	scan=$results/dmesg+kmemleak
fi
if hits=$(vm_dmesg_scan "$scan"); then
	printf '%s\n' "$hits" >"$results/dmesg-hits"
	vm_log "qkdvm: $label: FAIL: kernel problems in ${scan#"$TOP"/}:"
	printf '%s\n' "$hits" | head -n 40 | sed 's/^/  /' >&2
	n=$(printf '%s\n' "$hits" | wc -l)
	[ "$n" -le 40 ] || vm_log "  ... $((n - 40)) more"
	[ "$rc" -ne 0 ] || rc=123
fi

vm_log "qkdvm: $label: exit $rc after ${elapsed}s"
exit "$rc"
