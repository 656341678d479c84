#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/check-deb.sh: the Debian packages (debian/, issue 18), as TAP.
#   - `dpkg-buildpackage -us -uc -b` builds qkd-dkms, qkd-tools, libqkd0 and qkd-dev
#     from a copy of the tree (tests/lib/build-debs.sh: it writes to the
#     parent directory, a scratch one, never the tree's) into build/deb;
#   - lintian finds no error in them (its warnings are listed as comments);
#   - each package holds what it must: qkd-dkms the module's sources with
#     dkms.conf's version filled in and its kernel range, qkd-tools the
#     tools (saying the version of VERSION), man pages, the unit with
#     /usr/sbin paths, the udev rule, the modules-load.d file, libqkd0 the
#     shared libqkd.so.0 (its soname, a symbols file), and qkd-dev the uapi
#     header, libqkd's headers, libqkd.a, the libqkd.so link, libqkd(3) and
#     the pkg-config file, with which a program builds against the shared
#     and the static library;
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
# leaves out: no build products), built by tests/lib/build-debs.sh into
# build/deb, where the debvm stage (tests/vm/debvm.sh) takes them from
# (built again only when the sources changed)
t0=$SECONDS
debs=$top/build/deb
ch=$(tests/lib/build-debs.sh "$debs" 2>"$T/build-debs.log")
rc=$?
cat "$T/build-debs.log" "$debs/build.log" >"$T/build.log" 2>/dev/null
[ "$rc" -eq 0 ] && [ -f "$ch" ]
tap_check $? "dpkg-buildpackage -us -uc -b builds qkd $ver ($((SECONDS - t0)) s; $(tail -n 1 "$T/build-debs.log"))" "$T/build.log"

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
	echo "$debs/$1_${ver}_$2.deb"
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
	for f in /usr/sbin/qkdctl /usr/sbin/qkdd /usr/sbin/qkd-kme; do has "$T/c" -rwxr-xr-x "$f" || st=1; done
	for f in /usr/share/man/man8/qkdctl.8.gz /usr/share/man/man8/qkdd.8.gz \
		/usr/share/man/man8/qkd-kme.8.gz /usr/share/man/man5/qkd.conf.5.gz \
		/lib/systemd/system/qkd-kme.service \
		/lib/systemd/system/qkdd@.service /lib/systemd/system/qkd@.service \
		/lib/udev/rules.d/60-qkd.rules \
		/usr/lib/modules-load.d/qkd.conf \
		/usr/lib/sysusers.d/qkd.conf /usr/lib/tmpfiles.d/qkd.conf; do
		has "$T/c" -rw-r--r-- "$f" || st=1
	done
	mkdir -p "$T/x/tools" && dpkg-deb -x "$d" "$T/x/tools" || st=1
	u=$T/x/tools/lib/systemd/system/qkdd@.service
	grep -q '^ExecStart=/usr/sbin/qkdd ' "$u" || { echo "unit: ExecStart is not /usr/sbin/qkdd"; st=1; }
	! grep -n '/usr/local\|@[A-Z]*@' "$u" || { echo "unit: /usr/local or @VAR@"; st=1; }
	grep -q '^ExecStart=/usr/sbin/qkd-kme ' "$T/x/tools/lib/systemd/system/qkd-kme.service" ||
		{ echo "qkd-kme.service: ExecStart is not /usr/sbin/qkd-kme"; st=1; }
	grep -q '^ExecStart=/usr/sbin/qkdctl up --foreground %i$' "$T/x/tools/lib/systemd/system/qkd@.service" ||
		{ echo "qkd@.service: ExecStart is not /usr/sbin/qkdctl up --foreground %i"; st=1; }
	for t in qkdctl qkdd qkd-kme; do
		out=$("$T/x/tools/usr/sbin/$t" --version 2>&1)
		echo "$t --version: $out"
		case $out in "$t $ver"*) ;; *) st=1 ;; esac
	done
	dpkg-deb -f "$d" Depends | grep -q "qkd-dkms (= $ver)" || { echo "qkd-tools does not depend on qkd-dkms $ver"; st=1; }
	# the user and /etc/qkd/psk are made at install, the user first
	dpkg-deb -I "$d" postinst >"$T/postinst" 2>&1 || st=1
	su=$(grep -n 'systemd-sysusers .*qkd.conf' "$T/postinst" | cut -d: -f1)
	tf=$(grep -n 'systemd-tmpfiles .*--create qkd.conf' "$T/postinst" | cut -d: -f1)
	[ -n "$su" ] && [ -n "$tf" ] && [ "$su" -lt "$tf" ] ||
		{ echo "postinst: not systemd-sysusers qkd.conf, then systemd-tmpfiles --create qkd.conf"; st=1; }
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkd-tools: qkdctl, qkdd, qkd-kme (--version $ver), man pages, qkdd@.service (ExecStart=/usr/sbin/qkdd), qkd@.service (qkdctl up --foreground %i), qkd-kme.service, udev rule, modules-load.d, sysusers.d and tmpfiles.d (run by the postinst, in that order)" "$log"

