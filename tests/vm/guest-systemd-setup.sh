#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# run-vm.sh --systemd: the initramfs (tests/vm/mkinitrd.sh) runs this in a
# chroot of the guest's root -- the host's / read-only under an overlayfs
# with a tmpfs upper layer -- before it execs systemd as PID 1. It makes the
# boot minimal and runs the test command as a unit:
#   - the default target is qkdvm.target: basic.target (journald, udevd,
#     systemd-modules-load, sysusers, tmpfiles) and qkdvm.service, nothing
#     of multi-user.target (no getty, network, database, timers);
#   - units that do not apply to a throw-away guest under emulation are
#     masked (time sync, hwdb and catalog updates, ldconfig, the host's
#     timers); /etc/fstab is emptied (the host's disks are not there);
#   - qkdvm.service runs tests/vm/guest-init.sh with qkdvm_systemd=1: it
#     mounts the results share, runs the command, saves log, rc, dmesg and
#     the journal, and powers the guest off (as in the busybox mode).
# The kernel command line's qkdvm_* parameters reach this script as
# environment (the kernel passes them to init) and go into the unit.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
top=$(cd "$(dirname "$0")/../.." && pwd -P)
u=/etc/systemd/system

: >/etc/fstab
# systemd-tmpfiles --remove empties /tmp at boot ("D /tmp" in Debian's
# tmp.conf), which hid a checkout under the host's /tmp (a mktemp -d
# clone: "guest-init.sh: No such file or directory"); create, never clean
echo 'd /tmp 1777 root root -' >/etc/tmpfiles.d/tmp.conf
# the host is a container: its marker would make systemd believe the guest is one
rm -f /.dockerenv /run/.containerenv
echo qkdvm >/etc/hostname
# a machine id of its own (the journal wants one); the host's is not used
rm -f /etc/machine-id
systemd-machine-id-setup >/dev/null 2>&1 || true

for m in systemd-timesyncd.service systemd-pstore.service \
	systemd-hwdb-update.service systemd-journal-catalog-update.service \
	ldconfig.service systemd-update-done.service systemd-firstboot.service \
	systemd-random-seed.service e2scrub_reap.service \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
	e2scrub_all.timer fstrim.timer man-db.timer \
	getty@tty1.service serial-getty@ttyS0.service \
	systemd-networkd.service networking.service postgresql.service \
	remote-fs.target; do
	ln -sf /dev/null "$u/$m"
done

cat >"$u/qkdvm.target" <<EOF
[Unit]
Description=qkd VM test (tests/vm/run-vm.sh --systemd)
Requires=basic.target qkdvm.service
After=basic.target qkdvm.service
AllowIsolate=yes
EOF

{
	echo '[Unit]'
	echo 'Description=qkd VM test command'
	echo 'After=basic.target systemd-udev-trigger.service systemd-modules-load.service'
	echo '[Service]'
	echo 'Type=oneshot'
	echo 'StandardInput=null'
	echo 'StandardOutput=tty'
	echo 'StandardError=tty'
	echo 'TTYPath=/dev/console'
	echo 'TimeoutStartSec=infinity'
	for v in qkdvm_results qkdvm_timeout qkdvm_deadline; do
		eval "val=\${$v:-}"
		# shellcheck disable=SC2154 # set by the eval
		printf 'Environment=%s=%s\n' "$v" "$val"
	done
	echo 'Environment=qkdvm_systemd=1'
	echo "ExecStart=/bin/bash $top/tests/vm/guest-init.sh"
} >"$u/qkdvm.service"
ln -sf qkdvm.target "$u/default.target"
