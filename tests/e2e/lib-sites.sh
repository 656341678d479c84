# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# What the two-site e2e scripts share (ipsec.sh, lockdown.sh source it; it
# is not a test of its own). Two sites, siteA (the link's initiator) and
# siteB (its responder), are two network namespaces joined by a veth pair
# (va in siteA, vb in siteB), each with its own store.
#   sites_init NAME     scratch directory $work (/tmp/NAME.XXXXXX), the
#                       counters, and a trap that kills $pids, deletes both
#                       namespaces and $work at exit
#   ok / not_ok TEXT    one TAP line (and the script's time as a comment);
#                       counts in $n and $failed
#   check TEXT CMD...   ok if CMD succeeds, else not_ok and status 1
#   diag                stdin as TAP comments
#   sites_up ADDR_A ADDR_B [ADDR6_A ADDR6_B]
#                       the namespaces, the veth pair with a /24 (and a /64)
#                       address at each end, and lo, all up
#   sites_link SITE     (A or B) the link "peer" at that site, up
#   spi SID FROM [COUNT]
#                       the SPIs of the formula (uapi qkd_sa_spi()) for the
#                       indices FROM.., as 0x%08x, one a line
#   aead_key_of_spi NS SPI
#                       the key `ip xfrm state` shows for the SA with SPI at
#                       site NS ("" if none)
Q=$PWD/build/qkdctl
PY=/usr/bin/python3
A="ip netns exec siteA"
B="ip netns exec siteB"

sites_init() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	n=0
	failed=0
	pids=()
	trap sites_cleanup EXIT
}

sites_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del siteA 2>/dev/null
	ip netns del siteB 2>/dev/null
	rm -rf "$work"
}

ok() { n=$((n + 1)); echo "ok $n - $*"; echo "# ${SECONDS}s"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; echo "# ${SECONDS}s"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; return 1; fi; }
diag() { sed 's/^/# /'; }

sites_up() {
	local ns
	for ns in siteA siteB; do ip netns del $ns 2>/dev/null; ip netns add $ns; done
	ip link add va netns siteA type veth peer name vb netns siteB
	$A ip addr add "$1/24" dev va
	$B ip addr add "$2/24" dev vb
	if [ $# -ge 4 ]; then
		$A ip addr add "$3/64" dev va nodad
		$B ip addr add "$4/64" dev vb nodad
	fi
	$A ip link set va up
	$B ip link set vb up
	$A ip link set lo up
	$B ip link set lo up
}

sites_link() {
	local ns=$A role=initiator
	[ "$1" = B ] && ns=$B role=responder
	$ns "$Q" link add peer role $role >/dev/null
	$ns "$Q" link set peer state up
}

spi() {
	$PY - "$1" "$2" "${3:-1}" <<'EOF'
import sys, uuid
sid, first, count = uuid.UUID(sys.argv[1]).bytes, int(sys.argv[2]), int(sys.argv[3])
for i in range(first, first + count):
    h = 2166136261
    for b in sid + i.to_bytes(8, "big"):
        h = ((h ^ b) * 16777619) & 0xffffffff
    print("0x%08x" % (h | 0x100 if h < 256 else h))
EOF
}

aead_key_of_spi() {
	ip netns exec "$1" ip xfrm state | awk -v spi="$2" '
		/^src/ { cur = "" } $0 ~ "spi " spi { cur = spi }
		cur && /aead/ { print $3; exit }'
}
