# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# What the host's qkdd pair tests share (qkdd_loopback.sh, qkdd_default.sh,
# qkdd_mitm.sh source it; it is not a test of its own):
#   qkdd_lib_init NAME [BINARY...]  cd to the top of the tree, build $QKDD
#                     and the BINARYs if missing (or bail out), make the
#                     scratch directory $T (/tmp/NAME.XXXXXX, removed at the
#                     end unless QKDD_TEST_KEEP is set) and kill what the
#                     script left running
#   ok STATUS TEXT    one TAP line; counts in $n, $pass, $fail
#   qkdd_tap_end      the plan and "N passed, N failed"; status 1 if any failed
#   port_free PORT, free_port   (a port P with P + 1 free too: the quantum link)
#   psk DIR           one 64 KiB PSK, a 0600 copy for each side
#   qkdd_start DIR ROLE PORT TIMEOUT [QKDD ARGUMENT...]
#                     one daemon of a PSK pair in the background under
#                     timeout: bob listens on 127.0.0.1:PORT, alice connects
#                     to it; --psk/--out/--status DIR/ROLE.*, log DIR/ROLE.log;
#                     sets pid_ROLE (the timeout process)
QKDD=${QKDD:-build/qkdd}
UUID=6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b
pass=0 fail=0 n=0

qkdd_lib_init() {
	local name=$1 b
	shift
	cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
	for b in "$QKDD" "$@"; do
		if [ ! -x "$b" ]; then
			make -j2 "$b" >/dev/null || { echo "Bail out! cannot build $b"; exit 1; }
		fi
	done
	T=$(mktemp -d "/tmp/$name.XXXXXX")
	# shellcheck disable=SC2064
	trap 'kill $(jobs -p) 2>/dev/null; [ -n "${QKDD_TEST_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"' EXIT
}

ok() {		# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"; pass=$((pass + 1))
	else
		echo "not ok $n - $2"; fail=$((fail + 1))
	fi
}

qkdd_tap_end() {
	echo "1..$n"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# QKDD_TEST_PORTS=LO-HI: take the ports from that range (default: any high port)
free_port() {
	local p lo=20000 span=40000
	if [ -n "${QKDD_TEST_PORTS:-}" ]; then
		lo=${QKDD_TEST_PORTS%-*}; span=$(( ${QKDD_TEST_PORTS#*-} - lo ))
	fi
	for _ in $(seq 50); do
		p=$((lo + RANDOM % span))
		port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
	done
	echo 0
}

psk() {
	(umask 077; head -c 65536 /dev/urandom > "$1/alice.psk"; cp "$1/alice.psk" "$1/bob.psk")
}

qkdd_start() {
	local d=$1 role=$2 port=$3 t=$4 addr
	shift 4
	if [ "$role" = bob ]; then addr="--listen 127.0.0.1:$port"; else addr="--peer 127.0.0.1:$port"; fi
	# shellcheck disable=SC2086
	timeout "$t" "$QKDD" --role "$role" $addr --stream $UUID --link ab \
		--psk "$d/$role.psk" --no-kernel --out "$d/$role.keys" \
		--status "$d/$role.status" "$@" > "$d/$role.log" 2>&1 &
	eval "pid_$role=\$!"
}
