#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/check-install.sh: the build and install interface a
# distribution uses (issue 18, "Build and packages"), as TAP. Run by
# tests/lib/lint.sh (the lint stage), which counts each result.
#   - `make install DESTDIR=T PREFIX=/usr` puts exactly the expected files,
#     with their modes, under the vendor directories (/usr/lib/systemd,
#     /usr/lib/udev, /usr/lib/modules-load.d), and no installed unit or
#     pkg-config file names /usr/local;
#   - `make uninstall` with the same DESTDIR and PREFIX leaves no file;
#   - the tools are hardened by default (PIE, full RELRO, BIND_NOW, stack
#     protector, FORTIFY) and say the version of VERSION; so do the
#     module's MODULE_VERSION, the man pages and debian/changelog;
#   - CFLAGS, CPPFLAGS and LDFLAGS reach the compile and link lines, after
#     the project's own (CFLAGS=-O0 wins over -O2 and drops FORTIFY, which
#     needs optimisation), and -Werror is there only with WERROR=1;
#   - `make module` warns when it builds for another kernel than the
#     running one;
#   - the installed qkdd@.service and qkd@.service: both User=qkdd (the
#     sysusers.d and tmpfiles.d files installed), systemd-analyze
#     security's exposure at most 2.5 (of 10) each, and systemd-analyze
#     verify without a warning.
# About 20 s once the tree is built (the module and tools are rebuilt only
# if out of date; the tools are built with WERROR=1, as tests/run-all.sh
# builds them, so that their flag stamp stays).
set -u
unset MAKEFLAGS MFLAGS
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# shellcheck source=tap.sh
. tests/lib/tap.sh
ver=$(cat VERSION)
d=$T/dest
log=$T/log

# ---- install: the files, their modes, nothing else
: >"$log"
{
	make -s install DESTDIR="$d" PREFIX=/usr WERROR=1 >"$T/install.log" 2>&1 ||
		{ echo "make install failed:"; cat "$T/install.log"; }
	# expected: MODE PATH (the module's name depends on the kernel's
	# module compression: qkd.ko*)
	cat >"$T/want" <<-EOF
	755 /usr/sbin/qkdctl
	755 /usr/sbin/qkdd
	755 /usr/sbin/qkd-kme
	644 /usr/share/man/man8/qkd-kme.8
	644 /usr/share/man/man8/qkdctl.8
	644 /usr/share/man/man8/qkdd.8
	644 /usr/share/man/man5/qkd.conf.5
	644 /usr/lib/systemd/system/qkdd@.service
	644 /usr/lib/systemd/system/qkd-kme.service
	644 /usr/lib/systemd/system/qkd@.service
	644 /usr/lib/udev/rules.d/60-qkd.rules
	644 /usr/lib/modules-load.d/qkd.conf
	644 /usr/lib/sysusers.d/qkd.conf
	644 /usr/lib/tmpfiles.d/qkd.conf
	644 /usr/include/linux/qkd.h
	644 /usr/include/linux/qkd_dev.h
	644 /usr/include/qkd/crypto.h
	644 /usr/include/qkd/dev.h
	644 /usr/include/qkd/etsi004.h
	644 /usr/include/qkd/ids.h
	644 /usr/include/qkd/json.h
	644 /usr/include/qkd/nl.h
	644 /usr/include/qkd/sa.h
	644 /usr/include/qkd/util.h
	644 /usr/lib/libqkd.a
	644 /usr/lib/libqkd.so.$ver
	777 /usr/lib/libqkd.so.0
	777 /usr/lib/libqkd.so
	644 /usr/share/man/man3/libqkd.3
	644 /usr/lib/pkgconfig/libqkd.pc
	644 /lib/modules/KVER/updates/qkd.ko
	EOF
	# what is there: depmod's index files of the DESTDIR tree (made by
	# modules_install) are not ours
	(cd "$d" 2>/dev/null && find . \( -type f -o -type l \) -printf '%m /%P\n') |
		sed -E 's#^([0-9]+ /lib/modules/)[^/]+(/updates/qkd\.ko)(\.(xz|zst|gz))?$#\1KVER\2#' |
		grep -vE '^[0-9]+ /lib/modules/[^/]+/modules\.[a-z.]+$' | sort >"$T/have"
	sort "$T/want" >"$T/want.s"
	if ! cmp -s "$T/want.s" "$T/have"; then
		echo "installed files (mode path) differ from the expected ones (< expected, > installed):"
		diff "$T/want.s" "$T/have"
		false
	fi
} >"$log" 2>&1
tap_check $? "make install DESTDIR= PREFIX=/usr: exactly the expected files and modes (tools, man pages, unit, udev rule, modules-load.d, sysusers.d, tmpfiles.d, uapi header, libqkd static and shared, module)" "$log"

