#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/check-deb.sh: the Debian packages (debian/, issue 18), as TAP.
#   - `dpkg-buildpackage -us -uc -b` builds qkd-dkms, qkd-tools and qkd-dev
#     from a copy of the tree (it writes to the parent directory: a scratch
#     one, never the tree's);
#   - lintian finds no error in them (its warnings are listed as comments);
#   - each package holds what it must: qkd-dkms the module's sources with
#     dkms.conf's version filled in and its kernel range, qkd-tools the
#     tools (saying the version of VERSION), man pages, the unit with
#     /usr/sbin paths, the udev rule, the modules-load.d file, and qkd-dev
#     the uapi header, libqkd and its pkg-config file;
#   - with -k (or QKD_DEB_DKMS=1): DKMS builds qkd.ko from the installed
#     layout of qkd-dkms, in a private DKMS tree, for the newest installed
#     kernel headers (the VM test that installs the packages is separate).
# Run by `make stress` (with -k) and `make check-deb`; about 100 s on a
# loaded two-core machine, plus a minute for -k.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
dkms_build=${QKD_DEB_DKMS:-0}
[ "${1:-}" = -k ] && dkms_build=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tap.sh
. tests/lib/tap.sh
ver=$(cat VERSION)
arch=$(dpkg --print-architecture)
log=$T/log

# the tree as git sees it (tracked and new files, not what .gitignore
# leaves out: no build products)
mkdir -p "$T/src/qkd"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -cf - -T - | tar -C "$T/src/qkd" -xf -

