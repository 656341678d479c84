#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# guest-debvm.sh DEBDIR: runs in a systemd guest (tests/vm/debvm.sh boots
# it with tests/vm/run-vm.sh --systemd); prints TAP.
#
# The packages as an administrator uses them (issue 18):
#   - dpkg -i the four .debs of DEBDIR: qkd-dkms's postinst builds qkd.ko
#     with DKMS against the guest's kernel headers, qkd-tools's makes the
#     user qkdd, the group qkd and /etc/qkd/psk (sysusers.d, tmpfiles.d);
#   - systemd-modules-load (modules-load.d/qkd.conf) loads the module and
#     udev gives /dev/qkd to the group qkd;
#   - two sites, siteA and siteB, are two network namespaces joined by a
#     veth pair; a site file each (/etc/qkd/siteA.conf, siteB.conf, the
#     one file per link, qkd.conf(5)) and a PSK pair from qkdctl genpsk in
#     /etc/qkd/psk; the installed qkd@.service runs each site in its
#     namespace (a drop-in: NetworkNamespacePath=/run/netns/siteX);
#   - `systemctl start qkd@siteA qkd@siteB`: the daemons run as qkdd, keys
#     flow, the same at both ends; a consumer takes keys while the daemons
#     keep the streams filled;
#   - qkdd is the unit's main process (Type=notify: qkdctl up --foreground
#     exec()s it);
#   - `systemctl restart` keeps the stored keys (a key stored before is
#     taken, the same at both ends, after it); qkdd killed with SIGKILL is
#     restarted by systemd (a new MainPID, keys flow again); then a
#     reboot-equivalent (every process of both units killed with SIGKILL,
#     then started again): each time the link resumes from qkdd's state
#     directory with no new PSK, and the keys at both ends stay the same;
#   - an eavesdropper on the simulated channel (eve=1): the rounds abort and
#     `journalctl -p warning` shows it;
#   - `systemctl stop` keeps the link and the stream with its keys;
#     `qkdctl down --purge` then leaves nothing in the stores.
set -u
debdir=${1:?usage: $0 DEBDIR}
debdir=$(cd "$debdir" && pwd)
ver=$(cat VERSION)
kver=$(uname -r)
SID=9d3b6c1e-2f4a-4b5c-8d6e-7f8091a2b3c4
AA=10.77.0.1
BB=10.77.0.2
n=0
failed=0
t_start=$SECONDS
ok() { n=$((n + 1)); echo "ok $n - $*"; echo "# ${SECONDS}s"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; echo "# ${SECONDS}s"; }
st() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; return 1; fi; }
diag() { sed 's/^/# /'; }
at() { local s=$1; shift; ip netns exec "site$s" "$@"; }
sj() { at "$1" qkdctl -j stream show $SID 2>/dev/null | jq -r ".$2 // empty" 2>/dev/null; }
# wait_for SECONDS CMD...: poll CMD every 2 s until it succeeds
wait_for() {
	local t=$1 end
	shift
	end=$((SECONDS + t))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 2
	done
}
# keys SITE FROM COUNT: the keys of indices FROM.. taken at SITE, sorted
keys() { at "$1" qkdctl key get $SID index "$2" number "$3" 2>&1 | LC_ALL=C sort; }
echo "TAP version 13"
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0

# ---- install ----------------------------------------------------------------
# man-db's trigger would index every manual page of the host's root over
# 9p under emulation (minutes): not what is tested
rm -f /var/lib/man-db/auto-update
export DEBIAN_FRONTEND=noninteractive
pkgs=("$debdir"/qkd-dkms_"$ver"_all.deb "$debdir"/libqkd0_"$ver"_*.deb
	"$debdir"/qkd-tools_"$ver"_*.deb "$debdir"/qkd-dev_"$ver"_*.deb)
t0=$SECONDS
set -o pipefail
if [ -n "${QKD_DEBVM_KO:-}" ]; then
	# a developer's shortcut (tests/vm/debvm.sh --ko): qkd-dkms unpacked,
	# not configured (no DKMS build), the module given
	dpkg --unpack "${pkgs[0]}" >/dev/null &&
		dpkg -i --force-depends "${pkgs[@]:1}" 2>&1
