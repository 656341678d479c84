#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# mkinitrd.sh KVER OUTFILE
#
# Build a tiny initramfs for booting Debian kernel KVER under qemu with the
# host's / shared read-only over virtio-9p (see /work/shared/VM.md and
# tests/vm/README.md). Contents: busybox-static, the modules that
#   modprobe -S KVER --show-depends virtio_pci 9pnet_virtio 9p
# lists (in order, deduplicated, decompressed), and an /init that mounts
# proc/sys/devtmpfs, loads them, mounts the 9p root on /newroot and
# switch_roots to the script named by the kernel command line parameter
# qkdvm_init=PATH (default /sbin/init).
# With qkdvm_systemd=1 (run-vm.sh --systemd) the 9p root is instead the
# read-only lower layer of an overlayfs over a tmpfs (the guest may install
# packages, write /etc and /var: all gone at power-off), qkdvm_init=PATH is
# run in a chroot of it first (to write the guest's units), and systemd
# (/lib/systemd/systemd) becomes PID 1.
#
# The image is rebuilt only when this script, the kernel, its modules or
# busybox change (a stamp next to OUTFILE records what it was built from).
set -eu

[ $# -eq 2 ] || { echo "usage: ${0##*/} KVER OUTFILE" >&2; exit 2; }
kver=$1
out=$2
moddir=/lib/modules/$kver
busybox=${BUSYBOX:-/bin/busybox}

[ -f "/boot/vmlinuz-$kver" ] || { echo "${0##*/}: no /boot/vmlinuz-$kver" >&2; exit 2; }
[ -d "$moddir" ] || { echo "${0##*/}: no $moddir" >&2; exit 2; }
[ -x "$busybox" ] || { echo "${0##*/}: no $busybox (apt-get install busybox-static)" >&2; exit 2; }
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	command -v file >/dev/null 2>&1 &&
		{ echo "${0##*/}: $busybox is not static (install busybox-static)" >&2; exit 2; }
fi

# What the image depends on: this script (which holds /init), the kernel,
# its module index, busybox.
stamp() {
	sha256sum "$0" | cut -d' ' -f1
	stat -L -c '%n %s %Y' "/boot/vmlinuz-$kver" "$moddir/modules.dep" "$busybox"
}
want=$(stamp)
if [ -f "$out" ] && [ -f "$out.stamp" ] && [ "$(cat "$out.stamp")" = "$want" ]; then
	exit 0
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "${out}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/bin "$root"/dev "$root"/proc "$root"/sys "$root"/newroot "$root"/lib/modules
cp "$busybox" "$root/bin/busybox"
for a in sh mount umount insmod mkdir switch_root chroot sleep cat echo ls poweroff; do
	ln -s busybox "$root/bin/$a"
done
# /dev/console for the kernel to open before /init runs (we are root when
# building; if not, /init re-opens the console from devtmpfs anyway).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# Modules, in dependency order, first occurrence wins. "builtin X" lines
# (6.12 has virtio_pci built in) need nothing.
: >"$root/lib/modules/load.list"
n=0
for m in virtio_pci 9pnet_virtio 9p overlay; do
	modprobe -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
	n=$((n + 1))
	base=$(basename "$ko")
	base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
	dst=$(printf '%02d-%s' "$n" "$base")
	case $ko in
	*.ko.xz) xz -dc "$ko" >"$root/lib/modules/$dst" ;;
	*.ko.zst) zstd -qdc "$ko" >"$root/lib/modules/$dst" ;;
	*.ko.gz) gzip -dc "$ko" >"$root/lib/modules/$dst" ;;
	*.ko) cp "$ko" "$root/lib/modules/$dst" ;;
	*) echo "${0##*/}: unexpected module path $ko" >&2; exit 1 ;;
	esac
	echo "$dst" >>"$root/lib/modules/load.list"
done

cat >"$root/init" <<'INIT'
#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# initramfs /init written by tests/vm/mkinitrd.sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
fail() {
	echo "qkdvm-initramfs: $*"
	echo "QKDVM-RC: initramfs-failed"
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}
while read -r m; do
	insmod "/lib/modules/$m" || fail "insmod $m failed"
done </lib/modules/load.list
i=0
# cache=loose: the guest keeps what it read of the read-only root (see
# tests/vm/README.md, "The root's cache"): each exec no longer reads its
# binary and libraries again over 9p.
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose /dev/root /newroot; do
	i=$((i + 1))
	[ $i -lt 20 ] || fail "cannot mount the 9p root (/dev/root)"
	sleep 0.2
done
init=${qkdvm_init:-/sbin/init}
[ -x "/newroot$init" ] || fail "$init is not executable in the 9p root"
if [ "${qkdvm_systemd:-0}" = 1 ]; then
	# the 9p root as the lower layer, a tmpfs as the upper one
	mkdir -p /lower /rw
	mount --move /newroot /lower || fail "mount --move /newroot /lower"
	mount -t tmpfs -o mode=755 tmpfs /rw || fail "tmpfs /rw"
	mkdir -p /rw/upper /rw/work
	mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
		fail "cannot mount the overlay root"
	mount --bind /dev /newroot/dev
	mount --bind /proc /newroot/proc
	mount --bind /sys /newroot/sys
	chroot /newroot "$init" || fail "$init failed in the chroot"
	umount /newroot/sys /newroot/proc /newroot/dev
	init=/lib/systemd/systemd
fi
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot "$init"
INIT
chmod 755 "$root/init"

(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
	gzip -9 >"$tmp/initrd.gz"
mv -f "$tmp/initrd.gz" "$out"
printf '%s\n' "$want" >"$out.stamp"