t0=$SECONDS
(cd "$T/src/qkd" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" \
	dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1
rc=$?
ch=$T/src/qkd_${ver}_$arch.changes
[ "$rc" -eq 0 ] && [ -f "$ch" ]
tap_check $? "dpkg-buildpackage -us -uc -b builds qkd $ver ($((SECONDS - t0)) s)" "$T/build.log"

t0=$SECONDS
if [ -f "$ch" ]; then
	lintian --fail-on error --display-info "$ch" >"$log" 2>&1
	rc=$?
else
	echo "no .changes" >"$log"
	rc=1
fi
grep -E '^[WIPX]: ' "$log" | sed 's/^/# lintian: /'
tap_check $rc "lintian: no error in the packages ($(grep -c '^W: ' "$log") warnings, $((SECONDS - t0)) s)" "$log"

# contents: one package a check, each file named
contents() { # DEB: "path" lines, directories left out
	dpkg-deb --fsys-tarfile "$1" | tar -tvf - | awk '$1 !~ /^d/ { print $1, substr($6, 2) }'
}
pkg() { # NAME ARCH
	echo "$T/src/$1_${ver}_$2.deb"
}
has() { # LISTING MODE PATH
	grep -qxF -- "$2 $3" "$1" || { echo "missing: $2 $3"; return 1; }
}

d=$(pkg qkd-dkms all)
{
	st=0
	contents "$d" >"$T/c" || st=1
	s=/usr/src/qkd-$ver
	for f in Kbuild VERSION dkms.conf kernel/main.c kernel/store.c kernel/qkd.h kernel/compat.h \
		include/uapi/linux/qkd.h include/uapi/linux/qkd_dev.h include/linux/qkd.h \
		kernel/netlink-gen.c kernel/netlink-gen.h; do
		has "$T/c" -rw-r--r-- "$s/$f" || st=1
	done
	# every source of the module in the tree is in the package
	for f in kernel/*.c kernel/*.h; do has "$T/c" -rw-r--r-- "$s/$f" || st=1; done
	mkdir -p "$T/x/dkms" && dpkg-deb -x "$d" "$T/x/dkms" || st=1
	conf=$T/x/dkms$s/dkms.conf
	grep -qx "PACKAGE_VERSION=\"$ver\"" "$conf" || { echo "dkms.conf: PACKAGE_VERSION is not $ver"; st=1; }
	grep -q '^BUILD_EXCLUSIVE_KERNEL=' "$conf" && grep -q '^BUILD_EXCLUSIVE_CONFIG="CONFIG_64BIT"' "$conf" ||
		{ echo "dkms.conf: no kernel range"; st=1; }
	dpkg-deb -f "$d" Depends | grep -q dkms || { echo "qkd-dkms does not depend on dkms"; st=1; }
	dpkg-deb --ctrl-tarfile "$d" | tar -tf - | grep -q postinst || { echo "no postinst (dh_dkms)"; st=1; }
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkd-dkms: the module's sources under /usr/src/qkd-$ver, dkms.conf with version $ver and the kernel range, dkms postinst" "$log"

d=$(pkg qkd-tools "$arch")
{
	st=0
	contents "$d" >"$T/c" || st=1
	for f in /usr/sbin/qkdctl /usr/sbin/qkdd; do has "$T/c" -rwxr-xr-x "$f" || st=1; done
	for f in /usr/share/man/man8/qkdctl.8.gz /usr/share/man/man8/qkdd.8.gz \
		/usr/share/man/man5/qkd.conf.5.gz \
		/lib/systemd/system/qkdd@.service /lib/systemd/system/qkd@.service \
		/lib/udev/rules.d/60-qkd.rules \
		/usr/lib/modules-load.d/qkd.conf; do
		has "$T/c" -rw-r--r-- "$f" || st=1
	done
	mkdir -p "$T/x/tools" && dpkg-deb -x "$d" "$T/x/tools" || st=1
	u=$T/x/tools/lib/systemd/system/qkdd@.service
	grep -q '^ExecStart=/usr/sbin/qkdd ' "$u" || { echo "unit: ExecStart is not /usr/sbin/qkdd"; st=1; }
	! grep -n '/usr/local\|@[A-Z]*@' "$u" || { echo "unit: /usr/local or @VAR@"; st=1; }
	grep -q '^ExecStart=/usr/sbin/qkdctl up %i$' "$T/x/tools/lib/systemd/system/qkd@.service" ||
		{ echo "qkd@.service: ExecStart is not /usr/sbin/qkdctl up %i"; st=1; }
	for t in qkdctl qkdd; do
		out=$("$T/x/tools/usr/sbin/$t" --version 2>&1)
		echo "$t --version: $out"
		case $out in "$t $ver"*) ;; *) st=1 ;; esac
	done
	dpkg-deb -f "$d" Depends | grep -q "qkd-dkms (= $ver)" || { echo "qkd-tools does not depend on qkd-dkms $ver"; st=1; }
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkd-tools: qkdctl, qkdd (--version $ver), man pages, qkdd@.service (ExecStart=/usr/sbin/qkdd), qkd@.service (qkdctl up %i), udev rule, modules-load.d" "$log"

d=$(pkg qkd-dev "$arch")
{
	st=0
	ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	contents "$d" >"$T/c" || st=1
	for f in /usr/include/linux/qkd.h /usr/include/linux/qkd_dev.h /usr/include/qkd/nl.h \
		/usr/include/qkd/dev.h /usr/include/qkd/ids.h \
		"/usr/lib/$ma/libqkd.a" "/usr/lib/$ma/pkgconfig/libqkd.pc"; do
		has "$T/c" -rw-r--r-- "$f" || st=1
	done
	mkdir -p "$T/x/dev" && dpkg-deb -x "$d" "$T/x/dev" || st=1
	# a program built against the package alone: the header and library
	# from the package, its pkg-config file's flags
	cat >"$T/use.c" <<-'EOF'
	#include <stdio.h>
	#include <qkd/nl.h>
	#include <qkd/dev.h>
	int main(void)
	{
		struct qkd_nl *nl = NULL;

		if (qkd_nl_open(&nl) == 0)
			qkd_nl_close(nl);
		printf("linked\n");
		return 0;
	}
	EOF
	pc=$T/x/dev/usr/lib/$ma/pkgconfig
	sed -i "s|=/usr|=$T/x/dev/usr|" "$pc/libqkd.pc"
	flags=$(PKG_CONFIG_PATH=$pc pkg-config --static --cflags --libs libqkd) || st=1
	echo "pkg-config: $flags"
	# shellcheck disable=SC2086 # pkg-config's words
	cc -std=c11 -Wall -Werror -o "$T/use" "$T/use.c" $flags >"$T/cc.log" 2>&1 &&
		[ "$("$T/use")" = linked ] || { cat "$T/cc.log"; st=1; }
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkd-dev: uapi header, libqkd.a and headers, libqkd.pc; a program builds and links with them alone" "$log"

if [ "$dkms_build" = 1 ]; then
	{
		st=0
		kver=$(ls -d /lib/modules/*/build | sort -V | tail -n 1 | xargs dirname | xargs basename)
		src=$T/x/dkms/usr/src
		mkdir -p "$T/dkmstree"
		dkms add --sourcetree "$src" --dkmstree "$T/dkmstree" -m qkd -v "$ver" &&
			dkms build --sourcetree "$src" --dkmstree "$T/dkmstree" -m qkd -v "$ver" -k "$kver" || st=1
		ko=$(find "$T/dkmstree" -name 'qkd.ko*' | head -n 1)
		echo "built: ${ko:-nothing}"
		[ -n "$ko" ] && [ "$(modinfo -F version "$ko")" = "$ver" ] || st=1
		[ "$st" -eq 0 ]
	} >"$log" 2>&1
	tap_check $? "DKMS builds qkd.ko $ver from qkd-dkms's /usr/src for the newest installed kernel" "$log"
fi

echo "1..$TAP_CHECKS"
[ "$TAP_CHECKS_FAILED" -eq 0 ]