else
	dpkg -i "${pkgs[@]}" 2>&1
fi | while IFS= read -r l; do echo "# [$((SECONDS - t0))s] $l"; done
rc=$?
set +o pipefail
st $rc "dpkg -i qkd-dkms libqkd0 qkd-tools qkd-dev $ver: exit $rc in $((SECONDS - t0)) s (the DKMS build included)"
if [ -n "${QKD_DEBVM_KO:-}" ]; then
	echo "ok $((n += 1)) - the packages are installed # SKIP QKD_DEBVM_KO: qkd-dkms unpacked only"
	echo "ok $((n += 1)) - DKMS builds qkd.ko # SKIP QKD_DEBVM_KO: $QKD_DEBVM_KO instead"
	echo "ok $((n += 1)) - the module is not loaded before modules-load.d runs # SKIP QKD_DEBVM_KO"
	insmod "$QKD_DEBVM_KO"
	rc=$?
	[ "$rc" -eq 0 ] && [ -d /sys/module/qkd ]
	st $? "insmod $QKD_DEBVM_KO (QKD_DEBVM_KO: not modules-load.d)"
else
	for p in qkd-dkms libqkd0 qkd-tools qkd-dev; do
		[ "$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null)" = "install ok installed $ver" ] || {
			echo "# $p: $(dpkg-query -W -f='${Status} ${Version}' "$p" 2>&1)"; false; }
	done
	st $? "the four packages are installed, version $ver"
	dkms status qkd 2>/dev/null | diag
	ko=$(modinfo -n qkd 2>/dev/null)
	echo "# modinfo -n qkd: ${ko:-none}"
	dkms status qkd 2>/dev/null | grep -q "^qkd/$ver, $kver, x86_64: installed" &&
		case $ko in /lib/modules/"$kver"/updates/dkms/qkd.ko*) true ;; *) false ;; esac &&
		[ "$(modinfo -F version qkd)" = "$ver" ]
	st $? "DKMS built and installed qkd.ko $ver for the guest's kernel $kver (/lib/modules/$kver/updates/dkms)"
	[ ! -e /sys/module/qkd ]
	st $? "the module is not loaded before modules-load.d runs"

	# ---- the boot's module loading, the device, the user --------------------
	systemctl restart systemd-modules-load.service
	rc=$?
	[ "$rc" -eq 0 ] && [ -d /sys/module/qkd ] && grep -qx qkd /usr/lib/modules-load.d/qkd.conf
	st $? "systemd-modules-load.service (modules-load.d/qkd.conf) loads qkd (exit $rc)"
fi
udevadm settle -t 30
wait_for 20 test -c /dev/qkd
perm=$(stat -c '%G %a' /dev/qkd 2>&1)
check "udev (60-qkd.rules): /dev/qkd is root:qkd 0660 ($perm)" [ "$perm" = "qkd 660" ]
id qkdd 2>&1 | diag
getent passwd qkdd >/dev/null && id -nG qkdd | grep -qw qkd &&
	[ "$(stat -c '%U %G %a' /etc/qkd/psk 2>&1)" = "qkdd qkdd 700" ]
st $? "sysusers.d and tmpfiles.d: the user qkdd in the group qkd, /etc/qkd/psk qkdd's with mode 0700"

# ---- two sites: namespaces, files, PSK pair, units --------------------------
for ns in siteA siteB; do ip netns add $ns; done
ip link add va netns siteA type veth peer name vb netns siteB
at A ip addr add $AA/24 dev va
at B ip addr add $BB/24 dev vb
for s in A B; do at $s ip link set lo up; done
at A ip link set va up
at B ip link set vb up

qkdctl genpsk /etc/qkd/psk/siteA.psk /etc/qkd/psk/siteB.psk 2>&1 | diag
chown qkdd:qkdd /etc/qkd/psk/siteA.psk /etc/qkd/psk/siteB.psk
[ "$(stat -c '%U %a' /etc/qkd/psk/siteA.psk /etc/qkd/psk/siteB.psk 2>&1 | sort -u)" = "qkdd 600" ]
st $? "qkdctl genpsk: a PSK pair in /etc/qkd/psk, mode 0600, given to qkdd"

