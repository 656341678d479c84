#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Run the benchmarks that need qkd.ko in the VM (Debian 6.12 by default, or
# QKD_BENCH_KERNEL): bench_key_fetch prints a key fetch through /dev/qkd and
# a genl round trip as ratios to getppid() measured in the same run, and
# one key a call through the raw ioctl, libqkd's qkd_dev_get_key() and its
# ETSI 004 qkd_get_key() side by side (ns/key, keys/s, ratio to the ioctl),
# then ETSI 014 enc_keys through qkd-kme over HTTPS with a client
# certificate (libcurl: one kept-alive connection, or a new connection and
# TLS handshake a request; median and p99 latency and keys/s, ratios to the
# ioctl timed the same way). The KME's certificates are a throw-away test
# PKI made in the guest's /tmp (tools/demo-pki.sh); bench_key_fetch starts
# qkd-kme itself and fails when it does not answer.
# bench_sa_rekey prints in-kernel ESP SA re-keys per second as a ratio to
# the same re-key done with `ip xfrm state` in the same run.
# Under qemu's emulation absolute times are slow; the ratios are the result.
set -eu
cd "$(dirname "$0")/.."
make -s -j2 build/bench/bench_key_fetch build/bench/bench_sa_rekey build/qkd-kme
kver=${QKD_BENCH_KERNEL:-$(ls -d /lib/modules/6.12*/build | sort -V | tail -n 1 | xargs dirname | xargs basename)}
out=build/kmod-bench/$kver
tests/vm/build-module.sh "$kver" "$out"
exec tests/vm/run-vm.sh --kernel "$kver" -- \
	sh -c "insmod $out/qkd.ko && pki=\$(mktemp -d /tmp/bench-pki.XXXXXX) &&
	       tools/demo-pki.sh \$pki server:kme:127.0.0.1 client:sae-a &&
	       build/bench/bench_key_fetch --kme build/qkd-kme --pki \$pki &&
	       build/bench/bench_sa_rekey && rmmod qkd"
