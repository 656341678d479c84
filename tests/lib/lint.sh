#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Static checks of the kernel side, printed as TAP: checkpatch --strict,
# sparse, a W=1 build without warnings on every installed kernel, the
# store's layering (it refers to no symbol of a front end), the YNL spec
# against its schema, the files generated from it against a fresh
# `make regen` (tests/lib/check-gen.sh), that every mutant applies, the
# build and install interface (tests/lib/check-install.sh), the Debian
# packages (tests/lib/check-deb.sh) and DKMS.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
ksrc=build/ksrc
tests/lib/kernel-source.sh "$ksrc" || exit 1
n=0
fail=0
result() { # name rc log
	n=$((n + 1))
	if [ "$2" -eq 0 ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		sed 's/^/# /' "$3" | head -n 40
		fail=$((fail + 1))
	fi
}
log=$(mktemp)
trap 'rm -f "$log" "$log.up" "$log.calls" "$log.ci"' EXIT

perl "$ksrc/checkpatch.pl" --strict --no-tree --terse --show-types \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
	-f kernel/*.c kernel/*.h include/uapi/linux/qkd.h include/uapi/linux/qkd_dev.h \
	include/linux/qkd.h tests/kmod/*.c tests/kmod/*.h >"$log" 2>&1
grep -v "^total: 0 errors, 0 warnings, 0 checks" "$log" | grep -q . && rc=1 || rc=0
result "checkpatch --strict" $rc "$log"

python3 tests/lib/check-spec.py Documentation/netlink/specs/qkd.yaml \
	"$ksrc/genetlink-c.yaml" >"$log" 2>&1
result "YNL spec matches the genetlink-c schema" $? "$log"

tests/lib/check-gen.sh >"$log" 2>&1
result "generated uapi header and kernel/netlink-gen.[ch] are current (make regen)" $? "$log"

for build in /lib/modules/*/build; do
	[ -d "$build" ] || continue
	kver=$(basename "$(dirname "$build")")
	out=build/lint/$kver
	rm -rf "$out" && mkdir -p "$out"
	cp -r Kbuild VERSION kernel include "$out/"
	make -C "$build" M="$top/$out" W=1 C=2 CF="-D__CHECK_ENDIAN__" modules >"$log" 2>&1
	rc=$?
	if grep -E "(warning|error):" "$log" >/dev/null; then rc=1; fi
	result "W=1 + sparse build, $kver" $rc "$log"
	objs=$out/kernel
done

# The store is the bottom layer (kernel/qkd.h, Documentation/design.md): it
# reaches the front ends only through the interfaces it defines (its event
# notifier, struct qkd_consumer_ops), never by name. So store.o refers to
# no symbol that a front end's object defines: every object of kernel/
# but the store's and main.o (which registers the parts, store first),
# the SA bindings' files (sa*.o) and the generated op table included.
{
	missing=
	for f in netlink chardev crypto keyring sa sa_km sa_netlink sa_policy \
		sa_rekey sa_xfrm; do
		[ -f "${objs:-none}/$f.o" ] || missing="$missing $f.o"
	done
	[ -z "$missing" ] || echo "front-end objects missing:$missing"
	for o in "${objs:-none}"/*.o; do
		case ${o##*/} in store.o | main.o) continue ;; esac
		nm --defined-only "$o"
	done | awk 'NF == 3 && $2 ~ /[A-Z]/ { print $3 }' | sort -u >"$log.up" &&
	[ -z "$missing" ] &&
	nm -u "${objs:-none}/store.o" | awk '{ print $2 }' | sort -u >"$log.calls" &&
	bad=$(comm -12 "$log.up" "$log.calls") &&
	test -s "$log.up" && test -s "$log.calls" &&
	echo "store.o refers to front-end symbols: ${bad:-none}" &&
	[ -z "$bad" ]
} >"$log" 2>&1
result "the store calls no front end (store.o refers to no symbol of netlink, chardev, crypto, keyring, sa*)" $? "$log"