# site SITE ROLE QKDD_ROLE ADDR_LINE [CHANNEL]: /etc/qkd/siteSITE.conf
site() {
	cat <<EOF
# site $1 (tests/vm/guest-debvm.sh)
[link]
role = $2
peer = "the other site"

[stream $SID]
key-size = 32
# room for new rounds (~600 keys each) after restarts that keep the keys
max-keys = 32768
low-water = 16

[daemon]
role = $3
$4
psk = /etc/qkd/psk/site$1.psk
state-dir = /var/lib/qkdd/site$1
block-bits = 262144
channel = ${5:-source=single-photon}
timeout = 300
simulated-channel-test-keys-only
EOF
}
site A initiator alice "peer = $BB:7100" >/etc/qkd/siteA.conf
site B responder bob "listen = $BB:7100" >/etc/qkd/siteB.conf
for s in A B; do
	mkdir -p "/etc/systemd/system/qkd@site$s.service.d"
	printf '[Service]\nNetworkNamespacePath=/run/netns/site%s\n' "$s" \
		>"/etc/systemd/system/qkd@site$s.service.d/netns.conf"
done
systemctl daemon-reload

# the unit's confinement as systemd reads it
u=$(systemctl show -p User -p AmbientCapabilities -p CapabilityBoundingSet \
	-p ProtectKernelModules -p NetworkNamespacePath qkd@siteA.service | sort | paste -sd ' ')
echo "# qkd@siteA: $u"
case $u in *"CapabilityBoundingSet=cap_net_admin "*"NetworkNamespacePath=/run/netns/siteA ProtectKernelModules=yes User=qkdd") true ;; *) false ;; esac
st $? "qkd@siteA: User=qkdd, CAP_NET_ADMIN only, ProtectKernelModules, in site A's namespace (drop-in)"

t0=$SECONDS
systemctl start qkd@siteB.service qkd@siteA.service
rc=$?
st $rc "systemctl start qkd@siteB qkd@siteA: exit $rc ($((SECONDS - t0)) s)"
if [ "$rc" -ne 0 ]; then
	journalctl -u qkd@siteA -u qkd@siteB -o cat --no-pager | tail -n 40 | diag
	echo "1..$n"
	exit 1
fi
mainpid() { systemctl show -p MainPID --value "qkd@site$1.service"; }
for s in A B; do
	pid=$(cat /run/qkdd/site$s.qkdd.pid 2>/dev/null)
	user=$(ps -o user= -p "${pid:-0}" 2>/dev/null)
	cg=$(cat "/proc/${pid:-0}/cgroup" 2>/dev/null)
	[ "$(systemctl is-active qkd@site$s)" = active ] && [ "$user" = qkdd ] &&
		[ "$(mainpid $s)" = "$pid" ] && [ "$(cat "/proc/${pid:-0}/comm" 2>/dev/null)" = qkdd ] &&
		case $cg in *"qkd@site$s.service"*) true ;; *) false ;; esac &&
		[ "$(readlink /proc/"${pid:-0}"/ns/net)" = "$(ip netns exec site$s readlink /proc/self/ns/net)" ]
	st $? "qkd@site$s active; its qkdd (pid ${pid:-none}) is the unit's MainPID ($(mainpid $s)), runs as ${user:-?} in the unit's cgroup and site $s's namespace"
done

# ---- keys ---------------------------------------------------------------------
t0=$SECONDS
both_have() { [ "$(sj A next_index)" -ge "$1" ] 2>/dev/null && [ "$(sj B next_index)" -ge "$1" ] 2>/dev/null; }
wait_for 600 both_have 1
st $? "keys arrive at both sites (next_index A $(sj A next_index), B $(sj B next_index) after $((SECONDS - t0)) s)"
for s in A B; do journalctl -u qkd@site$s -o cat --no-pager | tail -n 4 | cut -c1-200 | diag; done