d=$(pkg libqkd0 "$arch")
{
	st=0
	ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	contents "$d" >"$T/c" || st=1
	cat "$T/c"
	has "$T/c" -rw-r--r-- "/usr/lib/$ma/libqkd.so.$ver" || st=1
	dpkg-deb --fsys-tarfile "$d" | tar -tvf - |
		grep -q "^l.* ./usr/lib/$ma/libqkd.so.0 -> libqkd.so.$ver\$" ||
		{ echo "no link libqkd.so.0 -> libqkd.so.$ver"; st=1; }
	# nothing of the -dev package in the runtime package
	if grep -E '\.a$|libqkd\.so$|/include/|pkgconfig' "$T/c"; then echo "^ development files in libqkd0"; st=1; fi
	mkdir -p "$T/x/lib" && dpkg-deb -x "$d" "$T/x/lib" || st=1
	sn=$(readelf -d "$T/x/lib/usr/lib/$ma/libqkd.so.$ver" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	echo "SONAME: $sn"
	[ "$sn" = libqkd.so.0 ] || st=1
	dpkg-deb --ctrl-tarfile "$d" | tar -tf - | grep -qx './symbols' || { echo "no symbols file"; st=1; }
	dpkg-deb -I "$d" symbols | grep -q '^ qkd_open_connect@LIBQKD_0 ' || { echo "symbols: no qkd_open_connect@LIBQKD_0"; st=1; }
	# debian/libqkd0.symbols lists exactly what the library exports
	# (dpkg-gensymbols only warns of a new export and adds it to the
	# package's copy, so the source file is compared)
	sed -n 's/^ \(qkd_[A-Za-z0-9_]*\)@LIBQKD_0 .*/\1/p' debian/libqkd0.symbols | sort >"$T/sym.file"
	nm -D --defined-only "$T/x/lib/usr/lib/$ma/libqkd.so.$ver" | awk '{print $3}' |
		sed -n 's/^\(qkd_[A-Za-z0-9_]*\)@@*LIBQKD_0$/\1/p' | sort >"$T/sym.so"
	if ! cmp -s "$T/sym.file" "$T/sym.so" || [ ! -s "$T/sym.so" ]; then
		echo "debian/libqkd0.symbols and the exports differ (< symbols file, > exported):"
		diff "$T/sym.file" "$T/sym.so"
		st=1
	fi
	dpkg-deb -f "$d" Package Section Multi-Arch
	[ "$(dpkg-deb -f "$d" Section)" = libs ] || st=1
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "libqkd0: libqkd.so.$ver (SONAME libqkd.so.0) and its .so.0 link, a symbols file of version LIBQKD_0 listing exactly the exports, no development file" "$log"

d=$(pkg qkd-dev "$arch")
{
	st=0
	ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	contents "$d" >"$T/c" || st=1
	for f in /usr/include/linux/qkd.h /usr/include/linux/qkd_dev.h /usr/include/qkd/nl.h \
		/usr/include/qkd/dev.h /usr/include/qkd/ids.h /usr/include/qkd/etsi004.h \
		"/usr/lib/$ma/libqkd.a" "/usr/lib/$ma/pkgconfig/libqkd.pc" \
		/usr/share/man/man3/libqkd.3.gz; do
		has "$T/c" -rw-r--r-- "$f" || st=1
	done
	dpkg-deb --fsys-tarfile "$d" | tar -tvf - |
		grep -q "^l.* ./usr/lib/$ma/libqkd.so -> libqkd.so.0\$" ||
		{ echo "no link libqkd.so -> libqkd.so.0"; st=1; }
	dpkg-deb -f "$d" Depends | grep -q "libqkd0 (= $ver)" || { echo "qkd-dev does not depend on libqkd0 $ver"; st=1; }
	mkdir -p "$T/x/dev" && dpkg-deb -x "$d" "$T/x/dev" || st=1
	# both packages in one tree, as installed
	cp -a "$T/x/lib/usr/lib/$ma/." "$T/x/dev/usr/lib/$ma/" || st=1
	# a program built against the packages alone: the headers and library
	# from them, their pkg-config file's flags; once with the shared
	# library (run with the package's libqkd.so.0), once static
	cat >"$T/use.c" <<-'EOF'
	#include <stdio.h>
	#include <string.h>
	#include <qkd/nl.h>
	#include <qkd/dev.h>
	#include <qkd/etsi004.h>
	int main(void)
	{
		struct qkd_nl *nl = NULL;
		uint8_t ksid[QKD_004_KSID_LEN] = { 1 };

		if (qkd_nl_open(&nl) == 0)
			qkd_nl_close(nl);
		/* no such connection: refused, whatever the host has */
		if (qkd_close(ksid) != QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE)
			return 1;
		printf("linked %s\n", qkd_004_status_name(QKD_STATUS_TIMEOUT_ERROR));
		return 0;
	}
	EOF
	pc=$T/x/dev/usr/lib/$ma/pkgconfig
	sed -i "s|=/usr|=$T/x/dev/usr|" "$pc/libqkd.pc"
	flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs libqkd) || st=1
	echo "pkg-config: $flags"
	# shellcheck disable=SC2086 # pkg-config's words
	cc -std=c11 -Wall -Werror -o "$T/use" "$T/use.c" $flags >"$T/cc.log" 2>&1 || { cat "$T/cc.log"; st=1; }
	readelf -d "$T/use" | grep -q 'NEEDED.*\[libqkd\.so\.0\]' || { echo "not linked with libqkd.so.0"; st=1; }
	out=$(LD_LIBRARY_PATH=$T/x/dev/usr/lib/$ma "$T/use" 2>&1)
	echo "shared: $out"
	[ "$out" = "linked TIMEOUT_ERROR" ] || st=1
	sflags=$(PKG_CONFIG_PATH=$pc pkg-config --static --cflags --libs libqkd) || st=1
	echo "pkg-config --static: $sflags"
	sflags=$(echo "$sflags" | sed 's/-lqkd\b/-l:libqkd.a/')
	# shellcheck disable=SC2086 # pkg-config's words
	cc -std=c11 -Wall -Werror -o "$T/use-static" "$T/use.c" $sflags >"$T/cc.log" 2>&1 || { cat "$T/cc.log"; st=1; }
	readelf -d "$T/use-static" | grep -q 'libqkd' && { echo "static build needs libqkd.so"; st=1; }
	out=$("$T/use-static" 2>&1)
	echo "static: $out"
	[ "$out" = "linked TIMEOUT_ERROR" ] || st=1
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkd-dev: uapi headers, libqkd's headers (etsi004.h), libqkd.a, the libqkd.so link, libqkd(3), libqkd.pc, depends on libqkd0 $ver; a program builds with them alone, shared and static" "$log"

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