# Every mutant still applies to the code it breaks (exactly one line):
# the kernel ones run only in `make mutants`, so a change that moves their
# line would otherwise show only there.
bad=0
for m in tests/mutants/*.mut; do
	python3 tests/mutants/apply.py --check "$m" >/dev/null 2>&1 && continue
	python3 tests/mutants/apply.py --check "$m"
	bad=1
done >"$log" 2>&1
result "every mutant applies (tests/mutants/apply.py --check)" $bad "$log"

# relay SCRIPT...: run a TAP script of checks, each of its results one of
# ours (its comments after a "not ok" as the log); a result it did not
# print is a failure.
relay() {
	"$@" >"$log.ci" 2>&1
	rc=$?
	ci=0
	while IFS= read -r line; do
		case $line in
		"ok "*) ci=$((ci + 1)); result "${line#ok [0-9]* - }" 0 /dev/null ;;
		"not ok "*)
			ci=$((ci + 1))
			awk -v l="$line" '$0 == l { on = 1; next } on && /^# / { print; next } { on = 0 }' \
				"$log.ci" >"$log"
			result "${line#not ok [0-9]* - }" 1 "$log" ;;
		"# lintian: "*) echo "$line" ;;
		esac
	done <"$log.ci"
	[ "$rc" -ne 0 ] || grep -qx "1..$ci" "$log.ci" || result "$1: $ci results, plan $(grep '^1\.\.' "$log.ci")" 1 "$log.ci"
	[ "$rc" -eq 0 ] || [ "$ci" -gt 0 ] || result "$1: exit $rc without results" 1 "$log.ci"
	rm -f "$log.ci"
}

# The build and install interface (tests/lib/check-install.sh): make
# install/uninstall with DESTDIR and PREFIX, the vendor directories, the
# hardening flags, the caller's CFLAGS/CPPFLAGS/LDFLAGS, one version.
relay tests/lib/check-install.sh

# The Debian packages (tests/lib/check-deb.sh: dpkg-buildpackage, lintian,
# each package's contents; about a minute, 100 s on a loaded machine). The
# DKMS build from the package's layout runs in `make stress` (-k).
relay tests/lib/check-deb.sh

# DKMS, in private trees so that nothing of the system's DKMS changes; the
# sources as `make dkms` and the qkd-dkms package lay them out (dkms.conf's
# version placeholder filled in from VERSION).
dk=$(mktemp -d)
ver=$(cat VERSION)
mkdir -p "$dk/src/qkd-$ver" "$dk/tree"
cp -r Kbuild VERSION kernel include "$dk/src/qkd-$ver/"
sed "s/#MODULE_VERSION#/$ver/" dkms.conf >"$dk/src/qkd-$ver/dkms.conf"
kver=$(ls -d /lib/modules/*/build | sort -V | tail -n 1 | xargs dirname | xargs basename)
{ dkms add --sourcetree "$dk/src" --dkmstree "$dk/tree" -m qkd -v "$ver" &&
  dkms build --sourcetree "$dk/src" --dkmstree "$dk/tree" -m qkd -v "$ver" -k "$kver"; } >"$log" 2>&1 &&
	find "$dk/tree" -name 'qkd.ko*' | grep -q .
result "dkms add + build for $kver (dkms.conf)" $? "$log"
# Outside the supported range DKMS must refuse (BUILD_EXCLUSIVE_KERNEL),
# before it looks for headers, so no such kernel needs to be installed.
for k in 5.10.0-30-amd64 6.13.0-1-amd64; do
	dkms build --sourcetree "$dk/src" --dkmstree "$dk/tree" -m qkd -v "$ver" \
		-k "$k" >"$log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && grep -q BUILD_EXCLUSIVE "$log"
	result "dkms refuses kernel $k (BUILD_EXCLUSIVE_KERNEL)" $? "$log"
done
rm -rf "$dk"

echo "1..$n"
echo "# lint: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