# take COUNT keys at A (its lowest stored, the consumer's request) and the
# same indices at B: the same keys; prints "FIRST COUNT" of what was taken
take_same() {
	local c=$1 outA first
	outA=$(at A qkdctl key get $SID number "$c" 2>&1)
	first=$(printf '%s\n' "$outA" | head -n 1 | cut -f1)
	case $first in '' | *[!0-9]*) echo "# take at A: $outA" >&2; return 1 ;; esac
	[ "$(printf '%s\n' "$outA" | LC_ALL=C sort)" = "$(keys B "$first" "$c")" ] || {
		echo "# the keys of indices $first..+$c differ between the sites" >&2; return 1; }
	echo "$first"
}
first=$(take_same 4)
st $? "a consumer takes 4 keys at A (from index ${first:-?}); B gives the same 4 keys for those indices"

# the daemons keep the streams filled while the consumer takes keys:
# 3 times 4 keys, each time the stream grows again past what it had
fills=0
for _ in 1 2 3; do
	ni=$(sj A next_index)
	take_same 4 >/dev/null || break
	grown() { [ "$(sj A next_index)" -gt "$ni" ] 2>/dev/null && [ "$(sj A stored_keys)" -gt 0 ] 2>/dev/null; }
	wait_for 300 grown || break
	fills=$((fills + 1))
done
[ "$fills" = 3 ]
st $? "streams kept filled: 3 times a consumer took 4 keys and qkdd pushed new ones after ($fills of 3; next_index A $(sj A next_index), stored $(sj A stored_keys))"

# resumed SITE...: after a (re)start, every daemon says it restored its
# authentication reserve from its state (no PSK read: the files are gone)
psk_gone() { [ ! -e /etc/qkd/psk/siteA.psk ] && [ ! -e /etc/qkd/psk/siteB.psk ]; }
psk_gone
st $? "the PSK files were consumed at the first start (wiped, removed) into /var/lib/qkdd/siteA, siteB"
# restored_since CURSOR_TIME: both units logged "restored" since
restored_since() {
	local s
	for s in A B; do
		journalctl -u qkd@site$s --since "$1" -o cat --no-pager | grep -q 'authentication reserve restored from /var/lib/qkdd/site' || return 1
	done
}
# flows_again NEXT_INDEX: new keys after a (re)start (next_index past
# NEXT_INDEX at both sites), the same at both ends
flows_again() {
	local t0=$SECONDS first
	wait_for 600 both_have $(($1 + 1)) || { echo "# no new keys after the restart" >&2; return 1; }
	first=$(take_same 4) || return 1
	echo "# 4 keys the same at both sites from index $first after $((SECONDS - t0)) s"
}
# min_next: the lower next_index of the two sites
min_next() {
	local a b
	a=$(sj A next_index)
	b=$(sj B next_index)
	[ "${b:-0}" -lt "${a:-0}" ] && a=$b
	echo "${a:-0}"
}

# ---- systemctl restart keeps the stored keys ------------------------------------
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
sa=$(sj A stored_keys)
sb=$(sj B stored_keys)
ni=$(min_next)
last=$((ni - 1))
echo "# before the restart: stored A $sa, B $sb; index $last stored at both"
t0=$SECONDS
systemctl restart qkd@siteB.service qkd@siteA.service
rc=$?
st $rc "systemctl restart qkd@siteB qkd@siteA: exit $rc ($((SECONDS - t0)) s)"
sa2=$(sj A stored_keys)
sb2=$(sj B stored_keys)
ka=$(keys A "$last" 1)
kb=$(keys B "$last" 1)
[ "${sa2:-0}" -gt 0 ] && [ "${sb2:-0}" -gt 0 ] && [ -n "$ka" ] && [ "$ka" = "$kb" ] &&
	[ "$(printf '%s\n' "$ka" | cut -f1)" = "$last" ]
st $? "after the restart: the stored keys kept (A $sa -> ${sa2:-?}, B $sb -> ${sb2:-?}), key $last stored before taken at both sites, the same"
flows_again "$ni"
st $? "after the restart: new keys flow again, the same at both ends"
restored_since "$since" && psk_gone
st $? "after the restart: both daemons resumed from their state (no new PSK)"