# ---- the shared libqkd: its soname, its symlinks, and only the public
# API exported (every exported function declared in an installed header,
# each of version LIBQKD_0; the library's internals, such as the 004
# helpers qkd004_* and libnl glue, not reachable), hardened like the tools
{
	st=0
	so=$d/usr/lib/libqkd.so.$ver
	sn=$(readelf -d "$so" 2>&1 | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	echo "SONAME: $sn"
	[ "$sn" = libqkd.so.0 ] || { echo "SONAME is not libqkd.so.0"; st=1; }
	[ "$(readlink "$d/usr/lib/libqkd.so.0")" = "libqkd.so.$ver" ] || { echo "libqkd.so.0 does not point at libqkd.so.$ver"; st=1; }
	[ "$(readlink "$d/usr/lib/libqkd.so")" = libqkd.so.0 ] || { echo "libqkd.so does not point at libqkd.so.0"; st=1; }
	readelf -d "$so" | grep -q 'BIND_NOW\|FLAGS.*NOW' || { echo "no BIND_NOW"; st=1; }
	readelf -l "$so" | grep -q GNU_RELRO || { echo "no RELRO"; st=1; }
	nm -D --defined-only "$so" >"$T/syms" 2>&1 || st=1
	# "ADDR T name@@LIBQKD_0"; the version node itself is an A symbol
	awk '$2 != "A" { print $3 }' "$T/syms" >"$T/exported"
	echo "$(wc -l <"$T/exported") exported symbols"
	[ -s "$T/exported" ] || st=1
	while read -r sym; do
		name=${sym%%@*}
		case $sym in *@@LIBQKD_0) ;; *) echo "not of version LIBQKD_0: $sym"; st=1 ;; esac
		grep -qw -- "$name" "$d"/usr/include/qkd/*.h || { echo "exported, not in an installed header: $name"; st=1; }
	done <"$T/exported"
	for name in qkd_open_connect qkd_get_key qkd_close qkd_004_status_name \
		qkd_dev_get_key qkd_dev_enc_keys qkd_dev_dec_keys qkd_nl_open; do
		grep -qx "$name@@LIBQKD_0" "$T/exported" || { echo "not exported: $name"; st=1; }
	done
	for name in qkd004_parse_uri qkd004_check_qos qkd_nl_fail qkd_nlerr_to_errno; do
		grep -q "^$name@" "$T/exported" && { echo "internal, exported: $name"; st=1; }
	done
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "libqkd.so.$ver: SONAME libqkd.so.0 with the .so.0 and .so links, RELRO and BIND_NOW, only the public API exported (version LIBQKD_0)" "$log"

{
	st=0
	for f in "$d/usr/lib/systemd/system/qkdd@.service" "$d/usr/lib/systemd/system/qkd@.service" \
		"$d/usr/lib/pkgconfig/libqkd.pc"; do
		[ -f "$f" ] || { echo "missing: $f"; st=1; continue; }
		if grep -n '/usr/local\|@[A-Z]*@' "$f"; then
			echo "^ in $f: /usr/local or an unreplaced @VAR@"
			st=1
		fi
	done
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$d/usr/lib/systemd/system/qkdd@.service")
	echo "ExecStart runs $exe"
	[ "$exe" = /usr/sbin/qkdd ] && [ -x "$d$exe" ] || st=1
	u="$d/usr/lib/systemd/system/qkd@.service"
	# qkdd (exec'd by qkdctl up --foreground) is the main process,
	# restarted after a crash; no ExecStop: a stop keeps the store
	grep -qx 'ExecStart=/usr/sbin/qkdctl up --foreground %i' "$u" &&
		grep -qx 'ExecStartPost=/usr/sbin/qkdctl up --bind-only %i' "$u" &&
		! grep -q '^ExecStop' "$u" && ! grep -q '^RemainAfterExit' "$u" &&
		grep -qx 'Type=notify' "$u" && grep -qx 'NotifyAccess=main' "$u" &&
		grep -qx 'Restart=on-failure' "$u" && grep -qx 'RestartPreventExitStatus=2' "$u" &&
		grep -qx 'Conflicts=qkdd@%i.service' "$u" ||
		{ echo "qkd@.service: not Type=notify with qkdctl up --foreground / --bind-only %i, Restart=on-failure but not on status 2, no ExecStop, in conflict with qkdd@%i"; st=1; }
	u="$d/usr/lib/systemd/system/qkdd@.service"
	grep -q '^ExecStart=/usr/sbin/qkdd --config /etc/qkd/%i.qkdd.conf ' "$u" &&
		grep -qx 'ConditionPathExists=/etc/qkd/%i.qkdd.conf' "$u" ||
		{ echo "qkdd@.service: not /etc/qkd/%i.qkdd.conf (qkd@ owns /etc/qkd/%i.conf)"; st=1; }
	for u in qkdd@ qkd@; do
		grep -qx 'User=qkdd' "$d/usr/lib/systemd/system/$u.service" ||
			{ echo "$u.service: not User=qkdd"; st=1; }
	done
	grep -qx 'u qkdd - "QKD BB84 daemon" /var/lib/qkdd' "$d/usr/lib/sysusers.d/qkd.conf" &&
		grep -qx 'm qkdd qkd' "$d/usr/lib/sysusers.d/qkd.conf" ||
		{ echo "sysusers.d/qkd.conf: no user qkdd in the group qkd"; st=1; }
	grep -qx 'd /etc/qkd/psk 0700 qkdd qkdd -' "$d/usr/lib/tmpfiles.d/qkd.conf" ||
		{ echo "tmpfiles.d/qkd.conf: /etc/qkd/psk is not qkdd's, 0700"; st=1; }
	grep -qx 'qkd' "$d/usr/lib/modules-load.d/qkd.conf" || { echo "modules-load.d/qkd.conf does not name qkd"; st=1; }
	grep -q '^prefix=/usr$\|^libdir=/usr/lib$' "$d/usr/lib/pkgconfig/libqkd.pc" || { echo "libqkd.pc: libdir not /usr/lib"; st=1; }
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "installed unit and pkg-config file carry PREFIX=/usr paths (qkdd@: ExecStart=/usr/sbin/qkdd on /etc/qkd/%i.qkdd.conf, which is installed; qkd@: Type=notify, qkdctl up --foreground/--bind-only %i, restarted on failure, no ExecStop, in conflict with qkdd@%i; both User=qkdd, made by sysusers.d, /etc/qkd/psk its own by tmpfiles.d), none of /usr/local" "$log"

# The units' sandbox, as systemd rates it: `systemd-analyze security` on
# the installed qkdd@ and qkd@ (which runs qkdd itself), overall exposure
# at most QKD_UNIT_EXPOSURE_MAX tenths each (2.5; "OK" is up to 4.9,
# qkdd@ before issue 18 had 4.4), and `systemd-analyze verify` without a
# word (the units with ExecStart= at the built tools, which verify wants
# to exist).
{
	st=0
	max=${QKD_UNIT_EXPOSURE_MAX:-25}
	if ! command -v systemd-analyze >/dev/null; then
		echo "systemd-analyze is not installed (package systemd)"
		st=1
	else
		mkdir -p "$T/unit"
		: >"$T/sec.log"
		for unit in qkdd@ qkd@; do
			cp "$d/usr/lib/systemd/system/$unit.service" "$T/unit/$unit.service"
			(cd "$T/unit" && systemd-analyze security --offline=true \
				--threshold="$max" "${unit}x.service") >"$T/sec1.log" 2>&1 ||
				{ echo "^ $unit.service: exposure above $max tenths"; st=1; }
			grep -E '^(✗|→)' "$T/sec1.log"
			cat "$T/sec1.log" >>"$T/sec.log"
			sed "s|@SBINDIR@|$top/build|g" "tools/systemd/$unit.service.in" >"$T/unit/$unit.service"
			systemd-analyze verify --man=no "$T/unit/${unit}x.service" >"$T/verify.log" 2>&1 || st=1
			if [ -s "$T/verify.log" ]; then
				echo "systemd-analyze verify $unit.service:"
				cat "$T/verify.log"
				st=1
			fi
		done
	fi
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkdd@.service and qkd@.service: systemd-analyze security exposure at most ${QKD_UNIT_EXPOSURE_MAX:-25} tenths ($(grep -o 'Overall exposure level[^:]*: [0-9.]*' "$T/sec.log" 2>/dev/null | sed 's/.*: //' | paste -sd, -)), systemd-analyze verify clean" "$log"

{
	make -s uninstall DESTDIR="$d" PREFIX=/usr >"$T/un.log" 2>&1 ||
		{ echo "make uninstall failed:"; cat "$T/un.log"; }
	left=$(cd "$d" && find . \( -type f -o -type l \) ! -regex '\./lib/modules/[^/]*/modules\.[a-z.]*' -printf '/%P\n')
	[ -z "$left" ] || { echo "left after uninstall:"; echo "$left"; false; }
} >"$log" 2>&1
tap_check $? "make uninstall DESTDIR= PREFIX=/usr removes every file install put there" "$log"

