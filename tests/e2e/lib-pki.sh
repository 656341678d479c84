# SPDX-License-Identifier: GPL-2.0-only
#
# lib-pki.sh: a throw-away test PKI made with openssl (EC P-256, 30 days),
# for the scripts that run the KMEs' mutual TLS (qkd_kme.sh,
# qkdd_etsi014.sh, qkdd_etsi014_host.sh). Sourced, after PKI is set to the
# directory the keys and certificates go to:
#
#   pki_ca DIR CN       a CA in DIR: ca.key, ca.crt, and ca.cnf (`openssl
#                       ca -config DIR/ca.cnf` revokes and makes CRLs)
#   pki_cert CADIR NAME EKU SUBJ [SAN] [openssl ca options...]
#                       $PKI/NAME.key and NAME.crt, signed by the CA in
#                       CADIR; EKU serverAuth or clientAuth; SAN e.g.
#                       IP:10.0.0.1 or DNS:sae-b.example ("" for none);
#                       the options e.g. -startdate/-enddate for an
#                       expired certificate
#
# Both return non-zero when openssl fails; the keys are mode 0600.

pki_ca() {
	local d=$1
	mkdir -p "$d" || return 1
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
dir = $d
database = $d/index.txt
serial = $d/serial
new_certs_dir = $d
certificate = $d/ca.crt
private_key = $d/ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = p
unique_subject = no
copy_extensions = copy
[p]
commonName = supplied
[clientAuth]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
[serverAuth]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
EOF
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 30 -subj "/CN=$2" 2>/dev/null &&
		chmod 600 "$d/ca.key"
}

pki_cert() {
	local d=$1 name=$2 eku=$3 subj=$4 san=${5:-}
	shift 4
	[ $# -gt 0 ] && shift
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj" \
		${san:+-addext "subjectAltName=$san"} 2>/dev/null &&
		chmod 600 "$PKI/$name.key" &&
		openssl ca -batch -config "$d/ca.cnf" -extensions "$eku" -notext \
			-in "$PKI/$name.csr" -out "$PKI/$name.crt" "$@" >/dev/null 2>&1
}