# ---- qkdd killed with SIGKILL: systemd restarts it ------------------------------
pa=$(mainpid A)
nr=$(systemctl show -p NRestarts --value qkd@siteA.service)
ni=$(min_next)
kill -9 "${pa:-0}"
restarted() {
	local m
	m=$(mainpid A)
	[ "$(systemctl is-active qkd@siteA.service)" = active ] && [ -n "$m" ] && [ "$m" != 0 ] &&
		[ "$m" != "$pa" ] && [ "$(cat "/proc/$m/comm" 2>/dev/null)" = qkdd ] &&
		[ "$(systemctl show -p NRestarts --value qkd@siteA.service)" -gt "${nr:-0}" ]
}
t0=$SECONDS
wait_for 60 restarted
st $? "kill -9 of qkd@siteA's qkdd (pid $pa): systemd restarted it (MainPID $(mainpid A), NRestarts ${nr:-?} -> $(systemctl show -p NRestarts --value qkd@siteA.service), active after $((SECONDS - t0)) s)"
[ "$(sj A stored_keys)" -gt 0 ] 2>/dev/null && [ "$(sj A next_index)" -ge "$ni" ] 2>/dev/null
st $? "after the crash: the stream kept its keys (stored $(sj A stored_keys), next_index $(sj A next_index))"
flows_again "$ni"
st $? "after the crash restart: new keys flow again, the same at both ends"

# ---- reboot-equivalent: every process of both units killed ----------------------
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
pa=$(cat /run/qkdd/siteA.qkdd.pid 2>/dev/null)
pb=$(cat /run/qkdd/siteB.qkdd.pid 2>/dev/null)
ni=$(min_next)
systemctl kill -s SIGKILL qkd@siteA.service qkd@siteB.service
sleep 1
! kill -0 "${pa:-0}" 2>/dev/null && ! kill -0 "${pb:-0}" 2>/dev/null
st $? "SIGKILL to every process of qkd@siteA and qkd@siteB: both daemons dead (pids $pa, $pb)"
systemctl stop qkd@siteA.service qkd@siteB.service
systemctl start qkd@siteB.service qkd@siteA.service
rc=$?
st $rc "both started again: exit $rc"
flows_again "$ni"
st $? "after the kill: keys flow again, the same at both ends"
restored_since "$since" && psk_gone
st $? "after the kill: both daemons resumed from their state (no new PSK)"

# ---- an eavesdropper on the simulated quantum channel ----------------------------
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
site A initiator alice "peer = $BB:7100" source=single-photon,eve=1 >/etc/qkd/siteA.conf
systemctl restart qkd@siteA.service
rc=$?
st $rc "site A restarted with eve=1 on its channel: exit $rc"
aborts() { journalctl -p warning --since "$since" -o cat --no-pager | grep -c 'aborted, block discarded: QBER .* above the abort threshold'; }
eve_seen() { [ "$(aborts)" -ge "$1" ]; }
wait_for 600 eve_seen 1
st $? "journalctl -p warning shows the rounds aborted on the QBER"
journalctl -p warning --since "$since" --no-pager | tail -n 6 | cut -c1-220 | diag
nb=$(sj B next_index)
wait_for 600 eve_seen 3 && [ "$(sj B next_index)" = "$nb" ]
st $? "no key from the eavesdropped rounds ($(aborts) aborted; next_index B stays ${nb:-?})"

# ---- stop keeps the keys; down --purge deletes them ------------------------------
systemctl stop qkd@siteA.service qkd@siteB.service
rc=$?
[ "$rc" -eq 0 ] && ! pgrep -x qkdd >/dev/null && [ "$(sj A stored_keys)" -gt 0 ] 2>/dev/null &&
	[ "$(sj B stored_keys)" -gt 0 ] 2>/dev/null
st $? "systemctl stop: no daemon left; the links and streams kept with their keys (stored A $(sj A stored_keys), B $(sj B stored_keys))"
for s in A B; do at $s qkdctl down --purge site$s 2>&1 | diag; done
[ "$(at A qkdctl -j link show | jq -c .)" = "[]" ] && [ "$(at B qkdctl -j link show | jq -c .)" = "[]" ] &&
	[ "$(at A qkdctl -j stream show | jq -c .)" = "[]" ]
st $? "qkdctl down --purge at both sites: no link or stream left"
journalctl -p err --no-pager -o short-monotonic | grep -i 'qkd' | tail -n 10 | diag

echo "1..$n"
echo "# guest-debvm.sh: $((n - failed)) passed, $failed failed in $((SECONDS - t_start)) s"
[ "$failed" -eq 0 ]
