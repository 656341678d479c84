#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# PID 1 of the test VM (tests/vm/run-vm.sh boots it; the initramfs made by
# tests/vm/mkinitrd.sh switch_roots here, or the debug kernel, which mounts
# the 9p root itself, runs it as init). The root filesystem is the host's
# / over 9p, read-only. The kernel command line passes, as environment:
#   qkdvm_results  absolute host path of this run's results directory; a
#                  writable 9p export of it (tag qkdvm_results) is mounted
#                  over the same path
#   qkdvm_timeout  seconds the command may run (0: no limit)
#   qkdvm_deadline host time (epoch seconds) by which the command must stop,
#                  when the boot took part of the budget (0: none)
#   qkdvm_modules  (debug kernel) a /lib/modules/KREL made by
#                  build-debug-kernel.sh, mounted at /lib/modules/$(uname -r)
#                  so that modprobe of built-in modules succeeds
#   qkdvm_systemd  1: run by systemd as qkdvm.service (run-vm.sh --systemd,
#                  tests/vm/guest-systemd-setup.sh): nothing to mount but
#                  the results; the journal is saved to $qkdvm_results/journal
# The command to run is "$qkdvm_results/cmd" (a bash script written by
# run-vm.sh). Its output goes to the console and to $qkdvm_results/log, its
# exit code to $qkdvm_results/rc, dmesg to $qkdvm_results/dmesg; with
# kmemleak in the kernel, what a scan after the command finds (objects
# allocated before it are cleared first) to $qkdvm_results/kmemleak; then the
# VM powers off. This script must never return: PID 1 exiting panics the guest.
set -eu

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LANG=C.UTF-8 TERM=dumb
R=${qkdvm_results:-}
T=${qkdvm_timeout:-0}
D=${qkdvm_deadline:-0}
M=${qkdvm_modules:-}
unset qkdvm_results qkdvm_timeout qkdvm_deadline qkdvm_init qkdvm_modules

say() { echo "qkdvm: $*"; }

off() {
	trap - EXIT
	sync || true
	busybox poweroff -f || true
	echo o >/proc/sysrq-trigger || true
	while :; do sleep 60; done
}
trap 'say "guest-init.sh failed (line $LINENO)"; echo "QKDVM-RC: init-failed"; off' EXIT

# Booted without an initramfs (the debug kernel; run-vm.sh then passes
# qkdvm_noinitrd=1): nothing is mounted but / and /dev (devtmpfs). /proc
# and /sys are the host's directories over 9p, in which qemu serves the
# host's procfs and sysfs (even statfs says "proc"): mount ours over them.
if [ "${qkdvm_noinitrd:-0}" = 1 ]; then
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev
fi
unset qkdvm_noinitrd

# run-vm.sh --systemd: systemd is PID 1 and runs this script as
# qkdvm.service (tests/vm/guest-systemd-setup.sh); / is an overlay with a
# tmpfs upper layer, /proc, /sys, /run, /dev and the cgroups are systemd's.
S=${qkdvm_systemd:-0}
unset qkdvm_systemd
if [ "$S" != 1 ]; then
# Writable places; the rest of / stays the host's, read-only. A checkout
# under the host's /tmp or /run (CI clones anywhere) must stay visible: keep
# the host's directory reachable and bind its top-level entry back over the
# new tmpfs.
for d in /tmp /run; do
	case $R in
	"$d"/*) ;;
	*) continue ;;
	esac
	keep=/dev/.qkdvm-host$d
	mkdir -p "$keep"
	mount --bind "$d" "$keep"
done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
for d in /tmp /run; do
	keep=/dev/.qkdvm-host$d
	[ -d "$keep" ] || continue
	first=${R#"$d"/}
	first=${first%%/*}
	mkdir -p "$d/$first"
	mount --bind "$keep/$first" "$d/$first"
done
mkdir -p /dev/pts /dev/shm /run/lock
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || true
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || true
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
mount --make-rshared / 2>/dev/null || true
fi

[ -n "$R" ] || { say "no qkdvm_results= on the kernel command line"; exit 1; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 qkdvm_results "$R"

hostname qkdvm 2>/dev/null || true
ip link set lo up

# A kernel with everything built in has no modules directory on the host:
# give modprobe the kernel's modules.builtin.
if [ -n "$M" ] && [ ! -d "/lib/modules/$(uname -r)" ] && [ -d "$M" ]; then
	mount -t tmpfs -o mode=755 tmpfs /lib/modules
	mkdir -p "/lib/modules/$(uname -r)"
	mount --bind "$M" "/lib/modules/$(uname -r)"
fi
# Leaks found after the command are the command's, not the boot's.
leak=/sys/kernel/debug/kmemleak
if [ -w "$leak" ]; then
	echo scan >"$leak" 2>/dev/null || true
	echo clear >"$leak" 2>/dev/null || true
fi

# The boot used part of the time: stop at the host's deadline (the RTC
# starts from the host clock), at least 10 s from now, at most T.
if [ "$D" -gt 0 ] 2>/dev/null && [ "$T" -gt 0 ] 2>/dev/null; then
	left=$((D - $(date +%s)))
	[ "$left" -ge 10 ] || left=10
	[ "$left" -ge "$T" ] || T=$left
fi

export QKDVM_RESULTS=$R
: >"$R/log"
say "$(uname -r): running $(head -c 400 "$R/cmd.txt" 2>/dev/null || echo "$R/cmd")"
echo "QKDVM-START"
if [ "$T" -gt 0 ] 2>/dev/null; then
	timeout -k 10 "$T" bash "$R/cmd" </dev/null >>"$R/log" 2>&1 &
else
	bash "$R/cmd" </dev/null >>"$R/log" 2>&1 &
fi
cpid=$!
tail -n +1 -f --pid="$cpid" "$R/log" &
tpid=$!
rc=0
wait "$cpid" || rc=$?
wait "$tpid" || true
if [ "$rc" -eq 124 ] && [ "$T" -gt 0 ]; then
	say "command timed out after ${T}s; blocked tasks follow in dmesg"
	echo w >/proc/sysrq-trigger 2>/dev/null || true
fi
if [ -w "$leak" ]; then
	# kmemleak reports an object only when it is 5 s old: scan twice.
	say "kmemleak scan"
	echo scan >"$leak" 2>/dev/null || true
	sleep 6
	echo scan >"$leak" 2>/dev/null || true
	cat "$leak" >"$R/kmemleak" 2>/dev/null || true
	if [ -s "$R/kmemleak" ]; then
		say "kmemleak: $(grep -c 'unreferenced object' "$R/kmemleak") unreferenced objects (see kmemleak)"
		head -n 30 "$R/kmemleak"
	fi
fi
dmesg >"$R/dmesg" || say "dmesg failed"
if [ "$S" = 1 ]; then
	journalctl -b --no-pager -o short-monotonic >"$R/journal" 2>&1 || say "journalctl failed"
fi
echo "$rc" >"$R/rc"
sync
[ -z "$(tail -c 1 "$R/log")" ] || echo
echo "QKDVM-RC: $rc"
off