# ---- the built tools: hardening and the version
{
	st=0
	for b in build/qkdctl build/qkdd build/qkd-kme; do
		readelf -h "$b" | grep -q 'Type:[[:space:]]*DYN' || { echo "$b: not PIE"; st=1; }
		readelf -l "$b" | grep -q GNU_RELRO || { echo "$b: no RELRO"; st=1; }
		readelf -d "$b" | grep -q 'BIND_NOW\|FLAGS.*NOW' || { echo "$b: no BIND_NOW"; st=1; }
		nm -D "$b" | grep -q ' U __stack_chk_fail' || { echo "$b: no stack protector"; st=1; }
		nm -D "$b" | grep -qE ' U __[a-z0-9_]+_chk(@|$)' ||
			{ echo "$b: no FORTIFY (__*_chk) call"; st=1; }
	done
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "qkdctl, qkdd and qkd-kme are hardened by default: PIE, RELRO, BIND_NOW, stack protector, FORTIFY" "$log"

{
	st=0
	for t in qkdctl qkdd qkd-kme; do
		out=$(build/$t --version 2>&1)
		echo "$t --version: $out"
		case $out in "$t $ver"*) ;; *) st=1 ;; esac
	done
	mv=$(modinfo -F version qkd.ko 2>&1)
	echo "qkd.ko MODULE_VERSION: $mv"
	[ "$mv" = "$ver" ] || st=1
	for m in Documentation/man/*.[0-9]; do
		grep -q "^\.TH .* \"qkd $ver\"" "$m" || { echo "$m: .TH does not say qkd $ver"; st=1; }
	done
	if [ -f debian/changelog ]; then
		dv=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' debian/changelog)
		echo "debian/changelog: $dv"
		case $dv in "$ver" | "$ver"-*) ;; *) st=1 ;; esac
	fi
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "one version ($ver, VERSION): qkdctl, qkdd and qkd-kme --version, qkd.ko's MODULE_VERSION, the man pages, debian/changelog" "$log"

# ---- a module for another kernel than the running one: a warning
# (RUNNING_KVER stands for `uname -r`; the tree's qkd.ko, from make
# install above, names its kernel in its vermagic)
{
	st=0
	kv=$(modinfo -F vermagic qkd.ko | cut -d' ' -f1)
	echo "qkd.ko is for $kv"
	make -s module WERROR=1 RUNNING_KVER=9.9.9-other >"$T/m1" 2>&1 || st=1
	cat "$T/m1"
	grep -q "^warning: building qkd.ko for kernel $kv .*not for the running kernel 9.9.9-other" "$T/m1" ||
		{ echo "no warning for another kernel"; st=1; }
	make -s module WERROR=1 RUNNING_KVER="$kv" >"$T/m2" 2>&1 || st=1
	if grep 'warning: building qkd.ko' "$T/m2"; then echo "^ a warning for the running kernel"; st=1; fi
	[ -n "$kv" ] && [ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "make module warns when KDIR is for another kernel than the running one, and not when it is the running one" "$log"

# ---- the caller's flags (make -n into a scratch B, so that the tree's
# flag stamp and objects stay as they are)
{
	st=0
	env -u WERROR make -n -B B="$T/b" CFLAGS=-O0 CPPFLAGS=-DQKD_CALLER_CPP LDFLAGS=-Wl,-O1,--as-needed \
		"$T/b/qkdctl" >"$T/n" 2>&1 || { cat "$T/n"; st=1; }
	c=$(grep -m1 -- "-c -o $T/b/obj/userspace/qkdctl/main.o" "$T/n")
	l=$(grep -m1 -- "-o $T/b/qkdctl " "$T/n")
	echo "compile: $c"
	echo "link: $l"
	# -O0 is the last -O (it wins), no FORTIFY (it needs optimisation)
	[ "$(echo "$c" | grep -oE ' -O[0-9s]?( |$)' | tail -n 1 | tr -d ' ')" = -O0 ] || { echo "CFLAGS=-O0 is not the last -O"; st=1; }
	echo "$c" | grep -q -- '-D_FORTIFY_SOURCE' && { echo "FORTIFY with -O0"; st=1; }
	echo "$c" | grep -q -- ' -DQKD_CALLER_CPP' || { echo "CPPFLAGS missing"; st=1; }
	echo "$c" | grep -q -- ' -std=c11' || { echo "-std=c11 missing"; st=1; }
	echo "$c" | grep -q -- ' -Werror' && { echo "-Werror without WERROR=1"; st=1; }
	echo "$l" | grep -q -- ' -Wl,-O1,--as-needed' || { echo "LDFLAGS missing"; st=1; }
	echo "$l" | grep -q -- ' -Wl,-z,relro,-z,now' || { echo "relro/now missing"; st=1; }
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "CFLAGS=-O0, CPPFLAGS and LDFLAGS reach the compile and link lines after the project's flags (-O0 wins, no FORTIFY then, -std=c11 kept, no -Werror by default)" "$log"

{
	st=0
	env -u CFLAGS -u CPPFLAGS -u LDFLAGS make -n -B B="$T/b2" WERROR=1 "$T/b2/qkdctl" >"$T/n" 2>&1 || { cat "$T/n"; st=1; }
	c=$(grep -m1 -- "-c -o $T/b2/obj/userspace/qkdctl/main.o" "$T/n")
	l=$(grep -m1 -- "-o $T/b2/qkdctl " "$T/n")
	echo "compile: $c"
	echo "link: $l"
	for f in -Werror -fstack-protector-strong -fstack-clash-protection -fPIE -D_FORTIFY_SOURCE=3 -O2; do
		echo "$c" | grep -q -- " $f\( \|$\)" || { echo "compile line lacks $f"; st=1; }
	done
	for f in -pie -Wl,-z,relro,-z,now; do
		echo "$l" | grep -q -- " $f\( \|$\)" || { echo "link line lacks $f"; st=1; }
	done
	[ "$st" -eq 0 ]
} >"$log" 2>&1
tap_check $? "default flags: -O2, stack protector, stack-clash protection, PIE, FORTIFY=3, relro/now; -Werror with WERROR=1" "$log"

echo "1..$TAP_CHECKS"
[ "$TAP_CHECKS_FAILED" -eq 0 ]
