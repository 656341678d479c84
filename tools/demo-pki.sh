#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# demo-pki.sh DIR ENTITY...: a throw-away PKI for qkd-kme's demo and
# benchmark, DEMO AND TEST ONLY: a CA made now with openssl (EC P-256,
# valid 2 days) and, for each ENTITY, a certificate and its unencrypted
# key signed by it:
#   server:NAME:IP   a KME's certificate (CN=NAME, subjectAltName IP:IP,
#                    TLS server use), DIR/NAME.crt and DIR/NAME.key
#   client:NAME      an SAE's client certificate (CN=NAME, TLS client use)
# DIR (created, mode 0700) also gets ca.crt; the CA's key is deleted once
# everything is signed, so that no further certificate can be made with
# it. Never use these for anything but a demo or a benchmark: a deployment
# has its own CA (qkd-kme(8)).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 DIR server:NAME:IP|client:NAME..." >&2; exit 2; }
d=$1
shift
umask 077
mkdir -p "$d"
chmod 0700 "$d"
# EC P-256 keys: fast to make, even in the emulated VM.
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
# shellcheck disable=SC2086
openssl req -x509 $ec -keyout "$d/ca.key" -out "$d/ca.crt" \
	-subj "/CN=qkd demo-only CA (throw-away)" 2>/dev/null ||
	{ echo "demo-pki: cannot make the CA in $d" >&2; exit 1; }
for e in "$@"; do
	kind=${e%%:*}
	rest=${e#*:}
	case $kind in
	server)
		name=${rest%%:*}
		ip=${rest#*:}
		[ -n "$name" ] && [ -n "$ip" ] && [ "$ip" != "$rest" ] ||
			{ echo "demo-pki: bad entity '$e' (server:NAME:IP)" >&2; exit 2; }
		san="-addext subjectAltName=IP:$ip -addext extendedKeyUsage=serverAuth"
		;;
	client)
		name=$rest
		[ -n "$name" ] && [ "$name" = "${name#*:}" ] ||
			{ echo "demo-pki: bad entity '$e' (client:NAME)" >&2; exit 2; }
		san="-addext extendedKeyUsage=clientAuth"
		;;
	*) echo "demo-pki: bad entity '$e'" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086
	openssl req -x509 $ec -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-keyout "$d/$name.key" -out "$d/$name.crt" -subj "/CN=$name" \
		-addext basicConstraints=critical,CA:FALSE \
		-addext keyUsage=critical,digitalSignature $san 2>/dev/null ||
		{ echo "demo-pki: cannot make $name's certificate in $d" >&2; exit 1; }
done
rm -f "$d/ca.key"
