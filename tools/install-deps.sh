#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Install what building and testing qkd needs on Debian (bookworm): the
# compilers and libraries, the two kernels the module supports (6.1 and
# 6.12 LTS) with their headers, qemu to boot them, and the kernel source
# that carries checkpatch and the kselftest harness (and from which
# tests/vm/build-debug-kernel.sh builds the debug VM kernel: bc flex bison
# libelf-dev dwarves); clang and libbpf-dev also build and load the BPF LSM
# program of tests/kernel/test_lsm.c; debhelper, dh-dkms and lintian build
# and check the Debian packages (tests/lib/check-deb.sh); libmicrohttpd,
# GnuTLS and json-c build qkd-kme, whose tests use curl as the SAE;
# libcurl (OpenSSL flavour) and json-c build qkdd's ETSI 014 client
# (--key-source etsi014) and are the SAE of bench/bench_key_fetch's HTTPS
# rows; libsodium gives libqkd constant-time hex and base64 of key bytes.
# Idempotent: does nothing when everything is there.
set -eu

PACKAGES="build-essential pkg-config git
libnl-3-dev libnl-genl-3-dev libssl-dev libsystemd-dev libkcapi-dev libbpf-dev openssl
libmicrohttpd-dev libgnutls28-dev libjson-c-dev curl libcurl4-openssl-dev libsodium-dev
sparse clang libclang-rt-14-dev dkms
dpkg-dev debhelper dh-dkms lintian
qemu-system-x86 busybox-static kmod cpio xz-utils zstd
iproute2 iputils-ping keyutils procps dmsetup
linux-image-amd64 linux-headers-amd64
linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12
bc flex bison libelf-dev dwarves
python3 python3-yaml python3-jsonschema jq"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo "$0" "$@"
	fi
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
